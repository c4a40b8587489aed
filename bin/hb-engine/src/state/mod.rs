//! The engine's state: hosts, their liveness, alerts, the notification outbox, events and
//! command queues. Pure apart from the store writer it feeds: the event loop in `main.rs`
//! passes messages and the time in, and drains what is to be sent out
//! ([`State::to_receiver`], [`State::changes`], [`State::ready`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;

use hb_ipc::config::EngineConfig;
use hb_ipc::edge::{
    AlertSummary, Answer, Change, ChannelFailure, DnsOutcome, EngineToReceiver, EventSummary,
    HostSummary, Notification,
};

mod alerting;
mod checks;
mod commands;
mod dns_records;
mod host_settings;
mod intake;
mod outbox;
mod query;
mod received;

use alerting::Alerting;
use commands::Commands;
use intake::{Intake, LogBudget, Rejection};
use outbox::Outbox;

use crate::alerts::{Action, Alert, Alerts, Kind};
use crate::liveness::{self, Liveness};
use crate::store;
use crate::storm::{Decision, Storms};
use hb_rules::silence::{Silence, Window};
use hb_rules::{HostRules, Level, Rules};

/// Plugins kept per host, and bytes of plugin data per host and in all (as JSON text, the
/// form it is kept in): hostile senders cannot make the engine hold more than this.
const MAX_PLUGINS: usize = 64;
const MAX_PLUGIN_BYTES: usize = 1 << 20;
const MAX_PLUGIN_BYTES_TOTAL: usize = 512 << 20;
/// Metrics with a threshold checked per plugin report at most.
const MAX_FINDINGS: usize = 1000;
/// Counters held at most before per-channel counts are lumped together.
const MAX_CHANNEL_COUNTERS: usize = 4096;
/// Events kept in memory for `/api/0/messages` (the original shows 30).
pub const EVENTS_KEPT: usize = 30;

struct Host {
    last_seen_ms: u64,
    address: SocketAddr,
    announced_interval: Option<u32>,
    heartbeats: u64,
    rtt_ms: Option<f64>,
    version: Option<String>,
    signed: bool,
    /// Latest data per plugin: when it came, and the JSON text (parsed again only when
    /// asked for).
    plugins: BTreeMap<String, (u64, Box<str>)>,
    /// `seq` of the last boot or shutdown notice, so a retransmitted one counts once.
    last_notice_seq: Option<u64>,
    /// Its row in the store is older than these figures (see [`State::save_hosts`]). A
    /// flag, not a set of names: a set held a copy of every name heard from in a second.
    unsaved: bool,
    /// More changed than a `Change::Seen` carries (new, moved, version, interval,
    /// signing, access): the web gets the whole summary at the next flush.
    fresh: bool,
}

/// One thing that happened, for the event list.
struct Event {
    at_ms: u64,
    host: String,
    text: String,
}

/// What a query needs: answered from memory, or from the store's history.
#[derive(Debug)]
pub enum Reply {
    /// The answer.
    Now(Answer),
    /// Ask the store's reader.
    Store(hb_ipc::edge::Query),
}

