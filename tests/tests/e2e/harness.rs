//! Runs the real binaries: a server per test in its own directory and ports.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Where the binaries are: `HB_BIN_DIR`, else the target directory this test runs from.
pub fn bin_dir() -> PathBuf {
    let dir = match std::env::var_os("HB_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let exe = std::env::current_exe().expect("test executable path");
            // target/debug/deps/e2e-xxxx -> target/debug
            exe.parent()
                .and_then(Path::parent)
                .expect("target dir")
                .to_path_buf()
        }
    };
    for bin in [
        "hbsupervisor",
        "hb-receiver",
        "hb-engine",
        "hb-notifier",
        "hb-dnsupdate",
        "hb-web",
        "hbctl",
        "hbc",
    ] {
        assert!(
            dir.join(bin).is_file(),
            "{} missing: build the binaries first (`cargo build --workspace --bins`; the README's test command does it)",
            dir.join(bin).display()
        );
    }
    dir
}

/// `hbsupervisor -n -c PATH`: what the configuration check says of a file.
pub fn check_config(path: &Path) -> std::process::Output {
    Command::new(bin("hbsupervisor"))
        .arg("-n")
        .arg("-c")
        .arg(path)
        .output()
        .expect("run hbsupervisor -n")
}

/// Logs in through the API; the session token.
pub fn api_login(port: u16, user: &str, password: &str) -> String {
    let body = serde_json::json!({"username": user, "password": password}).to_string();
    let r = http(
        port,
        "POST",
        "/api/0/auth/login",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    r.json()["token"]
        .as_str()
        .unwrap_or_else(|| panic!("login as {user}: {} {}", r.status, r.body))
        .to_string()
}

pub fn bin(name: &str) -> PathBuf {
    bin_dir().join(name)
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Fails (never skips) when a tool the test needs is missing.
pub fn require_tool(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(tool).is_file()));
    assert!(
        found,
        "{tool} is missing: install the Debian package {package} (the README's test command does)"
    );
}

/// A UDP and TCP port pair free on loopback right now.
pub fn free_ports() -> (u16, u16) {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
        let http = tcp.local_addr().expect("addr").port();
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let hb = udp.local_addr().expect("addr").port();
        if hb != http {
            return (hb, http);
        }
    }
}

