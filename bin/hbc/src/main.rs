//! hbc: the heartbeat client. Sends a heartbeat to every server each interval, measures the
//! round trip from the ACK and reports it in the next heartbeat, answers the server's requests
//! (plugin data, commands from its own `commands:` map, updates), and optionally announces
//! boot and shutdown. See docs/PROTOCOL.md.

#![forbid(unsafe_code)]

mod client;
mod commands;
mod config;
mod daemon;
mod plugins;

use std::process::ExitCode;

use config::Settings;

const USAGE: &str = "usage: hbc [-c FILE] [-d] [-b] [-v] [-m TEXT] [-1] [-n] [-N NAME] [-i SECONDS] [-p PORT] [SERVER...]
  -c FILE     configuration (default ~/.hbc.yaml, else /etc/hbc.yaml, if they exist)
  -d          detach and log to syslog
  -b          send boot on start and shutdown on exit (to the first server only)
  -v          verbose (repeat for more)
  -m TEXT     send one message to every server and exit
  -1          send one heartbeat to every server, wait for the ACKs, and exit
  -n          check the configuration and exit
  -N NAME     host name to report (default: name in the configuration, else this host's name)
  -i SECONDS  heartbeat interval (default 10)
  -p PORT     server UDP port (default 50003)
  SERVER      server names or addresses; override `servers` in the configuration";

fn main() -> ExitCode {
    let options = match config::Options::parse() {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("hbc: {e:#}\n{USAGE}");
            return ExitCode::from(64);
        }
    };
    let settings = match Settings::load(&options) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hbc: {e:#}");
            return ExitCode::from(78);
        }
    };
    if options.check {
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    let readiness = if options.detach {
        // Syslog first, while the terminal can still be told what goes wrong.
        if let Err(e) = hb_log::init_syslog("hbc", options.verbosity) {
            eprintln!(
                "hbc: warning: cannot reach syslog at {} ({e}); running without a log",
                hb_log::SYSLOG_SOCKET
            );
        }
        match daemon::detach() {
            Ok(daemon::Detached::Parent { ready }) => {
                return if ready {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(71)
                };
            }
            Ok(daemon::Detached::Daemon(readiness)) => Some(readiness),
            Err(e) => {
                eprintln!("hbc: cannot detach: {e:#}");
                return ExitCode::from(71);
            }
        }
    } else {
        hb_log::init("hbc", options.verbosity);
        None
    };
    // One thread: hbc sends a few datagrams a second and starts the odd program.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "Cannot build the runtime.");
            return ExitCode::from(71);
        }
    };
    if let Some(readiness) = readiness {
        readiness.ready();
    }
    match runtime.block_on(client::run(settings, options.mode)) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "Stopped.");
            ExitCode::from(1)
        }
    }
}
