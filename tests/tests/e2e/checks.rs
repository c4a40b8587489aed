//! Issue 10: HTTP push monitors through the real binaries: a Healthchecks-style cron wrapper
//! with curl, Heartbeat Central's API, and checks that notify like hosts (a webhook channel
//! on a recording server).

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;

const UUID: &str = "5d3c0a6e-8f2b-4c1d-9e7a-3b4f5a6c7d8e";
const PAUSED: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
const KEYED: &str = "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9";

fn config(hook_port: u16) -> String {
    format!(
        "checks:\n\
         \x20 nightly:\n\
         \x20   uuid: {UUID}\n\
         \x20   interval: 3\n\
         \x20   grace: 1\n\
         \x20   description: the nightly backup\n\
         \x20   notification_channels: [hook]\n\
         \x20 paused:\n\
         \x20   uuid: {PAUSED}\n\
         \x20   active: false\n\
         \x20 keyed:\n\
         \x20   uuid: {KEYED}\n\
         \x20   ping_key: s3cret-ping-key\n\
         notification_channels:\n\
         \x20 hook: {{type: webhook, url: \"http://127.0.0.1:{hook_port}/hook\"}}\n"
    )
}

/// The webhook bodies received so far, as JSON.
fn hooks(rec: &Recorder) -> Vec<Value> {
    rec.requests("/hook")
        .iter()
        .filter_map(|r| serde_json::from_str(&r.body).ok())
        .collect()
}

fn wait_hook(rec: &Recorder, within: Duration, what: impl Fn(&Value) -> bool) -> Option<Instant> {
    let mut at = None;
    wait_for(within, || {
        at = rec
            .requests("/hook")
            .iter()
            .find(|r| serde_json::from_str::<Value>(&r.body).is_ok_and(|v| what(&v)))
            .map(|r| r.at);
        at.is_some()
    });
    at
}

