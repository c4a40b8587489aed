//! Logging for every hb program: one line per event on stderr
//! (`<RFC 3339 time> program[pid]: LEVEL message`), or one datagram per event to the local
//! syslog (`<PRI>program[pid]: message`, for `hbc -d`).
//!
//! The server's children inherit the supervisor's stderr, so in daemon mode (stderr on the
//! log file) and under systemd (stderr to the journal) every process's lines end up in one
//! place, in order, each written with a single write(2). A crate of its own, with nothing
//! but std and tracing, because hbc shares it and must build wherever its hosts run.

use std::fmt;
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::registry::LookupSpan;

/// The local syslog daemon's socket on the system hbc was built for.
pub const SYSLOG_SOCKET: &str = syslog_socket(std::env::consts::OS);

/// Where each system's syslogd listens: `/dev/log` on Linux and OpenBSD, `/var/run/log` on
/// FreeBSD and NetBSD, `/var/run/syslog` on macOS. Any other system gets `/dev/log`, the most
/// common one.
pub const fn syslog_socket(os: &str) -> &'static str {
    match os.as_bytes() {
        b"freebsd" | b"netbsd" | b"dragonfly" => "/var/run/log",
        b"macos" | b"ios" => "/var/run/syslog",
        _ => "/dev/log",
    }
}

/// Installs the global subscriber. `verbosity` counts `-v` flags: 0 info, 1 debug, 2+ trace.
pub fn init(program: &'static str, verbosity: u8) {
    let _ = tracing_subscriber::fmt()
        .with_max_level(max_level(verbosity))
        .with_writer(std::io::stderr)
        .event_format(Format {
            program: Some(program),
        })
        .try_init();
}

/// Installs a subscriber that sends each event to the local syslog ([`SYSLOG_SOCKET`]).
/// The pid in each line is read when the line is written, so a subscriber installed before
/// detaching names the daemon, not the parent that exited.
pub fn init_syslog(program: &'static str, verbosity: u8) -> std::io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    socket.connect(SYSLOG_SOCKET)?;
    let _ = tracing_subscriber::fmt()
        .with_max_level(max_level(verbosity))
        .with_writer(SyslogWriters {
            socket: Arc::new(socket),
            program,
        })
        .event_format(Format { program: None })
        .try_init();
    Ok(())
}

/// `-v` count to the most verbose level logged.
fn max_level(verbosity: u8) -> Level {
    match verbosity {
        0 => Level::INFO,
        1 => Level::DEBUG,
        _ => Level::TRACE,
    }
}

struct SyslogWriters {
    socket: Arc<UnixDatagram>,
    program: &'static str,
}

/// One datagram per event: `<PRI>program[pid]: message` (RFC 3164 without a timestamp, which
/// syslog daemons add).
struct SyslogLine {
    socket: Arc<UnixDatagram>,
    line: Vec<u8>,
}

impl std::io::Write for SyslogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine {
    fn drop(&mut self) {
        while self.line.last() == Some(&b'\n') {
            self.line.pop();
        }
        let _ = self.socket.send(&self.line);
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for SyslogWriters {
    type Writer = SyslogLine;

    fn make_writer(&'a self) -> SyslogLine {
        self.make_line(6)
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> SyslogLine {
        self.make_line(severity(*meta.level()))
    }
}

/// Syslog severity of a level: err 3, warning 4, info 6, debug 7.
fn severity(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// The start of a syslog datagram: facility daemon (3).
fn syslog_prefix(program: &str, severity: u8, pid: u32) -> String {
    format!("<{}>{program}[{pid}]: ", 3 * 8 + severity)
}

impl SyslogWriters {
    fn make_line(&self, severity: u8) -> SyslogLine {
        SyslogLine {
            socket: Arc::clone(&self.socket),
            line: syslog_prefix(self.program, severity, std::process::id()).into_bytes(),
        }
    }
}

/// One event as a line: with `program`, led by the time, program, pid and level (stderr);
/// without, the message alone (a syslog datagram, whose writer puts its own head on).
struct Format {
    program: Option<&'static str>,
}

impl<S, N> FormatEvent<S, N> for Format
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if let Some(program) = self.program {
            write!(
                writer,
                "{} {program}[{}]: {:<5} ",
                Timestamp(std::time::SystemTime::now()),
                std::process::id(),
                event.metadata().level()
            )?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// RFC 3339 UTC with milliseconds, computed without time zone files (chrooted children have
/// none).
pub struct Timestamp(pub std::time::SystemTime);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let since = self
            .0
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let secs = since.as_secs();
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (y, m, d) = civil_from_days(days as i64);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
            since.subsec_millis()
        )
    }
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn each_system_has_its_syslog_socket() {
        assert_eq!(syslog_socket("linux"), "/dev/log");
        assert_eq!(syslog_socket("android"), "/dev/log");
        assert_eq!(syslog_socket("freebsd"), "/var/run/log");
        assert_eq!(syslog_socket("netbsd"), "/var/run/log");
        assert_eq!(syslog_socket("openbsd"), "/dev/log");
        assert_eq!(syslog_socket("macos"), "/var/run/syslog");
        // The one compiled in is the one for this build's system.
        #[cfg(target_os = "linux")]
        assert_eq!(SYSLOG_SOCKET, "/dev/log");
        #[cfg(target_os = "freebsd")]
        assert_eq!(SYSLOG_SOCKET, "/var/run/log");
        #[cfg(target_os = "macos")]
        assert_eq!(SYSLOG_SOCKET, "/var/run/syslog");
    }

    #[test]
    fn syslog_datagrams_and_lines_keep_their_format() {
        assert_eq!(
            syslog_prefix("hbc", severity(Level::ERROR), 42),
            "<27>hbc[42]: "
        );
        assert_eq!(
            syslog_prefix("hbc", severity(Level::WARN), 42),
            "<28>hbc[42]: "
        );
        assert_eq!(
            syslog_prefix("hbc", severity(Level::INFO), 7),
            "<30>hbc[7]: "
        );
        assert_eq!(
            syslog_prefix("hbc", severity(Level::DEBUG), 7),
            "<31>hbc[7]: "
        );
        let t = |s| Timestamp(UNIX_EPOCH + Duration::from_millis(s)).to_string();
        assert_eq!(t(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(t(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(t(1_795_230_472_000), "2026-11-21T03:07:52.000Z");
    }

    #[test]
    fn syslog_datagrams_reach_a_socket() {
        let dir = std::env::temp_dir().join(format!("hb-log-syslog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("log");
        let server = UnixDatagram::bind(&path).expect("bind");
        let client = UnixDatagram::unbound().expect("socket");
        client.connect(&path).expect("connect");
        let writers = SyslogWriters {
            socket: Arc::new(client),
            program: "hbc",
        };
        {
            use std::io::Write;
            let mut line = writers.make_line(4);
            line.write_all(b"Server asked for plugin data.\n")
                .expect("write");
        }
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).expect("recv");
        assert_eq!(
            std::str::from_utf8(&buf[..n]).expect("utf8"),
            format!(
                "<28>hbc[{}]: Server asked for plugin data.",
                std::process::id()
            )
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
