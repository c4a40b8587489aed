//! The pipeline's figures that need the whole server (issue 11), against the real release
//! binaries on loopback, with a fleet of 10,000 simulated hosts heartbeating at 10,000/s
//! (hbload, on the same machine) the whole time:
//!
//! - latency (figure 5): a probe host heartbeats every 50 ms; a WebSocket client on `/ws`
//!   times each heartbeat from its datagram to the live update that carries it;
//! - detection (figure 4): a watched host heartbeats every second, then stops; a recording
//!   webhook times the down notification against the deadline (`max_missed * interval +
//!   grace` = 4 s after the last heartbeat);
//! - memory (figure 3): the engine's RSS with no hosts, with the fleet, and with 100,000
//!   more hosts heartbeating every 10 s beside the fleet, per host.
//!
//! Run: `cargo build --release --workspace --bins && cargo bench -p hb-tests --bench pipeline`.
//! It prints a human summary and one JSON line.

#![forbid(unsafe_code)]

#[path = "../tests/e2e/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::*;
use serde_json::{Value, json};

const FLEET: u32 = 10_000;
const PROBES: u64 = 400;
const PROBE_EVERY: Duration = Duration::from_millis(50);
/// `max_missed` (2) heartbeats of 1 s and `grace` (2 s).
const DOWN_AFTER: Duration = Duration::from_secs(4);

