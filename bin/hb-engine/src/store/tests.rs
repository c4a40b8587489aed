use super::writer::commit;
use super::*;
use hb_ipc::edge::Query;

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hb-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("hb.sqlite")
}

fn host(name: &str, last: u64) -> StoredHost {
    StoredHost {
        name: name.into(),
        last_seen_ms: last,
        address: "192.0.2.1:5000".into(),
        interval: Some(10),
        version: Some("0.1.0".into()),
        rtt_ms: Some(0.5),
        signed: false,
        state: "up".into(),
        state_since_ms: 0,
    }
}

const KEEP: Retention = Retention {
    samples: 3,
    events: 100,
    pings: 3,
};

fn notification(id: u64) -> Notification {
    Notification {
        id,
        alert: "a/down".into(),
        kind: "alert".into(),
        level: "CRITICAL".into(),
        host: "a".into(),
        title: "[CRITICAL] a down".into(),
        text: "a is down".into(),
        created_ms: id,
        users: vec![],
        channels: vec![],
        alerted: Vec::new(),
        done_channels: Vec::new(),
    }
}

fn ask(reader: &Reader, read: Query) -> Answer {
    let (tx, rx) = std::sync::mpsc::channel();
    reader.ask(read, move |a| tx.send(a).unwrap());
    rx.recv().unwrap()
}

#[test]
fn survives_a_reopen_and_keeps_the_newest_host_row() {
    let path = scratch("reopen");
    let mut db = open(&path).unwrap();
    commit(
        &mut db,
        &[
            Write::Host(host("gone", 1)),
            Write::Drop {
                host: "gone".into(),
            },
            Write::Host(host("a", 1)),
            Write::Host(host("a", 2)),
            Write::Event {
                at_ms: 3,
                host: "a".into(),
                text: "a booted".into(),
            },
        ],
        KEEP,
    )
    .unwrap();
    drop(db);
    let db = open(&path).unwrap();
    let loaded = load(&db, 30).unwrap();
    assert_eq!(loaded.hosts, [host("a", 2)]);
    assert_eq!(
        loaded.events,
        [(3, "a".to_string(), "a booted".to_string())]
    );
}

#[test]
fn a_newer_schema_is_refused_untouched() {
    let path = scratch("newer");
    drop(open(&path).unwrap());
    let db = Connection::open(&path).unwrap();
    db.pragma_update(None, "user_version", 99).unwrap();
    drop(db);
    let e = open(&path).unwrap_err().to_string();
    assert!(
        e.contains(&format!(
            "schema version 99, newer than this hb-engine's {}",
            MIGRATIONS.len()
        )),
        "{e}"
    );
    let db = Connection::open(&path).unwrap();
    let v: i64 = db
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, 99);
}

