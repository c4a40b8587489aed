//! The engine's durable state: SQLite in WAL mode in `state_dir`, written by one thread in
//! batches so message handling never waits on the disk, and read by another for history
//! queries.
//!
//! The schema is versioned (`PRAGMA user_version`); missing migrations are applied in one
//! transaction at start. A store newer than this binary is refused, never rewritten.
//!
//! What a `kill -9` of the engine can lose: the batch being gathered (at most [`BATCH_WINDOW`]
//! of last-seen times, samples and RTTs). It cannot lose a change it answered (through the
//! API or hbctl): the answer waits for the commit ([`Write::Committed`]). It cannot lose a state transition or a notification:
//! a notification goes to the notifier only after the batch holding it, and the host's new
//! state with it, is committed ([`spawn_writer`]). The notifier's "done" is committed at once;
//! one that arrives in the few ms before a crash is lost, and the notification is handed over
//! again after the restart with the same id, which the notifier recognises. Committed batches
//! survive a process crash, since WAL with `synchronous=NORMAL` keeps every committed
//! transaction.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hb_ipc::edge::{Answer, EventSummary, Notification, RttSample, Sample};
use rusqlite::{Connection, OpenFlags, params};

/// How long the writer gathers before it commits (a notification ends the wait at once).
pub const BATCH_WINDOW: Duration = Duration::from_millis(200);

/// Schema, one entry per version: applying `MIGRATIONS[i]` takes the store from version i to
/// i + 1.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE hosts (
        name TEXT PRIMARY KEY,
        last_seen_ms INTEGER NOT NULL,
        address TEXT NOT NULL,
        interval INTEGER,
        version TEXT,
        rtt_ms REAL,
        signed INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        host TEXT NOT NULL,
        text TEXT NOT NULL
    );
    CREATE INDEX events_at ON events (at_ms);
    ",
    "
    ALTER TABLE hosts ADD COLUMN state TEXT NOT NULL DEFAULT 'up';
    ALTER TABLE hosts ADD COLUMN state_since_ms INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX events_host ON events (host, id);
    CREATE TABLE samples (
        id INTEGER PRIMARY KEY,
        host TEXT NOT NULL,
        plugin TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX samples_host ON samples (host, plugin, id);
    CREATE TABLE rtt (
        id INTEGER PRIMARY KEY,
        host TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        rtt_ms REAL NOT NULL
    );
    CREATE INDEX rtt_host ON rtt (host, id);
    CREATE TABLE alerts (
        key TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        level TEXT NOT NULL,
        since_ms INTEGER NOT NULL,
        text TEXT NOT NULL,
        notified INTEGER NOT NULL
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        created_ms INTEGER NOT NULL,
        notification TEXT NOT NULL,
        done_ms INTEGER,
        outcome TEXT
    );
    CREATE INDEX outbox_pending ON outbox (id) WHERE done_ms IS NULL;
    ",
    "
    ALTER TABLE alerts ADD COLUMN metric TEXT NOT NULL DEFAULT 'down';
    ALTER TABLE alerts ADD COLUMN opened_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE alerts ADD COLUMN last_notified_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE alerts ADD COLUMN acknowledged TEXT;
    ",
    "
    CREATE TABLE silences (
        id INTEGER PRIMARY KEY,
        host TEXT NOT NULL,
        metric TEXT NOT NULL,
        start_ms INTEGER NOT NULL,
        end_ms INTEGER NOT NULL,
        author TEXT NOT NULL,
        comment TEXT NOT NULL
    );
    ",
    "
    ALTER TABLE alerts ADD COLUMN alerted TEXT NOT NULL DEFAULT '';
    ",
    "
    ALTER TABLE outbox ADD COLUMN delivered TEXT NOT NULL DEFAULT '';
    ",
    "
    CREATE TABLE settings (
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (kind, name)
    );
    ",
    "
    CREATE TABLE pings (
        id INTEGER PRIMARY KEY,
        check_name TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        exit INTEGER,
        rid TEXT,
        source TEXT NOT NULL,
        method TEXT NOT NULL,
        user_agent TEXT,
        body TEXT,
        duration_ms INTEGER
    );
    CREATE INDEX pings_check ON pings (check_name, id);
    ",
];

