//! Issue 8, acceptance 3: the dashboard in a real browser. Headless Chromium driven over W3C
//! WebDriver (Debian's chromium and chromium-driver): log in, watch /live, a host appearing
//! and going overdue without a reload, a host's charts, and acknowledging an alert.
//! Screenshots of each page are saved under target/tmp/screenshots.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver and one browser session.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
    shots: PathBuf,
}

impl Browser {
    fn start(dir: &Path) -> Browser {
        for (path, package) in [
            ("/usr/bin/chromedriver", "chromium-driver"),
            ("/usr/bin/chromium", "chromium"),
        ] {
            assert!(
                Path::new(path).is_file(),
                "{path} is missing: install the Debian package {package} (the README's test command does)"
            );
        }
        let port = free_tcp_port();
        let log = std::fs::File::create(dir.join("chromedriver.log")).expect("log");
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        assert!(
            wait_for(Duration::from_secs(20), || {
                http(port, "GET", "/status", &[], b"").json()["value"]["ready"] == true
            }),
            "chromedriver did not become ready"
        );
        let profile = dir.join("chromium-profile");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let r = http(
            port,
            "POST",
            "/session",
            &[("Content-Type", "application/json")],
            caps.to_string().as_bytes(),
        );
        let session = r.json()["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {} {}", r.status, r.body))
            .to_string();
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        Browser {
            driver,
            port,
            session,
            shots,
        }
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let body = if method == "GET" {
            String::new()
        } else {
            body.to_string()
        };
        let r = http(
            self.port,
            method,
            &path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        r.json()["value"].clone()
    }

    fn go(&self, url: &str) {
        self.call("POST", "/url", json!({ "url": url }));
    }

