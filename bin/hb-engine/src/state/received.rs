//! What the receiver reports: datagrams refused, the kernel's drops, and each host's
//! messages (heartbeats, plugin reports, boot and shutdown notices, free text and command
//! results), applied to the host and its liveness.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use hb_ipc::edge::{Change, EngineToReceiver, ReceiverToEngine};
use hb_proto::message::{ClientMessage, Heartbeat, Notice, PluginData, TextMessage};

use super::*;

impl State {
    pub(super) fn is_dropped(&self, host: &str) -> bool {
        self.config
            .as_ref()
            .is_some_and(|c| c.drophosts.iter().any(|d| d == host))
    }

    /// Applies a report from the receiver.
    pub fn received(&mut self, msg: ReceiverToEngine) {
        // Never ahead of now: what was heard would stay ahead of the wall clock (a time
        // from a peer gone wrong, or the clock stepped back), and a backlog would go unseen.
        let now_ms = hb_ipc::now_ms();
        let heard = match &msg {
            ReceiverToEngine::Received { received_ms, .. }
            | ReceiverToEngine::Rejected { received_ms, .. } => Some(*received_ms),
            ReceiverToEngine::Drained { up_to_ms } => Some(*up_to_ms),
            ReceiverToEngine::Lost { .. } => None,
        };
        if let Some(at) = heard {
            self.heard.advance(at.min(now_ms));
        }
        match msg {
            ReceiverToEngine::Drained { .. } => {}
            ReceiverToEngine::Lost { count, at_ms } => self.server_lost(count, at_ms),
            ReceiverToEngine::Rejected {
                source,
                received_ms,
                reason,
                detail,
            } => {
                // Counter names are ours: a reason that is not a plain name is "other".
                let plain = reason.len() <= 32
                    && !reason.is_empty()
                    && reason.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
                let reason = if plain { reason } else { "other".to_string() };
                let received_ms = received_ms.min(now_ms.saturating_add(60_000));
                self.count(&format!("rejected_{reason}"));
                tracing::debug!(%source, reason, detail, "Datagram rejected by the receiver.");
                self.rejection_event(source, received_ms, reason, &detail);
            }
            ReceiverToEngine::Received {
                host,
                source,
                received_ms,
                signed,
                message,
            } => {
                if self.is_dropped(&host) {
                    // The receiver drops these; this catches a reload racing a datagram.
                    self.count("dropped_host");
                    return;
                }
                // A check is fed by pings to its UUID, never by a datagram naming it.
                if self.is_check(&host) {
                    self.count("datagrams_for_checks");
                    return;
                }
                // The receiver's clock is ours, but a time far ahead would stall deadlines.
                let received_ms = received_ms.min(now_ms.saturating_add(60_000));
                let parsed = hb_proto::datagram::parse_client_text(message.get());
                let message = match parsed {
                    Ok(m) => m,
                    Err(e) => {
                        // The receiver validated it; this means the two disagree.
                        tracing::error!(host, error = %e, "Receiver forwarded an invalid message.");
                        self.count("invalid_forwarded");
                        return;
                    }
                };
                self.count(received_counter(message.id()));
                if self.apply(&host, source, received_ms, signed, message) {
                    self.follow_dns(&host, None);
                }
            }
        }
    }

    /// The kernel dropped `count` datagrams, the last before `at_ms`: a host is overdue or
    /// down only after a whole such period without a loss (liveness::Liveness::server_lost).
    /// One event a minute at most says so.
    pub(super) fn server_lost(&mut self, count: u64, at_ms: u64) {
        // Never ahead of now: a time far ahead would hold every host up.
        let at_ms = at_ms.min(hb_ipc::now_ms());
        self.liveness.server_lost(at_ms);
        hb_ipc::add_to_counter(&mut self.counters, "server_dropped", count);
        if let Some(text) = self.intake.lost(count, at_ms) {
            self.event(at_ms, "*", text);
        }
    }

    /// Makes a rejection an event, sparingly (intake::Intake::rejected).
    pub(super) fn rejection_event(
        &mut self,
        source: SocketAddr,
        now_ms: u64,
        reason: String,
        detail: &str,
    ) {
        match self.intake.rejected(source, now_ms, reason, detail) {
            Rejection::Event(text) => self.event(now_ms, &source.ip().to_string(), text),
            Rejection::Suppressed => self.count("rejection_events_suppressed"),
            Rejection::Held => {}
        }
    }

