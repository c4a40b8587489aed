//! Cron schedules for checks (docs/CHECKS.md): the five fields of crontab(5) — minute, hour,
//! day of month, month, day of week — with `*`, lists, ranges, steps, month and day names,
//! and `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`, read in a time zone. When both
//! day fields are restricted, a day matching either counts (as cron does). A time that the
//! clock skips (spring forward) falls when the clock jumped; a time it repeats (fall back)
//! falls on its first occurrence (as maintenance windows read times).

use std::collections::BTreeSet;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// A parsed schedule.
#[derive(Clone, Debug)]
pub struct Schedule {
    minutes: BTreeSet<i8>,
    hours: BTreeSet<i8>,
    days: BTreeSet<i8>,
    months: BTreeSet<i8>,
    weekdays: BTreeSet<i8>,
    /// Whether the day-of-month and day-of-week fields were `*`.
    any_day: bool,
    any_weekday: bool,
    tz: TimeZone,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn field(text: &str, lo: i8, hi: i8, names: &[&str], what: &str) -> Result<BTreeSet<i8>, String> {
    let value = |s: &str| -> Result<i8, String> {
        let lower = s.to_ascii_lowercase();
        if let Some(i) = names.iter().position(|n| *n == lower) {
            // Months are named from 1, days from 0.
            return Ok(i as i8 + i8::from(names.len() == 12));
        }
        s.parse::<i8>()
            .ok()
            .filter(|n| (lo..=hi).contains(n))
            .ok_or_else(|| format!("{what}: {s:?} is not {lo} to {hi}"))
    };
    let mut out = BTreeSet::new();
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<i8>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("{what}: step {s:?} is not a number above 0"))?,
            ),
            None => (part, 1),
        };
        let (from, to) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let v = value(range)?;
            // `5/15` means 5, 20, 35, 50 (from 5 to the end).
            (v, if part.contains('/') { hi } else { v })
        };
        if from > to {
            return Err(format!("{what}: {range:?} runs backwards"));
        }
        let mut v = from;
        while v <= to {
            out.insert(v);
            v = match v.checked_add(step) {
                Some(n) => n,
                None => break,
            };
        }
    }
    if out.is_empty() {
        return Err(format!("{what}: {text:?} is empty"));
    }
    Ok(out)
}

/// Whether `expression` in the zone `tz` is a schedule that fires: what a check definition
/// is judged by (`CheckFile::problems`).
pub fn check(expression: &str, tz: Option<&str>) -> Result<(), String> {
    Schedule::parse(expression, tz)
        .and_then(Schedule::check_fires)
        .map(drop)
}

impl Schedule {
    /// Parses `expression` in the time zone `tz` (an IANA name; UTC when absent).
    pub fn parse(expression: &str, tz: Option<&str>) -> Result<Schedule, String> {
        let tz = match tz {
            Some(name) => TimeZone::get(name).map_err(|e| format!("tz {name:?}: {e}"))?,
            None => TimeZone::UTC,
        };
        let expanded = match expression.trim() {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            other => other,
        };
        let f: Vec<&str> = expanded.split_whitespace().collect();
        if f.len() != 5 {
            return Err(format!(
                "{expression:?}: a schedule has five fields (minute hour day month weekday)"
            ));
        }
        let mut weekdays = field(f[4], 0, 7, &DAYS, "day of week")?;
        // 7 is Sunday too.
        if weekdays.remove(&7) {
            weekdays.insert(0);
        }
        Ok(Schedule {
            minutes: field(f[0], 0, 59, &[], "minute")?,
            hours: field(f[1], 0, 23, &[], "hour")?,
            days: field(f[2], 1, 31, &[], "day of month")?,
            months: field(f[3], 1, 12, &MONTHS, "month")?,
            weekdays,
            any_day: f[2] == "*",
            any_weekday: f[4] == "*",
            tz,
        })
    }

    fn day_matches(&self, d: Date) -> bool {
        if !self.months.contains(&d.month()) {
            return false;
        }
        let dom = self.days.contains(&d.day());
        let dow = self
            .weekdays
            .contains(&(d.weekday().to_sunday_zero_offset()));
        match (self.any_day, self.any_weekday) {
            (true, true) => true,
            (false, true) => dom,
            (true, false) => dow,
            (false, false) => dom || dow,
        }
    }

    /// The schedule itself if it ever fires (`0 0 30 2 *` never does).
    pub fn check_fires(self) -> Result<Schedule, String> {
        match self.next_after(Timestamp::now()) {
            Some(_) => Ok(self),
            None => Err("never fires (no such day)".into()),
        }
    }

