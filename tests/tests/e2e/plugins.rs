//! Issue 9: hbc's plugins through the real binaries. hbc runs with plugins against a real
//! server; what the server then shows (`/api/0/hosts/<h>/plugins`) is compared with what this
//! machine's /proc says, and with what fake `zpool` and Nagios check programs (real
//! processes, controlled output) printed.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;

/// An executable script in `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// Each plugin's latest data for `host`, as the API shows it.
fn plugins(server: &Server, host: &str) -> BTreeMap<String, Value> {
    let Some((200, body)) = http_get(server.http_port, &format!("/api/0/hosts/{host}/plugins"))
    else {
        return BTreeMap::new();
    };
    let v: Value = serde_json::from_str(&body).unwrap_or_default();
    v["plugins"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, p)| (k.clone(), p["data"].clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn wait_plugins(server: &Server, host: &str, names: &[&str], hbc: &Hbc) -> BTreeMap<String, Value> {
    let mut got = BTreeMap::new();
    let ok = wait_for(Duration::from_secs(30), || {
        got = plugins(server, host);
        names.iter().all(|n| got.contains_key(*n))
    });
    assert!(
        ok,
        "plugins missing: have {:?}, want {names:?}\nhbc:\n{}\nserver:\n{}",
        got.keys().collect::<Vec<_>>(),
        hbc.log_text(),
        server.log_text()
    );
    got
}

fn num(v: &Value, what: &str) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"))
}

fn meminfo_kb(key: &str) -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .expect("meminfo")
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix(key)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("{key} not in /proc/meminfo"))
}