#[test]
fn settings_are_stored_replaced_and_removed() {
    let path = scratch("settings");
    let mut db = open(&path).unwrap();
    let set = |name: &str, value: Option<&str>| Write::Setting {
        kind: "user".into(),
        name: name.into(),
        value: value.map(String::from),
    };
    commit(
        &mut db,
        &[
            set("alice", Some(r#"{"full_name":"A"}"#)),
            set("bob", Some(r#"{"full_name":"B"}"#)),
            set("alice", Some(r#"{"full_name":"A2"}"#)),
            set("bob", None),
        ],
        KEEP,
    )
    .unwrap();
    let loaded = load(&open(&path).unwrap(), 30).unwrap();
    assert_eq!(
        loaded.settings,
        [(
            "user".to_string(),
            "alice".to_string(),
            serde_json::json!({"full_name": "A2"})
        )]
    );
}

#[test]
fn the_writer_batches_and_commits() {
    let path = scratch("writer");
    let writer = spawn_writer(open(&path).unwrap(), KEEP, |_| {});
    for i in 0..1000 {
        writer.send(Write::Host(host(&format!("h{}", i % 100), i)));
    }
    writer.close();
    let loaded = load(&open(&path).unwrap(), 1).unwrap();
    assert_eq!(loaded.hosts.len(), 100);
    assert!(
        loaded.hosts.iter().all(|h| h.last_seen_ms >= 900),
        "an older row won"
    );
}

#[test]
fn a_change_is_answered_once_it_is_committed() {
    let path = scratch("barrier");
    let writer = spawn_writer(open(&path).unwrap(), KEEP, |_| {});
    let (tx, rx) = std::sync::mpsc::channel();
    writer.send(Write::Setting {
        kind: "channel".into(),
        name: "ops".into(),
        value: Some("{}".into()),
    });
    let reader_path = path.clone();
    writer.send_always(Write::Committed(WhenCommitted(Box::new(move |stored| {
        // Read from another connection while the writer is still open: it is there.
        let loaded = load(&open(&reader_path).unwrap(), 1).unwrap();
        let _ = tx.send((stored, loaded.settings.len()));
    }))));
    // Answered without waiting for the batch window to close.
    let answered = rx.recv_timeout(BATCH_WINDOW / 2);
    writer.close();
    assert_eq!(answered, Ok((true, 1)));
}

#[test]
fn a_version_1_store_is_migrated_keeping_its_hosts() {
    let path = scratch("migrate");
    let db = Connection::open(&path).unwrap();
    db.execute_batch(MIGRATIONS[0]).unwrap();
    db.execute(
        "INSERT INTO hosts (name, last_seen_ms, address) VALUES ('old', 5, '192.0.2.9:1')",
        [],
    )
    .unwrap();
    db.pragma_update(None, "user_version", 1).unwrap();
    drop(db);
    let loaded = load(&open(&path).unwrap(), 30).unwrap();
    assert_eq!(loaded.hosts.len(), 1);
    assert_eq!(loaded.hosts[0].name, "old");
    assert_eq!(loaded.hosts[0].state, "up");
}

#[test]
fn history_is_trimmed_and_served_newest_first() {
    let path = scratch("history");
    let mut db = open(&path).unwrap();
    let mut batch = Vec::new();
    for i in 0..10u64 {
        batch.push(Write::Sample {
            host: "a".into(),
            plugin: "cpu".into(),
            at_ms: i,
            data: format!("{{\"n\":{i}}}"),
        });
        batch.push(Write::Rtt {
            host: "a".into(),
            at_ms: i,
            rtt_ms: i as f64,
        });
    }
    commit(&mut db, &batch, KEEP).unwrap();
    let loaded = load(&db, 30).unwrap();
    assert_eq!(
        loaded.latest,
        [("a".into(), "cpu".into(), 9, serde_json::json!({"n": 9}))]
    );
    let reader = spawn_reader(&path).unwrap();
    let Answer::Samples { samples } = ask(
        &reader,
        Query::Samples {
            host: "a".into(),
            plugin: "cpu".into(),
            limit: 100,
        },
    ) else {
        panic!("not samples")
    };
    let times: Vec<u64> = samples.iter().map(|s| s.time_ms).collect();
    assert_eq!(times, [9, 8, 7], "retention keeps 3, newest first");
    let Answer::Rtt { samples } = ask(
        &reader,
        Query::Rtt {
            host: "a".into(),
            limit: 2,
        },
    ) else {
        panic!("not rtt")
    };
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0].rtt_ms, 9.0);
}

#[test]
fn the_outbox_returns_what_is_not_done_and_hands_on_after_commit() {
    let path = scratch("outbox");
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = spawn_writer(open(&path).unwrap(), KEEP, move |n| {
        tx.send(n).unwrap();
    });
    writer.send(Write::Notify(notification(1)));
    writer.send(Write::Notify(notification(2)));
    writer.send(Write::Done {
        id: 1,
        at_ms: 9,
        outcome: "delivered".into(),
    });
    let handed: Vec<u64> = rx.recv().unwrap().iter().map(|n| n.id).collect();
    assert!(handed.contains(&1));
    writer.close();
    let loaded = load(&open(&path).unwrap(), 1).unwrap();
    assert_eq!(loaded.outbox, [notification(2)]);
    assert_eq!(loaded.last_notification_id, 2);
}