/// The engine's state.
pub struct State {
    config: Option<EngineConfig>,
    /// By name. Hashed: a heartbeat looks its host up several times, and in an ordered map
    /// of names sharing a prefix (`web-0001`...) each lookup was some thirty string
    /// comparisons (a sixth of the engine's time at 80,000/s). Lists are sorted when asked.
    hosts: HashMap<String, Host>,
    events: VecDeque<Event>,
    counters: BTreeMap<String, u64>,
    /// Commands waiting for each host, and the results that arrived.
    commands: Commands,
    liveness: Liveness,
    /// What has been heard: deadlines are judged at it (liveness::Heard).
    heard: liveness::Heard,
    /// Alerts, storms, silences, windows and the rules, with what they remember.
    alerting: Alerting,
    /// Notifications not yet reported done by the notifier.
    outbox: Outbox,
    /// Bytes of plugin data held, all hosts.
    plugin_bytes: usize,
    /// The store's writer thread.
    store: Option<store::Writer>,
    /// Whether anything was written since the last answer (see `answer_when_stored`).
    wrote: std::sync::atomic::AtomicBool,
    /// Hosts whose figures changed since the last [`State::flush_changes`].
    dirty: HashSet<String>,
    /// The hosts [`State::save_hosts`] is writing, last first: gathered when the last round
    /// is done, so a round the writer had no room for goes on where it stopped.
    save_round: Vec<String>,
    /// Hosts held at most.
    host_limit: usize,
    /// Rejected datagrams and the server's own losses, told as events sparingly.
    intake: Intake,
    /// Which DNS records to ask hb-dnsupdate for; its `out` is drained like `to_receiver`.
    pub dns: crate::dns::DnsFollow,
    /// Settings changed through the API.
    settings: crate::settings::Settings,
    /// Users' channel choices changed: the notifier must hear them.
    pub routing_changed: bool,
    /// Checks' open runs and last pings.
    check_runs: checks::CheckRuns,
    /// For the receiver, in order.
    pub to_receiver: Vec<EngineToReceiver>,
    /// For the web's live views, in order.
    pub changes: Vec<Change>,
    /// Notifications to hand to the notifier now (without a store; with one, the writer
    /// hands them on once they are committed).
    pub ready: Vec<Notification>,
    /// Per-host lines logged in the current second, and those left out.
    log_budget: LogBudget,
}

impl Default for State {
    fn default() -> Self {
        State::new(hb_ipc::now_ms())
    }
}

/// A host's row for the store.
fn host_row(live: &Liveness, name: &str, h: &Host) -> store::Write {
    let (state, since) = live
        .state_since(name)
        .unwrap_or((liveness::State::Up, h.last_seen_ms));
    store::Write::Host(store::StoredHost {
        name: name.to_string(),
        last_seen_ms: h.last_seen_ms,
        address: h.address.to_string(),
        interval: h.announced_interval,
        version: h.version.clone(),
        rtt_ms: h.rtt_ms,
        signed: h.signed,
        state: state.name().into(),
        state_since_ms: since,
    })
}

/// Writes a host's row if its figures are newer than it; false if the writer had no room
/// (only without `wait`).
fn save_row(store: &store::Writer, live: &Liveness, name: &str, h: &mut Host, wait: bool) -> bool {
    if !h.unsaved {
        return true;
    }
    let row = host_row(live, name, h);
    if wait {
        store.send_always(row);
    } else if !store.offer(row) {
        return false;
    }
    h.unsaved = false;
    true
}

/// The counter of received messages of one `ID`, named without an allocation per datagram.
fn received_counter(id: &str) -> &'static str {
    match id {
        "HTB" => "received_HTB",
        "PLG" => "received_PLG",
        "BOT" => "received_BOT",
        "SHD" => "received_SHD",
        "MSG" => "received_MSG",
        _ => "received_other",
    }
}

impl State {
    /// Empty state; ids are drawn from `now_ms` so they stay unique across restarts.
    pub fn new(now_ms: u64) -> State {
        State {
            config: None,
            hosts: HashMap::new(),
            events: VecDeque::new(),
            counters: BTreeMap::new(),
            commands: Commands::new(now_ms),
            liveness: Liveness::default(),
            heard: liveness::Heard::default(),
            alerting: Alerting::default(),
            outbox: Outbox::new(now_ms),
            plugin_bytes: 0,
            store: None,
            wrote: std::sync::atomic::AtomicBool::new(false),
            check_runs: checks::CheckRuns::default(),
            dirty: HashSet::new(),
            save_round: Vec::new(),
            host_limit: hb_ipc::config::DEFAULT_MAX_HOSTS as usize,
            intake: Intake::default(),
            dns: crate::dns::DnsFollow::default(),
            settings: crate::settings::Settings::default(),
            routing_changed: false,
            to_receiver: Vec::new(),
            changes: Vec::new(),
            ready: Vec::new(),
            log_budget: LogBudget::default(),
        }
    }

    /// Sets how many hosts are held at most (`max_hosts`; the configuration sets it too).
    pub fn set_host_limit(&mut self, limit: usize) {
        self.host_limit = limit;
    }

