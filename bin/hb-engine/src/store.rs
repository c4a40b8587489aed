//! The engine's durable state: SQLite in WAL mode in `state_dir`, written by one thread in
//! batches so message handling never waits on the disk.
//!
//! The schema is versioned (`PRAGMA user_version`); missing migrations are applied in one
//! transaction at start. A store newer than this binary is refused, never rewritten.
//!
//! What a `kill -9` of the engine can lose: the writes of the batch in flight (at most
//! [`BATCH_WINDOW`] of last-seen times and events). Committed batches survive, since WAL with
//! `synchronous=NORMAL` keeps every committed transaction across a process crash.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, params};

/// How long the writer gathers before it commits.
pub const BATCH_WINDOW: Duration = Duration::from_millis(200);

/// Schema, one entry per version: applying `MIGRATIONS[i]` takes the store from version i to
/// i + 1.
const MIGRATIONS: &[&str] = &["
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
"];

/// Events kept in the store; older ones are deleted as new ones come.
const EVENTS_RETAINED: i64 = 10_000;

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
}

/// A write for the writer thread.
#[derive(Debug)]
pub enum Write {
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
}

/// What the store held at start.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Every host.
    pub hosts: Vec<StoredHost>,
    /// The newest events, oldest first.
    pub events: Vec<(u64, String, String)>,
}

/// Opens (creating or migrating) the store.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    let name = path.display().to_string();
    let sql = |source| StoreError::Sqlite {
        path: name.clone(),
        source,
    };
    let mut db = Connection::open(path).map_err(sql)?;
    db.pragma_update(None, "journal_mode", "WAL").map_err(sql)?;
    db.pragma_update(None, "synchronous", "NORMAL")
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
        for migration in &MIGRATIONS[found as usize..] {
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
    let mut q = db.prepare(
        "SELECT name, last_seen_ms, address, interval, version, rtt_ms, signed FROM hosts",
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
        })
    })?;
    for row in rows {
        loaded.hosts.push(row?);
    }
    let mut q = db.prepare("SELECT at_ms, host, text FROM events ORDER BY id DESC LIMIT ?1")?;
    let rows = q.query_map([events as i64], |r| {
        Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?))
    })?;
    for row in rows {
        loaded.events.push(row?);
    }
    loaded.events.reverse();
    Ok(loaded)
}

/// The writer thread and the channel to it.
#[derive(Debug)]
pub struct Writer {
    tx: mpsc::Sender<Write>,
    thread: std::thread::JoinHandle<()>,
}

impl Writer {
    /// Queues a write; it is committed with the next batch.
    pub fn send(&self, write: Write) {
        // The thread ends only when this Writer is closed; a panic there aborts the process.
        let _ = self.tx.send(write);
    }

    /// Commits what is queued and waits for the thread (on shutdown).
    pub fn close(self) {
        drop(self.tx);
        let _ = self.thread.join();
    }
}

/// Starts the writer thread; writes are committed in batches. It ends when the [`Writer`]
/// is closed, after a last commit.
pub fn spawn_writer(db: Connection) -> Writer {
    let (tx, rx) = mpsc::channel::<Write>();
    let thread = std::thread::spawn(move || {
        let mut db = db;
        loop {
            let Ok(first) = rx.recv() else { return };
            let mut batch = vec![first];
            let deadline = std::time::Instant::now() + BATCH_WINDOW;
            while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
                match rx.recv_timeout(left) {
                    Ok(w) => batch.push(w),
                    Err(_) => break,
                }
            }
            if let Err(e) = commit(&mut db, &batch) {
                tracing::error!(error = %e, writes = batch.len(), "Store write failed; this batch is lost.");
            }
        }
    });
    Writer { tx, thread }
}

fn commit(db: &mut Connection, batch: &[Write]) -> rusqlite::Result<()> {
    let tx = db.transaction()?;
    {
        let mut host = tx.prepare_cached(
            "INSERT INTO hosts (name, last_seen_ms, address, interval, version, rtt_ms, signed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (name) DO UPDATE SET last_seen_ms = ?2, address = ?3, interval = ?4,
                 version = ?5, rtt_ms = ?6, signed = ?7",
        )?;
        let mut event =
            tx.prepare_cached("INSERT INTO events (at_ms, host, text) VALUES (?1, ?2, ?3)")?;
        // A host heartbeating often appears many times in a batch: only its last row counts.
        let mut written = std::collections::HashSet::new();
        for write in batch.iter().rev() {
            match write {
                Write::Host(h) if !written.insert(h.name.as_str()) => {}
                Write::Host(h) => {
                    host.execute(params![
                        h.name,
                        h.last_seen_ms as i64,
                        h.address,
                        h.interval,
                        h.version,
                        h.rtt_ms,
                        h.signed
                    ])?;
                }
                Write::Event { at_ms, host, text } => {
                    event.execute(params![*at_ms as i64, host, text])?;
                }
            }
        }
    }
    tx.execute(
        "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?1",
        [EVENTS_RETAINED],
    )?;
    tx.commit()
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
        }
    }

    #[test]
    fn survives_a_reopen_and_keeps_the_newest_host_row() {
        let path = scratch("reopen");
        let mut db = open(&path).unwrap();
        commit(
            &mut db,
            &[
                Write::Host(host("a", 1)),
                Write::Host(host("a", 2)),
                Write::Event {
                    at_ms: 3,
                    host: "a".into(),
                    text: "a booted".into(),
                },
            ],
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
            e.contains("schema version 99, newer than this hb-engine's 1"),
            "{e}"
        );
        let db = Connection::open(&path).unwrap();
        let v: i64 = db
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, 99);
    }

    #[test]
    fn the_writer_batches_and_commits() {
        let path = scratch("writer");
        let writer = spawn_writer(open(&path).unwrap());
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
}
