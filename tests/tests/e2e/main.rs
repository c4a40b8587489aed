//! End-to-end tests of the foundation: the real hbsupervisor and role binaries, real
//! sockets, real signals. Root-only checks fail (never skip) when not run as root.

// A scenario starts one server and walks through its steps in order; cut into functions it
// would hide the order it tests. The code of the programs keeps the 120-line limit.
#![allow(clippy::too_many_lines)]

mod browser;
mod checks;
mod dns;
mod engine;
mod harness;
mod openapi;
mod plugins;
mod portable;
mod protocol;
mod tls;
mod web;
mod webdriver;

use std::process::Command;
use std::time::{Duration, Instant};

use harness::*;
use nix::sys::signal::Signal;

fn alive(pid: u32) -> bool {
    // A zombie still has /proc/PID, but its state is Z.
    proc_status(pid, "State").is_some_and(|s| !s.starts_with('Z'))
}

// 1. `-n` accepts etc/hb.yaml; syntax error, wrong type and unknown key: exit 78, line and key.
#[test]
fn config_check_accepts_example_and_names_errors() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../etc/hb.yaml");
    let out = Command::new(bin("hbsupervisor"))
        .args(["-n", "-c", example])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "etc/hb.yaml rejected (as root it needs the user _hb; the test command creates it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "configuration OK"
    );

    let dir = scratch("config");
    for (name, text, want) in [
        (
            "syntax",
            "hb_port: 50003\n- web1\n",
            vec![":2:", "did not find expected key"],
        ),
        (
            "type",
            "hb_port: 50003\ninterval: often\n",
            vec![":2:", "interval", "invalid type"],
        ),
        (
            "unknown",
            "hb_port: 50003\nhosts:\n  web1:\n    wach: true\n",
            vec![":4:", "hosts.web1.wach", "unknown field"],
        ),
        ("semantic", "hbd_port: 0\n", vec![":1:", "hbd_port"]),
    ] {
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, text).expect("write");
        let out = check_config(&path);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{name}: {err}");
        assert!(
            err.contains(&path.display().to_string()),
            "{name}: file not named: {err}"
        );
        for w in want {
            assert!(err.contains(w), "{name}: {w:?} not in {err:?}");
        }
    }
    let out = Command::new(bin("hbsupervisor"))
        .args(["-n", "-c", "/nonexistent/hb.yaml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(78));

    let out = Command::new(bin("hbc"))
        .args([
            "-n",
            "-c",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../etc/hbc.yaml"),
        ])
        .output()
        .expect("run hbc");
    assert!(
        out.status.success(),
        "etc/hbc.yaml: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// 2. A netcat datagram reaches the API within 1 s.
#[test]
fn netcat_heartbeat_is_listed_by_the_api() {
    require_tool("nc", "netcat-openbsd");
    require_tool("curl", "curl");
    let server = Server::start("skeleton", "");
    let sent = Instant::now();
    let mut nc = Command::new("nc")
        .args(["-u", "-w1", "127.0.0.1", &server.hb_port.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("nc");
    {
        use std::io::Write;
        let mut stdin = nc.stdin.take().expect("stdin");
        stdin
            .write_all(b"{\"ID\":\"HTB\",\"name\":\"web1\",\"interval\":10}\n")
            .expect("write");
    }
    let listed = wait_for(Duration::from_secs(1), || {
        let out = Command::new("curl")
            .args([
                "-s",
                &format!("http://127.0.0.1:{}/api/0/hosts", server.http_port),
            ])
            .output()
            .expect("curl");
        let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        body.as_array().is_some_and(|hosts| {
            hosts
                .iter()
                .any(|h| h["name"] == "web1" && h["last_seen"].as_f64().is_some_and(|t| t > 1.7e9))
        })
    });
    let elapsed = sent.elapsed();
    let _ = nc.wait();
    assert!(
        listed,
        "web1 not listed within 1 s; log:\n{}",
        server.log_text()
    );
    assert!(elapsed <= Duration::from_millis(1500), "took {elapsed:?}");
    // hbctl sees it through the supervisor's relay to the engine.
    let hosts = server.ctl(&["hosts"]).expect("hbctl hosts");
    assert_eq!(hosts["hosts"][0]["name"], "web1");
}

// 3. As root: users, NoNewPrivs, chroot, supervisor stays root, writes confined.
#[test]
fn children_run_confined_as_their_users() {
    assert!(
        is_root(),
        "this test checks privilege separation and must run as root (CI does)"
    );
    let server = Server::start("privsep", "");
    let status = server.status().expect("status");
    assert_eq!(status["unprivileged"], false);
    let sup = server.supervisor_pid();
    assert!(
        proc_status(sup, "Uid").is_some_and(|u| u.split_whitespace().all(|x| x == "0")),
        "supervisor lost root"
    );
    for (role, uid) in ROLE_UIDS {
        let pid = server
            .pid_of(role)
            .unwrap_or_else(|| panic!("{role} not running"));
        let want = format!("{uid}\t{uid}\t{uid}\t{uid}");
        assert_eq!(
            proc_status(pid, "Uid").as_deref(),
            Some(want.as_str()),
            "{role} uid"
        );
        assert_eq!(
            proc_status(pid, "Gid").as_deref(),
            Some(want.as_str()),
            "{role} gid"
        );
        assert_eq!(
            proc_status(pid, "Groups").as_deref(),
            Some(uid.to_string().as_str()),
            "{role} groups"
        );
        assert_eq!(
            proc_status(pid, "NoNewPrivs").as_deref(),
            Some("1"),
            "{role} no_new_privs"
        );
        let root = std::fs::read_link(format!("/proc/{pid}/root")).expect("root link");
        let chrooted = matches!(role, "receiver" | "web");
        if chrooted {
            assert_eq!(root, server.dir.join("empty"), "{role} not chrooted");
        } else {
            assert_eq!(root, std::path::PathBuf::from("/"), "{role} root");
        }
        let report = &server.child_status(role)["confinement"];
        assert_eq!(report["landlock"], "full", "{role}: {report}");
        assert_eq!(
            report["escaped"],
            serde_json::json!([]),
            "{role} could write outside: {report}"
        );
        let writable: Vec<String> =
            serde_json::from_value(report["writable"].clone()).expect("writable");
        if role == "engine" {
            assert_eq!(
                writable,
                [
                    server.dir.join("state").display().to_string(),
                    server.dir.join("state/journal").display().to_string()
                ]
            );
        } else {
            assert!(writable.is_empty(), "{role} may write {writable:?}");
        }
    }
    // The chroot is empty and root-owned: nothing inside it is writable by the children.
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(server.dir.join("empty")).expect("chroot");
    assert_eq!(meta.uid(), 0);
    assert_eq!(meta.mode() & 0o022, 0);
    assert_eq!(
        std::fs::read_dir(server.dir.join("empty"))
            .expect("ls")
            .count(),
        0
    );
    // The state directory belongs to the engine's user.
    assert_eq!(
        std::fs::metadata(server.dir.join("state"))
            .expect("state")
            .uid(),
        61002
    );
    assert!(server.pipeline_works("privsep1", Duration::from_secs(5)));
}

// 4. kill -9 of each child: restarted within 2 s, logged, counted, pipeline works again.
#[test]
fn killed_children_are_restarted_and_the_pipeline_recovers() {
    let server = Server::start("restart", "");
    assert!(server.pipeline_works("before", Duration::from_secs(5)));
    for (i, role) in ROLES.into_iter().enumerate() {
        let old = server.pid_of(role).expect("pid");
        let others: Vec<(String, Option<u32>)> = ROLES
            .iter()
            .filter(|r| **r != role)
            .map(|r| (r.to_string(), server.pid_of(r)))
            .collect();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(old as i32), Signal::SIGKILL)
            .expect("kill");
        let killed = Instant::now();
        // A heartbeat sent while the receiver or the engine is down must not be lost: the
        // UDP socket (held by the supervisor) or the receiver's link queue keeps it.
        let held = format!("held-{role}");
        if matches!(role, "receiver" | "engine") {
            assert!(
                wait_for(
                    Duration::from_secs(2),
                    || server.child_status(role)["state"] == "restarting"
                ),
                "{role} death not noticed"
            );
            server.send_heartbeat(&held);
        }
        let back = wait_for(Duration::from_secs(2), || {
            let c = server.child_status(role);
            c["state"] == "running" && c["pid"].as_u64().is_some_and(|p| p as u32 != old)
        });
        assert!(
            back,
            "{role} not back within 2 s ({:?}); log:\n{}",
            killed.elapsed(),
            server.log_text()
        );
        if matches!(role, "receiver" | "engine") {
            assert!(
                wait_for(Duration::from_secs(3), || server
                    .host_names()
                    .contains(&held)),
                "heartbeat sent while {role} was down was lost; log:\n{}",
                server.log_text()
            );
        }
        let c = server.child_status(role);
        assert_eq!(c["restarts"], 1, "{role}: {c}");
        assert_eq!(c["last_exit"], "killed by signal SIGKILL", "{role}: {c}");
        let log = server.log_text();
        assert!(
            log.lines().any(|l| l.contains("Lost child.")
                && l.contains(&format!("role={role}"))
                && l.contains(&format!("pid={old}"))
                && l.contains("SIGKILL")),
            "restart of {role} not logged:\n{log}"
        );
        // Only the killed child was replaced.
        for (other, pid) in others {
            assert_eq!(
                server.pid_of(&other),
                pid,
                "{other} changed when {role} was killed"
            );
        }
        assert!(
            server.pipeline_works(&format!("after-{i}"), Duration::from_secs(5)),
            "pipeline broken after killing {role}; log:\n{}",
            server.log_text()
        );
    }
}

// 5. A child that exits at once every time: give up after the budget, exit non-zero, no leftovers.
#[test]
fn crash_loop_exhausts_the_budget_and_stops_everything() {
    let mut server = Server::prepare("crashloop", "");
    let libexec = libexec_with(&server.dir, "hb-notifier", "#!/bin/sh\nexit 3\n");
    server.append_config(&format!(
        "libexec_dir: {}
",
        libexec.display()
    ));
    server.spawn(&["-f"]);
    let code = server.wait_exit(Duration::from_secs(40));
    let log = server.log_text();
    assert!(
        matches!(code, Some(c) if c != 0),
        "supervisor did not give up (exit {code:?}); log:\n{log}"
    );
    assert!(log.contains("Child keeps dying; giving up"), "{log}");
    assert_eq!(
        log.matches("Lost child. role=notifier").count(),
        6,
        "budget of 5 restarts:\n{log}"
    );
    let spawned = server.spawned_pids();
    assert!(spawned.len() >= 10, "{spawned:?}");
    assert!(
        wait_for(Duration::from_secs(2), || spawned
            .iter()
            .all(|p| !alive(*p))),
        "leftover processes: {:?}",
        spawned.iter().filter(|p| alive(**p)).collect::<Vec<_>>()
    );
}

// 6. SIGHUP: a valid change raises the generation; a broken file keeps the old one running.
#[test]
fn sighup_reload_is_a_transaction() {
    let server = Server::start("reload", "");
    let base = std::fs::read_to_string(&server.config).expect("read");
    assert_eq!(server.status().expect("status")["generation"], 1);

    std::fs::write(
        &server.config,
        format!("{base}hosts:\n  web9:\n    interval: 30\n"),
    )
    .expect("write");
    server.signal(Signal::SIGHUP);
    assert!(
        server.wait_log("Reload complete, generation 2.", Duration::from_secs(5)),
        "no reload; log:\n{}",
        server.log_text()
    );
    let status = server.status().expect("status");
    assert_eq!(status["generation"], 2);
    assert!(
        status["children"]
            .as_array()
            .expect("children")
            .iter()
            .all(|c| c["generation"] == 2),
        "{status}"
    );
    // The engine applies it: the configured interval wins over the announced one.
    assert!(server.pipeline_works("web9", Duration::from_secs(5)));
    let (_, body) = http_get(server.http_port, "/api/0/hosts").expect("hosts");
    assert!(body.contains("\"interval\":30"), "{body}");

    let pids: Vec<Option<u32>> = ROLES.iter().map(|r| server.pid_of(r)).collect();
    std::fs::write(
        &server.config,
        format!("{base}hosts:\n  web9:\n    interval: soon\n"),
    )
    .expect("write");
    server.signal(Signal::SIGHUP);
    assert!(
        server.wait_log(
            "Reload failed; keeping the configuration in force",
            Duration::from_secs(5)
        ),
        "{}",
        server.log_text()
    );
    assert!(
        server.log_text().contains("hosts.web9.interval"),
        "error does not name the key"
    );
    // hbctl reload reports the same error and changes nothing.
    assert!(server.ctl(&["reload"]).is_none());
    let status = server.status().expect("status");
    assert_eq!(status["generation"], 2);
    let after: Vec<Option<u32>> = ROLES.iter().map(|r| server.pid_of(r)).collect();
    assert_eq!(pids, after, "children restarted by a failed reload");
    assert!(server.pipeline_works("still-up", Duration::from_secs(5)));
    // And a fixed file reloads again, through hbctl this time.
    std::fs::write(&server.config, &base).expect("write");
    assert_eq!(server.ctl(&["reload"]).expect("reload")["generation"], 3);
}

// 7 and 9. Without -f: detaches, pid file, log file; SIGTERM stops everything, pid file removed.
#[test]
fn daemon_mode_and_sigterm() {
    let mut server = Server::prepare("daemon", "");
    let pidfile = server.dir.join("hb.pid");
    // A pid file naming a live process: the daemon refuses, and the terminal is told.
    std::fs::write(&pidfile, format!("{}\n", std::process::id())).expect("write");
    server.spawn(&[]);
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(71));
    assert!(
        server.log_text().contains("failed to start"),
        "{}",
        server.log_text()
    );
    std::fs::remove_file(&pidfile).expect("rm");

    server.spawn(&[]);
    // The foreground process exits once the daemon is ready: the pid file is there already.
    assert_eq!(
        server.wait_exit(Duration::from_secs(10)),
        Some(0),
        "did not detach: {}",
        server.log_text()
    );
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .expect("pid file written before the parent exits")
        .trim()
        .parse()
        .expect("number");
    assert!(alive(pid));
    assert_ne!(
        Some(pid),
        server.child.as_ref().map(std::process::Child::id),
        "did not fork"
    );
    // A new session: no controlling terminal to lose.
    let sid = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .expect("stat")
        .rsplit(')')
        .next()
        .and_then(|rest| rest.split_whitespace().nth(3).map(String::from))
        .expect("sid");
    assert_eq!(sid, pid.to_string(), "not a session leader");
    server.wait_running(Duration::from_secs(20));
    let log = server.dir.join("daemon.log");
    let text = std::fs::read_to_string(&log).expect("daemon.log");
    for program in [
        "hbsupervisor",
        "hb-receiver",
        "hb-engine",
        "hb-notifier",
        "hb-dnsupdate",
        "hb-web",
    ] {
        assert!(
            text.contains(&format!(" {program}[")),
            "{program} does not log to the log file:\n{text}"
        );
    }
    assert!(server.pipeline_works("daemonized", Duration::from_secs(5)));
    let children = server.spawned_pids();
    assert_eq!(children.len(), 5);
    let sent = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGTERM).expect("term");
    let gone = wait_for(Duration::from_secs(5), || {
        !alive(pid) && children.iter().all(|c| !alive(*c))
    });
    assert!(gone, "processes left after SIGTERM ({:?})", sent.elapsed());
    assert!(!pidfile.exists(), "pid file not removed");
    assert!(!server.socket().exists(), "control socket not removed");
}

// 7. SIGTERM to a foreground server: everything gone within the grace period, exit 0.
#[test]
fn sigterm_stops_all_processes_within_the_grace_period() {
    let mut server = Server::start("sigterm", "");
    let children = server.spawned_pids();
    assert_eq!(children.len(), 5);
    server.signal(Signal::SIGTERM);
    assert_eq!(
        server.wait_exit(Duration::from_secs(5)),
        Some(0),
        "{}",
        server.log_text()
    );
    assert!(children.iter().all(|c| !alive(*c)), "orphans left");
}

// 8. A child that writes an oversized line, invalid JSON or a wrong-version Hello on fd 3 is
// cut off and restarted; the supervisor and the other children are unaffected.
#[test]
fn misbehaving_children_are_cut_off_and_restarted() {
    let cases = [
        ("oversized", "head -c 6000000 /dev/zero | tr '\\0' x >&3"),
        ("garbage", "printf 'this is not json\\n' >&3"),
        (
            "badversion",
            "printf '{\"type\":\"hello\",\"role\":\"notifier\",\"version\":\"0.0.0\",\"pid\":%s}\\n' $$ >&3",
        ),
        (
            "wrongrole",
            "printf '{\"type\":\"hello\",\"role\":\"engine\",\"version\":\"%s\",\"pid\":%s}\\n' VERSION $$ >&3",
        ),
    ];
    for (name, misbehave) in cases {
        let mut server = Server::prepare(&format!("misbehave-{name}"), "");
        let marker = server.dir.join("misbehaved");
        // Misbehave on the first start only, then run the real notifier.
        let script = format!(
            "#!/bin/sh\nif [ ! -e {m} ]; then : > {m}; {misbehave}; sleep 30; exit 0; fi\nexec {real} \"$@\"\n",
            m = marker.display(),
            misbehave = misbehave.replace("VERSION", &version()),
            real = bin("hb-notifier").display(),
        );
        let libexec = libexec_with(&server.dir, "hb-notifier", &script);
        server.append_config(&format!(
            "libexec_dir: {}
",
            libexec.display()
        ));
        server.spawn(&["-f"]);
        server.wait_running(Duration::from_secs(20));
        let log = server.log_text();
        let notifier = server.child_status("notifier");
        assert_eq!(notifier["restarts"], 1, "{name}: {notifier}\n{log}");
        assert!(
            log.contains("Protocol violation on control channel") || log.contains("Bad Hello"),
            "{name}: violation not logged:\n{log}"
        );
        for role in ["receiver", "engine", "dnsupdate", "web"] {
            assert_eq!(
                server.child_status(role)["restarts"],
                0,
                "{name}: {role} was affected"
            );
        }
        assert!(
            server.pipeline_works(name, Duration::from_secs(5)),
            "{name}: pipeline broken"
        );
        assert!(alive(server.supervisor_pid()));
    }
}

/// The version every child must report (hb_ipc::VERSION).
fn version() -> String {
    format!("{}+ipc1", env!("CARGO_PKG_VERSION"))
}

// 10. The systemd units pass systemd-analyze verify.
#[test]
fn systemd_units_verify() {
    require_tool("systemd-analyze", "systemd");
    let dir = scratch("units");
    for unit in ["hb.service", "hbc.service"] {
        let text = std::fs::read_to_string(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../contrib/systemd/").to_owned() + unit,
        )
        .expect("unit");
        // Installed paths do not exist in a build tree; point them at the built binaries.
        let text = text
            .replace(
                "/usr/sbin/hbsupervisor",
                &bin("hbsupervisor").display().to_string(),
            )
            .replace("/usr/bin/hbc", &bin("hbc").display().to_string());
        let path = dir.join(unit);
        std::fs::write(&path, text).expect("write");
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .expect("systemd-analyze");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && !err.contains(unit), "{unit}: {err}");
    }
}

// hbctl passwd prints a hash the server accepts in `users`, and that verifies.
#[test]
fn hbctl_passwd_hash_is_accepted_by_the_config() {
    use std::io::Write;
    let mut child = Command::new(bin("hbctl"))
        .args(["passwd", "alice"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("hbctl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"correct horse\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_string();
    assert!(hash.starts_with("pbkdf2:sha256:600000$"), "{hash}");
    let dir = scratch("passwd");
    let path = dir.join("hb.yaml");
    std::fs::write(
        &path,
        format!("users:\n  alice:\n    admin: true\n    password: \"{hash}\"\nuser: nobody\n"),
    )
    .expect("write");
    let out = check_config(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(bin("hbctl"))
        .args(["passwd", "bad name"])
        .output()
        .expect("run");
    assert!(!out.status.success());
}

// Hostile datagrams and control-socket requests: refused, nothing crashes, the rest works.
#[test]
fn hostile_input_is_refused_without_harm() {
    use std::io::{Read, Write};
    let server = Server::start("hostile", "drophosts: [dropped]\n");
    let pids: Vec<Option<u32>> = ["receiver", "engine", "web"]
        .iter()
        .map(|r| server.pid_of(r))
        .collect();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let big = vec![b'{'; 65_000];
    let deep = "[".repeat(10_000);
    let long_name = format!("{{\"ID\":\"HTB\",\"name\":\"{}\"}}", "a".repeat(300));
    let hostile: Vec<&[u8]> = vec![
        b"",
        b"\x00\xff\xfe garbage",
        b"not json",
        &big,
        deep.as_bytes(),
        b"{\"ID\":\"HTB\"}",
        b"{\"ID\":\"HTB\",\"name\":\"web 1\"}",
        b"{\"ID\":\"HTB\",\"name\":\"a\\nupdate delete x\"}",
        b"{\"ID\":\"HTB\",\"name\":\"a;b\"}",
        b"{\"ID\":\"HTB\",\"name\":42}",
        b"{\"ID\":\"HTB\",\"name\":\"x\",\"interval\":-1}",
        b"{\"ID\":\"HTB\",\"name\":\"x\",\"interval\":1e99}",
        b"{\"ID\":\"NOPE\",\"name\":\"x\"}",
        b"{\"ID\":\"HTB\",\"name\":\"dropped\"}",
        long_name.as_bytes(),
    ];
    for datagram in &hostile {
        udp.send_to(datagram, ("127.0.0.1", server.hb_port))
            .expect("send");
    }
    assert!(server.pipeline_works("valid-after-garbage", Duration::from_secs(5)));
    assert_eq!(
        server.host_names(),
        ["valid-after-garbage"],
        "a hostile datagram was accepted"
    );

    // The control socket: garbage, an unknown request, an oversized line, a silent client.
    let exchange = |payload: &[u8]| -> String {
        let mut stream = std::os::unix::net::UnixStream::connect(server.socket()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(35)))
            .expect("timeout");
        let _ = stream.write_all(payload);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    };
    for payload in [
        &b"garbage\n"[..],
        b"{\"request\":\"shell\",\"cmd\":\"id\"}\n",
        b"{\"request\":\"status\",\"extra\":1}\n",
        &vec![b'x'; 100_000],
        b"",
    ] {
        let answer = exchange(payload);
        assert!(
            answer.contains("\"response\":\"error\""),
            "{:?} -> {answer}",
            String::from_utf8_lossy(&payload[..payload.len().min(40)])
        );
    }
    let after: Vec<Option<u32>> = ["receiver", "engine", "web"]
        .iter()
        .map(|r| server.pid_of(r))
        .collect();
    assert_eq!(pids, after, "a child restarted");
    assert!(server.status().is_some());
}

// No -c and no /etc/hb.yaml: the built-in default runs without root, on loopback, with its
// state in the user's directory, in unprivileged mode (still no_new_privs and Landlock).
#[test]
fn builtin_default_runs_unprivileged() {
    assert!(
        !std::path::Path::new("/etc/hb.yaml").exists(),
        "/etc/hb.yaml exists on this machine, so the built-in default cannot be tested"
    );
    let home = scratch("builtin");
    let mut cmd = if is_root() {
        // Drop to an ordinary user, as a newcomer would run it.
        require_tool("setpriv", "util-linux");
        nix::unistd::chown(
            &home,
            Some(nix::unistd::Uid::from_raw(61010)),
            Some(nix::unistd::Gid::from_raw(61010)),
        )
        .expect("chown");
        // From a copy that user can reach: the build tree may sit in a directory only root
        // may enter (a clone in `mktemp -d`), and the supervisor starts the roles from its
        // own directory.
        let bins = home.join("bin");
        std::fs::create_dir_all(&bins).expect("bin dir");
        for program in [
            "hbsupervisor",
            "hb-receiver",
            "hb-engine",
            "hb-notifier",
            "hb-dnsupdate",
            "hb-web",
        ] {
            std::fs::copy(bin(program), bins.join(program)).expect("copy a binary");
        }
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=61010", "--regid=61010", "--clear-groups"])
            .arg(bins.join("hbsupervisor"));
        cmd
    } else {
        Command::new(bin("hbsupervisor"))
    };
    let log = home.join("stderr.log");
    let mut child = cmd
        .arg("-f")
        .env_clear()
        .env("HOME", &home)
        .env("PATH", "/usr/bin:/bin")
        .stdout(std::fs::File::create(&log).expect("log"))
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn");
    let socket = home.join(".local/state/hb/hb.sock");
    let status = || -> Option<serde_json::Value> {
        let out = Command::new(bin("hbctl"))
            .arg("-s")
            .arg(&socket)
            .args(["-j", "status"])
            .output()
            .ok()?;
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .ok()
            .map(|v| v["status"].clone())
    };
    let up = wait_for(Duration::from_secs(20), || {
        status().is_some_and(|s| {
            s["children"]
                .as_array()
                .is_some_and(|c| c.iter().all(|c| c["state"] == "running"))
        })
    });
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    if !up {
        let _ = child.kill();
        panic!(
            "built-in default did not start (ports 50003/50004 busy?):\n{}",
            text()
        );
    }
    let s = status().expect("status");
    assert_eq!(s["unprivileged"], true);
    assert_eq!(s["config"], "built-in default");
    assert!(
        text().contains("unprivileged mode"),
        "no warning:\n{}",
        text()
    );
    for c in s["children"].as_array().expect("children") {
        let report = &c["confinement"];
        assert_eq!(report["chroot"], serde_json::Value::Null);
        assert_eq!(report["no_new_privs"], true);
        assert_eq!(report["landlock"], "full", "{c}");
        assert_eq!(report["escaped"], serde_json::json!([]), "{c}");
    }
    // The default listeners: loopback 50003 and 50004.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let listed = wait_for(Duration::from_secs(5), || {
        let _ = udp.send_to(b"{\"ID\":\"HTB\",\"name\":\"builtin1\"}", "127.0.0.1:50003");
        http_get(50004, "/api/0/hosts")
            .is_some_and(|(code, body)| code == 200 && body.contains("builtin1"))
    });
    let state = home.join(".local/state/hb");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        Signal::SIGTERM,
    );
    let _ = child.wait();
    assert!(
        listed,
        "heartbeat on the default port not listed:\n{}",
        text()
    );
    assert!(
        state.join("journal").is_dir(),
        "state not in the per-user directory"
    );
}

// A child that refuses a new configuration: everyone goes back to the previous one.
#[test]
fn reload_rejected_by_a_child_rolls_back() {
    let mut server = Server::prepare("rollback", "");
    // A stand-in notifier speaking the control protocol: it refuses generation 2.
    let script = format!(
        r#"#!/bin/bash
printf '{{"type":"hello","role":"notifier","version":"{version}","pid":%s}}\n' $$ >&3
while read -r line <&3; do
  case "$line" in
    *'"type":"config"'*)
      gen=$(printf '%s' "$line" | sed 's/.*"generation":\([0-9]*\).*/\1/')
      if [ "$gen" = 2 ]; then
        printf '{{"type":"config_rejected","generation":2,"reason":"test refuses"}}\n' >&3
      else
        printf '{{"type":"config_applied","generation":%s}}\n' "$gen" >&3
      fi ;;
    *'"type":"shutdown"'*) exit 0 ;;
  esac
done
"#,
        version = version()
    );
    let libexec = libexec_with(&server.dir, "hb-notifier", &script);
    let base = format!(
        "{}libexec_dir: {}\n",
        std::fs::read_to_string(&server.config).expect("read"),
        libexec.display()
    );
    std::fs::write(&server.config, &base).expect("write");
    server.spawn(&["-f"]);
    server.wait_running(Duration::from_secs(20));
    std::fs::write(
        &server.config,
        format!("{base}hosts:\n  web9:\n    interval: 30\n"),
    )
    .expect("write");
    assert!(
        server.ctl(&["reload"]).is_none(),
        "a rejected reload reported success"
    );
    let status = server.status().expect("status");
    assert_eq!(status["generation"], 3, "{status}");
    let log = server.log_text();
    assert!(
        log.contains("test refuses") && log.contains("rolled back"),
        "{log}"
    );
    // Everyone acknowledged the rollback, and the engine runs the old configuration again.
    assert!(wait_for(Duration::from_secs(5), || {
        server.status().is_some_and(|s| {
            s["children"]
                .as_array()
                .is_some_and(|c| c.iter().all(|c| c["generation"] == 3))
        })
    }));
    assert!(server.pipeline_works("web9", Duration::from_secs(5)));
    let (_, body) = http_get(server.http_port, "/api/0/hosts").expect("hosts");
    assert!(
        body.contains("\"interval\":10"),
        "new configuration still in force: {body}"
    );
    assert_eq!(
        server.child_status("notifier")["restarts"],
        0,
        "{}",
        server.log_text()
    );
}
