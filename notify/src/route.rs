//! Who gets a notification (docs/NOTIFY.md): the host's owner and managers through their
//! channels, plus the host's own channels; without users, the host's channels and the
//! server-wide `notify` list. Each channel's `min_level` filters; a recovery goes to the
//! channels that got the alert, whatever their `min_level`.

use std::collections::{BTreeMap, BTreeSet};

use hb_ipc::edge::Notification;

use crate::channel::{Channel, severity};

/// Everything routing needs.
#[derive(Clone, Debug, Default)]
pub struct Routes {
    /// Channels by name.
    pub channels: BTreeMap<String, Channel>,
    /// Each user's channels; empty: no users are configured.
    pub users: BTreeMap<String, Vec<String>>,
    /// Server-wide channels for setups without users.
    pub notify: Vec<String>,
}

impl Routes {
    /// The channels that get `n`, by name, sorted.
    pub fn route(&self, n: &Notification) -> Vec<String> {
        let recovery = n.kind == "recovery";
        if recovery && !n.alerted.is_empty() {
            return n
                .alerted
                .iter()
                .filter(|c| self.channels.contains_key(*c))
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
        }
        let mut names: BTreeSet<&String> = n.channels.iter().collect();
        if self.users.is_empty() {
            names.extend(self.notify.iter());
        } else {
            for user in &n.users {
                // Someone else's private channel is not a user's to choose.
                let theirs = |name: &&String| {
                    self.channels.get(*name).is_none_or(|ch| {
                        !ch.private || ch.owner.as_ref().is_none_or(|owner| owner == user)
                    })
                };
                names.extend(self.users.get(user).into_iter().flatten().filter(theirs));
            }
        }
        // A storm summary, a flapping notice: their own level. A recovery whose alert's
        // channels are unknown (lost in a restart) goes wherever the alert would have.
        let level = if recovery { None } else { severity(&n.level) };
        names
            .into_iter()
            .filter_map(|name| {
                let ch = self.channels.get(name)?;
                level
                    .is_none_or(|l| l >= ch.min_level)
                    .then(|| name.clone())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn routes(users: bool) -> Routes {
        let ch = |name: &str, min: &str| {
            (
                name.to_string(),
                Channel::parse(
                    name,
                    &json!({"type": "slack", "url": "https://x", "min_level": min}),
                )
                .unwrap(),
            )
        };
        Routes {
            channels: [
                ch("alice_mail", "WARNING"),
                ch("bob_sms", "CRITICAL"),
                ch("carol_mail", "WARNING"),
                ch("host_chan", "WARNING"),
                ch("server", "WARNING"),
            ]
            .into_iter()
            .collect(),
            users: if users {
                [
                    ("alice".to_string(), vec!["alice_mail".to_string()]),
                    ("bob".to_string(), vec!["bob_sms".to_string()]),
                    ("carol".to_string(), vec!["carol_mail".to_string()]),
                ]
                .into_iter()
                .collect()
            } else {
                BTreeMap::new()
            },
            notify: vec!["server".into()],
        }
    }

    fn n(kind: &str, level: &str, alerted: &[&str]) -> Notification {
        Notification {
            id: 1,
            alert: "web1/down".into(),
            kind: kind.into(),
            level: level.into(),
            host: "web1".into(),
            title: "t".into(),
            text: "x".into(),
            created_ms: 0,
            // Owner alice, manager bob; carol is a monitor and not listed.
            users: vec!["alice".into(), "bob".into()],
            channels: vec!["host_chan".into()],
            alerted: alerted
                .iter()
                .map(std::string::ToString::to_string)
                .collect(),
            done_channels: Vec::new(),
        }
    }

    #[test]
    fn owner_and_managers_through_their_channels_filtered_by_min_level() {
        let r = routes(true);
        assert_eq!(
            r.route(&n("alert", "CRITICAL", &[])),
            ["alice_mail", "bob_sms", "host_chan"]
        );
        assert_eq!(
            r.route(&n("alert", "WARNING", &[])),
            ["alice_mail", "host_chan"],
            "bob's SMS only for CRITICAL; carol (a monitor) never"
        );
        // The recovery of a CRITICAL alert reaches bob's SMS although it is below its level.
        assert_eq!(
            r.route(&n(
                "recovery",
                "OK",
                &["alice_mail", "bob_sms", "host_chan"]
            )),
            ["alice_mail", "bob_sms", "host_chan"]
        );
        // Without the record of who got it, a recovery goes where the alert would have.
        assert_eq!(
            r.route(&n("recovery", "OK", &[])),
            ["alice_mail", "bob_sms", "host_chan"]
        );
    }

    #[test]
    fn a_private_channel_reaches_only_its_owner() {
        let mut r = routes(true);
        let private = Channel::parse(
            "alice_mail",
            &json!({"type": "slack", "url": "https://x", "owner": "alice", "private": true}),
        )
        .unwrap();
        r.channels.insert("alice_mail".into(), private);
        r.users.insert("bob".into(), vec!["alice_mail".into()]);
        let mut to_bob = n("alert", "CRITICAL", &[]);
        to_bob.users = vec!["bob".into()];
        assert_eq!(
            r.route(&to_bob),
            ["host_chan"],
            "bob chose alice's private one"
        );
        assert_eq!(
            r.route(&n("alert", "CRITICAL", &[])),
            ["alice_mail", "host_chan"],
            "alice's own choice"
        );
    }

    #[test]
    fn without_users_the_host_channels_and_notify_are_used() {
        let r = routes(false);
        assert_eq!(
            r.route(&n("alert", "WARNING", &[])),
            ["host_chan", "server"]
        );
        // Unknown channel names are ignored.
        assert_eq!(
            r.route(&n("recovery", "OK", &["gone", "server"])),
            ["server"]
        );
    }
}