fn proc_text(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

// Acceptance 1 and 2: every built-in plugin on this machine, and nagios_runner's outcomes.
#[test]
fn builtin_plugins_report_what_this_machine_says() {
    require_tool("ping", "iputils-ping");
    let server = Server::start("plugins", "");
    let dir = &server.dir;
    let checks = dir.join("checks");
    std::fs::create_dir_all(&checks).expect("mkdir");
    script(
        &checks,
        "ok",
        "echo 'HTTP OK: 200 in 0.012 s | time=0.012s;1;2;0;10 size=1024B;;;0'; exit 0",
    );
    script(
        &checks,
        "warn",
        "echo 'LOAD WARNING - load average: 5.1 | load1=5.1;5;10;0'; exit 1",
    );
    script(&checks, "crit", "echo 'DISK CRITICAL - / 97% used'; exit 2");
    script(&checks, "unknown", "echo 'UNKNOWN - cannot tell'; exit 3");
    script(
        &checks,
        "stderr",
        "echo 'connect: connection refused' >&2; exit 2",
    );
    script(&checks, "slow", "sleep 30");
    script(&checks, "killed", "kill -9 $$");
    script(
        &checks,
        "odd",
        "echo 'exit 42 means nothing to Nagios'; exit 42",
    );
    let zpool = script(
        dir,
        "zpool",
        "case \"$1\" in\n\
         list) printf 'tank\\t1000000\\t600000\\t400000\\t12\\t60\\t1.00\\tONLINE\\nbackup\\t2000000\\t100000\\t1900000\\t1\\t5\\t1.50\\tDEGRADED\\n' ;;\n\
         iostat) printf 'tank\\t600000\\t400000\\t5\\t7\\t4096\\t8192\\nbackup\\t100000\\t1900000\\t1\\t2\\t512\\t1024\\n' ;;\n\
         *) exit 2 ;;\n\
         esac",
    );
    let check = |name: &str| format!("{{name: {name}, command: {}}}", checks.join(name).display());
    let config = dir.join("hbc.yaml");
    std::fs::write(
        &config,
        format!(
            "name: plug1\ninterval: 1\nhb_port: {port}\nservers: [127.0.0.1]\nplugins:\n\
             \x20 os_info: {{}}\n\
             \x20 filesystem_info: {{}}\n\
             \x20 cpu_monitor: {{interval: 1, per_core: true}}\n\
             \x20 memory_monitor: {{interval: 1}}\n\
             \x20 disk_monitor: {{interval: 1}}\n\
             \x20 network_monitor: {{interval: 1}}\n\
             \x20 ping_monitor: {{interval: 2, hosts: [127.0.0.1, \"::1\"], count: 2}}\n\
             \x20 zfs_monitor: {{interval: 2, zpool: {zpool}}}\n\
             \x20 nagios_runner:\n\
             \x20   interval: 2\n\
             \x20   timeout: 2\n\
             \x20   commands: [{ok}, {warn}, {crit}, {unknown}, {stderr}, {slow}, {killed}, {odd}]\n",
            port = server.hb_port,
            zpool = zpool.display(),
            ok = check("ok"),
            warn = check("warn"),
            crit = check("crit"),
            unknown = check("unknown"),
            stderr = check("stderr"),
            slow = check("slow"),
            killed = check("killed"),
            odd = check("odd"),
        ),
    )
    .expect("config");
    let hbc = Hbc::start(dir, &["-c", config.to_str().expect("utf8")]);
    let all = [
        "os_info",
        "filesystem_info",
        "cpu_monitor",
        "memory_monitor",
        "disk_monitor",
        "network_monitor",
        "ping_monitor",
        "zfs_monitor",
        "nagios_runner",
    ];
    let started = Instant::now();
    let got = wait_plugins(&server, "plug1", &all, &hbc);
    eprintln!(
        "every plugin at the server {:?} after hbc started",
        started.elapsed()
    );

    // os_info against the kernel's own answers.
    let os = &got["os_info"];
    assert_eq!(os["os"], "Linux");
    assert_eq!(os["kernel"], proc_text("/proc/sys/kernel/osrelease").trim());
    assert_eq!(
        os["hostname"],
        proc_text("/proc/sys/kernel/hostname").trim()
    );
    let processors = proc_text("/proc/cpuinfo")
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    assert_eq!(
        num(&os["cpu_count"], "cpu_count") as usize,
        processors.max(1)
    );
    assert!((num(&os["memory_total_mb"], "memory") - meminfo_kb("MemTotal") / 1024.0).abs() < 0.01);
    assert!(os["architecture"].as_str().is_some_and(|a| !a.is_empty()));
    assert!(os["distribution"].is_string(), "{os}");

    // cpu_monitor: percentages in range, load and counts as /proc says now (they move).
    let cpu = &got["cpu_monitor"];
    for k in [
        "cpu_percent",
        "user_percent",
        "system_percent",
        "iowait_percent",
    ] {
        let v = num(&cpu[k], k);
        assert!((0.0..=100.0).contains(&v), "{k} = {v}");
    }
    let loadavg = proc_text("/proc/loadavg");
    let now_load: f64 = loadavg
        .split_whitespace()
        .next()
        .and_then(|x| x.parse().ok())
        .expect("load");
    assert!(
        (num(&cpu["load_1min"], "load") - now_load).abs() < now_load.max(1.0),
        "{cpu} vs {loadavg}"
    );
    let procs: f64 = loadavg
        .split_whitespace()
        .nth(3)
        .and_then(|x| x.split_once('/')?.1.parse().ok())
        .expect("procs");
    assert!(
        (num(&cpu["process_count"], "procs") - procs).abs() < procs * 0.5,
        "{cpu} vs {loadavg}"
    );
    let uptime: f64 = proc_text("/proc/uptime")
        .split_whitespace()
        .next()
        .and_then(|x| x.parse().ok())
        .expect("uptime");
    assert!((num(&cpu["uptime_seconds"], "uptime") - uptime).abs() < 30.0);
    assert_eq!(cpu["cpu_count"].as_u64(), Some(processors as u64));
    assert_eq!(cpu["per_core"].as_array().map(Vec::len), Some(processors));

    // memory_monitor against /proc/meminfo.
    let mem = &got["memory_monitor"];
    assert!((num(&mem["total_mb"], "total") - meminfo_kb("MemTotal") / 1024.0).abs() < 0.01);
    let available = num(&mem["available_mb"], "available");
    assert!(available > 0.0 && available <= num(&mem["total_mb"], "total"));
    assert!(
        (available - meminfo_kb("MemAvailable") / 1024.0).abs() < 512.0,
        "{mem}"
    );
    for k in ["percent", "swap_percent"] {
        assert!((0.0..=100.0).contains(&num(&mem[k], k)), "{k}: {mem}");
    }

    // disk_monitor and filesystem_info: the root file system, as statvfs says.
    let disk = &got["disk_monitor"];
    let root = &disk["partitions"]["/"];
    let st = nix::sys::statvfs::statvfs("/").expect("statvfs");
    let total_gb = st.blocks() as f64 * st.fragment_size() as f64 / (1u64 << 30) as f64;
    assert!(
        (num(&root["total_gb"], "total_gb") - total_gb).abs() < 0.02,
        "{root}"
    );
    for k in ["percent", "free_gb", "free_mb"] {
        assert!(num(&root[k], k) >= 0.0, "{k}: {root}");
    }
    assert!(num(&root["percent"], "percent") <= 100.0);
    assert!(
        disk["io"].as_object().is_some_and(|io| !io.is_empty()),
        "{disk}"
    );
    let fs = &got["filesystem_info"]["filesystems"];
    assert_eq!(
        fs.as_object().map(|m| m.keys().collect::<Vec<_>>()),
        disk["partitions"]
            .as_object()
            .map(|m| m.keys().collect::<Vec<_>>()),
        "the same file systems"
    );
    assert_eq!(fs["/"]["name_max"], 255, "{fs}");

    // network_monitor: loopback counters no higher than /proc/net/dev says now.
    let net = &got["network_monitor"];
    let lo = &net["interfaces"]["lo"];
    let dev = proc_text("/proc/net/dev");
    let lo_now: f64 = dev
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("lo:")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .expect("lo in /proc/net/dev");
    let lo_recv = num(&lo["bytes_recv"], "bytes_recv");
    assert!(lo_recv > 0.0 && lo_recv <= lo_now, "{lo} vs {lo_now}");
    assert!(num(&net["errors_total"], "errors_total") >= 0.0);
    assert!(num(&net["drops_total"], "drops_total") >= 0.0);
    assert!(
        num(&net["connections"]["tcp_listen"], "listen") >= 1.0,
        "the server listens: {net}"
    );

    // ping_monitor: loopback answers.
    let ping = &got["ping_monitor"];
    for target in ["127_0_0_1", "__1"] {
        let t = &ping["targets"][target];
        assert_eq!(t["loss_percent"], 0.0, "{ping}");
        assert!(
            (0.0..100.0).contains(&num(&t["rtt_avg_ms"], "rtt")),
            "{ping}"
        );
    }
    assert_eq!(ping["connectivity"], 100.0);

    // zfs_monitor from the fake zpool; the degraded pool raises the built-in alert.
    let zfs = &got["zfs_monitor"]["zpool"];
    assert_eq!(zfs["tank"]["health"], "ONLINE");
    assert_eq!(zfs["tank"]["health_ok"], 1);
    assert_eq!(zfs["tank"]["capacity"], 60.0);
    assert_eq!(zfs["tank"]["write_bytes_per_s"], 8192);
    assert_eq!(zfs["backup"]["health_ok"], 0);
    assert_eq!(zfs["backup"]["dedup"], 1.5);
    assert!(
        wait_for(Duration::from_secs(10), || http_get(
            server.http_port,
            "/api/0/alerts"
        )
        .is_some_and(
            |(_, b)| b.contains("plug1/zfs_monitor.zpool.backup.health_ok")
        )),
        "no alert for the degraded pool: {:?}",
        http_get(server.http_port, "/api/0/alerts")
    );

    // nagios_runner: each outcome (the slow check needs its 2 s timeout first).
    let mut n = got["nagios_runner"].clone();
    assert!(wait_for(Duration::from_secs(10), || {
        n = plugins(&server, "plug1")["nagios_runner"].clone();
        n.get("slow_status").is_some()
    }));
    for (check, status, code) in [
        ("ok", "OK", 0),
        ("warn", "WARNING", 1),
        ("crit", "CRITICAL", 2),
        ("unknown", "UNKNOWN", 3),
        ("stderr", "CRITICAL", 2),
        ("slow", "UNKNOWN", 3),
        ("killed", "UNKNOWN", 3),
        ("odd", "UNKNOWN", 3),
    ] {
        assert_eq!(n[format!("{check}_status")], status, "{check}: {n}");
        assert_eq!(n[format!("{check}_status_code")], code, "{check}: {n}");
    }
    assert_eq!(n["ok_output"], "HTTP OK: 200 in 0.012 s");
    assert_eq!(n["ok_time"], 0.012);
    assert_eq!(n["ok_perfdata"]["time"]["uom"], "s");
    assert_eq!(n["ok_perfdata"]["time"]["warn"], "1");
    assert_eq!(n["ok_perfdata"]["time"]["max"], 10.0);
    assert_eq!(n["ok_size"], 1024.0);
    assert_eq!(n["warn_load1"], 5.1);
    assert_eq!(n["stderr_output"], "connect: connection refused");
    assert!(
        n["slow_output"]
            .as_str()
            .is_some_and(|o| o.contains("timed out after 2 s")),
        "{n}"
    );
    assert_eq!(n["killed_output"], "killed by signal 9");
    assert_eq!(n["odd_exit_code"], 42);
    // The built-in Nagios threshold: the critical check alerts.
    assert!(
        wait_for(Duration::from_secs(10), || http_get(
            server.http_port,
            "/api/0/alerts"
        )
        .is_some_and(
            |(_, b)| b.contains("plug1/nagios_runner.crit_status_code")
        )),
        "no alert for the critical check"
    );

    // The heartbeat never waited for a plugin: the host stayed up throughout.
    assert_eq!(server.host("plug1").expect("host")["state"], "up");

    // A check program that is not there is refused at start, by name.
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "servers: [127.0.0.1]\nplugins:\n  nagios_runner:\n    commands: [{name: gone, command: /nonexistent/check_gone}]\n",
    )
    .expect("write");
    let out = std::process::Command::new(bin("hbc"))
        .args(["-n", "-c", bad.to_str().expect("utf8")])
        .output()
        .expect("hbc -n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("nagios_runner.gone: /nonexistent/check_gone"),
        "{err}"
    );
}

