//! Issue 5, acceptance 1: every operator, hysteresis edges, generic matching, Nagios codes,
//! templates and profile layering, table-driven.

use super::*;
use serde_json::json;

fn th(v: Value) -> Threshold {
    let Value::Object(m) = v else { panic!() };
    parse_leaf(&m, "t").unwrap().finish("t").unwrap()
}

#[test]
fn every_operator_at_and_around_its_limits() {
    use Level::*;
    // (operator, warning, critical, value, level from OK)
    let table: &[(&str, f64, f64, f64, Level)] = &[
        (">", 80.0, 90.0, 79.9, Ok),
        (">", 80.0, 90.0, 80.0, Ok),
        (">", 80.0, 90.0, 80.1, Warning),
        (">", 80.0, 90.0, 90.0, Warning),
        (">", 80.0, 90.0, 90.1, Critical),
        (">=", 80.0, 90.0, 79.9, Ok),
        (">=", 80.0, 90.0, 80.0, Warning),
        (">=", 80.0, 90.0, 90.0, Critical),
        ("<", 20.0, 10.0, 20.0, Ok),
        ("<", 20.0, 10.0, 19.9, Warning),
        ("<", 20.0, 10.0, 10.0, Warning),
        ("<", 20.0, 10.0, 9.9, Critical),
        ("<=", 20.0, 10.0, 20.1, Ok),
        ("<=", 20.0, 10.0, 20.0, Warning),
        ("<=", 20.0, 10.0, 10.0, Critical),
        ("==", 1.0, 2.0, 0.0, Ok),
        ("==", 1.0, 2.0, 1.0, Warning),
        ("==", 1.0, 2.0, 2.0, Critical),
        ("!=", 0.0, 5.0, 5.0, Warning),
        ("!=", 0.0, 5.0, 0.0, Critical),
        ("!=", 5.0, 5.0, 5.0, Ok),
    ];
    for &(op, warning, critical, value, want) in table {
        let t = th(json!({"operator": op, "warning": warning, "critical": critical}));
        let got = t.evaluate(&json!(value), Level::Ok);
        assert_eq!(got.level, want, "{value} {op} (w {warning}, c {critical})");
        let limit = match want {
            Critical => Some(critical),
            Warning => Some(warning),
            _ => None,
        };
        assert_eq!(got.limit, limit);
    }
}

#[test]
fn hysteresis_holds_an_alert_until_the_recovery_point() {
    use Level::*;
    // A `>` 95 alert with 2 % recovers below 93.1: exactly at 93.1 it holds.
    let t = th(json!({"warning": 95, "critical": 99}));
    assert_eq!(t.recovery_point(Warning), Some(93.1));
    // (value, level now, level after)
    let table: &[(f64, Level, Level)] = &[
        (95.0, Ok, Ok),
        (95.1, Ok, Warning),
        (94.0, Warning, Warning),
        (93.1, Warning, Warning),
        (93.09, Warning, Ok),
        (99.5, Warning, Critical),
        (98.0, Critical, Critical),  // 99 * 0.98 = 97.02
        (97.02, Critical, Critical), // exactly at the recovery point: holds
        (97.0, Critical, Warning),   // clear of critical's band, in warning's
        (93.0, Critical, Ok),        // clear of both
        (94.0, Ok, Ok),              // no hysteresis without an alert
        (94.0, Unknown, Ok),
    ];
    for &(value, now, want) in table {
        assert_eq!(
            t.evaluate(&json!(value), now).level,
            want,
            "{value} while {now:?}"
        );
    }
    // `<`: a 10 % free-space alert at 10 recovers above 10.2.
    let low = th(json!({"operator": "<", "warning": 10, "critical": 5}));
    assert_eq!(low.evaluate(&json!(10.2), Warning).level, Warning);
    assert_eq!(low.evaluate(&json!(10.21), Warning).level, Ok);
    assert_eq!(low.recovery_point(Critical), Some(5.1));
    // Configured hysteresis, and none for == and !=.
    let wide = th(json!({"warning": 100, "critical": 200, "hysteresis": 0.1}));
    assert_eq!(wide.evaluate(&json!(90.0), Warning).level, Warning);
    assert_eq!(wide.evaluate(&json!(89.9), Warning).level, Ok);
    let eq = th(json!({"operator": "==", "warning": 1, "critical": 2}));
    assert_eq!(eq.evaluate(&json!(0.99), Warning).level, Ok);
    assert_eq!(eq.recovery_point(Warning), None);
    // Without a band, leaving the limit recovers: a `> 0` error count back at 0, and the
    // built-in ZFS `< 1` back at 1.
    let errors = th(json!({"warning": 0}));
    assert_eq!(errors.evaluate(&json!(0), Warning).level, Ok);
    let zfs = th(json!({"operator": "<", "critical": 1, "hysteresis": 0}));
    assert_eq!(zfs.evaluate(&json!(1), Critical).level, Ok);
    assert_eq!(zfs.evaluate(&json!(0), Critical).level, Critical);
    // Negative limits move the right way.
    let neg = th(json!({"operator": "<", "warning": -10, "critical": -20}));
    assert_eq!(neg.evaluate(&json!(-9.9), Warning).level, Warning);
    assert_eq!(neg.evaluate(&json!(-9.7), Warning).level, Ok);
}

