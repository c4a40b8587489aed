//! The JSON shapes of hosts, alerts and events, as the API lists them and the live feed
//! sends them.

use hb_ipc::edge::{AlertSummary, EventSummary, HostSummary};
use hb_web::access::{HostRole, Viewer};
use serde_json::{Value, json};

/// Unix seconds with milliseconds, as the original's API gives times.
pub fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// A host as listed, serialized straight from the summary: lists of 10,000 hosts are built
/// without a JSON tree in between.
#[derive(serde::Serialize)]
pub struct HostOut<'a> {
    name: &'a str,
    last_seen: f64,
    address: String,
    port: u16,
    interval: u32,
    heartbeats: u64,
    rtt: Option<f64>,
    ver: Option<&'a str>,
    signed: bool,
    state: &'a str,
    state_since: f64,
    watched: bool,
    owner: Option<&'a str>,
    #[serde(rename = "dyn")]
    dyn_dns: bool,
    role: Option<&'static str>,
}

impl<'a> HostOut<'a> {
    pub fn new(h: &'a HostSummary, role: Option<HostRole>) -> HostOut<'a> {
        HostOut {
            name: &h.name,
            last_seen: seconds(h.last_seen_ms),
            address: h.address.ip().to_canonical().to_string(),
            port: h.address.port(),
            interval: h.interval,
            heartbeats: h.heartbeats,
            rtt: h.rtt_ms,
            ver: h.version.as_deref(),
            signed: h.signed,
            state: &h.state,
            state_since: seconds(h.state_since_ms),
            watched: h.watched,
            owner: h.owner.as_deref(),
            dyn_dns: h.dyn_dns,
            role: role.map(HostRole::name),
        }
    }
}

/// The hosts `viewer` sees, as a JSON array, each with the viewer's role.
pub fn hosts_json<'a>(hosts: impl Iterator<Item = &'a HostSummary>, viewer: &Viewer) -> String {
    let list: Vec<HostOut<'_>> = hosts
        .filter_map(|h| viewer.role(h).map(|role| HostOut::new(h, Some(role))))
        .collect();
    serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
}

pub fn host_json(h: &HostSummary, role: Option<HostRole>) -> Value {
    json!({
        "name": h.name,
        "last_seen": seconds(h.last_seen_ms),
        "address": h.address.ip().to_canonical().to_string(),
        "port": h.address.port(),
        "interval": h.interval,
        "heartbeats": h.heartbeats,
        "rtt": h.rtt_ms,
        "ver": h.version,
        "signed": h.signed,
        "state": h.state,
        "state_since": seconds(h.state_since_ms),
        "watched": h.watched,
        "owner": h.owner,
        "dyn": h.dyn_dns,
        "role": role.map(HostRole::name),
    })
}

pub fn alert_json(a: &AlertSummary) -> Value {
    json!({
        "key": a.key,
        "host": a.host,
        "metric": a.metric,
        "level": a.level,
        "since": seconds(a.since_ms),
        "opened": seconds(a.opened_ms),
        "text": a.text,
        "notified": a.notified,
        "acknowledged": a.acknowledged.is_some(),
        "acknowledged_by": a.acknowledged,
    })
}

pub fn event_json(e: &EventSummary) -> Value {
    json!({"time": seconds(e.time_ms), "host": e.host, "msg": e.msg})
}