/// Notifications kept in the outbox after they are done (for inspection).
const OUTBOX_DONE_RETAINED: i64 = 10_000;
/// Writes waiting for the writer at most. Past it, last-seen rows, samples and RTTs are
/// dropped and counted; everything else (state changes, alerts, notifications) waits for
/// room, so a stalled disk slows the engine rather than lose an alert.
/// The channel allocates and touches all its slots at once (a `Write` is 256 bytes): 20,000
/// is 5 MB, a few seconds of the heaviest load measured; 100,000 cost an idle engine 25 MB.
pub const WRITER_QUEUE: usize = 20_000;
/// How long SQLite waits for a lock someone else holds (an operator's `sqlite3` session).
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);
/// Pauses between attempts to commit a batch; after the last, the batch is given up.
const COMMIT_RETRIES: &[Duration] = &[
    Duration::from_millis(50),
    Duration::from_millis(200),
    Duration::from_millis(500),
    Duration::from_secs(1),
];

/// Why the store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("{path}: {source}")]
    Sqlite {
        /// The database.
        path: String,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// Written by a newer hb.
    #[error(
        "{path} has schema version {found}, newer than this hb-engine's {known}: refusing to touch it (upgrade hb, or move the file away to start afresh)"
    )]
    Newer {
        /// The database.
        path: String,
        /// Its version.
        found: i64,
        /// Ours.
        known: i64,
    },
}

/// A host as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredHost {
    /// Name.
    pub name: String,
    /// Last message, Unix ms.
    pub last_seen_ms: u64,
    /// Its source address.
    pub address: String,
    /// Announced interval.
    pub interval: Option<u32>,
    /// Client version.
    pub version: Option<String>,
    /// Last RTT.
    pub rtt_ms: Option<f64>,
    /// Last message signed.
    pub signed: bool,
    /// Liveness state name (`up`, `overdue`, `down`, `shutdown`).
    pub state: String,
    /// Since when, Unix ms.
    pub state_since_ms: u64,
}

/// An active alert as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredAlert {
    /// Unique key (`web1/down`).
    pub key: String,
    /// The host.
    pub host: String,
    /// What alerts (`down`, `rtt`, `cpu_monitor.cpu_percent`).
    pub metric: String,
    /// Level name.
    pub level: String,
    /// Since when at this level, Unix ms.
    pub since_ms: u64,
    /// When it opened, Unix ms.
    pub opened_ms: u64,
    /// What it is about.
    pub text: String,
    /// Whether a notification went out.
    pub notified: bool,
    /// When the last one went out, Unix ms.
    pub last_notified_ms: u64,
    /// Who acknowledged it.
    pub acknowledged: Option<String>,
    /// Channels that got a notification about it, comma-separated.
    pub alerted: String,
}

/// Called once everything queued before it is committed (`true`) or given up (`false`).
pub struct WhenCommitted(pub Box<dyn FnOnce(bool) + Send>);

impl std::fmt::Debug for WhenCommitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WhenCommitted")
    }
}

/// A write for the writer thread.
#[derive(Debug)]
pub enum Write {
    /// Not a write: the answer to a change made through the API or hbctl, given once the
    /// change is committed (so an answer means it survives a crash).
    Committed(WhenCommitted),
    /// Insert or update a host.
    Host(StoredHost),
    /// Append an event.
    Event {
        /// When.
        at_ms: u64,
        /// Host.
        host: String,
        /// Text.
        text: String,
    },
    /// Append a plugin sample (the plugin's data as JSON).
    Sample {
        /// Host.
        host: String,
        /// Plugin.
        plugin: String,
        /// When it arrived.
        at_ms: u64,
        /// Its data, JSON.
        data: String,
    },
    /// Append a ping of a check.
    Ping {
        /// The check.
        check: String,
        /// The ping.
        ping: hb_ipc::edge::PingRecord,
    },
    /// Append a round-trip time.
    Rtt {
        /// Host.
        host: String,
        /// When.
        at_ms: u64,
        /// Round-trip time, ms.
        rtt_ms: f64,
    },
    /// An alert began or changed.
    Alert(StoredAlert),
    /// An alert ended.
    AlertEnded {
        /// Its key.
        key: String,
    },
    /// A notification to deliver: committed to the outbox, then handed on.
    Notify(Notification),
    /// One channel delivered a notification.
    Delivered {
        /// The notification.
        id: u64,
        /// The channel.
        channel: String,
    },
    /// The notifier is done with a notification.
    Done {
        /// The notification.
        id: u64,
        /// When.
        at_ms: u64,
        /// What happened, for inspection.
        outcome: String,
    },
    /// A silence was made.
    Silence(hb_rules::silence::Silence),
    /// A setting changed through the API (`None`: removed).
    Setting {
        /// Its kind (`user`, `access`).
        kind: String,
        /// Whose.
        name: String,
        /// The JSON value.
        value: Option<String>,
    },
    /// A silence was ended, or is over.
    Unsilence {
        /// Its id.
        id: u64,
    },
    /// Forget a host and its history.
    Drop {
        /// The host.
        host: String,
    },
}

