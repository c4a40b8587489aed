//! A W3C WebDriver client for Debian's chromium-driver: enough to log in, click, read the
//! page, run a script and take screenshots. Shared by the browser test and the web
//! benchmark.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver and one browser session.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    shots: PathBuf,
}

impl Browser {
    pub fn start(dir: &Path) -> Browser {
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

    pub fn call(&self, method: &str, path: &str, body: Value) -> Value {
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

    pub fn go(&self, url: &str) {
        self.call("POST", "/url", json!({ "url": url }));
    }

    pub fn url(&self) -> String {
        self.call("GET", "/url", Value::Null)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Runs a script in the page and returns its value.
    pub fn js(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
    }

    pub fn find(&self, css: &str) -> Option<String> {
        let v = self.call(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        );
        v[ELEMENT].as_str().map(String::from)
    }

    pub fn wait_find(&self, css: &str, within: Duration) -> String {
        let mut found = None;
        wait_for(within, || {
            found = self.find(css);
            found.is_some()
        });
        found.unwrap_or_else(|| panic!("no {css} on {} within {within:?}", self.url()))
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.wait_find(css, Duration::from_secs(10));
        self.call(
            "POST",
            &format!("/element/{e}/value"),
            json!({ "text": text }),
        );
    }

    pub fn click(&self, css: &str) {
        let e = self.wait_find(css, Duration::from_secs(10));
        self.call("POST", &format!("/element/{e}/click"), json!({}));
    }

    pub fn text(&self, css: &str) -> String {
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
    pub fn console_errors(&self) -> Vec<String> {
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

    pub fn screenshot(&self, name: &str) {
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

pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub fn base64_decode(text: &str) -> Vec<u8> {
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