    /// Applies a configuration; hosts now listed in `drophosts` are dropped.
    pub fn configure(&mut self, config: EngineConfig, now_ms: u64) -> Result<(), String> {
        // The supervisor checked these; a failure here means the two disagree.
        let rules = Rules::parse(
            &config.thresholds,
            &config.threshold_configs,
            &config.default_threshold_config,
        )
        .map_err(|e| e.to_string())?;
        self.alerting.windows =
            hb_rules::silence::parse_windows(&config.maintenance).map_err(|e| e.to_string())?;
        self.alerting.rules = rules;
        self.alerting.host_rules.clear();
        self.alerting.storms.limits = crate::storm::StormLimits {
            enabled: config.storm_detection,
            fraction: config.storm_fraction,
            min_hosts: config.storm_min_hosts as usize,
            window_ms: (config.storm_window * 1000.0) as u64,
        };
        self.alerting.alerts.flap_limits = crate::alerts::FlapLimits {
            enabled: config.flap_detection,
            high: config.flap_high,
            low: config.flap_low,
        };
        if !config.flap_detection {
            // Keys held as flapping notify again.
            self.alerting.alerts.forget_flaps(None);
            self.alerting.flap_noticed.clear();
        }
        self.alerting.bad_templates.clear();
        self.dns.configure(&config);
        let dropped: Vec<String> = config
            .drophosts
            .iter()
            .filter(|h| self.hosts.contains_key(*h))
            .cloned()
            .collect();
        self.host_limit = config.max_hosts as usize;
        self.config = Some(config);
        self.apply_api_checks(true);
        for host in dropped {
            self.drop_host(&host, now_ms, "it is listed in drophosts");
        }
        for host in self.settings.prune_access(self.config.as_ref()) {
            self.write(store::Write::Setting {
                kind: "access".into(),
                name: host.clone(),
                value: None,
            });
            self.event(
                now_ms,
                &host,
                format!("{host}: the roles set through the API gave way to the configuration file, which changed them since"),
            );
            self.host_changed(&host);
        }
        // Owners, roles, watch flags and intervals may have changed for any host: live views
        // read everything again.
        self.changes.push(Change::Resync {});
        Ok(())
    }

    /// Users' channel choices made through the API, for the notifier.
    pub fn user_channels(&self) -> BTreeMap<String, hb_ipc::edge::ChosenChannels> {
        self.settings.user_channels()
    }

    /// Channels defined through the API, for the notifier.
    pub fn api_channels(&self) -> BTreeMap<String, serde_json::Value> {
        self.settings.of("channel")
    }

    /// The configuration in force.
    pub fn config(&self) -> Option<&EngineConfig> {
        self.config.as_ref()
    }

    /// Uses `writer` for everything durable from now on.
    pub fn attach_store(&mut self, writer: store::Writer) {
        self.store = Some(writer);
    }

    /// Stops the store's writer after its last commit.
    pub fn close_store(&mut self) {
        self.save_hosts(true);
        if let Some(store) = self.store.take() {
            store.close();
        }
    }

    /// Sets a counter to a value kept elsewhere.
    pub fn set_counter(&mut self, name: &str, value: u64) {
        self.counters.insert(name.to_string(), value);
    }

    fn count(&mut self, name: &str) {
        hb_ipc::add_to_counter(&mut self.counters, name, 1);
    }

    fn event(&mut self, at_ms: u64, host: &str, text: String) {
        if self.log_budget.take(at_ms) {
            tracing::info!(host, "{text}");
        }
        self.write(store::Write::Event {
            at_ms,
            host: host.to_string(),
            text: text.clone(),
        });
        if self.events.len() == EVENTS_KEPT {
            self.events.pop_front();
        }
        self.changes.push(Change::Event {
            event: EventSummary {
                time_ms: at_ms,
                host: host.to_string(),
                msg: text.clone(),
            },
        });
        self.events.push_back(Event {
            at_ms,
            host: host.to_string(),
            text,
        });
    }

    fn write(&self, write: store::Write) {
        if let Some(store) = &self.store {
            self.wrote.store(true, std::sync::atomic::Ordering::Relaxed);
            store.send(write);
        }
    }

