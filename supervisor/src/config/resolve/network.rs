//! Where the server listens, what one source may send, and where DNS updates go.

use std::net::IpAddr;

use super::Report;
use crate::config::{File, UDP_RECEIVE_BUFFER, UDP_RECEIVE_BUFFER_MAX, UDP_RECEIVE_BUFFER_MIN};

/// The addresses and the receive buffer, defaults applied.
pub(super) struct Listen {
    pub hb_ip: IpAddr,
    pub hb_port: u16,
    pub hbd_ip: IpAddr,
    pub hbd_port: u16,
    pub udp_receive_buffer: u64,
}

pub(super) fn check(file: &File, err: &mut Report<'_>) -> Listen {
    let ip = |key: &str, value: &Option<String>, err: &mut Report<'_>| {
        let text = value.as_deref().unwrap_or("127.0.0.1");
        text.parse::<IpAddr>().unwrap_or_else(|e| {
            err(key, format!("{text:?} is not an IP address ({e})"));
            IpAddr::from([127, 0, 0, 1])
        })
    };
    let hb_ip = ip("hb_host", &file.hb_host, err);
    let hbd_ip = ip("hbd_host", &file.hbd_host, err);
    let hb_port = file.hb_port.unwrap_or(50003);
    let hbd_port = file.hbd_port.unwrap_or(50004);
    for (key, port) in [("hb_port", hb_port), ("hbd_port", hbd_port)] {
        if port == 0 {
            err(key, "must be a port number from 1 to 65535".into());
        }
    }
    let udp_receive_buffer = file.udp_receive_buffer.unwrap_or(UDP_RECEIVE_BUFFER);
    if !(UDP_RECEIVE_BUFFER_MIN..=UDP_RECEIVE_BUFFER_MAX).contains(&udp_receive_buffer) {
        err(
            "udp_receive_buffer",
            format!(
                "must be from {UDP_RECEIVE_BUFFER_MIN} to {UDP_RECEIVE_BUFFER_MAX} bytes (1 MiB to 1 GiB)"
            ),
        );
    }
    for (key, value, min) in [
        ("source_rate", file.source_rate, 0.1),
        ("source_burst", file.source_burst, 1.0),
        ("clock_skew", file.clock_skew, 1.0),
    ] {
        if let Some(v) = value
            && !(v.is_finite() && v >= min && v <= 1e9)
        {
            err(key, format!("must be a number of at least {min}, not {v}"));
        }
    }
    if let Some(k) = &file.hb_key
        && k.len() < hb_proto::sign::MIN_KEY_LEN
    {
        err(
            "hb_key",
            format!("must be at least {} bytes", hb_proto::sign::MIN_KEY_LEN),
        );
    }
    Listen {
        hb_ip,
        hb_port,
        hbd_ip,
        hbd_port,
        udp_receive_buffer,
    }
}

/// `dns_server`: `host`, `host:port`, `v4:port` or `[v6]:port`; the port defaults to 53.
pub fn dns_server(text: &str) -> Result<(String, u16), String> {
    if let Ok(addr) = text.parse::<std::net::SocketAddr>() {
        return Ok((addr.ip().to_string(), addr.port()));
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok((ip.to_string(), 53));
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("{port:?} is not a port number"))?,
        ),
        None => (text, 53),
    };
    hb_proto::names::check_host_name(host)
        .map_err(|_| format!("{text:?} is not an address or DNS name, with an optional :port"))?;
    Ok((host.to_string(), port))
}

/// The dynamic DNS keys: every name that reaches an nsupdate script is a checked DNS name,
/// and hosts that want records have somewhere to put them.
pub(super) fn check_dns(file: &File, err: &mut Report<'_>) {
    for domain in &file.dyndomains {
        if hb_proto::names::check_host_name(domain.trim_end_matches('.')).is_err() {
            err("dyndomains", format!("{domain:?} is not a DNS domain name"));
        }
    }
    if let Some(zone) = &file.dns_zone
        && hb_proto::names::check_host_name(zone.trim_end_matches('.')).is_err()
    {
        err("dns_zone", format!("{zone:?} is not a DNS zone name"));
    }
    if let Some(server) = &file.dns_server
        && let Err(why) = dns_server(server)
    {
        err("dns_server", why);
    }
    if let Some(ttl) = file.dns_ttl
        && !(1..=604_800).contains(&ttl)
    {
        err("dns_ttl", format!("must be 1 to 604800 seconds, not {ttl}"));
    }
    if let Some(t) = file.dns_timeout
        && !(t.is_finite() && (0.5..=300.0).contains(&t))
    {
        err(
            "dns_timeout",
            format!("must be 0.5 to 300 seconds, not {t}"),
        );
    }
    let wanted = file
        .hosts
        .iter()
        .filter(|(_, h)| h.dyndns || h.dns_failover)
        .map(|(name, h)| {
            if h.dyndns {
                format!("hosts.{name}.dyndns")
            } else {
                format!("hosts.{name}.dns_failover")
            }
        })
        .chain(file.dyndnshosts.iter().map(|_| "dyndnshosts".to_string()))
        .next();
    if let Some(key) = wanted
        && file.dyndomains.is_empty()
    {
        err(
            &key,
            "dynamic DNS needs `dyndomains`, the domains its records go in".into(),
        );
    }
}
