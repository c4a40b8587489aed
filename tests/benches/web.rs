//! The web's figures with 10,000 hosts (issue 8, acceptance 6), against the real release
//! binaries on loopback, the load generator on the same machine:
//!
//! - `GET /api/0/hosts`: latency of one client and throughput of four, beside
//!   `GET /api/0/status` (the same engine round trip with a small answer) as the baseline;
//! - first paint of `/live` in headless Chromium, and the time until the live feed's
//!   snapshot is applied to every row;
//! - WebSocket fan-out: 500 clients, how long a new host takes to reach all of them.
//!
//! Run: `cargo build --release --workspace --bins && cargo bench -p hb-tests --bench web`.
//! It prints a human summary and one JSON line.

#![forbid(unsafe_code)]

#[path = "../tests/e2e/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "../tests/e2e/webdriver.rs"]
#[allow(dead_code)]
mod webdriver;

use std::net::UdpSocket;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::*;
use serde_json::{Value, json};

const HOSTS: u32 = 10_000;
const WS_CLIENTS: usize = 500;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Latencies of `n` sequential GETs (ms, sorted) and the body size.
fn latencies(port: u16, path: &str, auth: &str, n: usize) -> (Vec<f64>, usize) {
    let mut out = Vec::with_capacity(n);
    let mut size = 0;
    for _ in 0..n {
        let t = Instant::now();
        let r = http(port, "GET", path, &[("Authorization", auth)], b"");
        out.push(ms(t.elapsed()));
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        size = r.body.len();
    }
    out.sort_by(f64::total_cmp);
    (out, size)
}

/// Requests per second from `clients` threads for `secs`.
fn throughput(port: u16, path: &str, auth: &str, clients: usize, secs: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (path, auth) = (path.to_string(), auth.to_string());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    if http(port, "GET", &path, &[("Authorization", &auth)], b"").status == 200 {
                        n += 1;
                    }
                }
                n
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    total as f64 / secs
}

