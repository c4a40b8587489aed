//! What users change through the API: who owns, manages and monitors a host, and the
//! notification channels defined there.

use super::*;

impl State {
    /// Roles on a host changed through the API (the web checked who may): kept until the
    /// file changes the host's roles.
    pub(super) fn set_access(
        &mut self,
        host: String,
        owner: Option<Option<String>>,
        managers: Option<Vec<String>>,
        monitors: Option<Vec<String>>,
        now_ms: u64,
    ) -> Answer {
        if !self.hosts.contains_key(&host)
            && !self
                .config
                .as_ref()
                .is_some_and(|c| c.hosts.contains_key(&host))
        {
            return Answer::Error {
                message: format!("no host {host:?}"),
            };
        }
        let current = self.settings.access(self.config.as_ref(), &host);
        let new = crate::settings::Access {
            owner: owner.unwrap_or(current.owner),
            managers: managers.unwrap_or(current.managers),
            monitors: monitors.unwrap_or(current.monitors),
        };
        let file = crate::settings::Access::in_file(self.config.as_ref(), &host);
        let value = crate::settings::Settings::access_value(&new, &file);
        match self.settings.put("access", &host, Some(value)) {
            Ok(value) => {
                self.write(store::Write::Setting {
                    kind: "access".into(),
                    name: host.clone(),
                    value,
                });
                self.host_changed(&host);
                let text = format!(
                    "{host}: owner {}, managers [{}], monitors [{}] (set through the API)",
                    new.owner.as_deref().unwrap_or("(default)"),
                    new.managers.join(", "),
                    new.monitors.join(", ")
                );
                self.event(now_ms, &host, text.clone());
                Answer::Done { message: text }
            }
            Err(message) => Answer::Error { message },
        }
    }

    /// A channel defined, replaced or removed through the API (the web checked who may and
    /// that the file has none of that name).
    pub(super) fn put_channel(
        &mut self,
        name: String,
        definition: Option<serde_json::Value>,
    ) -> Answer {
        let old = self.settings.of_one("channel", &name);
        let value = match definition {
            None if old.is_none() => {
                return Answer::Error {
                    message: format!("no channel {name:?}"),
                };
            }
            None => None,
            Some(mut def) => {
                let Some(map) = def.as_object_mut() else {
                    return Answer::Error {
                        message: "a channel is a JSON object".into(),
                    };
                };
                // Secrets are never shown, so an edit leaves out those it keeps.
                if let Some(old) = old.as_ref().filter(|o| o.get("type") == map.get("type")) {
                    for key in hb_notify::channel::secret_keys(old) {
                        if let (false, Some(v)) = (map.contains_key(key), old.get(key)) {
                            map.insert(key.to_string(), v.clone());
                        }
                    }
                }
                map.retain(|_, v| !v.is_null());
                if let Err(e) = hb_notify::Channel::parse_from_api(&name, &def) {
                    return Answer::Error {
                        message: format!("{}: {}", e.key, e.message),
                    };
                }
                Some(def)
            }
        };
        let removed = value.is_none();
        match self.settings.put("channel", &name, value) {
            Ok(value) => {
                self.write(store::Write::Setting {
                    kind: "channel".into(),
                    name: name.clone(),
                    value,
                });
                self.routing_changed = true;
                let text = match (removed, old.is_some()) {
                    (true, _) => format!("channel {name} removed through the API"),
                    (false, true) => format!("channel {name} changed through the API"),
                    (false, false) => format!("channel {name} defined through the API"),
                };
                self.event(hb_ipc::now_ms(), "*", text.clone());
                Answer::Done { message: text }
            }
            Err(message) => Answer::Error { message },
        }
    }
}
