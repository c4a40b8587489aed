//! The message journal: one JSON line per received message (and per rejected datagram), in
//! `journal_dir/journal_file`, rotated by size into `.1` ... `.N` like Python's
//! RotatingFileHandler (the original hbd's layout).
//!
//! Writes go through a buffer that the engine flushes whenever it has drained what arrived,
//! so a burst costs one write per burst and an idle journal is never more than one message
//! behind. A failing disk is logged (at most once a minute) and counted; the engine goes on.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use hb_ipc::config::JournalConfig;

/// The open journal.
pub struct Journal {
    path: PathBuf,
    max_size: u64,
    max_backups: u32,
    out: Option<BufWriter<File>>,
    size: u64,
    /// Entries that could not be written.
    pub failed: u64,
    last_complaint: Option<Instant>,
    /// The line being built, kept to reuse its allocation.
    line: Vec<u8>,
    /// The last `datetime` written and its time: most lines of a burst share their ms.
    datetime: (u64, String),
}

impl Journal {
    /// Opens (appending) the journal, or returns `None` when it is disabled.
    pub fn open(config: &JournalConfig) -> Option<Journal> {
        if !config.enabled {
            return None;
        }
        let mut journal = Journal {
            path: config.dir.join(&config.file),
            max_size: config.max_size.max(1024),
            max_backups: config.max_backups,
            out: None,
            size: 0,
            failed: 0,
            last_complaint: None,
            line: Vec::with_capacity(1024),
            datetime: (u64::MAX, String::new()),
        };
        journal.reopen();
        Some(journal)
    }

