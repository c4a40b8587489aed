//! `ping_monitor`: round trip and loss to configured hosts, through the system's ping(8)
//! (it holds the privilege raw ICMP needs), run without a shell, all targets at once.
//!
//! ping's flags differ between systems in name and unit (docs/PLATFORMS.md has the table),
//! so the [`Flavour`] is picked per system (and on Linux, iputils or busybox by looking at
//! the program), while the argument vectors and the parser of the summaries are plain
//! functions that the tests run on any system.

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::commands;

/// Minimum, average and maximum round trip, ms.
pub type Rtt = (f64, f64, f64);

/// Which ping(8): they differ in the flag for the wait and its unit, and in who may send
/// faster than once a second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// Linux's iputils: `-W` seconds per answer; `-i 0.2` is allowed to everyone.
    Iputils,
    /// busybox (Alpine, small images): `-W` seconds for the first answer, `-w` seconds in
    /// all; no `-n` in older versions, and `-i` left at its 1 s (older ones take whole
    /// seconds only).
    Busybox,
    /// FreeBSD: `-W` milliseconds per answer, `-t` seconds in all.
    FreeBsd,
    /// macOS: as FreeBSD.
    MacOs,
    /// OpenBSD: `-w` seconds to wait after the last request.
    OpenBsd,
    /// NetBSD: `-w` seconds in all.
    NetBsd,
}

/// The flavour of the system hbc was built for; on Linux, busybox when `ping` is busybox
/// (a link to it, or a program that calls itself BusyBox), else iputils.
pub fn flavour(ping: &str) -> Flavour {
    match std::env::consts::OS {
        "freebsd" | "dragonfly" => Flavour::FreeBsd,
        "macos" => Flavour::MacOs,
        "openbsd" => Flavour::OpenBsd,
        "netbsd" => Flavour::NetBsd,
        _ if is_busybox(ping) => Flavour::Busybox,
        _ => Flavour::Iputils,
    }
}

