//! The live feed's fan-out, and every host as the engine last reported it. Changes that
//! arrive together go out together (what is queued when the first is taken, nothing waits
//! for more), with only the newest state of each host; each is serialized once and fanned
//! out through a broadcast ring of batches, so sending never waits for a client. A client
//! that falls a ring behind is dropped by `/ws` (ws.rs), and the engine never slows for it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use axum::extract::ws::Utf8Bytes;
use hb_ipc::edge::{Change, HostSummary};
use hb_web::access::{HostAccess, Viewer};
use serde_json::json;
use tokio::sync::broadcast;

use crate::views::{alert_json, event_json, host_json};

/// Batches held for slow clients; one that falls further behind is dropped.
const RING: usize = 1024;
/// Changes in one batch at most.
pub const BATCH_MAX: usize = 4096;

/// Changes that arrived together, each serialized once with who may see it, and the whole
/// batch as one frame for viewers who see everything.
#[derive(Debug)]
pub struct Update {
    parts: Vec<Part>,
    /// `[part, part, ...]`, shared by every client that sees everything (cloning it is a
    /// reference count, not a copy).
    all: Utf8Bytes,
}

/// One change in a batch.
#[derive(Debug)]
struct Part {
    /// Who may see it; `None`: everyone (a resync).
    audience: Option<HostAccess>,
    /// The host, for a host's new state or its removal.
    host: Option<(String, HostChange)>,
    json: String,
}

#[derive(Debug, PartialEq, Eq)]
enum HostChange {
    State,
    Dropped,
}

impl Update {
    /// The frame for `viewer`, if anything in the batch is theirs. `seen` (a non-admin's
    /// hosts on their page) is kept current: a host whose roles no longer include them is
    /// `dropped` for them.
    pub fn frame_for(&self, viewer: &Viewer, seen: &mut HashSet<String>) -> Option<Utf8Bytes> {
        if viewer.is_admin() {
            return Some(self.all.clone());
        }
        let mut mine: Vec<std::borrow::Cow<'_, str>> = Vec::new();
        for part in &self.parts {
            let visible = part
                .audience
                .as_ref()
                .is_none_or(|a| viewer.role_in(a).is_some());
            match (&part.host, visible) {
                (Some((name, HostChange::State)), true) => {
                    seen.insert(name.clone());
                }
                (Some((name, HostChange::Dropped)), true) => {
                    seen.remove(name);
                }
                (Some((name, HostChange::State)), false) if seen.remove(name) => {
                    mine.push(json!({"type": "dropped", "host": name}).to_string().into());
                    continue;
                }
                _ => {}
            }
            if visible {
                mine.push(part.json.as_str().into());
            }
        }
        (!mine.is_empty()).then(|| format!("[{}]", mine.join(",")).into())
    }
}

/// The fan-out, and every host as the engine last reported it. The engine reports every
/// change of a host (figures as a `Seen` at most every 25 ms), so after one full list the web keeps
/// the list itself and host lists, snapshots and `/metrics` cost no engine round trip.
pub struct Live {
    tx: broadcast::Sender<Arc<Update>>,
    hosts: RwLock<HostCache>,
    clients: std::sync::atomic::AtomicUsize,
}

/// The hosts, complete once a full list arrived after the last resync.
#[derive(Default)]
struct HostCache {
    /// Hashed: every heartbeat the engine reports is looked up here, and in an ordered map
    /// of names sharing a prefix each lookup was dozens of string comparisons.
    by_name: HashMap<String, HostSummary>,
    complete: bool,
    /// While a full list is being fetched: hosts changed since, newer than the list.
    touched: Option<HashSet<String>>,
}