    /// Gives the answer to a query once what it wrote is committed (at once if it wrote
    /// nothing): a change answered is a change that survives a crash.
    pub fn answer_when_stored(&self, answer: Answer, reply: impl FnOnce(Answer) + Send + 'static) {
        let wrote = self.wrote.swap(false, std::sync::atomic::Ordering::Relaxed);
        match &self.store {
            Some(store) if wrote => store.send_always(store::Write::Committed(
                store::WhenCommitted(Box::new(move |stored| {
                    reply(if stored {
                        answer
                    } else {
                        Answer::Error {
                            message: hb_ipc::edge::STORE_FAILED.into(),
                        }
                    });
                })),
            )),
            _ => reply(answer),
        }
    }

    /// Takes in what the store held. Hosts resume their deadlines from their stored last-seen
    /// times; none is reported down before the start-up grace ends.
    pub fn restore(&mut self, mut loaded: store::Loaded, now_ms: u64) {
        // Checks made through the API first: restored hosts need their timing.
        self.settings.load(std::mem::take(&mut loaded.settings));
        self.apply_api_checks(false);
        for h in loaded.hosts {
            if self.is_dropped(&h.name) {
                // Listed in drophosts since it was stored.
                self.write(store::Write::Drop { host: h.name });
                continue;
            }
            let Ok(address) = h.address.parse() else {
                tracing::warn!(
                    host = h.name,
                    address = h.address,
                    "Stored host has a bad address; skipped."
                );
                continue;
            };
            let state = h.state.parse().unwrap_or(liveness::State::Up);
            self.hosts.insert(
                h.name.clone(),
                Host {
                    last_seen_ms: h.last_seen_ms,
                    address,
                    announced_interval: h.interval,
                    heartbeats: 0,
                    rtt_ms: h.rtt_ms,
                    version: h.version,
                    signed: h.signed,
                    plugins: BTreeMap::new(),
                    last_notice_seq: None,
                    unsaved: false,
                    fresh: false,
                },
            );
            let timing = self.timing(&h.name);
            let grace_ms = match self.config.as_ref().and_then(|c| c.startup_grace) {
                Some(seconds) => (seconds * 1000.0) as u64,
                None => timing.down_after(),
            };
            self.liveness.resume(
                &h.name,
                h.last_seen_ms,
                (state, h.state_since_ms),
                timing,
                now_ms + grace_ms,
            );
            if self.is_check(&h.name) {
                self.liveness.fed_by_pings(&h.name);
            }
        }
        for (host, plugin, at_ms, data) in loaded.latest {
            if let Some(h) = self.hosts.get_mut(&host) {
                let data = data.to_string();
                self.plugin_bytes += data.len();
                h.plugins.insert(plugin, (at_ms, data.into_boxed_str()));
            }
        }
        for (at_ms, host, text) in loaded.events {
            self.events.push_back(Event { at_ms, host, text });
        }
        for a in loaded.alerts {
            if !self.hosts.contains_key(&a.host) {
                // Its host is gone (dropped, or unreadable): nothing could ever end it.
                self.write(store::Write::AlertEnded { key: a.key });
                continue;
            }
            let level = Level::parse(&a.level).unwrap_or(Level::Unknown);
            self.alerting.alerts.restore(
                a.key,
                Alert {
                    host: a.host,
                    metric: a.metric,
                    level,
                    since_ms: a.since_ms,
                    opened_ms: a.opened_ms,
                    text: a.text,
                    notified: a.notified,
                    last_notified_ms: a.last_notified_ms,
                    notified_level: a.notified.then_some(level),
                    acknowledged: a.acknowledged,
                    alerted: a
                        .alerted
                        .split(',')
                        .filter(|c| !c.is_empty())
                        .map(str::to_string)
                        .collect(),
                },
            );
        }
        for silence in loaded.silences {
            self.alerting.silences.insert(silence.id, silence);
        }

        self.routing_changed = true;
        self.outbox
            .restore(loaded.outbox, loaded.last_notification_id);
    }

    /// Notifications committed and not yet done, oldest first: handed to the notifier
    /// again when it (re)connects, with their original ids.
    pub fn pending_notifications(&mut self, now_ms: u64) -> Vec<Notification> {
        self.outbox.pending(now_ms)
    }

    /// The store committed these notifications: those still pending go out now.
    pub fn committed(
        &mut self,
        notifications: Vec<Notification>,
        now_ms: u64,
    ) -> Vec<Notification> {
        self.outbox.committed(notifications, now_ms)
    }

