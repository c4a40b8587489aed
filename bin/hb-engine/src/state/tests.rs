use super::*;
use hb_ipc::config::CheckFile;
use hb_ipc::config::{HostConfig, JournalConfig};
use hb_ipc::edge::{Query, ReceiverToEngine};

const S: u64 = 1000;

pub(crate) fn config() -> EngineConfig {
    EngineConfig {
        interval: 10,
        grace: 2.0,
        max_missed: 2,
        startup_grace: None,
        sample_count: 100,
        event_retention: 1000,
        flap_detection: true,
        flap_high: 30.0,
        flap_low: 25.0,
        maintenance: serde_json::Value::Null,
        storm_detection: true,
        storm_fraction: 0.1,
        storm_min_hosts: 5,
        storm_window: 10.0,
        state_dir: "/nonexistent".into(),
        journal: JournalConfig {
            enabled: false,
            dir: "/nonexistent".into(),
            file: "j".into(),
            max_size: 1,
            max_backups: 1,
        },
        hosts: BTreeMap::from([(
            "web1".to_string(),
            HostConfig {
                watch: Some(true),
                owner: Some("alice".into()),
                managers: vec!["bob".into()],
                notification_channels: vec!["ops".into()],
                ..HostConfig::default()
            },
        )]),
        watchhosts: vec!["db1".into()],
        dyndnshosts: vec![],
        dyndomains: vec![],
        drophosts: vec!["old".into()],
        default_owner: None,
        threshold_renotify_interval: None,
        thresholds: serde_json::Value::Null,
        threshold_configs: serde_json::Value::Null,
        default_threshold_config: "default".into(),
        checks: BTreeMap::new(),
        ping_retention: 100,
        max_hosts: hb_ipc::config::DEFAULT_MAX_HOSTS,
    }
}

fn heartbeat(state: &mut State, host: &str, at: u64) {
    state.received(ReceiverToEngine::Received {
        host: host.into(),
        source: "192.0.2.1:4000".parse().unwrap(),
        received_ms: at,
        signed: false,
        message: serde_json::json!({"ID": "HTB", "name": host, "interval": 10}).into(),
    });
}

#[test]
fn a_channel_edit_keeps_the_secrets_it_leaves_out() {
    use serde_json::json;
    let mut s = state();
    let put = |s: &mut State, def: Option<serde_json::Value>| match s.query(
        Query::PutChannel {
            name: "hook".into(),
            definition: def,
        },
        S,
    ) {
        Reply::Now(a) => a,
        Reply::Store(_) => panic!("not a read"),
    };
    let stored = |s: &State| s.api_channels().get("hook").cloned();
    let made = put(
        &mut s,
        Some(json!({"type": "webhook", "url": "https://h/1", "secret": "k1"})),
    );
    assert!(matches!(made, Answer::Done { .. }), "{made:?}");
    assert!(s.routing_changed, "the notifier is told");
    // Left out: kept; shown to the web without them.
    put(
        &mut s,
        Some(json!({"type": "webhook", "min_level": "CRITICAL"})),
    );
    assert_eq!(
        stored(&s),
        Some(
            json!({"type": "webhook", "url": "https://h/1", "secret": "k1", "min_level": "CRITICAL"})
        )
    );
    let Reply::Now(Answer::Settings { values }) = s.query(Query::Channels {}, S) else {
        panic!()
    };
    assert!(!values["hook"].to_string().contains("k1"));
    let Reply::Now(Answer::Error { .. }) = s.query(
        Query::Settings {
            kind: "channel".into(),
        },
        S,
    ) else {
        panic!("secrets handed out")
    };
    // Given as null: removed.
    put(&mut s, Some(json!({"type": "webhook", "secret": null})));
    assert_eq!(
        stored(&s),
        Some(json!({"type": "webhook", "url": "https://h/1"}))
    );
    // Another type keeps nothing: slack needs its own url.
    let refused = put(&mut s, Some(json!({"type": "slack"})));
    assert!(
        matches!(&refused, Answer::Error { message } if message.starts_with("url:")),
        "{refused:?}"
    );
    let refused = put(
        &mut s,
        Some(json!({"type": "exec", "command": ["/bin/true"]})),
    );
    assert!(
        matches!(refused, Answer::Error { .. }),
        "the API runs no programs"
    );
    assert!(matches!(put(&mut s, None), Answer::Done { .. }));
    assert!(matches!(put(&mut s, None), Answer::Error { .. }), "gone");
    assert!(stored(&s).is_none());
}

fn state() -> State {
    let mut s = State::new(0);
    s.configure(config(), 0).unwrap();
    s
}

fn run(s: &mut State, from: u64, to: u64) {
    let mut now = from;
    while now <= to {
        s.tick(now);
        now += 100;
    }
}

