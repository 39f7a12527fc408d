//! The checkpoint file: where each tracked file's committed data ends.
//!
//! Format (text, so an operator can read it and a diff shows what moved):
//!
//! ```text
//! vedette-tail-checkpoints 1
//! {"dev":2049,"ino":131,"fp_hash":"0123456789abcdef","fp_len":1024,"offset":5120,"source_id":"file:…","path":"/var/log/auth.log"}
//! ```
//!
//! The first line names the format and its version; then one JSON object per file. Paths are
//! stored lossily as UTF-8: they only say where the file was last seen, never identify it.
//! Writing it atomically (temp file, fsync, rename, fsync the directory) is the shell's job.
//!
//! Records of files that only moved on are appended ([`encode_records`]) rather than the
//! whole file rewritten for each batch acknowledged (2,000 files made 300 KB per line
//! read): a later record of a file replaces an earlier one, and a last line without its
//! newline is an append a crash cut short, so it is left out (the record before it
//! stands: its lines are read again, with the same uids).

use serde::{Deserialize, Serialize};

use super::fingerprint::Fingerprint;

const HEADER: &str = "vedette-tail-checkpoints";
const VERSION: u32 = 1;

/// One file's committed position and identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Device of the file.
    pub dev: u64,
    /// Inode of the file.
    pub ino: u64,
    /// Content identity, checked before resuming (the inode may have been reused).
    pub fingerprint: Fingerprint,
    /// The id its lines' event uids are keyed by; kept so uids survive restarts.
    pub source_id: String,
    /// Everything before this offset was durably written downstream.
    pub offset: u64,
    /// Where the file was last seen.
    pub path: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    dev: u64,
    ino: u64,
    /// Hex, because JSON numbers above 2^53 lose precision in other readers.
    fp_hash: String,
    fp_len: u64,
    offset: u64,
    source_id: String,
    path: String,
}

/// A checkpoint file that cannot be read. Either someone edited it or it is from a newer
/// agent; the shell decides whether to start fresh.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The first line is not the format header.
    #[error("line 1: not a vedette tail checkpoint file")]
    NotCheckpoints,
    /// Written by an agent with a format this one does not know.
    #[error("line 1: checkpoint format version {found} (this agent reads {VERSION})")]
    Version {
        /// The version found.
        found: String,
    },
    /// A record that does not parse.
    #[error("line {line}: {message}")]
    Record {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
}

/// The file text for `checkpoints`.
pub fn encode(checkpoints: &[Checkpoint]) -> String {
    let mut out = format!("{HEADER} {VERSION}\n");
    out.push_str(&encode_records(checkpoints));
    out
}