impl Write {
    /// Committed without waiting for the batch window: a notification waits for its commit
    /// before it goes out, and a notification's completion left uncommitted would send it
    /// again after a crash.
    fn is_urgent(&self) -> bool {
        matches!(
            self,
            Write::Notify(_) | Write::Done { .. } | Write::Delivered { .. } | Write::Committed(_)
        )
    }

    /// May be dropped when the writer is far behind (the next heartbeat or sample writes
    /// the same kind of row again).
    fn is_bulk(&self) -> bool {
        matches!(
            self,
            Write::Sample { .. } | Write::Rtt { .. } | Write::Host(_)
        )
    }
}

/// What the store held at start.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Every host.
    pub hosts: Vec<StoredHost>,
    /// The newest events, oldest first.
    pub events: Vec<(u64, String, String)>,
    /// Active alerts.
    pub alerts: Vec<StoredAlert>,
    /// Notifications not yet done, oldest first.
    pub outbox: Vec<Notification>,
    /// The highest notification id ever given.
    pub last_notification_id: u64,
    /// Latest sample per host and plugin.
    pub latest: Vec<(String, String, u64, serde_json::Value)>,
    /// Ad-hoc silences.
    pub silences: Vec<hb_rules::silence::Silence>,
    /// Settings changed through the API: (kind, name, JSON).
    pub settings: Vec<(String, String, serde_json::Value)>,
}

/// How much history the store keeps.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// Samples per host and plugin, and RTTs per host.
    pub samples: u32,
    /// Events.
    pub events: u32,
    /// Pings per check.
    pub pings: u32,
}

/// SQLite's page cache of the store's connection, KiB.
const CACHE_KIB: i64 = 32 * 1024;

/// Opens (creating or migrating) the store.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    let name = path.display().to_string();
    let sql = |source| StoreError::Sqlite {
        path: name.clone(),
        source,
    };
    let mut db = Connection::open(path).map_err(sql)?;
    db.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
    db.pragma_update(None, "journal_mode", "WAL").map_err(sql)?;
    db.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sql)?;
    // Pages kept in memory, KiB (SQLite's default is 2 MiB): a host's row is found through
    // the name index and the table, and with a million hosts nearly every page was read
    // again from the file, a system call and a copy each. Taken only as pages are used.
    db.pragma_update(None, "cache_size", -CACHE_KIB)
        .map_err(sql)?;
    let found: i64 = db
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql)?;
    let known = MIGRATIONS.len() as i64;
    if found > known {
        return Err(StoreError::Newer {
            path: name,
            found,
            known,
        });
    }
    if found < known {
        let tx = db.transaction().map_err(sql)?;
        for migration in &MIGRATIONS[found.max(0) as usize..] {
            tx.execute_batch(migration).map_err(sql)?;
        }
        tx.pragma_update(None, "user_version", known).map_err(sql)?;
        tx.commit().map_err(sql)?;
        tracing::info!(path = %name, from = found, to = known, "Store schema migrated.");
    }
    Ok(db)
}

/// Reads what the engine needs at start.
pub fn load(db: &Connection, events: usize) -> rusqlite::Result<Loaded> {
    let mut loaded = Loaded::default();
    load_hosts(db, &mut loaded)?;
    load_events(db, events, &mut loaded)?;
    load_alerts(db, &mut loaded)?;
    load_outbox(db, &mut loaded)?;
    load_silences(db, &mut loaded)?;
    load_settings(db, &mut loaded)?;
    load_latest(db, &mut loaded)?;
    Ok(loaded)
}

