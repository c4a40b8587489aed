//! The reader thread: history queries (samples, RTT, events, pings) on a connection of
//! its own, so a long read never holds up the writer. It takes the history queries as the
//! web sends them (`Query::Samples`, `Rtt`, `Events`, `Pings`); any other is refused.

use hb_ipc::edge::Query;

use super::*;

/// Largest `limit` a history query may ask for.
pub const MAX_READ: u32 = 1000;

type Reply = Box<dyn FnOnce(Answer) + Send>;

/// The reader thread: answers history queries from its own read-only connection, so a slow
/// disk delays only the query, never the engine.
#[derive(Debug)]
pub struct Reader {
    tx: mpsc::Sender<(Query, Reply)>,
}

impl Reader {
    /// Answers `read` on the reader thread; `reply` is called there with the answer.
    pub fn ask(&self, read: Query, reply: impl FnOnce(Answer) + Send + 'static) {
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
    let (tx, rx) = mpsc::channel::<(Query, Reply)>();
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

fn answer(db: &Connection, read: Query) -> rusqlite::Result<Answer> {
    Ok(match read {
        Query::Samples {
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
        Query::Rtt { host, limit } => {
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
        Query::Events { host, limit } => {
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
        Query::Pings { check, limit } => {
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
        _ => Answer::Error {
            message: "not a history query".into(),
        },
    })
}