/// A tiny HTTP server on a fixed port that can be stopped and started again.
struct Service {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Service {
    fn start(port: u16, body: &'static str) -> Service {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the service port");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut buf = [0u8; 2048];
                        let _ = s.read(&mut buf);
                        let _ = write!(
                            s,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Service {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

// Acceptance 3: service checks against a local HTTP server and a TCP port that the test
// stops and starts: demote runs once when one goes down, promote once when it is back.
#[test]
fn service_checks_promote_and_demote_once_per_transition() {
    let server = Server::start("checks", "");
    let dir = &server.dir;
    let (http_port, tcp_port) = free_ports();
    let actions = dir.join("actions.log");
    let promote = script(
        dir,
        "promote",
        &format!("echo promote >> {}", actions.display()),
    );
    let demote = script(
        dir,
        "demote",
        &format!("echo demote >> {}", actions.display()),
    );
    let config = dir.join("hbc.yaml");
    std::fs::write(
        &config,
        format!(
            "name: svc1\ninterval: 1\nhb_port: {port}\nservers: [127.0.0.1]\nplugins:\n\
             \x20 service_checks:\n\
             \x20   interval: 1\n\
             \x20   checks:\n\
             \x20     - {{name: web, type: http, url: \"http://127.0.0.1:{http_port}/health\", expect_status: 200, expect_body: healthy, timeout: 1, action: primary}}\n\
             \x20     - {{name: db, type: tcp, host: 127.0.0.1, port: {tcp_port}, timeout: 1, action: primary}}\n\
             \x20   actions:\n\
             \x20     primary: {{promote: [{promote}], demote: [{demote}]}}\n",
            port = server.hb_port,
            promote = promote.display(),
            demote = demote.display(),
        ),
    )
    .expect("config");
    let mut web = Service::start(http_port, "healthy");
    let tcp = TcpListener::bind(("127.0.0.1", tcp_port)).expect("bind tcp");
    let hbc = Hbc::start(dir, &["-c", config.to_str().expect("utf8")]);
    let wait_lines = |want: &[&str]| wait_for(Duration::from_secs(15), || lines(&actions) == want);
    assert!(
        wait_lines(&["promote"]),
        "first state: {:?}\n{}",
        lines(&actions),
        hbc.log_text()
    );
    let shown = wait_plugins(&server, "svc1", &["service_checks"], &hbc);
    let checks = &shown["service_checks"];
    assert_eq!(checks["checks"]["web"]["ok"], 1, "{checks}");
    assert_eq!(checks["checks"]["web"]["status_code"], 200);
    assert_eq!(checks["checks"]["db"]["ok"], 1);
    assert_eq!(checks["actions"]["primary"]["state"], "promoted");

    // The web service goes away: demote, once, however many rounds fail.
    web.stop();
    assert!(wait_lines(&["promote", "demote"]), "{:?}", lines(&actions));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(lines(&actions), ["promote", "demote"], "demote ran again");
    let down = plugins(&server, "svc1")["service_checks"].clone();
    assert_eq!(down["checks"]["web"]["ok"], 0, "{down}");
    assert!(
        down["checks"]["web"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("connect")),
        "{down}"
    );
    assert_eq!(down["failing"], 1);

    // Back: promote once.
    let _web = Service::start(http_port, "healthy");
    assert!(
        wait_lines(&["promote", "demote", "promote"]),
        "{:?}",
        lines(&actions)
    );
    // The TCP port goes: demote again; a wrong body counts as down too (tested by the
    // unit tests); back: promote.
    drop(tcp);
    assert!(
        wait_lines(&["promote", "demote", "promote", "demote"]),
        "{:?}",
        lines(&actions)
    );
    let _tcp = TcpListener::bind(("127.0.0.1", tcp_port)).expect("bind tcp again");
    assert!(
        wait_lines(&["promote", "demote", "promote", "demote", "promote"]),
        "{:?}",
        lines(&actions)
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(lines(&actions).len(), 5, "one command per transition");
    assert_eq!(server.host("svc1").expect("host")["state"], "up");
}

// Acceptance 4: hbc -> server -> API; a threshold on cpu_monitor.cpu_percent fires when a
// custom plugin (replacing the built-in) forces the value. Custom plugins in JSON and in
// Nagios form, one too large for a datagram (trimmed, and saying so) and one that hangs
// (its error reported; the heartbeat and the other plugins go on).
#[test]
fn custom_plugins_reach_the_api_and_fire_thresholds() {
    let server = Server::start(
        "custom",
        "thresholds:\n  cpu_monitor:\n    cpu_percent: {warning: 80, critical: 90}\n",
    );
    let dir = &server.dir;
    let plugins_dir = dir.join("plugins.d");
    std::fs::create_dir_all(&plugins_dir).expect("mkdir");
    let forced = dir.join("cpu_value");
    std::fs::write(&forced, "12").expect("write");
    script(
        &plugins_dir,
        "cpu_monitor",
        &format!(
            "printf '{{\"cpu_percent\": %s, \"load_1min\": 0.1}}' \"$(cat {})\"",
            forced.display()
        ),
    );
    script(
        &plugins_dir,
        "my-app.sh",
        "echo '{\"queue_depth\": 17, \"workers\": {\"busy\": 3}}'",
    );
    script(
        &plugins_dir,
        "backup_age",
        "echo 'BACKUP WARNING - last backup 30 h ago | age=30h;24;48'; exit 1",
    );
    script(
        &plugins_dir,
        "huge",
        // 6,000 entries of 3 values each: more than a message may hold (20,000 values).
        "printf '{\"items\": {'; i=0; while [ $i -lt 6000 ]; do printf '\"i%04d\": {\"v\": %d, \"l\": \"x\"},' $i $i; i=$((i+1)); done; printf '\"last\": 0}, \"count\": 6001}'",
    );
    script(&plugins_dir, "stuck", "sleep 60");
    let config = dir.join("hbc.yaml");
    std::fs::write(
        &config,
        format!(
            "name: app1\ninterval: 1\nhb_port: {}\nservers: [127.0.0.1]\nplugins_dir: {}\nplugins:\n\
             \x20 cpu_monitor: {{interval: 1}}\n\
             \x20 my_app: {{interval: 1}}\n\
             \x20 backup_age: {{interval: 1}}\n\
             \x20 huge: {{interval: 30, timeout: 20}}\n\
             \x20 stuck: {{interval: 1, timeout: 1}}\n",
            server.hb_port,
            plugins_dir.display()
        ),
    )
    .expect("config");
    let hbc = Hbc::start(dir, &["-c", config.to_str().expect("utf8")]);
    let got = wait_plugins(
        &server,
        "app1",
        &["cpu_monitor", "my_app", "backup_age", "stuck", "huge"],
        &hbc,
    );
    assert_eq!(got["cpu_monitor"]["cpu_percent"], 12);
    assert_eq!(got["my_app"]["queue_depth"], 17);
    assert_eq!(got["my_app"]["workers"]["busy"], 3);
    assert_eq!(got["backup_age"]["backup_age_status"], "WARNING");
    assert_eq!(got["backup_age"]["backup_age_age"], 30.0);
    assert!(
        got["stuck"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("took longer than 1 s")),
        "{}",
        got["stuck"]
    );
    let huge = &got["huge"];
    assert_eq!(huge["count"], 6001, "small fields stay");
    let kept = huge["items"].as_object().map_or(0, serde_json::Map::len);
    assert!(kept > 1000 && kept < 6001, "{kept} items kept");
    assert!(
        huge["_trimmed"].to_string().contains("items:"),
        "the trimming is said: {}",
        huge["_trimmed"]
    );
    assert!(
        hbc.log_text().contains("trimmed to fit"),
        "{}",
        hbc.log_text()
    );

    // The threshold fires once the value goes over it.
    std::fs::write(&forced, "97").expect("write");
    assert!(
        wait_for(Duration::from_secs(15), || http_get(
            server.http_port,
            "/api/0/alerts"
        )
        .is_some_and(
            |(_, b)| b.contains("app1/cpu_monitor.cpu_percent") && b.contains("CRITICAL")
        )),
        "no cpu alert: {:?}\n{}",
        http_get(server.http_port, "/api/0/alerts"),
        server.log_text()
    );
    let host = server.host("app1").expect("host");
    assert_eq!(
        host["state"], "up",
        "the stuck plugin never held up the heartbeat"
    );
}

// A server that lost the host's plugin data (a fresh state) asks for it in its ACKs
// (`request_update`): hbc sends what it has at once, long before its monitors run again.
#[test]
fn a_server_without_the_data_gets_it_again_at_once() {
    let mut server = Server::start("resend", "");
    let config = server.dir.join("hbc.yaml");
    std::fs::write(
        &config,
        format!(
            "name: resend1\ninterval: 1\nhb_port: {}\nservers: [127.0.0.1]\nplugins:\n  cpu_monitor: {{interval: 3600}}\n",
            server.hb_port
        ),
    )
    .expect("config");
    let hbc = Hbc::start(&server.dir, &["-c", config.to_str().expect("utf8")]);
    wait_plugins(
        &server,
        "resend1",
        &["cpu_monitor", "os_info", "memory_monitor"],
        &hbc,
    );
    // The server starts over with nothing.
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
    std::fs::remove_dir_all(server.dir.join("state")).expect("wipe the state");
    server.spawn(&["-f"]);
    server.wait_running(Duration::from_secs(20));
    let back = Instant::now();
    let got = wait_plugins(
        &server,
        "resend1",
        &["cpu_monitor", "os_info", "memory_monitor"],
        &hbc,
    );
    eprintln!(
        "plugin data back {:?} after the server restarted",
        back.elapsed()
    );
    assert!(back.elapsed() < Duration::from_secs(15));
    assert!(got["cpu_monitor"]["cpu_percent"].is_number());
    assert!(
        hbc.log_text().contains("Server asked for plugin data"),
        "{}",
        hbc.log_text()
    );
}