// Acceptance 2 and 3: a cron wrapper reports start, success and failure (with the exit
// status and the run's duration) into the check's history and the host list; a failure
// notifies at once; a check that misses its interval + grace notifies like a host.
#[test]
fn a_cron_wrapper_reports_runs_and_silence_notifies() {
    require_tool("curl", "curl");
    let rec = Recorder::start(&[("*", &[200])]);
    let server = Server::start("checks-cron", &config(rec.port));
    let base = format!("http://127.0.0.1:{}/ping/{UUID}", server.http_port);
    let wrapper = server.dir.join("wrap.sh");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\n# A Healthchecks-style cron wrapper.\nurl=$1; shift\n\
         curl -fsS -m 10 --retry 3 -o /dev/null \"$url/start\"\n\
         \"$@\"\ncode=$?\n\
         curl -fsS -m 10 --retry 3 -o /dev/null --data-raw \"job said: exit $code\" \"$url/$code\"\n",
    )
    .expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let run = |job: &str| {
        let out = std::process::Command::new(&wrapper)
            .args([&base, "/bin/sh", "-c", job])
            .output()
            .expect("wrapper");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };

    // A run that succeeds after a second.
    run("sleep 1");
    let history = |n: u32| {
        let (code, body) = http_get(
            server.http_port,
            &format!("/api/applications/{UUID}/heartbeats?limit={n}"),
        )
        .expect("history");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<Vec<Value>>(&body).expect("json")
    };
    let h = history(10);
    assert_eq!(h.len(), 2, "{h:?}");
    assert_eq!(h[0]["kind"], "success");
    assert_eq!(h[0]["exit_status"], 0);
    assert_eq!(h[0]["body"], "job said: exit 0");
    let took = h[0]["duration_ms"].as_u64().expect("a duration");
    assert!((1000..3000).contains(&took), "{took} ms");
    assert_eq!(h[1]["kind"], "start");
    assert!(
        h[1]["user_agent"]
            .as_str()
            .is_some_and(|u| u.starts_with("curl/"))
    );

    // A run that fails: the check is down and notified at once.
    let sent = Instant::now();
    run("exit 3");
    let at = wait_hook(&rec, Duration::from_secs(5), |v| {
        v["alert"] == "nightly/down" && v["kind"] == "alert"
    })
    .unwrap_or_else(|| {
        panic!(
            "no failure notification: {:?}\n{}",
            hooks(&rec),
            server.log_text()
        )
    });
    let delay = at.duration_since(sent);
    eprintln!("failure notified {delay:?} after the wrapper started");
    assert!(delay < Duration::from_secs(3), "{delay:?}");
    let alert = hooks(&rec)
        .into_iter()
        .find(|v| v["alert"] == "nightly/down")
        .expect("alert");
    assert!(
        alert["text"]
            .as_str()
            .is_some_and(|t| t.contains("exit status 3")),
        "{alert}"
    );
    let h = history(10);
    assert_eq!(
        (h[0]["kind"].as_str(), h[0]["exit_status"].as_i64()),
        (Some("fail"), Some(3))
    );
    assert_eq!(h[0]["body"], "job said: exit 3");

    // On the dashboard's host list and page, with its state.
    let hosts = http_get(server.http_port, "/api/0/hosts").expect("hosts").1;
    let list: Vec<Value> = serde_json::from_str(&hosts).expect("json");
    let nightly = list
        .iter()
        .find(|h| h["name"] == "nightly")
        .expect("listed");
    assert_eq!(nightly["state"], "down");
    let (code, page) = http_get(server.http_port, "/live").expect("live");
    assert!(code == 200 && page.contains("nightly"), "{code}");
    let app = http_get(server.http_port, &format!("/api/applications/{UUID}"))
        .expect("app")
        .1;
    let app: Value = serde_json::from_str(&app).expect("json");
    assert_eq!(
        (app["status"].as_str(), app["name"].as_str()),
        (Some("down"), Some("nightly"))
    );
    assert_eq!(app["last_event"]["kind"], "fail");

    // Back with a plain ping: recovered. Then silence past interval + grace: down again,
    // notified like a host.
    let last_ping = Instant::now();
    let (code, _) = http_get(server.http_port, &format!("/ping/{UUID}")).expect("ping");
    assert_eq!(code, 200);
    assert!(
        wait_hook(&rec, Duration::from_secs(5), |v| v["kind"] == "recovery").is_some(),
        "no recovery: {:?}",
        hooks(&rec)
    );
    let silent = wait_hook(&rec, Duration::from_secs(20), |v| {
        v["kind"] == "alert"
            && v["text"]
                .as_str()
                .is_some_and(|t| t.contains("sent nothing"))
    })
    .unwrap_or_else(|| {
        panic!(
            "silence not notified: {:?}\n{}",
            hooks(&rec),
            server.log_text()
        )
    });
    let after = silent.duration_since(last_ping);
    eprintln!("silence notified {after:?} after the last ping (interval 3 s + grace 1 s)");
    assert!(after >= Duration::from_secs(4), "{after:?}");
}

