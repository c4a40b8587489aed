//! hbsupervisor: reads the configuration, binds the listeners, spawns and supervises the
//! role processes. See `hbsupervisor -h` and docs/OPERATIONS.md.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use hb_supervisor::config::{Config, DEFAULT_PATH};
use hb_supervisor::daemon::{self, Detached, Pidfile};
use hb_supervisor::supervise::{self, Listeners, Prepared};

const USAGE: &str = "usage: hbsupervisor [-c FILE] [-f] [-v...] [-n]
  -c FILE  configuration (default /etc/hb.yaml; without it, a built-in loopback default)
  -f       stay in the foreground and log to stderr
  -v       more verbose (repeat for more)
  -n       check the configuration and exit";

const EX_USAGE: u8 = 64;
const EX_OSERR: u8 = 71;
const EX_CANTCREAT: u8 = 73;
const EX_CONFIG: u8 = 78;

struct Args {
    config: Option<PathBuf>,
    foreground: bool,
    verbosity: u8,
    check: bool,
}

fn parse_args() -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut args = Args {
        config: None,
        foreground: false,
        verbosity: 0,
        check: false,
    };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('c') => args.config = Some(parser.value()?.into()),
            Short('f') => args.foreground = true,
            Short('v') => args.verbosity = args.verbosity.saturating_add(1),
            Short('n') => args.check = true,
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("hbsupervisor: {e}\n{USAGE}");
            return ExitCode::from(EX_USAGE);
        }
    };
    let config = match &args.config {
        Some(path) => Config::load(path),
        None if std::path::Path::new(DEFAULT_PATH).exists() => Config::load(DEFAULT_PATH.as_ref()),
        None => Ok(Config::builtin()),
    };
    let prepared = config.and_then(|config| Prepared::new(config, args.verbosity));
    let prepared = match prepared {
        Ok(p) => p,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(EX_CONFIG);
        }
    };
    if args.check {
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    hb_log::init("hbsupervisor", args.verbosity);
    if let Err(e) = prepared.make_dirs() {
        tracing::error!(error = %e, "Cannot create the server's directories.");
        return ExitCode::from(EX_CANTCREAT);
    }
    let listeners = match Listeners::bind(&prepared.config) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "Cannot bind.");
            return ExitCode::from(EX_OSERR);
        }
    };
    let _pidfile = if args.foreground {
        None
    } else {
        // Both before any runtime exists: fork keeps only the calling thread.
        let readiness = match daemon::detach(&prepared.config.logfile) {
            Ok(Detached::Parent { ready: true }) => return ExitCode::SUCCESS,
            Ok(Detached::Parent { ready: false }) => {
                eprintln!(
                    "hbsupervisor: failed to start; see {}",
                    prepared.config.logfile.display()
                );
                return ExitCode::from(EX_OSERR);
            }
            Ok(Detached::Daemon(readiness)) => readiness,
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "Cannot detach.");
                return ExitCode::from(EX_OSERR);
            }
        };
        match Pidfile::create(&prepared.config.pidfile) {
            Ok(p) => {
                readiness.ready();
                Some(p)
            }
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "Cannot write the pid file.");
                return ExitCode::from(EX_CANTCREAT);
            }
        }
    };
    let runtime = match hb_child::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "Cannot build the runtime.");
            return ExitCode::from(EX_OSERR);
        }
    };
    runtime.block_on(supervise::run(prepared, listeners))
}
