//! `hbctl` <-> supervisor messages on the control socket: one request line, one answer line.
//!
//! Variants without fields are empty struct variants (`Status {}`) rather than unit variants
//! because serde ignores unknown fields on unit variants of internally tagged enums.

use serde::{Deserialize, Serialize};

use crate::Role;
use crate::control::Confinement;
use crate::edge::HostSummary;

/// A request from `hbctl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case", deny_unknown_fields)]
pub enum CtlRequest {
    /// Processes, restarts and config generation.
    Status {},
    /// Reload the configuration file, like SIGHUP, and wait for the outcome.
    Reload {},
    /// The engine's host list.
    Hosts {},
    /// The engine's recent events.
    Messages {},
    /// Queue a command (or, without one, an update) for a host.
    Command {
        /// The host.
        host: String,
        /// Name in the host's `commands:` map; `None` queues an update.
        command: Option<String>,
    },
    /// A role's counters.
    Counters {
        /// The role asked.
        role: Role,
    },
    /// Send a test notification through one channel, or all, and report each outcome.
    Notify {
        /// The channel; `None`: every channel.
        channel: Option<String>,
    },
    /// Any engine query, relayed as it is (`hbctl host`, `samples`, `rtt`, `alerts`, `events`,
    /// `drop`).
    Query {
        /// The query.
        query: crate::edge::Query,
    },
}

/// The supervisor's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case", deny_unknown_fields)]
pub enum CtlResponse {
    /// Answer to `Status`.
    Status {
        /// The status.
        status: ServerStatus,
    },
    /// The reload is in force.
    Reloaded {
        /// The new generation.
        generation: u64,
    },
    /// Answer to `Counters`.
    Counters {
        /// The role that answered.
        role: Role,
        /// Name -> value.
        counters: std::collections::BTreeMap<String, u64>,
    },
    /// Answer to `Command`.
    Queued {
        /// The command's id.
        id: u64,
    },
    /// Answer to `Messages`.
    Messages {
        /// Oldest first.
        messages: Vec<crate::edge::EventSummary>,
    },
    /// Answer to `Hosts`.
    Hosts {
        /// The hosts.
        hosts: Vec<HostSummary>,
    },
    /// Answer to `Query`.
    Answer {
        /// The engine's answer.
        answer: crate::edge::Answer,
    },
    /// The request failed.
    Error {
        /// Why.
        message: String,
    },
}

/// The whole server at a glance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerStatus {
    /// The supervisor's pid.
    pub pid: u32,
    /// Build version.
    pub version: String,
    /// Configuration generation in force.
    pub generation: u64,
    /// Seconds since the supervisor started.
    pub uptime_s: u64,
    /// True when not started as root: no privilege separation.
    pub unprivileged: bool,
    /// The configuration file, or `built-in default`.
    pub config: String,
    /// One entry per role.
    pub children: Vec<ChildStatus>,
}

/// One role's process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChildStatus {
    /// The role.
    pub role: Role,
    /// Current pid, if running.
    pub pid: Option<u32>,
    /// `starting`, `running`, `restarting` or `stopped`.
    pub state: String,
    /// Seconds since the current process started.
    pub uptime_s: Option<u64>,
    /// Restarts since the supervisor started.
    pub restarts: u32,
    /// How the previous process ended.
    pub last_exit: Option<String>,
    /// Configuration generation the child acknowledged.
    pub generation: u64,
    /// What its privilege drop achieved.
    pub confinement: Option<Confinement>,
}

/// Why a [`call`] got no answer.
/// The cause is each error's `source` (shown by `{:#}`, as hbctl and hbload print it).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Nothing listens on the socket.
    #[error("cannot connect to {path} (is hbsupervisor running?)")]
    Connect {
        /// The control socket.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The exchange itself failed (a timeout, a closed socket, a line over the limit).
    #[error("control socket")]
    Exchange(#[from] crate::codec::CodecError),
    /// The answer was not one.
    #[error("bad answer {line:?}")]
    Answer {
        /// What came back.
        line: String,
        /// Why it is not an answer.
        source: serde_json::Error,
    },
}

/// `hbctl`'s side (and the tests' and hbload's): one request, one answer, blocking. Here and
/// not in the supervisor's crate so that a client of the socket links nothing of the server.
pub fn call(
    path: &std::path::Path,
    request: &CtlRequest,
    timeout: std::time::Duration,
) -> Result<CtlResponse, CallError> {
    use std::io::{BufRead, BufReader, Write};
    let mut stream =
        std::os::unix::net::UnixStream::connect(path).map_err(|source| CallError::Connect {
            path: path.display().to_string(),
            source,
        })?;
    let io = |e: std::io::Error| CallError::Exchange(e.into());
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let line = crate::codec::encode_line(request, crate::codec::CTL_MAX_LINE)?;
    stream.write_all(&line).map_err(io)?;
    let mut line = String::new();
    let read = BufReader::new(stream).read_line(&mut line).map_err(io)?;
    if read == 0 {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "no answer",
        )));
    }
    serde_json::from_str(&line).map_err(|source| CallError::Answer { line, source })
}
