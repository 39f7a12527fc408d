//! User enrichment from the host's account database (`/etc/passwd`, `/etc/group`, and
//! `/etc/shadow` when readable): who the user named by an event is on this host.
//!
//! Sans-I/O: [`AccountDb::parse`] takes the files' text; the shell reads them (under a
//! configurable root, so tests use fixture files) and re-parses when they change.

use std::collections::HashMap;

use vedette_schemas::ocsf::{Account, Event, Group, User, VedetteNotes};

/// Groups whose members may become root (`sudo` on Debian, `wheel` on RHEL, `admin` on
/// old Ubuntu).
const ADMIN_GROUPS: &[&str] = &["sudo", "wheel", "admin", "root"];

/// One account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAccount {
    /// Numeric user id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Group names (primary first).
    pub groups: Vec<String>,
    /// Login shell.
    pub shell: String,
    /// uid 0 or a member of an admin group.
    pub privileged: bool,
    /// A system account: uid below `UID_MIN` (1000) or no login shell.
    pub system: bool,
    /// Whether the password is locked (`!` or `*` in shadow, as `passwd -S` reads it);
    /// `None` without shadow.
    pub locked: Option<bool>,
    /// Day of the last password change (days since the epoch), from shadow; `None` also
    /// for 0, which means "change it at the next login", not 1970.
    pub password_changed_day: Option<i64>,
    /// Day the account expires (days since the epoch), from shadow.
    pub expire_day: Option<i64>,
}

/// The parsed account database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountDb {
    users: HashMap<String, LocalAccount>,
    /// Lines that did not parse (kept out, counted).
    pub bad_lines: usize,
}

