//! `/metrics` in the Prometheus text format: hosts by state, each host's state and RTT,
//! alerts by level, datagrams received and rejected by reason, notifications sent and failed
//! by channel, each process's restarts, and every role's raw counters.
//!
//! Readable without users; with users, by an admin's session or by a scraper presenting
//! `metrics_token` as a Bearer token (host names are in the labels).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hb_ipc::Role;
use hb_ipc::control::{RoleStats, ServerStats};
use hb_ipc::edge::{Answer, Query};

use crate::authed::Authed;
use crate::reply::ApiError;
use crate::web::{Web, WebState};

/// How long the supervisor has to gather the roles' counters.
const STATS_WAIT: Duration = Duration::from_secs(4);

/// Escapes a label value.
fn label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One metric family being written.
struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    /// A gauge family of counts by `label`: one sample for each value in
    /// `known` (0 if none has it) and in `values`, in order of the value.
    fn counts<'a>(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        known: &[&'a str],
        values: impl Iterator<Item = Cow<'a, str>>,
    ) {
        self.family(name, "gauge", help);
        let mut counts: BTreeMap<Cow<'a, str>, u64> =
            known.iter().map(|k| (Cow::Borrowed(*k), 0)).collect();
        for value in values {
            *counts.entry(value).or_default() += 1;
        }
        for (value, n) in &counts {
            self.sample(name, &[(label, value)], *n as f64);
        }
    }

    /// A counter family by `label`: one sample for each of `counters`, a value of the label
    /// and its count.
    fn counters_by<'a>(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        counters: impl Iterator<Item = (&'a str, u64)>,
    ) {
        self.family(name, "counter", help);
        for (value, n) in counters {
            self.sample(name, &[(label, value)], n as f64);
        }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", label(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }
}

