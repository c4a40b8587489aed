//! HTTP push monitors ("checks", docs/CHECKS.md): a check is a host to the rest of the
//! engine (timing, alerts, silences, roles, notifications), fed by pings that hb-web turns
//! into [`Query::Ping`]s. A success is a heartbeat; a failure (`/fail`, a non-zero exit
//! status) takes the check down at once; a start opens a run whose end gives its duration;
//! a log is only kept. Every ping goes into the store's history.

use std::collections::HashMap;

use hb_ipc::config::CheckFile;
use hb_ipc::edge::{Answer, CheckSummary, PingRecord, PingRequest};
use hb_proto::message::{ClientMessage, Header, Heartbeat};

use super::State;
use crate::store;

/// Runs started and not yet ended, at most (oldest dropped first).
pub const MAX_OPEN_RUNS: usize = 10_000;
/// A start older than this ends no run (the job died without a word).
pub const RUN_FORGOTTEN_MS: u64 = 7 * 24 * 3_600_000;

/// Checks made through the API, at most.
pub const MAX_API_CHECKS: usize = 10_000;
/// What the engine keeps of checks between pings.
#[derive(Debug, Default)]
pub struct CheckRuns {
    /// (check, run id or "") -> when it started.
    open: HashMap<(String, String), u64>,
    /// Each check's last ping of any kind.
    pub last: HashMap<String, (u64, String)>,
    /// Checks of the API merged into the configuration in force.
    pub merged: std::collections::BTreeSet<String>,
}

impl CheckRuns {
    fn start(&mut self, check: &str, rid: &str, at: u64) {
        if self.open.len() >= MAX_OPEN_RUNS
            && let Some(oldest) = self
                .open
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(k, _)| k.clone())
        {
            self.open.remove(&oldest);
        }
        self.open.insert((check.to_string(), rid.to_string()), at);
    }

    fn end(&mut self, check: &str, rid: &str, at: u64) -> Option<u64> {
        let started = self.open.remove(&(check.to_string(), rid.to_string()))?;
        (at.saturating_sub(started) <= RUN_FORGOTTEN_MS).then(|| at.saturating_sub(started))
    }
}

impl State {
    /// The check pinged at `uuid`, by name.
    fn check_by_uuid(&self, uuid: &str) -> Option<(String, bool, Option<String>)> {
        let uuid = uuid.to_ascii_lowercase();
        self.config.as_ref()?.checks.iter().find_map(|(name, c)| {
            (c.uuid == uuid).then(|| (name.clone(), c.active, c.ping_key.clone()))
        })
    }

    /// For a check with a schedule: ms from `last_seen` to the next time it fires.
    pub fn scheduled_interval_ms(&self, host: &str, last_seen: u64) -> Option<u64> {
        let c = self.config.as_ref()?.checks.get(host)?;
        let schedule =
            hb_rules::cron::Schedule::parse(c.schedule.as_deref()?, c.tz.as_deref()).ok()?;
        let from = jiff::Timestamp::from_millisecond(last_seen as i64).ok()?;
        let next = schedule.next_after(from)?;
        Some((next.as_millisecond() as u64).saturating_sub(last_seen))
    }

    /// Whether `host` is a check that takes no pings now.
    pub fn is_paused_check(&self, host: &str) -> bool {
        self.config
            .as_ref()
            .and_then(|c| c.checks.get(host))
            .is_some_and(|c| !c.active)
    }

    /// Whether `host` is a check (its name cannot be fed by datagrams).
    pub fn is_check(&self, host: &str) -> bool {
        self.config
            .as_ref()
            .is_some_and(|c| c.checks.contains_key(host))
    }

