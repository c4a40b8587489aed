//! hbc's own footprint (issue 9, acceptance 5): memory and CPU of the real release hbc with
//! the default plugin set, sending to a UDP sink on loopback that answers every datagram
//! with an ACK, as a server would.
//!
//! Two runs of `SECONDS` each: the default set at its default intervals (heartbeat every
//! 10 s, monitors every 300 s: one round of plugins at start), and the same plugins every
//! 10 s, which gives the CPU cost of one round. CPU per hour at the defaults is then 12
//! rounds plus 360 heartbeats plus what the process costs idle, from the two runs.
//!
//! Run: `cargo build --release --workspace --bins && cargo bench -p hb-tests --bench hbc`.
//! It prints a human summary and one JSON line.

#![forbid(unsafe_code)]

#[path = "../tests/e2e/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use harness::*;
use serde_json::{Value, json};

const SECONDS: u64 = 120;

/// Answers each heartbeat with an ACK echoing its name and seq; counts datagrams.
fn sink() -> (u16, Arc<AtomicU64>, Arc<AtomicBool>) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let port = socket.local_addr().expect("addr").port();
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (c, s) = (count.clone(), stop.clone());
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        while !s.load(Ordering::Relaxed) {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            c.fetch_add(1, Ordering::Relaxed);
            let Ok(v) = hb_proto::datagram::decode_client(&buf[..n], &Default::default()) else {
                continue;
            };
            let msg = v.message.to_json();
            let ack = json!({"ID": "ACK", "name": msg["name"], "seq": msg["seq"], "ts": msg["ts"]});
            let _ = socket.send_to(ack.to_string().as_bytes(), from);
        }
    });
    (port, count, stop)
}

/// CPU time of `pid` in seconds: the sum of its threads' run time from schedstat
/// (nanoseconds; utime and stime count 10 ms ticks, too coarse for a process this idle).
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .sum::<f64>()
        / 1e9
}

fn kib(pid: u32, field: &str) -> f64 {
    proc_status(pid, field)
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

struct Run {
    cpu_s: f64,
    rss_kib_median: f64,
    rss_kib_peak: f64,
    datagrams: u64,
}

fn run(name: &str, plugins_every_10s: bool) -> Run {
    let dir = scratch(&format!("hbc-footprint-{name}"));
    let (port, count, stop) = sink();
    let mut config = format!("name: foot1\ninterval: 10\nhb_port: {port}\nservers: [127.0.0.1]\n");
    if plugins_every_10s {
        config.push_str(
            "plugins:\n  os_info: {}\n  filesystem_info: {}\n  cpu_monitor: {interval: 10}\n  memory_monitor: {interval: 10}\n  disk_monitor: {interval: 10}\n  network_monitor: {interval: 10}\n",
        );
    }
    let path = dir.join("hbc.yaml");
    std::fs::write(&path, config).expect("config");
    let mut hbc = Hbc::start(&dir, &["-c", path.to_str().expect("utf8")]);
    let pid = hbc.child.id();
    let started = Instant::now();
    let mut rss = Vec::new();
    while started.elapsed() < Duration::from_secs(SECONDS) {
        std::thread::sleep(Duration::from_secs(1));
        rss.push(kib(pid, "VmRSS"));
    }
    let cpu_s = cpu_seconds(pid);
    let peak = kib(pid, "VmHWM");
    hbc.stop();
    stop.store(true, Ordering::Relaxed);
    rss.sort_by(f64::total_cmp);
    Run {
        cpu_s,
        rss_kib_median: rss[rss.len() / 2],
        rss_kib_peak: peak,
        datagrams: count.load(Ordering::Relaxed),
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let defaults = run("defaults", false);
    let fast = run("every10s", true);
    // Rounds of the monitors: 1 in the default run, SECONDS/10 in the fast one (each starts
    // with a round).
    let rounds_fast = (SECONDS / 10) as f64;
    let per_round_s = ((fast.cpu_s - defaults.cpu_s) / (rounds_fast - 1.0)).max(0.0);
    let base_s = (defaults.cpu_s - per_round_s).max(0.0);
    // Per hour at the defaults: the base (heartbeats, timers) scaled to an hour, and 12
    // rounds of monitors (every 300 s).
    let per_hour_s = base_s * 3600.0 / SECONDS as f64 + 12.0 * per_round_s;
    println!("hbc footprint, default plugin set, {SECONDS} s per run (release build):");
    println!(
        "  defaults (monitors every 300 s): RSS median {:.0} KiB, peak {:.0} KiB; CPU {:.4} s; {} datagrams",
        defaults.rss_kib_median, defaults.rss_kib_peak, defaults.cpu_s, defaults.datagrams
    );
    println!(
        "  monitors every 10 s:             RSS median {:.0} KiB, peak {:.0} KiB; CPU {:.4} s; {} datagrams",
        fast.rss_kib_median, fast.rss_kib_peak, fast.cpu_s, fast.datagrams
    );
    println!(
        "  one round of the monitors: {:.1} ms CPU; at the defaults: {:.2} s CPU per hour ({:.4} % of one core)",
        per_round_s * 1000.0,
        per_hour_s,
        per_hour_s / 36.0
    );
    let out: Value = json!({
        "bench": "hbc_footprint",
        "seconds": SECONDS,
        "defaults": {"rss_kib_median": defaults.rss_kib_median, "rss_kib_peak": defaults.rss_kib_peak, "cpu_s": defaults.cpu_s, "datagrams": defaults.datagrams},
        "every_10s": {"rss_kib_median": fast.rss_kib_median, "rss_kib_peak": fast.rss_kib_peak, "cpu_s": fast.cpu_s, "datagrams": fast.datagrams},
        "cpu_ms_per_round": per_round_s * 1000.0,
        "cpu_s_per_hour_at_defaults": per_hour_s,
    });
    println!("{out}");
}