impl Default for Live {
    fn default() -> Live {
        Live {
            tx: broadcast::channel(RING).0,
            hosts: RwLock::default(),
            clients: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

impl Live {
    /// Clients connected now.
    pub fn clients(&self) -> usize {
        self.clients.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn client_came(&self) {
        self.clients
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn client_left(&self) {
        self.clients
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The batches from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Update>> {
        self.tx.subscribe()
    }

    fn access_of(&self, host: &str) -> HostAccess {
        self.hosts
            .read()
            .ok()
            .and_then(|c| c.by_name.get(host).map(HostAccess::of))
            .unwrap_or_default()
    }

    /// Every host sorted by name, if the list is complete.
    pub fn list(&self) -> Option<Vec<HostSummary>> {
        let cache = self.hosts.read().ok()?;
        if !cache.complete {
            return None;
        }
        let mut hosts: Vec<HostSummary> = cache.by_name.values().cloned().collect();
        hosts.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Some(hosts)
    }

    /// The engine (re)connected or changes were left out: the list is not to be trusted
    /// until a full one arrives ([`Live::refreshed`]).
    pub fn begin_refresh(&self) {
        if let Ok(mut c) = self.hosts.write() {
            c.complete = false;
            c.touched = Some(HashSet::new());
        }
    }

    /// A full list from the engine, asked for after [`Live::begin_refresh`]; hosts changed
    /// since keep their newer state.
    pub fn refreshed(&self, hosts: Vec<HostSummary>) {
        let Ok(mut c) = self.hosts.write() else {
            return;
        };
        let touched = c.touched.take().unwrap_or_default();
        let listed: HashSet<String> = hosts.iter().map(|h| h.name.clone()).collect();
        c.by_name
            .retain(|name, _| listed.contains(name) || touched.contains(name));
        for h in hosts {
            if !touched.contains(&h.name) {
                c.by_name.insert(h.name.clone(), h);
            }
        }
        c.complete = true;
    }

    fn remember(&self, host: &HostSummary) {
        if let Ok(mut c) = self.hosts.write() {
            if let Some(t) = c.touched.as_mut() {
                t.insert(host.name.clone());
            }
            c.by_name.insert(host.name.clone(), host.clone());
        }
    }

    /// Applies a `Seen` to the host held and gives `then` the host as it is now; `None` if
    /// it is not held (a refresh under way brings it).
    fn seen<R>(
        &self,
        host: &str,
        figures: (u64, u64, Option<f64>),
        then: impl FnOnce(&HostSummary) -> R,
    ) -> Option<R> {
        let mut c = self.hosts.write().ok()?;
        let h = c.by_name.get_mut(host)?;
        apply_seen(h, figures);
        Some(then(h))
    }

    fn forget(&self, host: &str) -> HostAccess {
        let Ok(mut c) = self.hosts.write() else {
            return HostAccess::default();
        };
        if let Some(t) = c.touched.as_mut() {
            t.insert(host.to_string());
        }
        c.by_name
            .remove(host)
            .map(|h| HostAccess::of(&h))
            .unwrap_or_default()
    }

    /// Sends changes that arrived together as one batch, keeping only the newest state of
    /// each host.
    pub fn publish(&self, changes: Vec<Change>) {
        // Nobody watches: keep the host list current and render nothing. Rendering every
        // host heard from took the web 7 µs a host (42 % of a core at 60,000 per second).
        if self.tx.receiver_count() == 0 {
            // In order: a batch's whole host comes before the figures that follow it.
            for change in &changes {
                self.hold(change);
            }
            return;
        }
        let parts: Vec<Part> = newest_per_host(changes)
            .into_iter()
            .filter_map(|c| self.part(c))
            .collect();
        if parts.is_empty() {
            return;
        }
        let all = format!(
            "[{}]",
            parts
                .iter()
                .map(|p| p.json.as_str())
                .collect::<Vec<_>>()
                .join(",")
        )
        .into();
        // No receiver is fine: nobody watches.
        let _ = self.tx.send(Arc::new(Update { parts, all }));
    }

    /// Applies a change to the host list only.
    fn hold(&self, change: &Change) {
        match change {
            Change::Host { host } => self.remember(host),
            Change::Seen {
                host,
                last_seen_ms,
                heartbeats,
                rtt_ms,
            } => {
                self.seen(host, (*last_seen_ms, *heartbeats, *rtt_ms), |_| ());
            }
            Change::Dropped { host } => {
                self.forget(host);
            }
            _ => {}
        }
    }

    /// One change as an update, with who may see it.
    fn part(&self, change: Change) -> Option<Part> {
        // Clients see a host's figures as a whole host, whichever way they came.
        let change = match change {
            Change::Seen {
                host,
                last_seen_ms,
                heartbeats,
                rtt_ms,
            } => Change::Host {
                host: self.seen(
                    &host,
                    (last_seen_ms, heartbeats, rtt_ms),
                    HostSummary::clone,
                )?,
            },
            Change::Host { host } => {
                self.remember(&host);
                Change::Host { host }
            }
            change => change,
        };
        let host = match &change {
            Change::Host { host } => Some((host.name.clone(), HostChange::State)),
            Change::Dropped { host } => Some((host.clone(), HostChange::Dropped)),
            _ => None,
        };
        let (audience, json) = match change {
            Change::Host { host } => {
                let access = HostAccess::of(&host);
                let mut value = host_json(&host, None);
                if let Some(o) = value.as_object_mut() {
                    o.remove("role");
                }
                (Some(access), json!({"type": "host", "host": value}))
            }
            Change::Sample {
                host,
                plugin,
                time_ms,
            } => (
                Some(self.access_of(&host)),
                json!({"type": "sample", "host": host, "plugin": plugin, "time": time_ms as f64 / 1000.0}),
            ),
            Change::Event { event } => (
                Some(self.access_of(&event.host)),
                json!({"type": "event", "event": event_json(&event)}),
            ),
            Change::Alert { alert } => (
                Some(self.access_of(&alert.host)),
                json!({"type": "alert", "alert": alert_json(&alert)}),
            ),
            Change::Dropped { host } => {
                let access = self.forget(&host);
                (Some(access), json!({"type": "dropped", "host": host}))
            }
            Change::Resync {} => (None, json!({"type": "resync"})),
            // Made a host above.
            Change::Seen { .. } => return None,
        };
        Some(Part {
            audience,
            host,
            json: json.to_string(),
        })
    }
}

/// A `Seen`'s figures (last seen, heartbeats, RTT) applied to a whole host.
fn apply_seen(h: &mut HostSummary, (last_seen_ms, heartbeats, rtt_ms): (u64, u64, Option<f64>)) {
    h.last_seen_ms = last_seen_ms;
    h.heartbeats = heartbeats;
    h.rtt_ms = rtt_ms;
}

/// Keeps one state per host from a batch, where the newest was: a whole host replaces an
/// older one, and the figures of a `Seen` are folded into a whole host before it (a new
/// host's summary and its first figures often come in one batch; the `Seen` alone would
/// be about a host not held yet).
fn newest_per_host(changes: Vec<Change>) -> Vec<Change> {
    let mut out: Vec<Option<Change>> = Vec::with_capacity(changes.len());
    let mut at: HashMap<String, usize> = HashMap::new();
    for change in changes {
        let name = match &change {
            Change::Host { host } => host.name.clone(),
            Change::Seen { host, .. } => host.clone(),
            _ => {
                out.push(Some(change));
                continue;
            }
        };
        let earlier = at.get(&name).copied();
        if let (
            Some(i),
            Change::Seen {
                last_seen_ms,
                heartbeats,
                rtt_ms,
                ..
            },
        ) = (earlier, &change)
            && let Some(Change::Host { host }) = out[i].as_mut()
        {
            apply_seen(host, (*last_seen_ms, *heartbeats, *rtt_ms));
            continue;
        }
        if let Some(i) = earlier {
            out[i] = None;
        }
        at.insert(name, out.len());
        out.push(Some(change));
    }
    out.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, heartbeats: u64) -> HostSummary {
        HostSummary {
            name: name.into(),
            last_seen_ms: 0,
            address: "127.0.0.1:1".parse().expect("address"),
            interval: 10,
            heartbeats,
            rtt_ms: None,
            version: None,
            signed: false,
            state: "up".into(),
            state_since_ms: 0,
            watched: false,
            owner: None,
            managers: Vec::new(),
            monitors: Vec::new(),
            dyn_dns: false,
        }
    }

    #[test]
    fn the_host_list_is_kept_and_a_refresh_keeps_newer_changes() {
        let live = Live::default();
        assert!(live.list().is_none(), "not complete before a full list");
        live.begin_refresh();
        // While the full list is on its way, b changes and c is dropped.
        live.publish(vec![
            Change::Host { host: host("b", 5) },
            Change::Dropped { host: "c".into() },
        ]);
        live.refreshed(vec![host("a", 1), host("b", 4), host("c", 1)]);
        let list = live.list().expect("complete");
        let got: Vec<(String, u64)> = list
            .iter()
            .map(|h| (h.name.clone(), h.heartbeats))
            .collect();
        assert_eq!(got, [("a".to_string(), 1), ("b".to_string(), 5)]);
        // Later changes keep it current; a resync makes it incomplete again.
        live.publish(vec![Change::Host { host: host("d", 1) }]);
        assert_eq!(live.list().map(|l| l.len()), Some(3));
        live.begin_refresh();
        assert!(live.list().is_none());
    }

    #[test]
    fn seen_figures_update_the_host_held_and_reach_clients_as_the_whole_host() {
        let live = Live::default();
        live.refreshed(vec![host("a", 1)]);
        let mut rx = live.tx.subscribe();
        live.publish(vec![
            Change::Seen {
                host: "a".into(),
                last_seen_ms: 5_000,
                heartbeats: 2,
                rtt_ms: Some(0.5),
            },
            // Not held: left for the next refresh, never invented.
            Change::Seen {
                host: "zz".into(),
                last_seen_ms: 1,
                heartbeats: 1,
                rtt_ms: None,
            },
        ]);
        let list = live.list().expect("complete");
        assert_eq!(list.len(), 1);
        assert_eq!(
            (list[0].last_seen_ms, list[0].heartbeats, list[0].rtt_ms),
            (5_000, 2, Some(0.5))
        );
        let update = rx.try_recv().expect("an update");
        assert_eq!(update.parts.len(), 1);

        let sent: serde_json::Value = serde_json::from_str(&update.all).expect("json");
        assert_eq!(sent[0]["type"], "host");
        assert_eq!(sent[0]["host"]["name"], "a");
        assert_eq!(sent[0]["host"]["heartbeats"], 2);
        assert_eq!(sent[0]["host"]["state"], "up");
        // A new host and its first figures in one batch: one whole host, with the figures.
        live.publish(vec![
            Change::Host { host: host("b", 1) },
            Change::Event {
                event: hb_ipc::edge::EventSummary {
                    time_ms: 1,
                    host: "b".into(),
                    msg: "b is new".into(),
                },
            },
            Change::Seen {
                host: "b".into(),
                last_seen_ms: 7_000,
                heartbeats: 3,
                rtt_ms: None,
            },
        ]);
        let held = live.list().expect("complete");
        let b = held.iter().find(|h| h.name == "b").expect("b held");
        assert_eq!((b.last_seen_ms, b.heartbeats), (7_000, 3));
        let update = rx.try_recv().expect("an update");
        assert_eq!(update.parts.len(), 2);
        // With nobody watching, the list is kept all the same.
        drop(rx);
        live.publish(vec![
            Change::Seen {
                host: "b".into(),
                last_seen_ms: 8_000,
                heartbeats: 4,
                rtt_ms: None,
            },
            Change::Host { host: host("c", 1) },
            Change::Dropped { host: "a".into() },
        ]);
        let names: Vec<(String, u64)> = live
            .list()
            .expect("complete")
            .iter()
            .map(|h| (h.name.clone(), h.heartbeats))
            .collect();
        assert_eq!(names, [("b".to_string(), 4), ("c".to_string(), 1)]);
    }
}