impl AccountDb {
    /// Parses the text of passwd, group and (when readable) shadow.
    pub fn parse(passwd: &str, group: &str, shadow: Option<&str>) -> Self {
        let mut db = Self::default();
        let mut group_names: HashMap<u32, String> = HashMap::new();
        let mut members: HashMap<String, Vec<String>> = HashMap::new();
        for line in group
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        {
            let f: Vec<&str> = line.split(':').collect();
            let (Some(name), Some(gid)) = (f.first(), f.get(2).and_then(|g| g.parse().ok())) else {
                db.bad_lines += 1;
                continue;
            };
            // The first line wins, as the C library reads the files.
            group_names.entry(gid).or_insert_with(|| (*name).to_owned());
            for m in f
                .get(3)
                .map_or("", |m| *m)
                .split(',')
                .filter(|m| !m.is_empty())
            {
                members
                    .entry(m.to_owned())
                    .or_default()
                    .push((*name).to_owned());
            }
        }
        let mut shadow_of: HashMap<&str, (bool, Option<i64>, Option<i64>)> = HashMap::new();
        for line in shadow.unwrap_or("").lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 3 {
                shadow_of.entry(f[0]).or_insert((
                    f[1].starts_with(['!', '*']),
                    f[2].parse().ok().filter(|&d: &i64| d > 0),
                    f.get(7).and_then(|e| e.parse().ok()),
                ));
            }
        }
        for line in passwd
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        {
            let f: Vec<&str> = line.split(':').collect();
            let (Some(uid), Some(gid)) = (
                f.get(2).and_then(|u| u.parse::<u32>().ok()),
                f.get(3).and_then(|g| g.parse::<u32>().ok()),
            ) else {
                db.bad_lines += 1;
                continue;
            };
            let name = f[0].to_owned();
            let shell = f.get(6).map_or("", |s| *s).to_owned();
            let mut groups: Vec<String> = group_names.get(&gid).cloned().into_iter().collect();
            for g in members.get(&name).into_iter().flatten() {
                if !groups.contains(g) {
                    groups.push(g.clone());
                }
            }
            let privileged = uid == 0 || groups.iter().any(|g| ADMIN_GROUPS.contains(&g.as_str()));
            let no_login =
                shell.ends_with("/nologin") || shell.ends_with("/false") || shell.is_empty();
            let sh = shadow_of.get(name.as_str());
            // The first line of a name wins, as the C library (and so login) reads the
            // file: a later `carol` with uid 1005 hid a uid-0 `carol` before it.
            db.users.entry(name).or_insert(LocalAccount {
                uid,
                gid,
                groups,
                shell,
                privileged,
                system: uid != 0 && (uid < 1000 || no_login),
                locked: shadow.map(|_| sh.is_some_and(|s| s.0)),
                password_changed_day: sh.and_then(|s| s.1),
                expire_day: sh.and_then(|s| s.2),
            });
        }
        db
    }

    /// The account named `name`.
    pub fn get(&self, name: &str) -> Option<&LocalAccount> {
        self.users.get(name)
    }

    /// Accounts known.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether no account is known.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Fills what the database knows into the event's users (`user`, `actor.user`,
    /// `process.user`): uid, groups, type (Admin / System / User), the account and whether
    /// it is locked; the last password change goes to
    /// `unmapped.vedette.password_changed_time` (ms since the epoch; `user`'s).
    pub fn apply(&self, ev: &mut Event) {
        let day = ev.time.div_euclid(86_400_000);
        let fill = |u: &mut User| -> Option<i64> {
            let a = u.name.as_deref().and_then(|n| self.users.get(n))?;
            let name = u.name.clone();
            u.uid.get_or_insert_with(|| a.uid.to_string().into());
            let (type_id, caption) = if a.privileged {
                (2, "Admin")
            } else if a.system {
                (3, "System")
            } else {
                (1, "User")
            };
            u.type_id = Some(type_id);
            u.r#type = Some(caption.into());
            if u.groups.is_none() && !a.groups.is_empty() {
                u.groups = Some(
                    a.groups
                        .iter()
                        .map(|g| Group {
                            name: Some(g.clone().into()),
                            ..Group::default()
                        })
                        .collect(),
                );
            }
            u.account = Some(Account {
                name,
                uid: Some(a.uid.to_string().into()),
                type_id: Some(9),
                r#type: Some("Linux Account".into()),
                // An account expired by the event's day is locked for logins too.
                is_locked: a
                    .locked
                    .map(|l| l || a.expire_day.is_some_and(|e| e <= day)),
            });
            a.password_changed_day.map(|d| d * 86_400_000)
        };
        let changed = ev.user.as_mut().and_then(fill);
        if let Some(u) = ev.actor.as_mut().and_then(|a| a.user.as_mut()) {
            fill(u);
        }
        if let Some(u) = ev.process.as_mut().and_then(|p| p.user.as_mut()) {
            fill(u);
        }
        if let Some(ms) = changed {
            ev.unmapped_mut()
                .vedette
                .get_or_insert_with(VedetteNotes::default)
                .password_changed_time = Some(ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use vedette_schemas::ocsf::{Class, Product};

    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
alice:x:1000:1000:Alice:/home/alice:/bin/bash\n\
bob:x:1001:1001:Bob:/home/bob:/bin/bash\n\
svc:x:998:998::/var/lib/svc:/usr/sbin/nologin\n\
broken line\n";
    const GROUP: &str = "root:x:0:\nsudo:x:27:alice\nalice:x:1000:\nbob:x:1001:\nsvc:x:998:\n";
    const SHADOW: &str = "root:*:19000:0:99999:7:::\nalice:$y$j9T$abc:19500:0:99999:7:::\nbob:!$y$j9T$def:19600:0:99999:7:::\n";

    #[test]
    fn accounts_are_classified() {
        let db = AccountDb::parse(PASSWD, GROUP, Some(SHADOW));
        assert_eq!(db.bad_lines, 1);
        let alice = db.get("alice").unwrap();
        assert!(alice.privileged && !alice.system);
        assert_eq!(alice.groups, ["alice", "sudo"]);
        assert_eq!(alice.locked, Some(false));
        assert_eq!(alice.password_changed_day, Some(19500));
        let bob = db.get("bob").unwrap();
        assert!(!bob.privileged && !bob.system && bob.locked == Some(true));
        assert!(db.get("svc").unwrap().system);
        assert!(db.get("daemon").unwrap().system);
        assert!(db.get("root").unwrap().privileged);
        // Without shadow (not readable): lock state unknown.
        assert_eq!(
            AccountDb::parse(PASSWD, GROUP, None)
                .get("bob")
                .unwrap()
                .locked,
            None
        );
    }

    /// The C library reads the first line of a name; shadow's `*` locks a password as
    /// `!` does; an account expired is locked; a last change of 0 is no date.
    #[test]
    fn the_files_are_read_as_the_system_reads_them() {
        let passwd = "carol:x:0:0::/root:/bin/bash\ncarol:x:1005:1005::/home/carol:/bin/bash\nfrank:x:1006:1006::/home/frank:/bin/bash\n";
        let shadow = "carol:*:19000:0:99999:7:::\nfrank:$y$j9T$abc:0:0:99999:7::1:\n";
        let db = AccountDb::parse(passwd, "", Some(shadow));
        let carol = db.get("carol").unwrap();
        assert!(carol.uid == 0 && carol.privileged);
        assert_eq!(carol.locked, Some(true));
        let frank = db.get("frank").unwrap();
        assert_eq!(frank.password_changed_day, None);
        let mut ev = Event::new(
            Class::Authentication,
            1,
            86_400_000 * 20_000,
            Product::default(),
        );
        ev.user = Some(User {
            name: Some("frank".into()),
            ..User::default()
        });
        db.apply(&mut ev);
        assert_eq!(ev.user.unwrap().account.unwrap().is_locked, Some(true));
    }

    #[test]
    fn events_get_the_accounts_facts() {
        let db = AccountDb::parse(PASSWD, GROUP, Some(SHADOW));
        let mut ev = Event::new(Class::Authentication, 1, 0, Product::default());
        ev.user = Some(User {
            name: Some("alice".into()),
            ..User::default()
        });
        db.apply(&mut ev);
        let u = ev.user.as_ref().unwrap();
        assert_eq!(u.uid.as_deref(), Some("1000"));
        assert_eq!((u.type_id, u.r#type.as_deref()), (Some(2), Some("Admin")));
        assert_eq!(u.groups.as_ref().unwrap().len(), 2);
        assert_eq!(u.account.as_ref().unwrap().is_locked, Some(false));
        // An unknown user (an attacker's guess) is left alone.
        let mut ev2 = Event::new(Class::Authentication, 1, 0, Product::default());
        ev2.user = Some(User {
            name: Some("oracle".into()),
            ..User::default()
        });
        db.apply(&mut ev2);
        assert!(ev2.user.as_ref().unwrap().uid.is_none());
    }
}
