//! The writer thread: batches of writes committed in one transaction, retried, trimmed to
//! the retention.

use super::*;

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

pub(super) fn commit(
    db: &mut Connection,
    batch: &[Write],
    retention: Retention,
) -> rusqlite::Result<()> {
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
