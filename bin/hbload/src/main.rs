//! hbload: simulates many hosts sending heartbeats (HTB) and plugin reports (PLG) to an hb
//! server, at an exact total rate for a while or as a burst (every host once, at once), and
//! measures what comes back: ACK round trips and loss. `--sink` is the other end of the
//! baseline: a bare UDP receiver that only counts, the most this machine can take;
//! `--sink --echo` also answers each datagram, the most a protocol with ACKs can take.
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
              [--sources N] [--key KEY] [--prefix NAME] [--wait SECONDS] [--ctl SOCKET]
       hbload --sink [--echo] [-p PORT] [-d SECONDS]
  -s HOST:PORT  server (default 127.0.0.1:50003)
  -n HOSTS      simulated hosts (default 1000), named PREFIX0, PREFIX1, ...
  -r RATE       datagrams per second in all (default 10000); a rate past what this
                machine sends runs as fast as it goes until -d is up
  -d SECONDS    how long to send (default 10); with --sink, how long to count
  --burst       every host sends one heartbeat at once, as fast as it goes, then stop
  --plg N       every Nth datagram is a plugin report (default 0: none)
  --sources N   source addresses, 127.0.0.1 to 127.0.0.N (default 16)
  --key KEY     sign every datagram with KEY (hb_key on the server)
  --prefix NAME host name prefix (default load)
  --wait S      seconds to wait for late ACKs after sending (default 1)
  --ctl SOCKET  the server's control socket: its counters are read before and after,
                and what changed is reported (accepted, rejected, dropped by each queue)
  --sink        count datagrams on PORT (default 50003) and print the rate
  --echo        with --sink, answer every datagram with itself (sendmmsg): the most a
                protocol that answers each datagram can take here";

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
    echo: bool,
    ctl: Option<std::path::PathBuf>,
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
        echo: false,
        ctl: None,
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
            Long("echo") => o.echo = true,
            Long("ctl") => o.ctl = Some(p.value()?.into()),
            Short('h') | Long("help") => return Ok(None),
            _ => return Err(arg.unexpected().into()),
        }
    }
    if sink {
        o.sink = Some(port);
    } else if o.echo {
        bail!("--echo goes with --sink");
    }
    if o.hosts == 0 || o.rate == 0 || o.sources == 0 || o.seconds.is_nan() || o.seconds <= 0.0 {
        bail!("-n, -r, --sources and -d must be above 0");
    }
    if o.prefix.is_empty()
        || !o
            .prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        bail!("--prefix must be letters, digits, '-' and '.'");
    }
    Ok(Some(o))
}

/// The datagram host `i` sends as its `seq`-th message, into `out`.
fn datagram(o: &Options, i: u64, seq: u64, counter: u64, out: &mut Vec<u8>) {
    use std::io::Write as _;
    let ts = hb_proto::now_ms();
    let plg = o.plg > 0 && seq.is_multiple_of(o.plg);
    // An unsigned heartbeat is written straight out (the prefix is checked to need no JSON
    // escaping): building a JSON tree per datagram made the generator, not the server, the
    // limit of the baseline.
    if !plg && o.key.is_none() {
        out.clear();
        let interval = o.hosts.div_ceil(o.rate).max(1);
        // Writing to a Vec cannot fail.
        let _ = write!(
            out,
            r#"{{"ID":"HTB","interval":{interval},"name":"{}{i}","seq":{seq},"ts":{ts}}}"#,
            o.prefix
        );
        return;
    }
    let name = format!("{}{i}", o.prefix);
    let msg = if plg {
        json!({"ID": "PLG", "name": name, "seq": seq, "ts": ts, "plugin": "cpu_monitor",
               "data": {"cpu_percent": (seq % 100), "load_1min": 0.5}})
    } else {
        // Each host heartbeats as often as the rate has it do, and says so: the server
        // times it as a real host sending at that interval.
        let interval = o.hosts.div_ceil(o.rate).max(1);
        json!({"ID": "HTB", "name": name, "seq": seq, "ts": ts, "interval": interval})
    };
    let sign = o.key.as_deref().map(|k| (k, ts, counter));
    *out = hb_proto::datagram::encode(&msg, 1200, sign);
}

