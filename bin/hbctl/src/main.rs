//! hbctl: controls a running hbsupervisor over its control socket, and hashes passwords.

#![forbid(unsafe_code)]

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use hb_child::passwd::PasswordHash;
use hb_ipc::ctl::{CtlRequest, CtlResponse, ServerStatus};
use hb_ipc::edge::{Answer, Query};
use hb_supervisor::config::{Config, DEFAULT_PATH};

const USAGE: &str =
    "usage: hbctl [-s SOCKET] [-c FILE] [-j] status|reload|hosts|messages|counters ROLE
       hbctl [-s SOCKET] [-c FILE] [-j] command HOST NAME | update HOST
       hbctl [-s SOCKET] [-c FILE] [-j] host HOST | alerts | drop HOST | ack ALERT | dns HOST
       hbctl [-s SOCKET] [-c FILE] [-j] silence HOST[/METRIC] MINUTES [COMMENT...] | unsilence ID | silences
       hbctl [-s SOCKET] [-c FILE] [-j] notify [CHANNEL]
       hbctl [-s SOCKET] [-c FILE] [-j] samples HOST PLUGIN [N] | rtt HOST [N] | events [HOST] [N]
       hbctl passwd NAME
  -s SOCKET  control socket (default: control_socket of the configuration)
  -c FILE    configuration to take the socket path from (default /etc/hb.yaml)
  -j         print the answer as JSON";

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hbctl: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    use lexopt::prelude::*;
    let (mut socket, mut config, mut json) = (None::<PathBuf>, None::<PathBuf>, false);
    let mut words = Vec::new();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('s') => socket = Some(parser.value()?.into()),
            Short('c') => config = Some(parser.value()?.into()),
            Short('j') => json = true,
            Short('h') | Long("help") => {
                println!("{USAGE}");
                return Ok(ExitCode::SUCCESS);
            }
            Value(v) => words.push(v.string()?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    if let ["passwd", name] = words.as_slice() {
        return passwd(name);
    }
    let Some(request) = request_for(&words)? else {
        eprintln!("{USAGE}");
        return Ok(ExitCode::from(64));
    };
    let socket = match socket {
        Some(path) => path,
        None => control_socket(config)?,
    };
    let response = hb_ipc::ctl::call(&socket, &request, Duration::from_secs(30))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&response)?);
    }
    Ok(show(response, json))
}

/// The request the words name; `None`: they name none (the usage is printed).
fn request_for(words: &[&str]) -> anyhow::Result<Option<CtlRequest>> {
    let request = match words {
        ["status"] => CtlRequest::Status {},
        ["reload"] => CtlRequest::Reload {},
        ["hosts"] => CtlRequest::Hosts {},
        ["messages"] => CtlRequest::Messages {},
        ["command", host, command] => CtlRequest::Command {
            host: host.to_string(),
            command: Some(command.to_string()),
        },
        ["update", host] => CtlRequest::Command {
            host: host.to_string(),
            command: None,
        },
        ["host", host] => query(Query::Host {
            host: host.to_string(),
        }),
        ["alerts"] => query(Query::Alerts {}),
        ["ack", key] => query(Query::Acknowledge {
            key: key.to_string(),
            by: who(),
        }),
        ["silence", target, minutes, comment @ ..] => {
            let (host, metric) = target.split_once('/').unwrap_or((target, "*"));
            query(Query::Silence {
                host: host.to_string(),
                metric: metric.to_string(),
                minutes: count(Some(minutes), 0)?,
                author: who(),
                comment: comment.join(" "),
            })
        }
        ["unsilence", id] => query(Query::Unsilence {
            id: id
                .parse()
                .map_err(|_| anyhow::anyhow!("{id:?} is not a silence id"))?,
        }),
        ["silences"] => query(Query::Silences {}),
        ["notify"] => CtlRequest::Notify { channel: None },
        ["notify", channel] => CtlRequest::Notify {
            channel: Some(channel.to_string()),
        },
        ["dns", host] => query(Query::Dns {
            host: host.to_string(),
        }),
        ["drop", host] => query(Query::DropHost {
            host: host.to_string(),
        }),
        ["samples", host, plugin, rest @ ..] if rest.len() <= 1 => query(Query::Samples {
            host: host.to_string(),
            plugin: plugin.to_string(),
            limit: count(rest.first(), 10)?,
        }),
        ["rtt", host, rest @ ..] if rest.len() <= 1 => query(Query::Rtt {
            host: host.to_string(),
            limit: count(rest.first(), 10)?,
        }),
        ["events"] => query(Query::Events {
            host: None,
            limit: 30,
        }),
        ["events", n] if n.parse::<u32>().is_ok() => query(Query::Events {
            host: None,
            limit: count(Some(n), 30)?,
        }),
        ["events", host, rest @ ..] if rest.len() <= 1 => query(Query::Events {
            host: Some(host.to_string()),
            limit: count(rest.first(), 30)?,
        }),
        ["counters", role] => match hb_ipc::Role::from_name(role) {
            Some(role) => CtlRequest::Counters { role },
            None => anyhow::bail!("unknown role {role:?}"),
        },
        _ => return Ok(None),
    };
    Ok(Some(request))
}