// The engine 20 s behind: each heartbeat is processed 20 s after it arrived, long past
// its host's deadline by the wall clock, which is checked every 100 ms in between. Only
// the host that really stopped is found down, as soon as what was heard passes its
// deadline (web1, watched); judged by the wall clock, every host went overdue and down.
#[test]
fn a_backlog_of_heartbeats_older_than_their_deadlines_makes_nobody_late() {
    let mut s = state();
    for host in ["web1", "web2", "web3"] {
        heartbeat(&mut s, host, 0);
    }
    const BEHIND: u64 = 20 * S;
    let mut wall = BEHIND;
    let mut web1_down_at = None;
    for stamp in (1..=6).map(|i| i * 10 * S) {
        while wall < stamp + BEHIND {
            s.tick_heard(wall);
            for host in ["web3", "web2"] {
                assert_eq!(s.summary(host).unwrap().state, "up", "{host} at {wall}");
            }
            if s.summary("web1").unwrap().state == "down" {
                web1_down_at.get_or_insert(wall);
            }
            wall += 100;
        }
        heartbeat(&mut s, "web3", stamp);
        heartbeat(&mut s, "web2", stamp);
    }
    // Down at 22 s; what was heard passed it when the heartbeats of 30 s were read.
    assert_eq!(web1_down_at, Some(30 * S + BEHIND));
    // The last tick: 79.9 s by the wall clock, heard up to the heartbeats of 50 s.
    assert_eq!(s.counters["behind_ms"], 29_900);
    // The rest of the backlog is read, and the receiver finds its socket empty.
    heartbeat(&mut s, "web3", 70 * S);
    heartbeat(&mut s, "web2", 70 * S);
    s.received(ReceiverToEngine::Drained { up_to_ms: wall });
    s.tick_heard(wall);
    assert_eq!(s.counters["behind_ms"], 0);
    let paged: Vec<&str> = s.ready.iter().map(|n| n.alert.as_str()).collect();
    assert_eq!(paged, ["web1/down"]);
    assert_eq!(s.ready[0].created_ms, 30 * S, "judged at what was heard");
    for host in ["web3", "web2"] {
        assert_eq!(s.summary(host).unwrap().state, "up");
        assert!(
            !s.events
                .iter()
                .any(|e| e.host == host && e.text.contains("down")),
            "{host} was late"
        );
    }
}

// The kernel dropped datagrams (the server was behind): web1's silence may be the
// server's doing, so it is down only after a whole down period (22 s) without losses.
#[test]
fn the_servers_own_losses_hold_down_and_are_told_once_a_minute() {
    let mut s = state();
    heartbeat(&mut s, "web1", 0);
    s.received(ReceiverToEngine::Lost {
        count: 7,
        at_ms: 15 * S,
    });
    s.received(ReceiverToEngine::Lost {
        count: 3,
        at_ms: 16 * S,
    });
    run(&mut s, 0, 37_900);
    assert!(
        s.ready.is_empty(),
        "down at 22 s, though the server lost datagrams"
    );
    assert_eq!(s.summary("web1").unwrap().state, "overdue");
    run(&mut s, 38_000, 38_000);
    assert_eq!(s.ready.len(), 1);
    assert_eq!(s.ready[0].alert, "web1/down");
    assert_eq!(s.counters["server_dropped"], 10);
    let told: Vec<&str> = s
        .events
        .iter()
        .filter(|e| e.host == "*")
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0].starts_with("the server dropped 7 datagrams"),
        "{told:?}"
    );
    // A time ahead of the clock is taken as now.
    s.received(ReceiverToEngine::Lost {
        count: 1,
        at_ms: u64::MAX,
    });
    assert!(s.events.back().unwrap().at_ms <= hb_ipc::now_ms());
}

#[test]
fn a_watched_host_pages_once_and_recovers_to_the_same_alert() {
    let mut s = state();
    heartbeat(&mut s, "web1", 0);
    run(&mut s, 0, 60 * S);
    assert_eq!(s.ready.len(), 1, "one down notification");
    let down = s.ready[0].clone();
    assert_eq!(down.alert, "web1/down");
    assert_eq!(down.title, "[CRITICAL] web1 down");
    assert_eq!(down.created_ms, 22 * S, "down at 2 * interval + grace");
    assert_eq!(down.users, ["alice", "bob"]);
    assert_eq!(down.channels, ["ops"]);
    heartbeat(&mut s, "web1", 70 * S);
    assert_eq!(s.ready.len(), 2);
    let up = &s.ready[1];
    assert_eq!(
        (up.alert.as_str(), up.kind.as_str()),
        ("web1/down", "recovery")
    );
    assert!(up.id > down.id);
    assert_eq!(
        s.pending_notifications(71 * S).len(),
        2,
        "both wait for the notifier"
    );
    s.notification_done(down.id, vec!["ops".into()], vec![], 71 * S);
    assert_eq!(s.pending_notifications(71 * S).len(), 1);
}

#[test]
fn unwatched_hosts_notify_nobody_but_are_shown() {
    let mut s = state();
    heartbeat(&mut s, "quiet", 0);
    heartbeat(&mut s, "db1", 0);
    run(&mut s, 0, 60 * S);
    let hosts: Vec<_> = s.ready.iter().map(|n| n.host.as_str()).collect();
    assert_eq!(
        hosts,
        ["db1"],
        "watchhosts counts as watched; others notify nobody"
    );
    let Reply::Now(Answer::Alerts { alerts }) = s.query(Query::Alerts {}, 60 * S) else {
        panic!()
    };
    assert_eq!(alerts.len(), 2, "the unwatched host's alert is still shown");
    assert!(alerts.iter().any(|a| a.host == "quiet" && !a.notified));
}

#[test]
fn drophosts_are_ignored_and_dropping_forgets() {
    let mut s = state();
    heartbeat(&mut s, "old", 0);
    assert!(s.summary("old").is_none());
    assert_eq!(s.counters.get("dropped_host"), Some(&1));
    heartbeat(&mut s, "web1", 0);
    let Reply::Now(Answer::Dropped { .. }) = s.query(
        Query::DropHost {
            host: "web1".into(),
        },
        S,
    ) else {
        panic!()
    };
    run(&mut s, 0, 60 * S);
    assert!(s.ready.is_empty(), "a dropped host is not reported down");
    // Listing it in drophosts on a reload drops a known host too.
    heartbeat(&mut s, "web2", 0);
    let mut c = config();
    c.drophosts.push("web2".into());
    s.configure(c, S).unwrap();
    assert!(s.summary("web2").is_none());
}