// Acceptance 1: the Heartbeat Central API and the Healthchecks ping API answer as listed,
// bad input included.
#[test]
fn the_ping_apis_answer_as_listed() {
    let server = Server::start("checks-api", &config(9));
    let port = server.http_port;
    let call = |method: &str, path: &str| http(port, method, path, &[], b"");

    let r = call("GET", "/health");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "healthy");

    // Heartbeat Central: 200 with the name and time; 404 unknown; 400 inactive.
    let r = call("POST", &format!("/heartbeat/{UUID}"));
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(j["application"], "nightly");
    assert!(
        j["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{j}"
    );
    assert_eq!(
        call("POST", "/heartbeat/00000000-0000-4000-8000-00000000abcd").status,
        404
    );
    assert_eq!(call("POST", "/heartbeat/not-a-uuid").status, 404);
    assert_eq!(call("POST", &format!("/heartbeat/{PAUSED}")).status, 400);
    assert_eq!(call("GET", &format!("/heartbeat/{UUID}")).status, 405);

    let r = call("GET", "/api/applications");
    assert_eq!(r.status, 200);
    let apps = r.json();
    let nightly = apps
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == "nightly"))
        .expect("listed")
        .clone();
    assert_eq!(nightly["uuid"], UUID);
    assert_eq!(nightly["expected_interval"], 3);
    assert_eq!(nightly["is_active"], true);
    assert_eq!(nightly["status"], "up");
    assert_eq!(
        call("GET", &format!("/api/applications/{PAUSED}")).json()["status"],
        "paused"
    );
    assert_eq!(
        call("GET", "/api/applications/nightly").json()["uuid"],
        UUID
    );
    assert_eq!(call("GET", "/api/applications/nonexistent").status, 404);
    let h = call("GET", &format!("/api/applications/{UUID}/heartbeats")).json();
    assert_eq!(h[0]["kind"], "success");
    assert_eq!(h[0]["method"], "POST");

    // Healthchecks: every form; HEAD too; unknown and malformed answer 404 and cost little.
    for (method, path, want) in [
        ("GET", format!("/ping/{UUID}"), 200),
        ("HEAD", format!("/ping/{UUID}"), 200),
        ("POST", format!("/ping/{UUID}/start?rid=5f2c9d6e"), 200),
        ("POST", format!("/ping/{UUID}/log"), 200),
        ("GET", format!("/ping/{UUID}/0?rid=5f2c9d6e"), 200),
        ("GET", format!("/ping/{UUID}/fail"), 200),
        ("GET", format!("/ping/{UUID}/256"), 404),
        ("GET", format!("/ping/{UUID}/reboot"), 404),
        (
            "GET",
            "/ping/00000000-0000-4000-8000-00000000abcd".to_string(),
            404,
        ),
        ("GET", "/ping/..%2F..%2Fetc%2Fpasswd".to_string(), 404),
        ("GET", format!("/ping/{PAUSED}"), 400),
        ("GET", format!("/ping/{UUID}?rid={}", "x".repeat(100)), 400),
    ] {
        let r = call(method, &path);
        assert_eq!(r.status, want, "{method} {path}: {}", r.body);
        if method == "GET" && want == 200 {
            assert_eq!(r.body, "OK");
        }
    }
    let h = call("GET", &format!("/api/applications/{UUID}/heartbeats")).json();
    let kinds: Vec<&str> = h
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["kind"].as_str())
        .collect();
    assert_eq!(
        &kinds[..6],
        ["fail", "success", "log", "start", "success", "success"],
        "{h}"
    );
    assert!(
        h[1]["duration_ms"].is_u64(),
        "the rid ties the end to its start: {h}"
    );
    // A large body is kept to 10 KiB, and says so.
    let big = vec![b'x'; 50_000];
    let r = http(port, "POST", &format!("/ping/{UUID}/log"), &[], &big);
    assert_eq!(r.status, 200);
    let h = call(
        "GET",
        &format!("/api/applications/{UUID}/heartbeats?limit=1"),
    )
    .json();
    let body = h[0]["body"].as_str().expect("body");
    assert!(
        body.len() < 11_000 && body.ends_with("[39760 more bytes not kept]"),
        "{}",
        &body[body.len() - 40..]
    );

    // A check with a ping key: the UUID alone is not enough.
    for (path, headers, want) in [
        (format!("/ping/{KEYED}"), vec![], 403),
        (format!("/ping/{KEYED}?key=wrong-key-1"), vec![], 403),
        (format!("/ping/{KEYED}?key=s3cret-ping-key"), vec![], 200),
        (
            format!("/ping/{KEYED}/fail"),
            vec![("X-Ping-Key", "s3cret-ping-key")],
            200,
        ),
    ] {
        let r = http(port, "GET", &path, &headers, b"");
        assert_eq!(r.status, want, "{path}: {}", r.body);
    }
    assert_eq!(call("POST", &format!("/heartbeat/{KEYED}")).status, 403);
    let r = http(
        port,
        "POST",
        &format!("/heartbeat/{KEYED}"),
        &[("X-Ping-Key", "s3cret-ping-key")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.body);

    // Rate limit per check: a burst past it is refused with Retry-After, and counted.
    let mut limited = 0;
    for _ in 0..60 {
        let r = call("GET", &format!("/ping/{UUID}"));
        if r.status == 429 {
            assert!(r.header("retry-after").is_some());
            limited += 1;
        }
    }
    assert!(limited > 0, "no ping was rate limited");
}