/// The control socket of the configuration `-c` names, else of /etc/hb.yaml if it
/// exists, else of the built-in default.
fn control_socket(config: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let config = match config {
        Some(path) => Config::load(&path)?,
        None if std::path::Path::new(DEFAULT_PATH).exists() => Config::load(DEFAULT_PATH.as_ref())?,
        None => Config::builtin(),
    };
    Ok(config.control_socket)
}

/// Prints an answer for a person (or, with `-j`, only says how it went: the JSON is out).
fn show(response: CtlResponse, json: bool) -> ExitCode {
    match response {
        CtlResponse::Error { message } => {
            eprintln!("hbctl: {message}");
            ExitCode::from(1)
        }
        _ if json => ExitCode::SUCCESS,
        CtlResponse::Status { status } => {
            print_status(&status);
            ExitCode::SUCCESS
        }
        CtlResponse::Reloaded { generation } => {
            println!("reload complete, generation {generation}");
            ExitCode::SUCCESS
        }
        CtlResponse::Queued { id } => {
            println!("queued as command {id}");
            ExitCode::SUCCESS
        }
        CtlResponse::Counters { counters, .. } => {
            for (name, value) in counters {
                println!("{name:<32} {value}");
            }
            ExitCode::SUCCESS
        }
        CtlResponse::Messages { messages } => {
            print_events(&messages);
            ExitCode::SUCCESS
        }
        CtlResponse::Answer { answer } => {
            print_answer(answer);
            ExitCode::SUCCESS
        }
        CtlResponse::Hosts { hosts } => {
            println!(
                "{:<32} {:<40} {:>8} {:>10}",
                "HOST", "ADDRESS", "INTERVAL", "LAST SEEN"
            );
            let now = hb_ipc::now_ms();
            for h in hosts {
                let ago = now.saturating_sub(h.last_seen_ms) / 1000;
                println!(
                    "{:<32} {:<40} {:>7}s {:>8}s ago",
                    h.name, h.address, h.interval, ago
                );
            }
            ExitCode::SUCCESS
        }
    }
}

fn print_status(s: &ServerStatus) {
    println!(
        "hbsupervisor pid {} version {} generation {} up {}s{}",
        s.pid,
        s.version,
        s.generation,
        s.uptime_s,
        if s.unprivileged {
            " (unprivileged mode)"
        } else {
            ""
        }
    );
    println!("config {}", s.config);
    println!(
        "{:<10} {:>8} {:<11} {:>8} {:>8} {:>4}  LAST EXIT",
        "ROLE", "PID", "STATE", "UPTIME", "RESTARTS", "GEN"
    );
    for c in &s.children {
        println!(
            "{:<10} {:>8} {:<11} {:>7}s {:>8} {:>4}  {}",
            c.role.name(),
            c.pid.map_or_else(|| "-".into(), |p| p.to_string()),
            c.state,
            c.uptime_s.unwrap_or(0),
            c.restarts,
            c.generation,
            c.last_exit.as_deref().unwrap_or("-")
        );
    }
}

