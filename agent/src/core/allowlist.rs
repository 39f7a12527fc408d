//! Which peers a syslog listener takes messages from.

use std::net::IpAddr;

use ipnet::IpNet;

/// Sender networks a listener accepts; empty accepts everyone (the config says so
/// explicitly with `allow = ["0.0.0.0/0", "::/0"]`; see `config`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist(pub Vec<IpNet>);

impl Allowlist {
    /// Whether `peer` may send. An IPv4 peer reaching a dual-stack socket arrives as an
    /// IPv4-mapped IPv6 address (`::ffff:10.0.0.1`); it is matched as the IPv4 address it
    /// is, so `10.0.0.0/8` admits it.
    pub fn allows(&self, peer: IpAddr) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(nets: &[&str]) -> Allowlist {
        Allowlist(nets.iter().map(|n| n.parse().expect("net")).collect())
    }

    #[test]
    fn matches_networks_of_both_families_and_mapped_v4() {
        let a = list(&["10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32"]);
        for ok in ["10.1.2.3", "2001:db8::1", "192.0.2.7", "::ffff:10.9.9.9"] {
            assert!(a.allows(ok.parse().expect("ip")), "{ok}");
        }
        for no in [
            "11.0.0.1",
            "192.0.2.8",
            "2001:db9::1",
            "::ffff:11.0.0.1",
            "::1",
        ] {
            assert!(!a.allows(no.parse().expect("ip")), "{no}");
        }
    }

    #[test]
    fn empty_list_allows_all() {
        assert!(Allowlist::default().allows("203.0.113.5".parse().expect("ip")));
    }
}
