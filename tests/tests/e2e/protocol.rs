//! Issue 3: the heartbeat protocol end to end — hbc, hb-receiver and the engine.

use std::process::Command;
use std::time::{Duration, Instant};

use hb_proto::datagram::encode;
use nix::sys::signal::Signal::{SIGCONT, SIGSTOP};
use serde_json::{Value, json};

use crate::harness::*;

fn vectors() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../proto/vectors.json"
    ))
    .expect("proto/vectors.json");
    serde_json::from_str(&text).expect("vectors")
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

// 2. hbc -> server: the host appears with a plausible RTT within two intervals.
#[test]
fn hbc_reports_a_plausible_rtt() {
    let server = Server::start("hbc-rtt", "");
    let port = server.hb_port.to_string();
    let _hbc = Hbc::start(
        &server.dir,
        &["-i", "1", "-N", "rtt1", "-p", &port, "127.0.0.1"],
    );
    let started = Instant::now();
    // The first heartbeat cannot carry an RTT (nothing measured yet); the second does.
    let ok = wait_for(Duration::from_secs(3), || {
        server
            .host("rtt1")
            .is_some_and(|h| h["rtt"].as_f64().is_some())
    });
    assert!(
        ok,
        "no RTT within two intervals; log:\n{}",
        server.log_text()
    );
    let host = server.host("rtt1").expect("host");
    let rtt = host["rtt"].as_f64().expect("rtt");
    assert!(rtt > 0.0 && rtt < 50.0, "rtt {rtt} ms on loopback");
    assert_eq!(host["interval"], 1);
    assert_eq!(host["ver"], env!("CARGO_PKG_VERSION"));
    assert!(started.elapsed() < Duration::from_secs(3));
}

// 3. A netcat datagram, a zlib-compressed one and an IPv6 one are each accepted; every
// unsigned documented vector is accepted by the real receiver.
#[test]
fn text_compressed_and_ipv6_datagrams_are_accepted() {
    let server = Server::start("accept", "hb_host: \"::\"\n");
    netcat(
        server.hb_port,
        b"{\"ID\":\"HTB\",\"name\":\"netcat1\",\"interval\":10}\n",
    );
    let compressed = encode(
        &json!({"ID":"HTB","name":"zlib1","interval":10,"pad":"x".repeat(3000)}),
        100,
        None,
    );
    assert_ne!(compressed[0], b'{', "not compressed");
    send_from("127.0.0.1", server.hb_port, &compressed);
    let v6 = std::net::UdpSocket::bind("[::1]:0").expect("IPv6 loopback");
    v6.send_to(
        br#"{"ID":"HTB","name":"ipv6one","interval":10}"#,
        ("::1", server.hb_port),
    )
    .expect("send v6");
    let mut expected = vec!["netcat1", "zlib1", "ipv6one"];
    let vectors = vectors();
    for v in vectors["vectors"].as_array().expect("vectors") {
        if v["direction"] == "client" && v["rejected"].is_null() && v["signed"].is_null() {
            send_from(
                "127.0.0.1",
                server.hb_port,
                &unhex(v["hex"].as_str().expect("hex")),
            );
            expected.push(v["message"]["name"].as_str().expect("name"));
        }
    }
    let ok = wait_for(Duration::from_secs(3), || {
        let names = server.host_names();
        expected.iter().all(|e| names.iter().any(|n| n == e))
    });
    assert!(
        ok,
        "missing some of {expected:?}: {:?}",
        server.host_names()
    );
    let v6host = server.host("ipv6one").expect("ipv6 host");
    assert_eq!(v6host["address"], "::1");
    assert_eq!(
        server.host("netcat1").expect("host")["address"],
        "127.0.0.1",
        "mapped address not normalised"
    );
    assert_eq!(
        server.counter("receiver", "rejected"),
        0,
        "{}",
        server.counters("receiver")
    );
}

