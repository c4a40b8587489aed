//! Engine <-> DNS updater: the records hosts want, and the outcome of each update.

use super::*;

/// What a host's DNS records should be.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsWish {
    /// The host (its records are `<host>.<dyndomain>` for every dyndomain).
    pub host: String,
    /// The address to point them at (A for IPv4, AAAA for IPv6); `None`: remove them (the
    /// host is down and has `dns_failover`).
    pub address: Option<std::net::IpAddr>,
    /// Why (`first sight`, `moved`, `down`, `recovered`, `asked by hbctl`), for the event.
    pub why: String,
}

/// Engine to DNS updater.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum EngineToDnsupdate {
    /// Make these records so; a newer wish for a name replaces an older one not yet done.
    Update {
        /// In the order they were decided.
        wishes: Vec<DnsWish>,
    },
}

/// DNS updater to engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DnsupdateToEngine {
    /// What became of one record's update; the engine makes it an event of the host.
    Outcome {
        /// The host.
        host: String,
        /// `updated`, `failed` (retried later) or `refused` (never sent to nsupdate).
        outcome: DnsOutcome,
        /// What was done or went wrong, for the event.
        text: String,
    },
}

/// How an update ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DnsOutcome {
    /// nsupdate succeeded.
    Updated,
    /// nsupdate failed or timed out; it will be tried again.
    Failed,
    /// The name or address was refused before anything ran.
    Refused,
}
