//! Issue 7: dynamic DNS against a real BIND. Each test starts `named` on a loopback port with a
//! dynamic zone that takes updates signed with a TSIG key, points hb-dnsupdate at it, and
//! checks what the zone holds with `dig`.

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

const ZONE: &str = "dyn.test";
/// The test's TSIG secret (any 32 bytes, base64).
const SECRET: &str = "aGItdGVzdC1rZXktZm9yLWR5bmFtaWMtZG5zLXVwZGF0";
const WRONG_SECRET: &str = "d3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3Jv";

/// A `named` serving one dynamic zone on a loopback port.
struct Named {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Named {
    fn start(dir: &Path) -> Named {
        for (path, package) in [
            ("/usr/sbin/named", "bind9"),
            ("/usr/bin/nsupdate", "bind9-dnsutils"),
            ("/usr/bin/dig", "bind9-dnsutils"),
        ] {
            assert!(
                Path::new(path).is_file(),
                "{path} is missing: install the Debian package {package} (the README's test command does)"
            );
        }
        let dir = dir.join("named");
        std::fs::create_dir_all(&dir).expect("named dir");
        std::fs::write(
            dir.join(format!("{ZONE}.zone")),
            format!(
                "$TTL 60\n@ IN SOA ns.{ZONE}. admin.{ZONE}. 1 60 60 600 60\n@ IN NS ns.{ZONE}.\nns IN A 127.0.0.1\n"
            ),
        )
        .expect("zone file");
        let mut named = Named {
            dir,
            port: dns_port(),
            child: None,
        };
        named.run();
        named
    }

    /// Starts (or restarts) named on its port with the zone as it was left.
    fn run(&mut self) {
        let d = self.dir.display();
        let conf = format!(
            r#"options {{
  directory "{d}";
  pid-file "{d}/named.pid";
  listen-on port {port} {{ 127.0.0.1; }};
  listen-on-v6 {{ none; }};
  recursion no;
  dnssec-validation no;
  notify no;
}};
key "hb-test" {{ algorithm hmac-sha256; secret "{SECRET}"; }};
zone "{ZONE}" {{ type primary; file "{d}/{ZONE}.zone"; allow-update {{ key hb-test; }}; }};
"#,
            port = self.port
        );
        std::fs::write(self.dir.join("named.conf"), conf).expect("named.conf");
        let log = std::fs::File::create(self.dir.join("named.log")).expect("named log");
        let child = Command::new("/usr/sbin/named")
            .args(["-g", "-n", "1", "-c"])
            .arg(self.dir.join("named.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start named");
        self.child = Some(child);
        let up = wait_for(Duration::from_secs(15), || self.serial().is_some());
        assert!(
            up,
            "named did not answer on port {}:\n{}",
            self.port,
            std::fs::read_to_string(self.dir.join("named.log")).unwrap_or_default()
        );
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `dig +short NAME TYPE`, one line per record, sorted.
    fn dig(&self, name: &str, rtype: &str) -> Vec<String> {
        let out = Command::new("/usr/bin/dig")
            .args(["@127.0.0.1", "-p", &self.port.to_string()])
            .args(["+short", "+tries=1", "+time=2", name, rtype])
            .output()
            .expect("run dig");
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with(';'))
            .map(String::from)
            .collect();
        lines.sort();
        lines
    }

    /// Changes the zone behind hb's back.
    fn nsupdate(&self, key: &Path, commands: &str) {
        use std::io::Write;
        let mut child = Command::new("/usr/bin/nsupdate")
            .arg("-k")
            .arg(key)
            .stdin(Stdio::piped())
            .spawn()
            .expect("run nsupdate");
        let script = format!("server 127.0.0.1 {}\n{commands}", self.port);
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("write script");
        assert!(child.wait().expect("nsupdate").success(), "nsupdate failed");
    }

    /// The zone's SOA serial: one more for every update it took.
    fn serial(&self) -> Option<u64> {
        self.dig(ZONE, "SOA")
            .first()?
            .split_whitespace()
            .nth(2)?
            .parse()
            .ok()
    }

