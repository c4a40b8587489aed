//! Queries from hbctl and the web: answered from memory, or handed to the store's reader
//! for history (Reply::Store).

use std::collections::BTreeMap;

use hb_ipc::edge::{AlertSummary, Answer, EventSummary, PluginLatest, Query};

use super::{Reply, State};
use crate::store;

impl State {
    /// Answers a query from the supervisor or the web.
    pub fn query(&mut self, query: Query, now_ms: u64) -> Reply {
        // What heartbeats wrote before is not this answer's to wait for.
        self.wrote
            .store(false, std::sync::atomic::Ordering::Relaxed);
        Reply::Now(match query {
            Query::QueueCommand { host, command } => self.queue_command(host, command),
            Query::ListHosts {} => Answer::Hosts {
                hosts: self
                    .sorted_hosts()
                    .filter_map(|name| self.summary(name))
                    .collect(),
            },
            Query::Host { host } => self.host_answer(&host),
            Query::Messages {} => Answer::Messages {
                messages: self
                    .events
                    .iter()
                    .map(|e| EventSummary {
                        time_ms: e.at_ms,
                        host: e.host.clone(),
                        msg: e.text.clone(),
                    })
                    .collect(),
            },
            Query::Alerts {} => {
                let mut alerts: Vec<AlertSummary> = self
                    .alerting
                    .alerts
                    .iter()
                    .map(|(key, a)| Self::alert_summary(key, a))
                    .collect();
                alerts.sort_by_key(|a| a.since_ms);
                Answer::Alerts { alerts }
            }
            Query::Dns { host } => self.ask_dns(&host),
            Query::DropHost { host } => {
                if self.drop_host(&host, now_ms, "on request") {
                    Answer::Dropped { host }
                } else {
                    Answer::Error {
                        message: format!("no host {host:?}"),
                    }
                }
            }
            Query::Silence {
                host,
                metric,
                minutes,
                author,
                comment,
            } => self.silence(host, metric, minutes, (author, comment), now_ms),
            Query::Unsilence { id } => self.unsilence(id, now_ms),
            Query::Silences {} => self.silences_answer(now_ms),
            Query::Acknowledge { key, by } => self.acknowledge(&key, &by, now_ms),
            Query::Thresholds {} => self.thresholds_answer(),
            // Channels hold secrets: they are shown only without them (`Channels`).
            Query::Settings { kind } if kind == "channel" => Answer::Error {
                message: "channels are read with the channels query, without their secrets".into(),
            },
            Query::Settings { kind } => Answer::Settings {
                values: self.settings.of(&kind),
            },
            Query::PutSetting { kind, name, value } => self.put_setting(kind, name, value),
            Query::Channels {} => Answer::Settings {
                values: self
                    .settings
                    .of("channel")
                    .iter()
                    .map(|(name, def)| (name.clone(), hb_notify::channel::public_view(def)))
                    .collect(),
            },
            Query::PutChannel { name, definition } => self.put_channel(name, definition),
            Query::Ping(ping) => self.ping(ping, now_ms),
            Query::Checks {} => self.check_list(),
            Query::PutCheck { name, definition } => self.put_check(name, definition, now_ms),
            Query::Pings { check, limit } if self.store.is_some() => {
                return Reply::Store(Query::Pings { check, limit });
            }
            Query::Pings { .. } => Answer::Error {
                message: "history needs the store, which is not open".into(),
            },
            Query::SetAccess {
                host,
                owner,
                managers,
                monitors,
            } => self.set_access(host, owner, managers, monitors, now_ms),
            Query::Counters {} => Answer::Counters {
                counters: self.counters_now(),
            },
            Query::Samples {
                host,
                plugin,
                limit,
            } if self.store.is_some() => {
                let limit = limit.min(self.config.as_ref().map_or(100, |c| c.sample_count));
                return Reply::Store(Query::Samples {
                    host,
                    plugin,
                    limit,
                });
            }
            Query::Rtt { host, limit } if self.store.is_some() => {
                return Reply::Store(Query::Rtt { host, limit });
            }
            Query::Events { host, limit } if self.store.is_some() => {
                return Reply::Store(Query::Events { host, limit });
            }
            Query::Samples { .. } | Query::Rtt { .. } | Query::Events { .. } => Answer::Error {
                message: "history needs the store, which is not open".into(),
            },
            Query::TestNotify { .. } => Answer::Error {
                message: "test notifications are the notifier's".into(),
            },
        })
    }

