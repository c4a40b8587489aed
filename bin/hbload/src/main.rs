//! hbload: simulates many hosts sending heartbeats (HTB) and plugin reports (PLG) to an hb
//! server, at an exact total rate for a while or as a burst (every host once, at once), and
//! measures what comes back: ACK round trips and loss. `--sink` is the other end of the
//! baseline: a bare UDP receiver that only counts, the most this machine can take.
//!
//! Output: a human summary on stderr and one JSON line on stdout. docs/PERFORMANCE.md has
//! the method; `contrib/perf/run.sh` runs every figure.

#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;

const USAGE: &str =
    "usage: hbload [-s HOST:PORT] [-n HOSTS] [-r RATE] [-d SECONDS] [--burst] [--plg N]
              [--sources N] [--key KEY] [--prefix NAME] [--wait SECONDS]
       hbload --sink [-p PORT] [-d SECONDS]
  -s HOST:PORT  server (default 127.0.0.1:50003)
  -n HOSTS      simulated hosts (default 1000), named PREFIX0, PREFIX1, ...
  -r RATE       datagrams per second in all (default 10000)
  -d SECONDS    how long to send (default 10); with --sink, how long to count
  --burst       every host sends one heartbeat at once, as fast as it goes, then stop
  --plg N       every Nth datagram is a plugin report (default 0: none)
  --sources N   source addresses, 127.0.0.1 to 127.0.0.N (default 16)
  --key KEY     sign every datagram with KEY (hb_key on the server)
  --prefix NAME host name prefix (default load)
  --wait S      seconds to wait for late ACKs after sending (default 1)
  --sink        count datagrams on PORT (default 50003) and print the rate";

struct Options {
    server: SocketAddr,
    hosts: u64,
    rate: u64,
    seconds: f64,
    burst: bool,
    plg: u64,
    sources: u8,
    key: Option<Vec<u8>>,
    prefix: String,
    wait: f64,
    sink: Option<u16>,
}

fn options() -> anyhow::Result<Option<Options>> {
    use lexopt::prelude::*;
    let mut o = Options {
        server: "127.0.0.1:50003".parse()?,
        hosts: 1000,
        rate: 10_000,
        seconds: 10.0,
        burst: false,
        plg: 0,
        sources: 16,
        key: None,
        prefix: "load".into(),
        wait: 1.0,
        sink: None,
    };
    let mut sink = false;
    let mut port = 50003;
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Short('s') => o.server = p.value()?.string()?.parse().context("-s HOST:PORT")?,
            Short('n') => o.hosts = p.value()?.parse()?,
            Short('r') => o.rate = p.value()?.parse()?,
            Short('d') => o.seconds = p.value()?.parse()?,
            Short('p') => port = p.value()?.parse()?,
            Long("burst") => o.burst = true,
            Long("plg") => o.plg = p.value()?.parse()?,
            Long("sources") => o.sources = p.value()?.parse()?,
            Long("key") => o.key = Some(p.value()?.string()?.into_bytes()),
            Long("prefix") => o.prefix = p.value()?.string()?,
            Long("wait") => o.wait = p.value()?.parse()?,
            Long("sink") => sink = true,
            Short('h') | Long("help") => return Ok(None),
            _ => return Err(arg.unexpected().into()),
        }
    }
    if sink {
        o.sink = Some(port);
    }
    if o.hosts == 0 || o.rate == 0 || o.sources == 0 || o.seconds.is_nan() || o.seconds <= 0.0 {
        bail!("-n, -r, --sources and -d must be above 0");
    }
    Ok(Some(o))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The datagram host `i` sends as its `seq`-th message.
fn datagram(o: &Options, i: u64, seq: u64, counter: u64) -> Vec<u8> {
    let name = format!("{}{i}", o.prefix);
    let ts = now_ms();
    let msg = if o.plg > 0 && seq.is_multiple_of(o.plg) {
        json!({"ID": "PLG", "name": name, "seq": seq, "ts": ts, "plugin": "cpu_monitor",
               "data": {"cpu_percent": (seq % 100), "load_1min": 0.5}})
    } else {
        // Each host heartbeats as often as the rate has it do, and says so: the server
        // times it as a real host sending at that interval.
        let interval = o.hosts.div_ceil(o.rate).max(1);
        json!({"ID": "HTB", "name": name, "seq": seq, "ts": ts, "interval": interval})
    };
    let sign = o.key.as_deref().map(|k| (k, ts, counter));
    hb_proto::datagram::encode(&msg, 1200, sign)
}

/// The bare sink: counts datagrams (batched by the kernel's queue; nothing parsed).
fn sink(port: u16, seconds: f64) -> anyhow::Result<()> {
    let socket = UdpSocket::bind(("127.0.0.1", port)).context("bind the sink")?;
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut buf = vec![0u8; 65_536];
    let mut count = 0u64;
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    while Instant::now() < deadline {
        if socket.recv_from(&mut buf).is_ok() {
            count += 1;
            first.get_or_insert_with(Instant::now);
            last = Instant::now();
        }
    }
    let secs = first.map_or(0.0, |f| last.duration_since(f).as_secs_f64().max(1e-6));
    let rate = if secs > 0.0 { count as f64 / secs } else { 0.0 };
    eprintln!("sink: {count} datagrams in {secs:.2} s: {rate:.0}/s");
    println!(
        "{}",
        json!({"mode": "sink", "received": count, "seconds": secs, "per_second": rate})
    );
    Ok(())
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
}

