//! Sending one HTTP request: a fresh connection each time (notifications are rare; no pool
//! to go stale), HTTP/1.1, TLS with the Mozilla root certificates for `https://`, the whole
//! attempt bounded by the channel's timeout. Errors never include the URL (it may hold a
//! secret).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hb_notify::request::Request;
use hb_notify::retry::{self, Attempt};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, pki_types::ServerName};

/// Bytes of a response body read at most (it is only for the error message).
const MAX_RESPONSE: usize = 16 << 10;

struct Target {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

fn target(url: &str) -> Result<Target, String> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|_| "the URL cannot be parsed".to_string())?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err("the URL must start with http:// or https://".into()),
    };
    // `host()` leaves out credentials in the URL, which no channel sends as Basic auth.
    let host = uri
        .host()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    let path = match uri
        .path_and_query()
        .map(hyper::http::uri::PathAndQuery::as_str)
    {
        Some(p) if p.starts_with('/') => p.to_string(),
        Some(p) => format!("/{p}"),
        None => "/".to_string(),
    };
    Ok(Target {
        tls,
        port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }),
        host,
        path,
    })
}

fn tls_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            Arc::new(
                ClientConfig::builder()
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            )
        })
        .clone()
}

/// Sends `req`, within `timeout`.
pub async fn send(req: &Request, timeout: Duration) -> Attempt {
    match tokio::time::timeout(timeout, attempt(req)).await {
        Ok(outcome) => outcome,
        Err(_) => Attempt::Transient {
            error: format!("no answer within {} s", timeout.as_secs_f64()),
            after: None,
        },
    }
}

async fn attempt(req: &Request) -> Attempt {
    let t = match target(&req.url) {
        Ok(t) => t,
        Err(error) => return Attempt::Permanent { error },
    };
    let tcp = match TcpStream::connect((t.host.as_str(), t.port)).await {
        Ok(s) => s,
        Err(e) => {
            return Attempt::Transient {
                error: format!("cannot connect: {}", e.kind()),
                after: None,
            };
        }
    };
    let _ = tcp.set_nodelay(true);
    let result = if t.tls {
        let Ok(name) = ServerName::try_from(t.host.clone()) else {
            return Attempt::Permanent {
                error: "bad host name for TLS".into(),
            };
        };
        match TlsConnector::from(tls_config()).connect(name, tcp).await {
            Ok(stream) => exchange(TokioIo::new(stream), req, &t).await,
            Err(e) => Err(format!("TLS: {e}")),
        }
    } else {
        exchange(TokioIo::new(tcp), req, &t).await
    };
    match result {
        Ok((status, after)) => retry::Attempt::from_status(status, after),
        Err(error) => Attempt::Transient { error, after: None },
    }
}

async fn exchange<S>(
    io: TokioIo<S>,
    req: &Request,
    t: &Target,
) -> Result<(u16, Option<Duration>), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let default_port = if t.tls { 443 } else { 80 };
    let host = if t.port == default_port {
        t.host.clone()
    } else {
        format!("{}:{}", t.host, t.port)
    };
    let mut builder = hyper::Request::builder()
        .method(req.method)
        .uri(t.path.as_str())
        .header("Host", host)
        .header(
            "User-Agent",
            concat!("hb-notifier/", env!("CARGO_PKG_VERSION")),
        );
    for (name, value) in &req.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let request = builder
        .body(Full::new(Bytes::from(req.body.clone())))
        .map_err(|e| format!("request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let status = response.status().as_u16();
    let after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(retry::retry_after);
    // Read a little of the body so the server sees a clean close; the rest is dropped.
    let mut body = response.into_body();
    let mut read = 0;
    while read < MAX_RESPONSE {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, hyper::body::Bytes::len),
            _ => break,
        }
    }
    Ok((status, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_split_without_their_credentials() {
        let t = target("https://user:pw@hooks.example.net/services/x?y=1").unwrap();
        assert!(t.tls);
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("hooks.example.net", 443, "/services/x?y=1")
        );
        let t = target("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("127.0.0.1", 8080, "/")
        );
        let t = target("http://[::1]:9/x").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9));
        let t = target("https://voip.ms?method=x").unwrap();
        assert_eq!(t.path, "/?method=x");
        assert!(target("ftp://x").is_err());
        assert!(target("http:///x").is_err());
    }
}