/// The name and `seq` an ACK echoes, found without a JSON parser: the generator reads as
/// many ACKs as it sends datagrams.
fn ack_of(ack: &[u8]) -> Option<(&str, u64)> {
    let text = std::str::from_utf8(ack).ok()?;
    let name = text.split_once(r#""name":""#)?.1.split('"').next()?;
    let seq = text.split_once(r#""seq":"#)?.1;
    let digits = seq.bytes().take_while(u8::is_ascii_digit).count();
    Some((name, seq[..digits].parse().ok()?))
}

/// Datagrams taken per `recvmmsg` call, by the sink and by each ACK reader.
const RECEIVE_BATCH: usize = 64;

/// Buffers for one `recvmmsg` call.
struct Received {
    bufs: Vec<[u8; 2048]>,
    lens: Vec<usize>,
    from: Vec<Option<nix::sys::socket::SockaddrStorage>>,
}

impl Received {
    fn new() -> Received {
        Received {
            bufs: vec![[0u8; 2048]; RECEIVE_BATCH],
            lens: Vec::with_capacity(RECEIVE_BATCH),
            from: Vec::with_capacity(RECEIVE_BATCH),
        }
    }

    /// Takes what is already there, up to a batch: one system call for many datagrams.
    /// With `wait`, first waits for one (up to the socket's read timeout).
    fn receive(&mut self, socket: &UdpSocket, wait: bool) -> impl Iterator<Item = &[u8]> {
        use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};
        use std::io::IoSliceMut;
        use std::os::fd::AsRawFd;
        self.lens.clear();
        self.from.clear();
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(RECEIVE_BATCH, None);
        let mut iovs: Vec<[IoSliceMut<'_>; 1]> =
            self.bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
        if let Ok(results) = recvmmsg(
            socket.as_raw_fd(),
            &mut headers,
            iovs.iter_mut(),
            if wait {
                MsgFlags::MSG_WAITFORONE
            } else {
                MsgFlags::MSG_DONTWAIT
            },
            None,
        ) {
            for r in results {
                self.lens.push(r.bytes);
                self.from.push(r.address);
            }
        }
        self.bufs.iter().zip(&self.lens).map(|(b, &n)| &b[..n])
    }

    /// Sends every datagram of the last batch back to where it came from, in one call
    /// when the kernel takes them all.
    fn echo(&self, socket: &UdpSocket) {
        use nix::sys::socket::{ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, sendmmsg};
        use std::io::IoSlice;
        use std::os::fd::AsRawFd;
        let mut start = 0;
        while start < self.lens.len() {
            let slices: Vec<[IoSlice<'_>; 1]> = self.bufs[start..]
                .iter()
                .zip(&self.lens[start..])
                .map(|(b, &n)| [IoSlice::new(&b[..n])])
                .collect();
            let addrs = &self.from[start..];
            let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(addrs.len(), None);
            let no_cmsgs: [ControlMessage<'_>; 0] = [];
            match sendmmsg(
                socket.as_raw_fd(),
                &mut headers,
                &slices,
                addrs,
                no_cmsgs,
                MsgFlags::empty(),
            ) {
                Ok(results) => start += results.count().max(1),
                Err(_) => start += 1,
            }
        }
    }
}

/// Asks for a receive buffer of `bytes`: on Linux as root past `net.core.rmem_max`
/// (`SO_RCVBUFFORCE`), else up to what the system allows.
fn big_receive_buffer(socket: &UdpSocket, bytes: usize) {
    use nix::sys::socket::{setsockopt, sockopt};
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if setsockopt(socket, sockopt::RcvBufForce, &bytes).is_ok() {
        return;
    }
    let _ = setsockopt(socket, sockopt::RcvBuf, &bytes);
}

/// The bare sink: counts datagrams, taken 64 at a time with `recvmmsg` (as the receiver
/// takes them); nothing parsed.
fn sink(port: u16, seconds: f64, echo: bool) -> anyhow::Result<()> {
    let socket = UdpSocket::bind(("127.0.0.1", port)).context("bind the sink")?;
    // The same buffer the server asks for by default: what the generator sends in a burst
    // waits here rather than being dropped.
    big_receive_buffer(&socket, 64 << 20);
    // The first datagram of a call is waited for this long (recvmmsg's own timeout is
    // checked only after a datagram arrives).
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut batch = Received::new();
    let mut count = 0u64;
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    while Instant::now() < deadline {
        let n = batch.receive(&socket, true).count();
        if echo {
            batch.echo(&socket);
        }
        if n > 0 {
            count += n as u64;
            first.get_or_insert_with(Instant::now);
            last = Instant::now();
        }
    }
    let secs = first.map_or(0.0, |f| last.duration_since(f).as_secs_f64().max(1e-6));
    let rate = if secs > 0.0 { count as f64 / secs } else { 0.0 };
    let mode = if echo { "echo" } else { "sink" };
    eprintln!("{mode}: {count} datagrams in {secs:.2} s: {rate:.0}/s");
    println!(
        "{}",
        json!({"mode": mode, "received": count, "seconds": secs, "per_second": rate})
    );
    Ok(())
}

type Counters = std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>;

/// The receiver's and the engine's counters, through the server's control socket.
fn server_counters(socket: &std::path::Path) -> anyhow::Result<Counters> {
    use hb_ipc::ctl::{CtlRequest, CtlResponse};
    let mut all = Counters::new();
    for role in [hb_ipc::Role::Receiver, hb_ipc::Role::Engine] {
        let request = CtlRequest::Counters { role };
        match hb_ipc::ctl::call(socket, &request, Duration::from_secs(10))? {
            CtlResponse::Counters { counters, .. } => {
                all.insert(role.to_string(), counters);
            }
            other => bail!("{role} counters: unexpected answer {other:?}"),
        }
    }
    Ok(all)
}

/// What changed between two readings: counters only grow (except a restarted process's);
/// a gauge among them (the engine's `hosts`, `deadlines`) shows only a rise.
fn counters_delta(before: &Counters, after: &Counters) -> Counters {
    after
        .iter()
        .map(|(role, counters)| {
            let was = before.get(role);
            let changed = counters
                .iter()
                .map(|(name, &v)| {
                    let old = was.and_then(|w| w.get(name)).copied().unwrap_or(0);
                    (name.clone(), v.saturating_sub(old))
                })
                .filter(|(_, d)| *d > 0)
                .collect();
            (role.clone(), changed)
        })
        .collect()
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
        Some(port) => sink(port, o.seconds, o.echo),
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
            // ACKs come in batches; the default buffer lost some while the reader was busy,
            // which showed as unanswered datagrams the server had answered. Root may go past
            // rmem_max; anyone else gets what it allows.
            big_receive_buffer(&s, 8 << 20);
            Ok(Arc::new(s))
        })
        .collect::<anyhow::Result<_>>()?;
    let total = if o.burst {
        o.hosts
    } else {
        (o.rate as f64 * o.seconds) as u64
    };
    let before = match &o.ctl {
        Some(socket) => Some(server_counters(socket)?),
        None => None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicU64::new(0));
    // When each datagram went, ns after the start, by its number: an ACK's name and seq give
    // the number back, so round trips are timed to the ns.
    // At most 16 million are timed (128 MB): a rate past the machine's would ask for more.
    let timed = total.min(16 << 20);
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..timed).map(|_| AtomicU64::new(0)).collect());
    // After the allocation above, which must not eat into the paced time.
    let started = Instant::now();
    // ACK round trips in µs. One thread reads every socket: ACKs sent in a batch wake it
    // once, where a thread per socket would be woken once per socket.
    let reader = spawn_ack_reader(&sockets, &stop, &acks, &sent_at, &o, started);
    let (sent, errors) = send_paced(&o, &sockets, &sent_at, total, started);
    let sending = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs_f64(o.wait));
    stop.store(true, Ordering::Relaxed);
    let mut rtts: Vec<u64> = reader.join().unwrap_or_default();
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
    let server = match (&o.ctl, &before) {
        (Some(socket), Some(before)) => server_report(socket, before)?,
        _ => serde_json::Value::Null,
    };
    println!(
        "{}",
        json!({
            "server": server,
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

/// Reads every socket's ACKs on one thread until `stop`: the round trip of each, in µs.
fn spawn_ack_reader(
    sockets: &[Arc<UdpSocket>],
    stop: &Arc<AtomicBool>,
    acks: &Arc<AtomicU64>,
    sent_at: &Arc<Vec<AtomicU64>>,
    o: &Arc<Options>,
    started: Instant,
) -> std::thread::JoinHandle<Vec<u64>> {
    let (sockets, stop, acks, sent_at, o) = (
        sockets.to_vec(),
        stop.clone(),
        acks.clone(),
        sent_at.clone(),
        o.clone(),
    );
    std::thread::spawn(move || {
        use nix::poll::{PollFd, PollFlags, poll};
        use std::os::fd::AsFd;
        let mut rtts = Vec::new();
        let mut batch = Received::new();
        while !stop.load(Ordering::Relaxed) {
            let mut fds: Vec<PollFd<'_>> = sockets
                .iter()
                .map(|s| PollFd::new(s.as_fd(), PollFlags::POLLIN))
                .collect();
            if poll(&mut fds, 50u16).unwrap_or(0) <= 0 {
                continue;
            }
            let ready: Vec<bool> = fds
                .iter()
                .map(|f| f.revents().is_some_and(|r| r.contains(PollFlags::POLLIN)))
                .collect();
            let now = started.elapsed().as_nanos() as u64;
            for (socket, _) in sockets.iter().zip(ready).filter(|(_, r)| *r) {
                for ack in batch.receive(socket, false) {
                    acks.fetch_add(1, Ordering::Relaxed);
                    let Some((name, seq)) = ack_of(ack) else {
                        continue;
                    };
                    let host = name
                        .strip_prefix(o.prefix.as_str())
                        .and_then(|n| n.parse::<u64>().ok());
                    if let (Some(host), true) = (host, seq > 0) {
                        let number = (seq - 1).saturating_mul(o.hosts) + host;
                        if let Some(at) = sent_at.get(number as usize) {
                            rtts.push(now.saturating_sub(at.load(Ordering::Relaxed)) / 1000);
                        }
                    }
                }
            }
        }
        rtts
    })
}

/// Sends `total` datagrams, paced to the rate (or at once for a burst): how many went, and
/// how many the kernel refused.
fn send_paced(
    o: &Options,
    sockets: &[Arc<UdpSocket>],
    sent_at: &[AtomicU64],
    total: u64,
    started: Instant,
) -> (u64, u64) {
    let mut sent = 0u64;
    let mut errors = 0u64;
    let mut counter = hb_proto::now_ms() * 1000;
    let mut bytes = Vec::with_capacity(2048);
    // Paced in 1 ms slices: each slice sends what the rate owes so far.
    let slice = 1000u64;
    while sent < total {
        let elapsed = started.elapsed().as_secs_f64();
        // A rate beyond what this machine sends stops at the time given all the same (with a
        // margin, so a generator that keeps up sends its last slice).
        if !o.burst && elapsed >= o.seconds * 1.01 + 0.1 {
            break;
        }
        let owed = if o.burst {
            total
        } else {
            ((elapsed * o.rate as f64) as u64 + 1).min(total)
        };
        // In slices, so a generator that falls behind still looks at the time.
        let due = owed.min(sent + slice);
        while sent < due {
            let host = sent % o.hosts;
            let seq = sent / o.hosts + 1;
            counter += 1;
            datagram(o, host, seq, counter, &mut bytes);
            let socket = &sockets[(host % u64::from(o.sources)) as usize];
            if let Some(at) = sent_at.get(sent as usize) {
                at.store(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            }
            if socket.send_to(&bytes, o.server).is_err() {
                errors += 1;
            }
            sent += 1;
        }
        if !o.burst && sent >= owed {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    (sent, errors)
}

/// The server's counters since `before`, printed and as JSON.
fn server_report(socket: &std::path::Path, before: &Counters) -> anyhow::Result<serde_json::Value> {
    let delta = counters_delta(before, &server_counters(socket)?);
    let get = |role: &str, name: &str| {
        delta
            .get(role)
            .and_then(|c| c.get(name))
            .copied()
            .unwrap_or(0)
    };
    // The receiver counts every rejection; the engine hears of at most 100 a second.
    let rejected = get("receiver", "rejected");
    let received: u64 = delta.get("engine").map_or(0, |c| {
        c.iter()
            .filter(|(n, _)| n.starts_with("received_"))
            .map(|(_, v)| v)
            .sum()
    });
    eprintln!(
        "server: accepted {}, rejected {rejected}, taken by the engine {received}; dropped by the kernel {}, receiver to engine {}, store writes {}, web changes {}; the receiver waited for the engine {} ms",
        get("receiver", "accepted"),
        get("receiver", "kernel_dropped"),
        get("receiver", "engine_queue_dropped"),
        get("engine", "store_writes_dropped"),
        get("engine", "web_changes_left_out"),
        get("receiver", "engine_queue_wait_ms"),
    );
    Ok(serde_json::to_value(&delta)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_give_back_name_and_seq_and_odd_ones_nothing() {
        assert_eq!(
            ack_of(br#"{"ID":"ACK","name":"load12","seq":7,"ts":1}"#),
            Some(("load12", 7))
        );
        assert_eq!(
            ack_of(br#"{"seq":3,"ID":"ACK","name":"x"}"#),
            Some(("x", 3))
        );
        for odd in [
            &b""[..],
            b"\xff\xfe",
            br#"{"ID":"ACK","name":"a"}"#,
            br#"{"ID":"ACK","seq":1}"#,
            br#"{"name":"a","seq":"#,
            br#"{"name":"a","seq":99999999999999999999999}"#,
        ] {
            assert_eq!(ack_of(odd), None, "{odd:?}");
        }
    }

    #[test]
    fn the_echo_sink_answers_each_datagram_with_itself() {
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let sink = std::thread::spawn(move || sink(port, 1.5, true));
        std::thread::sleep(Duration::from_millis(300));
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        for i in 0..20u8 {
            client.send_to(&[i; 5], ("127.0.0.1", port)).unwrap();
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        while got.len() < 20 {
            let n = client.recv(&mut buf).unwrap();
            got.push(buf[..n].to_vec());
        }
        got.sort();
        assert_eq!(got, (0..20u8).map(|i| vec![i; 5]).collect::<Vec<_>>());
        sink.join().unwrap().unwrap();
    }

    #[test]
    fn a_written_heartbeat_is_what_the_server_parses() {
        let o = Options {
            server: "127.0.0.1:1".parse().unwrap(),
            hosts: 10,
            rate: 5,
            seconds: 1.0,
            burst: false,
            plg: 0,
            sources: 1,
            key: None,
            prefix: "web-1.".into(),
            wait: 0.0,
            sink: None,
            echo: false,
            ctl: None,
        };
        let mut out = Vec::new();
        datagram(&o, 3, 2, 0, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["name"], "web-1.3");
        assert_eq!(v["seq"], 2);
        assert_eq!(v["interval"], 2);
        let message = hb_proto::datagram::parse_client(v).unwrap();
        assert_eq!(message.id(), "HTB");
    }
}
