//! Who may do what to a host. Roles per host, each including the ones below it:
//!
//! | role | may |
//! |---|---|
//! | monitor | see the host, its data, history and alerts; acknowledge its alerts |
//! | manager | + queue commands and upgrades, ask for its DNS records, silence it, add and remove monitors |
//! | owner | + drop it, change managers and ownership |
//!
//! An admin is owner of every host and manages users. Without users (unauthenticated mode)
//! everyone is an admin.
//!
//! A host a user has no role on does not exist for them: it is missing from lists and its
//! endpoints answer 404, so names are not disclosed. A host they see but may not act on
//! answers 403.

use hb_ipc::edge::HostSummary;

/// A role on one host, ordered: each includes the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum HostRole {
    /// View and acknowledge.
    Monitor,
    /// Act on it.
    Manager,
    /// Drop it, change its access.
    Owner,
}

impl HostRole {
    /// The role's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            HostRole::Monitor => "monitor",
            HostRole::Manager => "manager",
            HostRole::Owner => "owner",
        }
    }
}

/// Whether a `Host` header names this machine's loopback (any port): `localhost`,
/// `127.x.y.z`, `[::1]`.
pub fn loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Who holds which role on one host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostAccess {
    /// Who may drop it and give its roles.
    pub owner: Option<String>,
    /// Who may act on it: commands, upgrades, DNS updates, silences, its monitors.
    pub managers: Vec<String>,
    /// Who may see it and acknowledge its alerts.
    pub monitors: Vec<String>,
}

impl HostAccess {
    /// A host's access as the engine lists it.
    pub fn of(host: &HostSummary) -> HostAccess {
        HostAccess {
            owner: host.owner.clone(),
            managers: host.managers.clone(),
            monitors: host.monitors.clone(),
        }
    }
}

/// Who is asking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Viewer {
    /// Unauthenticated mode: no users are configured, everything is open.
    Open,
    /// A logged-in user.
    User {
        name: String,
        /// An admin sees every host and may do everything.
        admin: bool,
    },
}

impl Viewer {
    /// Whether they may do everything (an admin, or anyone without users).
    pub fn is_admin(&self) -> bool {
        match self {
            Viewer::Open => true,
            Viewer::User { admin, .. } => *admin,
        }
    }

    /// Their name, for logs and acknowledgements (`anonymous` without users).
    pub fn name(&self) -> &str {
        match self {
            Viewer::Open => "anonymous",
            Viewer::User { name, .. } => name,
        }
    }

    /// Their role on `host`, if any.
    pub fn role(&self, host: &HostSummary) -> Option<HostRole> {
        self.role_in(&HostAccess::of(host))
    }

    /// Their role on a host with `access`, if any.
    pub fn role_in(&self, access: &HostAccess) -> Option<HostRole> {
        if self.is_admin() {
            return Some(HostRole::Owner);
        }
        let name = self.name();
        if access.owner.as_deref() == Some(name) {
            Some(HostRole::Owner)
        } else if access.managers.iter().any(|m| m == name) {
            Some(HostRole::Manager)
        } else if access.monitors.iter().any(|m| m == name) {
            Some(HostRole::Monitor)
        } else {
            None
        }
    }

    /// Whether they see `host` at all.
    pub fn sees(&self, host: &HostSummary) -> bool {
        self.role(host).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(owner: Option<&str>, managers: &[&str], monitors: &[&str]) -> HostSummary {
        HostSummary {
            name: "web1".into(),
            last_seen_ms: 0,
            address: "127.0.0.1:1".parse().unwrap(),
            interval: 10,
            heartbeats: 0,
            rtt_ms: None,
            version: None,
            signed: false,
            state: "up".into(),
            state_since_ms: 0,
            watched: false,
            owner: owner.map(String::from),
            managers: managers
                .iter()
                .map(std::string::ToString::to_string)
                .collect(),
            monitors: monitors
                .iter()
                .map(std::string::ToString::to_string)
                .collect(),
            dyn_dns: false,
        }
    }

    fn user(name: &str, admin: bool) -> Viewer {
        Viewer::User {
            name: name.into(),
            admin,
        }
    }

    #[test]
    fn loopback_hosts_are_told_from_other_names() {
        for ok in [
            "localhost",
            "localhost:50004",
            "127.0.0.1:8080",
            "127.1.2.3",
            "[::1]:50004",
            "LOCALHOST",
        ] {
            assert!(loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example:50004",
            "10.0.0.1",
            "",
            "localhost.evil.example",
            "[::2]:1",
        ] {
            assert!(!loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn roles_come_from_the_host_and_the_admin_flag() {
        let h = host(Some("alice"), &["bob"], &["carol", "bob"]);
        assert_eq!(user("alice", false).role(&h), Some(HostRole::Owner));
        assert_eq!(user("bob", false).role(&h), Some(HostRole::Manager));
        assert_eq!(user("carol", false).role(&h), Some(HostRole::Monitor));
        assert_eq!(user("dave", false).role(&h), None);
        assert!(!user("dave", false).sees(&h));
        assert_eq!(user("dave", true).role(&h), Some(HostRole::Owner));
        assert_eq!(Viewer::Open.role(&h), Some(HostRole::Owner));
        assert_eq!(user("anonymous", false).role(&host(None, &[], &[])), None);
        assert!(HostRole::Monitor < HostRole::Manager && HostRole::Manager < HostRole::Owner);
    }
}
