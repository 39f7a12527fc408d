//! Gathers this host's facts for device enrichment and gathers them again every
//! `check_every_ms` (an address change is seen within that time).

use std::path::PathBuf;
use std::process::Command;

use crate::core::enrich::host::{HostFacts, parse_ip_json, parse_os_release};

/// Keeps [`HostFacts`] current.
#[derive(Debug)]
pub struct HostWatcher {
    root: PathBuf,
    ip_command: Vec<String>,
    check_every_ms: i64,
    last_check: Option<i64>,
    facts: HostFacts,
    /// Why the last gathering fell short, once per kind (logged by the caller).
    pub problem: Option<String>,
}

impl HostWatcher {
    /// Facts read under `root` (`etc/os-release`, `proc/sys/kernel/osrelease`), interfaces
    /// from `ip_command` (`ip -j addr show`).
    pub fn new(root: PathBuf, ip_command: Vec<String>, check_every_ms: i64) -> Self {
        Self {
            root,
            ip_command,
            check_every_ms,
            last_check: None,
            facts: HostFacts::default(),
            problem: None,
        }
    }

    /// The facts; gathered again first when a check is due at `now_ms`.
    pub fn facts(&mut self, now_ms: i64) -> &HostFacts {
        let due = self
            .last_check
            .is_none_or(|t| now_ms - t >= self.check_every_ms || now_ms < t);
        if due {
            self.last_check = Some(now_ms);
            self.gather();
        }
        &self.facts
    }

    fn gather(&mut self) {
        let read = |p: &str| std::fs::read_to_string(self.root.join(p)).ok();
        let (os_name, os_version) = read("etc/os-release")
            .or_else(|| read("usr/lib/os-release"))
            .map_or((None, None), |t| parse_os_release(&t));
        let kernel = read("proc/sys/kernel/osrelease").map(|s| s.trim().to_owned());
        let hostname = read("proc/sys/kernel/hostname").map(|s| s.trim().to_owned());
        // The DNS domain: from the FQDN the resolver gives (`hostname --fqdn`), else the
        // kernel's host name when it is qualified, else its NIS domain name.
        let fqdn = Command::new("hostname")
            .arg("--fqdn")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
        let domain = fqdn
            .iter()
            .chain(hostname.iter())
            .find_map(|h| h.split_once('.').map(|(_, d)| d.to_owned()))
            .filter(|d| !d.is_empty())
            .or_else(|| {
                read("proc/sys/kernel/domainname")
                    .map(|s| s.trim().to_owned())
                    .filter(|d| !d.is_empty() && d != "(none)")
            });
        let interfaces = match self.ip_command.split_first() {
            None => Vec::new(),
            Some((cmd, args)) => match Command::new(cmd).args(args).output() {
                Ok(out) if out.status.success() => {
                    match parse_ip_json(&String::from_utf8_lossy(&out.stdout)) {
                        Ok(i) => i,
                        Err(e) => {
                            self.problem = Some(e);
                            self.facts.interfaces.clone()
                        }
                    }
                }
                Ok(out) => {
                    self.problem = Some(format!("{cmd}: {}", out.status));
                    self.facts.interfaces.clone()
                }
                Err(e) => {
                    self.problem = Some(format!("{cmd}: {e}"));
                    self.facts.interfaces.clone()
                }
            },
        };
        self.facts = HostFacts {
            interfaces,
            os_name,
            os_version,
            kernel,
            domain,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_change_is_seen_at_the_next_gathering() {
        let dir = std::env::temp_dir().join(format!("vedette-hostfacts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let json = dir.join("ip.json");
        let write = |ip: &str| {
            std::fs::write(
                &json,
                format!(r#"[{{"ifname":"eth0","link_type":"ether","address":"52:54:00:00:00:01","addr_info":[{{"family":"inet","local":"{ip}"}}]}}]"#),
            )
            .unwrap();
        };
        write("10.0.0.1");
        let cmd = vec!["cat".to_owned(), json.display().to_string()];
        let mut w = HostWatcher::new(dir.clone(), cmd, 30_000);
        assert_eq!(w.facts(0).interfaces[0].ips, ["10.0.0.1"]);
        write("10.0.0.2");
        assert_eq!(w.facts(29_999).interfaces[0].ips, ["10.0.0.1"]);
        assert_eq!(w.facts(30_000).interfaces[0].ips, ["10.0.0.2"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