#[test]
fn nagios_codes_and_values_that_are_not_numbers() {
    use Level::*;
    let t = th(json!({"operator": "nagios"}));
    for (code, want) in [
        (json!(0), Ok),
        (json!(1), Warning),
        (json!(2), Critical),
        (json!(3), Unknown),
        (json!(4), Unknown),
        (json!(-1), Unknown),
        (json!(1.5), Unknown),
        (json!("2"), Unknown),
        (json!(null), Unknown),
    ] {
        assert_eq!(t.evaluate(&code, Critical).level, want, "{code}");
    }
    let n = th(json!({"warning": 1, "critical": 2}));
    assert_eq!(n.evaluate(&json!("high"), Ok).level, Unknown);
    assert_eq!(n.evaluate(&json!(true), Ok).level, Ok, "true is 1");
    assert_eq!(n.evaluate(&json!([1]), Ok).level, Unknown);
}

fn rules(thresholds: Value, profiles: Value) -> Rules {
    Rules::parse(&thresholds, &profiles, "default").unwrap()
}

#[test]
fn generic_matching_strips_leading_words_at_any_depth() {
    let r = rules(
        json!({"nagios_runner": {"load_status_code": {"operator": "nagios", "display": "exact"}}}),
        Value::Null,
    )
    .for_host(&[])
    .unwrap();
    let find = |path: &[&str]| {
        r.find("nagios_runner", path)
            .map(|(t, check)| (t.display.clone(), check))
    };
    // The built-in generic entry, reached after stripping 1, 2 and 3 words.
    for (metric, check) in [
        ("disk_status_code", "disk"),
        ("check_disk_status_code", "check_disk"),
        ("check_disk_root_status_code", "check_disk_root"),
    ] {
        assert_eq!(
            find(&[metric]),
            Some((Some("{check_name}: {output}".into()), Some(check.into()))),
            "{metric}"
        );
    }
    // An exact entry wins over the generic one, also as a suffix.
    assert_eq!(
        find(&["load_status_code"]),
        Some((Some("exact".into()), None))
    );
    assert_eq!(
        find(&["check_load_status_code"]),
        Some((Some("exact".into()), Some("check".into())))
    );
    assert_eq!(find(&["status_code"]).map(|f| f.1), Some(None));
    assert_eq!(find(&["check_disk_output"]), None);
    assert_eq!(
        find(&["code"]),
        None,
        "never matches a shorter entry than written"
    );
}