#[test]
fn shutdown_then_silence_notifies_nobody() {
    let mut s = state();
    heartbeat(&mut s, "web1", 0);
    s.received(ReceiverToEngine::Received {
        host: "web1".into(),
        source: "192.0.2.1:4000".parse().unwrap(),
        received_ms: S,
        signed: false,
        message: serde_json::json!({"ID": "SHD", "name": "web1", "seq": 1}).into(),
    });
    run(&mut s, 0, 600 * S);
    assert!(s.ready.is_empty());
    assert_eq!(s.summary("web1").unwrap().state, "shutdown");
}

#[test]
fn rejections_are_events_at_most_once_a_minute_per_source_and_reason() {
    let mut s = state();
    let reject = |s: &mut State, from: &str, at: u64, reason: &str| {
        s.received(ReceiverToEngine::Rejected {
            source: from.parse().unwrap(),
            received_ms: at,
            reason: reason.into(),
            detail: "x".repeat(500),
        });
    };
    for i in 0..1000 {
        reject(&mut s, "192.0.2.9:1", i, "bad_signature");
    }
    reject(&mut s, "192.0.2.9:1", 10, "too_large");
    reject(&mut s, "192.0.2.9:1", 61_000, "bad_signature");
    let texts: Vec<&str> = s.events.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert!(texts[0].starts_with("datagram from 192.0.2.9:1 rejected (bad_signature): xxx"));
    assert!(texts[0].len() < 300, "detail is cut");
    assert!(
        texts[2].ends_with("(999 more since the last report)"),
        "{}",
        texts[2]
    );
    assert_eq!(s.counters["rejected_bad_signature"], 1001);
    // A flood from many addresses is counted, and cannot grow the table without bound.
    for i in 0..5000u32 {
        let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
        reject(&mut s, &format!("{ip}:1"), 62_000, "bad_json");
    }
    assert!(s.intake.tracked_sources() <= intake::REJECTION_SOURCES);
    assert!(s.counters["rejection_events_suppressed"] > 3000);
    let flood_events = s
        .events
        .iter()
        .filter(|e| e.text.contains("bad_json"))
        .count();
    // The minute began with the last bad_signature report: 9 more fit in it.
    assert_eq!(
        flood_events, 9,
        "at most 10 rejection events a minute in all"
    );
}

fn message(state: &mut State, host: &str, at: u64, msg: serde_json::Value) {
    state.received(ReceiverToEngine::Received {
        host: host.into(),
        source: "192.0.2.1:4000".parse().unwrap(),
        received_ms: at,
        signed: false,
        message: msg.into(),
    });
}

#[test]
fn a_down_host_that_shuts_down_recovers_and_its_alert_ends() {
    let mut s = state();
    heartbeat(&mut s, "web1", 0);
    run(&mut s, 0, 30 * S);
    message(
        &mut s,
        "web1",
        40 * S,
        serde_json::json!({"ID": "SHD", "name": "web1", "seq": 7}),
    );
    let kinds: Vec<&str> = s.ready.iter().map(|n| n.kind.as_str()).collect();
    assert_eq!(kinds, ["alert", "recovery"]);
    assert!(s.alerting.alerts.is_empty());
}

#[test]
fn dropping_a_paged_host_closes_its_alert() {
    let mut s = state();
    heartbeat(&mut s, "web1", 0);
    run(&mut s, 0, 30 * S);
    s.query(
        Query::DropHost {
            host: "web1".into(),
        },
        31 * S,
    );
    let last = s.ready.last().unwrap();
    assert_eq!(last.title, "[RECOVER] web1 down: closed");
    assert!(last.text.contains("dropped"), "{}", last.text);
    assert_eq!(last.alert, "web1/down");
    assert!(s.alerting.alerts.is_empty());
    assert!(matches!(
        s.to_receiver.last(),
        Some(EngineToReceiver::Forget { .. })
    ));
}

#[test]
fn restore_skips_dropped_hosts_and_orphan_alerts() {
    let mut s = state();
    let host = |name: &str, state: &str| store::StoredHost {
        name: name.into(),
        last_seen_ms: 0,
        address: "192.0.2.1:1".into(),
        interval: Some(10),
        version: None,
        rtt_ms: None,
        signed: false,
        state: state.into(),
        state_since_ms: 0,
    };
    let alert = |host: &str| store::StoredAlert {
        key: format!("{host}/down"),
        host: host.into(),
        metric: "down".into(),
        level: "CRITICAL".into(),
        since_ms: 0,
        opened_ms: 0,
        text: String::new(),
        notified: true,
        last_notified_ms: 0,
        acknowledged: None,
        alerted: String::new(),
    };
    s.restore(
        store::Loaded {
            hosts: vec![host("old", "down"), host("web1", "down")],
            alerts: vec![alert("old"), alert("web1"), alert("vanished")],
            ..store::Loaded::default()
        },
        100 * S,
    );
    assert!(s.summary("old").is_none(), "in drophosts");
    let keys: Vec<&String> = s.alerting.alerts.iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["web1/down"]);
    // The restored down host recovers to whoever was paged.
    heartbeat(&mut s, "web1", 101 * S);
    assert_eq!(s.ready.last().map(|n| n.kind.as_str()), Some("recovery"));
}