/// The counters of `role` whose names start with `prefix`, by the rest of the name.
fn with_prefix<'a>(
    stats: &'a ServerStats,
    role: Role,
    prefix: &'a str,
) -> impl Iterator<Item = (&'a str, u64)> + 'a {
    stats
        .roles
        .get(&role)
        .into_iter()
        .flat_map(|r| r.counters.iter())
        .filter_map(move |(k, v)| k.strip_prefix(prefix).map(|rest| (rest, *v)))
}

/// Renders the page from the engine's hosts and alerts and the supervisor's figures.
pub fn render(
    hosts: &[hb_ipc::edge::HostSummary],
    alerts: &[hb_ipc::edge::AlertSummary],
    stats: &ServerStats,
) -> String {
    let mut out = Out(String::with_capacity(4096 + hosts.len() * 160));
    write_hosts(&mut out, hosts);
    out.counts(
        "hb_alerts",
        "Active alerts by level.",
        "level",
        &["critical", "warning", "unknown"],
        alerts
            .iter()
            .map(|a| Cow::Owned(a.level.to_ascii_lowercase())),
    );
    write_intake(&mut out, stats);
    write_processes(&mut out, stats);
    out.0
}

/// Hosts by state, and each host's state, round-trip time and last heartbeat.
fn write_hosts(out: &mut Out, hosts: &[hb_ipc::edge::HostSummary]) {
    out.counts(
        "hb_hosts",
        "Hosts by state.",
        "state",
        &["up", "overdue", "down", "unreachable", "shutdown"],
        hosts.iter().map(|h| Cow::Borrowed(h.state.as_str())),
    );
    out.family(
        "hb_host_up",
        "gauge",
        "1 while the host is up, 0 while overdue, down, unreachable or shut down.",
    );
    for h in hosts {
        out.sample(
            "hb_host_up",
            &[("host", &h.name)],
            if h.state == "up" { 1.0 } else { 0.0 },
        );
    }
    out.family(
        "hb_host_rtt_seconds",
        "gauge",
        "Round-trip time each host last reported.",
    );
    for h in hosts {
        if let Some(rtt) = h.rtt_ms {
            out.sample("hb_host_rtt_seconds", &[("host", &h.name)], rtt / 1000.0);
        }
    }
    out.family(
        "hb_host_last_seen_timestamp_seconds",
        "gauge",
        "Unix time of each host's last heartbeat.",
    );
    for h in hosts {
        out.sample(
            "hb_host_last_seen_timestamp_seconds",
            &[("host", &h.name)],
            h.last_seen_ms as f64 / 1000.0,
        );
    }
}

/// Datagrams received and rejected, messages applied, notifications sent and failed.
fn write_intake(out: &mut Out, stats: &ServerStats) {
    out.family(
        "hb_datagrams_received_total",
        "counter",
        "Datagrams the receiver took in.",
    );
    for (name, v) in with_prefix(stats, Role::Receiver, "datagrams") {
        if name.is_empty() {
            out.sample("hb_datagrams_received_total", &[], v as f64);
        }
    }
    out.counters_by(
        "hb_datagrams_rejected_total",
        "Datagrams the receiver rejected, by reason.",
        "reason",
        with_prefix(stats, Role::Receiver, "rejected_"),
    );
    out.counters_by(
        "hb_messages_total",
        "Messages the engine applied, by kind (HTB, PLG, ...).",
        "kind",
        with_prefix(stats, Role::Engine, "received_"),
    );
    out.family(
        "hb_notifications_total",
        "counter",
        "Notifications by channel and outcome.",
    );
    for (prefix, outcome) in [("notify_sent.", "sent"), ("notify_failed.", "failed")] {
        for (channel, v) in with_prefix(stats, Role::Engine, prefix) {
            out.sample(
                "hb_notifications_total",
                &[("channel", channel), ("outcome", outcome)],
                v as f64,
            );
        }
    }
}

/// Each process's restarts and whether it runs, the uptime, and every role's raw figures.
fn write_processes(out: &mut Out, stats: &ServerStats) {
    out.family(
        "hb_process_restarts_total",
        "counter",
        "Restarts of each process since the supervisor started.",
    );
    for (role, r) in &stats.roles {
        out.sample(
            "hb_process_restarts_total",
            &[("role", &role.to_string())],
            f64::from(r.restarts),
        );
    }
    out.family("hb_process_up", "gauge", "1 while the process runs.");
    for (role, r) in &stats.roles {
        out.sample(
            "hb_process_up",
            &[("role", &role.to_string())],
            if r.running { 1.0 } else { 0.0 },
        );
    }
    out.family(
        "hb_uptime_seconds",
        "gauge",
        "Seconds since the supervisor started.",
    );
    out.sample("hb_uptime_seconds", &[], stats.uptime_s as f64);
    out.family(
        "hb_process_figure",
        "untyped",
        "Every figure of every process as hbctl counters shows them (counters and gauges alike).",
    );
    for (role, r) in &stats.roles {
        for (name, v) in &r.counters {
            out.sample(
                "hb_process_figure",
                &[("role", &role.to_string()), ("name", name)],
                *v as f64,
            );
        }
    }
}

/// Who may read `/metrics`.
pub struct MetricsReader;

impl FromRequestParts<Arc<Web>> for MetricsReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, web: &Arc<Web>) -> Result<Self, ApiError> {
        if let Some(token) = &web.config().metrics_token {
            let sent = parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            if hb_proto::sign::constant_time_eq(sent.trim().as_bytes(), token.as_bytes()) {
                return Ok(MetricsReader);
            }
        }
        let authed = Authed::from_request_parts(parts, web).await?;
        if authed.viewer.is_admin() {
            Ok(MetricsReader)
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "/metrics is for admins and the metrics_token",
            ))
        }
    }
}

pub fn routes() -> Router<Arc<Web>> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(web): WebState, _reader: MetricsReader) -> Response {
    let hosts = match web.host_list().await {
        Ok(hosts) => hosts,
        Err(e) => return e.into_response(),
    };
    // No figure beats a wrong one: an engine that cannot list its alerts is 503, not "0".
    let alerts = match web.ask(Query::Alerts {}).await {
        Ok(Answer::Alerts { alerts }) => alerts,
        Ok(_) => {
            return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no alerts from the engine")
                .into_response();
        }
        Err(e) => return e.into_response(),
    };
    let mut stats = web.stats(STATS_WAIT).await.unwrap_or_default();
    let mine = stats
        .roles
        .entry(Role::Web)
        .or_insert_with(RoleStats::default);
    mine.running = true;
    mine.counters = web.counters();
    web.count("metrics_scrapes");
    let mut r = render(&hosts, &alerts, &stats).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_families_declared() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let mut stats = ServerStats::default();
        stats.roles.insert(
            Role::Receiver,
            RoleStats {
                running: true,
                restarts: 2,
                counters: [
                    ("datagrams".to_string(), 7),
                    ("rejected_bad_name".into(), 3),
                ]
                .into_iter()
                .collect(),
            },
        );
        let text = render(&[], &[], &stats);
        assert!(text.contains("hb_datagrams_received_total 7\n"), "{text}");
        assert!(text.contains("hb_datagrams_rejected_total{reason=\"bad_name\"} 3\n"));
        assert!(text.contains("hb_process_restarts_total{role=\"receiver\"} 2\n"));
        assert!(text.contains("hb_hosts{state=\"down\"} 0\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or("");
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} has no TYPE"
            );
        }
    }
}