/// A fresh directory, unique per test, in the system temp directory rather than the target
/// directory: children run as other users and must be able to traverse to their state, which
/// a checkout in a private (0700) directory would not allow.
pub fn scratch(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "hb-e2e-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    // Children running as other users must be able to reach state below it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

/// Every role, as named in `hbctl status`.
pub const ROLES: [&str; 5] = ["receiver", "engine", "notifier", "dnsupdate", "web"];

/// Test users when root: numeric ids need no passwd entries.
pub const ROLE_UIDS: [(&str, u32); 5] = [
    ("receiver", 61001),
    ("engine", 61002),
    ("notifier", 61003),
    ("dnsupdate", 61004),
    ("web", 61005),
];

pub struct Server {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub hb_port: u16,
    pub http_port: u16,
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl Server {
    /// Writes a config (with `extra` appended) without starting anything.
    pub fn prepare(name: &str, extra: &str) -> Server {
        let dir = scratch(name);
        let (hb_port, http_port) = free_ports();
        let mut yaml = format!(
            "hb_port: {hb_port}\nhbd_port: {http_port}\nstate_dir: {state}\nchroot_dir: {empty}\ncontrol_socket: {dir}/hb.sock\npidfile: {dir}/hb.pid\nlogfile: {dir}/daemon.log\nshutdown_grace: 5\n",
            state = dir.join("state").display(),
            empty = dir.join("empty").display(),
            dir = dir.display(),
        );
        if is_root() {
            for (role, uid) in ROLE_UIDS {
                yaml.push_str(&format!("{role}_user: \"{uid}:{uid}\"\n"));
            }
        }
        yaml.push_str(extra);
        let config = dir.join("hb.yaml");
        std::fs::write(&config, yaml).expect("write config");
        let log = dir.join("stderr.log");
        Server {
            dir,
            config,
            hb_port,
            http_port,
            child: None,
            log,
        }
    }

    /// Starts `hbsupervisor -f` and waits until every role runs.
    pub fn start(name: &str, extra: &str) -> Server {
        // Free ports are probed, then bound by the server: another test can take one in
        // between. A bind failure (exit 71) is retried on new ports.
        for _ in 0..3 {
            let mut server = Server::prepare(name, extra);
            server.spawn(&["-f", "-v"]);
            let exited = wait_for(Duration::from_millis(300), || {
                server
                    .child
                    .as_mut()
                    .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
            });
            if exited && server.log_text().contains("Cannot bind") {
                continue;
            }
            server.wait_running(Duration::from_secs(20));
            return server;
        }
        panic!("no free ports after three tries");
    }

    /// Adds lines to the configuration file.
    pub fn append_config(&self, lines: &str) {
        let text = std::fs::read_to_string(&self.config).expect("read config");
        std::fs::write(&self.config, format!("{text}{lines}")).expect("write config");
    }

    pub fn spawn(&mut self, flags: &[&str]) {
        let log = std::fs::File::create(&self.log).expect("log file");
        let child = Command::new(bin("hbsupervisor"))
            .args(flags)
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("spawn hbsupervisor");
        self.child = Some(child);
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("hb.sock")
    }

    /// `hbctl -j ARGS`, parsed; None when hbctl fails.
    pub fn ctl(&self, args: &[&str]) -> Option<Value> {
        let out = Command::new(bin("hbctl"))
            .arg("-s")
            .arg(self.socket())
            .arg("-j")
            .args(args)
            .output()
            .expect("run hbctl");
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// `hbctl counters ROLE` as name -> value (missing names read as 0).
    pub fn counters(&self, role: &str) -> Value {
        self.ctl(&["counters", role])
            .map_or(Value::Null, |v| v["counters"].clone())
    }

    /// A counter, 0 when absent.
    pub fn counter(&self, role: &str, name: &str) -> u64 {
        self.counters(role)[name].as_u64().unwrap_or(0)
    }

    /// The engine's recent events (`hbctl messages`), oldest first.
    pub fn messages(&self) -> Vec<String> {
        self.ctl(&["messages"])
            .and_then(|v| v["messages"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|m| m["msg"].as_str().map(String::from))
            .collect()
    }

    /// Events from the store (`hbctl events [HOST] N`), newest first, as (time, text).
    pub fn events(&self, host: Option<&str>, n: u32) -> Vec<(u64, String)> {
        let n = n.to_string();
        let args: Vec<&str> = ["events"]
            .into_iter()
            .chain(host)
            .chain([n.as_str()])
            .collect();
        self.ctl(&args)
            .and_then(|v| v["messages"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|e| {
                (
                    e["time_ms"].as_u64().unwrap_or(0),
                    e["msg"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    /// `kill -9` of a role's process.
    pub fn kill_9(&self, role: &str) {
        self.signal_role(role, nix::sys::signal::Signal::SIGKILL);
    }

    /// Sends `sig` to a role's process (SIGSTOP freezes it, SIGCONT lets it run again).
    pub fn signal_role(&self, role: &str, sig: nix::sys::signal::Signal) {
        let pid = self.pid_of(role).expect("pid");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).expect("signal");
    }

    /// Starts hbload against this server with `args`, its output piped (one JSON line on
    /// stdout when it ends).
    pub fn hbload(&self, args: &[&str]) -> std::process::Child {
        std::process::Command::new(bin("hbload"))
            .args(["-s", &format!("127.0.0.1:{}", self.hb_port)])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("hbload")
    }

    /// Every host in /api/0/hosts (none if the web does not answer).
    pub fn hosts(&self) -> Vec<Value> {
        match http_get(self.http_port, "/api/0/hosts") {
            Some((200, body)) => serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v.as_array().cloned())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// One host's entry in /api/0/hosts.
    pub fn host(&self, name: &str) -> Option<Value> {
        self.hosts().into_iter().find(|h| h["name"] == name)
    }

    pub fn status(&self) -> Option<Value> {
        self.ctl(&["status"]).map(|v| v["status"].clone())
    }

    pub fn child_status(&self, role: &str) -> Value {
        let status = self.status().expect("hbctl status");
        status["children"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["role"] == role))
            .cloned()
            .unwrap_or_else(|| panic!("no {role} in status"))
    }

    pub fn pid_of(&self, role: &str) -> Option<u32> {
        self.child_status(role)["pid"].as_u64().map(|p| p as u32)
    }

    pub fn wait_running(&self, within: Duration) {
        let ok = wait_for(within, || {
            self.status().is_some_and(|s| {
                s["children"]
                    .as_array()
                    .is_some_and(|c| c.len() == 5 && c.iter().all(|c| c["state"] == "running"))
            })
        });
        assert!(
            ok,
            "server did not come up within {within:?}; log:\n{}",
            self.log_text()
        );
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, within: Duration) -> bool {
        wait_for(within, || self.log_text().contains(needle))
    }

    pub fn send_heartbeat(&self, name: &str) {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let msg = format!("{{\"ID\":\"HTB\",\"name\":\"{name}\",\"interval\":10}}");
        socket
            .send_to(msg.as_bytes(), ("127.0.0.1", self.hb_port))
            .expect("send");
    }

    /// Names in /api/0/hosts.
    pub fn host_names(&self) -> Vec<String> {
        self.hosts()
            .iter()
            .filter_map(|h| h["name"].as_str().map(String::from))
            .collect()
    }

    /// Sends heartbeats for `name` until the API lists it.
    pub fn pipeline_works(&self, name: &str, within: Duration) -> bool {
        wait_for(within, || {
            self.send_heartbeat(name);
            std::thread::sleep(Duration::from_millis(50));
            self.host_names().iter().any(|n| n == name)
        })
    }

    /// Every child pid the supervisor logged starting.
    pub fn spawned_pids(&self) -> Vec<u32> {
        let text = std::fs::read_to_string(&self.log)
            .into_iter()
            .chain(std::fs::read_to_string(self.dir.join("daemon.log")))
            .collect::<String>();
        text.lines()
            .filter(|l| l.contains("Started child."))
            .filter_map(|l| l.split("pid=").nth(1))
            .filter_map(|p| p.split_whitespace().next()?.parse().ok())
            .collect()
    }

    pub fn supervisor_pid(&self) -> u32 {
        self.child.as_ref().expect("started").id()
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.supervisor_pid() as i32),
            sig,
        )
        .expect("signal");
    }

    /// Waits for the supervisor to exit and returns its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let daemon = std::fs::read_to_string(self.dir.join("hb.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok());
        let supervisor = self
            .child
            .as_mut()
            .and_then(|child| match child.try_wait() {
                Ok(None) => Some(child.id() as i32),
                _ => None,
            });
        for pid in supervisor.into_iter().chain(daemon) {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let gone = wait_for(Duration::from_secs(15), || {
                if let Some(child) = self.child.as_mut() {
                    let _ = child.try_wait();
                }
                nix::sys::signal::kill(pid, None).is_err()
            });
            if !gone {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in self
            .spawned_pids()
            .into_iter()
            .chain(processes_mentioning(&self.dir.to_string_lossy()))
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Polls `check` every 50 ms until it holds or `within` passes.
pub fn wait_for(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A GET on loopback: (status, body), `None` when nobody answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let r = http(port, "GET", path, &[], b"");
    (r.status != 0).then_some((r.status, r.body))
}

/// An HTTP answer.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// One HTTP/1.1 request on loopback, from `source` (an address of 127.0.0.0/8), with
/// `Connection: close`; chunked answers are decoded.
pub fn http_from(
    source: &str,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let socket = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(5),
    );
    // A source other than 127.0.0.1 needs a bound socket before connecting; std cannot, so
    // nix does it.
    let stream = if source == "127.0.0.1" {
        socket.ok()
    } else {
        Some(bound_stream(source, port))
    };
    // Nobody listening: status 0, so callers can poll for a server coming up.
    let Some(mut stream) = stream else {
        return HttpResponse {
            status: 0,
            headers: Vec::new(),
            body: String::new(),
        };
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("send request");
    // A server may refuse early (413) and close; what it answered is still readable.
    let _ = stream.write_all(body);
    let raw = read_response(&mut stream);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        let mut out = String::new();
        let mut rest = rest;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
                break;
            };
            if size == 0 || after.len() < size {
                break;
            }
            out.push_str(&after[..size]);
            rest = after[size..].trim_start_matches("\r\n");
        }
        out
    } else {
        rest.to_string()
    };
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// Reads one answer: up to its Content-Length, or the end of a chunked body, or the close
/// (some servers keep the connection open despite `Connection: close`).
fn read_response(stream: &mut TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let text = String::from_utf8_lossy(&raw);
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_ascii_lowercase();
            let body = raw.len() - end - 4;
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if length.is_some_and(|n| body >= n)
                || (head.contains("transfer-encoding: chunked") && text.ends_with("0\r\n\r\n"))
            {
                return raw;
            }
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return raw,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
}

fn bound_stream(source: &str, port: u16) -> TcpStream {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket};
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("socket");
    let from: std::net::SocketAddrV4 = format!("{source}:0").parse().expect("source address");
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(from),
    )
    .expect("bind source");
    let to = SockaddrIn::from(std::net::SocketAddrV4::new([127, 0, 0, 1].into(), port));
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &to).expect("connect");
    TcpStream::from(fd)
}

/// Opens a WebSocket to `path` on loopback: the status of the handshake's answer and, on
/// 101, the stream positioned at the first frame. `recv_buffer` shrinks the client's
/// receive buffer (a client that reads slowly, or never).
pub fn ws_connect(
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    recv_buffer: Option<usize>,
) -> (u16, Option<TcpStream>) {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn, connect, setsockopt, socket, sockopt,
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("socket");
    if let Some(size) = recv_buffer {
        setsockopt(&fd, sockopt::RcvBuf, &size).expect("SO_RCVBUF");
    }
    let to = SockaddrIn::from(std::net::SocketAddrV4::new([127, 0, 0, 1].into(), port));
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &to).expect("connect");
    let mut stream = TcpStream::from(fd);
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("handshake");
    // The head, a byte at a time, so no frame is consumed with it.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let status = String::from_utf8_lossy(&head)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, (status == 101).then_some(stream))
}

/// The next text frame of a WebSocket (pings skipped); `None` when it closed or failed.
pub fn ws_read_text(stream: &mut TcpStream) -> Option<String> {
    loop {
        let mut head = [0u8; 2];
        stream.read_exact(&mut head).ok()?;
        let opcode = head[0] & 0x0f;
        let mut len = u64::from(head[1] & 0x7f);
        if len == 126 {
            let mut b = [0u8; 2];
            stream.read_exact(&mut b).ok()?;
            len = u64::from(u16::from_be_bytes(b));
        } else if len == 127 {
            let mut b = [0u8; 8];
            stream.read_exact(&mut b).ok()?;
            len = u64::from_be_bytes(b);
        }
        let mut payload = vec![0u8; usize::try_from(len).ok()?];
        stream.read_exact(&mut payload).ok()?;
        match opcode {
            0x1 => return String::from_utf8(payload).ok(),
            0x8 => return None,
            _ => continue,
        }
    }
}

/// [`http_from`] 127.0.0.1.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    http_from("127.0.0.1", port, method, path, headers, body)
}

/// Pids whose command line mentions `needle` (our scratch dirs are unique per test).
pub fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// Field of /proc/PID/status, e.g. "Uid".
/// The value at fraction `p` (0 to 1) of sorted figures; NaN when there are none.
#[allow(dead_code)] // The benches' (they share this file).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub fn proc_status(pid: u32, field: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix(&format!("{field}:"))
            .map(|v| v.trim().to_string())
    })
}