#[test]
fn nested_metrics_wildcards_and_zfs_health() {
    let r = rules(
        json!({
            "disk_monitor": {"partitions": {
                "*": {"percent": {"warning": 80, "critical": 90}},
                "/var/lib/postgresql": {"percent": {"warning": 75, "critical": 88}}
            }},
            "rtt": {"*": {"warning": 100, "critical": 500}, "far1": {"warning": 300, "critical": 900}}
        }),
        Value::Null,
    )
    .for_host(&[])
    .unwrap();
    let data = json!({"partitions": {
        "/": {"percent": 85, "free_gb": 3},
        "/var/lib/postgresql": {"percent": 85},
        "/mnt/a.b": {"percent": "n/a"}
    }});
    let found = r.findings("disk_monitor", data.as_object().unwrap());
    let summary: Vec<(String, Option<f64>)> = found
        .iter()
        .map(|f| (f.path.join("|"), f.threshold.warning))
        .collect();
    assert_eq!(
        summary,
        [
            ("partitions|/|percent".to_string(), Some(80.0)),
            ("partitions|/mnt/a.b|percent".to_string(), Some(80.0)),
            (
                "partitions|/var/lib/postgresql|percent".to_string(),
                Some(75.0)
            ),
        ]
    );
    assert_eq!(found[0].check_name.as_deref(), Some("/"));
    assert_eq!(r.rtt("web1").and_then(|t| t.critical), Some(500.0));
    assert_eq!(r.rtt("far1").and_then(|t| t.critical), Some(900.0));
    // Older ZFS clients send only `health`: health_ok is made from it, and alerts.
    let zfs = json!({"tank": {"health": "DEGRADED"}, "pools": {"big": {"health": "ONLINE", "health_ok": 1}}});
    let found = r.findings("zfs_monitor", zfs.as_object().unwrap());
    let levels: Vec<(String, Level)> = found
        .iter()
        .map(|f| {
            (
                f.path.join("."),
                f.threshold.evaluate(&f.value, Level::Ok).level,
            )
        })
        .collect();
    assert_eq!(
        levels,
        [
            ("pools.big.health_ok".to_string(), Level::Ok),
            ("tank.health_ok".to_string(), Level::Critical),
        ]
    );
}

#[test]
fn profiles_layer_left_to_right_over_the_default() {
    let r = rules(
        json!({"cpu_monitor": {"cpu_percent": {"warning": 90, "critical": 95}}}),
        json!({
            "default": {"thresholds": {
                "cpu_monitor": {"cpu_percent": {"warning": 80, "critical": 90}},
                "memory_monitor": {"percent": {"warning": 85, "critical": 95}}
            }},
            "tight_cpu": {"thresholds": {"cpu_monitor": {"cpu_percent": {"warning": 60, "critical": 75}}}},
            "no_cpu": {"thresholds": {"cpu_monitor": {"cpu_percent": {"enabled": false}}}},
            "crit99": {"thresholds": {"cpu_monitor": {"cpu_percent": {"critical": 99}}}}
        }),
    );
    let cpu = |profiles: &[&str]| {
        r.for_host(profiles)
            .unwrap()
            .find("cpu_monitor", &["cpu_percent"])
            .map(|(t, _)| (t.warning, t.critical))
    };
    assert_eq!(
        cpu(&[]),
        Some((Some(80.0), Some(90.0))),
        "default over thresholds"
    );
    assert_eq!(cpu(&["default"]), Some((Some(80.0), Some(90.0))));
    assert_eq!(cpu(&["tight_cpu"]), Some((Some(60.0), Some(75.0))));
    // A list applies in order; later profiles change only what they name.
    assert_eq!(
        cpu(&["tight_cpu", "crit99"]),
        Some((Some(60.0), Some(99.0)))
    );
    assert_eq!(
        cpu(&["crit99", "tight_cpu"]),
        Some((Some(60.0), Some(75.0)))
    );
    assert_eq!(cpu(&["tight_cpu", "no_cpu"]), None, "disabled");
    // Metrics a profile does not name are inherited.
    let mem = r
        .for_host(&["tight_cpu"])
        .unwrap()
        .find("memory_monitor", &["percent"])
        .map(|(t, _)| t.critical);
    assert_eq!(mem, Some(Some(95.0)));
    assert!(r.for_host(&["nosuch"]).is_err());
    // Another default profile name.
    let r2 = Rules::parse(
        &Value::Null,
        &json!({"base": {"thresholds": {"cpu_monitor": {"cpu_percent": {"critical": 50}}}}}),
        "base",
    )
    .unwrap();
    assert!(
        r2.for_host(&[])
            .unwrap()
            .find("cpu_monitor", &["cpu_percent"])
            .is_some()
    );
}

