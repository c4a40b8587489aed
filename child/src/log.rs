//! Logging: one line per event on stderr, every line naming its program and pid.
//!
//! Children inherit the supervisor's stderr, so in daemon mode (stderr on the log file) and
//! under systemd (stderr to the journal) every process's lines end up in one place, in order,
//! each written with a single write(2).

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::registry::LookupSpan;

/// Installs the global subscriber. `verbosity` counts `-v` flags: 0 info, 1 debug, 2+ trace.
pub fn init(program: &'static str, verbosity: u8) {
    let level = max_level(verbosity);
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .event_format(LineFormat {
            program,
            pid: std::process::id(),
        })
        .try_init();
}

/// Installs a subscriber that sends each event to the local syslog (`/dev/log`), for
/// programs that detach without a log file (`hbc -d`).
pub fn init_syslog(program: &'static str, verbosity: u8) -> std::io::Result<()> {
    let socket = std::os::unix::net::UnixDatagram::unbound()?;
    socket.connect("/dev/log")?;
    let socket = std::sync::Arc::new(socket);
    let level = max_level(verbosity);
    let pid = std::process::id();
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(SyslogWriters {
            socket,
            program,
            pid,
        })
        .event_format(SyslogFormat)
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
    socket: std::sync::Arc<std::os::unix::net::UnixDatagram>,
    program: &'static str,
    pid: u32,
}

/// One datagram per event: `<PRI>program[pid]: message` (RFC 3164 without a timestamp,
/// which syslog daemons add).
struct SyslogLine {
    socket: std::sync::Arc<std::os::unix::net::UnixDatagram>,
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
        // Facility daemon (3); severities err 3, warning 4, info 6, debug 7.
        let severity = match *meta.level() {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            _ => 7,
        };
        self.make_line(severity)
    }
}

impl SyslogWriters {
    fn make_line(&self, severity: u8) -> SyslogLine {
        let line = format!("<{}>{}[{}]: ", 3 * 8 + severity, self.program, self.pid).into_bytes();
        SyslogLine {
            socket: std::sync::Arc::clone(&self.socket),
            line,
        }
    }
}

struct SyslogFormat;

impl<S, N> FormatEvent<S, N> for SyslogFormat
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
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

struct LineFormat {
    program: &'static str,
    pid: u32,
}

impl<S, N> FormatEvent<S, N> for LineFormat
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
        let level = *event.metadata().level();
        write!(
            writer,
            "{} {}[{}]: {:<5} ",
            Timestamp(std::time::SystemTime::now()),
            self.program,
            self.pid,
            level
        )?;
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
    fn timestamps_are_rfc3339_utc() {
        let t = |s| Timestamp(UNIX_EPOCH + Duration::from_millis(s)).to_string();
        assert_eq!(t(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(t(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(t(1_795_230_472_000), "2026-11-21T03:07:52.000Z");
    }
}