/// A directory of role binaries where `role` is replaced by a shell script (the others are
/// symlinks to the real ones), for tests of misbehaving children.
pub fn libexec_with(dir: &Path, role_binary: &str, script: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let libexec = dir.join("libexec");
    std::fs::create_dir_all(&libexec).expect("libexec");
    for bin in [
        "hb-receiver",
        "hb-engine",
        "hb-notifier",
        "hb-dnsupdate",
        "hb-web",
    ] {
        let path = libexec.join(bin);
        if bin == role_binary {
            std::fs::write(&path, script).expect("script");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        } else {
            std::os::unix::fs::symlink(bin_dir().join(bin), &path).expect("symlink");
        }
    }
    libexec
}

/// A running `hbc`, killed when dropped.
pub struct Hbc {
    pub child: Child,
    pub log: PathBuf,
}

impl Hbc {
    pub fn start(dir: &Path, args: &[&str]) -> Hbc {
        let log = dir.join(format!("hbc-{}.log", N_HBC.fetch_add(1, Ordering::Relaxed)));
        let file = std::fs::File::create(&log).expect("log");
        let child = Command::new(bin("hbc"))
            .args(args)
            .env_remove("HOME")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("dup"))
            .stderr(file)
            .spawn()
            .expect("spawn hbc");
        Hbc { child, log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Hbc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

static N_HBC: AtomicU32 = AtomicU32::new(0);

/// Sends one datagram from a given local address (the receiver rate-limits per address).
pub fn send_from(source: &str, to_port: u16, datagram: &[u8]) {
    let socket = UdpSocket::bind((source, 0)).expect("bind source");
    socket
        .send_to(datagram, ("127.0.0.1", to_port))
        .expect("send");
}

/// `echo DATAGRAM | nc -u -w1 127.0.0.1 PORT`, as an operator would; returns when nc exits.
pub fn netcat(port: u16, datagram: &[u8]) {
    use std::io::Write;
    require_tool("nc", "netcat-openbsd");
    let mut nc = Command::new("nc")
        .args(["-u", "-w1", "127.0.0.1", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("nc");
    if let Some(mut stdin) = nc.stdin.take() {
        stdin.write_all(datagram).expect("write to nc");
    }
    let _ = nc.wait();
}

/// A recording HTTP server: answers each path from a script (status codes, in turn; the
/// last repeats; 0 never answers; 1200 is a 200 after 300 ms; `*` for other paths, else
/// 404) and records every request.
pub struct Recorder {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Recorded>>>,
}

/// One request the recorder got.
#[derive(Clone)]
pub struct Recorded {
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorder {
    pub fn start(script: &[(&str, &[u16])]) -> Recorder {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script: std::collections::HashMap<String, Vec<u16>> = script
            .iter()
            .map(|(p, s)| (p.to_string(), s.to_vec()))
            .collect();
        let counts = Arc::new(Mutex::new(std::collections::HashMap::<String, usize>::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, script, counts) = (log.clone(), script.clone(), counts.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    let mut parts = line.split_whitespace();
                    let method = parts.next().unwrap_or("").to_string();
                    let path = parts.next().unwrap_or("").to_string();
                    let mut headers = Vec::new();
                    let mut length = 0;
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.trim().split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                length = v.trim().parse().unwrap_or(0);
                            }
                            headers.push((k.to_ascii_lowercase(), v.trim().to_string()));
                        }
                    }
                    let mut body = vec![0; length];
                    let _ = reader.read_exact(&mut body);
                    log.lock().expect("log").push(Recorded {
                        at: Instant::now(),
                        method,
                        path: path.clone(),
                        headers,
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                    let statuses = script
                        .get(&path)
                        .or_else(|| script.get("*"))
                        .cloned()
                        .unwrap_or_else(|| vec![404]);
                    let n = {
                        let mut c = counts.lock().expect("counts");
                        let n = c.entry(path).or_insert(0);
                        *n += 1;
                        *n - 1
                    };
                    let status = statuses[n.min(statuses.len() - 1)];
                    if status == 0 {
                        std::thread::sleep(Duration::from_secs(60));
                        return;
                    }
                    // 1200: a slow 200, 300 ms late.
                    let status = if status == 1200 {
                        std::thread::sleep(Duration::from_millis(300));
                        200
                    } else {
                        status
                    };
                    let extra = if status == 429 {
                        "Retry-After: 2\r\n"
                    } else {
                        ""
                    };
                    let mut out = stream;
                    let _ = write!(
                        out,
                        "HTTP/1.1 {status} X\r\n{extra}Content-Length: 2\r\nConnection: close\r\n\r\nok"
                    );
                });
            }
        });
        Recorder { port, seen }
    }

    /// How often each notification id (the webhook body's `id`) came to `path`.
    pub fn ids(&self, path: &str) -> BTreeMap<u64, usize> {
        let mut ids = BTreeMap::new();
        for r in self.requests(path) {
            let body: Value = serde_json::from_str(&r.body).expect("json");
            *ids.entry(body["id"].as_u64().expect("id")).or_insert(0) += 1;
        }
        ids
    }

    pub fn requests(&self, path: &str) -> Vec<Recorded> {
        self.seen
            .lock()
            .expect("seen")
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}