#[test]
fn configuration_errors_name_the_entry() {
    for (thresholds, profiles, want) in [
        (
            json!({"cpu_monitor": {"cpu_percent": {"warning": "high"}}}),
            Value::Null,
            "thresholds.cpu_monitor.cpu_percent.warning: must be a number",
        ),
        (
            json!({"cpu_monitor": {"cpu_percent": {"warning": 1, "operator": "=>"}}}),
            Value::Null,
            "thresholds.cpu_monitor.cpu_percent.operator: unknown operator",
        ),
        (
            json!({"cpu_monitor": {"cpu_percent": {"warning": 1, "hysteresis": 1.5}}}),
            Value::Null,
            "hysteresis: must be from 0 to below 1",
        ),
        (
            json!({"cpu_monitor": {"cpu_percent": {"warning": 1, "warn": 2}}}),
            Value::Null,
            "unknown key \"warn\"",
        ),
        (
            json!({"cpu_monitor": {"cpu_percent": {"operator": ">"}}}),
            Value::Null,
            "cpu_monitor.cpu_percent: needs `warning` or `critical`",
        ),
        (
            json!({"cpu_monitor": {"cpu_percent": {"warning": 1, "display": "{value"}}}),
            Value::Null,
            "display: bad template",
        ),
        (
            json!({"cpu_monitor": 5}),
            Value::Null,
            "thresholds.cpu_monitor: must be a map of metrics",
        ),
        (
            Value::Null,
            json!({"p": {"thresholds": {"x": {"y": {"critical": "no"}}}}}),
            "threshold_configs.p.thresholds.x.y.critical: must be a number",
        ),
        (
            Value::Null,
            json!({"p": {"rules": {}}}),
            "threshold_configs.p.rules: unknown key",
        ),
    ] {
        let e = Rules::parse(&thresholds, &profiles, "default")
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{e} does not contain {want}");
    }
}

#[test]
fn templates_render_or_say_why_not() {
    use template::{TemplateError, render};
    let vars = json!({"value": 93.456, "threshold_value": 90, "op_symbol": ">", "check_name": "check_disk", "output": "DISK OK", "n": null});
    let vars = vars.as_object().unwrap();
    for (t, want) in [
        ("{value} {op_symbol} {threshold_value}", "93.456 > 90"),
        ("{value:.1f}%", "93.5%"),
        (
            "{{literal}} {check_name}: {output}",
            "{literal} check_disk: DISK OK",
        ),
        ("{n}", "-"),
        ("", ""),
    ] {
        assert_eq!(render(t, vars).unwrap(), want, "{t}");
    }
    assert_eq!(
        render("{missing}", vars),
        Err(TemplateError::Missing("missing".into()))
    );
    for bad in [
        "{",
        "}",
        "{value",
        "{va lue}",
        "{value:x}",
        "{:.1f}",
        "{value:.99f}",
    ] {
        assert!(
            matches!(render(bad, vars), Err(TemplateError::Syntax { .. })),
            "{bad}"
        );
    }
}
