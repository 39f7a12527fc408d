//! shadow-utils (`useradd`, `userdel`, `usermod`, `groupadd`, `passwd`, `chpasswd`,
//! `chage`, `gpasswd`) → Account Change.

use vedette_schemas::ocsf::{Actor, Class, Event, Group, Status, User};

use super::{Parsed, code, set_class};

const CREATE: u8 = 1;
const PASSWORD_CHANGE: u8 = 3;
const DELETE: u8 = 6;
const LOCK: u8 = 9;
const UNLOCK: u8 = 12;
const OTHER: u8 = 99;

/// `name=bob, UID=1001, GID=1001, home=/home/bob` → value of `key`.
fn field<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    s.split(", ")
        .find_map(|p| p.trim().strip_prefix(key)?.strip_prefix('='))
}

/// The words between single quotes, in order: `add 'bob' to group 'sudo'` → [bob, sudo].
fn quoted(s: &str) -> Vec<&str> {
    s.split('\'').skip(1).step_by(2).collect()
}

fn change(ev: &mut Event, activity: u8, event_code: &'static str, user: &str) {
    set_class(ev, Class::AccountChange, activity, Status::Success);
    code(ev, "account", event_code);
    ev.user = Some(User::named(user));
}

/// Parses a message of one of the account tools (`program`).
pub fn parse(program: &str, msg: &str, ev: &mut Event) -> Parsed {
    if let Some(rest) = msg.strip_prefix("new user: ") {
        let Some(name) = field(rest, "name") else {
            return Parsed::No;
        };
        change(ev, CREATE, "account.user_created", name);
        if let Some(u) = ev.user.as_mut() {
            u.uid = field(rest, "UID").map(|s| s.into());
        }
        for key in ["GID", "home", "shell", "from"] {
            if let Some(v) = field(rest, key) {
                ev.unmapped_set("account", &key.to_ascii_lowercase(), v.to_owned());
            }
        }
        return Parsed::Yes;
    }
    if let Some(rest) = msg
        .strip_prefix("new group: ")
        .or_else(|| msg.strip_prefix("group added to /etc/group: "))
    {
        let Some(name) = field(rest, "name") else {
            return Parsed::No;
        };
        group_change(ev, "account.group_created", name, field(rest, "GID"));
        return Parsed::Yes;
    }
    if msg.starts_with("group added to /etc/gshadow: ")
        || msg.starts_with("new group added to /etc/gshadow")
    {
        let Some(name) = field(msg.split_once(": ").map_or("", |x| x.1), "name") else {
            return Parsed::No;
        };
        group_change(ev, "account.group_created", name, None);
        return Parsed::Yes;
    }
    let q = quoted(msg);
    if msg.starts_with("delete user '") && !q.is_empty() {
        change(ev, DELETE, "account.user_deleted", q[0]);
        return Parsed::Yes;
    }
    if (msg.starts_with("removed group '") || msg.starts_with("removed shadow group '"))
        && !q.is_empty()
    {
        group_change(ev, "account.group_deleted", q[0], None);
        return Parsed::Yes;
    }
    if (msg.starts_with("add '") || msg.starts_with("delete '")) && q.len() >= 2 {
        // usermod: `add 'bob' to group 'sudo'`
        membership(ev, msg.starts_with("add '"), q[0], q[1]);
        return Parsed::Yes;
    }
    if let Some(rest) = msg.strip_prefix("user ") {
        // gpasswd: `user bob added by root to group sudo`
        let words: Vec<&str> = rest.split_whitespace().collect();
        if let [
            user,
            verb @ ("added" | "removed"),
            "by",
            by,
            _,
            "group",
            group,
        ] = words[..]
        {
            membership(ev, verb == "added", user, group);
            ev.actor.get_or_insert_with(Actor::default).user = Some(User::named(by));
            return Parsed::Yes;
        }
    }
    if msg.starts_with("lock user '") && !q.is_empty() {
        change(ev, LOCK, "account.locked", q[0]);
        return Parsed::Yes;
    }
    if msg.starts_with("unlock user '") && !q.is_empty() {
        change(ev, UNLOCK, "account.unlocked", q[0]);
        return Parsed::Yes;
    }
    if let Some(rest) = msg.strip_prefix("change user ")
        && !q.is_empty()
    {
        // `change user name 'a' to 'b'`; `change user 'bob' UID from '1001' to '0'` (also
        // GID, shell, home, expiration, inactive); `change user 'bob' password`.
        if rest.starts_with("name ") {
            change(ev, OTHER, "account.user_modified", q[0]);
            ev.unmapped_set("account", "attribute", "name");
            if let Some(to) = q.get(1) {
                ev.unmapped_set("account", "to", (*to).to_owned());
            }
            return Parsed::Yes;
        }
        // The attribute is the word after the user's closing quote.
        let after = rest
            .strip_prefix('\'')
            .and_then(|r| r.strip_prefix(q[0]))
            .and_then(|r| r.strip_prefix('\''))
            .unwrap_or("")
            .trim_start();
        let what = after.split_whitespace().next().unwrap_or("");
        if what == "password" {
            change(ev, PASSWORD_CHANGE, "account.password_changed", q[0]);
            return Parsed::Yes;
        }
        change(ev, OTHER, "account.user_modified", q[0]);
        ev.unmapped_set("account", "attribute", what.to_owned());
        if let [_, from, to, ..] = q[..] {
            ev.unmapped_set("account", "from", from.to_owned());
            ev.unmapped_set("account", "to", to.to_owned());
        }
        return Parsed::Yes;
    }
    // groupdel: `group 'devs' removed`, `group 'devs' removed from /etc/group`.
    if msg.starts_with("group '")
        && q.len() == 1
        && msg
            .get(q[0].len() + 8..)
            .is_some_and(|r| r.starts_with(" removed"))
    {
        group_change(ev, "account.group_deleted", q[0], None);
        return Parsed::Yes;
    }
    // groupmod: `group changed in /etc/group (group devs/1001, new name: ops)`.
    if let Some(rest) = msg.strip_prefix("group changed in ")
        && let Some((_, what)) = rest.split_once(" (group ")
    {
        let what = what.strip_suffix(')').unwrap_or(what);
        let (id, change_) = what.split_once(", ").unwrap_or((what, ""));
        let (name, gid) = id.rsplit_once('/').unwrap_or((id, ""));
        group_change(
            ev,
            "account.group_modified",
            name,
            Some(gid).filter(|g| !g.is_empty()),
        );
        if !change_.is_empty() {
            ev.unmapped_set("account", "change", change_.to_owned());
        }
        return Parsed::Yes;
    }
    // util-linux chsh and chfn: `changed user 'bob' shell to '/bin/sh'`,
    // `changed user 'bob' information`.
    if msg.starts_with("changed user '") && !q.is_empty() {
        change(ev, OTHER, "account.user_modified", q[0]);
        let after = msg
            .get("changed user '".len() + q[0].len() + 1..)
            .unwrap_or("")
            .trim_start();
        let what = after.split_whitespace().next().unwrap_or("");
        ev.unmapped_set("account", "attribute", what.to_owned());
        if let Some(to) = q.get(1) {
            ev.unmapped_set("account", "to", (*to).to_owned());
        }
        return Parsed::Yes;
    }
    // useradd: `failed adding user 'bob', exit code: 9` (9: the name is taken).
    if msg.starts_with("failed adding user '") && !q.is_empty() {
        change(ev, CREATE, "account.user_create_failed", q[0]);
        set_class(ev, Class::AccountChange, CREATE, Status::Failure);
        ev.status_detail = Some(msg.into());
        return Parsed::Yes;
    }
    if msg.starts_with("password for '") && q.len() >= 2 {
        change(ev, PASSWORD_CHANGE, "account.password_changed", q[0]);
        ev.actor.get_or_insert_with(Actor::default).user = Some(User::named(q[1]));
        return Parsed::Yes;
    }
    if let Some(user) = msg.strip_prefix("password changed for ") {
        change(ev, PASSWORD_CHANGE, "account.password_changed", user.trim());
        return Parsed::Yes;
    }
    if let Some(user) = msg.strip_prefix("changed password expiry for ") {
        change(ev, OTHER, "account.password_expiry_changed", user.trim());
        return Parsed::Yes;
    }
    let _ = program;
    Parsed::No
}