#[test]
fn hostile_values_from_peers_stay_bounded() {
    let mut s = state();
    // Commands only for hosts that exist.
    let Reply::Now(Answer::Error { message: refusal }) = s.query(
        Query::QueueCommand {
            host: "nobody".into(),
            command: None,
        },
        0,
    ) else {
        panic!()
    };
    assert!(refusal.contains("no host"), "{refusal}");
    // A reason that is not a plain name does not become a counter name.
    s.received(ReceiverToEngine::Rejected {
        source: "192.0.2.1:1".parse().unwrap(),
        received_ms: u64::MAX,
        reason: "x\n{}/../".repeat(20),
        detail: String::new(),
    });
    assert_eq!(s.counters.get("rejected_other"), Some(&1));
    // A time far in the future is clamped, not a deadline that never comes (or overflows).
    heartbeat(&mut s, "web1", u64::MAX);
    assert!(s.hosts["web1"].last_seen_ms < u64::MAX / 2);
    // Plugin data is bounded per host.
    let big = "x".repeat(200_000);
    for n in 0..8 {
        message(
            &mut s,
            "web1",
            S,
            serde_json::json!({"ID": "PLG", "name": "web1", "plugin": format!("p{n}"), "data": {"v": big}}),
        );
    }
    assert_eq!(s.hosts["web1"].plugins.len(), 5, "1 MiB per host");
    assert_eq!(s.counters.get("plugin_data_refused"), Some(&3));
    assert!(s.plugin_bytes <= MAX_PLUGIN_BYTES);
}

#[test]
fn a_host_first_seen_through_a_plugin_report_is_timed() {
    let mut s = state();
    message(
        &mut s,
        "web1",
        0,
        serde_json::json!({"ID": "PLG", "name": "web1", "plugin": "cpu", "data": {"v": 1}}),
    );
    run(&mut s, 0, 60 * S);
    assert_eq!(s.summary("web1").unwrap().state, "down");
}

fn cpu(state: &mut State, at: u64, value: f64) {
    message(
        state,
        "web1",
        at,
        serde_json::json!({"ID": "PLG", "name": "web1", "plugin": "cpu_monitor", "data": {"cpu_percent": value}}),
    );
}

fn alerting_config() -> EngineConfig {
    let mut c = config();
    c.grace = 5.0;
    c.threshold_renotify_interval = Some(3600);
    c.thresholds = serde_json::json!({
        "cpu_monitor": {"cpu_percent": {"warning": 80, "critical": 90}},
        "rtt": {"*": {"warning": 100, "critical": 500}}
    });
    c
}

fn titles(s: &State) -> Vec<String> {
    s.ready.iter().map(|n| n.title.clone()).collect()
}

/// `check` added to `c` as the supervisor adds a file's checks.
fn with_check(c: &mut EngineConfig, name: &str, check: CheckFile) {
    c.hosts.insert(name.into(), check.host_config());
    c.checks.insert(name.into(), check.check_config());
}

/// A check pinged every minute, with ten seconds' grace.
fn minute_check(uuid: &str) -> CheckFile {
    CheckFile {
        uuid: uuid.into(),
        interval: Some(60),
        grace: Some(10.0),
        ..CheckFile::default()
    }
}

fn ping(s: &mut State, at: u64, uuid: &str, kind: &str, exit: Option<i32>) -> Answer {
    s.ping(
        hb_ipc::edge::PingRequest {
            uuid: uuid.into(),
            kind: kind.into(),
            exit,
            rid: None,
            source: "127.0.0.1:1".parse().unwrap(),
            body: None,
            method: "GET".into(),
            user_agent: None,
            key: None,
        },
        at,
    )
}

/// Issue 10: a check is timed from its pings like a host; a failure takes it down at
/// once; a start and its end give the run's duration; unknown, inactive and datagram
/// feeds are refused.
#[test]
fn checks_are_hosts_fed_by_pings() {
    let mut c = alerting_config();
    let uuid = "0f8fad5b-d9cb-469f-a165-70867728950e";
    with_check(&mut c, "backup", minute_check(uuid));
    with_check(
        &mut c,
        "paused",
        CheckFile {
            active: Some(false),
            ..minute_check("00000000-0000-4000-8000-000000000000")
        },
    );
    let mut s = State::new(0);
    s.configure(c, 0).unwrap();
    assert!(matches!(
        ping(&mut s, S, uuid, "start", None),
        Answer::Pinged { .. }
    ));
    assert!(matches!(
        ping(&mut s, 3 * S, uuid, "success", None),
        Answer::Pinged { .. }
    ));
    assert_eq!(s.liveness.state("backup"), Some(liveness::State::Up));
    assert!(
        s.events
            .iter()
            .any(|e| e.text == "backup succeeded after 2.0 s"),
        "the run's duration"
    );
    // Silent past interval + grace: down, notified.
    run(&mut s, 3 * S, 3 * S + 71 * S);
    assert_eq!(s.liveness.state("backup"), Some(liveness::State::Down));
    assert_eq!(titles(&s), ["[CRITICAL] backup down"]);
    // Back, then a failure: down at once, with the exit status.
    ping(&mut s, 80 * S, uuid, "success", None);
    ping(&mut s, 81 * S, uuid, "success", Some(3));
    assert_eq!(s.liveness.state("backup"), Some(liveness::State::Down));
    assert!(
        s.ready
            .iter()
            .any(|n| n.text.contains("backup failed with exit status 3")),
        "{:?}",
        s.ready.iter().map(|n| &n.text).collect::<Vec<_>>()
    );
    // Refused: an unknown UUID, an inactive check, a datagram naming a check.
    assert!(matches!(
        ping(
            &mut s,
            82 * S,
            "11111111-1111-4111-8111-111111111111",
            "success",
            None
        ),
        Answer::Error { .. }
    ));
    assert!(matches!(
        ping(
            &mut s,
            82 * S,
            "00000000-0000-4000-8000-000000000000",
            "success",
            None
        ),
        Answer::Error { .. }
    ));
    heartbeat(&mut s, "backup", 83 * S);
    assert_eq!(
        s.liveness.state("backup"),
        Some(liveness::State::Down),
        "a datagram feeds no check"
    );
    assert_eq!(s.counters.get("datagrams_for_checks"), Some(&1));
    let Answer::Checks { checks } = s.check_list() else {
        panic!()
    };
    assert_eq!(checks.len(), 2);
    assert_eq!(
        (checks[0].name.as_str(), checks[0].state.as_str()),
        ("backup", "down")
    );
    assert_eq!(checks[1].state, "paused");
}