fn load_hosts(db: &Connection, loaded: &mut Loaded) -> rusqlite::Result<()> {
    let mut q = db.prepare(
        "SELECT name, last_seen_ms, address, interval, version, rtt_ms, signed, state,
                state_since_ms FROM hosts",
    )?;
    let rows = q.query_map([], |r| {
        Ok(StoredHost {
            name: r.get(0)?,
            last_seen_ms: r.get::<_, i64>(1)? as u64,
            address: r.get(2)?,
            interval: r.get(3)?,
            version: r.get(4)?,
            rtt_ms: r.get(5)?,
            signed: r.get(6)?,
            state: r.get(7)?,
            state_since_ms: r.get::<_, i64>(8)? as u64,
        })
    })?;
    for row in rows {
        loaded.hosts.push(row?);
    }
    Ok(())
}

fn load_events(db: &Connection, events: usize, loaded: &mut Loaded) -> rusqlite::Result<()> {
    let mut q = db.prepare("SELECT at_ms, host, text FROM events ORDER BY id DESC LIMIT ?1")?;
    let rows = q.query_map([events as i64], |r| {
        Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?))
    })?;
    for row in rows {
        loaded.events.push(row?);
    }
    loaded.events.reverse();
    Ok(())
}

fn load_alerts(db: &Connection, loaded: &mut Loaded) -> rusqlite::Result<()> {
    let mut q = db.prepare(
        "SELECT key, host, metric, level, since_ms, opened_ms, text, notified,
                last_notified_ms, acknowledged, alerted FROM alerts",
    )?;
    let rows = q.query_map([], |r| {
        Ok(StoredAlert {
            key: r.get(0)?,
            host: r.get(1)?,
            metric: r.get(2)?,
            level: r.get(3)?,
            since_ms: r.get::<_, i64>(4)? as u64,
            opened_ms: r.get::<_, i64>(5)? as u64,
            text: r.get(6)?,
            notified: r.get(7)?,
            last_notified_ms: r.get::<_, i64>(8)? as u64,
            acknowledged: r.get(9)?,
            alerted: r.get(10)?,
        })
    })?;
    for row in rows {
        loaded.alerts.push(row?);
    }
    Ok(())
}

/// Notifications not yet done, with the channels that delivered them, and the highest id
/// ever given.
fn load_outbox(db: &Connection, loaded: &mut Loaded) -> rusqlite::Result<()> {
    let mut q = db.prepare(
        "SELECT id, notification, delivered FROM outbox WHERE done_ms IS NULL ORDER BY id",
    )?;
    let rows = q.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (id, json, delivered) = row?;
        match serde_json::from_str::<Notification>(&json) {
            Ok(mut n) => {
                n.done_channels.extend(
                    delivered
                        .split(',')
                        .filter(|c| !c.is_empty())
                        .map(str::to_string),
                );
                loaded.outbox.push(n);
            }
            Err(e) => {
                tracing::error!(id, error = %e, "Unreadable notification in the outbox; skipped.")
            }
        }
    }
    loaded.last_notification_id = db
        .query_row("SELECT MAX(id) FROM outbox", [], |r| {
            r.get::<_, Option<i64>>(0)
        })?
        .unwrap_or(0) as u64;
    Ok(())
}

fn load_silences(db: &Connection, loaded: &mut Loaded) -> rusqlite::Result<()> {
    let mut q = db.prepare(
        "SELECT id, host, metric, start_ms, end_ms, author, comment FROM silences ORDER BY id",
    )?;
    let rows = q.query_map([], |r| {
        Ok(hb_rules::silence::Silence {
            id: r.get::<_, i64>(0)? as u64,
            host: r.get(1)?,
            metric: r.get(2)?,
            start_ms: r.get::<_, i64>(3)? as u64,
            end_ms: r.get::<_, i64>(4)? as u64,
            author: r.get(5)?,
            comment: r.get(6)?,
        })
    })?;
    for row in rows {
        loaded.silences.push(row?);
    }
    Ok(())
}

fn load_settings(db: &Connection, loaded: &mut Loaded) -> rusqlite::Result<()> {
    let mut q = db.prepare("SELECT kind, name, value FROM settings ORDER BY kind, name")?;
    let rows = q.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (kind, name, value) = row?;
        if let Ok(value) = serde_json::from_str(&value) {
            loaded.settings.push((kind, name, value));
        }
    }
    Ok(())
}

