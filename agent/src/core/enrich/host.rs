//! Device enrichment: the facts of the agent's own host (addresses, interfaces, OS, kernel)
//! and the asset tags of its config (owner, organization, business unit, criticality,
//! environment, labels), added to events about this host. Sans-I/O: the shell gathers the
//! texts (`ip -j addr`, `/etc/os-release`, the kernel release) and refreshes them.

use serde::Deserialize;
use vedette_schemas::ocsf::{
    AssetNotes, Device, Event, NetworkInterface, Organization, Os, User, VedetteNotes,
};

/// One network interface with its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Name.
    pub name: String,
    /// MAC address, when it has one.
    pub mac: Option<String>,
    /// Addresses (IPv4 first).
    pub ips: Vec<String>,
}

/// What the agent knows about its host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// Interfaces other than loopback.
    pub interfaces: Vec<Interface>,
    /// OS name (`NAME` of os-release).
    pub os_name: Option<String>,
    /// OS version (`VERSION_ID`).
    pub os_version: Option<String>,
    /// Kernel release.
    pub kernel: Option<String>,
    /// DNS domain of the host (from its FQDN, when known).
    pub domain: Option<String>,
}

/// Asset tags from the config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssetTags {
    /// The host's owner (a person or team).
    pub owner: Option<String>,
    /// Organization.
    pub organization: Option<String>,
    /// Business unit.
    pub business_unit: Option<String>,
    /// Criticality tier, e.g. `tier1`.
    pub criticality: Option<String>,
    /// Environment, e.g. `production`.
    pub environment: Option<String>,
    /// Free labels.
    pub labels: Vec<String>,
}

#[derive(Deserialize)]
struct IpLink {
    ifname: String,
    #[serde(default)]
    link_type: String,
    address: Option<String>,
    #[serde(default)]
    addr_info: Vec<IpAddrInfo>,
}

#[derive(Deserialize)]
struct IpAddrInfo {
    family: String,
    local: String,
}

/// Interfaces from `ip -j addr show`, loopback left out.
pub fn parse_ip_json(text: &str) -> Result<Vec<Interface>, String> {
    let links: Vec<IpLink> =
        serde_json::from_str(text).map_err(|e| format!("`ip -j addr` output: {e}"))?;
    Ok(links
        .into_iter()
        .filter(|l| l.link_type != "loopback")
        .map(|l| {
            let mut ips: Vec<(bool, String)> = l
                .addr_info
                .into_iter()
                .map(|a| (a.family != "inet", a.local))
                .collect();
            ips.sort();
            Interface {
                name: l.ifname,
                mac: l.address.filter(|m| m != "00:00:00:00:00:00"),
                ips: ips.into_iter().map(|(_, ip)| ip).collect(),
            }
        })
        .collect())
}

/// `NAME` and `VERSION_ID` of an os-release file.
pub fn parse_os_release(text: &str) -> (Option<String>, Option<String>) {
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').to_owned())
    };
    (field("NAME"), field("VERSION_ID"))
}

