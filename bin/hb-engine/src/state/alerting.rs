//! Alerting: who hears of a host, when a notification may go (silences, maintenance,
//! parents, storms), what thresholds say of plugin figures and RTT, and what the notifier
//! reports back.

use super::*;

/// What alerting owns: the alerts, storms, silences and windows, the rules, and what it
/// remembers of each.
#[derive(Default)]
pub(super) struct Alerting {
    pub(super) alerts: Alerts,
    pub(super) storms: Storms,
    /// Ad-hoc silences by id, and the maintenance windows of the configuration.
    pub(super) silences: BTreeMap<u64, Silence>,
    pub(super) windows: Vec<Window>,
    /// The alerting rules, and those of each combination of profiles in use.
    pub(super) rules: Rules,
    pub(super) host_rules: HashMap<Vec<String>, std::sync::Arc<HostRules>>,
    /// Display templates that failed, reported once each.
    pub(super) bad_templates: BTreeSet<String>,
    /// Alert keys whose "flapping" notice went out (so their "settled" notice does too).
    pub(super) flap_noticed: BTreeSet<String>,
    /// Who the current storm's summary went to: its "back" notice goes there too.
    pub(super) storm_recipients: StormRecipients,
}

#[derive(Default)]
pub(super) struct StormRecipients {
    users: BTreeSet<String>,
    channels: BTreeSet<String>,
}

impl State {
    /// One channel delivered notification `id`: stored at once, so a resend skips it.
    pub fn channel_delivered(&mut self, id: u64, channel: String, now_ms: u64) {
        let Some(n) = self.outbox.delivered(id, &channel) else {
            return;
        };
        let (alert, recovery) = (n.alert.clone(), n.kind == "recovery");
        self.write(store::Write::Delivered {
            id,
            channel: channel.clone(),
        });
        if !recovery && self.alerting.alerts.alerted(&alert, &[channel]) {
            self.act(vec![Action::Changed { key: alert }], now_ms);
        }
    }