fn load_latest(db: &Connection, loaded: &mut Loaded) -> rusqlite::Result<()> {
    // The newest row of each (host, plugin): the index makes MAX(id) per group cheap.
    let mut q = db.prepare(
        "SELECT host, plugin, at_ms, data FROM samples WHERE id IN
             (SELECT MAX(id) FROM samples GROUP BY host, plugin)",
    )?;
    let rows = q.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    for row in rows {
        let (host, plugin, at_ms, data) = row?;
        if let Ok(data) = serde_json::from_str(&data) {
            loaded
                .latest
                .push((host, plugin, u64::try_from(at_ms).unwrap_or(0), data));
        }
    }
    Ok(())
}

/// The writer thread and the channel to it.
#[derive(Debug)]
pub struct Writer {
    tx: mpsc::SyncSender<Write>,
    thread: std::thread::JoinHandle<()>,
    /// Bulk writes dropped because the writer was [`WRITER_QUEUE`] behind.
    pub dropped: Arc<AtomicU64>,
    /// Batches given up after every retry failed.
    pub failed: Arc<AtomicU64>,
}

impl Writer {
    /// Queues a write; it is committed with the next batch. A bulk write (last-seen row,
    /// sample, RTT) is dropped if the writer is far behind; any other waits for room.
    pub fn send(&self, write: Write) {
        if write.is_bulk() {
            if let Err(mpsc::TrySendError::Full(_)) = self.tx.try_send(write) {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            // The thread ends only when this Writer is closed; a panic there aborts.
            let _ = self.tx.send(write);
        }
    }

    /// Queues a bulk write if there is room; false if not (not counted as dropped: the
    /// caller keeps what it was for, to try again later).
    pub fn offer(&self, write: Write) -> bool {
        self.tx.try_send(write).is_ok()
    }

    /// Queues a write that must not be dropped (a host row carrying a state change).
    pub fn send_always(&self, write: Write) {
        let _ = self.tx.send(write);
    }

    /// Commits what is queued and waits for the thread (on shutdown).
    pub fn close(self) {
        drop(self.tx);
        let _ = self.thread.join();
    }
}

/// Starts the writer thread; writes are committed in batches. Notifications in a batch are
/// passed to `committed` once the batch is committed (or, if the commit fails, anyway: a page
/// without durability beats none). It ends when the [`Writer`] is closed, after a last commit.
pub fn spawn_writer(
    db: Connection,
    retention: Retention,
    committed: impl Fn(Vec<Notification>) + Send + 'static,
) -> Writer {
    let (tx, rx) = mpsc::sync_channel::<Write>(WRITER_QUEUE);
    let failed = Arc::new(AtomicU64::new(0));
    let failures = Arc::clone(&failed);
    let thread = std::thread::spawn(move || {
        let mut db = db;
        loop {
            let Ok(first) = rx.recv() else { return };
            let mut urgent = first.is_urgent();
            let mut batch = vec![first];
            let deadline = Instant::now() + BATCH_WINDOW;
            loop {
                // Take what is queued; wait for more only while nothing is urgent.
                let next = if urgent {
                    rx.try_recv().ok()
                } else {
                    deadline
                        .checked_duration_since(Instant::now())
                        .and_then(|left| rx.recv_timeout(left).ok())
                };
                let Some(w) = next else { break };
                urgent |= w.is_urgent();
                batch.push(w);
            }
            let mut attempt = commit(&mut db, &batch, retention);
            for pause in COMMIT_RETRIES {
                let Err(e) = &attempt else { break };
                tracing::warn!(error = %e, writes = batch.len(), "Store write failed; retrying.");
                std::thread::sleep(*pause);
                attempt = commit(&mut db, &batch, retention);
            }
            let stored = attempt.is_ok();
            if let Err(e) = attempt {
                // Notifications still go out (below): a page without durability beats none.
                failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, writes = batch.len(), "Store write failed for good; this batch is lost.");
            }
            let mut notifications: Vec<Notification> = Vec::new();
            for w in batch {
                match w {
                    Write::Notify(n) => notifications.push(n),
                    Write::Committed(then) => (then.0)(stored),
                    _ => {}
                }
            }
            if !notifications.is_empty() {
                committed(notifications);
            }
        }
    });
    Writer {
        tx,
        thread,
        dropped: Arc::new(AtomicU64::new(0)),
        failed,
    }
}

/// The checks, hosts and (host, plugin) pairs a batch added history rows for: the ones
/// retention trims.
#[derive(Default)]
struct Touched<'a> {
    sampled: HashSet<(&'a str, &'a str)>,
    pinged: HashSet<&'a str>,
    timed: HashSet<&'a str>,
}

