//! Issue 4: the engine across restarts of the whole server and crashes of the engine.

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;

/// Sends a heartbeat (and every `plugin_every` rounds a PLG) for each host in `hosts` every
/// `period` until dropped; the set can change while it runs.
struct Fleet {
    hosts: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Fleet {
    fn start(port: u16, hosts: Vec<String>, period: Duration, plugin_every: Option<u32>) -> Fleet {
        let hosts = Arc::new(Mutex::new(hosts));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (hosts, stop) = (hosts.clone(), stop.clone());
            std::thread::spawn(move || {
                let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
                let mut round = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let to = ("127.0.0.1", port);
                    let names = hosts.lock().expect("hosts").clone();
                    for (i, name) in names.iter().enumerate() {
                        // Paced, as a real fleet is, rather than one burst per round.
                        if i % 100 == 99 {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        let rtt = 0.1 + f64::from(round % 10) / 10.0 + i as f64 / 1e4;
                        let hb =
                            format!(r#"{{"ID":"HTB","name":"{name}","interval":2,"rtt":{rtt}}}"#);
                        let _ = socket.send_to(hb.as_bytes(), to);
                        if plugin_every.is_some_and(|n| round.is_multiple_of(n)) {
                            let plg = format!(
                                r#"{{"ID":"PLG","name":"{name}","plugin":"cpu_monitor","data":{{"cpu_percent":{round},"load_1min":0.5}}}}"#
                            );
                            let _ = socket.send_to(plg.as_bytes(), to);
                        }
                    }
                    round += 1;
                    std::thread::sleep(period.saturating_sub(started.elapsed()));
                }
            })
        };
        Fleet {
            hosts,
            stop,
            thread: Some(thread),
        }
    }

    fn set_hosts(&self, hosts: Vec<String>) {
        *self.hosts.lock().expect("hosts") = hosts;
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{prefix}{i}")).collect()
}

/// A `cpu_monitor` report from `host`.
fn cpu_report(host: &str, percent: u32) -> Vec<u8> {
    format!(
        r#"{{"ID":"PLG","name":"{host}","plugin":"cpu_monitor","data":{{"cpu_percent":{percent}}}}}"#
    )
    .into_bytes()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn stop(server: &mut Server) {
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
}

// Acceptance 2: the whole server stops for longer than the hosts' interval. Hosts that resume
// heartbeating after the start are never reported down; a host that stays silent is reported
// once, when the start-up grace ends.
#[test]
fn a_restart_reports_only_hosts_that_stay_silent_after_the_startup_grace() {
    // Interval 2 s (announced), grace 1, max_missed 2: down after 5 s of silence; the start-up
    // grace defaults to the same window.
    let mut server = Server::prepare(
        "restart",
        "grace: 1\nmax_missed: 2\nwatchhosts: [stay1, stay2, stay3, gone1]\n",
    );
    server.spawn(&["-f", "-v"]);
    server.wait_running(Duration::from_secs(20));
    let mut hosts = names("stay", 3);
    hosts.push("gone1".into());
    let fleet = Fleet::start(server.hb_port, hosts, Duration::from_millis(500), None);
    assert!(wait_for(Duration::from_secs(5), || server
        .host_names()
        .len()
        == 4));
    drop(fleet);
    stop(&mut server);

    // Down for 8 s: without the grace every host would be overdue and down at once.
    std::thread::sleep(Duration::from_secs(8));
    let started = now_ms();
    server.spawn(&["-f", "-v"]);
    server.wait_running(Duration::from_secs(20));
    let fleet = Fleet::start(
        server.hb_port,
        names("stay", 3),
        Duration::from_millis(500),
        None,
    );
    assert!(
        wait_for(Duration::from_secs(12), || server
            .host("gone1")
            .is_some_and(|h| h["state"] == "down")),
        "{:?}",
        server.host("gone1")
    );
    // Give a false report about the others time to show.
    std::thread::sleep(Duration::from_secs(2));
    let events = server.events(None, 1000);
    let downs: Vec<&(u64, String)> = events.iter().filter(|(_, e)| e.contains(" down")).collect();
    assert_eq!(downs.len(), 1, "exactly one down report: {downs:?}");
    assert_eq!(downs[0].1, "gone1 down");
    assert!(
        downs[0].0 >= started + 5000,
        "gone1 was reported {} ms after the start, within the start-up grace",
        downs[0].0 - started
    );
    for h in names("stay", 3) {
        assert_eq!(server.host(&h).expect("host")["state"], "up", "{h}");
    }
    assert!(server.wait_log(
        "Notification: [CRITICAL] gone1 down",
        Duration::from_secs(5)
    ));
    assert_eq!(
        server
            .log_text()
            .matches("Notification: [CRITICAL] gone1 down")
            .count(),
        1
    );
    drop(fleet);
}

fn notifier_log_ids(server: &Server, host_prefix: &str) -> BTreeMap<u64, usize> {
    let mut ids = BTreeMap::new();
    for line in server.log_text().lines() {
        let Some(rest) = line.split("test-notifier received id=").nth(1) else {
            continue;
        };
        if !line.contains(&format!("title=[CRITICAL] {host_prefix}")) {
            continue;
        }
        if let Some(id) = rest.split(' ').next().and_then(|id| id.parse().ok()) {
            *ids.entry(id).or_insert(0) += 1;
        }
    }
    ids
}

// Acceptance 3: `kill -9` of the engine while 1,000 hosts heartbeat and notifications are
// pending. After the restart every host and alert state is intact, nothing is reported
// twice or lost, and each notification the notifier has not reported done is handed to it
// again with its original id (and only those).
#[test]
fn kill_9_of_the_engine_loses_no_state_and_resends_undelivered_notifications() {
    let dir_name = "kill9";
    let mut server = Server::prepare(
        dir_name,
        // Ten hosts down at once would be a storm (one summary): this test is about the
        // outbox, so each down is its own notification.
        "grace: 1\nmax_missed: 2\nsource_rate: 100000\nsource_burst: 100000\nstorm_detection: false\n\
         watchhosts: [ack1, ack2, ack3, ack4, ack5, hold1, hold2, hold3, hold4, hold5]\n",
    );
    let script = format!(
        "#!/bin/sh\nexec {} \"$@\"\n",
        bin_dir().join("hb-test-notifier").display()
    );
    assert!(
        bin_dir().join("hb-test-notifier").is_file(),
        "hb-test-notifier missing: build with `cargo build --workspace --bins`"
    );
    let libexec = libexec_with(&server.dir, "hb-notifier", &script);
    server.append_config(&format!("libexec_dir: {}\n", libexec.display()));
    server.spawn(&["-f", "-v"]);
    server.wait_running(Duration::from_secs(20));

    let mut all = names("host", 990);
    all.extend(names("ack", 5));
    all.extend(names("hold", 5));
    let fleet = Fleet::start(server.hb_port, all, Duration::from_secs(1), None);
    assert!(
        wait_for(Duration::from_secs(15), || server
            .counter("engine", "hosts")
            == 1000),
        "{}",
        server.counters("engine")
    );
    // Ten watched hosts go silent: ten down alerts, five reported done by the notifier.
    fleet.set_hosts(names("host", 990));
    assert!(
        wait_for(Duration::from_secs(15), || server
            .counter("engine", "notifications")
            == 10
            && server.counter("engine", "outbox_pending") == 5),
        "{}",
        server.counters("engine")
    );
    let held = notifier_log_ids(&server, "hold");
    let acked = notifier_log_ids(&server, "ack");
    assert_eq!(held.len(), 5, "{held:?}");
    assert_eq!(acked.len(), 5, "{acked:?}");
    let before_alerts = server.ctl(&["alerts"]).expect("alerts")["answer"]["alerts"].clone();
    // The notifier's reports are committed at once, not with the next batch; a report in the
    // last milliseconds before a crash would be lost and its notification sent again (with
    // the same id, which the real notifier recognises). Leave those milliseconds.
    std::thread::sleep(Duration::from_millis(300));

    server.kill_9("engine");
    assert!(
        wait_for(Duration::from_secs(15), || {
            let s = server.child_status("engine");
            s["restarts"] == 1 && s["state"] == "running"
        }),
        "engine not back"
    );
    // Each held notification arrives a second time, with its id; acknowledged ones do not.
    assert!(
        wait_for(Duration::from_secs(10), || notifier_log_ids(
            &server, "hold"
        )
        .values()
        .all(|n| *n == 2)),
        "{:?}",
        notifier_log_ids(&server, "hold")
    );
    assert_eq!(
        notifier_log_ids(&server, "hold").keys().collect::<Vec<_>>(),
        held.keys().collect::<Vec<_>>()
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        notifier_log_ids(&server, "ack"),
        acked,
        "a delivered notification was sent again"
    );
    assert_eq!(notifier_log_ids(&server, "hold").values().max(), Some(&2));

    // Hosts and alerts as before; the 990 that kept heartbeating were never reported down.
    let hosts = server.ctl(&["hosts"]).expect("hosts")["hosts"].clone();
    let hosts = hosts.as_array().expect("array");
    assert_eq!(hosts.len(), 1000);
    let down: Vec<&str> = hosts
        .iter()
        .filter(|h| h["state"] == "down")
        .filter_map(|h| h["name"].as_str())
        .collect();
    assert_eq!(down.len(), 10, "{down:?}");
    assert!(
        down.iter()
            .all(|h| h.starts_with("ack") || h.starts_with("hold"))
    );
    let after_alerts = server.ctl(&["alerts"]).expect("alerts")["answer"]["alerts"].clone();
    assert_eq!(before_alerts, after_alerts);
    let reported: Vec<String> = server
        .events(None, 1000)
        .into_iter()
        .map(|(_, e)| e)
        .filter(|e| e.contains(" down"))
        .collect();
    assert_eq!(reported.len(), 10, "{reported:?}");
    assert_eq!(server.counter("engine", "outbox_pending"), 5);
    drop(fleet);
}

// Acceptance 4: 100 hosts heartbeat (with RTT) and send plugin data for 20 s; after a full
// restart their sample history, RTT history and events are served by the query API.
#[test]
fn history_is_served_after_a_full_restart() {
    let mut server = Server::prepare(
        "history",
        "source_rate: 100000\nsource_burst: 100000\nsample_count: 15\n",
    );
    server.spawn(&["-f", "-v"]);
    server.wait_running(Duration::from_secs(20));
    let fleet = Fleet::start(
        server.hb_port,
        names("h", 100),
        Duration::from_secs(1),
        Some(1),
    );
    std::thread::sleep(Duration::from_secs(20));
    drop(fleet);
    // The writer commits within a batch window; give it one.
    std::thread::sleep(Duration::from_millis(500));
    stop(&mut server);
    server.spawn(&["-f", "-v"]);
    server.wait_running(Duration::from_secs(20));

    for host in ["h1", "h50", "h100"] {
        let samples = server
            .ctl(&["samples", host, "cpu_monitor", "100"])
            .expect("samples")["answer"]["samples"]
            .clone();
        let samples = samples.as_array().expect("array");
        assert_eq!(samples.len(), 15, "sample_count 15 kept for {host}");
        let cpu: Vec<u64> = samples
            .iter()
            .filter_map(|s| s["data"]["cpu_percent"].as_u64())
            .collect();
        assert!(cpu.windows(2).all(|w| w[0] > w[1]), "newest first: {cpu:?}");
        let times: Vec<u64> = samples
            .iter()
            .filter_map(|s| s["time_ms"].as_u64())
            .collect();
        assert!(times.windows(2).all(|w| w[0] >= w[1]));

        let rtt = server.ctl(&["rtt", host, "100"]).expect("rtt")["answer"]["samples"].clone();
        let rtt = rtt.as_array().expect("array");
        assert_eq!(rtt.len(), 15, "{host}");
        assert!(
            rtt.iter()
                .all(|s| s["rtt_ms"].as_f64().is_some_and(|r| r > 0.0))
        );

        let one = server.ctl(&["host", host]).expect("host")["answer"].clone();
        assert_eq!(one["host"]["name"], host);
        assert!(
            one["plugins"]["cpu_monitor"]["data"]["cpu_percent"].is_u64(),
            "{one}"
        );
    }
    let events: Vec<String> = server
        .events(None, 1000)
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    assert!(
        events.iter().any(|e| e.starts_with("h77 is new, from ")),
        "{events:?}"
    );
    let limited = server
        .ctl(&["samples", "h1", "cpu_monitor", "3"])
        .expect("samples")["answer"]["samples"]
        .clone();
    assert_eq!(limited.as_array().map(Vec::len), Some(3));
    // Bad input is a clear error, not a crash.
    assert!(
        server
            .ctl(&["samples", "nosuch", "cpu_monitor"])
            .is_some_and(|v| v["answer"]["samples"] == Value::Array(vec![]))
    );
    assert!(server.ctl(&["host", "nosuch"]).is_none());
}

// Issue 5 through the real binaries: a threshold from the configuration alerts on plugin
// data sent over UDP, the notification reaches hb-notifier, and hbctl acknowledges,
// silences and lists.
#[test]
fn threshold_alerts_reach_the_notifier_and_hbctl_handles_them() {
    let server = Server::start(
        "alerting",
        "grace: 0\nthreshold_renotify_interval: 3600\nwatchhosts: [web1]\n\
         thresholds:\n  cpu_monitor:\n    cpu_percent: {warning: 80, critical: 90}\n",
    );
    send_from(
        "127.0.0.1",
        server.hb_port,
        br#"{"ID":"HTB","name":"web1","interval":60}"#,
    );
    send_from("127.0.0.1", server.hb_port, &cpu_report("web1", 95));
    assert!(
        server.wait_log(
            "Notification: [CRITICAL] web1 cpu_monitor.cpu_percent",
            Duration::from_secs(10)
        ),
        "{}",
        server.log_text()
    );
    let alerts = server.ctl(&["alerts"]).expect("alerts")["answer"]["alerts"].clone();
    assert_eq!(alerts[0]["key"], "web1/cpu_monitor.cpu_percent");
    assert_eq!(alerts[0]["level"], "CRITICAL");
    assert_eq!(alerts[0]["notified"], true);
    // Acknowledge it; a key that is not an alert is an error.
    assert!(
        server
            .ctl(&["ack", "web1/cpu_monitor.cpu_percent"])
            .is_some()
    );
    assert!(server.ctl(&["ack", "web1/nosuch"]).is_none());
    assert!(
        server
            .messages()
            .iter()
            .any(|m| m.starts_with("web1/cpu_monitor.cpu_percent acknowledged by ")),
        "{:?}",
        server.messages()
    );
    // Recovery.
    send_from("127.0.0.1", server.hb_port, &cpu_report("web1", 10));
    assert!(server.wait_log(
        "Notification: [RECOVER] web1 cpu_monitor.cpu_percent",
        Duration::from_secs(10)
    ));
    // Silenced, the next alert is shown but not notified.
    let silence = server
        .ctl(&["silence", "web1/cpu_monitor.*", "10", "maintenance"])
        .expect("silence");
    let id = silence["answer"]["id"].as_u64().expect("id");
    send_from("127.0.0.1", server.hb_port, &cpu_report("web1", 85));
    assert!(wait_for(Duration::from_secs(5), || {
        server.ctl(&["alerts"]).expect("alerts")["answer"]["alerts"][0]["level"] == "WARNING"
    }));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!server.log_text().contains("Notification: [WARNING] web1"));
    let listed = server.ctl(&["silences"]).expect("silences");
    assert_eq!(listed["answer"]["silences"][0]["id"], id);
    // Ended early: the alert, still active, notifies.
    assert!(server.ctl(&["unsilence", &id.to_string()]).is_some());
    assert!(server.wait_log(
        "Notification: [WARNING] web1 cpu_monitor.cpu_percent",
        Duration::from_secs(5)
    ));
    // Bad input.
    assert!(server.ctl(&["silence", "web1", "0"]).is_none());
    assert!(server.ctl(&["unsilence", "12345"]).is_none());
}

// Issue 6 (delivery, first part): webhook channels through the real binaries against a
// recording server: one that answers 500 then 200 delivers once after a retry; one that
// answers 429 with Retry-After waits as asked; one that never answers fails after its bound,
// is reported, and delays none of the others; the recovery reaches the channels that got
// the alert.
#[test]
fn webhooks_are_delivered_retried_and_failures_reported() {
    let rec = Recorder::start(&[
        ("/ok", &[200]),
        ("/flaky", &[500, 200]),
        ("/limited", &[429, 200]),
        ("/dead", &[0]),
    ]);
    let url = |path: &str| format!("http://127.0.0.1:{}{path}", rec.port);
    let server = Server::start(
        "webhooks",
        &format!(
            "grace: 0\nthresholds:\n  cpu_monitor:\n    cpu_percent: {{warning: 80, critical: 90}}\n\
             hosts:\n  web1:\n    watch: true\n    notification_channels: [ok, flaky, limited, dead]\n\
             notification_channels:\n\
             \x20 ok: {{type: webhook, url: \"{}\", secret: s3cret-hook-key}}\n\
             \x20 flaky: {{type: webhook, url: \"{}\"}}\n\
             \x20 limited: {{type: webhook, url: \"{}\"}}\n\
             \x20 dead: {{type: webhook, url: \"{}\", timeout: 1, retry_for: 3}}\n",
            url("/ok"),
            url("/flaky"),
            url("/limited"),
            url("/dead")
        ),
    );
    send_from(
        "127.0.0.1",
        server.hb_port,
        br#"{"ID":"HTB","name":"web1","interval":60}"#,
    );
    let sent = Instant::now();
    send_from("127.0.0.1", server.hb_port, &cpu_report("web1", 95));
    assert!(wait_for(Duration::from_secs(10), || rec
        .requests("/limited")
        .len()
        == 2));
    let ok = rec.requests("/ok");
    assert_eq!(ok.len(), 1, "delivered once");
    let first = &ok[0];
    assert!(
        first.at.duration_since(sent) < Duration::from_secs(3),
        "not held up by the dead channel"
    );
    assert_eq!(first.method, "POST");
    assert!(
        first
            .headers
            .iter()
            .any(|(k, v)| k == "x-hb-signature" && v.starts_with("sha256="))
    );
    let body: Value = serde_json::from_str(&first.body).expect("json body");
    assert_eq!(body["alert"], "web1/cpu_monitor.cpu_percent");
    assert_eq!(body["kind"], "alert");
    assert_eq!(body["level"], "CRITICAL");
    let flaky = rec.requests("/flaky");
    assert_eq!(flaky.len(), 2, "500, then a retry");
    assert!(flaky[1].at.duration_since(flaky[0].at) >= Duration::from_millis(900));
    let limited = rec.requests("/limited");
    assert!(
        limited[1].at.duration_since(limited[0].at) >= Duration::from_millis(1900),
        "Retry-After: 2 is honoured"
    );
    // The dead channel fails after its bound, and the failure is an event.
    assert!(
        wait_for(Duration::from_secs(15), || server
            .messages()
            .iter()
            .any(|m| m.contains("failed on channel dead"))),
        "{:?}",
        server.messages()
    );
    assert!(
        !server.log_text().contains("s3cret-hook-key"),
        "a secret was logged"
    );
    // The recovery goes to the channels that delivered the alert.
    send_from("127.0.0.1", server.hb_port, &cpu_report("web1", 10));
    assert!(wait_for(Duration::from_secs(10), || rec
        .requests("/ok")
        .len()
        == 2
        && rec.requests("/flaky").len() == 3));
    let body: Value = serde_json::from_str(&rec.requests("/ok")[1].body).expect("json");
    assert_eq!(body["kind"], "recovery");
    assert_eq!(body["level"], "OK");
}

// Issue 6, acceptance 4 (the notifier's part): `kill -9` of the notifier with 50
// notifications queued for a slow channel, each also for a fast one that has delivered them
// all. Each channel's delivery is reported to the engine at once and stored, so after the
// restart only what was not delivered goes out again: the fast channel gets each exactly
// once, the slow one every one, and at most the one in flight at the kill twice (its id lets
// the receiver drop the repeat).
#[test]
fn a_killed_notifier_resends_only_what_was_not_delivered() {
    let rec = Recorder::start(&[("/fast", &[200]), ("/slow", &[1200])]);
    let hosts: Vec<String> = names("n", 50);
    let channels = format!(
        "notification_channels:\n\
         \x20 fast: {{type: webhook, url: \"http://127.0.0.1:{port}/fast\"}}\n\
         \x20 slow: {{type: webhook, url: \"http://127.0.0.1:{port}/slow\"}}\n",
        port = rec.port
    );
    let server = Server::start(
        "notifier-kill",
        &format!(
            "grace: 0\nsource_rate: 100000\nsource_burst: 100000\n\
             thresholds:\n  cpu_monitor:\n    cpu_percent: {{warning: 80, critical: 90}}\n\
             watchhosts: [{}]\nnotify: [fast, slow]\n{channels}",
            hosts.join(", ")
        ),
    );
    for h in &hosts {
        send_from("127.0.0.1", server.hb_port, &cpu_report(h, 95));
    }
    let queued = wait_for(Duration::from_secs(15), || {
        rec.requests("/slow").len() >= 10 && rec.requests("/fast").len() == 50
    });
    assert!(
        queued,
        "fast {} slow {}",
        rec.requests("/fast").len(),
        rec.requests("/slow").len()
    );
    server.kill_9("notifier");
    assert!(
        wait_for(Duration::from_secs(60), || rec.ids("/slow").len() == 50),
        "{} of 50 delivered",
        rec.ids("/slow").len()
    );
    let drained = wait_for(Duration::from_secs(10), || {
        server.counter("engine", "outbox_pending") == 0
    });
    assert!(drained, "{}", server.counters("engine"));
    let fast = rec.ids("/fast");
    assert_eq!(fast.len(), 50);
    assert!(
        fast.values().all(|n| *n == 1),
        "the fast channel got some again: {fast:?}"
    );
    let slow = rec.ids("/slow");
    let repeated: Vec<_> = slow.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.len() <= 1 && repeated.iter().all(|(_, n)| **n == 2),
        "sent again after the restart: {repeated:?}"
    );
    assert_eq!(server.child_status("notifier")["restarts"], 1);
}

// Issue 6, acceptance 5: `hbctl notify` reports success for a working channel and the error
// for a broken one.
#[test]
fn hbctl_notify_reports_each_channel() {
    let rec = Recorder::start(&[("/ok", &[200]), ("/broken", &[500])]);
    let server = Server::start(
        "hbctl-notify",
        &format!(
            "notification_channels:\n\
             \x20 good: {{type: webhook, url: \"http://127.0.0.1:{port}/ok\"}}\n\
             \x20 bad: {{type: webhook, url: \"http://127.0.0.1:{port}/broken\"}}\n",
            port = rec.port
        ),
    );
    let hbctl = |args: &[&str]| {
        let out = std::process::Command::new(bin("hbctl"))
            .arg("-s")
            .arg(server.socket())
            .args(args)
            .output()
            .expect("hbctl");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, _) = hbctl(&["notify", "good"]);
    assert_eq!((code, stdout.trim()), (Some(0), "good: delivered"));
    let body: Value = serde_json::from_str(&rec.requests("/ok")[0].body).expect("json");
    assert_eq!(body["kind"], "test");
    let (code, _, stderr) = hbctl(&["notify", "bad"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("bad: failed: HTTP 500"), "{stderr}");
    let (code, _, stderr) = hbctl(&["notify"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("good: delivered") && stderr.contains("bad: failed"),
        "{stderr}"
    );
    let (code, _, stderr) = hbctl(&["notify", "nosuch"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no channel \"nosuch\""), "{stderr}");
}

/// A real SMTP server (aiosmtpd) on loopback, storing mail in a maildir; killed when dropped.
struct SmtpServer {
    child: std::process::Child,
    port: u16,
    maildir: std::path::PathBuf,
}

impl SmtpServer {
    fn start(dir: &std::path::Path) -> SmtpServer {
        // Debian's python3 (the package python3-aiosmtpd), whatever else is on PATH.
        let ok = std::process::Command::new("/usr/bin/python3")
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "aiosmtpd is missing: install the Debian package python3-aiosmtpd (the README's test command does)"
        );
        let port = free_ports().0;
        let maildir = dir.join("maildir");
        let child = std::process::Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("aiosmtpd");
        assert!(
            wait_for(Duration::from_secs(10), || std::net::TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "aiosmtpd did not start"
        );
        SmtpServer {
            child,
            port,
            maildir,
        }
    }

    /// The messages received, oldest first.
    fn mail(&self) -> Vec<String> {
        let mut files: Vec<_> = std::fs::read_dir(self.maildir.join("new"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// Issue 6, acceptance 1 for email: an alert and its recovery reach a real SMTP server as one
// message each to every recipient, with a plain text and an HTML part.
#[test]
fn email_reaches_a_real_smtp_server() {
    let dir = scratch("smtp");
    let smtp = SmtpServer::start(&dir);
    let server = Server::start(
        "email",
        &format!(
            "grace: 0\nthresholds:\n  cpu_monitor:\n    cpu_percent: {{warning: 80, critical: 90}}\n\
             watchhosts: [web1]\nnotify: [mail]\nbase_url: https://hb.example.net\n\
             notification_channels:\n  mail:\n    type: email\n    smtp_server: 127.0.0.1\n\
             \x20   smtp_port: {}\n    security: none\n    sender: hb@example.net\n\
             \x20   recipients: [ops@example.net, oncall@example.net]\n",
            smtp.port
        ),
    );
    send_from("127.0.0.1", server.hb_port, &cpu_report("web1", 95));
    assert!(
        wait_for(Duration::from_secs(15), || smtp.mail().len() == 1),
        "{}",
        server.log_text()
    );
    let mail = &smtp.mail()[0];
    assert!(
        mail.contains("Subject: [CRITICAL] web1 cpu_monitor.cpu_percent"),
        "{mail}"
    );
    assert!(mail.contains("From: hb@example.net"), "{mail}");
    assert!(
        mail.contains("ops@example.net") && mail.contains("oncall@example.net"),
        "{mail}"
    );
    assert!(mail.contains("multipart/alternative"), "{mail}");
    assert!(
        mail.contains("text/plain") && mail.contains("text/html"),
        "{mail}"
    );
    assert!(
        mail.contains("https://hb.example.net/plugins/web1"),
        "{mail}"
    );
    send_from("127.0.0.1", server.hb_port, &cpu_report("web1", 10));
    assert!(wait_for(Duration::from_secs(15), || smtp.mail().len() == 2));
    assert!(smtp.mail()[1].contains("Subject: [RECOVER] web1 cpu_monitor.cpu_percent"));
}

// Issue 6, acceptance 4 (the engine's part): `kill -9` of the engine while the notifier
// works through 50 notifications. The restarted engine hands every one not reported done
// over again; the notifier recognises their ids, so each channel gets each exactly once.
#[test]
fn a_killed_engine_does_not_make_the_notifier_send_twice() {
    let rec = Recorder::start(&[("/fast", &[200]), ("/slow", &[1200])]);
    let hosts: Vec<String> = names("e", 50);
    let server = Server::start(
        "engine-kill-notify",
        &format!(
            "grace: 0\nsource_rate: 100000\nsource_burst: 100000\n\
             thresholds:\n  cpu_monitor:\n    cpu_percent: {{warning: 80, critical: 90}}\n\
             watchhosts: [{}]\nnotify: [fast, slow]\n\
             notification_channels:\n\
             \x20 fast: {{type: webhook, url: \"http://127.0.0.1:{port}/fast\"}}\n\
             \x20 slow: {{type: webhook, url: \"http://127.0.0.1:{port}/slow\"}}\n",
            hosts.join(", "),
            port = rec.port
        ),
    );
    for h in &hosts {
        send_from("127.0.0.1", server.hb_port, &cpu_report(h, 95));
    }
    assert!(wait_for(Duration::from_secs(15), || rec
        .requests("/slow")
        .len()
        >= 10));
    server.kill_9("engine");
    assert!(
        wait_for(Duration::from_secs(60), || rec.ids("/slow").len() == 50),
        "{} of 50",
        rec.ids("/slow").len()
    );
    let drained = wait_for(Duration::from_secs(15), || {
        server.counter("engine", "outbox_pending") == 0
    });
    assert!(drained, "{}", server.counters("engine"));
    for path in ["/fast", "/slow"] {
        let ids = rec.ids(path);
        assert_eq!(ids.len(), 50, "{path}");
        assert!(
            ids.values().all(|n| *n == 1),
            "{path} got some twice: {ids:?}"
        );
    }
    assert!(
        server
            .log_text()
            .contains("Handing undelivered notifications to the notifier again."),
        "the restarted engine handed nothing over again"
    );
}

// Issue 6, acceptance 2: owner and managers receive through their own channels, monitors do
// not, min_level filters, and the recovery reaches a channel that got the alert although it
// is below that channel's min_level.
#[test]
fn notifications_are_routed_to_owner_and_managers() {
    let rec = Recorder::start(&[("/alice", &[200]), ("/bob", &[200]), ("/carol", &[200])]);
    let server = Server::start(
        "routing",
        &format!(
            "grace: 0\nthresholds:\n  cpu_monitor:\n    cpu_percent: {{warning: 80, critical: 90}}\n\
             users:\n  alice: {{admin: true, notification_channels: [a]}}\n\
             \x20 bob: {{notification_channels: [b]}}\n  carol: {{notification_channels: [c]}}\n\
             hosts:\n  web1: {{watch: true, owner: alice, managers: [bob], monitors: [carol]}}\n\
             notification_channels:\n\
             \x20 a: {{type: webhook, url: \"http://127.0.0.1:{port}/alice\"}}\n\
             \x20 b: {{type: webhook, url: \"http://127.0.0.1:{port}/bob\", min_level: CRITICAL}}\n\
             \x20 c: {{type: webhook, url: \"http://127.0.0.1:{port}/carol\"}}\n",
            port = rec.port
        ),
    );
    let kinds = |path: &str| -> Vec<String> {
        rec.requests(path)
            .iter()
            .map(|r| {
                let b: Value = serde_json::from_str(&r.body).expect("json");
                format!(
                    "{} {}",
                    b["kind"].as_str().unwrap_or(""),
                    b["level"].as_str().unwrap_or("")
                )
            })
            .collect()
    };
    // WARNING: alice only (bob's channel wants CRITICAL, carol is a monitor).
    send_from("127.0.0.1", server.hb_port, &cpu_report("web1", 85));
    assert!(wait_for(Duration::from_secs(10), || kinds("/alice").len() == 1));
    // CRITICAL: both.
    send_from("127.0.0.1", server.hb_port, &cpu_report("web1", 95));
    assert!(wait_for(Duration::from_secs(10), || kinds("/bob").len() == 1));
    // The recovery reaches bob too, below his min_level, because he got the alert.
    send_from("127.0.0.1", server.hb_port, &cpu_report("web1", 10));
    assert!(wait_for(Duration::from_secs(10), || kinds("/bob").len() == 2));
    assert!(wait_for(Duration::from_secs(5), || kinds("/alice").len() == 3));
    assert_eq!(
        kinds("/alice"),
        ["alert WARNING", "alert CRITICAL", "recovery OK"]
    );
    assert_eq!(kinds("/bob"), ["alert CRITICAL", "recovery OK"]);
    assert!(kinds("/carol").is_empty(), "monitors get nothing");
}

// Issue 6, acceptance 6: no secret from the configuration appears in any log line at -vvv,
// in hbctl's answers or in the API, while every kind of channel is used (and some fail).
#[test]
fn secrets_never_leave_the_notifier() {
    let rec = Recorder::start(&[("/ok?key=SECRET-hook-key", &[200])]);
    let base = format!("http://127.0.0.1:{}", rec.port);
    let mut server = Server::prepare(
        "secrets",
        &format!(
            "grace: 0\nhb_key: SECRET-hb-key-0123456789\n\
             thresholds:\n  cpu_monitor:\n    cpu_percent: {{warning: 80, critical: 90}}\n\
             watchhosts: [web1]\nnotify: [po, hook, slack, mx, nt, tw, vm, mail]\n\
             accept_unsigned: true\n\
             notification_channels:\n\
             \x20 po: {{type: pushover, base_url: \"{base}\", token: SECRET-po-token, user: SECRET-po-user}}\n\
             \x20 hook: {{type: webhook, url: \"{base}/ok?key=SECRET-hook-key\", secret: SECRET-hmac}}\n\
             \x20 slack: {{type: slack, url: \"{base}/SECRET-slack-path\"}}\n\
             \x20 mx: {{type: matrix, homeserver: \"{base}\", access_token: SECRET-mx-token, room_id: \"!r:x\"}}\n\
             \x20 nt: {{type: ntfy, base_url: \"{base}\", topic: t, token: SECRET-ntfy}}\n\
             \x20 tw: {{type: twilio, base_url: \"{base}\", account_sid: AC1, auth_token: SECRET-twilio, from: \"+1\", to: \"+2\"}}\n\
             \x20 vm: {{type: sms_voipms, base_url: \"{base}/v\", api_user: u, api_password: SECRET-voipms, did: \"1\", dst: \"2\"}}\n\
             \x20 mail: {{type: email, smtp_server: 127.0.0.1, smtp_port: 9, security: none, smtp_user: u, smtp_password: SECRET-smtp, sender: a@example.net, recipients: b@example.net, retry_for: 2}}\n"
        ),
    );
    server.spawn(&["-f", "-vvv"]);
    server.wait_running(Duration::from_secs(20));
    send_from(
        "127.0.0.1",
        server.hb_port,
        br#"{"ID":"PLG","name":"web1","plugin":"cpu_monitor","data":{"cpu_percent":95}}"#,
    );
    assert!(wait_for(Duration::from_secs(20), || server
        .messages()
        .iter()
        .any(|m| m.contains("failed on channel mail"))));
    assert_eq!(
        rec.requests("/ok?key=SECRET-hook-key").len(),
        1,
        "the hook delivered"
    );
    let mut seen = server.log_text();
    for args in [
        &["status"][..],
        &["messages"],
        &["alerts"],
        &["hosts"],
        &["host", "web1"],
        &["counters", "notifier"],
        &["counters", "engine"],
        &["counters", "receiver"],
        &["notify"],
    ] {
        let out = std::process::Command::new(bin("hbctl"))
            .arg("-s")
            .arg(server.socket())
            .arg("-j")
            .args(args)
            .output()
            .expect("hbctl");
        seen.push_str(&String::from_utf8_lossy(&out.stdout));
        seen.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    for path in ["/api/0/hosts", "/api/0/messages"] {
        if let Some((_, body)) = http_get(server.http_port, path) {
            seen.push_str(&body);
        }
    }
    assert!(
        seen.contains("Notification: [CRITICAL] web1"),
        "the test saw nothing"
    );
    assert!(
        !seen.contains("SECRET"),
        "a secret leaked: {}",
        seen.lines()
            .filter(|l| l.contains("SECRET"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

// Issue 6: the exec channel and the original's signal-cli form run their programs without a
// shell, with the notification in the environment, on stdin and in the arguments.
#[test]
fn exec_and_signal_cli_channels_run_their_programs() {
    require_tool("curl", "curl");
    let rec = Recorder::start(&[("/exec", &[200]), ("/signal", &[200])]);
    let dir = scratch("exec-channel");
    // The notifier may write nowhere (Landlock): the programs report over HTTP.
    let page = dir.join("page");
    std::fs::write(
        &page,
        format!(
            "#!/bin/sh\nexec curl -s -o /dev/null -H \"X-Level: $HB_LEVEL\" -H \"X-Host: $HB_HOST\" --data-binary @- http://127.0.0.1:{}/exec\n",
            rec.port
        ),
    )
    .expect("script");
    let signal = dir.join("signal-cli");
    std::fs::write(
        &signal,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" | exec curl -s -o /dev/null --data-binary @- http://127.0.0.1:{}/signal\n",
            rec.port
        ),
    )
    .expect("script");
    use std::os::unix::fs::PermissionsExt;
    for p in [&dir, &page, &signal] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let server = Server::start(
        "exec",
        &format!(
            "grace: 0\nthresholds:\n  cpu_monitor:\n    cpu_percent: {{warning: 80, critical: 90}}\n\
             watchhosts: [web1]\nnotify: [pager, sig]\n\
             notification_channels:\n\
             \x20 pager: {{type: exec, command: [\"{}\"]}}\n\
             \x20 sig: {{type: signal, cli_path: \"{}\", user: \"+15550100\", recipient: \"+15550101\"}}\n",
            page.display(),
            signal.display()
        ),
    );
    send_from(
        "127.0.0.1",
        server.hb_port,
        br#"{"ID":"PLG","name":"web1","plugin":"cpu_monitor","data":{"cpu_percent":95}}"#,
    );
    assert!(
        wait_for(Duration::from_secs(10), || rec.requests("/exec").len() == 1
            && rec.requests("/signal").len() == 1),
        "{}",
        server.log_text()
    );
    let exec = &rec.requests("/exec")[0];
    assert!(
        exec.headers
            .contains(&("x-level".into(), "CRITICAL".into()))
    );
    assert!(exec.headers.contains(&("x-host".into(), "web1".into())));
    let stdin: Value = serde_json::from_str(&exec.body).expect("JSON on stdin");
    assert_eq!(stdin["alert"], "web1/cpu_monitor.cpu_percent");
    let body = rec.requests("/signal")[0].body.clone();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(
        &lines[..5],
        [
            "-a",
            "+15550100",
            "send",
            "-m",
            "[CRITICAL] web1 cpu_monitor.cpu_percent"
        ]
    );
    assert_eq!(lines.last(), Some(&"+15550101"));
    // The recovery goes the same ways.
    send_from(
        "127.0.0.1",
        server.hb_port,
        br#"{"ID":"PLG","name":"web1","plugin":"cpu_monitor","data":{"cpu_percent":10}}"#,
    );
    assert!(wait_for(Duration::from_secs(10), || rec
        .requests("/exec")
        .len()
        == 2
        && rec.requests("/signal").len() == 2));
    let recovery = &rec.requests("/exec")[1];
    assert!(
        recovery.headers.contains(&("x-level".into(), "OK".into())),
        "{:?}",
        recovery.headers
    );
    assert!(rec.requests("/signal")[1].body.contains("[RECOVER] web1"));
}

// Issue 6, acceptance 1 for the HTTP services: one alert and one recovery each, with the
// method, path, headers and body their APIs document.
#[test]
fn every_http_channel_sends_what_its_service_documents() {
    let rec = Recorder::start(&[
        ("/slack", &[200]),
        ("/discord", &[204]),
        ("/hooks/mm-token", &[200]),
        ("/ntfy-topic", &[200]),
        ("/1/messages.json", &[200]),
        ("/v2/send", &[201]),
        ("/2010-04-01/Accounts/AC1/Messages.json", &[201]),
        // Matrix and voip.ms put the variable part in the path.
        ("*", &[200]),
    ]);
    let base = format!("http://127.0.0.1:{}", rec.port);
    let server = Server::start(
        "http-channels",
        &format!(
            "grace: 0\nthresholds:\n  cpu_monitor:\n    cpu_percent: {{warning: 80, critical: 90}}\n\
             watchhosts: [web1]\nnotify: [slack, discord, mm, ntfy, po, mx, sig, tw, vm]\n\
             notification_channels:\n\
             \x20 slack: {{type: slack, url: \"{base}/slack\"}}\n\
             \x20 discord: {{type: discord, url: \"{base}/discord\"}}\n\
             \x20 mm: {{type: mattermost, host: \"{base}\", token: mm-token, channel: ops, username: hb}}\n\
             \x20 ntfy: {{type: ntfy, base_url: \"{base}\", topic: ntfy-topic, token: nt}}\n\
             \x20 po: {{type: pushover, base_url: \"{base}\", token: app, user: usr}}\n\
             \x20 mx: {{type: matrix, homeserver: \"{base}\", access_token: mxt, room_id: \"!r:example.org\"}}\n\
             \x20 sig: {{type: signal, url: \"{base}\", number: \"+15550100\", recipients: [\"+15550101\"]}}\n\
             \x20 tw: {{type: twilio, base_url: \"{base}\", account_sid: AC1, auth_token: tok, from: \"+15550100\", to: \"+15550101\"}}\n\
             \x20 vm: {{type: sms_voipms, base_url: \"{base}/voip\", api_user: u, api_password: p, did: \"1\", dst: \"2\"}}\n"
        ),
    );
    let all = |n: usize| {
        let seen = rec.seen.lock().expect("seen").len();
        seen >= 9 * n
    };
    send_from("127.0.0.1", server.hb_port, &cpu_report("web1", 95));
    assert!(
        wait_for(Duration::from_secs(15), || all(1)),
        "{}",
        server.log_text()
    );
    send_from("127.0.0.1", server.hb_port, &cpu_report("web1", 10));
    assert!(
        wait_for(Duration::from_secs(15), || all(2)),
        "{}",
        server.log_text()
    );
    let one = |path: &str, n: usize| {
        let r = rec.requests(path);
        assert_eq!(r.len(), 2, "{path}: alert and recovery");
        r[n].clone()
    };
    let json = |r: &Recorded| serde_json::from_str::<Value>(&r.body).expect("json");
    let has = |r: &Recorded, k: &str, v: &str| r.headers.iter().any(|(hk, hv)| hk == k && hv == v);

    let r = one("/slack", 0);
    assert_eq!(r.method, "POST");
    assert!(has(&r, "content-type", "application/json"));
    assert!(
        json(&r)["text"]
            .as_str()
            .unwrap_or("")
            .starts_with("*[CRITICAL] web1 cpu_monitor.cpu_percent*")
    );
    assert!(
        json(&one("/slack", 1))["text"]
            .as_str()
            .unwrap_or("")
            .starts_with("*[RECOVER]")
    );
    assert!(
        json(&one("/discord", 0))["content"]
            .as_str()
            .unwrap_or("")
            .starts_with("**[CRITICAL]")
    );
    let r = one("/hooks/mm-token", 0);
    assert_eq!(
        (json(&r)["channel"].as_str(), json(&r)["username"].as_str()),
        (Some("ops"), Some("hb"))
    );
    let r = one("/ntfy-topic", 0);
    assert!(has(&r, "title", "[CRITICAL] web1 cpu_monitor.cpu_percent"));
    assert!(has(&r, "priority", "5") && has(&r, "authorization", "Bearer nt"));
    assert!(has(&one("/ntfy-topic", 1), "priority", "3"));
    let r = one("/1/messages.json", 0);
    assert!(has(&r, "content-type", "application/x-www-form-urlencoded"));
    assert!(
        r.body
            .starts_with("token=app&user=usr&title=%5BCRITICAL%5D"),
        "{}",
        r.body
    );
    assert!(r.body.contains("&priority=1"));
    assert!(one("/1/messages.json", 1).body.contains("&priority=-1"));
    let mx: Vec<Recorded> = rec
        .seen
        .lock()
        .expect("seen")
        .iter()
        .filter(|r| {
            r.path
                .starts_with("/_matrix/client/v3/rooms/%21r%3Aexample.org/send/m.room.message/hb-")
        })
        .cloned()
        .collect();
    assert_eq!(mx.len(), 2);
    assert_eq!(mx[0].method, "PUT");
    assert!(has(&mx[0], "authorization", "Bearer mxt"));
    assert_eq!(json(&mx[0])["msgtype"], "m.text");
    let r = one("/v2/send", 0);
    assert_eq!(json(&r)["number"], "+15550100");
    assert_eq!(json(&r)["recipients"], serde_json::json!(["+15550101"]));
    let r = one("/2010-04-01/Accounts/AC1/Messages.json", 0);
    assert!(
        r.headers
            .iter()
            .any(|(k, v)| k == "authorization" && v.starts_with("Basic "))
    );
    assert!(
        r.body.starts_with("From=%2B15550100&To=%2B15550101&Body="),
        "{}",
        r.body
    );
    let vm: Vec<Recorded> = rec
        .seen
        .lock()
        .expect("seen")
        .iter()
        .filter(|r| r.path.starts_with("/voip?"))
        .cloned()
        .collect();
    assert_eq!(vm.len(), 2);
    assert_eq!(vm[0].method, "GET");
    assert!(
        vm[0].path.contains("method=sendSMS&did=1&dst=2&message="),
        "{}",
        vm[0].path
    );
}
