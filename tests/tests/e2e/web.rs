//! Issue 8: the REST API with users and roles, against the real server.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

/// A password hash as `hbctl passwd` writes it, with few rounds so tests stay quick.
fn hash(password: &str) -> String {
    hb_child::passwd::PasswordHash::with_salt(password, "testsalt", 1000).to_string()
}

fn users_config() -> String {
    format!(
        "users:
  alice: {{password: \"{a}\", admin: true, full_name: Alice Admin}}
  bob: {{password: \"{b}\"}}
  carol: {{password: \"{c}\"}}
  dave: {{password: \"{d}\"}}
interval: 1
max_missed: 1
grace: 1
hosts:
  web1:
    owner: bob
    monitors: [carol]
  db1:
    owner: alice
    managers: [bob]
",
        a = hash("alice-pw"),
        b = hash("bob-pw"),
        c = hash("carol-pw"),
        d = hash("dave-pw"),
    )
}

fn beat(server: &Server, host: &str) {
    let msg = format!(r#"{{"ID":"HTB","name":"{host}","interval":1}}"#);
    send_from("127.0.0.1", server.hb_port, msg.as_bytes());
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

/// Logs in; the token, the CSRF token and the cookie.
fn login(server: &Server, user: &str, password: &str) -> (String, String, String) {
    let body = serde_json::json!({"username": user, "password": password}).to_string();
    let r = http(
        server.http_port,
        "POST",
        "/api/0/auth/login",
        &[JSON],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "login {user}: {}", r.body);
    let j = r.json();
    let cookie = r
        .header("set-cookie")
        .expect("a session cookie")
        .split(';')
        .next()
        .expect("cookie")
        .to_string();
    (
        j["token"].as_str().expect("token").to_string(),
        j["csrf_token"].as_str().expect("csrf").to_string(),
        cookie,
    )
}

/// A request with a bearer token: (status, JSON body).
fn call(
    server: &Server,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let text = body.map(|b| b.to_string()).unwrap_or_default();
    let mut headers = vec![("Authorization", auth.as_str())];
    if !text.is_empty() {
        headers.push(JSON);
    }
    let r = http(server.http_port, method, path, &headers, text.as_bytes());
    (r.status, r.json())
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|h| h["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

// Acceptance 1: role enforcement end to end; errors are JSON with the right status.
#[test]
fn roles_decide_what_each_user_sees_and_does() {
    let server = Server::start("web-roles", &users_config());
    for host in ["web1", "db1", "free1"] {
        beat(&server, host);
    }
    assert!(wait_for(Duration::from_secs(10), || {
        let (token, _, _) = login(&server, "alice", "alice-pw");
        names(&call(&server, &token, "GET", "/api/0/hosts", None).1).len() == 3
    }));
    let (alice, _, _) = login(&server, "alice", "alice-pw");
    let (bob, _, _) = login(&server, "bob", "bob-pw");
    let (carol, _, _) = login(&server, "carol", "carol-pw");
    let (dave, _, _) = login(&server, "dave", "dave-pw");

    // Lists are filtered; each entry says the viewer's role.
    let (_, all) = call(&server, &alice, "GET", "/api/0/hosts", None);
    assert_eq!(names(&all), ["db1", "free1", "web1"]);
    let (_, mine) = call(&server, &bob, "GET", "/api/0/hosts", None);
    assert_eq!(names(&mine), ["db1", "web1"]);
    assert_eq!(mine[0]["role"], "manager");
    assert_eq!(mine[1]["role"], "owner");
    let (_, carols) = call(&server, &carol, "GET", "/api/0/hosts", None);
    assert_eq!(names(&carols), ["web1"]);
    assert_eq!(carols[0]["role"], "monitor");
    // free1 has no owner in the file: the default owner is the first admin, alice.
    assert_eq!(all[1]["owner"], "alice");
    assert_eq!(
        call(&server, &dave, "GET", "/api/0/hosts", None).1,
        serde_json::json!([])
    );

    // A host one cannot see does not exist for them; one they see but may not act on is 403.
    assert_eq!(
        call(&server, &carol, "GET", "/api/0/hosts/db1", None).0,
        404
    );
    assert_eq!(
        call(&server, &carol, "GET", "/api/0/hosts/web1", None).0,
        200
    );
    assert_eq!(
        call(&server, &carol, "GET", "/api/0/hosts/web1/plugins", None).0,
        200
    );
    let (code, e) = call(&server, &carol, "DELETE", "/api/0/hosts/web1", None);
    assert_eq!(code, 403, "{e}");
    assert!(e["error"].as_str().unwrap_or("").contains("owner"), "{e}");
    let cmd = serde_json::json!({"command": "uptime"});
    assert_eq!(
        call(
            &server,
            &carol,
            "POST",
            "/api/0/hosts/web1/commands",
            Some(cmd.clone())
        )
        .0,
        403
    );
    assert_eq!(
        call(&server, &carol, "POST", "/api/0/hosts/web1/dns", None).0,
        403
    );

    // A manager queues commands and upgrades but cannot drop.
    let (code, q) = call(
        &server,
        &bob,
        "POST",
        "/api/0/hosts/db1/commands",
        Some(cmd.clone()),
    );
    assert_eq!(code, 202, "{q}");
    assert!(q["id"].as_u64().is_some(), "{q}");
    assert_eq!(
        call(&server, &bob, "POST", "/api/0/hosts/db1/upgrade", None).0,
        202
    );
    let (code, e) = call(
        &server,
        &bob,
        "POST",
        "/api/0/hosts/db1/commands",
        Some(serde_json::json!({"command": "rm -rf /"})),
    );
    assert_eq!(code, 422, "not a command name: {e}");
    assert_eq!(
        call(&server, &bob, "DELETE", "/api/0/hosts/db1", None).0,
        403
    );
    // DNS without dyndomains: a conflict the answer explains.
    let (code, e) = call(&server, &bob, "POST", "/api/0/hosts/web1/dns", None);
    assert_eq!(code, 409, "{e}");
    assert!(
        e["error"].as_str().unwrap_or("").contains("dyndomains"),
        "{e}"
    );

    // Access: who holds which role.
    let (_, a) = call(&server, &carol, "GET", "/api/0/hosts/web1/access", None);
    assert_eq!(a["owner"], "bob");
    assert_eq!(a["monitors"], serde_json::json!(["carol"]));
    assert_eq!(a["role"], "monitor");

    // Users: admins only; everyone has /users/me.
    assert_eq!(call(&server, &bob, "GET", "/api/0/users", None).0, 403);
    let (code, list) = call(&server, &alice, "GET", "/api/0/users", None);
    assert_eq!(code, 200);
    assert_eq!(names(&list), ["alice", "bob", "carol", "dave"]);
    assert!(!list.to_string().contains("pbkdf2"), "hashes leak: {list}");
    let (_, me) = call(&server, &alice, "GET", "/api/0/users/me", None);
    assert_eq!(me["full_name"], "Alice Admin");
    assert_eq!(me["admin"], true);

    // db1 goes down (it sent one heartbeat): an alert carol cannot see, bob can acknowledge.
    beat(&server, "web1");
    assert!(
        wait_for(Duration::from_secs(15), || {
            call(&server, &bob, "GET", "/api/0/alerts", None)
                .1
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["key"] == "db1/down"))
        }),
        "no down alert for db1"
    );
    let (_, carols) = call(&server, &carol, "GET", "/api/0/alerts", None);
    assert!(
        carols
            .as_array()
            .is_some_and(|a| a.iter().all(|x| x["host"] == "web1")),
        "{carols}"
    );
    assert_eq!(
        call(
            &server,
            &carol,
            "POST",
            "/api/0/alerts/db1%2Fdown/acknowledge",
            None
        )
        .0,
        404
    );
    let (code, ack) = call(
        &server,
        &bob,
        "POST",
        "/api/0/alerts/db1%2Fdown/acknowledge",
        None,
    );
    assert_eq!(code, 200, "{ack}");
    let (_, alerts) = call(&server, &alice, "GET", "/api/0/alerts?level=critical", None);
    let db1 = alerts
        .as_array()
        .and_then(|a| a.iter().find(|x| x["key"] == "db1/down"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(db1["acknowledged_by"], "bob", "{alerts}");
    assert_eq!(
        call(&server, &alice, "GET", "/api/0/alerts?level=loud", None).0,
        400
    );

    // Silences: a manager by exact name; patterns are for admins; the author ends it.
    let s =
        serde_json::json!({"host": "db1", "metric": "down", "minutes": 30, "comment": "disk swap"});
    let (code, made) = call(&server, &bob, "POST", "/api/0/silences", Some(s));
    assert_eq!(code, 201, "{made}");
    let id = made["id"].as_u64().expect("id");
    let pattern = serde_json::json!({"host": "db*", "minutes": 30});
    assert_eq!(
        call(
            &server,
            &bob,
            "POST",
            "/api/0/silences",
            Some(pattern.clone())
        )
        .0,
        403
    );
    assert_eq!(
        call(&server, &alice, "POST", "/api/0/silences", Some(pattern)).0,
        201
    );
    // Carol does not see db1, so its silence does not exist for her.
    assert_eq!(
        call(
            &server,
            &carol,
            "DELETE",
            &format!("/api/0/silences/{id}"),
            None
        )
        .0,
        404
    );
    assert_eq!(
        call(
            &server,
            &bob,
            "DELETE",
            &format!("/api/0/silences/{id}"),
            None
        )
        .0,
        200
    );

    // Events and messages are filtered like hosts.
    let (_, ev) = call(&server, &carol, "GET", "/api/0/events?limit=50", None);
    assert!(
        ev.as_array()
            .is_some_and(|a| !a.is_empty() && a.iter().all(|e| e["host"] == "web1")),
        "{ev}"
    );
    assert_eq!(
        call(&server, &carol, "GET", "/api/0/events?host=db1", None).0,
        404
    );
    let (_, status) = call(&server, &carol, "GET", "/api/0/status", None);
    assert_eq!(status["hosts"], 1, "{status}");
    assert_eq!(status["unauthenticated"], false);

    // The owner drops their host.
    let (code, d) = call(&server, &bob, "DELETE", "/api/0/hosts/web1", None);
    assert_eq!(code, 200, "{d}");
    assert_eq!(call(&server, &bob, "GET", "/api/0/hosts/web1", None).0, 404);
}

// Acceptance 1 (auth), 5 (hostile input): tokens, cookies with CSRF, logout, rate limits,
// bad bodies, bad paths.
#[test]
fn logins_tokens_and_hostile_requests() {
    let server = Server::start("web-auth", &users_config());
    let port = server.http_port;
    beat(&server, "web1");

    // No or wrong credentials: 401, never data.
    let r = http(port, "GET", "/api/0/hosts", &[], b"");
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.json()["error"].is_string());
    for (name, value) in [
        ("Authorization", "Bearer 0000"),
        ("X-Auth-Token", "nonsense"),
        ("Cookie", "hb_session=forged"),
        ("Authorization", "Basic YWxpY2U6YWxpY2UtcHc="),
    ] {
        assert_eq!(
            http(port, "GET", "/api/0/hosts", &[(name, value)], b"").status,
            401,
            "{name}"
        );
    }

    // X-Auth-Token works like Bearer.
    let (token, csrf, cookie) = login(&server, "bob", "bob-pw");
    let r = http(
        port,
        "GET",
        "/api/0/hosts",
        &[("X-Auth-Token", &token)],
        b"",
    );
    assert_eq!(r.status, 200);
    // The cookie: HttpOnly, SameSite=Strict; reads work with it, writes need the CSRF token.
    let r = http(
        port,
        "POST",
        "/api/0/auth/login",
        &[JSON],
        br#"{"username":"bob","password":"bob-pw"}"#,
    );
    let set = r.header("set-cookie").unwrap_or_default().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "no TLS here: {set}");
    assert_eq!(
        http(port, "GET", "/api/0/users/me", &[("Cookie", &cookie)], b"").status,
        200
    );
    let r = http(
        port,
        "POST",
        "/api/0/hosts/web1/upgrade",
        &[("Cookie", &cookie)],
        b"",
    );
    assert_eq!(r.status, 403, "a cookie write without CSRF: {}", r.body);
    let r = http(
        port,
        "POST",
        "/api/0/hosts/web1/upgrade",
        &[("Cookie", &cookie), ("X-CSRF-Token", "wrong")],
        b"",
    );
    assert_eq!(r.status, 403);
    let r = http(
        port,
        "POST",
        "/api/0/hosts/web1/upgrade",
        &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
        b"",
    );
    assert_eq!(r.status, 202, "{}", r.body);

    // Logout ends the session for header and cookie alike.
    let auth = format!("Bearer {token}");
    assert_eq!(
        http(
            port,
            "POST",
            "/api/0/auth/logout",
            &[("Authorization", &auth)],
            b""
        )
        .status,
        200
    );
    assert_eq!(
        http(
            port,
            "GET",
            "/api/0/hosts",
            &[("Authorization", &auth)],
            b""
        )
        .status,
        401
    );
    assert_eq!(
        http(port, "GET", "/api/0/hosts", &[("Cookie", &cookie)], b"").status,
        401
    );

    // Bad bodies: 415, 400, 422, 413.
    let login_with = |headers: &[(&str, &str)], body: &[u8]| {
        http(port, "POST", "/api/0/auth/login", headers, body)
    };
    assert_eq!(
        login_with(&[], br#"{"username":"bob","password":"bob-pw"}"#).status,
        415
    );
    assert_eq!(login_with(&[JSON], b"{not json").status, 400);
    assert_eq!(login_with(&[JSON], br#"{"username":"bob"}"#).status, 422);
    assert_eq!(
        login_with(&[JSON], br#"{"username":1,"password":"x"}"#).status,
        422
    );
    assert_eq!(
        login_with(&[JSON], br#"{"username":"bob","password":"bob-pw","x":1}"#).status,
        422
    );
    let huge = vec![b'a'; 1 << 20];
    let r = login_with(&[JSON], &huge);
    assert_eq!(r.status, 413, "{}", r.body);

    // Hostile paths: never a host, never a file; unknown endpoints and methods are JSON.
    let (alice, _, _) = login(&server, "alice", "alice-pw");
    let a = format!("Bearer {alice}");
    for path in [
        "/api/0/hosts/..%2F..%2Fetc%2Fpasswd",
        "/api/0/hosts/web1%0Aevil",
        "/api/0/hosts/%00",
        &format!("/api/0/hosts/{}", "a".repeat(300)),
        "/api/0/hosts/web1/plugins/..%2F..",
        "/api/0/nope",
        "/../../etc/passwd",
    ] {
        let r = http(port, "GET", path, &[("Authorization", &a)], b"");
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert!(r.json()["error"].is_string(), "{path}: {}", r.body);
    }
    let r = http(port, "PUT", "/api/0/hosts", &[("Authorization", &a)], b"");
    assert_eq!(r.status, 405);
    assert!(r.json()["error"].is_string());
    let r = http(
        port,
        "GET",
        "/api/0/hosts/web1/rtt?limit=0",
        &[("Authorization", &a)],
        b"",
    );
    assert_eq!(r.status, 400);
    let r = http(
        port,
        "GET",
        "/api/0/hosts/web1/rtt?limit=x",
        &[("Authorization", &a)],
        b"",
    );
    assert_eq!(r.status, 400);
    let r = http(
        port,
        "GET",
        "/api/0/hosts/WEB1",
        &[("Authorization", &a)],
        b"",
    );
    assert_eq!(r.status, 200, "names ignore case");

    // 100 failed logins from one address: the first 10 are checked, the rest answered 429
    // with Retry-After; then even the right password waits. Another address may log in as
    // someone else, but not as the guessed user.
    let mut statuses = Vec::new();
    for _ in 0..100 {
        let r = login_with(&[JSON], br#"{"username":"carol","password":"guess"}"#);
        statuses.push(r.status);
        if r.status == 429 {
            assert!(
                r.header("retry-after")
                    .is_some_and(|s| s.parse::<u64>().is_ok())
            );
        }
    }
    assert!(statuses[..10].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[10..].iter().all(|s| *s == 429), "{statuses:?}");
    assert_eq!(
        login_with(&[JSON], br#"{"username":"carol","password":"carol-pw"}"#).status,
        429
    );
    let r = http_from(
        "127.0.0.2",
        port,
        "POST",
        "/api/0/auth/login",
        &[JSON],
        br#"{"username":"dave","password":"dave-pw"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = http_from(
        "127.0.0.2",
        port,
        "POST",
        "/api/0/auth/login",
        &[JSON],
        br#"{"username":"carol","password":"carol-pw"}"#,
    );
    assert_eq!(r.status, 429);
    assert!(
        server.counter("web", "login_limited") >= 90,
        "{}",
        server.counters("web")
    );
    // Failures are logged with the name and address, never the password.
    let log = server.log_text();
    assert!(log.contains("Failed login"), "{log}");
    assert!(!log.contains("guess"), "a password in the log");
}

// Acceptance 1: without users everything is open, and says so.
#[test]
fn without_users_everything_is_open() {
    let server = Server::start("web-open", "");
    let port = server.http_port;
    beat(&server, "web1");
    let r = http(port, "GET", "/api/0/users/me", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["unauthenticated"], true);
    assert!(wait_for(Duration::from_secs(10), || {
        names(&http(port, "GET", "/api/0/hosts", &[], b"").json()) == ["web1"]
    }));
    let r = http(port, "POST", "/api/0/hosts/web1/upgrade", &[], b"");
    assert_eq!(r.status, 202, "{}", r.body);
    let r = http(
        port,
        "POST",
        "/api/0/auth/login",
        &[JSON],
        br#"{"username":"a","password":"b"}"#,
    );
    assert_eq!(r.status, 409);
    assert_eq!(
        http(port, "GET", "/api/0/status", &[], b"").json()["unauthenticated"],
        true
    );
    assert!(server.log_text().contains("unauthenticated mode"));

    // Open, but not to other sites: a write from another site's page is refused, and so is
    // a name that only resolves here (DNS rebinding); scripts without Origin still work.
    let r = http(
        port,
        "POST",
        "/api/0/hosts/web1/upgrade",
        &[("Origin", "http://evil.example")],
        b"",
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = http(
        port,
        "POST",
        "/api/0/hosts/web1/upgrade",
        &[("Origin", &format!("http://127.0.0.1:{port}"))],
        b"",
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let evil_host = format!("evil.example:{port}");
    let r = http(port, "GET", "/api/0/hosts", &[("Host", &evil_host)], b"");
    assert_eq!(r.status, 403, "{}", r.body);
    let local_host = format!("localhost:{port}");
    assert_eq!(
        http(port, "GET", "/api/0/hosts", &[("Host", &local_host)], b"").status,
        200
    );
}

// Acceptance 4: /metrics passes `promtool check metrics` and carries the figures.
#[test]
fn metrics_pass_promtool() {
    assert!(
        std::path::Path::new("/usr/bin/promtool").is_file(),
        "/usr/bin/promtool is missing: install the Debian package prometheus (the README's test command does)"
    );
    let token = "scrape-me-please-0123456789";
    let server = Server::start(
        "web-metrics",
        &format!("{}metrics_token: {token}\n", users_config()),
    );
    let port = server.http_port;
    beat(&server, "web1");
    send_from(
        "127.0.0.7",
        server.hb_port,
        br#"{"ID":"HTB","name":"bad name","interval":1}"#,
    );
    server.kill_9("notifier");

    assert_eq!(http(port, "GET", "/metrics", &[], b"").status, 401);
    let (carol, _, _) = login(&server, "carol", "carol-pw");
    let auth = format!("Bearer {carol}");
    assert_eq!(
        http(port, "GET", "/metrics", &[("Authorization", &auth)], b"").status,
        403
    );
    let bearer = format!("Bearer {token}");
    let scrape = || http(port, "GET", "/metrics", &[("Authorization", &bearer)], b"");
    assert!(
        wait_for(Duration::from_secs(15), || {
            let body = scrape().body;
            body.contains("hb_hosts{state=\"up\"} 1\n")
                && body.contains("hb_datagrams_rejected_total{reason=\"bad_name\"} 1\n")
                && body.contains("hb_process_restarts_total{role=\"notifier\"} 1\n")
                && body.contains("hb_process_up{role=\"notifier\"} 1\n")
        }),
        "{}",
        scrape().body
    );
    let r = scrape();
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("text/plain; version=0.0.4")
    );
    for want in [
        "hb_host_up{host=\"web1\"} 1\n",
        "hb_alerts{level=\"critical\"}",
        "hb_messages_total{kind=\"HTB\"}",
        "hb_process_figure{role=\"web\",name=\"metrics_scrapes\"}",
        "hb_process_figure{role=\"receiver\",name=\"datagrams\"}",
    ] {
        assert!(r.body.contains(want), "missing {want:?} in:\n{}", r.body);
    }
    use std::io::Write;
    let mut promtool = std::process::Command::new("/usr/bin/promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run promtool");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(r.body.as_bytes())
        .expect("feed promtool");
    let out = promtool.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        r.body
    );
}

// Acceptance 5: a WebSocket client that never reads is dropped while others keep getting
// every change and the engine keeps up; a page of another site cannot open the feed.
#[test]
fn a_websocket_client_that_never_reads_is_dropped() {
    let server = Server::start("web-ws", "");
    let port = server.http_port;
    beat(&server, "web1");

    let (status, _) = ws_connect(port, "/ws", &[("Origin", "http://evil.example")], None);
    assert_eq!(status, 403, "a foreign Origin");
    let origin = format!("http://127.0.0.1:{port}");
    let (status, stuck) = ws_connect(port, "/ws", &[("Origin", &origin)], Some(4096));
    assert_eq!(status, 101);
    let _stuck = stuck.expect("stuck client");
    let (_, good) = ws_connect(port, "/ws", &[], None);
    let mut good = good.expect("good client");
    let first = ws_read_text(&mut good).expect("snapshot");
    assert!(first.contains("\"type\":\"snapshot\""), "{first}");
    // The good client reads everything in the background, until the last host appears.
    let reader = std::thread::spawn(move || {
        let mut hosts = std::collections::HashSet::new();
        'read: while let Some(text) = ws_read_text(&mut good) {
            let batch: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            for v in batch.as_array().into_iter().flatten() {
                if v["type"] == "host"
                    && let Some(name) = v["host"]["name"].as_str()
                {
                    if name == "last" {
                        break 'read;
                    }
                    if name.starts_with('h') {
                        hosts.insert(name.to_string());
                    }
                }
            }
        }
        hosts.len()
    });

    // 12,000 new hosts, three rounds a second apart (each a host change, the first also an
    // event): far more than the stuck client's buffers and the feed's ring hold. 100 source
    // addresses stay within the rate limit.
    let sockets: Vec<std::net::UdpSocket> = (0..100u32)
        .map(|source| {
            let from = format!("127.0.{}.{}", 10 + source / 200, 1 + source % 200);
            std::net::UdpSocket::bind((from.as_str(), 0)).expect("bind")
        })
        .collect();
    for round in 0..3 {
        if round > 0 {
            std::thread::sleep(Duration::from_millis(1100));
        }
        for (source, socket) in sockets.iter().enumerate() {
            for i in 0..120u32 {
                let msg = format!(
                    r#"{{"ID":"HTB","name":"h{source}-{i}","interval":60,"rtt":{round}.5}}"#
                );
                let _ = socket.send_to(msg.as_bytes(), ("127.0.0.1", server.hb_port));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    send_from(
        "127.0.0.9",
        server.hb_port,
        br#"{"ID":"HTB","name":"last","interval":60}"#,
    );
    assert!(
        wait_for(Duration::from_secs(30), || server
            .counter("web", "ws_dropped_slow")
            >= 1),
        "the stuck client was not dropped: {}",
        server.counters("web")
    );
    let seen = reader.join().expect("reader");
    // UDP may lose some of the burst before the server: the client must have seen every
    // host the engine has (but web1 and last).
    let hosts = names(&http(port, "GET", "/api/0/hosts", &[], b"").json())
        .iter()
        .filter(|n| n.starts_with('h'))
        .count();
    eprintln!("{seen} hosts seen live of {hosts} known; the stuck client was dropped");
    assert!(hosts > 11_000, "{hosts} hosts");
    assert_eq!(
        seen,
        hosts,
        "the reading client missed changes; web {}; engine {}",
        server.counters("web"),
        server.counters("engine")
    );
}

fn put(server: &Server, token: &str, path: &str, body: Value) -> (u16, Value) {
    call(server, token, "PUT", path, Some(body))
}

// Acceptance 1: owners and managers change roles; users change their name, channels and
// password; the changes survive restarts of hb-web and the engine, and a later edit of
// the file wins.
#[test]
fn users_change_themselves_and_owners_change_roles() {
    let config = format!(
        "{}notification_channels:\n  mail: {{type: webhook, url: \"http://127.0.0.1:9/\"}}\n  sms: {{type: webhook, url: \"http://127.0.0.1:9/sms\"}}\n",
        users_config()
    );
    let server = Server::start("web-changes", &config);
    beat(&server, "web1");
    let (bob, _, _) = login(&server, "bob", "bob-pw");
    let (carol, _, _) = login(&server, "carol", "carol-pw");
    assert!(wait_for(Duration::from_secs(10), || {
        call(&server, &bob, "GET", "/api/0/hosts/web1", None).0 == 200
    }));

    // The owner makes carol a manager; as manager she may act, and change monitors only.
    assert_eq!(
        call(&server, &carol, "POST", "/api/0/hosts/web1/upgrade", None).0,
        403
    );
    let (code, a) = put(
        &server,
        &bob,
        "/api/0/hosts/web1/access",
        json!({"managers": ["carol"]}),
    );
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["managers"], json!(["carol"]));
    assert_eq!(a["owner"], "bob");
    assert_eq!(
        call(&server, &carol, "POST", "/api/0/hosts/web1/upgrade", None).0,
        202
    );
    assert_eq!(
        put(
            &server,
            &carol,
            "/api/0/hosts/web1/access",
            json!({"owner": "carol"})
        )
        .0,
        403
    );
    assert_eq!(
        put(
            &server,
            &carol,
            "/api/0/hosts/web1/access",
            json!({"monitors": ["nobody"]})
        )
        .0,
        422
    );
    let (code, a) = put(
        &server,
        &carol,
        "/api/0/hosts/web1/access",
        json!({"monitors": ["dave"]}),
    );
    assert_eq!(code, 200, "{a}");
    assert_eq!(
        put(&server, &bob, "/api/0/hosts/web1/access", json!({"x": 1})).0,
        422
    );

    // Carol changes her name and channels (an unknown channel is dropped) and password.
    let (code, me) = put(
        &server,
        &carol,
        "/api/0/users/me",
        json!({"full_name": "Carol C.", "notification_channels": ["sms", "nope"]}),
    );
    assert_eq!(code, 200, "{me}");
    assert_eq!(me["user"]["full_name"], "Carol C.");
    assert_eq!(me["user"]["notification_channels"], json!(["sms"]));
    assert_eq!(put(&server, &carol, "/api/0/users/me", json!({})).0, 422);
    let wrong = json!({"password": {"current": "nope", "new": "carol-new-pw"}});
    assert_eq!(put(&server, &carol, "/api/0/users/me", wrong).0, 403);
    let short = json!({"password": {"current": "carol-pw", "new": "short"}});
    assert_eq!(put(&server, &carol, "/api/0/users/me", short).0, 422);
    let change = json!({"password": {"current": "carol-pw", "new": "carol-new-pw"}});
    let (code, me) = put(&server, &carol, "/api/0/users/me", change);
    assert_eq!(code, 200, "{me}");
    let fresh = me["token"].as_str().expect("a new session").to_string();
    assert_eq!(
        call(&server, &carol, "GET", "/api/0/users/me", None).0,
        401,
        "old session lives"
    );
    assert_eq!(call(&server, &fresh, "GET", "/api/0/users/me", None).0, 200);
    let try_login = |password: &str| {
        let body = json!({"username": "carol", "password": password}).to_string();
        http(
            server.http_port,
            "POST",
            "/api/0/auth/login",
            &[JSON],
            body.as_bytes(),
        )
        .status
    };
    assert_eq!(try_login("carol-pw"), 401);
    assert_eq!(try_login("carol-new-pw"), 200);

    // Both survive a kill -9 of the web and of the engine (the engine keeps them).
    for role in ["web", "engine"] {
        server.kill_9(role);
        assert!(
            wait_for(Duration::from_secs(15), || try_login("carol-new-pw") == 200),
            "carol's password was lost with the {role}"
        );
        let (carol, _, _) = login(&server, "carol", "carol-new-pw");
        assert!(
            wait_for(Duration::from_secs(10), || {
                call(&server, &carol, "GET", "/api/0/hosts/web1/access", None).1["role"]
                    == "manager"
            }),
            "carol's role was lost with the {role}"
        );
        let (_, me) = call(&server, &carol, "GET", "/api/0/users/me", None);
        assert_eq!(me["full_name"], "Carol C.", "{role}");
    }

    // The file is edited afterwards: it wins for what it changed.
    let text = std::fs::read_to_string(&server.config).expect("config");
    let text = text
        .replacen(&hash("carol-pw"), &hash("carol-reset-pw"), 1)
        .replacen(
            "    monitors: [carol]\n",
            "    monitors: [carol, alice]\n",
            1,
        );
    std::fs::write(&server.config, text).expect("config");
    assert!(server.ctl(&["reload"]).is_some(), "{}", server.log_text());
    assert!(
        wait_for(Duration::from_secs(10), || try_login("carol-reset-pw")
            == 200),
        "the file's new password does not work"
    );
    assert_eq!(try_login("carol-new-pw"), 401);
    let (carol, _, _) = login(&server, "carol", "carol-reset-pw");
    let (_, a) = call(&server, &carol, "GET", "/api/0/hosts/web1/access", None);
    assert_eq!(a["monitors"], json!(["carol", "alice"]), "{a}");
    assert_eq!(a["role"], "monitor", "the file's roles apply again: {a}");
    let (_, me) = call(&server, &carol, "GET", "/api/0/users/me", None);
    assert_eq!(
        me["full_name"], "Carol C.",
        "a field the file did not change stays"
    );
}

// A user who loses their role on a host sees it dropped from their live feed at once.
#[test]
fn losing_a_role_drops_the_host_from_the_live_feed() {
    let server = Server::start("web-feed-roles", &users_config());
    beat(&server, "web1");
    let (bob, _, _) = login(&server, "bob", "bob-pw");
    assert!(wait_for(Duration::from_secs(10), || {
        call(&server, &bob, "GET", "/api/0/hosts/web1", None).0 == 200
    }));
    let auth = format!("Bearer {bob}");
    let (status, stream) = ws_connect(server.http_port, "/ws", &[("Authorization", &auth)], None);
    assert_eq!(status, 101);
    let mut feed = stream.expect("feed");
    let snapshot = ws_read_text(&mut feed).expect("snapshot");
    assert!(snapshot.contains("\"name\":\"web1\""), "{snapshot}");
    assert!(!snapshot.contains("free"), "{snapshot}");
    // Bob gives web1 to alice and keeps no role on it.
    let (code, a) = put(
        &server,
        &bob,
        "/api/0/hosts/web1/access",
        json!({"owner": "alice"}),
    );
    assert_eq!(code, 404, "bob no longer sees web1: {a}");
    let mut dropped = false;
    while let Some(text) = ws_read_text(&mut feed) {
        if text.contains(r#"{"host":"web1","type":"dropped"}"#) {
            dropped = true;
            break;
        }
    }
    assert!(dropped, "web1 was not dropped from bob's feed");
}

// ws_port, the original's WebSocket port: a second port serving the same.
#[test]
fn ws_port_serves_the_feed_and_the_api_too() {
    let ws_port = crate::webdriver::free_tcp_port();
    let server = Server::start("web-ws-port", &format!("ws_port: {ws_port}\n"));
    beat(&server, "web1");
    let (status, stream) = ws_connect(ws_port, "/ws", &[], None);
    assert_eq!(status, 101);
    let snapshot = ws_read_text(&mut stream.expect("feed")).expect("snapshot");
    assert!(snapshot.contains("\"type\":\"snapshot\""), "{snapshot}");
    assert_eq!(http(ws_port, "GET", "/api/0/status", &[], b"").status, 200);
    // It must differ from hbd_port.
    let dir = scratch("ws-port-check");
    let path = dir.join("hb.yaml");
    std::fs::write(&path, "user: nobody\nhbd_port: 50104\nws_port: 50104\n").expect("write");
    let out = check_config(&path);
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ws_port"));
}

// Hostile input: a client that starts a request and trickles its headers is cut off.
#[test]
fn a_client_that_trickles_headers_is_cut_off() {
    use std::io::{Read, Write};
    let server = Server::start("web-slow-headers", "");
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", server.http_port)).expect("connect");
    stream
        .write_all(b"GET /api/0/status HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .expect("write");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let started = std::time::Instant::now();
    // A header line every 2 s never finishes the request.
    let writer = {
        let mut w = stream.try_clone().expect("clone");
        std::thread::spawn(move || {
            for i in 0..15 {
                std::thread::sleep(Duration::from_secs(2));
                if w.write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
                    .is_err()
                {
                    return;
                }
            }
        })
    };
    let mut buf = [0u8; 1024];
    // Returns when the server closes (or, were it never to, after the 30 s read timeout).
    let _ = stream.read(&mut buf);
    let took = started.elapsed();
    let _ = writer.join();
    eprintln!("a trickling client was cut off after {took:?}");
    assert!(took < Duration::from_secs(20), "still open after {took:?}");
    // Others are served meanwhile and after.
    assert_eq!(
        http(server.http_port, "GET", "/api/0/status", &[], b"").status,
        200
    );
}

// Acceptance 1, notification channels: types with their options; users define channels of
// their own (never one that runs a program), see only what they may, change and remove only
// their own (admins all), never the file's; secrets never come back; the notifier delivers
// through an API channel a user chose, with the secret kept across an edit and restarts of
// the engine and the notifier.
#[test]
fn notification_channels_through_the_api() {
    let rec = Recorder::start(&[("*", &[200])]);
    let config = format!(
        "{}watchhosts: [web1]\nnotification_channels:\n  ops: {{type: webhook, url: \"http://127.0.0.1:{}/ops\", secret: file-SECRET-0}}\n",
        users_config(),
        rec.port
    );
    let server = Server::start("web-channels", &config);
    let (alice, _, _) = login(&server, "alice", "alice-pw");
    let (bob, _, _) = login(&server, "bob", "bob-pw");
    let (carol, _, _) = login(&server, "carol", "carol-pw");
    let leaks = |v: &Value| v.to_string().contains("SECRET");

    // The types, with their options, secrets and what only the file may use.
    let (code, types) = call(
        &server,
        &bob,
        "GET",
        "/api/0/notification_channel_types",
        None,
    );
    assert_eq!(code, 200, "{types}");
    let webhook = &types["types"]["webhook"]["options"];
    assert_eq!(webhook[0]["name"], "url");
    assert_eq!(webhook[0]["secret"], true);
    assert_eq!(webhook[0]["required"], true);
    assert_eq!(types["types"]["exec"]["file_only"], true);
    assert_eq!(
        types["types"].as_object().map(serde_json::Map::len),
        Some(12)
    );
    assert!(
        types["common"]
            .as_array()
            .is_some_and(|c| c.iter().any(|o| o["name"] == "min_level"))
    );

    // Bob defines a private webhook with a secret; the answer shows neither secret.
    let hook = format!("http://127.0.0.1:{}/bob", rec.port);
    let new = json!({"name": "bob-hook", "type": "webhook", "private": true,
        "options": {"url": hook, "secret": "bob-SECRET-1", "timeout": 5}});
    let (code, made) = call(
        &server,
        &bob,
        "POST",
        "/api/0/notification_channels",
        Some(new.clone()),
    );
    assert_eq!(code, 201, "{made}");
    assert!(!leaks(&made), "{made}");
    assert_eq!(made["owner"], "bob");
    assert_eq!(made["source"], "api");
    assert_eq!(made["editable"], true);
    assert_eq!(made["secrets_set"], json!(["secret", "url"]));
    assert_eq!(made["options"]["timeout"], 5);

    // Refused: a taken name (bob's, even for carol who cannot see it; the file's), what runs
    // a program, a bad option, another owner, a bad name, a bad body.
    for (token, body, want) in [
        (&carol, new.clone(), 409),
        (
            &bob,
            json!({"name": "ops", "type": "slack", "options": {"url": "https://x"}}),
            409,
        ),
        (
            &bob,
            json!({"name": "page", "type": "exec", "options": {"command": ["/bin/sh", "-c", "id"]}}),
            422,
        ),
        (
            &bob,
            json!({"name": "sig", "type": "signal", "options": {"cli_path": "/usr/bin/signal-cli", "user": "+1", "recipient": "+2"}}),
            422,
        ),
        (
            &bob,
            json!({"name": "x", "type": "slack", "options": {"url": "ftp://x"}}),
            422,
        ),
        (
            &bob,
            json!({"name": "x", "type": "slack", "options": {"url": "https://x", "colour": 1}}),
            422,
        ),
        (&bob, json!({"name": "x", "type": "pager"}), 422),
        (
            &bob,
            json!({"name": "x", "type": "slack", "owner": "carol", "options": {"url": "https://x"}}),
            403,
        ),
        (
            &bob,
            json!({"name": "../x", "type": "slack", "options": {"url": "https://x"}}),
            422,
        ),
        (
            &bob,
            json!({"name": "x", "type": "slack", "options": {"owner": "carol", "url": "https://x"}}),
            422,
        ),
        (&bob, json!({"type": "slack"}), 422),
    ] {
        let (code, e) = call(
            &server,
            token,
            "POST",
            "/api/0/notification_channels",
            Some(body.clone()),
        );
        assert_eq!(code, want, "{body}: {e}");
        assert!(e["error"].is_string(), "{e}");
    }
    let (code, e) = call(
        &server,
        &bob,
        "POST",
        "/api/0/notification_channels",
        Some(json!({"name": "x", "type": "slack", "options": {"url": "ftp://x"}})),
    );
    assert!(
        e["error"].as_str().unwrap_or("").contains("url"),
        "{code} {e}"
    );

    // Who sees what: carol not bob's private channel, and the file's without its options;
    // the admin everything, without secrets.
    let listed = |token: &str| call(&server, token, "GET", "/api/0/notification_channels", None).1;
    assert_eq!(names(&listed(&carol)), ["ops"]);
    assert!(listed(&carol)[0].get("options").is_none());
    assert_eq!(names(&listed(&bob)), ["bob-hook", "ops"]);
    let all = listed(&alice);
    assert_eq!(names(&all), ["bob-hook", "ops"]);
    assert!(!leaks(&all), "{all}");
    assert_eq!(all[1]["source"], "file");
    assert_eq!(all[1]["editable"], false);
    assert_eq!(all[1]["secrets_set"], json!(["secret", "url"]));

    // Changes: only its owner or an admin, never the file's; the secret stays.
    let path = "/api/0/notification_channels/bob-hook";
    assert_eq!(
        put(&server, &carol, path, json!({"min_level": "OK"})).0,
        404
    );
    assert_eq!(call(&server, &carol, "DELETE", path, None).0, 404);
    assert_eq!(
        put(
            &server,
            &bob,
            "/api/0/notification_channels/ops",
            json!({"min_level": "OK"})
        )
        .0,
        409
    );
    assert_eq!(
        call(
            &server,
            &carol,
            "DELETE",
            "/api/0/notification_channels/ops",
            None
        )
        .0,
        409
    );
    assert_eq!(put(&server, &bob, path, json!({"owner": "carol"})).0, 403);
    assert_eq!(
        put(&server, &bob, path, json!({"options": {"url": "ftp://x"}})).0,
        422,
        "checked like a new one"
    );
    assert_eq!(
        put(
            &server,
            &bob,
            "/api/0/notification_channels/..%2Fetc",
            json!({})
        )
        .0,
        404
    );
    let (code, changed) = put(&server, &bob, path, json!({"min_level": "CRITICAL"}));
    assert_eq!(code, 200, "{changed}");
    assert_eq!(changed["min_level"], "CRITICAL");
    assert_eq!(changed["secrets_set"], json!(["secret", "url"]), "kept");
    assert_eq!(changed["private"], true);
    let (code, changed) = put(&server, &alice, path, json!({"private": false}));
    assert_eq!(code, 200, "an admin changes anyone's: {changed}");
    assert_eq!(names(&listed(&carol)), ["bob-hook", "ops"]);
    assert!(listed(&carol)[0].get("options").is_none(), "not hers");
    assert_eq!(
        put(&server, &carol, path, json!({"min_level": "OK"})).0,
        403
    );
    assert_eq!(put(&server, &alice, path, json!({"private": true})).0, 200);

    // Users choose among the channels they may: carol's choice of bob's private one is
    // dropped, bob's stands.
    let (code, me) = put(
        &server,
        &bob,
        "/api/0/users/me",
        json!({"notification_channels": ["bob-hook", "nonexistent"]}),
    );
    assert_eq!(code, 200, "{me}");
    assert_eq!(me["user"]["notification_channels"], json!(["bob-hook"]));
    let (_, me) = put(
        &server,
        &carol,
        "/api/0/users/me",
        json!({"notification_channels": ["bob-hook", "ops"]}),
    );
    assert_eq!(me["user"]["notification_channels"], json!(["ops"]));

    // The engine and the notifier restart; bob's host goes down; the notifier delivers
    // through bob's channel, signed with the secret set before the edit.
    server.kill_9("engine");
    server.kill_9("notifier");
    server.wait_running(Duration::from_secs(20));
    assert_eq!(
        names(&listed(&bob)),
        ["bob-hook", "ops"],
        "kept by the engine"
    );
    beat(&server, "web1");
    assert!(
        wait_for(Duration::from_secs(20), || !rec.requests("/bob").is_empty()),
        "nothing came through bob's channel:\n{}",
        server.log_text()
    );
    let got = &rec.requests("/bob")[0];
    let body: Value = serde_json::from_str(&got.body).expect("json");
    assert_eq!(body["alert"], "web1/down");
    let signed = got
        .headers
        .iter()
        .find(|(k, _)| k == "x-hb-signature")
        .map(|(_, v)| v.clone());
    assert_eq!(
        signed.as_deref(),
        Some(hb_notify::request::signature("bob-SECRET-1", got.body.as_bytes()).as_str())
    );
    assert!(
        !server.log_text().contains("bob-SECRET"),
        "a secret in the log"
    );
    // Nothing any page shows holds a secret.
    let (_, cookie_page) = (
        0,
        http(
            server.http_port,
            "GET",
            "/settings",
            &[("Authorization", &format!("Bearer {alice}"))],
            b"",
        ),
    );
    assert!(!cookie_page.body.contains("SECRET"));
    let (code, shown) = call(&server, &alice, "GET", "/api/0/config", None);
    assert_eq!(code, 200, "{shown}");
    assert!(!leaks(&shown), "{shown}");
    assert_eq!(
        shown["file"]["notification_channels"]["ops"]["secrets_set"],
        json!(["secret", "url"])
    );
    assert_eq!(shown["file"]["users"]["bob"]["password"], "(hidden)");
    assert_eq!(call(&server, &bob, "GET", "/api/0/config", None).0, 403);

    // Removal: its owner; then it is gone for everyone.
    let (code, gone) = call(&server, &bob, "DELETE", path, None);
    assert_eq!(code, 200, "{gone}");
    assert_eq!(names(&listed(&alice)), ["ops"]);
    assert_eq!(call(&server, &bob, "DELETE", path, None).0, 404);
    assert!(
        server
            .events(None, 50)
            .iter()
            .any(|(_, e)| e == "channel bob-hook removed through the API")
    );
}