/// A paused check is not timed: its silence alerts nobody.
#[test]
fn a_paused_check_is_not_timed() {
    let uuid = "7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d";
    let make = |active: bool| {
        let mut c = alerting_config();
        let check = CheckFile {
            active: Some(active),
            ..minute_check(uuid)
        };
        with_check(&mut c, "job", check);
        c
    };
    let mut s = State::new(0);
    s.configure(make(true), 0).unwrap();
    let pinged = ping(&mut s, S, uuid, "success", None);
    assert!(matches!(pinged, Answer::Pinged { .. }));
    s.configure(make(false), 2 * S).unwrap();
    run(&mut s, 2 * S, 200 * S);
    assert!(titles(&s).is_empty(), "{:?}", titles(&s));
}

/// Issue 10, acceptance 4: a check on a cron schedule in Europe/Berlin expects its pings
/// when the schedule fires, across the change to summer time (a 23-hour night).
#[test]
fn a_scheduled_check_is_due_when_its_schedule_fires_across_dst() {
    let mut c = alerting_config();
    let uuid = "6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
    let check = CheckFile {
        uuid: uuid.into(),
        grace: Some(600.0),
        schedule: Some("0 1 * * *".into()),
        tz: Some("Europe/Berlin".into()),
        ..CheckFile::default()
    };
    with_check(&mut c, "nightly", check);
    let ms = |t: &str| t.parse::<jiff::Timestamp>().unwrap().as_millisecond() as u64;
    let mut s = State::new(0);
    s.configure(c, ms("2026-03-27T00:00:00Z")).unwrap();
    let tick_to = |s: &mut State, from: u64, to: u64| {
        let mut now = from;
        while now <= to {
            s.tick(now);
            now += 60 * S;
        }
    };
    // 01:00 CET on the 28th; due 01:00 CET on the 29th (24 h), 10 minutes' grace.
    let first = ms("2026-03-28T00:00:05Z");
    ping(&mut s, first, uuid, "success", None);
    tick_to(&mut s, first, ms("2026-03-29T00:09:00Z"));
    assert_eq!(s.liveness.state("nightly"), Some(liveness::State::Up));
    let second = ms("2026-03-29T00:00:05Z");
    ping(&mut s, second, uuid, "success", None);
    // Summer time from 02:00: the next 01:00 is 23:00 UTC, 23 hours on; late at 23:10.
    tick_to(&mut s, second, ms("2026-03-29T23:09:00Z"));
    assert_eq!(
        s.liveness.state("nightly"),
        Some(liveness::State::Up),
        "not due yet"
    );
    tick_to(
        &mut s,
        ms("2026-03-29T23:09:00Z"),
        ms("2026-03-29T23:11:00Z"),
    );
    assert_eq!(
        s.liveness.state("nightly"),
        Some(liveness::State::Down),
        "a day of 24 hours would have waited until 00:10 UTC"
    );
    assert_eq!(titles(&s), ["[CRITICAL] nightly down"]);
}

/// Issue 5, acceptance 2: grace, reminders, escalation and silent de-escalation.
#[test]
fn threshold_alerts_follow_grace_escalation_and_reminders() {
    let mut s = State::new(0);
    s.configure(alerting_config(), 0).unwrap();
    heartbeat(&mut s, "web1", 0);
    cpu(&mut s, 0, 85.0);
    s.second(4 * S);
    cpu(&mut s, 4 * S + 500, 50.0);
    s.second(10 * S);
    assert!(
        titles(&s).is_empty(),
        "recovered within grace: {:?}",
        titles(&s)
    );

    cpu(&mut s, 10 * S, 95.0);
    s.second(14 * S);
    assert!(titles(&s).is_empty(), "deferred");
    s.second(15 * S);
    assert_eq!(titles(&s), ["[CRITICAL] web1 cpu_monitor.cpu_percent"]);
    assert_eq!(s.ready[0].text, "cpu_monitor.cpu_percent = 95 (> 90)");
    cpu(&mut s, 20 * S, 85.0);
    assert_eq!(s.ready.len(), 1, "de-escalation is silent");
    // The reminder counts from the level change at 20 s.
    s.second(20 * S + 3599 * S);
    assert_eq!(s.ready.len(), 1);
    s.second(20 * S + 3600 * S);
    assert_eq!(
        titles(&s)[1],
        "[WARNING] web1 cpu_monitor.cpu_percent (ongoing for 60 min)"
    );
    assert_eq!(s.ready[1].kind, "reminder");
    cpu(&mut s, 4000 * S, 99.0);
    assert_eq!(titles(&s)[2], "[CRITICAL] web1 cpu_monitor.cpu_percent");
    // Hysteresis: 88.5 is above 90 * 0.98 = 88.2, still critical; 70 recovers.
    cpu(&mut s, 4001 * S, 88.5);
    assert_eq!(s.ready.len(), 3);
    cpu(&mut s, 4002 * S, 70.0);
    assert_eq!(titles(&s)[3], "[RECOVER] web1 cpu_monitor.cpu_percent");
    assert_eq!(
        s.ready[3].alert, s.ready[0].alert,
        "to whoever got the alert"
    );
    // RTT is checked on every heartbeat.
    message(
        &mut s,
        "web1",
        4003 * S,
        serde_json::json!({"ID": "HTB", "name": "web1", "rtt": 600.0}),
    );
    assert_eq!(s.ready.len(), 4, "deferred by grace");
    s.second(4009 * S);
    assert_eq!(titles(&s)[4], "[CRITICAL] web1 rtt");
}

