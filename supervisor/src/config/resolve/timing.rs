//! Intervals, graces, flapping, storms, retention: numbers with a sensible range.

use super::Report;
use crate::config::File;

pub(super) fn check(file: &File, err: &mut Report<'_>) {
    if file.interval == Some(0) {
        err("interval", "must be at least 1 second".into());
    }
    if file.max_missed == Some(0) {
        err("max_missed", "must be at least 1".into());
    }
    if let Some(grace) = file.grace
        && !(grace.is_finite() && grace >= 0.0)
    {
        err("grace", format!("must be 0 or more seconds, not {grace}"));
    }
    if let Some(g) = file.startup_grace
        && !(g.is_finite() && (0.0..=86_400.0).contains(&g))
    {
        err(
            "startup_grace",
            format!("must be 0 to 86400 seconds, not {g}"),
        );
    }
    check_flapping_and_storms(file, err);
    if let Some(n) = file.threshold_renotify_interval
        && n > 30 * 86_400
    {
        err(
            "threshold_renotify_interval",
            format!("must be at most 30 days (2592000 s), not {n}"),
        );
    }
    if let Some(n) = file.sample_count
        && !(1..=100_000).contains(&n)
    {
        err("sample_count", format!("must be 1 to 100000, not {n}"));
    }
    if let Some(n) = file.event_retention
        && !(30..=10_000_000).contains(&n)
    {
        err(
            "event_retention",
            format!("must be 30 to 10000000, not {n}"),
        );
    }
    if let Some(g) = file.shutdown_grace
        && !(g.is_finite() && (0.0..=300.0).contains(&g))
    {
        err(
            "shutdown_grace",
            format!("must be 0 to 300 seconds, not {g}"),
        );
    }
}

fn check_flapping_and_storms(file: &File, err: &mut Report<'_>) {
    let (high, low) = (
        file.flap_high.unwrap_or(30.0),
        file.flap_low.unwrap_or(25.0),
    );
    if !(high.is_finite() && low.is_finite() && 0.0 < low && low <= high && high <= 100.0) {
        err(
            if file.flap_low.is_some() {
                "flap_low"
            } else {
                "flap_high"
            },
            format!(
                "flap_low ({low}) and flap_high ({high}) must be percentages with 0 < low <= high <= 100"
            ),
        );
    }
    if let Some(f) = file.storm_fraction
        && !(f.is_finite() && 0.0 < f && f <= 1.0)
    {
        err(
            "storm_fraction",
            format!("must be above 0 and at most 1, not {f}"),
        );
    }
    if file.storm_min_hosts.is_some_and(|n| n < 2) {
        err("storm_min_hosts", "must be at least 2".into());
    }
    if let Some(w) = file.storm_window
        && !(w.is_finite() && (1.0..=600.0).contains(&w))
    {
        err("storm_window", format!("must be 1 to 600 seconds, not {w}"));
    }
}