/// The record lines for `checkpoints`, to append to a checkpoint file.
pub fn encode_records(checkpoints: &[Checkpoint]) -> String {
    let mut out = String::new();
    for c in checkpoints {
        let r = Record {
            dev: c.dev,
            ino: c.ino,
            fp_hash: format!("{:016x}", c.fingerprint.hash),
            fp_len: c.fingerprint.len,
            offset: c.offset,
            source_id: c.source_id.clone(),
            path: c.path.clone(),
        };
        // A struct of integers and strings always serializes.
        out.push_str(&serde_json::to_string(&r).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// Parses a checkpoint file's text. Blank lines are ignored.
pub fn decode(text: &str) -> Result<Vec<Checkpoint>, CheckpointError> {
    let mut lines = text.lines();
    let first = lines.next().ok_or(CheckpointError::NotCheckpoints)?;
    let version = first
        .strip_prefix(HEADER)
        .and_then(|v| v.strip_prefix(' '))
        .ok_or(CheckpointError::NotCheckpoints)?;
    if version.trim() != VERSION.to_string() {
        return Err(CheckpointError::Version {
            found: version.trim().to_owned(),
        });
    }
    // An append a crash cut short: its last line has no newline (records always end with
    // one).
    let torn = !text.ends_with('\n');
    let count = text.lines().count();
    let mut out: Vec<Checkpoint> = Vec::new();
    let mut at: std::collections::HashMap<(u64, u64), usize> = std::collections::HashMap::new();
    for (i, l) in lines.enumerate() {
        let line = i + 2;
        if l.trim().is_empty() {
            continue;
        }
        let bad = |message: String| CheckpointError::Record { line, message };
        let r: Record = match serde_json::from_str(l) {
            Ok(r) => r,
            Err(_) if torn && line == count => break,
            Err(e) => return Err(bad(e.to_string())),
        };
        let hash = u64::from_str_radix(&r.fp_hash, 16)
            .map_err(|e| bad(format!("fp_hash {:?}: {e}", r.fp_hash)))?;
        if r.fp_len == 0 {
            return Err(bad("fp_len 0: an empty file has no fingerprint".into()));
        }
        let c = Checkpoint {
            dev: r.dev,
            ino: r.ino,
            fingerprint: Fingerprint {
                hash,
                len: r.fp_len,
            },
            source_id: r.source_id,
            offset: r.offset,
            path: r.path,
        };
        // A later record of a file (appended) replaces the earlier one.
        match at.get(&(c.dev, c.ino)) {
            Some(&i) => out[i] = c,
            None => {
                at.insert((c.dev, c.ino), out.len());
                out.push(c);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn arb_checkpoint() -> impl Strategy<Value = Checkpoint> {
        (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            1u64..,
            any::<u64>(),
            ".*",
            ".*",
        )
            .prop_map(
                |(dev, ino, hash, len, offset, source_id, path)| Checkpoint {
                    dev,
                    ino,
                    fingerprint: Fingerprint { hash, len },
                    source_id,
                    offset,
                    path,
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(cps in proptest::collection::vec(arb_checkpoint(), 0..5)) {
            prop_assert_eq!(decode(&encode(&cps)), Ok(cps));
        }

        #[test]
        fn garbage_never_panics_and_errors_point_inside(text in ".*") {
            let text = format!("{HEADER} {VERSION}\n{text}");
            if let Err(CheckpointError::Record { line, .. }) = decode(&text) {
                prop_assert!(line >= 2 && line <= text.lines().count());
            }
        }
    }

    /// Appended records replace earlier ones of the same file; a last line a crash cut
    /// short is left out, a broken line before it is still an error.
    #[test]
    fn appended_records_replace_earlier_ones_and_a_torn_append_is_left_out() {
        let cp = |ino: u64, offset: u64| Checkpoint {
            dev: 1,
            ino,
            fingerprint: Fingerprint { hash: 3, len: 4 },
            source_id: format!("file:{ino}"),
            offset,
            path: "/var/log/a.log".into(),
        };
        let mut text = encode(&[cp(1, 10), cp(2, 20)]);
        text.push_str(&encode_records(&[cp(2, 25), cp(3, 30)]));
        text.push_str(&encode_records(&[cp(1, 15)]));
        let whole = decode(&text).expect("decodes");
        assert_eq!(whole, [cp(1, 15), cp(2, 25), cp(3, 30)]);
        let torn = &text[..text.len() - 9];
        assert_eq!(decode(torn), Ok(vec![cp(1, 10), cp(2, 25), cp(3, 30)]));
        let broken = format!(
            "{}{{oops\n{}",
            encode(&[cp(1, 10)]),
            encode_records(&[cp(2, 1)])
        );
        assert!(matches!(
            decode(&broken),
            Err(CheckpointError::Record { line: 3, .. })
        ));
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(decode(""), Err(CheckpointError::NotCheckpoints));
        assert_eq!(decode("hello\n"), Err(CheckpointError::NotCheckpoints));
        assert_eq!(
            decode("vedette-tail-checkpoints 2\n"),
            Err(CheckpointError::Version { found: "2".into() })
        );
        let ok = encode(&[Checkpoint {
            dev: 1,
            ino: 2,
            fingerprint: Fingerprint { hash: 3, len: 4 },
            source_id: "file:x".into(),
            offset: 5,
            path: "/a\tb\nc".into(),
        }]);
        let text = format!("{ok}\n{{\"dev\":1}}\n");
        match decode(&text) {
            Err(CheckpointError::Record { line, .. }) => assert_eq!(line, 4),
            other => panic!("{other:?}"),
        }
        let text = ok.replace("0000000000000003", "zz");
        match decode(&text) {
            Err(CheckpointError::Record { line, message }) => {
                assert_eq!(line, 2);
                assert!(message.contains("fp_hash"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}