/// 10,000 hosts from 100 source addresses (within the per-source rate limit), paced.
fn populate(hb_port: u16) {
    let sockets: Vec<UdpSocket> = (0..100u32)
        .map(|s| {
            UdpSocket::bind((format!("127.0.{}.{}", 20 + s / 200, 1 + s % 200), 0)).expect("bind")
        })
        .collect();
    for (s, socket) in sockets.iter().enumerate() {
        for i in 0..HOSTS / 100 {
            let msg = json!({"ID": "HTB", "name": format!("host{s:03}-{i:03}"), "interval": 60, "rtt": 0.3 + f64::from(i % 50) / 10.0, "ver": "0.1.0"});
            let _ = socket.send_to(msg.to_string().as_bytes(), ("127.0.0.1", hb_port));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// /live loaded five times in Chromium: first contentful paint and time until every row is
/// current, ms, sorted; and the page's HTML size.
fn first_paints(dir: &std::path::Path, port: u16) -> (Vec<f64>, Vec<f64>, u64) {
    let browser = webdriver::Browser::start(dir);
    let base = format!("http://127.0.0.1:{port}");
    browser.go(&format!("{base}/login"));
    browser.type_into("#username", "alice");
    browser.type_into("#password", "bench-pw");
    browser.click("#login-button");
    browser.wait_find("#host-rows tr", Duration::from_secs(60));
    let mut paints = Vec::new();
    let mut lives = Vec::new();
    let mut html_size = 0;
    for _ in 0..5 {
        browser.go(&format!("{base}/live"));
        let loaded = Instant::now();
        assert!(
            wait_for(Duration::from_secs(60), || browser.text("#conn") == "live"),
            "the live feed did not connect"
        );
        // Every row's last-seen cell set by the snapshot.
        assert!(wait_for(Duration::from_secs(60), || {
            browser.js("return document.querySelectorAll('#host-rows tr').length;") == json!(HOSTS)
        }));
        let live = ms(loaded.elapsed());
        let paint = browser.js(
            "const p = performance.getEntriesByType('paint').find(e => e.name === 'first-contentful-paint'); return p ? p.startTime : null;",
        );
        html_size = browser
            .js("return document.documentElement.outerHTML.length;")
            .as_u64()
            .unwrap_or(0);
        if let Some(p) = paint.as_f64() {
            paints.push(p);
        }
        lives.push(live);
    }
    paints.sort_by(f64::total_cmp);
    lives.sort_by(f64::total_cmp);
    drop(browser);
    (paints, lives, html_size)
}

/// Readers of the live feed: when each probe host first reached each.
type Arrivals = Arc<Mutex<Vec<(String, Instant)>>>;

/// WS_CLIENTS clients on /ws, each reading until the last probe host arrives.
fn ws_clients(port: u16, auth: &str, arrivals: &Arrivals) -> Vec<std::thread::JoinHandle<()>> {
    let mut readers = Vec::new();
    for _ in 0..WS_CLIENTS {
        let (status, stream) = ws_connect(port, "/ws", &[("Authorization", auth)], None);
        assert_eq!(status, 101, "WebSocket refused");
        let mut stream = stream.expect("stream");
        // Connecting them all takes a while: the first must wait for the probes.
        stream
            .set_read_timeout(Some(Duration::from_secs(300)))
            .expect("timeout");
        let snapshot = ws_read_text(&mut stream).expect("snapshot");
        assert!(snapshot.contains("\"type\":\"snapshot\""));
        let arrivals = arrivals.clone();
        readers.push(std::thread::spawn(move || {
            // Only the first arrival of each probe counts (a host may change again).
            let mut got = std::collections::HashSet::new();
            while let Some(text) = ws_read_text(&mut stream) {
                if !text.contains("probe-") {
                    continue;
                }
                let at = Instant::now();
                let batch: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                for u in batch.as_array().into_iter().flatten() {
                    if u["type"] == "host"
                        && let Some(name) = u["host"]["name"].as_str()
                        && name.starts_with("probe-")
                    {
                        if got.insert(name.to_string())
                            && let Ok(mut a) = arrivals.lock()
                        {
                            a.push((name.to_string(), at));
                        }
                        if name == "probe-last" {
                            return;
                        }
                    }
                }
            }
        }));
    }
    readers
}

/// Milliseconds from each probe host's heartbeat until every client showed it (sorted),
/// and until each client did (sorted); and how long connecting them all took.
fn fan_out(server: &Server, auth: &str) -> (f64, Vec<f64>, Vec<f64>) {
    let arrivals: Arrivals = Arc::default();
    let connected = Instant::now();
    let readers = ws_clients(server.http_port, auth, &arrivals);
    let connect_all = ms(connected.elapsed());
    let probe = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut sent: Vec<(String, Instant)> = Vec::new();
    for i in 0..20 {
        let name = format!("probe-{i:02}");
        let msg = json!({"ID": "HTB", "name": name, "interval": 60});
        sent.push((name, Instant::now()));
        let _ = probe.send_to(msg.to_string().as_bytes(), ("127.0.0.1", server.hb_port));
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = probe.send_to(
        br#"{"ID":"HTB","name":"probe-last","interval":60}"#,
        ("127.0.0.1", server.hb_port),
    );
    for r in readers {
        let _ = r.join();
    }
    let arrivals = arrivals.lock().map(|a| a.clone()).unwrap_or_default();
    let mut to_all = Vec::new();
    let mut to_each = Vec::new();
    for (name, at) in &sent {
        let got: Vec<Instant> = arrivals
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, t)| *t)
            .collect();
        assert_eq!(
            got.len(),
            WS_CLIENTS,
            "{name} reached {} of {WS_CLIENTS} clients; web {}",
            got.len(),
            server.counters("web")
        );
        to_each.extend(got.iter().map(|t| ms(t.duration_since(*at))));
        to_all.push(
            got.iter()
                .map(|t| ms(t.duration_since(*at)))
                .fold(0.0, f64::max),
        );
    }
    to_all.sort_by(f64::total_cmp);
    to_each.sort_by(f64::total_cmp);
    (connect_all, to_all, to_each)
}

fn main() {
    let dir = scratch("bench-web");
    let hash = hb_child::passwd::PasswordHash::with_salt("bench-pw", "benchsalt", 1000);
    let server = Server::start(
        "bench-web",
        &format!("users:\n  alice: {{password: \"{hash}\", admin: true}}\ninterval: 60\n"),
    );
    let port = server.http_port;
    let auth = format!("Bearer {}", api_login(port, "alice", "bench-pw"));

    let populated = Instant::now();
    populate(server.hb_port);
    let status = || {
        http(
            port,
            "GET",
            "/api/0/status",
            &[("Authorization", &auth)],
            b"",
        )
        .json()
    };
    assert!(
        wait_for(Duration::from_secs(60), || status()["hosts"].as_u64()
            == Some(u64::from(HOSTS))),
        "only {} hosts arrived",
        status()["hosts"]
    );
    eprintln!("{HOSTS} hosts known after {:?}", populated.elapsed());

    // REST.
    let (hosts_lat, hosts_size) = latencies(port, "/api/0/hosts", &auth, 50);
    let (status_lat, _) = latencies(port, "/api/0/status", &auth, 50);
    let hosts_rps = throughput(port, "/api/0/hosts", &auth, 4, 5.0);
    let status_rps = throughput(port, "/api/0/status", &auth, 4, 5.0);

    // First paint of /live, five times.
    let (paints, lives, html_size) = first_paints(&dir, port);

    // WebSocket fan-out: 500 clients; each new host must reach every one.
    let (connect_all, to_all, to_each) = fan_out(&server, &auth);

    let p = |v: &[f64], q| percentile(v, q);
    println!(
        "hb web figures, {HOSTS} hosts, release build, generator and browser on the same machine"
    );
    println!(
        "GET /api/0/hosts   ({hosts_size} bytes): p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms; {hosts_rps:.0} req/s from 4 clients ({:.1} us per host)",
        p(&hosts_lat, 0.5),
        p(&hosts_lat, 0.9),
        p(&hosts_lat, 1.0),
        p(&hosts_lat, 0.5) * 1000.0 / f64::from(HOSTS)
    );
    println!(
        "GET /api/0/status  (baseline): p50 {:.1} ms; {status_rps:.0} req/s; /hosts costs {:.1}x its latency",
        p(&status_lat, 0.5),
        p(&hosts_lat, 0.5) / p(&status_lat, 0.5)
    );
    println!(
        "/live ({html_size} bytes of HTML): first contentful paint p50 {:.0} ms (max {:.0}); live with every row current p50 {:.0} ms (max {:.0})",
        p(&paints, 0.5),
        p(&paints, 1.0),
        p(&lives, 0.5),
        p(&lives, 1.0)
    );
    println!(
        "WebSocket fan-out to {WS_CLIENTS} clients: {connect_all:.0} ms to connect all (each with a {HOSTS}-host snapshot); a new host reaches every client in p50 {:.1} ms, p99 {:.1} ms (each client: p50 {:.1} ms, p99 {:.1} ms)",
        p(&to_all, 0.5),
        p(&to_all, 0.99),
        p(&to_each, 0.5),
        p(&to_each, 0.99)
    );
    println!(
        "{}",
        json!({
            "bench": "web", "hosts": HOSTS,
            "api_hosts_p50_ms": p(&hosts_lat, 0.5), "api_hosts_p90_ms": p(&hosts_lat, 0.9),
            "api_hosts_rps": hosts_rps, "api_hosts_bytes": hosts_size,
            "api_status_p50_ms": p(&status_lat, 0.5), "api_status_rps": status_rps,
            "live_fcp_p50_ms": p(&paints, 0.5), "live_current_p50_ms": p(&lives, 0.5),
            "ws_clients": WS_CLIENTS, "ws_connect_all_ms": connect_all,
            "ws_fanout_all_p50_ms": p(&to_all, 0.5), "ws_fanout_all_p99_ms": p(&to_all, 0.99),
        })
    );
}
