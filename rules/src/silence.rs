//! Silences: which alerts may not notify now. Ad-hoc silences (a host and metric pattern,
//! from and until, who and why) and recurring maintenance windows at wall-clock times in a
//! named time zone, correct across daylight saving changes.
//!
//! A silenced alert is still evaluated and shown; the engine notifies it when the silence
//! ends if it is still active, and a recovery always goes to whoever got the alert.

use jiff::civil::{Date, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, ToSpan};
use serde_json::Value;

use crate::{RuleError, err};

/// `*` matches any run of characters, `?` one; everything else itself (case matters: host
/// names are lower case).
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Iterative matching with one backtrack point: linear in practice, no recursion.
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// An ad-hoc silence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Silence {
    /// Unique id.
    pub id: u64,
    /// Host pattern.
    pub host: String,
    /// Metric pattern (`down`, `rtt`, `cpu_monitor.cpu_percent`, `disk_monitor.*`).
    pub metric: String,
    /// From, Unix ms.
    pub start_ms: u64,
    /// Until (excluded), Unix ms.
    pub end_ms: u64,
    /// Who made it.
    pub author: String,
    /// Why.
    pub comment: String,
}

impl Silence {
    /// Whether it silences `metric` of `host` at `now`.
    pub fn silences(&self, host: &str, metric: &str, now: u64) -> bool {
        self.start_ms <= now
            && now < self.end_ms
            && glob(&self.host, host)
            && glob(&self.metric, metric)
    }
}

/// A recurring maintenance window from the configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    /// Its name, for events.
    pub name: String,
    hosts: Vec<String>,
    metrics: Vec<String>,
    /// Days it starts on; empty: every day.
    days: Vec<Weekday>,
    start: (i8, i8),
    minutes: i64,
    tz: TimeZone,
}

const WINDOW_KEYS: &[&str] = &[
    "name", "hosts", "metrics", "days", "start", "duration", "timezone",
];

fn strings(v: Option<&Value>, path: &str, default: &str) -> Result<Vec<String>, RuleError> {
    match v {
        None => Ok(vec![default.to_string()]),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| err(path, "must be a list of strings"))
            })
            .collect(),
        Some(_) => Err(err(path, "must be a string or a list of strings")),
    }
}

fn weekday(name: &str) -> Option<Weekday> {
    Some(match name.to_ascii_lowercase().as_str() {
        "mon" | "monday" => Weekday::Monday,
        "tue" | "tuesday" => Weekday::Tuesday,
        "wed" | "wednesday" => Weekday::Wednesday,
        "thu" | "thursday" => Weekday::Thursday,
        "fri" | "friday" => Weekday::Friday,
        "sat" | "saturday" => Weekday::Saturday,
        "sun" | "sunday" => Weekday::Sunday,
        _ => return None,
    })
}