    fn reopen(&mut self) {
        let opened = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path);
        match opened {
            Ok(file) => {
                self.size = file.metadata().map_or(0, |m| m.len());
                self.out = Some(BufWriter::with_capacity(64 * 1024, file));
            }
            Err(e) => {
                self.out = None;
                self.complain(&format!("cannot open {}: {e}", self.path.display()));
            }
        }
    }

    /// Journals a received message: `message` is the validated message's JSON text.
    ///
    /// Lines are written by hand, not through a JSON tree (that cost a sixth of the
    /// engine's time at a fleet's rate); keys stay in the order a JSON object of them
    /// would print them.
    pub fn received(&mut self, at_ms: u64, source: std::net::SocketAddr, message: &str) {
        self.begin(at_ms);
        self.line.extend_from_slice(b",\"message\":");
        self.line.extend_from_slice(message.as_bytes());
        self.end(at_ms, source);
    }

    /// Journals a rejected datagram with its reason.
    pub fn rejected(
        &mut self,
        at_ms: u64,
        source: std::net::SocketAddr,
        reason: &str,
        detail: &str,
    ) {
        self.begin(at_ms);
        self.line.extend_from_slice(b",\"detail\":");
        push_string(&mut self.line, detail);
        self.line.extend_from_slice(b",\"rejected\":");
        push_string(&mut self.line, reason);
        self.end(at_ms, source);
    }

    fn begin(&mut self, at_ms: u64) {
        if self.datetime.0 != at_ms {
            let time = SystemTime::UNIX_EPOCH + Duration::from_millis(at_ms);
            self.datetime = (at_ms, hb_log::Timestamp(time).to_string());
        }
        self.line.clear();
        self.line.extend_from_slice(b"{\"datetime\":\"");
        self.line.extend_from_slice(self.datetime.1.as_bytes());
        self.line.push(b'"');
    }

    fn end(&mut self, at_ms: u64, source: std::net::SocketAddr) {
        use std::io::Write as _;
        // Writing to a Vec cannot fail.
        let _ = write!(
            self.line,
            ",\"source_ip\":\"{}\",\"source_port\":{},\"timestamp\":",
            source.ip(),
            source.port()
        );
        let _ = serde_json::to_writer(&mut self.line, &(at_ms as f64 / 1000.0));
        self.line.extend_from_slice(b"}\n");
        self.write();
    }

    fn write(&mut self) {
        let len = self.line.len() as u64;
        if self.size > 0 && self.size + len > self.max_size {
            self.rotate();
        }
        if self.out.is_none() {
            self.reopen();
        }
        let Some(out) = self.out.as_mut() else {
            self.failed += 1;
            return;
        };
        match out.write_all(&self.line) {
            Ok(()) => self.size += len,
            Err(e) => {
                self.failed += 1;
                self.out = None;
                self.complain(&format!("cannot write {}: {e}", self.path.display()));
            }
        }
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) {
        if let Some(out) = self.out.as_mut()
            && let Err(e) = out.flush()
        {
            self.out = None;
            self.complain(&format!("cannot write {}: {e}", self.path.display()));
        }
    }

    /// `file` -> `file.1` -> ... -> `file.N`; the oldest goes.
    fn rotate(&mut self) {
        self.flush();
        self.out = None;
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        if self.max_backups == 0 {
            let _ = std::fs::remove_file(&self.path);
        } else {
            let _ = std::fs::remove_file(numbered(self.max_backups));
            for n in (1..self.max_backups).rev() {
                let _ = std::fs::rename(numbered(n), numbered(n + 1));
            }
            if let Err(e) = std::fs::rename(&self.path, numbered(1)) {
                self.complain(&format!("cannot rotate {}: {e}", self.path.display()));
            }
        }
        self.reopen();
    }

    fn complain(&mut self, what: &str) {
        let quiet = self
            .last_complaint
            .is_some_and(|t| t.elapsed() < Duration::from_secs(60));
        if !quiet {
            self.last_complaint = Some(Instant::now());
            tracing::error!(failed = self.failed, "Journal: {what}.");
        }
    }

    /// The journal file.
    #[cfg(test)]
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// Appends `text` as a JSON string.
fn push_string(line: &mut Vec<u8>, text: &str) {
    // A str always serializes.
    let _ = serde_json::to_writer(line, text);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::path::Path;

    fn config(dir: &Path, max_size: u64, max_backups: u32) -> JournalConfig {
        JournalConfig {
            enabled: true,
            dir: dir.to_path_buf(),
            file: "messages.journal".into(),
            max_size,
            max_backups,
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hb-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn lines_have_the_documented_fields() {
        let dir = scratch("fields");
        let mut j = Journal::open(&config(&dir, 1 << 20, 3)).unwrap();
        let src = "192.0.2.7:50003".parse().unwrap();
        j.received(
            1_711_234_567_123,
            src,
            &json!({"ID": "HTB", "name": "webserver1", "interval": 10}).to_string(),
        );
        j.rejected(
            1_711_234_568_000,
            src,
            "zlib_bomb",
            "decompresses past the limit",
        );
        j.flush();
        let text = std::fs::read_to_string(j.path()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["timestamp"], 1_711_234_567.123);
        assert_eq!(lines[0]["datetime"], "2024-03-23T22:56:07.123Z");
        assert_eq!(lines[0]["source_ip"], "192.0.2.7");
        assert_eq!(lines[0]["source_port"], 50003);
        assert_eq!(lines[0]["message"]["name"], "webserver1");
        assert_eq!(lines[1]["rejected"], "zlib_bomb");
        // Byte for byte what a JSON object of the same fields prints.
        for (line, value) in text.lines().zip(&lines) {
            assert_eq!(line, value.to_string());
        }
        // Hostile text in a rejection's detail stays inside its string.
        j.rejected(
            3,
            "[2001:db8::1]:7".parse().unwrap(),
            "bad_json",
            "\"}\n{\u{1}",
        );
        j.flush();
        let text = std::fs::read_to_string(j.path()).unwrap();
        let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last["detail"], "\"}\n{\u{1}");
        assert_eq!(last["source_ip"], "2001:db8::1");
    }

    #[test]
    fn rotates_by_size_keeping_backups() {
        let dir = scratch("rotate");
        let mut j = Journal::open(&config(&dir, 2048, 2)).unwrap();
        let src = "192.0.2.7:1".parse().unwrap();
        for i in 0..200 {
            j.received(
                i,
                src,
                &json!({"ID": "HTB", "name": format!("host{i}")}).to_string(),
            );
        }
        j.flush();
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let mut names = names;
        names.sort();
        assert_eq!(
            names,
            [
                "messages.journal",
                "messages.journal.1",
                "messages.journal.2"
            ]
        );
        for name in &names {
            let len = std::fs::metadata(dir.join(name)).unwrap().len();
            assert!(len <= 2048, "{name}: {len}");
        }
        let newest = std::fs::read_to_string(dir.join("messages.journal")).unwrap();
        assert!(newest.contains("host199"));
        let older = std::fs::read_to_string(dir.join("messages.journal.1")).unwrap();
        assert!(!older.contains("host199"));
    }

    #[test]
    fn disabled_and_unwritable_journals_do_not_stop_the_engine() {
        let dir = scratch("disabled");
        let mut off = config(&dir, 1024, 1);
        off.enabled = false;
        assert!(Journal::open(&off).is_none());
        let mut j = Journal::open(&config(&dir.join("missing/dir"), 1024, 1)).unwrap();
        j.received(1, "192.0.2.7:1".parse().unwrap(), "{}");
        j.flush();
        assert_eq!(j.failed, 1);
    }
}
