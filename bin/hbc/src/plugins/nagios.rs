//! `nagios_runner`: named Nagios plugins, run in parallel, each with a timeout. The exit code
//! is the status (0 OK, 1 WARNING, 2 CRITICAL, anything else UNKNOWN; killed by a signal or
//! at the timeout: UNKNOWN); the output is the first line of stdout, or of stderr when stdout
//! is empty; performance data after `|` is parsed into fields.

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::commands;

/// One configured check.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub name: String,
    pub argv: Vec<String>,
}

/// One performance datum: `'label'=value[uom];[warn];[crit];[min];[max]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Perf {
    pub label: String,
    pub value: f64,
    pub uom: String,
    pub warn: Option<String>,
    pub crit: Option<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// Splits the performance data text into its data (labels may be quoted and hold spaces);
/// malformed ones are skipped.
pub fn parse_perfdata(text: &str) -> Vec<Perf> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (label, after) = if let Some(quoted) = rest.strip_prefix('\'') {
            match quoted.find("'=") {
                Some(end) => (&quoted[..end], &quoted[end + 2..]),
                None => break,
            }
        } else {
            match rest.split_once('=') {
                Some((l, a)) => (l.trim(), a),
                None => break,
            }
        };
        let (datum, next) = after.split_once(char::is_whitespace).unwrap_or((after, ""));
        rest = next.trim_start();
        let mut parts = datum.split(';');
        let value_uom = parts.next().unwrap_or("");
        let split = value_uom
            .find(|c: char| {
                !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E')
            })
            .unwrap_or(value_uom.len());
        let Ok(value) = value_uom[..split].parse::<f64>() else {
            continue;
        };
        let text = |p: Option<&str>| p.filter(|s| !s.is_empty()).map(str::to_string);
        let (warn, crit) = (text(parts.next()), text(parts.next()));
        let num = |p: Option<&str>| p.and_then(|s| s.parse::<f64>().ok());
        let (min, max) = (num(parts.next()), num(parts.next()));
        if label.is_empty() || !value.is_finite() {
            continue;
        }
        out.push(Perf {
            label: label.to_string(),
            value,
            uom: value_uom[split..].to_string(),
            warn,
            crit,
            min,
            max,
        });
    }
    out
}

/// A label as part of a field name: lower case letters, digits and `_`.
fn field_name(label: &str) -> String {
    if label == "/" {
        return "root".into();
    }
    let s: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let mut s = s.trim_matches('_').to_string();
    s.truncate(64);
    if s.is_empty() { "value".into() } else { s }
}

/// The status word of a Nagios exit code.
pub fn status_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "WARNING",
        2 => "CRITICAL",
        _ => "UNKNOWN",
    }
}

/// The fields of one check's outcome, under `<name>_`.
pub fn fields(name: &str, e: &commands::Execution, timeout: Duration) -> Map<String, Value> {
    let mut m = Map::new();
    let (code, output, perf) = if let Some(error) = &e.error {
        (3, error.clone(), String::new())
    } else if e.timed_out {
        (
            3,
            format!("timed out after {} s; killed", timeout.as_secs()),
            String::new(),
        )
    } else if let Some(signal) = e.signal {
        (3, format!("killed by signal {signal}"), String::new())
    } else {
        let stdout = String::from_utf8_lossy(&e.stdout);
        let stderr = String::from_utf8_lossy(&e.stderr);
        let text = if stdout.trim().is_empty() {
            stderr
        } else {
            stdout
        };
        // The first line: output | perfdata; later lines may carry more perfdata after a |.
        let mut lines = text.lines();
        let first = lines.next().unwrap_or("").to_string();
        let (output, mut perf) = match first.split_once('|') {
            Some((o, p)) => (o.trim().to_string(), p.to_string()),
            None => (first.trim().to_string(), String::new()),
        };
        let long: Vec<&str> = lines.collect();
        if let Some(i) = long.iter().position(|l| l.contains('|')) {
            let (_, p) = long[i].split_once('|').unwrap_or(("", ""));
            perf.push(' ');
            perf.push_str(p);
            for l in &long[i + 1..] {
                perf.push(' ');
                perf.push_str(l);
            }
        }
        let code = e
            .exit
            .map_or(3, |c| if (0..=3).contains(&c) { c } else { 3 });
        (code, output, perf)
    };
    let mut output = output;
    if output.len() > 1024 {
        let mut cut = 1024;
        while !output.is_char_boundary(cut) {
            cut -= 1;
        }
        output.truncate(cut);
        output.push_str(" [trimmed]");
    }
    m.insert(format!("{name}_status_code"), json!(code));
    m.insert(format!("{name}_status"), json!(status_name(code)));
    m.insert(format!("{name}_output"), json!(output));
    m.insert(format!("{name}_exit_code"), json!(e.exit));
    let mut perfdata = Map::new();
    for p in parse_perfdata(&perf) {
        let mut label = field_name(&p.label);
        // A label never overwrites the check's own fields.
        if ["status", "status_code", "output", "exit_code", "perfdata"].contains(&label.as_str()) {
            label = format!("perf_{label}");
        }
        m.insert(format!("{name}_{label}"), json!(p.value));
        perfdata.insert(
            label,
            json!({"value": p.value, "uom": p.uom, "warn": p.warn, "crit": p.crit, "min": p.min, "max": p.max}),
        );
    }
    if !perfdata.is_empty() {
        m.insert(format!("{name}_perfdata"), Value::Object(perfdata));
    }
    m
}