fn commit(db: &mut Connection, batch: &[Write], retention: Retention) -> rusqlite::Result<()> {
    let tx = db.transaction()?;
    let touched = write_batch(&tx, batch)?;
    trim_history(&tx, &touched, retention)?;
    tx.execute(
        "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?1",
        [i64::from(retention.events.max(1))],
    )?;
    tx.execute(
        "DELETE FROM outbox WHERE done_ms IS NOT NULL AND id <=
             (SELECT id FROM outbox WHERE done_ms IS NOT NULL ORDER BY id DESC LIMIT 1 OFFSET ?1)",
        [OUTBOX_DONE_RETAINED],
    )?;
    tx.commit()
}

/// Writes a batch's rows, the frequent kinds through statements prepared once a batch.
fn write_batch<'a>(
    tx: &rusqlite::Transaction<'_>,
    batch: &'a [Write],
) -> rusqlite::Result<Touched<'a>> {
    let mut host = tx.prepare_cached(
        "INSERT INTO hosts (name, last_seen_ms, address, interval, version, rtt_ms, signed,
                            state, state_since_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (name) DO UPDATE SET last_seen_ms = ?2, address = ?3, interval = ?4,
             version = ?5, rtt_ms = ?6, signed = ?7, state = ?8, state_since_ms = ?9",
    )?;
    let mut event =
        tx.prepare_cached("INSERT INTO events (at_ms, host, text) VALUES (?1, ?2, ?3)")?;
    let mut sample = tx.prepare_cached(
        "INSERT INTO samples (host, plugin, at_ms, data) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut rtt = tx.prepare_cached("INSERT INTO rtt (host, at_ms, rtt_ms) VALUES (?1, ?2, ?3)")?;
    let mut alert = tx.prepare_cached(
        "INSERT OR REPLACE INTO alerts (key, host, metric, level, since_ms, opened_ms, text,
                                        notified, last_notified_ms, acknowledged, alerted)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    let mut alert_ended = tx.prepare_cached("DELETE FROM alerts WHERE key = ?1")?;
    let mut notify = tx.prepare_cached(
        "INSERT OR IGNORE INTO outbox (id, created_ms, notification) VALUES (?1, ?2, ?3)",
    )?;
    let mut done = tx.prepare_cached(
        "UPDATE outbox SET done_ms = ?2, outcome = ?3 WHERE id = ?1 AND done_ms IS NULL",
    )?;
    // A host heartbeating often appears many times in a batch: only its last row counts.
    let mut last_row: HashMap<&str, usize> = HashMap::new();
    for (i, write) in batch.iter().enumerate() {
        if let Write::Host(h) = write {
            last_row.insert(h.name.as_str(), i);
        }
    }
    let mut touched = Touched::default();
    for (i, write) in batch.iter().enumerate() {
        match write {
            Write::Host(h) if last_row.get(h.name.as_str()) != Some(&i) => {}
            Write::Host(h) => {
                host.execute(params![
                    h.name,
                    h.last_seen_ms as i64,
                    h.address,
                    h.interval,
                    h.version,
                    h.rtt_ms,
                    h.signed,
                    h.state,
                    h.state_since_ms as i64
                ])?;
            }
            Write::Event { at_ms, host, text } => {
                event.execute(params![*at_ms as i64, host, text])?;
            }
            Write::Sample {
                host,
                plugin,
                at_ms,
                data,
            } => {
                sample.execute(params![host, plugin, *at_ms as i64, data])?;
                touched.sampled.insert((host, plugin));
            }
            Write::Rtt {
                host,
                at_ms,
                rtt_ms,
            } => {
                rtt.execute(params![host, *at_ms as i64, rtt_ms])?;
                touched.timed.insert(host);
            }
            Write::Alert(a) => {
                alert.execute(params![
                    a.key,
                    a.host,
                    a.metric,
                    a.level,
                    a.since_ms as i64,
                    a.opened_ms as i64,
                    a.text,
                    a.notified,
                    a.last_notified_ms as i64,
                    a.acknowledged,
                    a.alerted
                ])?;
            }
            Write::AlertEnded { key } => {
                alert_ended.execute([key])?;
            }
            Write::Notify(n) => {
                let json = serde_json::to_string(n).unwrap_or_default();
                notify.execute(params![n.id as i64, n.created_ms as i64, json])?;
            }
            Write::Done { id, at_ms, outcome } => {
                done.execute(params![*id as i64, *at_ms as i64, outcome])?;
            }
            Write::Committed(_) => {}
            Write::Ping { check, .. } => {
                write_rare(tx, write)?;
                touched.pinged.insert(check.as_str());
            }
            _ => write_rare(tx, write)?,
        }
    }
    Ok(touched)
}