    /// Waits until `name` has exactly `want` records of `rtype`.
    fn wait_records(&self, name: &str, rtype: &str, want: &[&str], within: Duration) -> bool {
        wait_for(within, || self.dig(name, rtype) == want)
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port free for both UDP and TCP (named listens on both).
fn dns_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
        let port = tcp.local_addr().expect("addr").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A key file as `tsig-keygen` writes it, readable only by hb-dnsupdate's user.
fn key_file(dir: &Path, name: &str, secret: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!("key \"hb-test\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{secret}\";\n}};\n"),
    )
    .expect("key file");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    if is_root() {
        let uid = ROLE_UIDS
            .iter()
            .find(|(role, _)| *role == "dnsupdate")
            .map(|(_, uid)| *uid)
            .expect("dnsupdate uid");
        std::os::unix::fs::chown(&path, Some(uid), Some(uid)).expect("chown key");
    }
    path
}

/// The DNS part of a configuration.
fn dns_config(named: &Named, key: &Path, hosts: &str) -> String {
    format!(
        "dyndomains: [{ZONE}]\ndns_server: \"127.0.0.1:{}\"\nrndc_key: {}\ndns_timeout: 3\n{hosts}",
        named.port,
        key.display()
    )
}

/// One heartbeat of `host` from `source` (to the receiver's IPv4 or IPv6 loopback address).
fn beat(server: &Server, source: &str, host: &str, interval: u32) {
    let socket = UdpSocket::bind((source, 0)).expect("bind source");
    let to = if source.contains(':') {
        "::1"
    } else {
        "127.0.0.1"
    };
    let msg = format!(r#"{{"ID":"HTB","name":"{host}","interval":{interval}}}"#);
    socket
        .send_to(msg.as_bytes(), (to, server.hb_port))
        .expect("send heartbeat");
}

/// Texts of a host's events, newest first.
fn host_events(server: &Server, host: &str) -> Vec<String> {
    server
        .events(Some(host), 1000)
        .into_iter()
        .map(|(_, text)| text)
        .collect()
}

fn wait_event(server: &Server, host: &str, needle: &str, within: Duration) -> bool {
    wait_for(within, || {
        host_events(server, host).iter().any(|e| e.contains(needle))
    })
}

/// How many of a host's events contain `needle`.
fn count_events(server: &Server, host: &str, needle: &str) -> usize {
    host_events(server, host)
        .iter()
        .filter(|e| e.contains(needle))
        .count()
}

/// Waits until a host has more than `before` events containing `needle`.
fn wait_more_events(
    server: &Server,
    host: &str,
    needle: &str,
    before: usize,
    within: Duration,
) -> bool {
    wait_for(within, || count_events(server, host, needle) > before)
}

/// Replaces `old` by `new` in the server's configuration and reloads it.
fn reconfigure(server: &Server, old: &str, new: &str) {
    let text = std::fs::read_to_string(&server.config).expect("config");
    assert!(text.contains(old), "{old:?} is not in the configuration");
    std::fs::write(&server.config, text.replacen(old, new, 1)).expect("config");
    assert!(
        server.ctl(&["reload"]).is_some(),
        "reload failed: {}",
        server.log_text()
    );
}

/// Sends heartbeats of `host` from `source` every `period` until dropped.
struct Beating {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Beating {
    fn start(port: u16, source: &'static str, host: &'static str, period: Duration) -> Beating {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let socket = UdpSocket::bind((source, 0)).expect("bind source");
            let msg = format!(
                r#"{{"ID":"HTB","name":"{host}","interval":{}}}"#,
                period.as_secs().max(1)
            );
            while !flag.load(Ordering::Relaxed) {
                let _ = socket.send_to(msg.as_bytes(), ("127.0.0.1", port));
                std::thread::sleep(period);
            }
        });
        Beating {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Beating {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// Acceptance 1 and 5, and `hbctl dns`: records follow addresses, A for IPv4 and AAAA for IPv6;
// 200 moves within a second cost a handful of updates and end at the newest address.
#[test]
fn records_follow_addresses_and_bursts_of_moves_are_coalesced() {
    let dir = scratch("dns-follow");
    let named = Named::start(&dir);
    let key = key_file(&dir, "hb-test.key", SECRET);
    let hosts = "hb_host: \"::\"\nhosts:\n  web1: {dyndns: true}\n  six: {dyndns: true}\n  plain: {}\ndyndnshosts: [mover]\n";
    let server = Server::start("dns-follow", &dns_config(&named, &key, hosts));

    beat(&server, "127.0.0.2", "web1", 10);
    assert!(
        named.wait_records(
            "web1.dyn.test",
            "A",
            &["127.0.0.2"],
            Duration::from_secs(10)
        ),
        "web1 never got its A record; events: {:?}\nlog:\n{}",
        host_events(&server, "web1"),
        server.log_text()
    );
    assert!(wait_event(
        &server,
        "web1",
        "DNS: web1.dyn.test. A 127.0.0.2 (first sight)",
        Duration::from_secs(5)
    ));
    // Heartbeats from the same address change nothing.
    let serial = named.serial().expect("serial");
    for _ in 0..5 {
        beat(&server, "127.0.0.2", "web1", 10);
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        named.serial(),
        Some(serial),
        "a steady host was updated again"
    );

    beat(&server, "127.0.0.3", "web1", 10);
    assert!(named.wait_records(
        "web1.dyn.test",
        "A",
        &["127.0.0.3"],
        Duration::from_secs(10)
    ));
    assert!(wait_event(
        &server,
        "web1",
        "A 127.0.0.3 (moved)",
        Duration::from_secs(5)
    ));

    beat(&server, "::1", "six", 10);
    assert!(
        named.wait_records("six.dyn.test", "AAAA", &["::1"], Duration::from_secs(10)),
        "six never got its AAAA record; events: {:?}",
        host_events(&server, "six")
    );
    assert!(named.dig("six.dyn.test", "A").is_empty());
    // Moving from IPv6 to IPv4 replaces the AAAA with an A, in one update.
    beat(&server, "127.0.0.4", "six", 10);
    assert!(named.wait_records("six.dyn.test", "A", &["127.0.0.4"], Duration::from_secs(10)));
    assert!(named.dig("six.dyn.test", "AAAA").is_empty());

    // A host without dyndns gets nothing.
    beat(&server, "127.0.0.5", "plain", 10);

    // Acceptance 5: 200 moves within a second.
    let before = named.serial().expect("serial");
    let started = Instant::now();
    for i in 1..=200u32 {
        beat(&server, &format!("127.0.1.{}", i.min(250)), "mover", 10);
        std::thread::sleep(Duration::from_millis(3));
    }
    let sent_in = started.elapsed();
    assert!(
        named.wait_records(
            "mover.dyn.test",
            "A",
            &["127.0.1.200"],
            Duration::from_secs(20)
        ),
        "mover did not end at its newest address: {:?}",
        named.dig("mover.dyn.test", "A")
    );
    std::thread::sleep(Duration::from_secs(2));
    let updates = named.serial().expect("serial") - before;
    let moves = host_events(&server, "mover")
        .iter()
        .filter(|e| e.contains("moved from"))
        .count();
    eprintln!("200 moves sent in {sent_in:?}: {moves} seen by the engine, {updates} DNS updates");
    assert!(moves >= 150, "the engine saw only {moves} moves");
    assert!(
        (1..=10).contains(&updates),
        "{updates} updates for 200 moves: not coalesced"
    );
    assert!(named.dig("plain.dyn.test", "A").is_empty());

    // hbctl dns: asks again at once, which restores a record lost behind hb's back (BIND
    // bumps the serial only for a change, so the record is removed first); refuses hosts
    // without dynamic DNS.
    named.nsupdate(&key, &format!("update delete web1.{ZONE}. A\nsend\n"));
    assert!(named.dig("web1.dyn.test", "A").is_empty());
    let answer = server.ctl(&["dns", "web1"]).expect("hbctl dns web1");
    assert!(
        answer.to_string().contains("127.0.0.3"),
        "hbctl dns answered {answer}"
    );
    assert!(
        named.wait_records(
            "web1.dyn.test",
            "A",
            &["127.0.0.3"],
            Duration::from_secs(10)
        ),
        "hbctl dns did not restore the record; events: {:?}",
        host_events(&server, "web1")
    );
    assert!(wait_event(
        &server,
        "web1",
        "A 127.0.0.3 (asked for)",
        Duration::from_secs(5)
    ));
    // A restarted hb-dnsupdate knows nothing: the engine sends every dynamic host again,
    // which repairs what changed meanwhile.
    named.nsupdate(&key, &format!("update delete web1.{ZONE}. A\nsend\n"));
    server.kill_9("dnsupdate");
    assert!(
        named.wait_records(
            "web1.dyn.test",
            "A",
            &["127.0.0.3"],
            Duration::from_secs(15)
        ),
        "no resync after hb-dnsupdate restarted; events: {:?}",
        host_events(&server, "web1")
    );
    assert!(server.ctl(&["dns", "plain"]).is_none());
    assert!(server.ctl(&["dns", "nosuchhost"]).is_none());
    assert_eq!(server.counter("engine", "dns_failed"), 0);
}

// Acceptance 2: with dns_failover the record leaves while the host is down and comes back on
// recovery; a plain dynamic host keeps its record while down.
#[test]
fn failover_records_leave_while_down_and_return_on_recovery() {
    let dir = scratch("dns-failover");
    let named = Named::start(&dir);
    let key = key_file(&dir, "hb-test.key", SECRET);
    let hosts = "interval: 1\nmax_missed: 2\ngrace: 1\nhosts:\n  db1: {dns_failover: true}\n  web2: {dyndns: true}\n";
    let server = Server::start("dns-failover", &dns_config(&named, &key, hosts));
    let db1 = Beating::start(
        server.hb_port,
        "127.0.0.6",
        "db1",
        Duration::from_millis(500),
    );
    let web2 = Beating::start(
        server.hb_port,
        "127.0.0.7",
        "web2",
        Duration::from_millis(500),
    );
    assert!(named.wait_records("db1.dyn.test", "A", &["127.0.0.6"], Duration::from_secs(10)));
    assert!(named.wait_records(
        "web2.dyn.test",
        "A",
        &["127.0.0.7"],
        Duration::from_secs(10)
    ));

    drop(db1);
    drop(web2);
    let stopped = Instant::now();
    assert!(
        named.wait_records("db1.dyn.test", "A", &[], Duration::from_secs(20)),
        "db1's record stayed while it was down; events: {:?}",
        host_events(&server, "db1")
    );
    eprintln!(
        "db1's record left {:?} after its last heartbeat",
        stopped.elapsed()
    );
    assert!(
        wait_event(&server, "db1", "db1 down", Duration::from_secs(5)),
        "no down event: {:?}",
        host_events(&server, "db1")
    );
    assert!(wait_event(
        &server,
        "db1",
        "DNS: db1.dyn.test. removed (down)",
        Duration::from_secs(5)
    ));
    assert_eq!(named.dig("web2.dyn.test", "A"), ["127.0.0.7"]);

    let _db1 = Beating::start(
        server.hb_port,
        "127.0.0.6",
        "db1",
        Duration::from_millis(500),
    );
    assert!(named.wait_records("db1.dyn.test", "A", &["127.0.0.6"], Duration::from_secs(10)));
    assert!(wait_event(
        &server,
        "db1",
        "A 127.0.0.6 (recovered)",
        Duration::from_secs(5)
    ));
    assert_eq!(server.counter("engine", "dns_failed"), 0);
}

// Acceptance 3: hostile names never reach nsupdate. The receiver refuses names outside DNS
// label rules (an event); a name the protocol allows but DNS cannot hold with the domain is
// refused by hb-dnsupdate itself (an event), and nothing reaches the zone.
#[test]
fn hostile_names_never_reach_nsupdate() {
    let dir = scratch("dns-hostile");
    let named = Named::start(&dir);
    let key = key_file(&dir, "hb-test.key", SECRET);
    // 63 + 1 + 63 + 1 + 63 + 1 + 55 = 247 characters: a valid host name, too long with
    // ".dyn.test".
    let long = format!("{a}.{a}.{a}.{b}", a = "a".repeat(63), b = "b".repeat(55));
    assert_eq!(long.len(), 247);
    let hosts = format!("dyndnshosts: [{long}, good, under_score]\n");
    let server = Server::start("dns-hostile", &dns_config(&named, &key, &hosts));
    let serial = named.serial().expect("serial");

    let hostile = [
        "web1\nupdate add evil.dyn.test. 60 A 6.6.6.6\nsend".to_string(),
        "x".repeat(300),
        "../../etc/passwd".to_string(),
        "web1 ; update add evil.dyn.test 60 A 6.6.6.6".to_string(),
    ];
    for (i, name) in hostile.iter().enumerate() {
        let msg = serde_json::json!({"ID": "HTB", "name": name, "interval": 10}).to_string();
        send_from(
            &format!("127.0.2.{}", i + 1),
            server.hb_port,
            msg.as_bytes(),
        );
    }
    beat(&server, "127.0.0.9", &long, 10);
    beat(&server, "127.0.0.10", "good", 10);
    beat(&server, "127.0.0.12", "under_score", 10);
    // The good host's update shows the pipeline worked meanwhile.
    assert!(named.wait_records(
        "good.dyn.test",
        "A",
        &["127.0.0.10"],
        Duration::from_secs(10)
    ));
    assert!(
        wait_event(
            &server,
            &long,
            "DNS update refused",
            Duration::from_secs(10)
        ),
        "no refusal event for the long name; events: {:?}",
        host_events(&server, &long)
    );
    // A name with `_` is a valid host but no address record owner: refused, never run.
    assert!(wait_event(
        &server,
        "under_score",
        "DNS update refused",
        Duration::from_secs(10)
    ));
    assert!(wait_for(Duration::from_secs(5), || server
        .counter("engine", "dns_refused")
        == 2));
    // The receiver's refusals are events too (one per source and reason a minute).
    let events: Vec<String> = server
        .events(None, 1000)
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e.contains("datagram from 127.0.2.1:") && e.contains("rejected (bad_name)")),
        "no rejection event: {events:?}"
    );
    assert_eq!(
        server.counter("receiver", "rejected_bad_name"),
        hostile.len() as u64,
        "{}",
        server.counters("receiver")
    );
    // Exactly one update (the good host's) reached the zone; no evil name exists.
    assert_eq!(named.serial(), Some(serial + 1));
    assert!(named.dig("evil.dyn.test", "A").is_empty());
    assert_eq!(server.counter("engine", "dns_updated"), 1);
}

// Acceptance 4: a wrong TSIG key, a stopped named and an nsupdate that hangs each give a
// reported failure within the timeout and a retry later, while heartbeats keep flowing; fixing
// the cause (a reload, named back) lets the next try succeed.
#[test]
fn failures_are_reported_within_the_timeout_and_retried() {
    let dir = scratch("dns-failures");
    let mut named = Named::start(&dir);
    let good = key_file(&dir, "good.key", SECRET);
    let wrong = key_file(&dir, "wrong.key", WRONG_SECRET);
    let marker = format!("{}", 3_000_000 + std::process::id());
    let hang = dir.join("hanging-nsupdate");
    std::fs::write(&hang, format!("#!/bin/sh\n/bin/sleep {marker}\n")).expect("script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hang, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let hosts = "hosts:\n  web1: {dyndns: true}\n";
    let server = Server::start("dns-failures", &dns_config(&named, &wrong, hosts));
    let _beating = Beating::start(
        server.hb_port,
        "127.0.0.11",
        "web1",
        Duration::from_millis(500),
    );
    let heartbeats = || {
        server
            .ctl(&["host", "web1"])
            .and_then(|h| h["answer"]["host"]["heartbeats"].as_u64())
            .unwrap_or(0)
    };
    let state = || {
        server
            .ctl(&["host", "web1"])
            .and_then(|h| h["answer"]["host"]["state"].as_str().map(String::from))
            .unwrap_or_default()
    };

    // The wrong key: refused by named, reported, tried again after 1 s, 2 s, ...
    assert!(
        wait_event(&server, "web1", "(try 2)", Duration::from_secs(15)),
        "no second try with the wrong key; events: {:?}",
        host_events(&server, "web1")
    );
    let events = host_events(&server, "web1");
    let first = events
        .iter()
        .find(|e| e.contains("(try 1)"))
        .expect("first failure");
    assert!(
        first.contains("BADSIG") || first.contains("NOTAUTH"),
        "{first}"
    );
    assert!(named.dig("web1.dyn.test", "A").is_empty());
    let flowing = heartbeats();
    assert!(
        flowing > 0 && state() == "up",
        "heartbeats {flowing}, state {:?}: {:?}",
        state(),
        server.ctl(&["host", "web1"])
    );

    // The right key by reload: the next try succeeds at once.
    reconfigure(
        &server,
        &format!("rndc_key: {}", wrong.display()),
        &format!("rndc_key: {}", good.display()),
    );
    assert!(named.wait_records(
        "web1.dyn.test",
        "A",
        &["127.0.0.11"],
        Duration::from_secs(10)
    ));

    // named stopped: nsupdate cannot reach it; reported, retried; named back, it succeeds.
    named.stop();
    let (tries, successes) = (
        count_events(&server, "web1", "(try 1)"),
        count_events(&server, "web1", "A 127.0.0.11 (asked for)"),
    );
    let asked = Instant::now();
    server.ctl(&["dns", "web1"]).expect("hbctl dns");
    assert!(
        wait_more_events(&server, "web1", "(try 1)", tries, Duration::from_secs(5)),
        "no failure with named stopped; events: {:?}",
        host_events(&server, "web1")
    );
    let reported = asked.elapsed();
    let failure = host_events(&server, "web1")
        .into_iter()
        .find(|e| e.contains("(try 1)"))
        .unwrap_or_default();
    eprintln!("stopped named reported after {reported:?}: {failure}");
    assert!(
        reported < Duration::from_secs(4),
        "took {reported:?} (timeout 3 s)"
    );
    let retries = count_events(&server, "web1", "(try 2)");
    assert!(wait_more_events(
        &server,
        "web1",
        "(try 2)",
        retries,
        Duration::from_secs(10)
    ));
    named.run();
    assert!(
        wait_more_events(
            &server,
            "web1",
            "A 127.0.0.11 (asked for)",
            successes,
            Duration::from_secs(15)
        ),
        "no success after named came back; events: {:?}",
        host_events(&server, "web1")
    );

    // A hanging nsupdate: killed with what it started at the timeout, reported, retried.
    server.append_config(&format!("nsupdate_bin: {}\n", hang.display()));
    assert!(server.ctl(&["reload"]).is_some());
    let (retries, successes) = (
        count_events(&server, "web1", "(try 2)"),
        count_events(&server, "web1", "A 127.0.0.11 (asked for)"),
    );
    let asked = Instant::now();
    server.ctl(&["dns", "web1"]).expect("hbctl dns");
    assert!(
        wait_event(
            &server,
            "web1",
            "took longer than 3 s and was killed",
            Duration::from_secs(8)
        ),
        "no timeout reported; events: {:?}",
        host_events(&server, "web1")
    );
    let reported = asked.elapsed();
    eprintln!("hanging nsupdate reported after {reported:?}");
    assert!(
        reported < Duration::from_secs(6),
        "took {reported:?} (timeout 3 s)"
    );
    // Never more than one run of a name at a time.
    assert!(processes_mentioning(&marker).len() <= 1);
    assert!(wait_more_events(
        &server,
        "web1",
        "(try 2)",
        retries,
        Duration::from_secs(10)
    ));
    assert!(
        heartbeats() > flowing && state() == "up",
        "heartbeats stopped flowing"
    );
    reconfigure(&server, &format!("nsupdate_bin: {}\n", hang.display()), "");
    // What the hanging runs started is gone with them.
    assert!(wait_for(Duration::from_secs(10), || processes_mentioning(
        &marker
    )
    .is_empty()));
    assert!(
        wait_more_events(
            &server,
            "web1",
            "A 127.0.0.11 (asked for)",
            successes,
            Duration::from_secs(15)
        ),
        "no success with nsupdate back; events: {:?}",
        host_events(&server, "web1")
    );
    assert!(server.counter("engine", "dns_failed") >= 6);
}