    /// Applies one valid message; false if it was refused.
    pub(super) fn apply(
        &mut self,
        host: &str,
        source: SocketAddr,
        received_ms: u64,
        signed: bool,
        message: ClientMessage,
    ) -> bool {
        if !self.admit(host, source, received_ms, signed) {
            return false;
        }
        // Any message shows the host alive; one first seen through a plugin report or a
        // notice is timed from it, like from a heartbeat.
        let timed_by_it = !matches!(
            message,
            ClientMessage::Heartbeat(_) | ClientMessage::Shutdown(_)
        );
        self.seen(host, source, received_ms, signed, timed_by_it);
        match message {
            ClientMessage::Heartbeat(h) => self.heard_heartbeat(host, h, received_ms),
            ClientMessage::Plugin(p) => return self.heard_plugin(host, p, received_ms),
            ClientMessage::Boot(n) => self.heard_notice(host, n, true, received_ms),
            ClientMessage::Shutdown(n) => self.heard_notice(host, n, false, received_ms),
            ClientMessage::Message(m) => self.heard_message(host, m, received_ms),
        }
        true
    }

    /// Makes room for a host first heard from: false when there is none (`max_hosts`).
    pub(super) fn admit(
        &mut self,
        host: &str,
        source: SocketAddr,
        received_ms: u64,
        signed: bool,
    ) -> bool {
        if self.hosts.contains_key(host) {
            return true;
        }
        if self.hosts.len() >= self.host_limit {
            self.count("hosts_refused");
            return false;
        }
        self.hosts.insert(
            host.to_string(),
            Host {
                last_seen_ms: received_ms,
                address: source,
                announced_interval: None,
                heartbeats: 0,
                rtt_ms: None,
                version: None,
                signed,
                plugins: BTreeMap::new(),
                last_notice_seq: None,
                unsaved: false,
                fresh: true,
            },
        );
        self.event(received_ms, host, format!("{host} is new, from {source}"));
        true
    }

    /// What every message tells of its host: where it is, that it is alive, and whether it
    /// signs.
    pub(super) fn seen(
        &mut self,
        host: &str,
        source: SocketAddr,
        received_ms: u64,
        signed: bool,
        timed_by_it: bool,
    ) {
        let Some(entry) = self.hosts.get_mut(host) else {
            return;
        };
        // A new source port is routine (every client restart, NAT); a new address is an
        // event, which the DNS updater follows.
        let moved = (entry.address.ip() != source.ip()).then(|| {
            format!(
                "{host} moved from {} to {}",
                entry.address.ip(),
                source.ip()
            )
        });
        entry.address = source;
        entry.fresh |= moved.is_some();
        entry.last_seen_ms = received_ms;
        entry.fresh |= entry.signed != signed;
        entry.signed = signed;
        // Its row is written once per second, not once per datagram: at a fleet's rate the
        // store's queue and the writer's wake-ups cost more than everything else. A crash
        // loses at most a second of last-seen times, and the next heartbeat brings them.
        entry.unsaved = true;
        if let Some(text) = moved {
            self.event(received_ms, host, text);
        }
        // Marked before any state change below, which sends the whole host and unmarks it.
        if !self.dirty.contains(host) {
            self.dirty.insert(host.to_string());
        }
        if timed_by_it && self.liveness.state(host).is_none() {
            let timing = self.timing(host);
            self.liveness.heartbeat(host, received_ms, timing);
        }
    }

    pub(super) fn heard_heartbeat(&mut self, host: &str, h: Heartbeat, received_ms: u64) {
        let Some(entry) = self.hosts.get_mut(host) else {
            return;
        };
        entry.heartbeats += 1;
        entry.fresh |= (h.interval.is_some() && h.interval != entry.announced_interval)
            || (h.ver.is_some() && h.ver != entry.version);
        entry.announced_interval = h.interval.or(entry.announced_interval);
        entry.rtt_ms = h.rtt.or(entry.rtt_ms);
        entry.version = h.ver.or(entry.version.take());
        if let Some(rtt_ms) = h.rtt {
            self.write(store::Write::Rtt {
                host: host.to_string(),
                at_ms: received_ms,
                rtt_ms,
            });
            self.check_rtt(host, rtt_ms, received_ms);
        }
        let timing = self.timing(host);
        let before = self.liveness.state(host);
        let change = self.liveness.heartbeat(host, received_ms, timing);
        if change.is_none() && self.alerting.alerts.has_flaps() {
            let actions = self
                .alerting
                .alerts
                .note_ok(&format!("{host}/down"), received_ms);
            self.act(actions, received_ms);
        }
        // The new state is stored ahead of the recovery, which goes out only after the batch
        // holding both is committed.
        if before != Some(liveness::State::Up) {
            self.host_changed(host);
        }
        match change {
            Some(liveness::Change::Recovered { silent_ms }) => {
                self.recovered(host, received_ms, silent_ms);
            }
            // A down alert whose end was lost (a store write that failed) ends now.
            _ if !self.alerting.alerts.is_empty()
                && self.alerting.alerts.get(&format!("{host}/down")).is_some() =>
            {
                self.recovered(host, received_ms, 0);
            }
            _ => {}
        }
    }