/// The writes that come a few a minute at most: deliveries, silences, pings, settings,
/// dropped hosts.
fn write_rare(tx: &rusqlite::Transaction<'_>, write: &Write) -> rusqlite::Result<()> {
    match write {
        Write::Delivered { id, channel } => {
            tx.prepare_cached(
                "UPDATE outbox SET delivered = delivered || ',' || ?2
                 WHERE id = ?1 AND done_ms IS NULL",
            )?
            .execute(params![*id as i64, channel])?;
        }
        Write::Silence(s) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO silences (id, host, metric, start_ms, end_ms, author, comment)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                s.id as i64,
                s.host,
                s.metric,
                s.start_ms as i64,
                s.end_ms as i64,
                s.author,
                s.comment
            ])?;
        }
        Write::Ping { check, ping } => {
            tx.prepare_cached(
                "INSERT INTO pings (check_name, at_ms, kind, exit, rid, source, method, user_agent, body, duration_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                check,
                ping.at_ms as i64,
                ping.kind,
                ping.exit,
                ping.rid,
                ping.source,
                ping.method,
                ping.user_agent,
                ping.body,
                ping.duration_ms.map(|d| d as i64)
            ])?;
        }
        Write::Setting { kind, name, value } => match value {
            Some(value) => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO settings (kind, name, value) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![kind, name, value])?;
            }
            None => {
                tx.prepare_cached("DELETE FROM settings WHERE kind = ?1 AND name = ?2")?
                    .execute(params![kind, name])?;
            }
        },
        Write::Unsilence { id } => {
            tx.prepare_cached("DELETE FROM silences WHERE id = ?1")?
                .execute([*id as i64])?;
        }
        Write::Drop { host } => {
            for table in [
                "DELETE FROM hosts WHERE name = ?1",
                "DELETE FROM samples WHERE host = ?1",
                "DELETE FROM rtt WHERE host = ?1",
                "DELETE FROM alerts WHERE host = ?1",
                "DELETE FROM pings WHERE check_name = ?1",
            ] {
                tx.prepare_cached(table)?.execute([host])?;
            }
        }
        // The frequent kinds are write_batch's.
        Write::Host(_)
        | Write::Event { .. }
        | Write::Sample { .. }
        | Write::Rtt { .. }
        | Write::Alert(_)
        | Write::AlertEnded { .. }
        | Write::Notify(_)
        | Write::Done { .. }
        | Write::Committed(_) => {}
    }
    Ok(())
}

