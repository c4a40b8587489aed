//! Issue 8: HTTPS and WSS on the HTTP port with rustls; the certificate is renewed by a
//! reload; bad files are refused by `hbsupervisor -n`. Certificates are made with openssl and
//! checked with curl and openssl s_client, real TLS clients.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::*;

/// A self-signed certificate for 127.0.0.1 and localhost: (cert, key).
fn certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    require_tool("openssl", "openssl");
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", &format!("/CN={name}")])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// `curl` over HTTPS trusting `ca`: (status, headers and body).
fn curl(port: u16, path: &str, ca: &Path, extra: &[&str]) -> (u16, String) {
    require_tool("curl", "curl");
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10", "--cacert"])
        .arg(ca)
        .args(extra)
        .arg(format!("https://127.0.0.1:{port}{path}"))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn https_and_wss_with_a_certificate_renewed_by_reload() {
    let dir = scratch("tls");
    let (cert, key) = certificate(&dir, "first");
    let password = hb_child::passwd::PasswordHash::with_salt("alice-pw", "tlssalt", 1000);
    let config = format!(
        "users:\n  alice: {{password: \"{password}\", admin: true}}\ntls_cert: {}\ntls_key: {}\n",
        cert.display(),
        key.display()
    );
    let server = Server::start("tls", &config);
    let port = server.http_port;

    // HTTPS answers; plain HTTP on the same port gets nothing.
    let (status, text) = curl(port, "/api/0/openapi.json", &cert, &[]);
    assert_eq!(status, 200, "{text}");
    assert_eq!(http(port, "GET", "/api/0/openapi.json", &[], b"").status, 0);

    // The session cookie is Secure under TLS.
    let (status, text) = curl(
        port,
        "/api/0/auth/login",
        &cert,
        &[
            "-H",
            "Content-Type: application/json",
            "--data",
            r#"{"username":"alice","password":"alice-pw"}"#,
        ],
    );
    assert_eq!(status, 200, "{text}");
    let cookie = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_default();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let token = text
        .split("\"token\":\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .expect("a token")
        .to_string();

    // WSS: a WebSocket handshake through openssl s_client gets 101 and the snapshot.
    let mut client = Command::new("openssl")
        .args(["s_client", "-quiet", "-verify_return_error", "-CAfile"])
        .arg(&cert)
        .args(["-connect", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run openssl s_client");
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    let mut stdin = client.stdin.take().expect("stdin");
    stdin.write_all(request.as_bytes()).expect("send handshake");
    let mut stdout = client.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("snapshot") {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&seen).to_string()
    });
    let mut seen = String::new();
    let done = wait_for(Duration::from_secs(15), || reader.is_finished());
    if done {
        seen = reader.join().unwrap_or_default();
    }
    let _ = client.kill();
    let _ = client.wait();
    drop(stdin);
    assert!(
        seen.contains("101 Switching Protocols"),
        "no WSS upgrade: {seen:?}"
    );
    assert!(
        seen.contains("\"type\":\"snapshot\""),
        "no snapshot over WSS: {seen:?}"
    );

    // A renewed certificate takes effect with a reload, without a restart.
    let web_pid = server.pid_of("web");
    let old = dir.join("first-copy.pem");
    std::fs::copy(&cert, &old).expect("keep the first certificate");
    let (second, second_key) = certificate(&dir, "second");
    std::fs::copy(&second, &cert).expect("renew cert");
    std::fs::copy(&second_key, &key).expect("renew key");
    assert!(server.ctl(&["reload"]).is_some(), "{}", server.log_text());
    let (status, text) = curl(port, "/api/0/openapi.json", &second, &[]);
    assert_eq!(status, 200, "the renewed certificate is not served: {text}");
    assert_eq!(server.pid_of("web"), web_pid, "the web restarted");
    // The first certificate no longer verifies the server.
    let (status, _) = curl(port, "/api/0/openapi.json", &old, &[]);
    assert_eq!(status, 0);
}

#[test]
fn bad_certificate_settings_are_refused_by_the_check() {
    let dir = scratch("tls-check");
    let (cert, key) = certificate(&dir, "check");
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, "hello\n").expect("write");
    for (name, text, want) in [
        (
            "only-cert",
            format!("tls_cert: {}\n", cert.display()),
            "tls_cert",
        ),
        (
            "not-pem",
            format!(
                "tls_cert: {}\ntls_key: {}\n",
                not_pem.display(),
                key.display()
            ),
            "holds no PEM",
        ),
        (
            "missing",
            format!(
                "tls_cert: {}/nope.pem\ntls_key: {}\n",
                dir.display(),
                key.display()
            ),
            "cannot read",
        ),
        (
            "relative",
            "tls_cert: cert.pem\ntls_key: key.pem\n".to_string(),
            "absolute",
        ),
        (
            "half-original",
            format!("cert_path: {}\nwss_pem: check.pem\n", dir.display()),
            "wss_key",
        ),
    ] {
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, text).expect("write");
        let out = check_config(&path);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{name}: {err}");
        assert!(err.contains(want), "{name}: {want:?} not in {err}");
    }
    // The original's keys work.
    let path = dir.join("original.yaml");
    std::fs::write(
        &path,
        format!(
            "user: nobody\ncert_path: {}\nwss_pem: check.pem\nwss_key: check.key\n",
            dir.display()
        ),
    )
    .expect("write");
    let out = check_config(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