    fn url(&self) -> String {
        self.call("GET", "/url", Value::Null)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Runs a script in the page and returns its value.
    fn js(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
    }

    fn find(&self, css: &str) -> Option<String> {
        let v = self.call(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        );
        v[ELEMENT].as_str().map(String::from)
    }

    fn wait_find(&self, css: &str, within: Duration) -> String {
        let mut found = None;
        wait_for(within, || {
            found = self.find(css);
            found.is_some()
        });
        found.unwrap_or_else(|| panic!("no {css} on {} within {within:?}", self.url()))
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.wait_find(css, Duration::from_secs(10));
        self.call(
            "POST",
            &format!("/element/{e}/value"),
            json!({ "text": text }),
        );
    }

    fn click(&self, css: &str) {
        let e = self.wait_find(css, Duration::from_secs(10));
        self.call("POST", &format!("/element/{e}/click"), json!({}));
    }

    fn text(&self, css: &str) -> String {
        match self.find(css) {
            Some(e) => self
                .call("GET", &format!("/element/{e}/text"), Value::Null)
                .as_str()
                .unwrap_or("")
                .to_string(),
            None => String::new(),
        }
    }

    /// The browser console's errors since the last call (script errors, CSP violations).
    fn console_errors(&self) -> Vec<String> {
        self.call("POST", "/se/log", json!({"type": "browser"}))
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e["level"] == "SEVERE")
                    .filter_map(|e| e["message"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn screenshot(&self, name: &str) {
        let b64 = self.call("GET", "/screenshot", Value::Null);
        let png = base64_decode(b64.as_str().unwrap_or(""));
        assert!(
            png.starts_with(b"\x89PNG"),
            "screenshot {name} is not a PNG"
        );
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("save screenshot");
        eprintln!("screenshot: {}", path.display());
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = http(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            &[],
            b"",
        );
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// Heartbeats (with an RTT) of `host` every `period`, and a cpu_monitor report every
/// other beat, until dropped.
struct Beating {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Beating {
    fn start(port: u16, host: &'static str, period: Duration) -> Beating {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
            let mut i = 0u32;
            while !flag.load(Ordering::Relaxed) {
                let rtt = 0.5 + f64::from(i % 7) * 0.3;
                let beat =
                    json!({"ID": "HTB", "name": host, "interval": 1, "rtt": rtt, "ver": "0.1.0"});
                let _ = socket.send_to(beat.to_string().as_bytes(), ("127.0.0.1", port));
                if i.is_multiple_of(2) {
                    let plg = json!({"ID": "PLG", "name": host, "plugin": "cpu_monitor",
                        "data": {"cpu_percent": 10 + (i % 5) * 7, "load_1min": 0.4}});
                    let _ = socket.send_to(plg.to_string().as_bytes(), ("127.0.0.1", port));
                }
                i += 1;
                std::thread::sleep(period);
            }
        });
        Beating {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Beating {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn the_dashboard_lives_in_a_real_browser() {
    let dir = scratch("browser");
    let password = hb_supervisor::passwd::PasswordHash::with_salt("alice-pw", "browsersalt", 1000);
    let config = format!(
        "users:\n  alice: {{password: \"{password}\", admin: true}}\ninterval: 1\nmax_missed: 2\ngrace: 1\nhosts:\n  db1: {{watch: true}}\n"
    );
    let server = Server::start("browser", &config);
    let base = format!("http://127.0.0.1:{}", server.http_port);
    let _web1 = Beating::start(server.hb_port, "web1", Duration::from_millis(500));
    // db1 says hello once and goes silent: it will be down, with an alert to acknowledge.
    send_from(
        "127.0.0.1",
        server.hb_port,
        br#"{"ID":"HTB","name":"db1","interval":1}"#,
    );
    let browser = Browser::start(&dir);

    // Log in: /live sends an anonymous browser to /login, and back after.
    browser.go(&format!("{base}/live"));
    browser.wait_find("#login", Duration::from_secs(10));
    assert!(browser.url().contains("/login?next="), "{}", browser.url());
    browser.screenshot("login");
    browser.type_into("#username", "alice");
    browser.type_into("#password", "alice-pw");
    browser.click("#login-button");
    browser.wait_find("tr[data-host='web1']", Duration::from_secs(10));
    assert!(browser.url().ends_with("/live"), "{}", browser.url());
    assert!(
        wait_for(Duration::from_secs(10), || browser.text("#conn") == "live"),
        "the live feed did not connect"
    );

    // A new host appears without a reload within 2 s of its first heartbeat.
    browser.js("window.hbNoReload = 42;");
    let started = Instant::now();
    let new1 = Beating::start(server.hb_port, "new1", Duration::from_millis(500));
    browser.wait_find("tr[data-host='new1']", Duration::from_secs(5));
    let appeared = started.elapsed();
    eprintln!("new1 appeared on /live {appeared:?} after its first heartbeat");
    assert!(appeared < Duration::from_secs(2), "took {appeared:?}");
    assert_eq!(
        browser.js("return window.hbNoReload;"),
        json!(42),
        "the page reloaded"
    );
    assert!(
        wait_for(Duration::from_secs(5), || browser
            .text("tr[data-host='web1'] .seen")
            .ends_with("s ago")),
        "last seen does not tick"
    );
    browser.screenshot("live");

    // Stopped, it turns overdue (then down) on the page, still without a reload.
    drop(new1);
    let stopped = Instant::now();
    assert!(
        wait_for(Duration::from_secs(10), || {
            let class =
                browser.js("return document.querySelector(\"tr[data-host='new1']\").className;");
            let class = class.as_str().unwrap_or("");
            class.contains("st-overdue") || class.contains("st-down")
        }),
        "new1 never turned overdue on the page"
    );
    eprintln!(
        "new1 turned overdue on /live {:?} after its last heartbeat",
        stopped.elapsed()
    );
    assert_eq!(browser.js("return window.hbNoReload;"), json!(42));
    browser.screenshot("live-overdue");

    // The host's page: its RTT chart and its plugin's charts are drawn.
    browser.click("tr[data-host='web1'] .name a");
    browser.wait_find("#rtt-chart svg polyline", Duration::from_secs(10));
    browser.wait_find(
        "#plugin-cpu_monitor .chart[data-metric='cpu_monitor.cpu_percent'] svg polyline",
        Duration::from_secs(10),
    );
    let points = browser.js(
        "return document.querySelector('#rtt-chart svg polyline').getAttribute('points').split(' ').length;",
    );
    assert!(
        points.as_u64().unwrap_or(0) >= 2,
        "RTT chart points: {points}"
    );
    browser.screenshot("host");

    // /alerts: db1's down alert, acknowledged with its button.
    browser.go(&format!("{base}/alerts"));
    browser.wait_find(
        "tr[data-key='db1/down'] button.ack",
        Duration::from_secs(15),
    );
    assert!(
        browser.text("#alert-count") != "0",
        "the navigation shows no alerts"
    );
    browser.screenshot("alerts");
    browser.click("tr[data-key='db1/down'] button.ack");
    assert!(
        wait_for(Duration::from_secs(5), || browser
            .text("tr[data-key='db1/down']")
            .contains("acknowledged by alice")),
        "acknowledging did not show"
    );
    let alerts = http(
        server.http_port,
        "GET",
        "/api/0/alerts",
        &[(
            "Authorization",
            &format!(
                "Bearer {}",
                http(
                    server.http_port,
                    "POST",
                    "/api/0/auth/login",
                    &[("Content-Type", "application/json")],
                    br#"{"username":"alice","password":"alice-pw"}"#
                )
                .json()["token"]
                    .as_str()
                    .unwrap_or("")
            ),
        )],
        b"",
    )
    .json();
    assert!(
        alerts.as_array().is_some_and(|a| a
            .iter()
            .any(|x| x["key"] == "db1/down" && x["acknowledged_by"] == "alice")),
        "{alerts}"
    );
    browser.screenshot("alerts-acknowledged");

    browser.go(&format!("{base}/settings"));
    browser.wait_find("#users tbody tr", Duration::from_secs(10));
    browser.screenshot("settings");

    // No page broke the CSP or threw: the console has no errors (a 401 before login is
    // the only expected one).
    let errors: Vec<String> = browser
        .console_errors()
        .into_iter()
        .filter(|e| !e.contains("401"))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}