/// Runs every check at once; their fields together.
pub async fn run(checks: &[Check], timeout: Duration) -> Value {
    let runs = checks.iter().cloned().map(|c| async move {
        let e = commands::execute(&c.argv, timeout, &[]).await;
        fields(&c.name, &e, timeout)
    });
    let mut out = Map::new();
    for m in super::join_all(runs).await {
        out.extend(m);
    }
    Value::Object(out)
}

/// Checks the configured commands at start: a name fit for a field, an absolute program
/// path that exists and is executable.
pub fn validate(checks: &[Check]) -> Result<(), String> {
    for c in checks {
        if c.name.is_empty()
            || c.name.len() > 48
            || !c
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(format!(
                "nagios_runner: check name {:?} must be 1 to 48 of a-z, 0-9 and _",
                c.name
            ));
        }
        let Some(program) = c.argv.first() else {
            return Err(format!("nagios_runner.{}: empty command", c.name));
        };
        if !program.starts_with('/') {
            return Err(format!(
                "nagios_runner.{}: {program:?} must be an absolute path (commands run without a shell)",
                c.name
            ));
        }
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(program) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {}
            Ok(_) => {
                return Err(format!(
                    "nagios_runner.{}: {program} is not an executable file",
                    c.name
                ));
            }
            Err(e) => return Err(format!("nagios_runner.{}: {program}: {e}", c.name)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfdata_with_units_thresholds_and_quoted_labels() {
        let p = parse_perfdata(
            "time=0.012s;1;2;0; size=1024B 'free space'=45.5%;20:;10:;0;100 junk load1=0.5",
        );
        assert_eq!(p.len(), 4, "{p:?}");
        assert_eq!(p[0].label, "time");
        assert_eq!((p[0].value, p[0].uom.as_str()), (0.012, "s"));
        assert_eq!(p[0].warn.as_deref(), Some("1"));
        assert_eq!(p[0].min, Some(0.0));
        assert_eq!(p[2].label, "free space");
        assert_eq!(p[2].warn.as_deref(), Some("20:"));
        assert_eq!(p[2].max, Some(100.0));
        assert_eq!(p[3].value, 0.5);
        assert!(parse_perfdata("=1 x=abc").is_empty());
    }

    #[test]
    fn outcomes_become_fields() {
        let ok = commands::Execution {
            exit: Some(0),
            stdout: b"DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n"
                .to_vec(),
            ..Default::default()
        };
        let f = fields("disk", &ok, Duration::from_secs(5));
        assert_eq!(f["disk_status"], "OK");
        assert_eq!(f["disk_status_code"], 0);
        assert_eq!(f["disk_output"], "DISK OK - free space: / 3326 MB (56%);");
        assert_eq!(f["disk_root"], 2643.0);
        assert_eq!(f["disk_perfdata"]["root"]["uom"], "MB");
        let stderr_only = commands::Execution {
            exit: Some(2),
            stderr: b"connection refused\n".to_vec(),
            ..Default::default()
        };
        let f = fields("web", &stderr_only, Duration::from_secs(5));
        assert_eq!(
            (f["web_status"].as_str(), f["web_output"].as_str()),
            (Some("CRITICAL"), Some("connection refused"))
        );
        let odd = commands::Execution {
            exit: Some(7),
            ..Default::default()
        };
        assert_eq!(
            fields("x", &odd, Duration::from_secs(5))["x_status"],
            "UNKNOWN"
        );
        let killed = commands::Execution {
            signal: Some(9),
            ..Default::default()
        };
        let f = fields("x", &killed, Duration::from_secs(5));
        assert_eq!(
            (f["x_status_code"].as_i64(), f["x_output"].as_str()),
            (Some(3), Some("killed by signal 9"))
        );
    }
}
