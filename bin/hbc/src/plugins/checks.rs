//! `service_checks`: the standalone "heartbeat" health checker's job. Checks of type `http`,
//! `https` (a GET: the status, and optionally a substring of the body) and `tcp` (a connect)
//! run in parallel, each within its timeout; results are reported as a plugin. Each check
//! names an action key: when every check of a key passes, the key's `promote` command runs;
//! when any fails, its `demote` command runs; once per transition (the first result counts
//! as one, so a restarted client settles the state). Commands come from this client's own
//! configuration and run without a shell.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
#[cfg(feature = "https")]
pub use tokio_rustls::rustls::ClientConfig;
#[cfg(feature = "https")]
use tokio_rustls::rustls::RootCertStore;
#[cfg(feature = "https")]
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};

use crate::commands;

/// Bytes of an answer read at most (status line, headers and the start of the body).
const MAX_ANSWER: usize = 64 * 1024;

/// What a check connects to.
#[derive(Clone, Debug, PartialEq)]
pub enum Probe {
    Tcp {
        host: String,
        port: u16,
    },
    Http {
        tls: bool,
        host: String,
        port: u16,
        path: String,
        expect_status: Option<u16>,
        expect_body: Option<String>,
    },
}

/// One check.
#[derive(Clone, Debug)]
pub struct Check {
    pub name: String,
    pub probe: Probe,
    pub timeout: Duration,
    pub action: Option<String>,
}

/// What an action key runs.
#[derive(Clone, Debug, Default)]
pub struct Action {
    pub promote: Option<Vec<String>>,
    pub demote: Option<Vec<String>>,
}

/// The checks, their actions, and each key's last state (`true`: promoted).
pub struct ServiceChecks {
    pub checks: Vec<Check>,
    pub actions: BTreeMap<String, Action>,
    pub ca: Option<Arc<ClientConfig>>,
    state: BTreeMap<String, bool>,
    /// Each key's last command outcome, for the report.
    ran: BTreeMap<String, Value>,
}

/// Splits `http[s]://host[:port][/path]`.
pub fn parse_url(url: &str) -> Result<(bool, String, u16, String), String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(format!("{url:?} must start with http:// or https://"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.contains('@') || path.contains(char::is_whitespace) {
        return Err(format!("{url:?}: no credentials or spaces in the URL"));
    }
    let default = if tls { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{url:?}: bad address"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| format!("{url:?}: bad port"))?,
            None => default,
        };
        (h.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse().map_err(|_| format!("{url:?}: bad port"))?,
            ),
            None => (authority.to_string(), default),
        }
    };
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    Ok((tls, host, port, path.to_string()))
}

/// Built without the `https` feature: there is nothing to configure, and https checks are
/// refused when the configuration is loaded.
#[cfg(not(feature = "https"))]
#[derive(Debug)]
pub struct ClientConfig;

/// Why an https check or a `ca_file` cannot be had without the `https` feature.
#[cfg(not(feature = "https"))]
pub const NO_TLS: &str = "this hbc was built without TLS (cargo feature https)";

#[cfg(not(feature = "https"))]
pub fn tls_config(ca_file: Option<&str>) -> Result<Arc<ClientConfig>, String> {
    match ca_file {
        None => Ok(Arc::new(ClientConfig)),
        Some(_) => Err(NO_TLS.into()),
    }
}

