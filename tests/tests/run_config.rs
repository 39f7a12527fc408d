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

/// An agent run as its own user (as a package should) meets syslog's port 514 and stops
/// with "Permission denied": the error now says what grants the port.
#[test]
fn a_privileged_port_without_privilege_says_what_grants_it() {
    let scratch = Scratch::new("run-port");
    // The state dir nobody's, as a package makes it.
    let state = scratch.path("state");
    std::fs::create_dir(&state).expect("state dir");
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).expect("chown (root)");
    let cfg = scratch.write(
        "agent.toml",
        format!(
            "[agent]\nstate_dir = \"{}\"\n[[input.syslog]]\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:514\"\nallow = [\"127.0.0.1\"]\n",
            state.display()
        )
        .as_bytes(),
    );
    // nobody, with no capabilities (setpriv from util-linux, which .ci/run installs).
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(agent_bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .output()
        .expect("setpriv (util-linux)");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("input.syslog[0]: listening on 127.0.0.1:514"),
        "{err}"
    );
    assert!(err.contains("CAP_NET_BIND_SERVICE"), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
}

/// A config every local user may write decides what a root agent reads and where it sends
/// it: refused, as logrotate refuses such a file, with what to do.
#[test]
fn a_config_every_user_may_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = Scratch::new("run-config-mode");
    let cfg = scratch.write(
        "agent.toml",
        format!(
            "[agent]\nstate_dir = \"{}\"\n",
            scratch.path("state").display()
        )
        .as_bytes(),
    );
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let out = Command::new(agent_bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .output()
        .expect("run the agent");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("writable by every user (mode 666)"), "{err}");
    assert!(err.contains("chmod o-w"), "{err}");
}