impl HostFacts {
    /// Adds the facts and tags to the event's device (the caller decides the event is
    /// about this host). What the record itself said stays.
    pub fn apply(&self, tags: &AssetTags, ev: &mut Event) {
        let d = ev.device.get_or_insert_with(Device::default);
        let primary = self
            .interfaces
            .iter()
            .find(|i| !i.ips.is_empty())
            .or(self.interfaces.first());
        if d.ip.is_none() {
            d.ip = primary
                .and_then(|i| i.ips.first())
                .map(|ip| ip.clone().into());
        }
        if d.mac.is_none() {
            d.mac = primary.and_then(|i| i.mac.clone()).map(Into::into);
        }
        if d.domain.is_none() {
            d.domain = self.domain.clone().map(Into::into);
        }
        if !self.interfaces.is_empty() {
            d.network_interfaces = Some(
                self.interfaces
                    .iter()
                    .flat_map(|i| {
                        let ips: Vec<Option<&String>> = if i.ips.is_empty() {
                            vec![None]
                        } else {
                            i.ips.iter().map(Some).collect()
                        };
                        ips.into_iter().map(|ip| NetworkInterface {
                            name: Some(i.name.clone().into()),
                            ip: ip.map(|s| s.clone().into()),
                            mac: i.mac.clone().map(Into::into),
                            type_id: Some(0),
                            r#type: Some("Unknown".into()),
                        })
                    })
                    .collect(),
            );
        }
        let os = d.os.get_or_insert_with(|| Os {
            type_id: Some(200),
            r#type: Some("Linux".into()),
            ..Os::default()
        });
        if os.name.is_none() {
            os.name = Some(
                self.os_name
                    .clone()
                    .unwrap_or_else(|| "Linux".into())
                    .into(),
            );
        }
        os.version = os
            .version
            .take()
            .or(self.os_version.clone().map(Into::into));
        os.kernel_release = os
            .kernel_release
            .take()
            .or(self.kernel.clone().map(Into::into));
        if let Some(o) = &tags.owner {
            d.owner = Some(User {
                name: Some(o.clone().into()),
                ..User::default()
            });
        }
        if tags.organization.is_some() || tags.business_unit.is_some() {
            d.org = Some(Organization {
                name: tags
                    .organization
                    .clone()
                    .or(tags.business_unit.clone())
                    .map(Into::into),
                ou_name: tags.business_unit.clone().map(Into::into),
            });
        }
        if tags.criticality.is_some() || tags.environment.is_some() || !tags.labels.is_empty() {
            ev.unmapped_mut()
                .vedette
                .get_or_insert_with(VedetteNotes::default)
                .asset = Some(AssetNotes {
                criticality: tags.criticality.clone().map(Into::into),
                environment: tags.environment.clone().map(Into::into),
                labels: (!tags.labels.is_empty())
                    .then(|| tags.labels.iter().map(|l| l.clone().into()).collect()),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use vedette_schemas::ocsf::{Class, Product};

    use super::*;

    const IP_JSON: &str = r#"[{"ifname":"lo","link_type":"loopback","address":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1"}]},
{"ifname":"eth0","link_type":"ether","address":"52:54:00:12:34:56","addr_info":[{"family":"inet6","local":"fe80::1"},{"family":"inet","local":"10.1.2.3"}]}]"#;

    #[test]
    fn facts_are_read_and_added_to_the_device() {
        let interfaces = parse_ip_json(IP_JSON).unwrap();
        assert_eq!(interfaces.len(), 1);
        assert_eq!(interfaces[0].ips, ["10.1.2.3", "fe80::1"]);
        let (name, version) = parse_os_release("NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n");
        let facts = HostFacts {
            interfaces,
            os_name: name,
            os_version: version,
            kernel: Some("6.1.0-18-amd64".into()),
            domain: Some("corp.example".into()),
        };
        let tags = AssetTags {
            owner: Some("platform-team".into()),
            business_unit: Some("payments".into()),
            criticality: Some("tier1".into()),
            environment: Some("production".into()),
            labels: vec!["pci".into()],
            ..AssetTags::default()
        };
        let mut ev = Event::new(Class::Authentication, 1, 0, Product::default());
        ev.device = Some(Device {
            hostname: Some("web-1".into()),
            ..Device::default()
        });
        facts.apply(&tags, &mut ev);
        let d = ev.device.as_ref().unwrap();
        assert_eq!(d.hostname.as_deref(), Some("web-1"));
        assert_eq!(d.ip.as_deref(), Some("10.1.2.3"));
        assert_eq!(d.mac.as_deref(), Some("52:54:00:12:34:56"));
        assert_eq!(d.network_interfaces.as_ref().unwrap().len(), 2);
        let os = d.os.as_ref().unwrap();
        assert_eq!(
            (os.name.as_deref(), os.version.as_deref()),
            (Some("Debian GNU/Linux"), Some("12"))
        );
        assert_eq!(d.org.as_ref().unwrap().ou_name.as_deref(), Some("payments"));
        let notes = ev.unmapped.as_ref().unwrap().vedette.as_ref().unwrap();
        let asset = notes.asset.as_ref().unwrap();
        assert_eq!(asset.criticality.as_deref(), Some("tier1"));
        assert_eq!(asset.labels.as_ref().unwrap()[0], "pci");
    }
}