// Acceptance 1, the rest of Heartbeat Central's API: applications made, changed and removed
// through it (400 for bad input, 409 for the file's), pinged at the UUID they got, kept
// across a restart of the engine.
#[test]
fn applications_are_made_changed_and_removed_through_the_api() {
    let server = Server::start("checks-crud", &config(9));
    let port = server.http_port;
    let send = |method: &str, path: &str, body: &str| {
        http(
            port,
            method,
            path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
    };
    for (body, want) in [
        (r#"{"expected_interval": 60}"#, "name is required"),
        (r#"{"name": "x"}"#, "expected_interval is required"),
        (
            r#"{"name": "x", "expected_interval": "often"}"#,
            "must be a number",
        ),
        (
            r#"{"name": "x", "expected_interval": 0}"#,
            "interval: must be 1",
        ),
        (
            r#"{"name": "x", "expected_interval": 60, "colour": 1}"#,
            "unknown field",
        ),
        (
            r#"{"name": "???", "expected_interval": 60}"#,
            "letter or a digit",
        ),
        ("not json", "not JSON"),
        ("[1]", "JSON object"),
    ] {
        let r = send("POST", "/api/applications", body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(r.body.contains(want), "{body}: {}", r.body);
    }
    let r = send(
        "POST",
        "/api/applications",
        r#"{"name": "nightly", "expected_interval": 60}"#,
    );
    assert_eq!(r.status, 409, "the file's name: {}", r.body);

    let r = send(
        "POST",
        "/api/applications",
        r#"{"name": "Report Mailer", "expected_interval": 2, "grace_period": 1}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let made = r.json();
    assert_eq!(made["name"], "report-mailer");
    assert_eq!(made["description"], "Report Mailer");
    assert_eq!(made["status"], "new");
    assert_eq!(made["source"], "api");
    let uuid = made["uuid"].as_str().expect("a uuid").to_string();
    assert_eq!(uuid.len(), 36);

    // On a cron schedule in a time zone instead of an interval; bad ones refused.
    let r = send(
        "POST",
        "/api/applications",
        r#"{"name": "weekly", "schedule": "0 3 * * mon", "tz": "Europe/Berlin"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        (r.json()["schedule"].as_str(), r.json()["tz"].as_str()),
        (Some("0 3 * * mon"), Some("Europe/Berlin"))
    );
    for (body, want) in [
        (r#"{"name": "w2", "schedule": "0 3 * *"}"#, "five fields"),
        (
            r#"{"name": "w2", "schedule": "0 3 * * *", "tz": "Mars/Olympus"}"#,
            "Mars/Olympus",
        ),
    ] {
        let r = send("POST", "/api/applications", body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(r.body.contains(want), "{}", r.body);
    }

    // Pinged at its UUID; kept across a kill -9 of the engine; changed; silent: down.
    assert_eq!(
        http_get(port, &format!("/ping/{uuid}")).expect("ping").0,
        200
    );
    server.kill_9("engine");
    server.wait_running(Duration::from_secs(20));
    // A question asked while the engine restarts may go unanswered (503): ask again.
    let mut r = send("GET", &format!("/api/applications/{uuid}"), "");
    assert!(
        wait_for(Duration::from_secs(15), || {
            r = send("GET", &format!("/api/applications/{uuid}"), "");
            r.status == 200
        }),
        "{}",
        r.body
    );
    assert_eq!(r.json()["expected_interval"], 2);
    let r = send(
        "PUT",
        &format!("/api/applications/{uuid}"),
        r#"{"expected_interval": 3, "is_active": true}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["expected_interval"], 3);
    assert_eq!(r.json()["grace_period"], 1.0, "fields not given stay");
    assert_eq!(
        send(
            "PUT",
            &format!("/api/applications/{uuid}"),
            r#"{"name": "other"}"#
        )
        .status,
        400
    );
    assert_eq!(
        send(
            "PUT",
            &format!("/api/applications/{UUID}"),
            r#"{"expected_interval": 9}"#
        )
        .status,
        409
    );
    assert_eq!(
        send("DELETE", &format!("/api/applications/{UUID}"), "").status,
        409
    );
    assert_eq!(
        http_get(port, &format!("/ping/{uuid}")).expect("ping").0,
        200
    );
    assert!(
        wait_for(Duration::from_secs(15), || send(
            "GET",
            &format!("/api/applications/{uuid}"),
            ""
        )
        .json()["status"]
            == "down"),
        "not down after interval + grace"
    );

    // Paused: pings refused with 400; removed: gone, pings 404.
    let r = send(
        "PUT",
        &format!("/api/applications/{uuid}"),
        r#"{"is_active": false}"#,
    );
    assert_eq!(r.json()["status"], "paused");
    assert_eq!(
        http_get(port, &format!("/ping/{uuid}")).expect("ping").0,
        400
    );
    let r = send("DELETE", &format!("/api/applications/{uuid}"), "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        send("GET", &format!("/api/applications/{uuid}"), "").status,
        404
    );
    assert_eq!(
        http_get(port, &format!("/ping/{uuid}")).expect("ping").0,
        404
    );
    assert!(
        !http_get(port, "/api/0/hosts")
            .expect("hosts")
            .1
            .contains("report-mailer"),
        "its state went with it"
    );
}

// With users: a user sees the check they made before it is ever pinged; nobody takes over
// another's name; only its owner (or an admin) changes it.
#[test]
fn users_own_the_checks_they_make() {
    let hash =
        |p: &str| hb_child::passwd::PasswordHash::with_salt(p, "checksalt", 1000).to_string();
    let config = format!(
        "users:\n  alice: {{password: \"{}\", admin: true}}\n  bob: {{password: \"{}\"}}\n  carol: {{password: \"{}\"}}\n",
        hash("alice-pw"),
        hash("bob-pw"),
        hash("carol-pw")
    );
    let server = Server::start("checks-users", &config);
    let port = server.http_port;
    let token = |user: &str, pw: &str| format!("Bearer {}", api_login(port, user, pw));
    let (bob, carol, alice) = (
        token("bob", "bob-pw"),
        token("carol", "carol-pw"),
        token("alice", "alice-pw"),
    );
    let send = |auth: &str, method: &str, path: &str, body: &str| {
        http(
            port,
            method,
            path,
            &[
                ("Authorization", auth),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
    };
    assert_eq!(http(port, "GET", "/api/applications", &[], b"").status, 401);
    let r = send(
        &bob,
        "POST",
        "/api/applications",
        r#"{"name": "bobs-job", "expected_interval": 60}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["owner"], "bob");
    let uuid = r.json()["uuid"].as_str().expect("uuid").to_string();
    assert_eq!(
        send(&bob, "GET", "/api/applications", "").json()[0]["name"],
        "bobs-job",
        "seen before any ping"
    );
    assert_eq!(
        send(&carol, "GET", "/api/applications", "").json(),
        serde_json::json!([])
    );
    let r = send(
        &carol,
        "POST",
        "/api/applications",
        r#"{"name": "bobs-job", "expected_interval": 5}"#,
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(
        send(&carol, "GET", &format!("/api/applications/{uuid}"), "").status,
        404
    );
    assert_eq!(
        send(
            &carol,
            "PUT",
            &format!("/api/applications/{uuid}"),
            r#"{"expected_interval": 5}"#
        )
        .status,
        404
    );
    assert_eq!(
        send(
            &carol,
            "POST",
            "/api/applications",
            r#"{"name": "x", "expected_interval": 5, "owner": "bob"}"#
        )
        .status,
        403
    );
    assert_eq!(
        send(
            &bob,
            "PUT",
            &format!("/api/applications/{uuid}"),
            r#"{"expected_interval": 120}"#
        )
        .json()["expected_interval"],
        120
    );
    assert_eq!(
        send(&alice, "DELETE", &format!("/api/applications/{uuid}"), "").status,
        200,
        "an admin may"
    );
}
