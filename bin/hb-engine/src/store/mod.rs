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

mod reader;
#[cfg(test)]
mod tests;
mod writer;

pub use reader::{MAX_READ, Reader, spawn_reader};
pub use writer::{Writer, spawn_writer};

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
                tracing::error!(id, error = %e, "Unreadable notification in the outbox; skipped.");
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