    /// The notifier is done with notification `id`.
    pub fn notification_done(
        &mut self,
        id: u64,
        delivered: Vec<String>,
        failed: Vec<ChannelFailure>,
        now_ms: u64,
    ) {
        let Some(n) = self.outbox.done(id) else {
            self.count("notifications_done_unknown");
            return;
        };
        // The channels that got an alert get its recovery.
        if n.kind != "recovery" && self.alerting.alerts.alerted(&n.alert, &delivered) {
            self.act(
                vec![Action::Changed {
                    key: n.alert.clone(),
                }],
                now_ms,
            );
        }
        for f in &failed {
            let text = format!(
                "{}: notification {:?} failed on channel {}: {}",
                n.host, n.title, f.channel, f.error
            );
            self.event(now_ms, &n.host, text);
        }
        let outcome = match (delivered.is_empty(), failed.is_empty()) {
            (true, true) => {
                tracing::info!(id, host = n.host, "Nobody to notify: no channel applies.");
                "no channel".to_string()
            }
            _ => format!(
                "delivered: {}; failed: {}",
                delivered.join(","),
                failed
                    .iter()
                    .map(|f| f.channel.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        };
        self.count(if failed.is_empty() {
            "notifications_done"
        } else {
            "notifications_failed"
        });
        // Per channel, for /metrics. The names come from the notifier; past a bound they
        // are counted together, so a confused peer cannot grow the map.
        let per_channel = |kind: &str, channel: &str, counters: &BTreeMap<String, u64>| {
            let name = format!("{kind}.{channel}");
            if counters.contains_key(&name)
                || (channel.len() <= 64 && counters.len() < MAX_CHANNEL_COUNTERS)
            {
                name
            } else {
                format!("{kind}.other")
            }
        };
        for channel in &delivered {
            let name = per_channel("notify_sent", channel, &self.counters);
            self.count(&name);
        }
        for f in &failed {
            let name = per_channel("notify_failed", &f.channel, &self.counters);
            self.count(&name);
        }
        self.write(store::Write::Done {
            id,
            at_ms: now_ms,
            outcome,
        });
    }

    pub(super) fn watched(&self, host: &str) -> bool {
        self.config.as_ref().is_some_and(|c| {
            c.hosts.get(host).and_then(|h| h.watch).unwrap_or(false)
                || c.watchhosts.iter().any(|w| w == host)
        })
    }

    pub(super) fn owner(&self, host: &str) -> Option<String> {
        let config = self.config.as_ref()?;
        self.settings
            .access(Some(config), host)
            .owner
            .or_else(|| config.default_owner.clone())
    }

    /// Gives a notification its id and recipients, keeps it in the outbox and hands it on
    /// (through the store when there is one, so it goes out only once committed).
    pub(super) fn notify(&mut self, mut n: Notification) {
        (n.users, n.channels) = self.recipients(&n.host);
        self.enqueue(n);
    }

    /// A host's owner and managers, and its own channels.
    pub(super) fn recipients(&self, host: &str) -> (Vec<String>, Vec<String>) {
        let config_host = self.config.as_ref().and_then(|c| c.hosts.get(host));
        let channels = config_host
            .map(|h| h.notification_channels.clone())
            .unwrap_or_default();
        let mut users: Vec<String> = self.owner(host).into_iter().collect();
        users.extend(self.settings.access(self.config.as_ref(), host).managers);
        (users, channels)
    }

    /// Gives a notification its id, puts it in the outbox and on its way.
    pub(super) fn enqueue(&mut self, mut n: Notification) {
        self.count("notifications");
        // With a store it goes out once committed; without one, now.
        n.id = self.outbox.add(n.clone(), self.store.is_none());
        match &self.store {
            Some(store) => store.send(store::Write::Notify(n)),
            None => self.ready.push(n),
        }
    }

    pub(super) fn alert_summary(key: &str, a: &Alert) -> AlertSummary {
        AlertSummary {
            key: key.to_string(),
            host: a.host.clone(),
            level: a.level.name().into(),
            since_ms: a.since_ms,
            text: a.text.clone(),
            notified: a.notified,
            metric: a.metric.clone(),
            opened_ms: a.opened_ms,
            acknowledged: a.acknowledged.clone(),
        }
    }

    /// Whether alerts of `host` may notify now: it is watched, and not cut off behind a
    /// parent.
    pub(super) fn may_notify(&self, host: &str, now_ms: u64) -> bool {
        self.watched(host)
            && self.blocking_parent(host, now_ms).is_none()
            && !self.alerting.storms.holds(host)
    }

    /// What silences `metric` of `host` at `now`: a maintenance window's name or an ad-hoc
    /// silence.
    pub(super) fn silenced(&self, host: &str, metric: &str, now_ms: u64) -> Option<String> {
        if let Some(s) = self
            .alerting
            .silences
            .values()
            .find(|s| s.silences(host, metric, now_ms))
        {
            return Some(format!("silence {} by {}", s.id, s.author));
        }
        self.alerting
            .windows
            .iter()
            .find(|w| w.covers(host, metric) && w.is_open(now_ms))
            .map(|w| format!("maintenance window {:?}", w.name))
    }

    /// Whether alerts of `metric` of `host` may notify now.
    pub(super) fn may_notify_metric(&self, host: &str, metric: &str, now_ms: u64) -> bool {
        self.may_notify(host, now_ms) && self.silenced(host, metric, now_ms).is_none()
    }

    /// A parent that keeps `host` from being reached: one that is overdue, down or shut
    /// down, or came back too recently for `host` to have reported since (its interval and
    /// grace), so a child that stays silent after its parent returns is reported then.
    pub(super) fn blocking_parent(&self, host: &str, now_ms: u64) -> Option<String> {
        let parents = &self.config.as_ref()?.hosts.get(host)?.parents;
        if parents.is_empty() {
            return None;
        }
        let settle = {
            let t = self.timing(host);
            t.interval_ms + t.grace_ms
        };
        parents
            .iter()
            .find(|p| match self.liveness.state_since(p) {
                Some((liveness::State::Up, since)) => now_ms < since.saturating_add(settle),
                Some(_) => true,
                None => false,
            })
            .cloned()
    }

    /// Carries out what the alert lifecycle decided.
    pub(super) fn act(&mut self, actions: Vec<Action>, now_ms: u64) {
        for action in actions {
            match action {
                Action::Changed { key } => {
                    let Some(alert) = self.alerting.alerts.get(&key) else {
                        continue;
                    };
                    let summary = Self::alert_summary(&key, alert);
                    self.write(store::Write::Alert(store::StoredAlert {
                        key: key.clone(),
                        host: alert.host.clone(),
                        metric: alert.metric.clone(),
                        level: alert.level.name().into(),
                        since_ms: alert.since_ms,
                        opened_ms: alert.opened_ms,
                        text: alert.text.clone(),
                        notified: alert.notified,
                        last_notified_ms: alert.last_notified_ms,
                        acknowledged: alert.acknowledged.clone(),
                        alerted: alert.alerted.iter().cloned().collect::<Vec<_>>().join(","),
                    }));
                    self.changes.push(Change::Alert { alert: summary });
                }
                Action::Notify {
                    key,
                    kind: kind @ (Kind::Flapping | Kind::Settled),
                } => self.notify_flap(&key, kind, now_ms),
                Action::Notify { key, kind } => {
                    let Some(alert) = self.alerting.alerts.get(&key).cloned() else {
                        continue;
                    };
                    // The stored row must say it was notified before the notification goes.
                    self.act(vec![Action::Changed { key: key.clone() }], now_ms);
                    self.notify_alert(&key, &alert, kind, now_ms);
                }
                Action::Ended {
                    key,
                    mut alert,
                    notify,
                    closed,
                } => {
                    self.write(store::Write::AlertEnded { key: key.clone() });
                    let mut summary = Self::alert_summary(&key, &alert);
                    summary.level = "OK".into();
                    summary.since_ms = now_ms;
                    self.changes.push(Change::Alert { alert: summary });
                    if notify {
                        alert.since_ms = now_ms;
                        let kind = if closed { Kind::Closed } else { Kind::Recovery };
                        self.notify_alert(&key, &alert, kind, now_ms);
                    }
                }
            }
        }
    }

    /// A notification about an alert: `[LEVEL] host metric` (`[RECOVER] ...` when it ended).
    pub(super) fn notify_alert(&mut self, key: &str, alert: &Alert, kind: Kind, now_ms: u64) {
        let host = &alert.host;
        let what = match (alert.metric.as_str(), kind) {
            ("down", Kind::Recovery) => "is back".to_string(),
            ("down", Kind::Closed) => "down: closed".to_string(),
            (metric, Kind::Closed) => format!("{metric}: closed"),
            (metric, _) => metric.to_string(),
        };
        let (tag, level) = match kind {
            Kind::Recovery | Kind::Closed => ("RECOVER", "OK"),
            _ => (alert.level.name(), alert.level.name()),
        };
        let reminder = if kind == Kind::Reminder {
            let minutes = now_ms.saturating_sub(alert.opened_ms) / 60_000;
            format!(" (ongoing for {minutes} min)")
        } else {
            String::new()
        };
        self.notify(Notification {
            id: 0,
            alert: key.to_string(),
            kind: kind.name().into(),
            level: level.into(),
            host: host.clone(),
            title: format!("[{tag}] {host} {what}{reminder}"),
            text: alert.text.clone(),
            created_ms: now_ms,
            users: Vec::new(),
            channels: Vec::new(),
            alerted: alert.alerted.iter().cloned().collect(),
            done_channels: Vec::new(),
        });
    }

    /// A key started or stopped flapping: one notice each way, to whoever gets its alerts.
    pub(super) fn notify_flap(&mut self, key: &str, kind: Kind, now_ms: u64) {
        let Some((host, metric)) = key.split_once('/') else {
            return;
        };
        let (host, metric) = (host.to_string(), metric.to_string());
        // The start notice goes only where alerts may go now; the settled notice only where
        // the start notice went.
        let allowed = match kind {
            Kind::Flapping => {
                self.may_notify_metric(&host, &metric, now_ms)
                    && self.alerting.flap_noticed.insert(key.to_string())
            }
            _ => self.alerting.flap_noticed.remove(key),
        };
        if !allowed {
            return;
        }
        let level = self.alerting.alerts.level(key);
        let (tag, level_name, title, text) = match kind {
            Kind::Flapping => (
                "FLAPPING",
                if level == Level::Critical {
                    "CRITICAL"
                } else {
                    "WARNING"
                },
                format!("{metric} is flapping"),
                format!(
                    "{host} {metric} changes state too often; its alerts are paused until it settles (now {})",
                    level.name()
                ),
            ),
            _ => (
                level.name(),
                level.name(),
                format!("{metric} stopped flapping"),
                format!("{host} {metric} has settled at {}", level.name()),
            ),
        };
        let event = format!("{host}: {title}");
        self.event(now_ms, &host, event);
        if kind == Kind::Settled {
            // The stored row now says it was notified.
            self.act(
                vec![Action::Changed {
                    key: key.to_string(),
                }],
                now_ms,
            );
        }
        let kind_name = match (kind, level) {
            (Kind::Settled, Level::Ok) => "recovery",
            (Kind::Settled, _) => "alert",
            _ => kind.name(),
        };
        self.notify(Notification {
            id: 0,
            alert: key.to_string(),
            kind: kind_name.into(),
            level: level_name.into(),
            host: host.clone(),
            title: format!("[{tag}] {host} {title}"),
            text,
            created_ms: now_ms,
            users: Vec::new(),
            channels: Vec::new(),
            alerted: Vec::new(),
            done_channels: Vec::new(),
        });
    }

    /// `host` is down: an alert, notified at once if the host is watched.
    pub(super) fn went_down(&mut self, host: &str, now_ms: u64) {
        let (last_seen, address) = self
            .hosts
            .get(host)
            .map_or((now_ms, None), |h| (h.last_seen_ms, Some(h.address)));
        let silent = now_ms.saturating_sub(last_seen) / 1000;
        let text = match address {
            Some(a) => format!("{host} sent nothing for {silent} s (last from {a})"),
            None => format!("{host} sent nothing for {silent} s"),
        };
        self.failed(host, now_ms, text, true);
    }

    /// `host` is down now, for the reason `text` says. A silence counts towards a storm
    /// (many hosts falling silent together); a failure the host reports itself does not,
    /// and notifies at once.
    pub(super) fn failed(&mut self, host: &str, now_ms: u64, text: String, silent: bool) {
        let text_event = match self.blocking_parent(host, now_ms) {
            Some(parent) => format!("{host} unreachable ({parent} is down)"),
            None if self.watched(host) => format!("{host} down"),
            None => format!("{host} down (not watched)"),
        };
        self.event(now_ms, host, text_event);
        if silent && self.may_notify_metric(host, "down", now_ms) {
            self.alerting.storms.down(host, now_ms);
        }
        let may_notify = self.may_notify_metric(host, "down", now_ms);
        let actions = self.alerting.alerts.observe(
            &format!("{host}/down"),
            (host, "down"),
            (Level::Critical, text),
            now_ms,
            0,
            may_notify,
        );
        self.act(actions, now_ms);
    }

    /// `host` is back after `silent_ms`: its down alert ends; a recovery goes to whoever got
    /// the alert.
    pub(super) fn recovered(&mut self, host: &str, now_ms: u64, silent_ms: u64) {
        self.event(
            now_ms,
            host,
            format!("{host} recovered after {} s", silent_ms / 1000),
        );
        let text = format!("{host} is back after {} s", silent_ms / 1000);
        let key = format!("{host}/down");
        let (member, all_back) = self.alerting.storms.back(host);
        if member {
            // Part of a storm: its recovery is the storm's, not a page of its own.
            self.alerting.alerts.mark_notified(&key, false, now_ms);
        }
        if let Some(total) = all_back {
            self.storm_notice(now_ms, total, Vec::new());
        }
        let actions = self.alerting.alerts.observe(
            &format!("{host}/down"),
            (host, "down"),
            (Level::Ok, text),
            now_ms,
            0,
            true,
        );
        self.act(actions, now_ms);
    }

    /// The rules for `host`, built once per combination of profiles.
    pub(super) fn rules_for(&mut self, host: &str) -> Option<std::sync::Arc<HostRules>> {
        let profiles: Vec<String> = self
            .config
            .as_ref()
            .and_then(|c| c.hosts.get(host))
            .and_then(|h| h.threshold_config.as_ref())
            .map(|p| p.names().into_iter().map(String::from).collect())
            .unwrap_or_default();
        if let Some(r) = self.alerting.host_rules.get(&profiles) {
            return Some(r.clone());
        }
        let names: Vec<&str> = profiles.iter().map(String::as_str).collect();
        match self.alerting.rules.for_host(&names) {
            Ok(r) => {
                let r = std::sync::Arc::new(r);
                self.alerting.host_rules.insert(profiles, r.clone());
                Some(r)
            }
            Err(e) => {
                tracing::error!(host, error = %e, "No thresholds for this host.");
                None
            }
        }
    }

    /// Renders an alert's text: its display template, else the default; a template that
    /// fails falls back to the default and is reported once.
    pub(super) fn alert_text(
        &mut self,
        (host, metric): (&str, &str),
        template: Option<&str>,
        vars: &serde_json::Map<String, serde_json::Value>,
    ) -> String {
        let value = vars.get("value").map(value_text).unwrap_or_default();
        let default = match vars.get("threshold_value") {
            Some(t) if !t.is_null() => format!(
                "{metric} = {value} ({} {})",
                vars.get("op_symbol").and_then(|v| v.as_str()).unwrap_or(""),
                value_text(t)
            ),
            _ => format!("{metric} = {value}"),
        };
        let Some(template) = template else {
            return default;
        };
        match hb_rules::template::render(template, vars) {
            Ok(text) => format!("{metric}: {text}"),
            Err(e) => {
                if self.alerting.bad_templates.insert(template.to_string()) {
                    let text = format!(
                        "{host}: display template of {metric} fails ({e}); the default text is used"
                    );
                    self.event(hb_ipc::now_ms(), host, text);
                }
                default
            }
        }
    }

    /// Checks a plugin report against the host's thresholds, and ends alerts of metrics
    /// the plugin no longer reports (or that no longer have a threshold).
    pub(super) fn check_plugin(
        &mut self,
        host: &str,
        plugin: &str,
        data: &serde_json::Map<String, serde_json::Value>,
        now_ms: u64,
    ) {
        let Some(rules) = self.rules_for(host) else {
            return;
        };
        let grace_ms = self.grace_ms();
        let may_notify = self.may_notify(host, now_ms);
        let mut seen = BTreeSet::new();
        let findings = rules.findings(plugin, data);
        if findings.len() > MAX_FINDINGS {
            // More checked metrics than any real plugin reports: the excess is not checked.
            self.count("findings_refused");
        }
        for finding in findings.into_iter().take(MAX_FINDINGS) {
            let metric = format!("{plugin}.{}", finding.path.join("."));
            let may_notify = may_notify && self.silenced(host, &metric, now_ms).is_none();
            let key = format!("{host}/{metric}");
            let current = self.alerting.alerts.level(&key);
            let eval = finding.threshold.evaluate(&finding.value, current);
            let template = finding.threshold.display.clone();
            let name = finding.path.last().cloned().unwrap_or_default();
            let check = finding.check_name.clone().unwrap_or_default();
            // Only what the template names is looked up (a report may hold thousands of
            // fields; copying them per metric would cost their square).
            let wanted = template
                .as_deref()
                .map(hb_rules::template::names)
                .unwrap_or_default();
            let mut vars = serde_json::Map::new();
            for name in wanted {
                let field = match name {
                    // Nagios fields of this check: <check>_output, <check>_status.
                    "output" | "status" => lookup(data, &finding.path, &format!("{check}_{name}"))
                        .or_else(|| lookup(data, &finding.path, name)),
                    _ => lookup(data, &finding.path, name),
                };
                // A name the data lacks stays missing: the template falls back.
                if let Some(field) = field {
                    vars.insert(name.to_string(), field);
                }
            }
            vars.insert("value".into(), finding.value.clone());
            vars.insert("threshold_value".into(), eval.limit.into());
            vars.insert("op_symbol".into(), finding.threshold.op.symbol().into());
            vars.insert("check_name".into(), check.into());
            vars.insert("metric_name".into(), name.into());
            vars.insert("level".into(), eval.level.name().into());
            let text = self.alert_text((host, &metric), template.as_deref(), &vars);
            let actions = self.alerting.alerts.observe(
                &key,
                (host, &metric),
                (eval.level, text),
                now_ms,
                grace_ms,
                may_notify,
            );
            self.act(actions, now_ms);
            seen.insert(key);
        }
        // Stale: alerts of this plugin whose metric was not in this report. A report of a
        // failed run (`error`) or one cut to fit a datagram (`_trimmed`) says nothing of what
        // it lacks: a hung zpool does not recover a degraded pool.
        if data.contains_key("error") || data.contains_key("_trimmed") {
            return;
        }
        let prefix = format!("{host}/{plugin}.");
        let stale: Vec<String> = self
            .alerting
            .alerts
            .of_host(host)
            .into_iter()
            .filter(|k| k.starts_with(&prefix) && !seen.contains(k))
            .collect();
        for key in stale {
            let text = format!("{} is no longer reported", &key[host.len() + 1..]);
            if let Some(action) = self.alerting.alerts.end(&key, text) {
                self.act(vec![action], now_ms);
            }
        }
    }

    /// Checks a heartbeat's RTT against `thresholds.rtt`.
    pub(super) fn check_rtt(&mut self, host: &str, rtt_ms: f64, now_ms: u64) {
        // Every heartbeat comes here: without RTT thresholds (or an RTT alert to end), out.
        if !self.alerting.rules.mentions("rtt") && self.alerting.alerts.is_empty() {
            return;
        }
        let Some(rules) = self.rules_for(host) else {
            return;
        };
        let key = format!("{host}/rtt");
        let Some(threshold) = rules.rtt(host) else {
            // Its threshold was removed or disabled: an alert it raised ends.
            if self.alerting.alerts.get(&key).is_some()
                && let Some(action) = self
                    .alerting
                    .alerts
                    .end(&key, "rtt no longer checked".into())
            {
                self.act(vec![action], now_ms);
            }
            return;
        };
        let value = serde_json::Value::from(rtt_ms);
        let eval = threshold.evaluate(&value, self.alerting.alerts.level(&key));
        let metric = "rtt".to_string();
        let mut vars = serde_json::Map::new();
        vars.insert("value".into(), value);
        vars.insert("threshold_value".into(), eval.limit.into());
        vars.insert("op_symbol".into(), threshold.op.symbol().into());
        vars.insert("metric_name".into(), format!("rtt.{host}").into());
        vars.insert("check_name".into(), host.into());
        vars.insert("level".into(), eval.level.name().into());
        let template = threshold.display.clone();
        let text = self.alert_text((host, &metric), template.as_deref(), &vars);
        let grace_ms = self.grace_ms();
        let may_notify = self.may_notify_metric(host, "rtt", now_ms);
        let actions = self.alerting.alerts.observe(
            &key,
            (host, &metric),
            (eval.level, text),
            now_ms,
            grace_ms,
            may_notify,
        );
        self.act(actions, now_ms);
    }

    pub(super) fn grace_ms(&self) -> u64 {
        self.config
            .as_ref()
            .map_or(2000, |c| (c.grace * 1000.0) as u64)
    }

    /// A storm summary: `hosts` went down together (or, empty, all of the `total` are back).
    pub(super) fn storm_notice(&mut self, now_ms: u64, total: usize, hosts: Vec<String>) {
        let StormRecipients {
            mut users,
            mut channels,
        } = std::mem::take(&mut self.alerting.storm_recipients);
        for host in &hosts {
            let (u, c) = self.recipients(host);
            users.extend(u);
            channels.extend(c);
        }
        // The "back" notice goes where the summary went.
        if !hosts.is_empty() {
            self.alerting.storm_recipients = StormRecipients {
                users: users.clone(),
                channels: channels.clone(),
            };
        }
        let window = self.alerting.storms.limits.window_ms / 1000;
        let (kind, level, title, text) = if hosts.is_empty() {
            (
                "recovery",
                "OK",
                format!("[RECOVER] {total} hosts of the storm are back"),
                format!("The {total} hosts of the storm that were not paged one by one are back."),
            )
        } else {
            let shown: Vec<&str> = hosts.iter().take(20).map(String::as_str).collect();
            let more = hosts.len().saturating_sub(shown.len());
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            (
                "alert",
                "CRITICAL",
                format!("[CRITICAL] {total} hosts down within {window} s"),
                format!(
                    "Possible network problem at the monitor: {total} hosts went down within {window} s ({}{more}). They are not paged one by one; one notice follows when all are back.",
                    shown.join(", ")
                ),
            )
        };
        let event = if hosts.is_empty() {
            format!("storm over: its {total} hosts are back")
        } else {
            format!("{total} hosts down within {window} s: possible network problem at the monitor")
        };
        self.event(now_ms, "*", event);
        // The summary covers their down alerts: no page of their own. Stored, so a restart
        // does not page them one by one.
        for host in &hosts {
            let key = format!("{host}/down");
            self.alerting.alerts.mark_notified(&key, true, now_ms);
            self.act(vec![Action::Changed { key }], now_ms);
        }
        let n = Notification {
            id: 0,
            alert: "*/storm".into(),
            kind: kind.into(),
            level: level.into(),
            host: "*".into(),
            title,
            text,
            created_ms: now_ms,
            users: users.into_iter().collect(),
            channels: channels.into_iter().collect(),
            alerted: Vec::new(),
            done_channels: Vec::new(),
        };
        self.enqueue(n);
    }

    /// Makes an ad-hoc silence.
    pub(super) fn silence(
        &mut self,
        host: String,
        metric: String,
        minutes: u32,
        (author, comment): (String, String),
        now_ms: u64,
    ) -> Answer {
        const MAX_MINUTES: u32 = 30 * 24 * 60;
        const MAX_SILENCES: usize = 10_000;
        if minutes == 0 || minutes > MAX_MINUTES {
            return Answer::Error {
                message: format!("a silence lasts 1 to {MAX_MINUTES} minutes"),
            };
        }
        let printable = |s: &str, max: usize| s.len() <= max && !s.chars().any(char::is_control);
        if host.is_empty()
            || metric.is_empty()
            || !printable(&host, 253)
            || !printable(&metric, 256)
            || !printable(&author, 64)
            || !printable(&comment, 500)
        {
            return Answer::Error {
                message: "host and metric patterns are needed; no control characters; comment at most 500 bytes".into(),
            };
        }
        if self.alerting.silences.len() >= MAX_SILENCES {
            return Answer::Error {
                message: format!("already {MAX_SILENCES} silences"),
            };
        }
        let id = self
            .alerting
            .silences
            .keys()
            .next_back()
            .map_or(now_ms, |last| (*last + 1).max(now_ms));
        let silence = Silence {
            id,
            // Host names are lower case.
            host: host.to_ascii_lowercase(),
            metric,
            start_ms: now_ms,
            end_ms: now_ms + u64::from(minutes) * 60_000,
            author,
            comment,
        };
        let text = format!(
            "{}/{} silenced for {minutes} min by {} (silence {id}): {}",
            silence.host, silence.metric, silence.author, silence.comment
        );
        self.event(now_ms, &silence.host.clone(), text);
        self.write(store::Write::Silence(silence.clone()));
        self.alerting.silences.insert(id, silence);
        Answer::Silenced { id }
    }
}
