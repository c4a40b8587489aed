//! `ping_monitor`: round trip and loss to configured hosts, through the system's ping(8)
//! (it holds the privilege raw ICMP needs), run without a shell, all targets at once.

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::commands;

/// Minimum, average and maximum round trip, ms.
pub type Rtt = (f64, f64, f64);

/// What one ping run says: loss in percent, and the RTT when any answer came.
pub fn parse(text: &str) -> Option<(f64, Option<Rtt>)> {
    let loss = text.lines().find_map(|l| {
        let i = l.find("% packet loss")?;
        let start = l[..i].rfind([' ', ',']).map_or(0, |s| s + 1);
        l[start..i].trim().parse::<f64>().ok()
    })?;
    let rtt = text.lines().find_map(|l| {
        // iputils: "rtt min/avg/max/mdev = 0.030/0.040/0.050/0.010 ms"; busybox: "round-trip".
        let (_, figures) = l.split_once(" = ")?;
        if !(l.starts_with("rtt") || l.starts_with("round-trip")) {
            return None;
        }
        let mut n = figures
            .split_whitespace()
            .next()?
            .split('/')
            .map(|x| x.parse::<f64>().ok());
        Some((n.next()??, n.next()??, n.next()??))
    });
    Some((loss, rtt))
}

/// A target as a field name.
fn key(target: &str) -> String {
    target
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Pings every target `count` times; per target `loss_percent`, `rtt_min_ms`,
/// `rtt_avg_ms`, `rtt_max_ms`, `reachable`; and `connectivity`, the percent of targets that
/// answered.
pub async fn collect(ping: &str, targets: &[String], count: u32, timeout: Duration) -> Value {
    let runs = targets.iter().map(|t| {
        let argv = vec![
            ping.to_string(),
            "-n".into(),
            "-q".into(),
            "-c".into(),
            count.to_string(),
            "-i".into(),
            "0.2".into(),
            "-W".into(),
            timeout.as_secs().max(1).to_string(),
            t.clone(),
        ];
        let whole = timeout * (count + 1);
        async move { commands::execute(&argv, whole, &[]).await }
    });
    let outcomes = super::join_all(runs.collect::<Vec<_>>()).await;
    let mut out = Map::new();
    let mut reachable = 0;
    for (target, e) in targets.iter().zip(outcomes) {
        let text = String::from_utf8_lossy(&e.stdout);
        let v = match (e.error, parse(&text)) {
            (Some(error), _) => json!({"reachable": 0, "loss_percent": 100.0, "error": error}),
            (None, Some((loss, rtt))) => {
                let mut v = json!({"loss_percent": loss, "reachable": u8::from(loss < 100.0)});
                if let Some((min, avg, max)) = rtt {
                    v["rtt_min_ms"] = json!(min);
                    v["rtt_avg_ms"] = json!(avg);
                    v["rtt_max_ms"] = json!(max);
                }
                v
            }
            (None, None) => {
                let err = String::from_utf8_lossy(&e.stderr).trim().to_string();
                json!({"reachable": 0, "loss_percent": 100.0, "error": if err.is_empty() { "no answer".to_string() } else { err }})
            }
        };
        if v["reachable"] == 1 {
            reachable += 1;
        }
        out.insert(key(target), v);
    }
    let connectivity = if targets.is_empty() {
        0.0
    } else {
        100.0 * f64::from(reachable) / targets.len() as f64
    };
    json!({"targets": out, "connectivity": super::system::round2(connectivity)})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iputils_and_busybox_summaries() {
        let iputils = "PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data.\n\n--- 127.0.0.1 ping statistics ---\n3 packets transmitted, 3 received, 0% packet loss, time 409ms\nrtt min/avg/max/mdev = 0.031/0.045/0.060/0.011 ms\n";
        assert_eq!(parse(iputils), Some((0.0, Some((0.031, 0.045, 0.06)))));
        let lost = "3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2040ms\n";
        assert_eq!(parse(lost), Some((100.0, None)));
        let busybox = "3 packets transmitted, 2 packets received, 33% packet loss\nround-trip min/avg/max = 0.1/0.2/0.3 ms\n";
        assert_eq!(parse(busybox), Some((33.0, Some((0.1, 0.2, 0.3)))));
        assert_eq!(parse("ping: unknown host"), None);
    }
}