    /// Takes a ping: `Pinged`, or why not (`no check` for an unknown UUID, `inactive`).
    pub fn ping(&mut self, p: PingRequest, now_ms: u64) -> Answer {
        let Some((check, active, key)) = self.check_by_uuid(&p.uuid) else {
            self.count("pings_unknown");
            return Answer::Error {
                message: "no check has this UUID".into(),
            };
        };
        if let Some(key) = key {
            let given = p.key.as_deref().unwrap_or("");
            let same = hb_proto::sign::constant_time_eq(given.as_bytes(), key.as_bytes());
            if !same {
                self.count("pings_bad_key");
                return Answer::Error {
                    message: "wrong or missing ping key".into(),
                };
            }
        }
        if !active {
            self.count("pings_inactive");
            return Answer::Error {
                message: format!("check {check} is inactive"),
            };
        }
        // An exit status decides: 0 is a success, anything else a failure.
        let kind = match (p.kind.as_str(), p.exit) {
            (_, Some(0)) => "success",
            (_, Some(_)) => "fail",
            ("success" | "start" | "fail" | "log", None) => p.kind.as_str(),
            _ => {
                return Answer::Error {
                    message: format!("no ping kind {:?}", p.kind),
                };
            }
        }
        .to_string();
        self.count(&format!("pings_{kind}"));
        let rid = p.rid.clone().unwrap_or_default();
        let duration_ms = match kind.as_str() {
            "start" => {
                self.check_runs.start(&check, &rid, now_ms);
                None
            }
            "success" | "fail" => self.check_runs.end(&check, &rid, now_ms),
            _ => None,
        };
        // A success is a heartbeat; so is the first word from a check never heard from, so
        // it has a state to leave.
        let known = self.liveness.state(&check).is_some();
        if kind == "success" || (!known && kind == "fail") {
            let interval = self
                .config
                .as_ref()
                .and_then(|c| c.checks.get(&check))
                .filter(|c| c.schedule.is_none())
                .map(|c| c.interval);
            let beat = ClientMessage::Heartbeat(Heartbeat {
                header: Header {
                    name: check.clone(),
                    ..Header::default()
                },
                interval,
                rtt: None,
                ver: None,
            });
            // A ping is rare and answered only once stored: its row goes with it.
            if self.apply(&check, p.source, now_ms, false, beat) {
                self.store_host(&check);
            }
            self.liveness.fed_by_pings(&check);
        }
        let what = match (kind.as_str(), p.exit, duration_ms) {
            ("fail", Some(code), _) => format!("{check} failed with exit status {code}"),
            ("fail", None, _) => format!("{check} reported a failure"),
            ("success", _, Some(d)) => {
                format!("{check} succeeded after {:.1} s", d as f64 / 1000.0)
            }
            ("success", _, None) => format!("{check} pinged"),
            ("start", _, _) => format!("{check} started"),
            _ => format!("{check} logged"),
        };
        if kind == "fail" && self.liveness.fail(&check, now_ms) {
            self.host_changed(&check);
            self.failed(&check, now_ms, what.clone(), false);
        }
        // Starts and logs are history, not events: a job every minute would bury the rest.
        if matches!(kind.as_str(), "success" | "fail") {
            self.event(now_ms, &check, what);
        }
        self.check_runs
            .last
            .insert(check.clone(), (now_ms, kind.clone()));
        self.write(store::Write::Ping {
            check: check.clone(),
            ping: PingRecord {
                at_ms: now_ms,
                kind,
                exit: p.exit,
                rid: p.rid,
                source: p.source.ip().to_canonical().to_string(),
                method: p.method,
                user_agent: p.user_agent,
                body: p.body,
                duration_ms,
            },
        });
        Answer::Pinged {
            check,
            at_ms: now_ms,
        }
    }

    /// Merges the checks made through the API into the configuration in force: each gets a
    /// host entry (timing, roles, channels) and a check entry, unless the file has a host or
    /// check of its name, or its UUID. `fresh`: the configuration was just loaded (nothing of
    /// the API is in it yet).
    pub fn apply_api_checks(&mut self, fresh: bool) {
        let defs = self.settings.of("check");
        let Some(config) = self.config.as_mut() else {
            return;
        };
        let merged = std::mem::take(&mut self.check_runs.merged);
        if !fresh {
            for name in merged {
                config.checks.remove(&name);
                config.hosts.remove(&name);
            }
        }
        for (name, v) in defs {
            let Ok(c) = serde_json::from_value::<CheckFile>(v) else {
                tracing::warn!(
                    check = name,
                    "A check stored by the API cannot be read; left out."
                );
                continue;
            };
            let check = c.check_config();
            let taken = config.hosts.contains_key(&name)
                || config.checks.values().any(|f| f.uuid == check.uuid);
            if taken {
                tracing::warn!(
                    check = name,
                    "The file has a host or check of this name or UUID; the API's is left out."
                );
                continue;
            }
            config.hosts.insert(name.clone(), c.host_config());
            config.checks.insert(name.clone(), check);
            self.check_runs.merged.insert(name);
        }
        self.alerting.host_rules.clear();
    }