impl Window {
    /// Parses one entry of `maintenance:`.
    pub fn parse(v: &Value, path: &str) -> Result<Window, RuleError> {
        let Value::Object(m) = v else {
            return Err(err(
                path,
                "must be a map (name, hosts, start, duration, ...)",
            ));
        };
        if let Some(k) = m.keys().find(|k| !WINDOW_KEYS.contains(&k.as_str())) {
            return Err(err(
                &format!("{path}.{k}"),
                format!("unknown key (known: {})", WINDOW_KEYS.join(", ")),
            ));
        }
        let name = m
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("maintenance")
            .to_string();
        let hosts = strings(m.get("hosts"), &format!("{path}.hosts"), "*")?;
        let metrics = strings(m.get("metrics"), &format!("{path}.metrics"), "*")?;
        let days = match m.get("days") {
            None => Vec::new(),
            Some(_) => strings(m.get("days"), &format!("{path}.days"), "")?
                .iter()
                .map(|d| {
                    weekday(d).ok_or_else(|| {
                        err(
                            &format!("{path}.days"),
                            format!("{d:?} is not a day (mon ... sun)"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let start_text = m
            .get("start")
            .and_then(Value::as_str)
            .ok_or_else(|| err(&format!("{path}.start"), "needs a start time, \"HH:MM\""))?;
        let start = start_text
            .split_once(':')
            .and_then(|(h, mi)| Some((h.parse::<i8>().ok()?, mi.parse::<i8>().ok()?)))
            .filter(|(h, mi)| (0..24).contains(h) && (0..60).contains(mi))
            .ok_or_else(|| {
                err(
                    &format!("{path}.start"),
                    format!("{start_text:?} is not a time of day \"HH:MM\""),
                )
            })?;
        let minutes = m
            .get("duration")
            .and_then(Value::as_i64)
            .filter(|d| (1..=7 * 24 * 60).contains(d))
            .ok_or_else(|| {
                err(
                    &format!("{path}.duration"),
                    "needs a duration in minutes, 1 to 10080",
                )
            })?;
        let tz_name = m.get("timezone").and_then(Value::as_str).unwrap_or("UTC");
        let tz = TimeZone::get(tz_name).map_err(|e| {
            err(
                &format!("{path}.timezone"),
                format!("{tz_name:?} is not a known time zone ({e})"),
            )
        })?;
        Ok(Window {
            name,
            hosts,
            metrics,
            days,
            start,
            minutes,
            tz,
        })
    }

    /// Whether it is about `metric` of `host`.
    pub fn covers(&self, host: &str, metric: &str) -> bool {
        self.hosts.iter().any(|p| glob(p, host)) && self.metrics.iter().any(|p| glob(p, metric))
    }

    /// Whether it is open at `ms` (Unix ms). It opens at the wall-clock start on its days
    /// and closes `duration` minutes of wall-clock time later; a time that falls into a
    /// skipped hour means the moment the clock jumped, one in a repeated hour its first
    /// occurrence.
    pub fn is_open(&self, ms: u64) -> bool {
        let Ok(now) = Timestamp::from_millisecond(ms as i64) else {
            return false;
        };
        let today = now.to_zoned(self.tz.clone()).date();
        // A window may have started on an earlier day and still be open.
        let back = self.minutes / (24 * 60) + 1;
        (0..=back).any(|days_ago| {
            today
                .checked_sub(days_ago.days())
                .ok()
                .and_then(|day| self.bounds(day))
                .is_some_and(|(open, close)| open <= now && now < close)
        })
    }

    /// When it opens and closes if it starts on `day`.
    fn bounds(&self, day: Date) -> Option<(Timestamp, Timestamp)> {
        if !self.days.is_empty() && !self.days.contains(&day.weekday()) {
            return None;
        }
        let start = day.at(self.start.0, self.start.1, 0, 0);
        let end = start.checked_add(self.minutes.minutes()).ok()?;
        Some((self.instant(start)?, self.instant(end)?))
    }

    fn instant(&self, at: jiff::civil::DateTime) -> Option<Timestamp> {
        wall_clock(&self.tz, at)
    }
}

/// The instant of a wall-clock time in `tz`: in a skipped hour, the moment the clock jumped
/// (the hour's end); in a repeated hour, its first occurrence. Maintenance windows and cron
/// schedules both read times this way.
pub(crate) fn wall_clock(tz: &TimeZone, at: jiff::civil::DateTime) -> Option<Timestamp> {
    let ambiguous = tz.to_ambiguous_zoned(at);
    let gap = matches!(ambiguous.offset(), AmbiguousOffset::Gap { .. });
    let resolved = ambiguous.compatible().ok()?.timestamp();
    if gap {
        tz.preceding(resolved).next().map(|t| t.timestamp())
    } else {
        Some(resolved)
    }
}

/// Parses `maintenance:` (a list of windows).
pub fn parse_windows(v: &Value) -> Result<Vec<Window>, RuleError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, w)| Window::parse(w, &format!("maintenance.{i}")))
            .collect(),
        _ => Err(err("maintenance", "must be a list of windows")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ms(text: &str) -> u64 {
        text.parse::<Timestamp>().unwrap().as_millisecond() as u64
    }

    #[test]
    fn globs() {
        for (p, t, want) in [
            ("*", "", true),
            ("*", "web1", true),
            ("web*", "web1", true),
            ("web?", "web12", false),
            ("*1", "db1", true),
            ("disk_monitor.*", "disk_monitor.partitions./.percent", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("down", "downtime", false),
        ] {
            assert_eq!(glob(p, t), want, "{p} {t}");
        }
    }

    #[test]
    fn ad_hoc_silences_have_a_start_and_an_end() {
        let s = Silence {
            id: 1,
            host: "web*".into(),
            metric: "*".into(),
            start_ms: 100,
            end_ms: 200,
            author: "alice".into(),
            comment: "deploy".into(),
        };
        assert!(!s.silences("web1", "down", 99));
        assert!(s.silences("web1", "down", 100));
        assert!(s.silences("web1", "cpu_monitor.cpu_percent", 199));
        assert!(!s.silences("web1", "down", 200));
        assert!(!s.silences("db1", "down", 150));
    }

    /// Issue 5, acceptance 4: a nightly 02:30 window for an hour, across DST changes.
    #[test]
    fn windows_follow_the_wall_clock_across_dst() {
        let window = |tz: &str| {
            Window::parse(
                &json!({"name": "n", "start": "02:30", "duration": 60, "timezone": tz}),
                "m",
            )
            .unwrap()
        };
        let berlin = window("Europe/Berlin");
        // Winter (UTC+1): 02:30-03:30 local is 01:30-02:30 UTC.
        assert!(!berlin.is_open(ms("2026-03-20T01:29:59Z")));
        assert!(berlin.is_open(ms("2026-03-20T01:30:00Z")));
        assert!(!berlin.is_open(ms("2026-03-20T02:30:00Z")));
        // Summer (UTC+2): 00:30-01:30 UTC.
        assert!(berlin.is_open(ms("2026-04-20T00:30:00Z")));
        assert!(!berlin.is_open(ms("2026-04-20T01:30:00Z")));
        // 29 March 2026: 02:00 jumps to 03:00, so 02:30 does not exist; the window opens
        // at 03:00 CEST (01:00 UTC) and closes at 03:30 CEST (01:30 UTC).
        assert!(!berlin.is_open(ms("2026-03-29T00:59:59Z")));
        assert!(berlin.is_open(ms("2026-03-29T01:00:00Z")));
        assert!(!berlin.is_open(ms("2026-03-29T01:30:00Z")));
        // 25 October 2026: 03:00 goes back to 02:00, so 02:30 happens twice; the window
        // opens at the first (00:30 UTC) and closes at 03:30 local (02:30 UTC).
        assert!(berlin.is_open(ms("2026-10-25T00:30:00Z")));
        assert!(berlin.is_open(ms("2026-10-25T02:29:59Z")));
        assert!(!berlin.is_open(ms("2026-10-25T02:30:00Z")));

        let new_york = window("America/New_York");
        // Winter (UTC-5): 07:30-08:30 UTC; summer (UTC-4): 06:30-07:30 UTC.
        assert!(new_york.is_open(ms("2026-01-15T07:30:00Z")));
        assert!(!new_york.is_open(ms("2026-01-15T06:30:00Z")));
        assert!(new_york.is_open(ms("2026-07-15T06:30:00Z")));
        assert!(!new_york.is_open(ms("2026-07-15T07:30:00Z")));
        // 8 March 2026: 02:00 jumps to 03:00: opens 03:00 EDT (07:00 UTC) until 03:30.
        assert!(!new_york.is_open(ms("2026-03-08T06:59:59Z")));
        assert!(new_york.is_open(ms("2026-03-08T07:00:00Z")));
        assert!(!new_york.is_open(ms("2026-03-08T07:30:00Z")));
        // 1 November 2026: 02:00 goes back to 01:00; 02:30 happens once (EST): 07:30 UTC.
        assert!(!new_york.is_open(ms("2026-11-01T06:30:00Z")));
        assert!(new_york.is_open(ms("2026-11-01T07:30:00Z")));
        assert!(!new_york.is_open(ms("2026-11-01T08:30:00Z")));
    }

    #[test]
    fn windows_on_days_and_past_midnight() {
        let w = Window::parse(
            &json!({"hosts": ["db*"], "metrics": "down", "days": ["sat"], "start": "23:00", "duration": 180}),
            "m",
        )
        .unwrap();
        // Saturday 2026-11-21 23:00 UTC to Sunday 02:00.
        assert!(w.is_open(ms("2026-11-22T01:59:00Z")));
        assert!(!w.is_open(ms("2026-11-22T02:00:00Z")));
        assert!(!w.is_open(ms("2026-11-20T23:30:00Z")), "a Friday");
        assert!(w.covers("db1", "down"));
        assert!(!w.covers("db1", "rtt"));
        assert!(!w.covers("web1", "down"));
    }

    #[test]
    fn bad_windows_name_the_entry() {
        for (v, want) in [
            (
                json!({"start": "25:00", "duration": 5}),
                "m.start: \"25:00\" is not a time",
            ),
            (json!({"start": "02:00"}), "m.duration: needs a duration"),
            (
                json!({"start": "02:00", "duration": 5, "timezone": "Mars/Olympus"}),
                "m.timezone: \"Mars/Olympus\" is not a known time zone",
            ),
            (
                json!({"start": "02:00", "duration": 5, "days": ["someday"]}),
                "m.days: \"someday\" is not a day",
            ),
            (
                json!({"start": "02:00", "duration": 5, "days": ["monkey"]}),
                "m.days: \"monkey\" is not a day",
            ),
            (
                json!({"start": "02:00", "duration": 5, "every": 1}),
                "m.every: unknown key",
            ),
        ] {
            let e = Window::parse(&v, "m").unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }
}