    /// Notifications handed over long ago and still not reported done (a report lost on the
    /// way): handed over again.
    pub fn overdue_notifications(&mut self, now_ms: u64) -> Vec<Notification> {
        self.outbox.overdue(now_ms)
    }

    /// Queues a command or update for a host.
    fn queue_command(&mut self, host: String, command: Option<String>) -> Answer {
        if let Err(e) = hb_proto::names::check_host_name(&host) {
            return Answer::Error { message: e };
        }
        if let Some(name) = &command
            && let Err(e) = hb_proto::datagram::check_command_name(name)
        {
            return Answer::Error {
                message: e.to_string(),
            };
        }
        let configured = self
            .config
            .as_ref()
            .is_some_and(|c| c.hosts.contains_key(&host));
        if !self.hosts.contains_key(&host) && !configured {
            return Answer::Error {
                message: format!("no host {host:?}"),
            };
        }
        let (id, queue) = match self.commands.queue(&host, command.clone()) {
            Ok(queued) => queued,
            Err(message) => return Answer::Error { message },
        };
        let what = command.map_or("update".to_string(), |c| format!("command {c:?}"));
        self.event(
            hb_ipc::now_ms(),
            &host,
            format!("{host}: {what} queued as {id}"),
        );
        self.to_receiver
            .push(EngineToReceiver::Queue { host, queue });
        Answer::Queued { id }
    }

    /// Every host's name, in order.
    fn sorted_hosts(&self) -> impl Iterator<Item = &str> {
        let mut names: Vec<&str> = self.hosts.keys().map(String::as_str).collect();
        names.sort_unstable();
        names.into_iter()
    }

    /// Writes the host's row (its figures and liveness state) to the store now, waiting for
    /// room: it carries a state change (or the last figures on shutdown), never dropped.
    /// Figures alone go once a second through [`State::save_hosts`].
    fn store_host(&self, name: &str) {
        if let (Some(store), Some(h)) = (&self.store, self.hosts.get(name)) {
            store.send_always(host_row(&self.liveness, name, h));
        }
    }

    /// Writes the rows of the hosts heard from since they were last written (the loop calls
    /// it every second; `close_store` with `wait`, so that every row goes).
    ///
    /// Without `wait`, only as many go as the writer has room for, and the next call goes on
    /// with the rest of the round before a new one is gathered, so a burst of a whole fleet
    /// is written over a few seconds instead of dropped, and no host waits behind the
    /// others for good. Gathering a round walks every host: a millisecond per 100,000.
    pub fn save_hosts(&mut self, wait: bool) {
        let Some(store) = &self.store else {
            return;
        };
        // With `wait` every host goes, not only the rest of a round gathered earlier.
        if wait || self.save_round.is_empty() {
            self.save_round = self
                .hosts
                .iter()
                .filter(|(_, h)| h.unsaved)
                .map(|(name, _)| name.clone())
                .collect();
        }
        while let Some(name) = self.save_round.last() {
            // A host forgotten since the round was gathered is skipped.
            if let Some(h) = self.hosts.get_mut(name)
                && !save_row(store, &self.liveness, name, h, wait)
            {
                return;
            }
            self.save_round.pop();
        }
    }

    /// A state change: stored now (ahead of any notification about it) and sent to the web.
    fn host_changed(&mut self, host: &str) {
        self.store_host(host);
        if let Some(h) = self.hosts.get_mut(host) {
            h.unsaved = false;
            h.fresh = false;
        }
        self.dirty.remove(host);
        if let Some(summary) = self.summary(host) {
            self.changes.push(Change::Host { host: summary });
        }
    }

    /// Sends the hosts whose figures changed since the last call (at most once per host per
    /// call; the loop calls it every 25 ms).
    pub fn flush_changes(&mut self) {
        for host in std::mem::take(&mut self.dirty) {
            let Some(h) = self.hosts.get_mut(&host) else {
                continue;
            };
            if std::mem::take(&mut h.fresh) {
                if let Some(summary) = self.summary(&host) {
                    self.changes.push(Change::Host { host: summary });
                }
            } else {
                self.changes.push(Change::Seen {
                    last_seen_ms: h.last_seen_ms,
                    heartbeats: h.heartbeats,
                    rtt_ms: h.rtt_ms,
                    host,
                });
            }
        }
    }