    /// Defines, replaces or removes a check made through the API (the web checked who may).
    pub fn put_check(
        &mut self,
        name: String,
        definition: Option<serde_json::Value>,
        now_ms: u64,
    ) -> Answer {
        let error = |message: String| Answer::Error { message };
        let name = name.to_ascii_lowercase();
        if let Err(why) = hb_proto::names::check_host_name(&name) {
            return error(format!("name: {why}"));
        }
        let in_file = self.config.as_ref().is_some_and(|c| {
            (c.hosts.contains_key(&name) || c.checks.contains_key(&name))
                && !self.check_runs.merged.contains(&name)
        });
        if in_file {
            return error(format!(
                "{name:?} is a host or check of the configuration file"
            ));
        }
        let existed = self.settings.of_one("check", &name).is_some();
        let value = match definition {
            None if !existed => return error(format!("no check {name:?}")),
            None => None,
            Some(v) => {
                // A change names only what changes.
                let v = match (self.settings.of_one("check", &name), v) {
                    (Some(serde_json::Value::Object(mut old)), serde_json::Value::Object(new)) => {
                        old.extend(new);
                        serde_json::Value::Object(old)
                    }
                    (_, v) => v,
                };
                // The same definition as in the file, checked the same way.
                let c: CheckFile = match serde_json::from_value(v) {
                    Ok(c) => c,
                    Err(e) => return error(format!("the check does not fit: {e}")),
                };
                if let Some((field, why)) = c.problems(hb_rules::cron::check).into_iter().next() {
                    return error(format!("{field}: {why}"));
                }
                let uuid = c.check_config().uuid;
                let uuid_taken = self.config.as_ref().is_some_and(|cfg| {
                    cfg.checks.iter().any(|(n, f)| f.uuid == uuid && *n != name)
                });
                if uuid_taken {
                    return error("another check has this UUID".into());
                }
                if !existed && self.check_runs.merged.len() >= MAX_API_CHECKS {
                    return error(format!(
                        "at most {MAX_API_CHECKS} checks are made through the API"
                    ));
                }
                match serde_json::to_value(&c) {
                    Ok(v) => Some(v),
                    Err(e) => return error(e.to_string()),
                }
            }
        };
        let removed = value.is_none();
        match self.settings.put("check", &name, value) {
            Ok(text) => {
                self.write(store::Write::Setting {
                    kind: "check".into(),
                    name: name.clone(),
                    value: text,
                });
            }
            Err(message) => return error(message),
        }
        self.apply_api_checks(false);
        let text = if removed {
            // Its state and history go with it.
            self.drop_host(&name, now_ms, "its check was removed through the API");
            format!("check {name} removed through the API")
        } else if existed {
            format!("check {name} changed through the API")
        } else {
            format!("check {name} made through the API")
        };
        self.event(now_ms, "*", text.clone());
        Answer::Done { message: text }
    }

    /// Every check with its state.
    pub fn check_list(&self) -> Answer {
        let Some(config) = self.config.as_ref() else {
            return Answer::Checks { checks: Vec::new() };
        };
        let checks = config
            .checks
            .iter()
            .map(|(name, c)| {
                let state = match (c.active, self.liveness.state(name)) {
                    (false, _) => "paused".to_string(),
                    (true, None) => "new".to_string(),
                    (true, Some(s)) => s.name().to_string(),
                };
                let access = self.settings.access(Some(config), name);
                CheckSummary {
                    name: name.clone(),
                    uuid: c.uuid.clone(),
                    active: c.active,
                    interval: c.interval,
                    grace: c.grace,
                    description: c.description.clone(),
                    schedule: c.schedule.clone(),
                    tz: c.tz.clone(),
                    state,
                    last_ping_ms: self.hosts.get(name).map(|h| h.last_seen_ms),
                    last_event: self.check_runs.last.get(name).cloned(),
                    owner: access.owner.or_else(|| config.default_owner.clone()),
                    managers: access.managers,
                    monitors: access.monitors,
                    api: self.check_runs.merged.contains(name),
                }
            })
            .collect();
        Answer::Checks { checks }
    }
}