fn passwd(name: &str) -> anyhow::Result<ExitCode> {
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == ':' || c.is_control()) {
        anyhow::bail!("user name {name:?} must be non-empty without spaces or colons");
    }
    let password = if std::io::stdin().is_terminal() {
        let first = prompt(&format!("Password for {name}: "))?;
        let second = prompt("Again: ")?;
        if first != second {
            anyhow::bail!("passwords do not match");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.is_empty() {
        anyhow::bail!("empty password");
    }
    let hash = PasswordHash::new(&password)
        .map_err(|e| anyhow::anyhow!("no randomness for the salt: {e}"))?;
    println!("{hash}");
    Ok(ExitCode::SUCCESS)
}

/// Reads a line from the terminal with echo off, restoring the terminal afterwards.
fn prompt(text: &str) -> anyhow::Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    eprint!("{text}");
    std::io::stderr().flush()?;
    let saved = tcgetattr(&stdin)?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet)?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    tcsetattr(&stdin, SetArg::TCSANOW, &saved)?;
    eprintln!();
    read?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Who is asking, for silences and acknowledgements: the login name, else the uid.
fn who() -> String {
    let uid = nix::unistd::getuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => format!("{} (hbctl)", user.name),
        _ => format!("uid {uid} (hbctl)"),
    }
}

fn query(query: Query) -> CtlRequest {
    CtlRequest::Query { query }
}

/// A count argument, or `default`.
fn count(word: Option<&&str>, default: u32) -> anyhow::Result<u32> {
    match word {
        None => Ok(default),
        Some(w) => w
            .parse()
            .map_err(|_| anyhow::anyhow!("{w:?} is not a count")),
    }
}

fn time(ms: u64) -> hb_log::Timestamp {
    hb_log::Timestamp(std::time::UNIX_EPOCH + Duration::from_millis(ms))
}

fn print_events(events: &[hb_ipc::edge::EventSummary]) {
    for m in events {
        println!("{} {:<24} {}", time(m.time_ms), m.host, m.msg);
    }
}

fn print_answer(answer: Answer) {
    match answer {
        Answer::Host {
            host,
            plugins,
            alerts,
        } => {
            println!("host       {}", host.name);
            println!(
                "state      {} since {}",
                host.state,
                time(host.state_since_ms)
            );
            println!(
                "last seen  {} from {}",
                time(host.last_seen_ms),
                host.address
            );
            println!("interval   {} s", host.interval);
            if let Some(rtt) = host.rtt_ms {
                println!("rtt        {rtt:.3} ms");
            }
            if let Some(v) = &host.version {
                println!("version    {v}");
            }
            println!("watched    {}", if host.watched { "yes" } else { "no" });
            if let Some(owner) = &host.owner {
                println!("owner      {owner}");
            }
            for a in alerts {
                println!(
                    "alert      {} {} since {}: {}",
                    a.level,
                    a.key,
                    time(a.since_ms),
                    a.text
                );
            }
            for (name, p) in plugins {
                println!("plugin     {name} {} {}", time(p.time_ms), p.data);
            }
        }
        Answer::Samples { samples } => {
            for s in samples {
                println!("{} {}", time(s.time_ms), s.data);
            }
        }
        Answer::Rtt { samples } => {
            for s in samples {
                println!("{} {:.3} ms", time(s.time_ms), s.rtt_ms);
            }
        }
        Answer::Alerts { alerts } => {
            for a in alerts {
                let notified = if a.notified { "" } else { " (not notified)" };
                println!(
                    "{} {:<8} {:<32} {}{notified}",
                    time(a.since_ms),
                    a.level,
                    a.key,
                    a.text
                );
            }
        }
        Answer::Messages { messages } => print_events(&messages),
        Answer::Dropped { host } => println!("dropped {host}"),
        Answer::Silenced { id } => println!("silence {id}"),
        Answer::Done { message } => println!("{message}"),
        Answer::Silences { silences, windows } => {
            for s in silences {
                println!(
                    "{:<16} {}/{} until {} by {}: {}",
                    s.id,
                    s.host,
                    s.metric,
                    time(s.end_ms),
                    s.author,
                    s.comment
                );
            }
            for (name, open) in windows {
                let state = if open { "open" } else { "closed" };
                println!("window {name:?}: {state}");
            }
        }
        other => match serde_json::to_string(&other) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("hbctl: {e}"),
        },
    }
}
