//! Chunk postings: for each class, host and user a chunk of events names, one entry with
//! the time range of those events. A search by one of them reads the entries newest
//! first and scans only those chunks' rows, and stops once the chunks left are older than
//! the results it has.
//!
//! Why not a B-tree index per event on each: every index is an insert per event, about a
//! microsecond each in SQLite, and the class, host and user indexes together halved the
//! store's rate (`benches/src/bin/store-layouts.rs`). A batch of a thousand events names a
//! few classes, tens of hosts and users: as many entries, not three thousand.

use std::collections::HashMap;

use super::ingest::Row;

/// What an entry (and a search) is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key<'a> {
    /// `class_uid`.
    Class(u32),
    /// `device.hostname`.
    Device(&'a str),
    /// `user.name`, else `actor.user.name`.
    User(&'a str),
    /// `src_endpoint.ip` or `dst_endpoint.ip` (found through the chunk's
    /// [`crate::core::ipfilter`], not through postings).
    Ip(&'a str),
}

impl Key<'_> {
    /// The number stored in `postings.field` (never changes: it is on disk).
    pub fn field(&self) -> i64 {
        match self {
            Key::Class(_) => 1,
            Key::Device(_) => 2,
            Key::User(_) => 3,
            Key::Ip(_) => 4,
        }
    }
}

/// One entry: `key` occurs in the chunk on events timed `first_time..=last_time`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting<'a> {
    /// What occurs.
    pub key: Key<'a>,
    /// Earliest event time with it, ms.
    pub first_time: i64,
    /// Latest event time with it, ms.
    pub last_time: i64,
}

/// The postings of a batch's rows, in a stable order (by field, then first occurrence).
pub fn postings(rows: &[Row]) -> Vec<Posting<'_>> {
    let mut at: HashMap<Key<'_>, usize> = HashMap::new();
    let mut out: Vec<Posting<'_>> = Vec::new();
    for r in rows {
        let keys = [
            Some(Key::Class(r.class_uid)),
            r.device.as_deref().map(Key::Device),
            r.user.as_deref().map(Key::User),
        ];
        for key in keys.into_iter().flatten() {
            match at.get(&key) {
                Some(&i) => {
                    let p = &mut out[i];
                    p.first_time = p.first_time.min(r.time_ms);
                    p.last_time = p.last_time.max(r.time_ms);
                }
                None => {
                    at.insert(key.clone(), out.len());
                    out.push(Posting {
                        key,
                        first_time: r.time_ms,
                        last_time: r.time_ms,
                    });
                }
            }
        }
    }
    out.sort_by_key(|p| p.key.field());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(time_ms: i64, class_uid: u32, device: Option<&str>, user: Option<&str>) -> Row {
        Row {
            uid: Default::default(),
            time_ms,
            class_uid,
            type_uid: class_uid * 100,
            severity_id: 1,
            device: device.map(Into::into),
            device_ip: None,
            user: user.map(Into::into),
            src_ip: None,
            dst_ip: None,
            count: 1,
        }
    }

    #[test]
    fn one_entry_per_key_with_the_time_range_of_its_events() {
        let rows = [
            row(50, 3002, Some("web-01"), Some("bob")),
            row(10, 3002, Some("web-02"), None),
            row(90, 4001, Some("web-01"), Some("bob")),
            row(30, 3002, None, Some("alice")),
        ];
        let p = postings(&rows);
        let find = |k: Key<'_>| {
            p.iter()
                .find(|x| x.key == k)
                .map(|x| (x.first_time, x.last_time))
        };
        assert_eq!(p.len(), 2 + 2 + 2);
        assert_eq!(find(Key::Class(3002)), Some((10, 50)));
        assert_eq!(find(Key::Class(4001)), Some((90, 90)));
        assert_eq!(find(Key::Device("web-01")), Some((50, 90)));
        assert_eq!(find(Key::Device("web-02")), Some((10, 10)));
        assert_eq!(find(Key::User("bob")), Some((50, 90)));
        assert_eq!(find(Key::User("alice")), Some((30, 30)));
        // A host and a user of the same name are different keys.
        assert_eq!(find(Key::User("web-01")), None);
        assert!(p.windows(2).all(|w| w[0].key.field() <= w[1].key.field()));
        assert!(postings(&[]).is_empty());
    }
}
