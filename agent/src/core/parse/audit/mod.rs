//! Linux audit: raw auditd records (`[node=N ]type=T msg=audit(SEC.MS:SERIAL): k=v …`, also
//! forwarded through syslog) and laurel's JSON lines, joined per event id into one event.
//!
//! An event is complete at its `EOE` record, or at its `PROCTITLE`, which the kernel writes
//! last (its `EOE`, if one follows, then ends nothing and is not reported as an orphan);
//! at a record of a later event id of the same kernel (same host and `node=`) once the gap
//! exceeds a small reorder window (auditd interleaves the records of neighbouring events,
//! see auparse's test3.log) or the later record is more than the timeout younger; after
//! the timeout in the caller's clock ([`Joiner::expire`]); or at end of input. Records the
//! kernel never joins (user-space `USER_*`, `CRED_*`, `ADD_*` …, `ANOM_*`) complete at once.

mod event;
mod joiner;
mod laurel;
mod record;

pub use joiner::Joiner;
pub use laurel::laurel_records;
pub(crate) use laurel::parse_laurel;
pub use record::{AuditRecord, parse_record};

/// Whether a message (after any syslog envelope, program `app`) is an audit record: from
/// a program that forwards them, or from a file of them (no program). Any local user can
/// log under any other name (`logger -t myapp 'type=USER_LOGIN …'`): such a line was read
/// as a logon, and could join a real event by its serial.
pub fn is_audit_record(app: &str, msg: &str) -> bool {
    let m = msg.strip_prefix("audit: ").unwrap_or(msg);
    (m.starts_with("type=") || m.starts_with("node="))
        && m.contains("audit(")
        && (app.is_empty()
            || matches!(
                app,
                "audit" | "auditd" | "audispd" | "audisp-syslog" | "kernel" | "audit-forwarder"
            ))
}