    /// Once a second: storms are decided, alerts past their grace notify, ongoing ones
    /// remind.
    pub fn second(&mut self, now_ms: u64) {
        if self.alerting.storms.gathering() {
            // Downs are timed by what was heard (tick_heard), so their window is too: judged
            // by the wall clock, a server behind by more than the window would close each
            // storm at once and page its hosts one by one.
            let heard_now = self.heard.clock(now_ms);
            let fleet = self.hosts.keys().filter(|h| self.watched(h)).count();
            match self.alerting.storms.tick(heard_now, fleet) {
                Some(Decision::Declared { hosts, count }) => {
                    self.storm_notice(heard_now, count, hosts);
                }
                Some(Decision::Over { total }) => {
                    tracing::info!(total, "Storm over: no new down for a window.");
                }
                // Released hosts notify below, one by one.
                Some(Decision::Released { .. }) | None => {}
            }
        }
        let renotify = self
            .config
            .as_ref()
            .and_then(|c| c.threshold_renotify_interval)
            .filter(|s| *s > 0)
            .map(|s| s * 1000);
        let grace_ms = self.grace_ms();
        let allowed: BTreeSet<String> = self
            .alerting
            .alerts
            .iter()
            .filter(|(_, a)| self.may_notify_metric(&a.host, &a.metric, now_ms))
            .map(|(key, _)| key.clone())
            .collect();
        let actions = self
            .alerting
            .alerts
            .tick(now_ms, grace_ms, renotify, |key, _| allowed.contains(key));
        self.act(actions, now_ms);
        let settled = self.alerting.alerts.forget_stale_flaps(now_ms);
        self.act(settled, now_ms);
        // Ad-hoc silences that are over are forgotten.
        let over: Vec<u64> = self
            .alerting
            .silences
            .values()
            .filter(|s| s.end_ms <= now_ms)
            .map(|s| s.id)
            .collect();
        for id in over {
            self.alerting.silences.remove(&id);
            self.write(store::Write::Unsilence { id });
        }
    }

    /// Forgets a host entirely (owners' "drop host", `drophosts`).
    fn drop_host(&mut self, host: &str, now_ms: u64, why: &str) -> bool {
        let Some(dropped) = self.hosts.remove(host) else {
            return false;
        };
        self.plugin_bytes -= dropped
            .plugins
            .values()
            .map(|(_, d)| d.len())
            .sum::<usize>();
        self.liveness.remove(host);
        let (member, all_back) = self.alerting.storms.back(host);
        if member {
            // Its page was the storm's; so is its end.
            self.alerting
                .alerts
                .mark_notified(&format!("{host}/down"), false, now_ms);
        }
        if let Some(total) = all_back {
            self.storm_notice(now_ms, total, Vec::new());
        }
        self.alerting.alerts.forget_flaps(Some(host));
        for key in self.alerting.alerts.of_host(host) {
            // Whoever was paged hears that it is closed.
            let text = format!("{host} was dropped ({why}); its alert is closed");
            if let Some(action) = self.alerting.alerts.end(&key, text) {
                self.act(vec![action], now_ms);
            }
        }
        self.dirty.remove(host);
        self.commands.forget(host);
        self.dns.forget(host);
        self.write(store::Write::Drop {
            host: host.to_string(),
        });
        self.changes.push(Change::Dropped {
            host: host.to_string(),
        });
        self.event(now_ms, host, format!("{host} dropped: {why}"));
        // The receiver forgets its queue and asks a returning host for its data again.
        self.to_receiver.push(EngineToReceiver::Forget {
            host: host.to_string(),
        });
        true
    }

    /// What a fresh receiver must know.
    pub fn host_table(&self) -> EngineToReceiver {
        EngineToReceiver::HostTable {
            with_data: self
                .hosts
                .iter()
                .filter(|(_, h)| !h.plugins.is_empty())
                .map(|(name, _)| name.clone())
                .collect(),
            queues: self.commands.all(),
        }
    }

