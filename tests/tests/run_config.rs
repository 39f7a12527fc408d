//! `vedette-agent run` with a broken config: one error listing every problem with file,
//! line and field, and nothing started.

use std::process::{Command, Stdio};

use crate::support::{Scratch, agent_bin};

/// Peers stop at the first mistake; the operator fixes it, restarts, and meets the next.
#[test]
fn three_mistakes_one_error_listing_all_three() {
    let scratch = Scratch::new("run-config");
    let cfg = scratch.write(
        "agent.toml",
        br#"[agent]
timezone = "Europe/Atlantis"

[[input.syslog]]
protocol = "udp"
listen = "0.0.0.0:70000"
allow = ["10.0.0.0/8"]

[[input.file]]
path = ["/var/log/auth.log"]
"#,
    );
    let out = Command::new(agent_bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .output()
        .expect("run the agent");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("3 problem(s) in the config"), "{err}");
    let file = cfg.display().to_string();
    for (line, field) in [
        (10, "input.file[0]"),
        (2, "agent.timezone"),
        (6, "input.syslog[0].listen"),
    ] {
        assert!(
            err.contains(&format!("{file}:{line}:")) && err.contains(field),
            "{field} at line {line} missing from:\n{err}"
        );
    }
}
