//! The web's keys: its public address, ping rates, the metrics token, TLS and `ws_port`.

use std::net::IpAddr;
use std::path::Path;

use super::Report;
use crate::config::File;

/// The TLS certificate and key, read now, and the second HTTP address.
pub(super) fn check(
    file: &File,
    hbd_ip: IpAddr,
    hbd_port: u16,
    err: &mut Report<'_>,
) -> (Option<hb_ipc::config::TlsPem>, Option<std::net::SocketAddr>) {
    if let Some(url) = &file.base_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        err(
            "base_url",
            format!("{url:?} must start with http:// or https://"),
        );
    }
    for (key, rate) in [
        ("ping_rate_per_address", file.ping_rate_per_address),
        ("ping_rate_per_check", file.ping_rate_per_check),
    ] {
        // Below 0.2/s a bucket (five seconds of the rate) would not hold one ping.
        if rate.is_some_and(|r| !(r.is_finite() && (0.2..=1_000_000.0).contains(&r))) {
            err(key, "must be pings per second, 0.2 to 1000000".into());
        }
    }
    if let Some(token) = &file.metrics_token
        && (token.len() < 16 || token.len() > 256 || !token.bytes().all(|b| b.is_ascii_graphic()))
    {
        err(
            "metrics_token",
            "must be 16 to 256 printable characters without spaces".into(),
        );
    }
    let tls = tls_files(file, err);
    if let Some(port) = file.ws_port
        && (port == 0 || port == hbd_port)
    {
        err(
            "ws_port",
            format!("must be a port number other than hbd_port ({hbd_port})"),
        );
    }
    let ws_addr = file
        .ws_port
        .map(|port| std::net::SocketAddr::from((hbd_ip, port)));
    (tls, ws_addr)
}

/// The certificate and key: `tls_cert` and `tls_key`, or the original's `wss_pem` and
/// `wss_key` under `cert_path`; read now, with a check that they hold what they should.
fn tls_files(file: &File, err: &mut Report<'_>) -> Option<hb_ipc::config::TlsPem> {
    let (cert, key, cert_key, key_key) = match (&file.tls_cert, &file.tls_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone(), "tls_cert", "tls_key"),
        (None, None) => match (&file.cert_path, &file.wss_pem, &file.wss_key) {
            (None, None, None) => return None,
            (dir, Some(c), Some(k)) => {
                let dir = dir.clone().unwrap_or_default();
                (dir.join(c), dir.join(k), "wss_pem", "wss_key")
            }
            _ => {
                err(
                    "cert_path",
                    "TLS needs both wss_pem and wss_key (under cert_path), or tls_cert and tls_key"
                        .into(),
                );
                return None;
            }
        },
        _ => {
            err("tls_cert", "TLS needs both tls_cert and tls_key".into());
            return None;
        }
    };
    let mut read = |key: &str, path: &Path, marker: &str| -> Option<String> {
        if !path.is_absolute() {
            err(key, format!("{} must be an absolute path", path.display()));
            return None;
        }
        match std::fs::read_to_string(path) {
            Ok(text) if text.contains(marker) => Some(text),
            Ok(_) => {
                err(key, format!("{} holds no PEM {marker}", path.display()));
                None
            }
            Err(e) => {
                err(key, format!("cannot read {}: {e}", path.display()));
                None
            }
        }
    };
    let cert_pem = read(cert_key, &cert, "-----BEGIN CERTIFICATE-----");
    let key_pem = read(key_key, &key, "PRIVATE KEY-----");
    Some(hb_ipc::config::TlsPem {
        cert_pem: cert_pem?,
        key_pem: key_pem?,
    })
}