#[test]
fn stale_alerts_end_and_bad_templates_fall_back_once() {
    let mut c = alerting_config();
    c.grace = 0.0;
    c.thresholds = serde_json::json!({
        "nagios_runner": {"status_code": {"operator": "nagios", "display": "{check_name}: {nosuch}"}}
    });
    let mut s = State::new(0);
    s.configure(c, 0).unwrap();
    heartbeat(&mut s, "web1", 0);
    let report = |s: &mut State, at: u64, data: serde_json::Value| {
        message(
            s,
            "web1",
            at,
            serde_json::json!({"ID": "PLG", "name": "web1", "plugin": "nagios_runner", "data": data}),
        );
    };
    report(
        &mut s,
        S,
        serde_json::json!({"check_disk_status_code": 2, "check_disk_output": "DISK CRITICAL", "check_load_status_code": 1}),
    );
    assert_eq!(s.ready.len(), 2);
    assert_eq!(
        s.ready[0].text, "nagios_runner.check_disk_status_code = 2",
        "the default text replaces the bad template"
    );
    let reported = s
        .events
        .iter()
        .filter(|e| e.text.contains("display template"))
        .count();
    assert_eq!(reported, 1, "reported once");
    // A failed run, or a report cut to fit, says nothing of what it lacks.
    report(
        &mut s,
        S + 100,
        serde_json::json!({"error": "took longer than 30 s"}),
    );
    report(
        &mut s,
        S + 200,
        serde_json::json!({"check_disk_status_code": 2, "_trimmed": ["x"]}),
    );
    assert_eq!(s.alerting.alerts.len(), 2, "no alert ended");
    // check_load is no longer reported: its alert ends and its recovery goes out.
    report(
        &mut s,
        2 * S,
        serde_json::json!({"check_disk_status_code": 2}),
    );
    assert_eq!(
        titles(&s)[2],
        "[RECOVER] web1 nagios_runner.check_load_status_code: closed"
    );
    assert_eq!(s.alerting.alerts.len(), 1);
}

