//! Deadline sweep cost and memory per host (issue 4, acceptance 7).
//!
//! `cargo bench -p hb-engine --bench liveness` prints, for 10k, 100k and 1M hosts heartbeating
//! every 10 s (spread evenly), the cost of a heartbeat, of a tick with nothing due, of a tick
//! where 1 % of the hosts fall due, and the resident memory per host; then the whole engine
//! state (host table, liveness, change tracking) per host at 10k, 100k and 1M hosts (the
//! limit raised as `max_hosts` does), fed real heartbeat messages, with what the event loop
//! sends the web every 25 ms let go as it does. Figures vary with the machine; the ratios between sizes are
//! the point (a tick must cost what falls due).

use std::hint::black_box;
use std::time::Instant;

use hb_engine::liveness::{Liveness, Timing};
use hb_engine::state::State;
use hb_ipc::edge::ReceiverToEngine;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    engine_state();
    let timing = Timing {
        interval_ms: 10_000,
        grace_ms: 2_000,
        max_missed: 2,
    };
    println!(
        "{:>9} {:>14} {:>16} {:>14} {:>18} {:>14} {:>14}",
        "hosts",
        "heartbeat ns",
        "idle tick ns",
        "stale ns/host",
        "1% due: ns/host",
        "bytes/host",
        "deadlines"
    );
    for n in [10_000u64, 100_000, 1_000_000] {
        let names: Vec<String> = (0..n).map(|i| format!("host{i:07}.example.net")).collect();
        let before = rss_kib();
        let mut live = Liveness::default();
        let start = Instant::now();
        for (i, name) in names.iter().enumerate() {
            // Spread over one interval, like a fleet of independent clients.
            live.heartbeat(name, (i as u64 * 10_000) / n, timing);
        }
        let heartbeat_ns = start.elapsed().as_nanos() as f64 / n as f64;
        // A second round: every host heartbeats again, leaving a stale deadline each.
        for (i, name) in names.iter().enumerate() {
            live.heartbeat(name, 10_000 + (i as u64 * 10_000) / n, timing);
        }
        let bytes = (rss_kib().saturating_sub(before) * 1024) as f64 / n as f64;
        let idle = Instant::now();
        for t in 0..1000 {
            black_box(live.tick(11_000 + t % 2));
        }
        let idle_ns = idle.elapsed().as_nanos() as f64 / 1000.0;
        // The first round's deadlines are stale now; dropping them is the lazy deletion's
        // cost, paid once per heartbeat.
        let stale_start = Instant::now();
        let stale = live.tick(21_999);
        let stale_ns = stale_start.elapsed().as_nanos() as f64 / n as f64;
        assert!(stale.is_empty());
        // 1 % of the hosts fall due.
        let due_start = Instant::now();
        let due = live.tick(22_000 + 99);
        let due_ns = due_start.elapsed().as_nanos() as f64 / due.len().max(1) as f64;
        println!(
            "{n:>9} {heartbeat_ns:>14.0} {idle_ns:>16.0} {stale_ns:>14.0} {due_ns:>18.0} {bytes:>14.0} {:>14}",
            live.pending()
        );
        assert_eq!(due.len() as u64, n / 100, "1 % overdue");
    }
}

/// The whole engine state, measured first, while the heap is fresh.
fn engine_state() {
    println!(
        "{:>9} {:>16} {:>16} {:>14} {:>18}",
        "hosts", "first msg ns", "heartbeat ns", "bytes/host", "1% due: ns/host"
    );
    for n in [10_000u64, 100_000, 1_000_000] {
        let mut state = State::new(0);
        state.set_host_limit(n as usize);
        let before = rss_kib();
        // Every host heartbeats once, spread over an interval from `from`; ns per message.
        let round = |state: &mut State, from: u64| {
            let start = Instant::now();
            for i in 0..n {
                let name = format!("host{i:07}.example.net");
                state.received(ReceiverToEngine::Received {
                    message: serde_json::json!({"ID": "HTB", "name": name, "interval": 10, "rtt": 0.7, "ver": "0.1.0"}).into(),
                    host: name,
                    source: std::net::SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 40000)),
                    received_ms: from + (i * 10_000) / n,
                    signed: false,
                });
                // What the event loop does on its feed tick (every 25 ms; 256 messages is
                // 25 ms at 10,000 per second): what was sent to the web is not held.
                if i % 256 == 255 {
                    state.flush_changes();
                    state.changes.clear();
                    state.to_receiver.clear();
                }
            }
            start.elapsed().as_nanos() as f64 / n as f64
        };
        let first_ns = round(&mut state, 0);
        // Steady state: every host heartbeats again.
        let message_ns = round(&mut state, 10_000);
        state.flush_changes();
        state.changes.clear();
        let bytes = (rss_kib().saturating_sub(before) * 1024) as f64 / n as f64;
        // The first round's deadlines are stale; drop them first (measured above).
        state.tick(21_999);
        // 1 % of the hosts overdue in one tick, through the whole engine path.
        let due_start = Instant::now();
        state.tick(22_000 + 99);
        let due_ns = due_start.elapsed().as_nanos() as f64 / (n / 100) as f64;
        let changed = state.changes.len();
        println!("{n:>9} {first_ns:>16.0} {message_ns:>16.0} {bytes:>14.0} {due_ns:>18.0}");
        assert_eq!(changed as u64, n / 100, "1 % overdue");
        black_box(&state);
    }
    println!();
}
