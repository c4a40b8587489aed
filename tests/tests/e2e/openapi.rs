//! Issue 8, acceptance 2: the OpenAPI document is served, is the one in the tree, and every
//! operation in it answers with its documented success status and a body of its documented
//! shape (checked by a small JSON-schema walker), and without credentials with a documented
//! error.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

/// Follows `$ref`s within the document.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let path = r.trim_start_matches("#/");
            let target = path.split('/').fold(doc, |v, k| &v[k]);
            resolve(doc, target)
        }
        None => schema,
    }
}

/// Checks `value` against an OpenAPI 3.0 schema (type, nullable, enum, required,
/// properties, additionalProperties: false, items); the errors found.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if value.is_null() {
        if schema["nullable"] != true && schema.get("type").is_some() {
            errors.push(format!("{at}: null but not nullable"));
        }
        return;
    }
    if let Some(options) = schema["enum"].as_array()
        && !options.contains(value)
    {
        errors.push(format!("{at}: {value} not in {options:?}"));
    }
    let ok = match schema["type"].as_str() {
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        Some("array") => value.is_array(),
        Some("object") => value.is_object(),
        _ => true,
    };
    if !ok {
        errors.push(format!("{at}: {value} is not of type {}", schema["type"]));
        return;
    }
    if let Some(required) = schema["required"].as_array() {
        for name in required.iter().filter_map(Value::as_str) {
            if value.get(name).is_none() {
                errors.push(format!("{at}: missing {name}"));
            }
        }
    }
    if let (Some(props), Some(obj)) = (schema["properties"].as_object(), value.as_object()) {
        for (name, v) in obj {
            match props.get(name) {
                Some(s) => check(doc, s, v, &format!("{at}.{name}"), errors),
                None if schema["additionalProperties"] == false => {
                    errors.push(format!("{at}: undocumented field {name}"));
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), value.as_array()) {
        for (i, v) in list.iter().enumerate() {
            check(doc, items, v, &format!("{at}[{i}]"), errors);
        }
    }
}

fn hash(password: &str) -> String {
    hb_child::passwd::PasswordHash::with_salt(password, "openapisalt", 1000).to_string()
}

#[test]
fn every_documented_operation_answers_as_documented() {
    let config = format!(
        "users:\n  alice: {{password: \"{}\", admin: true}}\ninterval: 1\nmax_missed: 1\ngrace: 1\ndyndomains: [dyn.test]\nnsupdate_bin: /bin/true\nhosts:\n  web1: {{dyndns: true}}\n",
        hash("alice-pw")
    );
    let server = Server::start("openapi", &config);
    let port = server.http_port;
    let send = |msg: Value| send_from("127.0.0.1", server.hb_port, msg.to_string().as_bytes());
    send(json!({"ID": "HTB", "name": "db1", "interval": 1}));
    send(json!({"ID": "HTB", "name": "gone1", "interval": 60}));
    let beats = std::thread::spawn({
        let hb_port = server.hb_port;
        move || {
            for i in 0..40 {
                let beat = json!({"ID": "HTB", "name": "web1", "interval": 1, "rtt": 0.5 + f64::from(i) / 10.0});
                let plg = json!({"ID": "PLG", "name": "web1", "plugin": "cpu_monitor", "data": {"cpu_percent": i}});
                for m in [beat, plg] {
                    send_from("127.0.0.1", hb_port, m.to_string().as_bytes());
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    });
    let token = api_login(port, "alice", "alice-pw");
    let auth = format!("Bearer {token}");
    let get = |path: &str| http(port, "GET", path, &[("Authorization", &auth)], b"");
    assert!(
        wait_for(Duration::from_secs(15), || {
            get("/api/0/alerts").body.contains("db1/down")
                && get("/api/0/hosts/web1/plugins")
                    .body
                    .contains("cpu_monitor")
        }),
        "no alert or plugin data to walk with"
    );
    let silence = http(
        port,
        "POST",
        "/api/0/silences",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        br#"{"host":"db1","minutes":5}"#,
    )
    .json()["id"]
        .as_u64()
        .expect("a silence");

    // The document served is the one in the tree, and it is OpenAPI 3.
    let served = http(port, "GET", "/api/0/openapi.json", &[], b"");
    assert_eq!(served.status, 200);
    let doc: Value = serde_json::from_str(include_str!("../../../bin/hb-web/openapi.json"))
        .expect("openapi.json is JSON");
    assert_eq!(served.json(), doc);
    assert!(doc["openapi"].as_str().unwrap_or("").starts_with("3.0"));

    let bodies = |op: &str| -> Option<&str> {
        match op {
            "login" => Some(r#"{"username":"alice","password":"alice-pw"}"#),
            "queue_command" => Some(r#"{"command":"uptime"}"#),
            "create_silence" => {
                Some(r#"{"host":"web1","metric":"rtt","minutes":5,"comment":"walk"}"#)
            }
            "set_host_access" => Some(r#"{"monitors":["alice"]}"#),
            "change_me" => Some(r#"{"full_name":"Alice Walker"}"#),
            "create_channel" => Some(
                r#"{"name":"walk-hook","type":"webhook","options":{"url":"http://127.0.0.1:9/hook","secret":"walk-secret"}}"#,
            ),
            "change_channel" => Some(r#"{"min_level":"CRITICAL"}"#),
            _ => None,
        }
    };
    let mut operations: Vec<(String, String, Value)> = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if ["get", "post", "put", "delete"].contains(&method.as_str()) {
                operations.push((path.clone(), method.to_uppercase(), op.clone()));
            }
        }
    }
    // What ends things goes last.
    operations.sort_by_key(|(_, _, op)| match op["operationId"].as_str() {
        Some("drop_host" | "delete_silence" | "delete_channel") => 1,
        Some("logout") => 2,
        _ => 0,
    });
    let mut walked = 0;
    let mut failures = Vec::new();
    for (path, method, op) in &operations {
        let id = op["operationId"].as_str().unwrap_or("?");
        let url = path
            .replace("{host}", if id == "drop_host" { "gone1" } else { "web1" })
            .replace("{plugin}", "cpu_monitor")
            .replace("{key}", "db1%2Fdown")
            .replace("{id}", &silence.to_string())
            .replace("{name}", "walk-hook");
        let documented: Vec<u16> = op["responses"]
            .as_object()
            .map(|r| r.keys().filter_map(|k| k.parse().ok()).collect())
            .unwrap_or_default();
        let success = *documented
            .iter()
            .filter(|s| **s < 300)
            .min()
            .expect("a success status");
        if id == "live_feed" {
            let (status, _) = ws_connect(port, &url, &[("Authorization", &auth)], None);
            assert_eq!(status, success, "{method} {path}");
            let (status, _) = ws_connect(port, &url, &[], None);
            assert!(
                documented.contains(&status),
                "{method} {path} without credentials: {status}"
            );
            walked += 1;
            continue;
        }
        let body = bodies(id).unwrap_or("");
        let mut headers = vec![("Authorization", auth.as_str())];
        if !body.is_empty() {
            headers.push(("Content-Type", "application/json"));
        }
        // Without credentials first (logout would end the session).
        let bare: Vec<(&str, &str)> = headers
            .iter()
            .filter(|(n, _)| *n != "Authorization")
            .copied()
            .collect();
        let r = http(port, method, &url, &bare, body.as_bytes());
        if !documented.contains(&r.status) {
            failures.push(format!(
                "{method} {path} without credentials: {} not documented ({})",
                r.status, r.body
            ));
        }
        let r = http(port, method, &url, &headers, body.as_bytes());
        walked += 1;
        if r.status != success {
            failures.push(format!(
                "{method} {path}: {} instead of {success}: {}",
                r.status, r.body
            ));
            continue;
        }
        let content = &op["responses"][success.to_string()]["content"];
        if let Some(schema) = content.get("application/json").map(|c| &c["schema"]) {
            let mut errors = Vec::new();
            check(&doc, schema, &r.json(), id, &mut errors);
            if r.json().is_null() {
                errors.push(format!("{id}: not JSON: {}", r.body));
            }
            failures.extend(errors);
        } else if content.get("text/plain").is_some()
            && !r
                .header("content-type")
                .unwrap_or("")
                .starts_with("text/plain")
        {
            failures.push(format!("{method} {path}: not text/plain"));
        }
    }
    beats.join().expect("beats");
    assert!(
        failures.is_empty(),
        "{} of {walked} operations differ from the document:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(walked >= 30, "only {walked} operations walked");
    eprintln!("{walked} documented operations walked");
    // The walker itself tells a wrong shape.
    let mut errors = Vec::new();
    let host = json!({"$ref": "#/components/schemas/Host"});
    check(
        &doc,
        &host,
        &json!({"name": 1, "surprise": true}),
        "Host",
        &mut errors,
    );
    assert!(
        errors.iter().any(|e| e.contains("missing state")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("is not of type")),
        "{errors:?}"
    );
}
