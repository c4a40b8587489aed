//! Issue 8, acceptance 3: the dashboard in a real browser. Headless Chromium driven over W3C
//! WebDriver (Debian's chromium and chromium-driver): log in, watch /live, a host appearing
//! and going overdue without a reload, a host's charts, and acknowledging an alert.
//! Screenshots of each page are saved under target/tmp/screenshots.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::*;
use crate::webdriver::Browser;

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
    let password = hb_child::passwd::PasswordHash::with_salt("alice-pw", "browsersalt", 1000);
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
    let auth = format!(
        "Bearer {}",
        api_login(server.http_port, "alice", "alice-pw")
    );
    let alerts = http(
        server.http_port,
        "GET",
        "/api/0/alerts",
        &[("Authorization", &auth)],
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
    browser.wait_find("#profiles pre", Duration::from_secs(10));
    browser.wait_find("#config-file", Duration::from_secs(10));
    // A channel made with the form, its fields drawn from the type's options; its secrets
    // never come back to the page.
    browser.wait_find(
        "#channel-type option[value=webhook]",
        Duration::from_secs(10),
    );
    browser.js(
        "const s = document.getElementById('channel-type'); s.value = 'webhook'; s.dispatchEvent(new Event('change'));",
    );
    browser.type_into("#channel-name", "alice-hook");
    browser.type_into("input[data-option=url]", "http://127.0.0.1:9/SECRET-path");
    browser.type_into("input[data-option=secret]", "SECRET-key");
    browser.click("#channel-submit");
    browser.wait_find("tr[data-channel=alice-hook]", Duration::from_secs(10));
    let row = browser.text("tr[data-channel=alice-hook]");
    assert!(row.contains("secret, url"), "{row}");
    browser.go(&format!("{base}/settings"));
    browser.wait_find("tr[data-channel=alice-hook]", Duration::from_secs(10));
    assert!(
        wait_for(Duration::from_secs(10), || browser
            .text("#config-file")
            .contains("(hidden)")),
        "the configuration is not shown"
    );
    let page = browser.text("body");
    assert!(!page.contains("SECRET"), "a secret on the page: {page}");
    browser.screenshot("settings");

    // The checks page: a check made with its form, listed with its ping URL; pinged, its
    // history shows the ping.
    browser.go(&format!("{base}/checks"));
    browser.type_into("#check-name", "Nightly Dump");
    browser.click("#check-submit");
    browser.wait_find("tr[data-check=nightly-dump]", Duration::from_secs(10));
    let row = browser.text("tr[data-check=nightly-dump]");
    let ping_url = row
        .split_whitespace()
        .find(|w| w.contains("/ping/"))
        .unwrap_or_else(|| panic!("no ping URL in {row:?}"))
        .to_string();
    let path = &ping_url[ping_url.find("/ping/").expect("path")..];
    assert_eq!(
        http(
            server.http_port,
            "POST",
            &format!("{path}/0"),
            &[],
            b"dump done"
        )
        .status,
        200
    );
    browser.click("tr[data-check=nightly-dump] a");
    browser.wait_find("#history tr.ping-success", Duration::from_secs(10));
    assert!(browser.text("#history").contains("dump done"));
    browser.screenshot("checks");

    // After a login, `next` never leads to another site (`/\evil` is `//evil` to a browser).
    browser.go(&format!("{base}/login?next=%2F%5Cevil.example%2Fx"));
    browser.type_into("#username", "alice");
    browser.type_into("#password", "alice-pw");
    browser.click("#login-button");
    assert!(
        wait_for(Duration::from_secs(10), || !browser
            .url()
            .contains("/login")),
        "the login did not finish"
    );
    assert!(
        browser.url().starts_with(&base),
        "left the site: {}",
        browser.url()
    );

    // No page broke the CSP or threw: the console has no errors (a 401 before login is
    // the only expected one).
    let errors: Vec<String> = browser
        .console_errors()
        .into_iter()
        .filter(|e| !e.contains("401"))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}