fn rss_kib(pid: u32) -> u64 {
    proc_status(pid, "VmRSS")
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn hbload(hb_port: u16, args: &[&str]) -> std::process::Child {
    Command::new(bin("hbload"))
        .args(["-s", &format!("127.0.0.1:{hb_port}")])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("hbload")
}

/// Each heartbeat count of the probe, and when it was first shown.
type Shown = Arc<Mutex<Vec<(u64, Instant)>>>;

/// Reads the live feed until the probe's last heartbeat shows: when each count was first
/// shown.
fn follow_probe(mut stream: std::net::TcpStream) -> (Shown, std::thread::JoinHandle<()>) {
    let shown: Shown = Arc::default();
    let reader = {
        let shown = shown.clone();
        std::thread::spawn(move || {
            while let Some(text) = ws_read_text(&mut stream) {
                if !text.contains("\"probe\"") {
                    continue;
                }
                let at = Instant::now();
                let batch: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                for u in batch.as_array().into_iter().flatten() {
                    if u["type"] == "host"
                        && u["host"]["name"] == "probe"
                        && let Some(n) = u["host"]["heartbeats"].as_u64()
                        && let Ok(mut s) = shown.lock()
                    {
                        s.push((n, at));
                    }
                }
                if shown
                    .lock()
                    .is_ok_and(|s| s.last().is_some_and(|(n, _)| *n >= PROBES))
                {
                    return;
                }
            }
        })
    };
    (shown, reader)
}

/// The victim beats five times, a second apart, then falls silent: its last beat's time.
fn spawn_victim(port: u16) -> std::thread::JoinHandle<Instant> {
    std::thread::spawn(move || {
        let socket = UdpSocket::bind("127.0.0.3:0").expect("bind");
        let mut last = Instant::now();
        for seq in 1..=5 {
            let msg = json!({"ID": "HTB", "name": "victim", "interval": 1, "seq": seq});
            last = Instant::now();
            socket
                .send_to(msg.to_string().as_bytes(), ("127.0.0.1", port))
                .expect("send");
            if seq < 5 {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        last
    })
}

/// The probe beats every PROBE_EVERY: when each heartbeat went.
fn send_probes(port: u16) -> Vec<Instant> {
    let probe = UdpSocket::bind("127.0.0.2:0").expect("bind");
    let mut sent = Vec::with_capacity(PROBES as usize);
    for seq in 1..=PROBES {
        let msg = json!({"ID": "HTB", "name": "probe", "interval": 1, "seq": seq});
        sent.push(Instant::now());
        probe
            .send_to(msg.to_string().as_bytes(), ("127.0.0.1", port))
            .expect("send");
        std::thread::sleep(PROBE_EVERY);
    }
    sent
}

/// Heartbeat n shown first in the update whose count reached n (two beats within one 25 ms
/// tick are one update: the earlier one is timed to it too), in ms, sorted.
fn latencies(shown: &[(u64, Instant)], sent: &[Instant]) -> Vec<f64> {
    let mut latencies: Vec<f64> = (1..=PROBES)
        .filter_map(|n| {
            let at = shown.iter().find(|(count, _)| *count >= n)?.1;
            Some(at.duration_since(sent[(n - 1) as usize]).as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    latencies
}

/// When the victim's down page reached the webhook, ms after `deadline` (negative: before).
fn ms_after(hook: &Recorder, deadline: Instant) -> f64 {
    let paged = hook
        .requests("/hook")
        .into_iter()
        .find(|r| r.body.contains("\"victim\""))
        .expect("page");
    if paged.at >= deadline {
        paged.at.duration_since(deadline).as_secs_f64() * 1000.0
    } else {
        -(deadline.duration_since(paged.at).as_secs_f64() * 1000.0)
    }
}

fn main() {
    let hook = Recorder::start(&[("/hook", &[200])]);
    let server = Server::start(
        "bench-pipeline",
        &format!(
            "source_rate: 1000000\nsource_burst: 1000000\nmax_hosts: 200000\n\
             watchhosts: [victim]\nnotify: [hook]\n\
             notification_channels:\n  hook: {{type: webhook, url: \"http://127.0.0.1:{}/hook\"}}\n",
            hook.port
        ),
    );
    let engine = server.pid_of("engine").expect("engine pid");
    // Settle, then the engine's memory with no host.
    std::thread::sleep(Duration::from_secs(2));
    let rss_empty = rss_kib(engine);

    // The fleet: 10,000 hosts, each every second, for the whole run.
    let fleet = hbload(
        server.hb_port,
        &[
            "-n",
            &FLEET.to_string(),
            "-r",
            &FLEET.to_string(),
            "-d",
            "90",
            "--wait",
            "0",
        ],
    );
    assert!(
        wait_for(Duration::from_secs(20), || server
            .counter("engine", "hosts")
            >= u64::from(FLEET)),
        "the fleet did not arrive"
    );
    let rss_fleet = rss_kib(engine);

    // The live feed, as a dashboard gets it.
    let (status, stream) = ws_connect(server.http_port, "/ws", &[], None);
    assert_eq!(status, 101, "WebSocket refused");
    let mut stream = stream.expect("stream");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let snapshot = ws_read_text(&mut stream).expect("snapshot");
    assert!(snapshot.contains("\"type\":\"snapshot\""));
    // When each heartbeat count of the probe was first shown.
    let (shown, reader) = follow_probe(stream);

    // The victim beats 5 times, a second apart, then falls silent; meanwhile the probe.
    let victim = spawn_victim(server.hb_port);
    let sent = send_probes(server.hb_port);
    let _ = reader.join();
    let shown = shown.lock().expect("shown").clone();
    let latencies = latencies(&shown, &sent);
    let timed = latencies.len();

    let last_beat = victim.join().expect("victim");
    let deadline = last_beat + DOWN_AFTER;
    assert!(
        wait_for(Duration::from_secs(20), || hook
            .requests("/hook")
            .iter()
            .any(|r| r.body.contains("\"victim\""))),
        "no down notification for the victim"
    );
    let detection_ms = ms_after(&hook, deadline);
    let fleet_ok = server.counter("receiver", "engine_queue_dropped") == 0
        && server.counter("receiver", "kernel_dropped") == 0;

    // 100,000 more hosts, each every 10 s as a real fleet beats (10,000/s), beside the
    // fleet, and the engine's memory while all of them beat: hosts that stopped would all
    // go down, and what that changes is not what a host costs.
    let more = hbload(
        server.hb_port,
        &[
            "-n", "100000", "-r", "10000", "-d", "40", "--prefix", "many", "--wait", "0",
        ],
    );
    assert!(
        wait_for(Duration::from_secs(30), || server
            .counter("engine", "hosts")
            >= 100_000 + u64::from(FLEET)),
        "only {} hosts",
        server.counter("engine", "hosts")
    );
    // What their arrival freed is given back within 10 s (the engine trims its heap then).
    let rss_100k_peak = rss_kib(engine);
    std::thread::sleep(Duration::from_secs(11));
    let rss_100k = rss_kib(engine);
    let hosts_100k = server.counter("engine", "hosts") as f64;
    assert_eq!(server.counter("engine", "hosts_refused"), 0);
    for mut load in [more, fleet] {
        let _ = load.kill();
        let _ = load.wait();
    }
    let per_host_fleet = (rss_fleet.saturating_sub(rss_empty)) as f64 * 1024.0 / f64::from(FLEET);
    let per_host_100k = (rss_100k.saturating_sub(rss_empty)) as f64 * 1024.0 / hosts_100k;

    eprintln!(
        "latency, datagram to WebSocket update, with {FLEET} hosts at {FLEET}/s: {timed} of {PROBES} heartbeats timed; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    eprintln!(
        "detection: the down page reached the webhook {detection_ms:.0} ms after the deadline (last heartbeat + {DOWN_AFTER:?}); fleet without loss: {fleet_ok}"
    );
    eprintln!(
        "engine memory: {rss_empty} KiB with no host, {rss_fleet} KiB with {FLEET} ({per_host_fleet:.0} bytes per host), {rss_100k} KiB with {hosts_100k} ({per_host_100k:.0} bytes per host; {rss_100k_peak} KiB right after they arrived)"
    );
    println!(
        "{}",
        json!({
            "bench": "pipeline",
            "fleet_hosts": FLEET, "fleet_rate": FLEET,
            "ws_latency_ms": {"timed": timed, "of": PROBES,
                "p50": percentile(&latencies, 0.5), "p99": percentile(&latencies, 0.99),
                "max": percentile(&latencies, 1.0)},
            "detection_ms_after_deadline": detection_ms,
            "fleet_without_loss": fleet_ok,
            "engine_rss_kib": {"empty": rss_empty, "fleet": rss_fleet, "hosts_100k": rss_100k,
                "hosts_100k_on_arrival": rss_100k_peak},
            "engine_bytes_per_host": {"fleet": per_host_fleet, "hosts_100k": per_host_100k},
        })
    );
}