    fn summary(&self, name: &str) -> Option<HostSummary> {
        let h = self.hosts.get(name)?;
        let access = self.settings.access(self.config.as_ref(), name);
        let (mut state, since) = self
            .liveness
            .state_since(name)
            .map_or(("up", h.last_seen_ms), |(s, since)| (s.name(), since));
        if state == "down" && self.blocking_parent(name, hb_ipc::now_ms()).is_some() {
            state = "unreachable";
        }
        Some(HostSummary {
            name: name.to_string(),
            last_seen_ms: h.last_seen_ms,
            address: h.address,
            interval: self.interval(name, h),
            heartbeats: h.heartbeats,
            rtt_ms: h.rtt_ms,
            version: h.version.clone(),
            signed: h.signed,
            state: state.into(),
            state_since_ms: since,
            watched: self.watched(name),
            owner: self.owner(name),
            managers: access.managers,
            monitors: access.monitors,
            dyn_dns: self.dns.is_dynamic(name),
        })
    }

    /// The configured interval wins over the announced one, which wins over the default.
    fn interval(&self, name: &str, host: &Host) -> u32 {
        let config = self.config.as_ref();
        config
            .and_then(|c| c.hosts.get(name))
            .and_then(|h| h.interval)
            .or(host.announced_interval)
            .or(config.map(|c| c.interval))
            .unwrap_or(10)
    }

    /// The deadlines that apply to `host` now.
    fn timing(&self, host: &str) -> liveness::Timing {
        let interval = self.hosts.get(host).map_or(10, |h| self.interval(host, h));
        let config = self.config.as_ref();
        let own = config.and_then(|c| c.hosts.get(host));
        // A check on a schedule is due when it next fires.
        let scheduled = self
            .hosts
            .get(host)
            .and_then(|h| self.scheduled_interval_ms(host, h.last_seen_ms));
        liveness::Timing {
            interval_ms: scheduled.unwrap_or(u64::from(interval) * 1000),
            grace_ms: own
                .and_then(|h| h.grace)
                .or(config.map(|c| c.grace))
                .map_or(2000, |g| (g * 1000.0) as u64),
            max_missed: own
                .and_then(|h| h.max_missed)
                .or(config.map(|c| c.max_missed))
                .unwrap_or(2),
        }
    }

    /// Applies the deadlines due by what has been heard when the wall clock reads `now`
    /// (liveness::Heard: the server's own backlog never makes a host late).
    pub fn tick_heard(&mut self, now_ms: u64) {
        let lag = self.heard.lag(now_ms);
        self.set_counter("behind_ms", lag);
        self.tick(self.heard.clock(now_ms));
    }

    /// Applies the deadlines due by `now`.
    pub fn tick(&mut self, now_ms: u64) {
        for (host, change) in self.liveness.tick(now_ms) {
            // Stored ahead of the notification, which the writer sends after the commit.
            self.host_changed(&host);
            match change {
                liveness::Change::Overdue => {
                    self.count("went_overdue");
                    if self.log_budget.take(now_ms) {
                        tracing::info!(host, "Overdue.");
                    }
                }
                // A paused check is not timed: its silence is expected.
                liveness::Change::Down if self.is_paused_check(&host) => {}
                liveness::Change::Down => {
                    self.count("went_down");
                    self.went_down(&host, now_ms);
                }
                liveness::Change::Recovered { .. } => {}
            }
            self.follow_dns(&host, None);
        }
    }
}

/// A value for an alert's text: numbers as they are, strings without quotes.
fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        // 90, not 90.0; 93.5 as it is.
        serde_json::Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), |f| f.to_string()),
        other => other.to_string(),
    }
}

/// A plain field named `name` next to the metric at `path` (in the object holding it, or an
/// object above it, nearest first): a partition's `free_gb`, a pool's `health`.
fn lookup(
    data: &serde_json::Map<String, serde_json::Value>,
    path: &[String],
    name: &str,
) -> Option<serde_json::Value> {
    let mut levels = vec![data];
    for segment in path.iter().take(path.len().saturating_sub(1)) {
        match levels.last().and_then(|m| m.get(segment)) {
            Some(serde_json::Value::Object(inner)) => levels.push(inner),
            _ => break,
        }
    }
    levels
        .iter()
        .rev()
        .find_map(|m| m.get(name).filter(|v| !v.is_object() && !v.is_array()))
        .cloned()
}

#[cfg(test)]
pub(crate) mod tests;