/// busybox ping is a link to busybox, or busybox itself under another name (a static
/// build copied in place), which says so when asked a flag it does not know.
fn is_busybox(ping: &str) -> bool {
    let target = std::fs::canonicalize(ping).unwrap_or_else(|_| ping.into());
    if target
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("busybox"))
    {
        return true;
    }
    // iputils prints its version for -V; busybox prints its banner and usage. Asked while
    // the configuration loads: a ping that does not answer within a second is not busybox.
    let Ok(mut child) = std::process::Command::new(ping)
        .arg("-V")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        return false;
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while std::time::Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) => {
                return child
                    .wait_with_output()
                    .is_ok_and(|o| banner_is_busybox(&o.stdout) || banner_is_busybox(&o.stderr));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

fn banner_is_busybox(text: &[u8]) -> bool {
    String::from_utf8_lossy(text).contains("BusyBox")
}

/// The argument vector that pings `target` `count` times, waiting `wait` for each answer.
/// Below one second between pings needs root on the BSDs and macOS, so others get 1 s.
pub fn argv(
    flavour: Flavour,
    ping: &str,
    count: u32,
    wait: Duration,
    root: bool,
    target: &str,
) -> Vec<String> {
    let secs = wait.as_secs().max(1);
    let fast = match flavour {
        Flavour::Iputils => true,
        Flavour::Busybox => false,
        _ => root,
    };
    let interval = if fast { "0.2" } else { "1" };
    // Every ping sent, then the wait for the last answer, in whole seconds.
    let sending = if fast {
        u64::from(count).div_ceil(5)
    } else {
        u64::from(count)
    };
    let deadline = sending + secs;
    // macOS's and NetBSD's ping are IPv4 only; their ping6 beside it is KAME's, with no
    // flag that bounds the wait: a target that never answers is killed at hbc's timeout.
    if matches!(flavour, Flavour::MacOs | Flavour::NetBsd)
        && target.parse::<std::net::Ipv6Addr>().is_ok()
    {
        let ping6 = std::path::Path::new(ping).with_file_name("ping6");
        return [
            &ping6.to_string_lossy(),
            "-n",
            "-q",
            "-c",
            &count.to_string(),
            "-i",
            interval,
            target,
        ]
        .map(str::to_string)
        .to_vec();
    }
    let mut v: Vec<String> = vec![ping.into()];
    let mut add = |args: &[&str]| v.extend(args.iter().map(std::string::ToString::to_string));
    match flavour {
        Flavour::Iputils => add(&["-n", "-q", "-c", &count.to_string(), "-i", interval]),
        Flavour::Busybox => add(&["-q", "-c", &count.to_string()]),
        _ => add(&["-n", "-q", "-c", &count.to_string(), "-i", interval]),
    }
    match flavour {
        Flavour::Iputils => add(&["-W", &secs.to_string()]),
        Flavour::Busybox => add(&["-W", &secs.to_string(), "-w", &deadline.to_string()]),
        Flavour::FreeBsd | Flavour::MacOs => add(&[
            "-W",
            &(secs * 1000).to_string(),
            "-t",
            &deadline.to_string(),
        ]),
        Flavour::OpenBsd => add(&["-w", &secs.to_string()]),
        Flavour::NetBsd => add(&["-w", &deadline.to_string()]),
    }
    v.push(target.to_string());
    v
}

/// What one ping run says: loss in percent, and the RTT when any answer came. Every
/// flavour prints `N packets transmitted, M [packets] received, ... X% packet loss`, and
/// with answers `rtt min/avg/max/mdev = ...` (iputils) or `round-trip min/avg/max[/stddev]
/// = ...` (busybox, the BSDs, macOS; OpenBSD's says `std-dev`).
pub fn parse(text: &str) -> Option<(f64, Option<Rtt>)> {
    let loss = text
        .lines()
        .find_map(|l| {
            let i = l.find("% packet loss")?;
            let start = l[..i].rfind([' ', ',']).map_or(0, |s| s + 1);
            l[start..i].trim().parse::<f64>().ok()
        })
        .or_else(|| {
            let (sent, received) = parse_counts(text)?;
            (sent > 0).then(|| {
                super::system::round2(
                    100.0 * f64::from(sent.saturating_sub(received)) / f64::from(sent),
                )
            })
        })?;
    let rtt = text.lines().find_map(|l| {
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

/// `N packets transmitted, M received` or `M packets received`: packets sent and answered.
pub fn parse_counts(text: &str) -> Option<(u32, u32)> {
    text.lines().find_map(|l| {
        let (sent, rest) = l.split_once(" packets transmitted, ")?;
        let sent = sent.trim().rsplit(' ').next()?.parse().ok()?;
        let received = rest.split([' ', ',']).next()?.parse().ok()?;
        Some((sent, received))
    })
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
pub async fn collect(
    flavour: Flavour,
    ping: &str,
    targets: &[String],
    count: u32,
    timeout: Duration,
) -> Value {
    let root = nix::unistd::geteuid().is_root();
    let runs = targets.iter().map(|t| {
        let argv = argv(flavour, ping, count, timeout, root, t);
        // Pings at most a second apart, then the wait: within (count + 1) waits of at
        // least a second each, which is ping's own deadline on some systems; two seconds
        // more, so that deadline comes first and a lossy target reports its loss.
        let whole = timeout.max(Duration::from_secs(1)) * (count + 1) + Duration::from_secs(2);
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
        assert_eq!(parse_counts(iputils), Some((3, 3)));
        let lost = "3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2040ms\n";
        assert_eq!(parse(lost), Some((100.0, None)));
        let busybox = "PING 192.0.2.1 (192.0.2.1): 56 data bytes\n\n--- 192.0.2.1 ping statistics ---\n3 packets transmitted, 2 packets received, 33% packet loss\nround-trip min/avg/max = 0.1/0.2/0.3 ms\n";
        assert_eq!(parse(busybox), Some((33.0, Some((0.1, 0.2, 0.3)))));
        assert_eq!(parse_counts(busybox), Some((3, 2)));
        assert_eq!(parse("ping: unknown host"), None);
        assert!(banner_is_busybox(
            b"BusyBox v1.36.1 (2023-11-07 18:53:09 UTC) multi-call binary.\n\nUsage: ping [OPTIONS] HOST\n"
        ));
        assert!(!banner_is_busybox(b"ping from iputils 20221126\n"));
    }

    #[test]
    fn bsd_and_macos_summaries() {
        let freebsd = "PING 192.0.2.1 (192.0.2.1): 56 data bytes\n\n--- 192.0.2.1 ping statistics ---\n3 packets transmitted, 3 packets received, +1 duplicates, 0.0% packet loss\nround-trip min/avg/max/stddev = 0.034/0.046/0.058/0.010 ms\n";
        assert_eq!(parse(freebsd), Some((0.0, Some((0.034, 0.046, 0.058)))));
        let macos = "PING 192.0.2.1 (192.0.2.1): 56 data bytes\n\n--- 192.0.2.1 ping statistics ---\n4 packets transmitted, 3 packets received, 25.0% packet loss\nround-trip min/avg/max/stddev = 11.024/14.587/19.309/3.451 ms\n";
        assert_eq!(parse(macos), Some((25.0, Some((11.024, 14.587, 19.309)))));
        let macos_none = "PING 192.0.2.1 (192.0.2.1): 56 data bytes\nRequest timeout for icmp_seq 0\n\n--- 192.0.2.1 ping statistics ---\n2 packets transmitted, 0 packets received, 100.0% packet loss\n";
        assert_eq!(parse(macos_none), Some((100.0, None)));
        let netbsd = "PING localhost (127.0.0.1): 56 data bytes\n\n----localhost PING Statistics----\n3 packets transmitted, 3 packets received, 0.0% packet loss\nround-trip min/avg/max/stddev = 0.021/0.030/0.042/0.011 ms\n";
        assert_eq!(parse(netbsd), Some((0.0, Some((0.021, 0.03, 0.042)))));
        let openbsd = "PING 192.0.2.1 (192.0.2.1): 56 data bytes\n\n--- 192.0.2.1 ping statistics ---\n3 packets transmitted, 3 packets received, 0.0% packet loss\nround-trip min/avg/max/std-dev = 0.050/0.060/0.070/0.008 ms\n";
        assert_eq!(parse(openbsd), Some((0.0, Some((0.05, 0.06, 0.07)))));
        // A summary without the percentage: the loss comes from the counts.
        assert_eq!(
            parse("4 packets transmitted, 1 packets received\n"),
            Some((75.0, None))
        );
    }

    #[test]
    fn each_flavour_gets_its_flags() {
        let w = Duration::from_secs(2);
        let line = |f, root| argv(f, "/sbin/ping", 3, w, root, "192.0.2.1").join(" ");
        assert_eq!(
            line(Flavour::Iputils, false),
            "/sbin/ping -n -q -c 3 -i 0.2 -W 2 192.0.2.1"
        );
        // 3 pings at 1 s, then 2 s for the last answer.
        assert_eq!(
            line(Flavour::Busybox, false),
            "/sbin/ping -q -c 3 -W 2 -w 5 192.0.2.1"
        );
        assert_eq!(
            line(Flavour::FreeBsd, false),
            "/sbin/ping -n -q -c 3 -i 1 -W 2000 -t 5 192.0.2.1"
        );
        // Root may send every 0.2 s: 0.6 s, rounded up, then the wait.
        assert_eq!(
            line(Flavour::FreeBsd, true),
            "/sbin/ping -n -q -c 3 -i 0.2 -W 2000 -t 3 192.0.2.1"
        );
        assert_eq!(
            line(Flavour::MacOs, false),
            "/sbin/ping -n -q -c 3 -i 1 -W 2000 -t 5 192.0.2.1"
        );
        assert_eq!(
            line(Flavour::OpenBsd, false),
            "/sbin/ping -n -q -c 3 -i 1 -w 2 192.0.2.1"
        );
        assert_eq!(
            line(Flavour::NetBsd, false),
            "/sbin/ping -n -q -c 3 -i 1 -w 5 192.0.2.1"
        );
        // IPv6 addresses go to ping6 where ping is IPv4 only.
        assert_eq!(
            argv(Flavour::MacOs, "/sbin/ping", 2, w, false, "2001:db8::1").join(" "),
            "/sbin/ping6 -n -q -c 2 -i 1 2001:db8::1"
        );
        assert_eq!(
            argv(Flavour::NetBsd, "/sbin/ping", 2, w, true, "::1").join(" "),
            "/sbin/ping6 -n -q -c 2 -i 0.2 ::1"
        );
        assert!(argv(Flavour::FreeBsd, "/sbin/ping", 2, w, false, "::1")[0] == "/sbin/ping");
        // A wait under a second is one second: every flavour counts whole ones or ms of them.
        let short = argv(
            Flavour::Iputils,
            "p",
            1,
            Duration::from_millis(300),
            false,
            "h",
        );
        assert_eq!(short.join(" "), "p -n -q -c 1 -i 0.2 -W 1 h");
        #[cfg(target_os = "linux")]
        assert_ne!(flavour("/nonexistent/ping"), Flavour::FreeBsd);
        #[cfg(target_os = "freebsd")]
        assert_eq!(flavour("/sbin/ping"), Flavour::FreeBsd);
    }
}