/// Retention: the newest `samples` rows per (host, plugin) and per host for RTT, and
/// `pings` per check, for what the batch added to.
fn trim_history(
    tx: &rusqlite::Transaction<'_>,
    touched: &Touched<'_>,
    retention: Retention,
) -> rusqlite::Result<()> {
    let keep = i64::from(retention.samples.max(1));
    let mut trim_samples = tx.prepare_cached(
        "DELETE FROM samples WHERE host = ?1 AND plugin = ?2 AND id <=
             (SELECT id FROM samples WHERE host = ?1 AND plugin = ?2
              ORDER BY id DESC LIMIT 1 OFFSET ?3)",
    )?;
    for (h, p) in &touched.sampled {
        trim_samples.execute(params![h, p, keep])?;
    }
    let mut trim_rtt = tx.prepare_cached(
        "DELETE FROM rtt WHERE host = ?1 AND id <=
             (SELECT id FROM rtt WHERE host = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
    )?;
    for h in &touched.timed {
        trim_rtt.execute(params![h, keep])?;
    }
    let mut trim_pings = tx.prepare_cached(
        "DELETE FROM pings WHERE check_name = ?1 AND id <=
             (SELECT id FROM pings WHERE check_name = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
    )?;
    for c in &touched.pinged {
        trim_pings.execute(params![c, i64::from(retention.pings.max(1))])?;
    }
    Ok(())
}

/// A history query for the reader thread.
#[derive(Debug)]
pub enum Read {
    /// Newest samples of a plugin.
    Samples {
        /// Host.
        host: String,
        /// Plugin.
        plugin: String,
        /// At most.
        limit: u32,
    },
    /// Newest RTTs.
    Rtt {
        /// Host.
        host: String,
        /// At most.
        limit: u32,
    },
    /// Newest events.
    Events {
        /// Only this host's.
        host: Option<String>,
        /// At most.
        limit: u32,
    },
    /// Newest pings of a check.
    Pings {
        /// The check.
        check: String,
        /// At most.
        limit: u32,
    },
}

/// Largest `limit` a history query may ask for.
pub const MAX_READ: u32 = 1000;

type Reply = Box<dyn FnOnce(Answer) + Send>;

/// The reader thread: answers history queries from its own read-only connection, so a slow
/// disk delays only the query, never the engine.
#[derive(Debug)]
pub struct Reader {
    tx: mpsc::Sender<(Read, Reply)>,
}

impl Reader {
    /// Answers `read` on the reader thread; `reply` is called there with the answer.
    pub fn ask(&self, read: Read, reply: impl FnOnce(Answer) + Send + 'static) {
        if let Err(mpsc::SendError((_, reply))) = self.tx.send((read, Box::new(reply))) {
            reply(Answer::Error {
                message: "the store's reader is gone".into(),
            });
        }
    }
}

/// Starts the reader thread on the store at `path` (already opened, so migrated).
pub fn spawn_reader(path: &Path) -> Result<Reader, StoreError> {
    let name = path.display().to_string();
    let db = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Sqlite { path: name, source })?;
    let (tx, rx) = mpsc::channel::<(Read, Reply)>();
    std::thread::spawn(move || {
        while let Ok((read, reply)) = rx.recv() {
            let answer = answer(&db, read).unwrap_or_else(|e| Answer::Error {
                message: format!("store: {e}"),
            });
            reply(answer);
        }
    });
    Ok(Reader { tx })
}

fn answer(db: &Connection, read: Read) -> rusqlite::Result<Answer> {
    Ok(match read {
        Read::Samples {
            host,
            plugin,
            limit,
        } => {
            let mut q = db.prepare_cached(
                "SELECT at_ms, data FROM samples WHERE host = ?1 AND plugin = ?2
                 ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = q.query_map(params![host, plugin, limit.min(MAX_READ)], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut samples = Vec::new();
            for row in rows {
                let (at_ms, data) = row?;
                samples.push(Sample {
                    time_ms: at_ms as u64,
                    data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
                });
            }
            Answer::Samples { samples }
        }
        Read::Rtt { host, limit } => {
            let mut q = db.prepare_cached(
                "SELECT at_ms, rtt_ms FROM rtt WHERE host = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = q.query_map(params![host, limit.min(MAX_READ)], |r| {
                Ok(RttSample {
                    time_ms: r.get::<_, i64>(0)? as u64,
                    rtt_ms: r.get(1)?,
                })
            })?;
            Answer::Rtt {
                samples: rows.collect::<rusqlite::Result<_>>()?,
            }
        }
        Read::Events { host, limit } => {
            let mut q = db.prepare_cached(
                "SELECT at_ms, host, text FROM events WHERE ?1 IS NULL OR host = ?1
                 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = q.query_map(params![host, limit.min(MAX_READ)], |r| {
                Ok(EventSummary {
                    time_ms: r.get::<_, i64>(0)? as u64,
                    host: r.get(1)?,
                    msg: r.get(2)?,
                })
            })?;
            Answer::Messages {
                messages: rows.collect::<rusqlite::Result<_>>()?,
            }
        }
        Read::Pings { check, limit } => {
            let mut q = db.prepare_cached(
                "SELECT at_ms, kind, exit, rid, source, method, user_agent, body, duration_ms
                 FROM pings WHERE check_name = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = q.query_map(params![check, limit.min(MAX_READ)], |r| {
                Ok(hb_ipc::edge::PingRecord {
                    at_ms: r.get::<_, i64>(0)? as u64,
                    kind: r.get(1)?,
                    exit: r.get(2)?,
                    rid: r.get(3)?,
                    source: r.get(4)?,
                    method: r.get(5)?,
                    user_agent: r.get(6)?,
                    body: r.get(7)?,
                    duration_ms: r.get::<_, Option<i64>>(8)?.map(|d| d as u64),
                })
            })?;
            Answer::Pings {
                pings: rows.collect::<rusqlite::Result<_>>()?,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn ask(reader: &Reader, read: Read) -> Answer {
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
            Read::Samples {
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
            Read::Rtt {
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
}