    /// Keeps a plugin report within the bounds per host and in all; false if refused.
    pub(super) fn heard_plugin(&mut self, host: &str, p: PluginData, received_ms: u64) -> bool {
        let Some(entry) = self.hosts.get_mut(host) else {
            return false;
        };
        let first = entry.plugins.is_empty();
        let json = serde_json::to_string(&p.data).unwrap_or_default();
        let size = json.len();
        let held: usize = entry.plugins.values().map(|(_, d)| d.len()).sum();
        let replaced = entry.plugins.get(&p.plugin).map_or(0, |(_, d)| d.len());
        let new_plugin = !entry.plugins.contains_key(&p.plugin);
        if (held - replaced).saturating_add(size) > MAX_PLUGIN_BYTES
            || (new_plugin && entry.plugins.len() >= MAX_PLUGINS)
            || (self.plugin_bytes - replaced).saturating_add(size) > MAX_PLUGIN_BYTES_TOTAL
        {
            self.count("plugin_data_refused");
            return false;
        }
        self.plugin_bytes = self.plugin_bytes - replaced + size;
        entry.plugins.insert(
            p.plugin.clone(),
            (received_ms, json.clone().into_boxed_str()),
        );
        self.write(store::Write::Sample {
            host: host.to_string(),
            plugin: p.plugin.clone(),
            at_ms: received_ms,
            data: json,
        });
        self.check_plugin(host, &p.plugin, &p.data, received_ms);
        self.changes.push(Change::Sample {
            host: host.to_string(),
            plugin: p.plugin,
            time_ms: received_ms,
        });
        if first {
            self.to_receiver.push(EngineToReceiver::HostHasData {
                host: host.to_string(),
            });
        }
        true
    }

    /// A boot or shutdown notice; one sent again (the same `seq`) is counted, not news.
    pub(super) fn heard_notice(&mut self, host: &str, n: Notice, boot: bool, received_ms: u64) {
        let Some(entry) = self.hosts.get_mut(host) else {
            return;
        };
        if n.header.seq.is_some() && entry.last_notice_seq == n.header.seq {
            self.count("duplicate_notice");
            return;
        }
        entry.last_notice_seq = n.header.seq;
        if boot {
            entry.fresh |= n.ver.is_some() && n.ver != entry.version;
            entry.version = n.ver.or(entry.version.take());
            self.event(received_ms, host, format!("{host} rebooted"));
            return;
        }
        let timing = self.timing(host);
        let change = self.liveness.shutdown(host, received_ms, timing);
        self.event(received_ms, host, format!("{host} is shutting down"));
        self.host_changed(host);
        if let Some(liveness::Change::Recovered { silent_ms }) = change {
            self.recovered(host, received_ms, silent_ms);
        }
    }

    /// A free-text message, or a command's result (an event once).
    pub(super) fn heard_message(&mut self, host: &str, m: TextMessage, received_ms: u64) {
        let answered = m.cmd.and_then(|id| {
            let queue = self.commands.answered(host, id)?;
            let host = host.to_string();
            Some(EngineToReceiver::Queue { host, queue })
        });
        let text = match (m.cmd, m.exit) {
            (Some(id), Some(code)) => format!("{host}: command {id} exited {code}: {}", m.text),
            (Some(id), None) => format!("{host}: command {id}: {}", m.text),
            _ => format!("{host}: {}", m.text),
        };
        // A result can arrive more than once (the host resends it while the command still
        // rides in ACKs); it is an event once.
        if let Some(id) = m.cmd
            && !self.commands.first_result(id, answered.is_some())
        {
            self.count("duplicate_result");
            return;
        }
        self.event(received_ms, host, text);
        self.to_receiver.extend(answered);
    }
}