#[test]
fn alerts_survive_a_restart_of_the_engine() {
    let dir = std::env::temp_dir().join(format!("hb-state-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("hb.sqlite");
    let retention = store::Retention {
        samples: 10,
        events: 100,
        pings: 10,
    };
    let mut s = State::new(0);
    s.configure(alerting_config(), 0).unwrap();
    s.attach_store(store::spawn_writer(
        store::open(&path).unwrap(),
        retention,
        |_| {},
    ));
    heartbeat(&mut s, "web1", 0);
    cpu(&mut s, 0, 95.0);
    s.second(5 * S);
    assert_eq!(
        s.alerting
            .alerts
            .get("web1/cpu_monitor.cpu_percent")
            .map(|a| a.notified),
        Some(true)
    );
    s.close_store();

    let loaded = store::load(&store::open(&path).unwrap(), 30).unwrap();
    let mut s = State::new(10 * S);
    s.configure(alerting_config(), 10 * S).unwrap();
    s.restore(loaded, 10 * S);
    let a = s
        .alerting
        .alerts
        .get("web1/cpu_monitor.cpu_percent")
        .unwrap();
    assert_eq!((a.level, a.notified), (Level::Critical, true));
    // No second alert after the restart; the recovery goes out.
    cpu(&mut s, 11 * S, 95.0);
    s.second(20 * S);
    assert!(s.ready.is_empty(), "{:?}", titles(&s));
    cpu(&mut s, 21 * S, 10.0);
    assert_eq!(titles(&s), ["[RECOVER] web1 cpu_monitor.cpu_percent"]);
}

/// Issue 5, acceptance 3: a router and 20 hosts behind it go silent together.
#[test]
fn children_behind_a_down_parent_wait_for_it() {
    let mut c = config();
    c.hosts.insert(
        "router1".into(),
        HostConfig {
            watch: Some(true),
            ..HostConfig::default()
        },
    );
    for i in 1..=20 {
        c.hosts.insert(
            format!("c{i}"),
            HostConfig {
                watch: Some(true),
                parents: vec!["router1".into()],
                ..HostConfig::default()
            },
        );
    }
    let mut s = State::new(0);
    s.configure(c, 0).unwrap();
    // The children heartbeat a little before and after the router.
    for i in 1..=20 {
        heartbeat(&mut s, &format!("c{i}"), if i % 2 == 0 { 0 } else { 2 * S });
    }
    heartbeat(&mut s, "router1", S);
    let mut now = 0;
    while now <= 60 * S {
        s.tick(now);
        if now.is_multiple_of(S) {
            s.second(now);
        }
        now += 100;
    }
    assert_eq!(titles(&s), ["[CRITICAL] router1 down"], "one notification");
    let unreachable = s
        .hosts
        .keys()
        .filter(|h| h.starts_with('c'))
        .filter(|h| s.blocking_parent(h, now).is_some())
        .count();
    assert_eq!(unreachable, 20);
    assert!(
        s.events
            .iter()
            .any(|e| e.text == "c1 unreachable (router1 is down)")
    );
    // The router returns; every child but c7 reports within its interval.
    while now <= 120 * S {
        // From 61 s, every 10 s: the router, then every child but c7.
        if now >= 61 * S && (now - 61 * S).is_multiple_of(10 * S) {
            heartbeat(&mut s, "router1", now);
            for i in (1..=20).filter(|i| *i != 7) {
                heartbeat(&mut s, &format!("c{i}"), now + i * 300);
            }
        }
        s.tick(now);
        if now.is_multiple_of(S) {
            s.second(now);
        }
        now += 100;
    }
    assert_eq!(
        titles(&s),
        [
            "[CRITICAL] router1 down",
            "[RECOVER] router1 is back",
            "[CRITICAL] c7 down"
        ],
        "exactly the child that stayed silent"
    );
    // It was notified once its interval and grace after the router's return had passed.
    assert_eq!(s.ready[2].created_ms, 73 * S);
}

/// 500 watched hosts, h0 to h499, on three channels.
fn five_hundred_watched() -> State {
    let mut c = config();
    c.watchhosts = (0..500).map(|i| format!("h{i}")).collect();
    for i in 0..500 {
        c.hosts.insert(
            format!("h{i}"),
            HostConfig {
                notification_channels: vec![format!("ch{}", i % 3)],
                ..HostConfig::default()
            },
        );
    }
    let mut s = State::new(0);
    s.configure(c, 0).unwrap();
    s
}

// The storm below with the engine 15 s behind, more than the storm's window: downs are
// timed by what was heard, and so is the window, or each down would close its storm at
// once and page on its own.
#[test]
fn a_storm_is_one_summary_though_the_server_is_behind() {
    let mut s = five_hundred_watched();
    for i in 0..500u64 {
        heartbeat(&mut s, &format!("h{i}"), if i < 200 { i * 50 } else { 0 });
    }
    const BEHIND: u64 = 15 * S;
    let mut now = 0;
    while now <= 60 * S {
        if now.is_multiple_of(10 * S) {
            for i in 200..500 {
                heartbeat(&mut s, &format!("h{i}"), now);
            }
        }
        s.received(ReceiverToEngine::Drained { up_to_ms: now });
        s.tick_heard(now + BEHIND);
        if now.is_multiple_of(S) {
            s.second(now + BEHIND);
        }
        now += 100;
    }
    assert_eq!(
        titles(&s),
        [
            "[CRITICAL] h0 down",
            "[CRITICAL] 200 hosts down within 10 s"
        ]
    );
}

/// Issue 5, acceptance 6: 200 of 500 hosts go silent within 10 s.
#[test]
fn a_storm_is_one_summary_not_two_hundred_pages() {
    let mut s = five_hundred_watched();
    // Interval 10, grace 2, max_missed 2: down 22 s after the last heartbeat. The 200
    // send their last heartbeat over 10 s; the other 300 keep going.
    for i in 0..500u64 {
        heartbeat(&mut s, &format!("h{i}"), if i < 200 { i * 50 } else { 0 });
    }
    let mut now = 0;
    while now <= 60 * S {
        if now.is_multiple_of(10 * S) {
            for i in 200..500 {
                heartbeat(&mut s, &format!("h{i}"), now);
            }
        }
        s.tick(now);
        if now.is_multiple_of(S) {
            s.second(now);
        }
        now += 100;
    }
    assert_eq!(
        titles(&s),
        [
            "[CRITICAL] h0 down",
            "[CRITICAL] 200 hosts down within 10 s"
        ],
        "the first down at once, then one summary"
    );
    let summary = &s.ready[1];
    assert_eq!(summary.channels, ["ch0", "ch1", "ch2"], "one per channel");
    assert!(
        summary
            .text
            .contains("Possible network problem at the monitor")
    );
    assert!(
        s.events
            .iter()
            .any(|e| e.text.contains("possible network problem"))
    );
    // They come back: no recovery pages one by one, one notice when all are back.
    for i in 0..200u64 {
        heartbeat(&mut s, &format!("h{i}"), 70 * S + i);
    }
    assert_eq!(
        titles(&s)[2..],
        [
            "[RECOVER] h0 is back",
            "[RECOVER] 199 hosts of the storm are back"
        ],
        "the first, paged on its own, recovers on its own"
    );
    // No reminders or late pages for them meanwhile.
    s.second(80 * S);
    assert_eq!(s.ready.len(), 4);
}

/// Issue 5, acceptance 4 (the engine's part): a silenced alert is shown, notified when
/// the silence ends if still active; an acknowledged one stops reminding.
#[test]
fn silences_hold_alerts_until_they_end_and_acknowledgement_stops_reminders() {
    let mut c = alerting_config();
    c.grace = 0.0;
    let mut s = State::new(0);
    s.configure(c, 0).unwrap();
    heartbeat(&mut s, "web1", 0);
    let Reply::Now(Answer::Silenced { id }) = s.query(
        Query::Silence {
            host: "web*".into(),
            metric: "cpu_monitor.*".into(),
            minutes: 10,
            author: "alice".into(),
            comment: "kernel update".into(),
        },
        0,
    ) else {
        panic!()
    };
    cpu(&mut s, S, 95.0);
    s.second(2 * S);
    assert!(s.ready.is_empty(), "silenced");
    assert_eq!(s.alerting.alerts.len(), 1, "but shown");
    s.second(599 * S);
    assert!(s.ready.is_empty());
    s.second(600 * S);
    assert_eq!(
        titles(&s),
        ["[CRITICAL] web1 cpu_monitor.cpu_percent"],
        "at the end"
    );
    assert!(
        s.alerting.silences.is_empty(),
        "an ended silence is forgotten"
    );
    // Reminders every hour, until acknowledged.
    s.second(600 * S + 3600 * S);
    assert_eq!(s.ready.len(), 2);
    let Reply::Now(Answer::Done { .. }) = s.query(
        Query::Acknowledge {
            key: "web1/cpu_monitor.cpu_percent".into(),
            by: "bob".into(),
        },
        4300 * S,
    ) else {
        panic!()
    };
    s.second(600 * S + 7200 * S);
    assert_eq!(s.ready.len(), 2, "acknowledged: no reminder");
    // Bad silences are refused.
    for (host, minutes) in [("", 10), ("web1", 0), ("web1\n", 10), ("web1", 50_000)] {
        let reply = s.query(
            Query::Silence {
                host: host.into(),
                metric: "*".into(),
                minutes,
                author: "x".into(),
                comment: String::new(),
            },
            0,
        );
        assert!(
            matches!(reply, Reply::Now(Answer::Error { .. })),
            "{host:?} {minutes}"
        );
    }
    let _ = id;
}

#[test]
fn a_maintenance_window_silences_what_it_covers() {
    let mut c = alerting_config();
    c.grace = 0.0;
    // Every day from 00:00 UTC for an hour: the test's clock starts at 0.
    c.maintenance = serde_json::json!([{"name": "nightly", "hosts": "web1", "metrics": "down", "start": "00:00", "duration": 60}]);
    let mut s = State::new(0);
    s.configure(c, 0).unwrap();
    heartbeat(&mut s, "web1", 0);
    cpu(&mut s, S, 95.0);
    assert_eq!(s.ready.len(), 1, "cpu is not covered");
    run(&mut s, 0, 30 * S);
    assert_eq!(s.ready.len(), 1, "down is");
    s.second(3600 * S);
    assert_eq!(
        titles(&s)[1],
        "[CRITICAL] web1 down",
        "when the window closes"
    );
}

/// Review findings: holds apply to every notice, escalations while held are not lost,
/// a hostile report is bounded.
#[test]
fn holds_apply_to_rtt_flapping_and_escalations() {
    let mut c = alerting_config();
    c.grace = 0.0;
    let mut s = State::new(0);
    s.configure(c, 0).unwrap();
    heartbeat(&mut s, "web1", 0);
    let silence = |s: &mut State, metric: &str| {
        let Reply::Now(Answer::Silenced { id }) = s.query(
            Query::Silence {
                host: "WEB1".into(),
                metric: metric.into(),
                minutes: 10,
                author: "a".into(),
                comment: String::new(),
            },
            0,
        ) else {
            panic!()
        };
        id
    };
    // An RTT silence silences the RTT alert, including after its grace.
    let rtt = silence(&mut s, "rtt");
    message(
        &mut s,
        "web1",
        S,
        serde_json::json!({"ID": "HTB", "name": "web1", "rtt": 600.0}),
    );
    s.second(5 * S);
    assert!(s.ready.is_empty(), "{:?}", titles(&s));
    s.query(Query::Unsilence { id: rtt }, 6 * S);
    s.second(7 * S);
    assert_eq!(titles(&s), ["[CRITICAL] web1 rtt"]);

    // A metric that flaps while silenced sends no flapping notice, and no settled one.
    let cpu_silence = silence(&mut s, "cpu_monitor.*");
    for i in 0..20u64 {
        cpu(&mut s, 10 * S + i * S, if i % 2 == 0 { 95.0 } else { 10.0 });
    }
    assert!(
        s.alerting
            .alerts
            .is_flapping("web1/cpu_monitor.cpu_percent")
    );
    for i in 20..60u64 {
        cpu(&mut s, 10 * S + i * S, 10.0);
    }
    assert_eq!(s.ready.len(), 1, "{:?}", titles(&s));
    // Held at WARNING, escalated to CRITICAL meanwhile: notified as CRITICAL when the
    // silence ends.
    cpu(&mut s, 100 * S, 85.0);
    cpu(&mut s, 101 * S, 95.0);
    s.query(Query::Unsilence { id: cpu_silence }, 102 * S);
    s.second(103 * S);
    assert_eq!(titles(&s)[1], "[CRITICAL] web1 cpu_monitor.cpu_percent");
}

#[test]
fn a_hostile_report_is_bounded() {
    let mut s = state();
    heartbeat(&mut s, "web1", 0);
    // 5000 Nagios results: each matches the built-in threshold.
    let data: serde_json::Map<String, serde_json::Value> = (0..5000)
        .map(|i| (format!("c{i}_status_code"), serde_json::json!(2)))
        .collect();
    message(
        &mut s,
        "web1",
        S,
        serde_json::json!({"ID": "PLG", "name": "web1", "plugin": "nagios_runner", "data": data}),
    );
    assert_eq!(s.counters.get("findings_refused"), Some(&1));
    assert_eq!(s.alerting.alerts.len(), crate::alerts::MAX_ALERTS_PER_HOST);
}