    pub(super) fn host_answer(&self, host: &str) -> Answer {
        let Some(summary) = self.summary(host) else {
            return Answer::Error {
                message: format!("no host {host:?}"),
            };
        };
        let latest = |(name, (time_ms, data)): (&String, &(u64, Box<str>))| {
            let data = serde_json::from_str(data).unwrap_or(serde_json::Value::Null);
            let latest = PluginLatest {
                time_ms: *time_ms,
                data,
            };
            (name.clone(), latest)
        };
        Answer::Host {
            host: Box::new(summary),
            plugins: self
                .hosts
                .get(host)
                .map_or_else(BTreeMap::new, |h| h.plugins.iter().map(latest).collect()),
            alerts: self
                .alerting
                .alerts
                .iter()
                .filter(|(_, a)| a.host == host)
                .map(|(key, a)| Self::alert_summary(key, a))
                .collect(),
        }
    }

    pub(super) fn thresholds_answer(&self) -> Answer {
        match &self.config {
            Some(c) => Answer::Thresholds {
                thresholds: c.thresholds.clone(),
                profiles: c.threshold_configs.clone(),
                default_profile: c.default_threshold_config.clone(),
            },
            None => Answer::Error {
                message: "no configuration yet".into(),
            },
        }
    }

    pub(super) fn unsilence(&mut self, id: u64, now_ms: u64) -> Answer {
        let Some(s) = self.alerting.silences.remove(&id) else {
            return Answer::Error {
                message: format!("no silence {id}"),
            };
        };
        self.write(store::Write::Unsilence { id });
        let text = format!("silence {id} of {}/{} ended early", s.host, s.metric);
        self.event(now_ms, &s.host, text.clone());
        Answer::Done { message: text }
    }

    pub(super) fn silences_answer(&self, now_ms: u64) -> Answer {
        Answer::Silences {
            silences: self
                .alerting
                .silences
                .values()
                .map(|s| hb_ipc::edge::SilenceSummary {
                    id: s.id,
                    host: s.host.clone(),
                    metric: s.metric.clone(),
                    start_ms: s.start_ms,
                    end_ms: s.end_ms,
                    author: s.author.clone(),
                    comment: s.comment.clone(),
                })
                .collect(),
            windows: self
                .alerting
                .windows
                .iter()
                .map(|w| (w.name.clone(), w.is_open(now_ms)))
                .collect(),
        }
    }

    pub(super) fn acknowledge(&mut self, key: &str, by: &str, now_ms: u64) -> Answer {
        let Some(action) = self.alerting.alerts.acknowledge(key, by) else {
            return Answer::Error {
                message: format!("no active alert {key:?}"),
            };
        };
        self.act(vec![action], now_ms);
        let host = key.split_once('/').map_or("", |(h, _)| h).to_string();
        let text = format!("{key} acknowledged by {by}");
        self.event(now_ms, &host, text.clone());
        Answer::Done { message: text }
    }

    pub(super) fn put_setting(
        &mut self,
        kind: String,
        name: String,
        value: Option<serde_json::Value>,
    ) -> Answer {
        if !crate::settings::CLIENT_KINDS.contains(&kind.as_str()) {
            return Answer::Error {
                message: format!("no settings of kind {kind:?}"),
            };
        }
        match self.settings.put(&kind, &name, value) {
            Ok(value) => {
                self.write(store::Write::Setting {
                    kind: kind.clone(),
                    name: name.clone(),
                    value,
                });
                self.routing_changed |= kind == "user";
                Answer::Done {
                    message: format!("{kind} setting of {name} stored"),
                }
            }
            Err(message) => Answer::Error { message },
        }
    }

    /// The counters, with the figures that are read rather than counted.
    pub(super) fn counters_now(&self) -> BTreeMap<String, u64> {
        let mut counters = self.counters.clone();
        counters.insert("hosts".into(), self.hosts.len() as u64);
        counters.insert("deadlines".into(), self.liveness.pending() as u64);
        counters.insert("alerts".into(), self.alerting.alerts.len() as u64);
        counters.insert("alerts_refused".into(), self.alerting.alerts.refused);
        counters.insert("outbox_pending".into(), self.outbox.len() as u64);
        counters.insert("plugin_bytes".into(), self.plugin_bytes as u64);
        if let Some(store) = &self.store {
            let dropped = store.dropped.load(std::sync::atomic::Ordering::Relaxed);
            let failed = store.failed.load(std::sync::atomic::Ordering::Relaxed);
            counters.insert("store_writes_dropped".into(), dropped);
            counters.insert("store_batches_failed".into(), failed);
        }
        counters
    }
}