/// The Mozilla roots, and a CA file's certificates when one is given.
#[cfg(feature = "https")]
pub fn tls_config(ca_file: Option<&str>) -> Result<Arc<ClientConfig>, String> {
    static DEFAULT: std::sync::OnceLock<Arc<ClientConfig>> = std::sync::OnceLock::new();
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let Some(path) = ca_file else {
        return Ok(DEFAULT
            .get_or_init(|| {
                Arc::new(
                    ClientConfig::builder()
                        .with_root_certificates(roots)
                        .with_no_client_auth(),
                )
            })
            .clone());
    };
    let pem = std::fs::read(path).map_err(|e| format!("ca_file {path}: {e}"))?;
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("ca_file {path}: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("ca_file {path}: {e}"))?;
        added += 1;
    }
    if added == 0 {
        return Err(format!("ca_file {path}: no certificate in it"));
    }
    Ok(Arc::new(
        ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

async fn exchange(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    host: &str,
    path: &str,
) -> Result<Vec<u8>, String> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: hbc/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("send: {e}"))?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 8192];
    while answer.len() < MAX_ANSWER {
        match stream.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            // A TLS peer that closes without close_notify has said all it will.
            Err(_) if !answer.is_empty() => break,
            Err(e) => return Err(format!("receive: {e}")),
        }
    }
    Ok(answer)
}

/// The status code and the body (as text) of an HTTP/1.x answer.
pub fn parse_answer(answer: &[u8]) -> Result<(u16, String), String> {
    let text = String::from_utf8_lossy(answer);
    let status_line = text.lines().next().unwrap_or("");
    let mut words = status_line.split_whitespace();
    let (Some(version), Some(code)) = (words.next(), words.next()) else {
        return Err("no HTTP answer".into());
    };
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1 answer: {status_line:?}"));
    }
    let code = code
        .parse()
        .map_err(|_| format!("bad status line {status_line:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((code, body))
}

impl Check {
    /// Runs the check: `Ok` with what it saw, or why it failed.
    pub async fn run(&self, tls: &Arc<ClientConfig>) -> (bool, Map<String, Value>) {
        let started = Instant::now();
        let outcome = tokio::time::timeout(self.timeout, self.probe(tls)).await;
        let mut m = Map::new();
        m.insert(
            "response_ms".into(),
            json!(super::system::round2(
                started.elapsed().as_secs_f64() * 1000.0
            )),
        );
        let ok = match outcome {
            Err(_) => {
                m.insert(
                    "error".into(),
                    json!(format!("no answer within {} s", self.timeout.as_secs_f64())),
                );
                false
            }
            Ok(Err(e)) => {
                m.insert("error".into(), json!(e));
                false
            }
            Ok(Ok(status)) => {
                if let Some(s) = status {
                    m.insert("status_code".into(), json!(s));
                }
                true
            }
        };
        m.insert("ok".into(), json!(u8::from(ok)));
        (ok, m)
    }

    /// `Ok(status)` when the check passes (`None` for tcp).
    async fn probe(&self, tls: &Arc<ClientConfig>) -> Result<Option<u16>, String> {
        match &self.probe {
            Probe::Tcp { host, port } => {
                TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| format!("connect: {e}"))?;
                Ok(None)
            }
            Probe::Http {
                tls: secure,
                host,
                port,
                path,
                expect_status,
                expect_body,
            } => {
                let mut tcp = TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| format!("connect: {e}"))?;
                // The Host header names the port unless it is the scheme's.
                let bracketed = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.clone()
                };
                let authority = if *port == if *secure { 443 } else { 80 } {
                    bracketed
                } else {
                    format!("{bracketed}:{port}")
                };
                let answer = if *secure {
                    https_exchange(tls, host, tcp, &authority, path).await?
                } else {
                    exchange(&mut tcp, &authority, path).await?
                };
                let (status, body) = parse_answer(&answer)?;
                let status_ok = match expect_status {
                    Some(want) => status == *want,
                    None => (200..400).contains(&status),
                };
                if !status_ok {
                    return Err(format!("status {status}"));
                }
                if let Some(want) = expect_body
                    && !body.contains(want.as_str())
                {
                    return Err(format!("the body does not contain {want:?}"));
                }
                Ok(Some(status))
            }
        }
    }
}