// 4. Hostile input: each rejected and counted; a concurrent well-behaved client unaffected.
#[test]
fn hostile_datagrams_are_rejected_counted_and_harmless() {
    let server = Server::start("hostile-proto", "source_rate: 5\nsource_burst: 10\n");
    let port = server.hb_port.to_string();
    let _good = Hbc::start(
        &server.dir,
        &["-i", "1", "-N", "good1", "-p", &port, "127.0.0.1"],
    );
    assert!(wait_for(Duration::from_secs(3), || server
        .host("good1")
        .is_some()));
    let receiver_pid = server.pid_of("receiver");

    let mut bomb_text = br#"{"ID":"HTB","name":"bomb","x":""#.to_vec();
    bomb_text.extend(std::iter::repeat_n(b'0', 2 << 20));
    bomb_text.extend_from_slice(b"\"}");
    let bomb = encode(
        &serde_json::from_slice::<Value>(&bomb_text).expect("json"),
        0,
        None,
    );
    assert!(bomb.len() < 4096, "bomb of {} bytes", bomb.len());
    let mut truncated = encode(
        &json!({"ID":"HTB","name":"t1","pad":"y".repeat(2000)}),
        0,
        None,
    );
    truncated.truncate(truncated.len() / 2);
    let garbage: Vec<u8> = (0..65_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let deep = format!(
        "{{\"ID\":\"HTB\",\"name\":\"d\",\"x\":{}{}}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let long_name = format!("{{\"ID\":\"HTB\",\"name\":\"{}\"}}", "a".repeat(10 * 1024));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (truncated, "rejected_bad_zlib"),
        (bomb, "rejected_zlib_bomb"),
        (garbage, "rejected_bad_zlib"),
        (
            b"{\"ID\":\"HTB\",\"name\":\"\xc3\x28\"}".to_vec(),
            "rejected_not_utf8",
        ),
        (deep.into_bytes(), "rejected_too_deep"),
        (
            br#"{"ID":"ZAP","name":"x"}"#.to_vec(),
            "rejected_unknown_id",
        ),
        (
            br#"{"ID":"HTB","interval":10}"#.to_vec(),
            "rejected_bad_name",
        ),
        (
            b"{\"ID\":\"HTB\",\"name\":\"web\\u0000\\u001b[31m\"}".to_vec(),
            "rejected_bad_name",
        ),
        (long_name.into_bytes(), "rejected_bad_name"),
        (
            format!(
                "{{\"ID\":\"HTB\",\"name\":\"k\",\"{}\":1}}",
                "k".repeat(300)
            )
            .into_bytes(),
            "rejected_too_big",
        ),
    ];
    // From their own address, slowly enough to stay under the rate limit.
    for (datagram, counter) in &cases {
        let before = server.counter("receiver", counter);
        send_from("127.0.0.3", server.hb_port, datagram);
        assert!(
            wait_for(Duration::from_secs(2), || server
                .counter("receiver", counter)
                > before),
            "{counter} not counted; counters: {}",
            server.counters("receiver")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // A flood from one address: past burst and rate, the rest is refused and counted.
    for i in 0..200 {
        send_from(
            "127.0.0.2",
            server.hb_port,
            format!("{{\"ID\":\"HTB\",\"name\":\"flood{i}\"}}").as_bytes(),
        );
    }
    assert!(wait_for(Duration::from_secs(2), || server
        .counter("receiver", "rejected_rate_limited")
        >= 150));
    // The accepted ones reach the engine's list after the refusals are counted: wait for them.
    let flood_hosts = || {
        server
            .host_names()
            .iter()
            .filter(|n| n.starts_with("flood"))
            .count()
    };
    wait_for(Duration::from_secs(3), || flood_hosts() >= 10);
    let flooded = flood_hosts();
    assert!(
        (10..=20).contains(&flooded),
        "{flooded} flood hosts got through"
    );
    // The engine heard about the rejections (not the rate-limited ones).
    assert!(
        server.counter("engine", "rejected_zlib_bomb") >= 1,
        "{}",
        server.counters("engine")
    );
    // Nothing else was hurt: no restart, and the good client kept going.
    assert_eq!(server.pid_of("receiver"), receiver_pid);
    let before = server.host("good1").expect("good1")["heartbeats"]
        .as_u64()
        .expect("count");
    assert!(wait_for(Duration::from_secs(3), || {
        server
            .host("good1")
            .and_then(|h| h["heartbeats"].as_u64())
            .is_some_and(|n| n >= before + 2)
    }));
    assert!(
        server
            .host_names()
            .iter()
            .all(|n| !["bomb", "t1", "d", "x"].contains(&n.as_str()))
    );
}

// 5. Signatures: signed accepted; tampered, replayed, stale and (for a keyed host) unsigned
// datagrams rejected.
#[test]
fn signed_datagrams_and_their_attacks() {
    const KEY: &str = "e2e-host-key-0123456789";
    let vector_key = vectors()["key"].as_str().expect("key").to_string();
    let extra = format!(
        "hosts:\n  signed1:\n    key: \"{KEY}\"\n  hbcsigned:\n    key: \"{KEY}\"\n  web1:\n    key: \"{vector_key}\"\n"
    );
    let server = Server::start("signed", &extra);
    let port = server.hb_port.to_string();
    // hbc with the key: accepted, shown as signed, with an RTT (so it accepted the signed ACKs).
    let config = server.dir.join("hbc.yaml");
    std::fs::write(
        &config,
        format!(
            "key: \"{KEY}\"\nname: hbcsigned\ninterval: 1\nhb_port: {port}\nservers: [127.0.0.1]\n"
        ),
    )
    .expect("write");
    let _hbc = Hbc::start(&server.dir, &["-c", config.to_str().expect("utf8")]);
    assert!(
        wait_for(Duration::from_secs(4), || {
            server
                .host("hbcsigned")
                .is_some_and(|h| h["signed"] == true && h["rtt"].as_f64().is_some())
        }),
        "signed hbc not accepted: {:?}",
        server.host("hbcsigned")
    );

    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_millis() as u64
    };
    let msg = |seq: u64| json!({"ID":"HTB","name":"signed1","interval":10,"seq":seq});
    let good = encode(&msg(1), usize::MAX, Some((KEY.as_bytes(), now(), 1)));
    let check = |datagram: &[u8], counter: &str| {
        let before = server.counter("receiver", counter);
        send_from("127.0.0.1", server.hb_port, datagram);
        assert!(
            wait_for(Duration::from_secs(2), || server
                .counter("receiver", counter)
                > before),
            "{counter} not counted: {}",
            server.counters("receiver")
        );
    };
    check(&good, "accepted_signed");
    check(&good, "rejected_replay");
    let mut tampered = encode(&msg(2), usize::MAX, Some((KEY.as_bytes(), now(), 2)));
    let at = tampered
        .windows(8)
        .position(|w| w == b"\"seq\":2}")
        .expect("seq")
        + 6;
    tampered[at] = b'9';
    check(&tampered, "rejected_bad_signature");
    check(
        &encode(
            &msg(3),
            usize::MAX,
            Some((KEY.as_bytes(), now() - 3_600_000, 3)),
        ),
        "rejected_stale",
    );
    check(
        &encode(
            &msg(4),
            usize::MAX,
            Some((b"wrong-key-0123456789", now(), 4)),
        ),
        "rejected_bad_signature",
    );
    check(&encode(&msg(5), usize::MAX, None), "rejected_unsigned");
    check(
        &encode(&msg(6), usize::MAX, Some((KEY.as_bytes(), now(), 6))),
        "accepted_signed",
    );
    // The signed vectors verify (web1's key is the vectors' key) but were made long ago.
    let vectors = vectors();
    for v in vectors["vectors"].as_array().expect("vectors") {
        if v["direction"] == "client" && v["message"]["name"] == "web1" && !v["signed"].is_null() {
            check(&unhex(v["hex"].as_str().expect("hex")), "rejected_stale");
        }
    }
}

// 7. With -b and two servers: boot and shutdown arrive exactly once each, at the first.
#[test]
fn boot_and_shutdown_arrive_once_with_two_servers() {
    let first = Server::start("boot-a", "");
    let second = Server::start("boot-b", "");
    let a = format!("127.0.0.1:{}", first.hb_port);
    let b = format!("127.0.0.1:{}", second.hb_port);
    let mut hbc = Hbc::start(&first.dir, &["-b", "-i", "1", "-N", "boot1", &a, &b]);
    assert!(wait_for(Duration::from_secs(3), || first
        .host("boot1")
        .is_some()
        && second.host("boot1").is_some()));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(hbc.stop(), Some(0), "{}", hbc.log_text());
    let count = |server: &Server, what: &str| {
        server
            .messages()
            .iter()
            .filter(|m| m.as_str() == format!("boot1 {what}"))
            .count()
    };
    assert!(wait_for(Duration::from_secs(2), || count(
        &first,
        "is shutting down"
    ) == 1));
    assert_eq!(count(&first, "rebooted"), 1, "{:?}", first.messages());
    assert_eq!(count(&second, "rebooted"), 0, "{:?}", second.messages());
    assert_eq!(
        count(&second, "is shutting down"),
        0,
        "{:?}",
        second.messages()
    );
    // Both servers got heartbeats all along.
    assert!(
        second
            .host("boot1")
            .and_then(|h| h["heartbeats"].as_u64())
            .is_some_and(|n| n >= 2)
    );
}

// -m sends one message to every server and exits 0 once they ACKed.
#[test]
fn hbc_message_mode() {
    let server = Server::start("hbc-msg", "");
    let port = server.hb_port.to_string();
    let out = std::process::Command::new(bin("hbc"))
        .args([
            "-N",
            "msg1",
            "-p",
            &port,
            "-m",
            "disk replaced in bay 3",
            "127.0.0.1",
        ])
        .env_remove("HOME")
        .output()
        .expect("hbc -m");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        server
            .messages()
            .contains(&"msg1: disk replaced in bay 3".to_string()),
        "{:?}",
        server.messages()
    );
    // Nobody listening: it says so and fails.
    let (dead, _) = free_ports();
    let out = std::process::Command::new(bin("hbc"))
        .args([
            "-N",
            "msg1",
            "-p",
            &dead.to_string(),
            "-m",
            "hello",
            "127.0.0.1",
        ])
        .env_remove("HOME")
        .output()
        .expect("hbc -m");
    assert_eq!(out.status.code(), Some(1));
}

// 6. A command queued on the server runs on the host only if its commands map has it, and
// its result comes back; one not in the map is refused and reported; updates likewise.
#[test]
fn queued_commands_run_only_from_the_hosts_own_map() {
    let server = Server::start("commands", "");
    let marker = server.dir.join("ran");
    let config = server.dir.join("hbc.yaml");
    std::fs::write(
        &config,
        format!(
            "name: cmd1\ninterval: 1\nhb_port: {}\nservers: [127.0.0.1]\ncommands:\n  hello: [/bin/echo, hi-from-hbc]\n  touch: [/usr/bin/touch, {}]\n",
            server.hb_port,
            marker.display()
        ),
    )
    .expect("write");
    let _hbc = Hbc::start(&server.dir, &["-c", config.to_str().expect("utf8")]);
    assert!(wait_for(Duration::from_secs(3), || server
        .host("cmd1")
        .is_some()));
    let queue = |args: &[&str]| -> u64 {
        let answer = server
            .ctl(args)
            .unwrap_or_else(|| panic!("hbctl {args:?} failed"));
        answer["id"].as_u64().expect("id")
    };
    let hello = queue(&["command", "cmd1", "hello"]);
    let touch = queue(&["command", "cmd1", "touch"]);
    let evil = queue(&["command", "cmd1", "rm-everything"]);
    let update = queue(&["update", "cmd1"]);
    let has = |text: &str| server.messages().iter().any(|m| m.contains(text));
    let ok = wait_for(Duration::from_secs(6), || {
        has(&format!("command {hello} exited 0: hi-from-hbc"))
            && has(&format!("command {touch} exited 0"))
            && has(&format!(
                "command {evil}: refused: command \"rm-everything\" is not in this host's commands map"
            ))
            && has(&format!(
                "command {update}: refused: no update_command is configured"
            ))
    });
    assert!(ok, "results missing: {:#?}", server.messages());
    assert!(marker.exists(), "the touch command did not run");
    // Each ran once, although it rode in several ACKs before the result came back.
    std::thread::sleep(Duration::from_millis(2500));
    let runs = server
        .messages()
        .iter()
        .filter(|m| m.contains(&format!("command {hello} exited")))
        .count();
    assert_eq!(runs, 1, "{:#?}", server.messages());
    // Names that could not be in any map are refused by the server itself.
    assert!(server.ctl(&["command", "cmd1", "rm -rf /"]).is_none());
    assert!(server.ctl(&["command", "bad host", "hello"]).is_none());
}

// Unreachable servers are retried every interval (a server that comes up later gets the
// host); an IPv6 address that never answered is dropped after three tries. With -d, hbc
// detaches and keeps going.
#[test]
fn hbc_retries_servers_and_detaches() {
    let mut later = Server::prepare("late", "");
    let port = later.hb_port;
    let dir = later.dir.clone();
    let (dead6, _) = free_ports();
    let late = format!("127.0.0.1:{port}");
    let v6 = format!("[::1]:{dead6}");
    let mut hbc = Hbc::start(&dir, &["-v", "-i", "1", "-N", "retry1", &late, &v6]);
    std::thread::sleep(Duration::from_millis(4500));
    assert!(
        hbc.log_text()
            .contains("IPv6 address never answered; no longer trying it."),
        "{}",
        hbc.log_text()
    );
    later.spawn(&["-f"]);
    later.wait_running(Duration::from_secs(20));
    assert!(
        wait_for(Duration::from_secs(4), || later.host("retry1").is_some()),
        "the IPv4 server that came up later never heard from hbc"
    );
    hbc.stop();

    let out = std::process::Command::new(bin("hbc"))
        .args(["-d", "-i", "1", "-N", "daemon1", &late])
        .env_remove("HOME")
        .output()
        .expect("hbc -d");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        wait_for(Duration::from_secs(4), || later
            .host("daemon1")
            .is_some_and(|h| h["heartbeats"].as_u64() >= Some(2))),
        "detached hbc does not heartbeat"
    );
    for pid in processes_mentioning("daemon1") {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

// More than the queue to the engine holds arrives while the engine is frozen: the receiver
// stops reading instead of dropping, the rest waits in the socket's buffer, and once the
// engine runs again every datagram is ACKed and taken.
#[test]
fn a_frozen_engine_loses_nothing_the_queue_cannot_hold() {
    let server = Server::start(
        "frozen-burst",
        "source_rate: 1000000\nsource_burst: 1000000\n",
    );
    // The rest waits in the socket's buffer, which must be granted.
    assert!(
        !server.log_text().contains("UDP receive buffer is small"),
        "this test needs root or net.core.rmem_max of 8 MiB or more (the socket could not \
         get its receive buffer): {}",
        server.log_text()
    );
    server.signal_role("engine", SIGSTOP);
    // 15,000: the queue (8,192) and the channel's socket buffer take about 9,000; the rest
    // is about 5 MB of the socket's buffer.
    let load = server.hbload(&["-n", "1000", "-r", "10000", "-d", "1.5", "--wait", "8"]);
    std::thread::sleep(Duration::from_secs(3));
    let waited = server.counter("receiver", "engine_queue_wait_ms");
    server.signal_role("engine", SIGCONT);
    assert!(waited > 0, "the receiver never waited for the engine");
    assert!(
        wait_for(Duration::from_secs(30), || server
            .counter("engine", "received_HTB")
            >= 15_000),
        "the engine took {} of 15000",
        server.counter("engine", "received_HTB")
    );
    let out = load.wait_with_output().expect("hbload");
    let line: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(line["sent"], 15_000, "{line}");
    assert_eq!(line["acks"], 15_000, "{line}");
    assert_eq!(server.counter("receiver", "engine_queue_dropped"), 0);
    assert_eq!(server.counter("receiver", "kernel_dropped"), 0);
    assert_eq!(server.counter("engine", "received_HTB"), 15_000);
}

// Heartbeats that wait in the server's own buffers are not late. 200 hosts beat every
// second (overdue after 3 s of silence, down after 4 s) while the engine is frozen for 6 s:
// by the wall clock every host went silent, but their heartbeats arrived in time and wait,
// stamped by the kernel, in the queue to the engine. Once it runs again, nobody is overdue or
// down (judged by the wall clock, its first tick found all 200 down).
#[test]
fn a_server_that_falls_behind_makes_no_host_late() {
    let server = Server::start(
        "behind",
        "source_rate: 1000000\nsource_burst: 1000000\ngrace: 2\nmax_missed: 2\n",
    );
    let load = server.hbload(&["-n", "200", "-r", "200", "-d", "11", "--prefix", "behind"]);
    let all_up = |hosts: &[Value]| hosts.len() == 200 && hosts.iter().all(|h| h["state"] == "up");
    assert!(
        wait_for(Duration::from_secs(5), || all_up(&server.hosts())),
        "not every host came up: {:?}",
        server.hosts()
    );
    server.signal_role("engine", SIGSTOP);
    std::thread::sleep(Duration::from_secs(6));
    server.signal_role("engine", SIGCONT);
    // Looked at while the hosts still beat (they are late for real 3 s after the load ends).
    std::thread::sleep(Duration::from_secs(2));
    let hosts = server.hosts();
    assert!(all_up(&hosts), "late: {hosts:?}");
    assert_eq!(server.counter("engine", "went_overdue"), 0);
    assert_eq!(server.counter("engine", "went_down"), 0);
    let out = load.wait_with_output().expect("hbload");
    let line: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(line["sent"], line["acks"], "{line}");
    // Every heartbeat is taken.
    assert!(wait_for(Duration::from_secs(5), || server
        .counter("engine", "received_HTB")
        == line["sent"].as_u64().unwrap_or(0)));
}

// When the server falls so far behind that the kernel drops datagrams (its socket's buffer
// full), a host whose heartbeats were among them is not paged: 2000 hosts beat twice a
// second while the engine is frozen for 8 s, and after the queues and the smallest buffer
// fill (in about 3 s) every datagram is dropped for 5 s, more than a down period (4 s).
// Once the engine runs again nobody is down; the losses are counted and told in one event.
#[test]
fn datagrams_the_server_itself_dropped_page_nobody() {
    let server = Server::start(
        "dropped",
        "source_rate: 1000000\nsource_burst: 1000000\ngrace: 2\nmax_missed: 2\nudp_receive_buffer: 1048576\n",
    );
    let load = server.hbload(&[
        "-n", "2000", "-r", "4000", "-d", "13", "--prefix", "dropped",
    ]);
    assert!(
        wait_for(Duration::from_secs(5), || server.host_names().len() == 2000),
        "not every host came up"
    );
    server.signal_role("engine", SIGSTOP);
    std::thread::sleep(Duration::from_secs(8));
    server.signal_role("engine", SIGCONT);
    // Looked at while the hosts still beat (they are down for real 4 s after the load ends).
    std::thread::sleep(Duration::from_millis(2500));
    let dropped = server.counter("receiver", "kernel_dropped");
    assert!(dropped > 10_000, "the kernel dropped only {dropped}");
    assert!(
        server.counter("engine", "server_dropped") > 10_000,
        "the engine was told of {} drops",
        server.counter("engine", "server_dropped")
    );
    assert_eq!(
        server.counter("engine", "went_down"),
        0,
        "{:?}",
        server.events(None, 5)
    );
    let told: Vec<String> = server
        .events(Some("*"), 100)
        .into_iter()
        .map(|(_, text)| text)
        .filter(|text| text.starts_with("the server dropped"))
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    let out = load.wait_with_output().expect("hbload");
    let line: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert!(line["acks"].as_u64() > Some(0), "{line}");
}

// ACKs do not wait on the engine while the queue to it has room: with the engine frozen,
// hbc still gets its answer.
#[test]
fn acks_flow_while_the_engine_is_unavailable() {
    let server = Server::start("frozen", "");
    server.signal_role("engine", SIGSTOP);
    let out = std::process::Command::new(bin("hbc"))
        .args([
            "-1",
            "-N",
            "frozen1",
            "-p",
            &server.hb_port.to_string(),
            "127.0.0.1",
        ])
        .env_remove("HOME")
        .output()
        .expect("hbc -1");
    server.signal_role("engine", SIGCONT);
    assert!(
        out.status.success(),
        "no ACK while the engine was frozen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And the heartbeat was held for the engine, not lost.
    assert!(wait_for(Duration::from_secs(3), || server
        .host("frozen1")
        .is_some()));
}

// Every received message and every rejected datagram is a line in the journal.
#[test]
fn messages_and_rejections_are_journaled() {
    let server = Server::start(
        "journal",
        "journal_max_size: 4096\njournal_max_backups: 2\n",
    );
    send_from(
        "127.0.0.1",
        server.hb_port,
        br#"{"ID":"HTB","name":"jrnl1","interval":10}"#,
    );
    send_from(
        "127.0.0.1",
        server.hb_port,
        br#"{"ID":"NOPE","name":"jrnl1"}"#,
    );
    let path = server.dir.join("state/journal/messages.journal");
    let lines = || -> Vec<Value> {
        std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    assert!(
        wait_for(Duration::from_secs(3), || lines().len() >= 2),
        "journal: {:?}",
        lines()
    );
    let all = lines();
    let heartbeat = all
        .iter()
        .find(|l| l["message"]["name"] == "jrnl1")
        .expect("heartbeat line");
    assert_eq!(heartbeat["source_ip"], "127.0.0.1");
    assert!(heartbeat["timestamp"].as_f64().is_some_and(|t| t > 1.7e9));
    assert!(
        heartbeat["datetime"]
            .as_str()
            .is_some_and(|d| d.ends_with('Z'))
    );
    assert!(heartbeat["source_port"].as_u64().is_some());
    let rejected = all
        .iter()
        .find(|l| l["rejected"] == "unknown_id")
        .expect("rejection line");
    assert!(
        rejected["detail"]
            .as_str()
            .is_some_and(|d| d.contains("NOPE"))
    );
    // Rotation by size keeps the configured number of backups.
    for i in 0..100 {
        send_from(
            "127.0.0.4",
            server.hb_port,
            format!("{{\"ID\":\"HTB\",\"name\":\"rot{i}\"}}").as_bytes(),
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(wait_for(Duration::from_secs(3), || server
        .dir
        .join("state/journal/messages.journal.2")
        .exists()));
    assert!(!server.dir.join("state/journal/messages.journal.3").exists());
}

// A journal that cannot be written is logged and counted; the engine goes on.
#[test]
fn an_unwritable_journal_does_not_stop_the_engine() {
    let mut server = Server::prepare("journal-ro", "");
    // A directory where the journal file should be: nothing can open it for writing.
    std::fs::create_dir_all(server.dir.join("state/journal/messages.journal/blocked"))
        .expect("mkdir");
    server.spawn(&["-f"]);
    server.wait_running(Duration::from_secs(20));
    assert!(server.pipeline_works("ro1", Duration::from_secs(5)));
    assert!(
        server.wait_log("Journal: cannot open", Duration::from_secs(3)),
        "{}",
        server.log_text()
    );
    assert!(
        server.counter("engine", "journal_failed") >= 1,
        "{}",
        server.counters("engine")
    );
    assert_eq!(server.child_status("engine")["restarts"], 0);
}

// A silent host goes overdue, then down (an event), and recovers when it returns.
#[test]
fn silent_hosts_go_overdue_then_down_and_recover() {
    let server = Server::start(
        "liveness",
        "grace: 0\nmax_missed: 2\nhosts:\n  live1:\n    watch: true\n",
    );
    let hb = br#"{"ID":"HTB","name":"live1","interval":1}"#;
    send_from("127.0.0.1", server.hb_port, hb);
    assert!(wait_for(Duration::from_secs(2), || server
        .host("live1")
        .is_some_and(|h| h["state"] == "up")));
    // interval 1 s, grace 0: overdue after 1 s; down after 2 s, but never before 4 s.
    assert!(wait_for(Duration::from_millis(1500), || server
        .host("live1")
        .is_some_and(|h| h["state"] == "overdue")));
    assert!(wait_for(Duration::from_millis(4000), || server
        .host("live1")
        .is_some_and(|h| h["state"] == "down")));
    assert!(
        server.messages().contains(&"live1 down".to_string()),
        "{:?}",
        server.messages()
    );
    std::thread::sleep(Duration::from_millis(2500));
    send_from("127.0.0.1", server.hb_port, hb);
    assert!(wait_for(Duration::from_secs(2), || server
        .host("live1")
        .is_some_and(|h| h["state"] == "up")));
    assert!(
        server
            .messages()
            .iter()
            .any(|m| m.starts_with("live1 recovered after ")),
        "{:?}",
        server.messages()
    );
    // A host that said it shuts down is not reported down.
    send_from(
        "127.0.0.1",
        server.hb_port,
        br#"{"ID":"HTB","name":"bye1","interval":1}"#,
    );
    send_from(
        "127.0.0.1",
        server.hb_port,
        br#"{"ID":"SHD","name":"bye1","seq":1}"#,
    );
    std::thread::sleep(Duration::from_millis(3000));
    assert_eq!(server.host("bye1").expect("bye1")["state"], "shutdown");
    assert!(!server.messages().iter().any(|m| m.starts_with("bye1 down")));
}

// Issue 4, store: hosts and events survive a full restart; a store from a newer hb is refused
// with a clear message and left untouched.
#[test]
fn the_store_survives_restarts_and_refuses_a_newer_schema() {
    let mut server = Server::prepare("store", "");
    server.spawn(&["-f"]);
    server.wait_running(Duration::from_secs(20));
    send_from(
        "127.0.0.1",
        server.hb_port,
        br#"{"ID":"BOT","name":"kept1","seq":1}"#,
    );
    assert!(server.pipeline_works("kept1", Duration::from_secs(5)));
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));

    server.spawn(&["-f"]);
    server.wait_running(Duration::from_secs(20));
    let host = server.host("kept1").expect("host lost in the restart");
    assert_eq!(host["address"], "127.0.0.1");
    assert!(
        server.messages().contains(&"kept1 rebooted".to_string()),
        "{:?}",
        server.messages()
    );
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));

    let db = server.dir.join("state/hb.sqlite");
    let out = std::process::Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA user_version=99'); c.commit()"])
        .arg(&db)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.spawn(&["-f"]);
    let code = server.wait_exit(Duration::from_secs(40));
    assert!(
        matches!(code, Some(c) if c != 0),
        "started on a newer store"
    );
    assert!(
        server
            .log_text()
            .contains("schema version 99, newer than this hb-engine's"),
        "{}",
        server.log_text()
    );
}

// Issue 11: hbload sends what it says at the rate it says, and counts the ACKs that come
// back; its sink counts what reaches it.
#[test]
fn hbload_counts_what_it_sends_and_what_comes_back() {
    let server = Server::start("hbload", "source_rate: 100000\nsource_burst: 100000\n");
    let out = Command::new(bin("hbload"))
        .args([
            "-s",
            &format!("127.0.0.1:{}", server.hb_port),
            "-n",
            "100",
            "-r",
            "500",
            "-d",
            "1",
            "--plg",
            "5",
            "--sources",
            "4",
            "--wait",
            "2",
            "--ctl",
            &format!("{}/hb.sock", server.dir.display()),
        ])
        .output()
        .expect("hbload");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(line["sent"], 500);
    assert_eq!(line["acks"], 500, "{line}");
    // What the server counted meanwhile, read through its control socket.
    assert_eq!(line["server"]["receiver"]["accepted"], 500, "{line}");
    assert_eq!(line["server"]["engine"]["received_HTB"], 400, "{line}");
    assert_eq!(line["server"]["engine"]["received_PLG"], 100, "{line}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("server: accepted 500, rejected 0"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        line["rtt_p99_ms"].as_f64().is_some_and(|ms| ms < 1000.0),
        "{line}"
    );
    assert_eq!(server.counter("receiver", "accepted"), 500);
    assert_eq!(server.host_names().len(), 100);

    // The sink: a bare receiver.
    let port = free_ports().0;
    let sink = Command::new(bin("hbload"))
        .args(["--sink", "-p", &port.to_string(), "-d", "3"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sink");
    std::thread::sleep(Duration::from_millis(300));
    let out = Command::new(bin("hbload"))
        .args([
            "-s",
            &format!("127.0.0.1:{port}"),
            "-n",
            "10",
            "-r",
            "2000",
            "-d",
            "0.5",
            "--wait",
            "0",
        ])
        .output()
        .expect("hbload");
    assert!(out.status.success());
    let counted = sink.wait_with_output().expect("sink");
    let line: Value = serde_json::from_slice(&counted.stdout).expect("sink JSON");
    assert_eq!(line["received"], 1000, "{line}");
}
