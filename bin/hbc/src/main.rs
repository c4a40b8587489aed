//! hbc: the heartbeat client. This first cut sends a plain heartbeat every interval; the
//! signed protocol, ACK handling and plugins land with their issues.

#![forbid(unsafe_code)]

use std::net::{ToSocketAddrs, UdpSocket};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: hbc [-c FILE] [-N NAME] [-i SECONDS] [-p PORT] [-1] [-n] [SERVER...]
  -c FILE     configuration (keys: servers, hb_port, interval, name; see etc/hbc.yaml)
  -N NAME     host name to report (default: this host's name)
  -n          check the configuration and exit
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

/// `/etc/hbc.yaml`; command-line options override it.
#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    servers: Option<Vec<String>>,
    hb_port: Option<u16>,
    interval: Option<u32>,
    name: Option<String>,
}

fn run() -> anyhow::Result<()> {
    use lexopt::prelude::*;
    let (mut name, mut interval, mut port, mut once) = (None, None, None, false);
    let (mut config, mut check) = (None::<std::path::PathBuf>, false);
    let mut servers = Vec::new();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('c') => config = Some(parser.value()?.into()),
            Short('N') => name = Some(parser.value()?.string()?),
            Short('n') => check = true,
            Short('i') => interval = Some(parser.value()?.parse::<u32>()?),
            Short('p') => port = Some(parser.value()?.parse::<u16>()?),
            Short('1') => once = true,
            Short('h') | Long("help") => {
                println!("{USAGE}");
                return Ok(());
            }
            Value(v) => servers.push(v.string()?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let file: File = match &config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            yaml_serde::from_str::<Option<File>>(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
                .unwrap_or_default()
        }
        None => File::default(),
    };
    if servers.is_empty() {
        servers = file.servers.unwrap_or_default();
    }
    let interval = interval.or(file.interval).unwrap_or(10);
    let port = port.or(file.hb_port).unwrap_or(50003);
    let name = name.or(file.name);
    if servers.is_empty() || interval == 0 {
        anyhow::bail!("no server given, or interval 0\n{USAGE}");
    }
    if check {
        if let Some(name) = &name {
            hb_proto::names::check_host_name(name).map_err(anyhow::Error::msg)?;
        }
        println!("configuration OK");
        return Ok(());
    }
    let name = match name {
        Some(n) => n,
        None => nix::unistd::gethostname()?.to_string_lossy().into_owned(),
    };
    hb_proto::names::check_host_name(&name).map_err(anyhow::Error::msg)?;
    let mut targets = Vec::new();
    for server in &servers {
        targets.extend((server.as_str(), port).to_socket_addrs()?);
    }
    let socket = UdpSocket::bind(if targets.iter().all(|t| t.is_ipv4()) {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })?;
    let datagram =
        serde_json::json!({ "ID": "HTB", "name": name, "interval": interval }).to_string();
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
