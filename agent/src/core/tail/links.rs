//! Which symbolic links the tail follows. An agent reads as root (or as a member of
//! `adm`), and what it reads ends up in the SOC's store, read by more people than the
//! host's root: a user who can write to a tailed directory (an application's own log
//! directory) could put `app.log -> /etc/shadow` there and have the agent ship the file.
//! The default follows a link only when root made it or when whoever made it owns the
//! file it leads to (as the kernel's `fs.protected_symlinks` reasons): container log links
//! (root's) and an application's links to its own dated files are followed, a link to
//! someone else's file is not. The shell walks the chain; this judges it.

/// How an input treats symbolic links among the paths it matches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SymlinkRule {
    /// Followed when every link of the chain is root's or the target's owner's.
    #[default]
    Owner,
    /// Always followed.
    Any,
    /// Never followed: only regular files matched by name are read.
    Never,
}

impl SymlinkRule {
    /// The config's spelling: `owner`, `any`, `never`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(Self::Owner),
            "any" => Some(Self::Any),
            "never" => Some(Self::Never),
            _ => None,
        }
    }

    /// Why a path reached through `link_owners` (the uids owning each link of the chain,
    /// the matched path first) to a file owned by `target_owner` is not read, if it is not.
    pub fn refusal(self, link_owners: &[u32], target_owner: u32) -> Option<String> {
        if link_owners.is_empty() {
            return None;
        }
        match self {
            Self::Any => None,
            Self::Never => Some("a symbolic link, and symlinks = \"never\"".to_owned()),
            Self::Owner => link_owners
                .iter()
                .find(|&&uid| uid != 0 && uid != target_owner)
                .map(|uid| {
                    format!(
                        "a symbolic link owned by uid {uid} to a file owned by uid {target_owner}: \
                         not followed, since whoever can write that directory could make the agent \
                         read any file (symlinks = \"any\" follows it)"
                    )
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SymlinkRule;

    #[test]
    fn a_link_is_followed_when_root_or_the_files_owner_made_it() {
        let owner = SymlinkRule::Owner;
        assert_eq!(owner.refusal(&[], 0), None, "not a link");
        assert_eq!(owner.refusal(&[0], 1000), None, "root's link");
        assert_eq!(owner.refusal(&[1000], 1000), None, "the owner's own link");
        assert_eq!(owner.refusal(&[0, 1000], 1000), None);
        let to_shadow = owner
            .refusal(&[1000], 0)
            .expect("a user's link to root's file");
        assert!(to_shadow.contains("uid 1000") && to_shadow.contains("uid 0"));
        // Anywhere in the chain: root's link to a user's link to root's file.
        assert!(owner.refusal(&[0, 1000], 0).is_some());
        assert!(owner.refusal(&[1000, 0], 0).is_some());
    }

    #[test]
    fn any_follows_every_link_and_never_none() {
        assert_eq!(SymlinkRule::Any.refusal(&[1000, 7], 0), None);
        assert!(SymlinkRule::Never.refusal(&[0], 0).is_some());
        assert_eq!(SymlinkRule::Never.refusal(&[], 0), None, "a file is read");
    }

    #[test]
    fn the_config_spells_three_rules() {
        assert_eq!(SymlinkRule::parse("owner"), Some(SymlinkRule::Owner));
        assert_eq!(SymlinkRule::parse("any"), Some(SymlinkRule::Any));
        assert_eq!(SymlinkRule::parse("never"), Some(SymlinkRule::Never));
        assert_eq!(SymlinkRule::parse("yes"), None);
        assert_eq!(SymlinkRule::default(), SymlinkRule::Owner);
    }
}
