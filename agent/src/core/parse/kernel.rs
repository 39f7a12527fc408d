//! Kernel messages worth a class of their own: a process killed by a segmentation fault
//! (`COMM[PID]: segfault at ADDR ip … in LIB[…]`, the trace of memory-corruption exploits)
//! → Process Activity Terminate, Failure.

use vedette_schemas::ocsf::{Actor, Class, Event, Process, Status};

use super::{Parsed, code, set_class};
use crate::core::text::Needle;

/// A kernel message without its `[12345.678901] ` uptime stamp (klogd and rsyslog's imklog
/// keep it; the journal does not).
pub fn strip_uptime(msg: &str) -> &str {
    static STAMP_END: Needle = Needle::new("] ");
    match msg.strip_prefix('[').and_then(|m| STAMP_END.split_once(m)) {
        Some((stamp, rest)) if stamp.trim().parse::<f64>().is_ok() => rest,
        _ => msg,
    }
}

/// Parses a kernel message (after the syslog envelope).
pub fn parse(msg: &str, ev: &mut Event) -> Parsed {
    static SEGFAULT: Needle = Needle::new(": segfault at ");
    let body = strip_uptime(msg);
    let Some((proc_, detail)) = SEGFAULT.split_once(body) else {
        return Parsed::No;
    };
    // `COMM[PID]` starts the message, and a task's comm is at most 15 bytes: a longer
    // head is other text the kernel logged (the NULL-argv warning quotes a file name any
    // user chooses, `/tmp/sshd[1]: segfault at …` and all).
    let Some((name, pid)) = proc_.rsplit_once('[') else {
        return Parsed::No;
    };
    if name.len() > 15 {
        return Parsed::No;
    }
    let Ok(pid) = pid.trim_end_matches(']').parse::<i64>() else {
        return Parsed::No;
    };
    set_class(ev, Class::ProcessActivity, 2, Status::Failure);
    code(ev, "kernel", "kernel.segfault");
    ev.process = Some(Box::new(Process {
        pid: Some(pid),
        name: Some(name.into()),
        ..Process::default()
    }));
    ev.actor = Some(Actor {
        app_name: Some("kernel".into()),
        ..Actor::default()
    });
    ev.status_detail = Some(format!("segfault at {detail}").into());
    if let Some(lib) = detail.split(" in ").nth(1) {
        ev.unmapped_set(
            "kernel",
            "object",
            lib.split('[').next().unwrap_or(lib).to_owned(),
        );
    }
    Parsed::Yes
}

#[cfg(test)]
mod tests {
    use super::*;
    use vedette_schemas::ocsf::Product;

    fn ev(msg: &str) -> (Parsed, Event) {
        let mut e = Event::new(Class::Base, 0, 0, Product::default());
        (parse(msg, &mut e), e)
    }

    #[test]
    fn a_segfault_names_its_task() {
        let (r, e) = ev(
            "[1234.5678] nginx[4242]: segfault at 0 ip 00007f sp 00007f error 4 in libc.so.6[7f00+1000]",
        );
        assert_eq!(r, Parsed::Yes);
        assert_eq!(e.process.unwrap().pid, Some(4242));
    }

    /// Text the kernel quotes (a file name any user chooses) is no task.
    #[test]
    fn quoted_text_is_no_segfault() {
        let (r, _) = ev(
            "process 'a' launched '/tmp/sshd[1]: segfault at 0 ip 0 sp 0 error 4 in libc.so.6[7f+1]' with NULL argv: empty string added",
        );
        assert_eq!(r, Parsed::No);
    }
}
