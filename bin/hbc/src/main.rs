//! hbc: the heartbeat client. This first cut sends a plain heartbeat every interval; the
//! signed protocol, ACK handling and plugins land with their issues.

#![forbid(unsafe_code)]

use std::net::{ToSocketAddrs, UdpSocket};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: hbc [-n NAME] [-i SECONDS] [-p PORT] [-1] SERVER...
  -n NAME     host name to report (default: this host's name)
  -i SECONDS  heartbeat interval (default 10)
  -p PORT     server UDP port (default 50003)
  -1          send one heartbeat and exit";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hbc: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run() -> anyhow::Result<()> {
    use lexopt::prelude::*;
    let (mut name, mut interval, mut port, mut once) = (None, 10u32, 50003u16, false);
    let mut servers = Vec::new();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('n') => name = Some(parser.value()?.string()?),
            Short('i') => interval = parser.value()?.parse()?,
            Short('p') => port = parser.value()?.parse()?,
            Short('1') => once = true,
            Short('h') | Long("help") => {
                println!("{USAGE}");
                return Ok(());
            }
            Value(v) => servers.push(v.string()?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    if servers.is_empty() || interval == 0 {
        anyhow::bail!("{USAGE}");
    }
    let name = match name {
        Some(n) => n,
        None => nix::unistd::gethostname()?.to_string_lossy().into_owned(),
    };
    hb_supervisor::names::check_host_name(&name).map_err(anyhow::Error::msg)?;
    let mut targets = Vec::new();
    for server in &servers {
        targets.extend((server.as_str(), port).to_socket_addrs()?);
    }
    let socket = UdpSocket::bind(if targets.iter().all(|t| t.is_ipv4()) { "0.0.0.0:0" } else { "[::]:0" })?;
    let datagram = serde_json::json!({ "ID": "HTB", "name": name, "interval": interval }).to_string();
    loop {
        for target in &targets {
            if let Err(e) = socket.send_to(datagram.as_bytes(), target) {
                eprintln!("hbc: {target}: {e}");
            }
        }
        if once {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(u64::from(interval)));
    }
}