/// `user` added to or removed from `group`: Account Change (Other) with the group in
/// `user.groups` and `unmapped.account.group`.
fn membership(ev: &mut Event, added: bool, user: &str, group: &str) {
    let event_code = if added {
        "account.group_member_added"
    } else {
        "account.group_member_removed"
    };
    change(ev, OTHER, event_code, user);
    if let Some(u) = ev.user.as_mut() {
        u.groups = Some(vec![Group {
            name: Some(group.into()),
            uid: None,
        }]);
    }
    ev.unmapped_set("account", "group", group.to_owned());
}

/// Groups have no class of their own: an Account Change whose `user` is the group,
/// typed `Group` (type_id 99, Other).
fn group_change(ev: &mut Event, event_code: &'static str, name: &str, gid: Option<&str>) {
    let activity = if event_code.ends_with("created") {
        CREATE
    } else if event_code.ends_with("deleted") {
        DELETE
    } else {
        OTHER
    };
    set_class(ev, Class::AccountChange, activity, Status::Success);
    code(ev, "account", event_code);
    ev.user = Some(User {
        name: Some(name.into()),
        uid: gid.map(|s| s.into()),
        type_id: Some(99),
        r#type: Some("Group".into()),
        ..User::default()
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use vedette_schemas::ocsf::Product;

    fn ev(program: &str, msg: &str) -> (Parsed, Event) {
        let mut e = Event::new(Class::Base, 0, 0, Product::default());
        (parse(program, msg, &mut e), e)
    }

    fn unmapped(e: &Event, key: &str) -> Option<String> {
        let v = serde_json::to_value(e).ok()?;
        v.pointer(&format!("/unmapped/account/{key}"))?
            .as_str()
            .map(str::to_owned)
    }

    /// `change user 'NAME' ATTR from 'A' to 'B'`: the attribute is the word after the
    /// name (a UID changed to 0 is the change an analyst looks for), not the name.
    #[test]
    fn a_usermod_change_names_the_attribute() {
        let (_, e) = ev("usermod", "change user 'bob' UID from '1001' to '0'");
        assert_eq!(e.user.as_ref().unwrap().name.as_deref(), Some("bob"));
        assert_eq!(unmapped(&e, "attribute").as_deref(), Some("UID"));
        assert_eq!(unmapped(&e, "from").as_deref(), Some("1001"));
        assert_eq!(unmapped(&e, "to").as_deref(), Some("0"));
        let (_, e) = ev(
            "usermod",
            "change user 'bob' shell from '/bin/bash' to '/bin/sh'",
        );
        assert_eq!(unmapped(&e, "attribute").as_deref(), Some("shell"));
        let (_, e) = ev("usermod", "change user name 'bob' to 'robert'");
        assert_eq!(unmapped(&e, "attribute").as_deref(), Some("name"));
        assert_eq!(unmapped(&e, "to").as_deref(), Some("robert"));
        let (_, e) = ev("usermod", "change user 'bob' password");
        assert_eq!(e.header.activity_id, PASSWORD_CHANGE);
        assert_eq!(
            e.metadata.event_code.as_deref(),
            Some("account.password_changed")
        );
    }

    #[test]
    fn chsh_chfn_and_a_failed_useradd_are_account_changes() {
        let (r, e) = ev("chsh", "changed user 'bob' shell to '/bin/sh'");
        assert_eq!(r, Parsed::Yes);
        assert_eq!(unmapped(&e, "attribute").as_deref(), Some("shell"));
        assert_eq!(unmapped(&e, "to").as_deref(), Some("/bin/sh"));
        let (r, e) = ev("chfn", "changed user 'bob' information");
        assert_eq!(r, Parsed::Yes);
        assert_eq!(unmapped(&e, "attribute").as_deref(), Some("information"));
        let (r, e) = ev("useradd", "failed adding user 'bob', exit code: 9");
        assert_eq!(r, Parsed::Yes);
        assert_eq!(e.header.activity_id, CREATE);
        assert_eq!(e.header.status, Some(Status::Failure));
        assert_eq!(e.user.as_ref().unwrap().name.as_deref(), Some("bob"));
    }

    #[test]
    fn groupdel_and_groupmod_are_group_changes() {
        for msg in [
            "group 'devs' removed",
            "group 'devs' removed from /etc/group",
        ] {
            let (r, e) = ev("groupdel", msg);
            assert_eq!(r, Parsed::Yes, "{msg}");
            assert_eq!(e.header.activity_id, DELETE);
            assert_eq!(e.user.as_ref().unwrap().name.as_deref(), Some("devs"));
        }
        let (r, e) = ev(
            "groupmod",
            "group changed in /etc/group (group devs/1001, new name: ops)",
        );
        assert_eq!(r, Parsed::Yes);
        assert_eq!(e.header.activity_id, OTHER);
        let u = e.user.as_ref().unwrap();
        assert_eq!(
            (u.name.as_deref(), u.uid.as_deref()),
            (Some("devs"), Some("1001"))
        );
        assert_eq!(unmapped(&e, "change").as_deref(), Some("new name: ops"));
    }
}