    /// The first time the schedule fires after `after` (within five years: a schedule for
    /// February 30 never fires).
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let start = self.tz.to_datetime(after).date();
        // From the day before: a time in a repeated hour may lie "before" in wall time.
        let mut day = start.checked_sub(1.day()).ok()?;
        for _ in 0..(5 * 366 + 2) {
            if self.day_matches(day) {
                for h in &self.hours {
                    for m in &self.minutes {
                        let at = day.at(*h, *m, 0, 0);
                        if let Some(t) = crate::silence::wall_clock(&self.tz, at)
                            && t > after
                        {
                            return Some(t);
                        }
                    }
                }
            }
            day = day.checked_add(1.day()).ok()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn fields_and_names() {
        let s = Schedule::parse("*/15 9-17 * * mon-fri", None).unwrap();
        // Friday 2026-11-27 17:50 UTC: next is Monday 09:00.
        assert_eq!(
            s.next_after(at("2026-11-27T17:50:00Z")),
            Some(at("2026-11-30T09:00:00Z"))
        );
        assert_eq!(
            s.next_after(at("2026-11-30T09:00:00Z")),
            Some(at("2026-11-30T09:15:00Z"))
        );
        let s = Schedule::parse("5/20 * * * *", None).unwrap();
        assert_eq!(
            s.next_after(at("2026-01-01T00:46:00Z")),
            Some(at("2026-01-01T01:05:00Z"))
        );
        // Both day fields: either matches (the 1st, or a Sunday).
        let s = Schedule::parse("0 0 1 * 7", None).unwrap();
        assert_eq!(
            s.next_after(at("2026-11-28T12:00:00Z")),
            Some(at("2026-11-29T00:00:00Z"))
        );
        assert_eq!(
            s.next_after(at("2026-11-29T12:00:00Z")),
            Some(at("2026-12-01T00:00:00Z"))
        );
        let s = Schedule::parse("@monthly", None).unwrap();
        assert_eq!(
            s.next_after(at("2026-02-10T00:00:00Z")),
            Some(at("2026-03-01T00:00:00Z"))
        );
        assert!(
            Schedule::parse("0 0 30 2 *", None)
                .unwrap()
                .next_after(at("2026-01-01T00:00:00Z"))
                .is_none()
        );
        assert!(
            Schedule::parse("0 0 30 2 *", None)
                .unwrap()
                .check_fires()
                .is_err()
        );
        assert!(
            Schedule::parse("0 0 29 2 *", None)
                .unwrap()
                .check_fires()
                .is_ok(),
            "leap years"
        );
        for bad in [
            "",
            "* * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "*/0 * * * *",
            "5-1 * * * *",
            "* * * * funday",
        ] {
            assert!(Schedule::parse(bad, None).is_err(), "{bad:?}");
        }
        assert!(Schedule::parse("* * * * *", Some("Mars/Olympus")).is_err());
    }

    #[test]
    fn berlin_across_both_changes_of_the_clock() {
        let daily = Schedule::parse("0 1 * * *", Some("Europe/Berlin")).unwrap();
        // 01:00 CET is 00:00 UTC; after the clocks go forward (2026-03-29), 01:00 CEST is
        // 23:00 UTC the day before: that night is 23 hours.
        assert_eq!(
            daily.next_after(at("2026-03-28T00:00:00Z")),
            Some(at("2026-03-29T00:00:00Z"))
        );
        assert_eq!(
            daily.next_after(at("2026-03-29T00:00:00Z")),
            Some(at("2026-03-29T23:00:00Z"))
        );
        // And back (2026-10-25): a 25-hour night.
        assert_eq!(
            daily.next_after(at("2026-10-24T23:00:00Z")),
            Some(at("2026-10-26T00:00:00Z"))
        );
        // 02:30 does not exist on 2026-03-29: it falls when the clock jumped (03:00 CEST).
        let skipped = Schedule::parse("30 2 * * *", Some("Europe/Berlin")).unwrap();
        assert_eq!(
            skipped.next_after(at("2026-03-28T12:00:00Z")),
            Some(at("2026-03-29T01:00:00Z"))
        );
        // 02:30 happens twice on 2026-10-25: the first (CEST, 00:30 UTC) counts, once.
        assert_eq!(
            skipped.next_after(at("2026-10-24T12:00:00Z")),
            Some(at("2026-10-25T00:30:00Z"))
        );
        assert_eq!(
            skipped.next_after(at("2026-10-25T00:30:00Z")),
            Some(at("2026-10-26T01:30:00Z"))
        );
    }
}