fn main() -> std::process::ExitCode {
    let o = match options() {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{USAGE}");
            return std::process::ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("hbload: {e:#}\n{USAGE}");
            return std::process::ExitCode::from(64);
        }
    };
    let result = match o.sink {
        Some(port) => sink(port, o.seconds),
        None => load(o),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hbload: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

fn load(o: Options) -> anyhow::Result<()> {
    let o = Arc::new(o);
    let sockets: Vec<Arc<UdpSocket>> = (1..=o.sources)
        .map(|n| {
            let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, n));
            let s = UdpSocket::bind((ip, 0)).with_context(|| format!("bind {ip}"))?;
            s.set_read_timeout(Some(Duration::from_millis(50)))?;
            Ok(Arc::new(s))
        })
        .collect::<anyhow::Result<_>>()?;
    let total = if o.burst {
        o.hosts
    } else {
        (o.rate as f64 * o.seconds) as u64
    };
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    // When each datagram went, ns after the start, by its number: an ACK's name and seq give
    // the number back, so round trips are timed to the ns.
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..total).map(|_| AtomicU64::new(0)).collect());
    // ACK round trips in µs, from each receiving thread.
    let receivers: Vec<_> = sockets
        .iter()
        .map(|s| {
            let (s, stop, acks, sent_at, o) = (
                s.clone(),
                stop.clone(),
                acks.clone(),
                sent_at.clone(),
                o.clone(),
            );
            std::thread::spawn(move || {
                let mut rtts = Vec::new();
                let mut buf = vec![0u8; 65_536];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, _)) = s.recv_from(&mut buf) else {
                        continue;
                    };
                    acks.fetch_add(1, Ordering::Relaxed);
                    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&buf[..n]) else {
                        continue;
                    };
                    let host = v["name"]
                        .as_str()
                        .and_then(|n| n.strip_prefix(o.prefix.as_str()))
                        .and_then(|n| n.parse::<u64>().ok());
                    if let (Some(host), Some(seq)) = (host, v["seq"].as_u64()) {
                        let number = (seq - 1).saturating_mul(o.hosts) + host;
                        if let Some(at) = sent_at.get(number as usize) {
                            let now = started.elapsed().as_nanos() as u64;
                            rtts.push(now.saturating_sub(at.load(Ordering::Relaxed)) / 1000);
                        }
                    }
                }
                rtts
            })
        })
        .collect();
    let mut sent = 0u64;
    let mut errors = 0u64;
    let mut counter = now_ms() * 1000;
    // Paced in 1 ms slices: each slice sends what the rate owes so far.
    while sent < total {
        let due = if o.burst {
            total
        } else {
            ((started.elapsed().as_secs_f64() * o.rate as f64) as u64 + 1).min(total)
        };
        while sent < due {
            let host = sent % o.hosts;
            let seq = sent / o.hosts + 1;
            counter += 1;
            let bytes = datagram(&o, host, seq, counter);
            let socket = &sockets[(host % u64::from(o.sources)) as usize];
            sent_at[sent as usize].store(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            if socket.send_to(&bytes, o.server).is_err() {
                errors += 1;
            }
            sent += 1;
        }
        if !o.burst {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    let sending = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs_f64(o.wait));
    stop.store(true, Ordering::Relaxed);
    let mut rtts: Vec<u64> = receivers
        .into_iter()
        .flat_map(|t| t.join().unwrap_or_default())
        .collect();
    rtts.sort_unstable();
    let acked = acks.load(Ordering::Relaxed);
    let loss = 1.0 - acked as f64 / sent.max(1) as f64;
    eprintln!(
        "hbload: {sent} datagrams from {} hosts on {} addresses in {sending:.2} s ({:.0}/s; {errors} send errors); {acked} ACKs ({:.3} % unanswered); ACK round trip p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        o.hosts,
        o.sources,
        sent as f64 / sending.max(1e-6),
        loss * 100.0,
        percentile(&rtts, 0.5),
        percentile(&rtts, 0.99),
        percentile(&rtts, 1.0),
    );
    println!(
        "{}",
        json!({
            "mode": if o.burst { "burst" } else { "rate" },
            "hosts": o.hosts, "sources": o.sources, "sent": sent, "send_errors": errors,
            "seconds": sending, "per_second": sent as f64 / sending.max(1e-6),
            "acks": acked, "unanswered": sent.saturating_sub(acked),
            "rtt_p50_ms": percentile(&rtts, 0.5), "rtt_p99_ms": percentile(&rtts, 0.99),
            "rtt_max_ms": percentile(&rtts, 1.0),
        })
    );
    Ok(())
}
