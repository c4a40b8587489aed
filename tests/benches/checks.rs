//! Pings per second (issue 10, acceptance 5): the real release server, pinned to one core
//! (`taskset -c 0`, all six processes) with its store on, taking Healthchecks-style pings
//! (`GET /ping/<uuid>`) for 1,000 checks from clients on the other core over keep-alive
//! connections. Every answer is counted, and is given only once the ping is committed to
//! the store. Healthchecks' own handler does about 250 pings/s; the ratio is printed.
//!
//! Run: `cargo build --release --workspace --bins && cargo bench -p hb-tests --bench checks`.
//! It prints a human summary and one JSON line.

#![forbid(unsafe_code)]

#[path = "../tests/e2e/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use harness::*;
use serde_json::json;

const CHECKS: usize = 1000;
const CLIENTS: usize = 16;
const SECONDS: u64 = 15;
/// Healthchecks' figure for its ping handler.
const HEALTHCHECKS: f64 = 250.0;

fn uuid(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

/// One keep-alive client: pings until `stop`; latencies in µs.
fn client(
    port: u16,
    n: usize,
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    bad: Arc<AtomicU64>,
) -> Vec<u64> {
    let mut lat = Vec::new();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut i = n;
    while !stop.load(Ordering::Relaxed) {
        i = (i + CLIENTS) % CHECKS;
        let request = format!("GET /ping/{} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", uuid(i));
        let t = Instant::now();
        if stream.write_all(request.as_bytes()).is_err() {
            break;
        }
        let mut status = String::new();
        if reader.read_line(&mut status).is_err() || status.is_empty() {
            break;
        }
        let mut length = 0;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            break;
        }
        lat.push(t.elapsed().as_micros() as u64);
        if status.contains(" 200 ") {
            ok.fetch_add(1, Ordering::Relaxed);
        } else {
            bad.fetch_add(1, Ordering::Relaxed);
        }
    }
    lat
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    require_tool("taskset", "util-linux");
    let mut checks =
        String::from("ping_rate_per_address: 1000000\nping_rate_per_check: 1000000\nchecks:\n");
    for i in 0..CHECKS {
        checks.push_str(&format!("  c{i}: {{uuid: {}, interval: 3600}}\n", uuid(i)));
    }
    let mut server = Server::prepare("bench-checks", &checks);
    let log = std::fs::File::create(&server.log).expect("log");
    let child = std::process::Command::new("taskset")
        .args(["-c", "0"])
        .arg(bin("hbsupervisor"))
        .args(["-f", "-c"])
        .arg(&server.config)
        .stdout(log.try_clone().expect("dup"))
        .stderr(log)
        .spawn()
        .expect("taskset hbsupervisor");
    server.child = Some(child);
    server.wait_running(Duration::from_secs(30));
    // Clients on the other core.
    let me = std::process::id().to_string();
    let _ = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", "1", &me])
        .output();
    let port = server.http_port;
    // Warm up: every check pinged once (its first ping makes it a host).
    for i in 0..CHECKS {
        let r = http(port, "GET", &format!("/ping/{}", uuid(i)), &[], b"");
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let (stop, ok, bad) = (stop.clone(), ok.clone(), bad.clone());
            std::thread::spawn(move || client(port, n, stop, ok, bad))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(SECONDS));
    stop.store(true, Ordering::Relaxed);
    let mut lat: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap_or_default())
        .collect();
    let secs = started.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len().max(1) - 1) as f64 * p) as usize)
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    let ok = ok.load(Ordering::Relaxed);
    let rate = ok as f64 / secs;
    let stored = server.counter("engine", "pings_success");
    println!(
        "pings on one core (taskset -c 0), store on, {CHECKS} checks, {CLIENTS} keep-alive clients, {SECONDS} s:"
    );
    println!(
        "  {rate:.0} pings/s answered 200 ({ok} in {secs:.1} s; {} not 200); latency p50 {:.2} ms, p99 {:.2} ms",
        bad.load(Ordering::Relaxed),
        pct(0.5),
        pct(0.99)
    );
    println!(
        "  the engine counted {stored} successful pings (warm-up included); {:.1}x Healthchecks' ~{HEALTHCHECKS:.0}/s",
        rate / HEALTHCHECKS
    );
    println!(
        "{}",
        json!({"bench": "checks_pings", "pings_per_s": rate, "ok": ok, "not_ok": bad.load(Ordering::Relaxed),
            "p50_ms": pct(0.5), "p99_ms": pct(0.99), "engine_pings_success": stored,
            "ratio_to_healthchecks": rate / HEALTHCHECKS, "checks": CHECKS, "clients": CLIENTS})
    );
}
