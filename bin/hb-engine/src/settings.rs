//! Settings changed through the API, kept in the store so they survive restarts:
//!
//! - `access`: who holds which role on a host. Each entry records what the file said when
//!   it was made (`base`); when the file's roles for the host differ from that base, the file
//!   was edited since and wins, and the entry is dropped. The latest change wins, whether it
//!   was made in the file or through the API.
//! - `user`: a user's own changes (name, avatar, password hash, channels), interpreted by
//!   hb-web, which applies the same rule field by field; the engine only keeps them and
//!   hands the users' channel choices to the notifier.
//! - `channel`: a notification channel defined through the API, as in
//!   `notification_channels` (secrets included: the notifier needs them after a restart);
//!   handed to the notifier, shown to the web only without its secrets.

use std::collections::BTreeMap;

use hb_ipc::config::EngineConfig;
use serde_json::{Value, json};

/// A setting's value at most, as JSON text.
pub const MAX_VALUE_BYTES: usize = 16 * 1024;
/// Settings of one kind at most.
pub const MAX_PER_KIND: usize = 100_000;
/// The kinds a client may write with `PutSetting` (access has its own query).
pub const CLIENT_KINDS: &[&str] = &["user"];

/// Who holds which role on a host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// The owner.
    pub owner: Option<String>,
    /// Managers.
    pub managers: Vec<String>,
    /// Monitors.
    pub monitors: Vec<String>,
}

impl Access {
    fn to_json(&self) -> Value {
        json!({"owner": self.owner, "managers": self.managers, "monitors": self.monitors})
    }

    fn from_json(v: &Value) -> Access {
        let list = |k: &str| -> Vec<String> {
            v[k].as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        Access {
            owner: v["owner"].as_str().map(String::from),
            managers: list("managers"),
            monitors: list("monitors"),
        }
    }

    /// What the file says for `host` (its owner without the default owner).
    pub fn in_file(config: Option<&EngineConfig>, host: &str) -> Access {
        let h = config.and_then(|c| c.hosts.get(host));
        Access {
            owner: h.and_then(|h| h.owner.clone()),
            managers: h.map(|h| h.managers.clone()).unwrap_or_default(),
            monitors: h.map(|h| h.monitors.clone()).unwrap_or_default(),
        }
    }
}

/// Every setting, by kind and name.
#[derive(Debug, Default)]
pub struct Settings {
    kinds: BTreeMap<String, BTreeMap<String, Value>>,
}

impl Settings {
    /// Takes what the store held.
    pub fn load(&mut self, entries: Vec<(String, String, Value)>) {
        for (kind, name, value) in entries {
            self.kinds.entry(kind).or_default().insert(name, value);
        }
    }

    /// All settings of `kind`.
    pub fn of(&self, kind: &str) -> BTreeMap<String, Value> {
        self.kinds.get(kind).cloned().unwrap_or_default()
    }

    /// One setting.
    pub fn of_one(&self, kind: &str, name: &str) -> Option<Value> {
        self.kinds.get(kind)?.get(name).cloned()
    }

    /// Stores or removes one; the JSON text to write, or why not.
    pub fn put(
        &mut self,
        kind: &str,
        name: &str,
        value: Option<Value>,
    ) -> Result<Option<String>, String> {
        let entries = self.kinds.entry(kind.to_string()).or_default();
        match value {
            None => {
                entries.remove(name);
                Ok(None)
            }
            Some(v) => {
                if !v.is_object() {
                    return Err("a setting is a JSON object".into());
                }
                let text = v.to_string();
                if text.len() > MAX_VALUE_BYTES {
                    return Err(format!("a setting is at most {MAX_VALUE_BYTES} bytes"));
                }
                if !entries.contains_key(name) && entries.len() >= MAX_PER_KIND {
                    return Err(format!("at most {MAX_PER_KIND} settings of a kind"));
                }
                entries.insert(name.to_string(), v);
                Ok(Some(text))
            }
        }
    }

    /// The access change for `host` as a setting, with the file's roles as its base.
    pub fn access_value(new: &Access, file: &Access) -> Value {
        let mut v = new.to_json();
        v["base"] = file.to_json();
        v
    }

    /// The roles on `host`: the API's change while the file still says what it said then,
    /// else the file's.
    pub fn access(&self, config: Option<&EngineConfig>, host: &str) -> Access {
        let file = Access::in_file(config, host);
        match self.kinds.get("access").and_then(|a| a.get(host)) {
            Some(v) if Access::from_json(&v["base"]) == file => Access::from_json(v),
            _ => file,
        }
    }

    /// Access changes the file has overtaken since they were made: removed, their hosts
    /// returned.
    pub fn prune_access(&mut self, config: Option<&EngineConfig>) -> Vec<String> {
        let Some(entries) = self.kinds.get_mut("access") else {
            return Vec::new();
        };
        let stale: Vec<String> = entries
            .iter()
            .filter(|(host, v)| Access::from_json(&v["base"]) != Access::in_file(config, host))
            .map(|(host, _)| host.clone())
            .collect();
        for host in &stale {
            entries.remove(host);
        }
        stale
    }

    /// Each user's channels chosen through the API, with the file's at the time.
    pub fn user_channels(&self) -> BTreeMap<String, hb_ipc::edge::ChosenChannels> {
        let names = |v: &Value| -> Option<Vec<String>> {
            Some(
                v.as_array()?
                    .iter()
                    .filter_map(|c| c.as_str().map(String::from))
                    .collect(),
            )
        };
        self.kinds
            .get("user")
            .into_iter()
            .flatten()
            .filter_map(|(name, v)| {
                Some((
                    name.clone(),
                    hb_ipc::edge::ChosenChannels {
                        channels: names(&v["notification_channels"])?,
                        base: names(&v["base"]["notification_channels"]).unwrap_or_default(),
                    },
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_ipc::config::HostConfig;

    fn config(owner: &str) -> EngineConfig {
        let mut c = crate::state::tests::config();
        c.hosts.insert(
            "web1".into(),
            HostConfig {
                owner: Some(owner.into()),
                ..HostConfig::default()
            },
        );
        c
    }

    #[test]
    fn an_access_change_holds_until_the_file_changes_the_host() {
        let mut s = Settings::default();
        let c = config("alice");
        let file = Access::in_file(Some(&c), "web1");
        let new = Access {
            owner: Some("bob".into()),
            managers: vec!["carol".into()],
            monitors: vec![],
        };
        s.put("access", "web1", Some(Settings::access_value(&new, &file)))
            .unwrap();
        assert_eq!(s.access(Some(&c), "web1"), new);
        assert!(s.prune_access(Some(&c)).is_empty());
        // The file is edited for web1: it wins, and the change is gone.
        let edited = config("dave");
        assert_eq!(
            s.access(Some(&edited), "web1").owner.as_deref(),
            Some("dave")
        );
        assert_eq!(s.prune_access(Some(&edited)), ["web1"]);
        assert_eq!(s.access(Some(&c), "web1").owner.as_deref(), Some("alice"));
    }

    #[test]
    fn settings_are_bounded_objects() {
        let mut s = Settings::default();
        assert!(s.put("user", "a", Some(json!([1]))).is_err());
        let big = json!({"x": "y".repeat(MAX_VALUE_BYTES)});
        assert!(s.put("user", "a", Some(big)).is_err());
        s.put(
            "user",
            "a",
            Some(json!({"notification_channels": ["mail", 3]})),
        )
        .unwrap();
        assert_eq!(s.user_channels()["a"].channels, ["mail"]);
        s.put("user", "a", None).unwrap();
        assert!(s.user_channels().is_empty());
    }
}