/// A GET over TLS.
#[cfg(feature = "https")]
async fn https_exchange(
    tls: &Arc<ClientConfig>,
    host: &str,
    tcp: TcpStream,
    authority: &str,
    path: &str,
) -> Result<Vec<u8>, String> {
    let name = ServerName::try_from(host.to_string()).map_err(|e| format!("{host}: {e}"))?;
    let mut stream = tokio_rustls::TlsConnector::from(tls.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    exchange(&mut stream, authority, path).await
}

/// Never reached: https checks are refused when the configuration is loaded.
#[cfg(not(feature = "https"))]
async fn https_exchange(
    _: &Arc<ClientConfig>,
    _: &str,
    _: TcpStream,
    _: &str,
    _: &str,
) -> Result<Vec<u8>, String> {
    Err(NO_TLS.into())
}

impl ServiceChecks {
    pub fn new(
        checks: Vec<Check>,
        actions: BTreeMap<String, Action>,
        ca: Option<Arc<ClientConfig>>,
    ) -> Self {
        ServiceChecks {
            checks,
            actions,
            ca,
            state: BTreeMap::new(),
            ran: BTreeMap::new(),
        }
    }

    /// Runs every check at once, then the actions whose state changed.
    pub async fn collect(&mut self, command_timeout: Duration) -> Result<Value, String> {
        let tls = match &self.ca {
            Some(c) => c.clone(),
            None => tls_config(None)?,
        };
        let runs: Vec<_> = self
            .checks
            .iter()
            .cloned()
            .map(|c| {
                let tls = tls.clone();
                async move { (c.name.clone(), c.action.clone(), c.run(&tls).await) }
            })
            .collect();
        let results = super::join_all(runs).await;
        let mut checks = Map::new();
        let mut passing: BTreeMap<String, bool> = BTreeMap::new();
        for (name, action, (ok, fields)) in results {
            if let Some(key) = action {
                *passing.entry(key).or_insert(true) &= ok;
            }
            checks.insert(name, Value::Object(fields));
        }
        for (key, all_pass) in passing {
            if self.state.get(&key) == Some(&all_pass) {
                continue;
            }
            self.state.insert(key.clone(), all_pass);
            let action = self.actions.get(&key).cloned().unwrap_or_default();
            let (what, argv) = if all_pass {
                ("promote", action.promote)
            } else {
                ("demote", action.demote)
            };
            let Some(argv) = argv else { continue };
            tracing::warn!(
                key,
                what,
                "Service checks changed state; running the {what} command."
            );
            let o = commands::run(&argv, command_timeout).await;
            if o.exit != Some(0) {
                tracing::warn!(key, what, exit = ?o.exit, output = %o.text.trim(), "The {what} command failed.");
            }
            self.ran.insert(
                key,
                json!({"ran": what, "exit": o.exit, "at_ms": hb_proto::now_ms()}),
            );
        }
        let actions: Map<String, Value> = self
            .state
            .iter()
            .map(|(k, up)| {
                let mut v = json!({"state": if *up { "promoted" } else { "demoted" }});
                if let Some(r) = self.ran.get(k) {
                    v["last"] = r.clone();
                }
                (k.clone(), v)
            })
            .collect();
        let failing = checks.values().filter(|c| c["ok"] == 0).count();
        Ok(json!({"checks": checks, "actions": actions, "failing": failing}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_answers() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080/health?x=1"),
            Ok((false, "127.0.0.1".into(), 8080, "/health?x=1".into()))
        );
        assert_eq!(
            parse_url("https://example.net"),
            Ok((true, "example.net".into(), 443, "/".into()))
        );
        assert_eq!(
            parse_url("http://[::1]:81/"),
            Ok((false, "::1".into(), 81, "/".into()))
        );
        for bad in [
            "ftp://x",
            "http://",
            "http://u:p@x/",
            "http://x:99999/",
            "http://x/a b",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_answer(b"HTTP/1.1 503 Service Unavailable\r\nX: y\r\n\r\ndown"),
            Ok((503, "down".into()))
        );
        assert!(parse_answer(b"SSH-2.0-OpenSSH").is_err());
        assert!(parse_answer(b"").is_err());
    }
}
