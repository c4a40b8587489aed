//! hbc's plugins (docs/PLUGINS.md): info plugins run at start and when the server asks
//! (`request_update`); monitor plugins every `interval`. Each runs in its own task within its
//! `timeout`: one that fails, hangs or panics reports `{"error": ...}` and never holds up the
//! heartbeat or the other plugins. Results go to the client loop, which sends them as `PLG`,
//! fitted to what the server accepts ([`fit`]).

pub mod checks;
pub mod custom;
pub mod nagios;
pub mod ping;
pub mod system;
pub mod zfs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, watch};

/// A monitor plugin's default period.
pub const DEFAULT_INTERVAL: u64 = 300;
/// How long one run may take unless configured.
pub const DEFAULT_TIMEOUT: u64 = 30;

/// What a plugin does, with its configuration (its state is made fresh by [`Job::start`]).
#[derive(Clone, Debug)]
pub enum Kind {
    OsInfo,
    Filesystems,
    Cpu {
        per_core: bool,
    },
    Memory,
    Disk,
    Network,
    Ping {
        ping: String,
        flavour: ping::Flavour,
        targets: Vec<String>,
        count: u32,
        wait: Duration,
    },
    Nagios {
        checks: Vec<nagios::Check>,
    },
    Zfs {
        zpool: String,
    },
    ServiceChecks {
        checks: Vec<checks::Check>,
        actions: BTreeMap<String, checks::Action>,
        ca_file: Option<String>,
    },
    Custom {
        path: PathBuf,
    },
}

/// One configured plugin.
#[derive(Clone, Debug)]
pub struct Spec {
    pub name: String,
    pub kind: Kind,
    /// Runs once, and again when the server asks, rather than every interval.
    pub info: bool,
    pub interval: Duration,
    /// How long one run may take.
    pub timeout: Duration,
    /// How long each program a run starts may take (`timeout` as configured; the run's
    /// own bound leaves room for several).
    pub command_timeout: Duration,
}

/// A plugin with its state between runs.
enum Job {
    Cpu(Box<system::Cpu>),
    Disk(system::Disk),
    Network(system::Network),
    Checks(Box<checks::ServiceChecks>),
    Stateless,
}

impl Spec {
    fn start(&self) -> Job {
        match &self.kind {
            Kind::Cpu { per_core } => Job::Cpu(Box::new(system::Cpu {
                per_core: *per_core,
                ..Default::default()
            })),
            Kind::Disk => Job::Disk(system::Disk::default()),
            Kind::Network => Job::Network(system::Network::default()),
            Kind::ServiceChecks {
                checks,
                actions,
                ca_file,
            } => {
                // Checked when the configuration was loaded.
                let ca = ca_file
                    .as_deref()
                    .and_then(|f| checks::tls_config(Some(f)).ok());
                Job::Checks(Box::new(checks::ServiceChecks::new(
                    checks.clone(),
                    actions.clone(),
                    ca,
                )))
            }
            _ => Job::Stateless,
        }
    }

    async fn collect(&self, job: &mut Job) -> Result<Value, String> {
        match (&self.kind, job) {
            (Kind::OsInfo, _) => off_thread(system::os_info).await,
            (Kind::Filesystems, _) => off_thread(system::filesystems).await,
            (Kind::Cpu { .. }, Job::Cpu(c)) => c.collect().await,
            (Kind::Memory, _) => off_thread(system::memory).await,
            (Kind::Disk, Job::Disk(d)) => {
                let mut disk = std::mem::take(d);
                let (disk, r) = off_thread(move || {
                    let r = disk.collect();
                    Ok((disk, r))
                })
                .await?;
                *d = disk;
                r
            }
            (Kind::Network, Job::Network(n)) => {
                let mut network = std::mem::take(n);
                let (network, r) = off_thread(move || {
                    let r = network.collect();
                    Ok((network, r))
                })
                .await?;
                *n = network;
                r
            }
            (
                Kind::Ping {
                    ping,
                    flavour,
                    targets,
                    count,
                    wait,
                },
                _,
            ) => Ok(ping::collect(*flavour, ping, targets, *count, *wait).await),
            (Kind::Nagios { checks }, _) => Ok(nagios::run(checks, self.command_timeout).await),
            (Kind::Zfs { zpool }, _) => zfs::collect(zpool, self.command_timeout).await,
            (Kind::ServiceChecks { .. }, Job::Checks(c)) => c.collect(self.command_timeout).await,
            (Kind::Custom { path }, _) => custom::run(&self.name, path, self.command_timeout).await,
            _ => Err("internal: plugin state does not fit its kind".into()),
        }
    }
}

/// Runs a collector that reads files, calls statvfs or runs a program (sysctl, mount on the
/// BSDs) on tokio's blocking threads: hbc has one thread for its heartbeats, which a hung
/// file system or program must not hold, and the run's timeout must be able to fire.
pub async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(format!("the collector failed: {e}")))
}

/// Starts every plugin; results arrive on `out` as (plugin, data). A new value on `refresh`
/// runs the info plugins again.
pub fn start(
    specs: Vec<Spec>,
    out: mpsc::UnboundedSender<(String, Value)>,
    refresh: watch::Receiver<u64>,
) {
    for spec in specs {
        let out = out.clone();
        let mut refresh = refresh.clone();
        tokio::spawn(async move {
            let mut job = Some(spec.start());
            loop {
                let data = run_once(&spec, &mut job).await;
                if out.send((spec.name.clone(), data)).is_err() {
                    return;
                }
                if spec.info {
                    if refresh.changed().await.is_err() {
                        return;
                    }
                } else {
                    tokio::time::sleep(spec.interval).await;
                }
            }
        });
    }
}

/// One run in its own task, within the timeout: an error, a hang or a panic becomes
/// `{"error": ...}`; after a hang or a panic the plugin starts afresh (its state is lost).
async fn run_once(spec: &Spec, job: &mut Option<Job>) -> Value {
    let mut state = job.take().unwrap_or_else(|| spec.start());
    let task_spec = spec.clone();
    let mut task = tokio::spawn(async move {
        let r = task_spec.collect(&mut state).await;
        (state, r)
    });
    let outcome = tokio::time::timeout(spec.timeout, &mut task).await;
    let result = match outcome {
        Ok(Ok((state, r))) => {
            *job = Some(state);
            r
        }
        Ok(Err(e)) => Err(format!("the plugin failed: {e}")),
        Err(_) => {
            task.abort();
            Err(format!(
                "took longer than {} s; stopped",
                spec.timeout.as_secs_f64()
            ))
        }
    };
    match result {
        Ok(Value::Object(m)) => Value::Object(m),
        Ok(other) => json!({"value": other}),
        Err(e) => {
            tracing::warn!(plugin = spec.name, error = %e, "Plugin failed.");
            json!({"error": e})
        }
    }
}

/// Waits for every future (a small `join_all`, so hbc needs no futures crate).
pub async fn join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for (i, f) in futures.into_iter().enumerate() {
        set.spawn(async move { (i, f.await) });
    }
    let mut out: Vec<(usize, F::Output)> = Vec::new();
    while let Some(Ok(r)) = set.join_next().await {
        out.push(r);
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, o)| o).collect()
}

// --- configuration --------------------------------------------------------------------------

/// Plugins run when the configuration names none.
const DEFAULTS: &[&str] = &[
    "os_info",
    "filesystem_info",
    "cpu_monitor",
    "memory_monitor",
    "disk_monitor",
    "network_monitor",
];

/// Plugins that need sysinfo, which NetBSD and OpenBSD lack.
const NEED_SYSINFO: &[&str] = &["cpu_monitor", "memory_monitor", "network_monitor"];

/// The default set: where sysinfo cannot serve the system those that need it are left out,
/// not run to fail every interval (named in `plugins`, they run and say why they fail).
fn defaults(sysinfo_here: bool) -> impl Iterator<Item = &'static str> {
    DEFAULTS
        .iter()
        .copied()
        .filter(move |name| sysinfo_here || !NEED_SYSINFO.contains(name))
}

/// Built-in plugin names.
pub const BUILTIN: &[&str] = &[
    "os_info",
    "filesystem_info",
    "cpu_monitor",
    "memory_monitor",
    "disk_monitor",
    "network_monitor",
    "ping_monitor",
    "nagios_runner",
    "zfs_monitor",
    "service_checks",
];

/// The first of `candidates` that exists.
fn find_program(candidates: &[&str]) -> Option<String> {
    candidates
        .iter()
        .find(|p| Path::new(p).is_file())
        .map(std::string::ToString::to_string)
}

struct Options<'a> {
    plugin: &'a str,
    map: Map<String, Value>,
}

impl Options<'_> {
    fn err(&self, key: &str, message: impl std::fmt::Display) -> String {
        format!("plugins.{}.{key}: {message}", self.plugin)
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key).filter(|v| !v.is_null())
    }

    fn seconds(&mut self, key: &str, default: u64) -> Result<Duration, String> {
        match self.take(key) {
            None => Ok(Duration::from_secs(default)),
            Some(v) => v
                .as_f64()
                .filter(|s| s.is_finite() && *s > 0.0 && *s <= 86_400.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| self.err(key, "must be seconds above 0, at most 86400")),
        }
    }

    fn string(&mut self, key: &str) -> Result<Option<String>, String> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s)),
            Some(_) => Err(self.err(key, "must be a non-empty string")),
        }
    }

    fn program(&mut self, key: &str, default: &[&str]) -> Result<String, String> {
        match self.string(key)? {
            Some(p) if p.starts_with('/') => Ok(p),
            Some(p) => Err(self.err(key, format!("{p:?} must be an absolute path"))),
            None => find_program(default).ok_or_else(|| {
                self.err(
                    key,
                    format!("not found at {}; give its path", default.join(" or ")),
                )
            }),
        }
    }

    fn argv(&self, key: &str, v: &Value) -> Result<Vec<String>, String> {
        let argv: Vec<String> = match v {
            Value::String(s) => s.split_whitespace().map(str::to_string).collect(),
            Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| self.err(key, "must be a list of strings"))?,
            _ => {
                return Err(self.err(
                    key,
                    "must be a command: a list (or a string split at spaces)",
                ));
            }
        };
        match argv.first() {
            Some(p) if p.starts_with('/') => Ok(argv),
            _ => Err(self.err(
                key,
                "must start with an absolute program path (no shell runs it)",
            )),
        }
    }

    fn done(self) -> Result<(), String> {
        match self.map.keys().next() {
            Some(k) => Err(self.err(k, "unknown option for this plugin")),
            None => Ok(()),
        }
    }
}

/// The plugins to run: the default set and those `plugins` names, each with its options
/// (`false` leaves one out); plus every executable in `plugins_dir`.
pub fn configure(config: Option<&Value>, plugins_dir: Option<&Path>) -> Result<Vec<Spec>, String> {
    let named = named_plugins(config)?;
    let custom = match plugins_dir {
        Some(dir) => custom::discover(dir)?,
        None => BTreeMap::new(),
    };
    let mut specs = Vec::new();
    for (name, options) in &named {
        let mut o = Options {
            plugin: name,
            map: options.as_object().cloned().unwrap_or_default(),
        };
        if o.take("enabled").is_some_and(|v| v == false) {
            continue;
        }
        let info =
            matches!(name.as_str(), "os_info" | "filesystem_info") && !custom.contains_key(name);
        let interval = o.seconds("interval", DEFAULT_INTERVAL)?;
        let timeout = o.seconds("timeout", DEFAULT_TIMEOUT)?;
        let kind = match name.as_str() {
            // A site's own script replaces the built-in of its name.
            _ if custom.contains_key(name) => Kind::Custom {
                path: custom[name].clone(),
            },
            "os_info" => Kind::OsInfo,
            "filesystem_info" => Kind::Filesystems,
            "cpu_monitor" => Kind::Cpu {
                per_core: o.take("per_core").is_some_and(|v| v == true),
            },
            "memory_monitor" => Kind::Memory,
            "disk_monitor" => Kind::Disk,
            "network_monitor" => Kind::Network,
            "ping_monitor" => ping_monitor(&mut o)?,
            "nagios_runner" => nagios_runner(&mut o)?,
            "zfs_monitor" => Kind::Zfs {
                zpool: o.program("zpool", &["/sbin/zpool", "/usr/sbin/zpool"])?,
            },
            "service_checks" => service_checks(&mut o)?,
            other => match custom.get(other) {
                Some(path) => Kind::Custom { path: path.clone() },
                None => {
                    return Err(format!(
                        "plugins.{other}: no such plugin (built in: {}; or an executable named so in plugins_dir)",
                        BUILTIN.join(", ")
                    ));
                }
            },
        };
        o.done()?;
        let run_timeout = run_timeout(&kind, timeout);
        specs.push(Spec {
            name: name.clone(),
            kind,
            info,
            interval,
            timeout: run_timeout,
            command_timeout: timeout,
        });
    }
    for (name, path) in custom {
        if !named.contains_key(&name)
            && config.is_none_or(|c| c.get(&name) != Some(&Value::Bool(false)))
        {
            specs.push(Spec {
                name: name.clone(),
                kind: Kind::Custom { path },
                info: false,
                interval: Duration::from_secs(DEFAULT_INTERVAL),
                timeout: Duration::from_secs(DEFAULT_TIMEOUT + 1),
                command_timeout: Duration::from_secs(DEFAULT_TIMEOUT),
            });
        }
    }
    Ok(specs)
}

/// The plugins to run: the default set, changed by what `plugins` says of each.
fn named_plugins(config: Option<&Value>) -> Result<BTreeMap<String, Value>, String> {
    // The default set, changed by what `plugins` says of each.
    let mut named: BTreeMap<String, Value> = BTreeMap::new();
    for name in defaults(sysinfo::IS_SUPPORTED_SYSTEM) {
        named.insert(name.to_string(), json!({}));
    }
    if find_program(&["/sbin/zpool", "/usr/sbin/zpool"]).is_some() {
        named.insert("zfs_monitor".into(), json!({}));
    }
    match config {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (name, v) in m {
                match v {
                    Value::Bool(false) => {
                        named.remove(name);
                    }
                    Value::Null | Value::Bool(true) => {
                        named.insert(name.clone(), json!({}));
                    }
                    Value::Object(_) => {
                        named.insert(name.clone(), v.clone());
                    }
                    _ => {
                        return Err(format!(
                            "plugins.{name}: must be a map of options, true or false"
                        ));
                    }
                }
            }
        }
        Some(_) => return Err("plugins: must be a map of plugin names to their options".into()),
    }
    Ok(named)
}

/// `ping_monitor`: the hosts to ping, how often each, and the system's ping.
fn ping_monitor(o: &mut Options) -> Result<Kind, String> {
    let targets = match o.take("hosts") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|h| {
                h.as_str()
                    .filter(|s| !s.is_empty() && !s.starts_with('-'))
                    .map(str::to_string)
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| o.err("hosts", "must be a list of host names or addresses"))?,
        _ => return Err(o.err("hosts", "is required: the hosts to ping")),
    };
    let count = match o.take("count") {
        None => 3,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=20).contains(n))
            .ok_or_else(|| o.err("count", "must be 1 to 20"))? as u32,
    };
    let wait = o.seconds("wait", 2)?;
    // Linux's places, then the BSDs' and macOS's.
    let ping = o.program("ping", &["/usr/bin/ping", "/bin/ping", "/sbin/ping"])?;
    Ok(Kind::Ping {
        flavour: ping::flavour(&ping),
        ping,
        targets,
        count,
        wait,
    })
}

/// `nagios_runner`: a list of `{name, command}`.
fn nagios_runner(o: &mut Options) -> Result<Kind, String> {
    let Some(Value::Array(list)) = o.take("commands") else {
        return Err(o.err("commands", "is required: a list of {name, command}"));
    };
    let mut checks = Vec::new();
    for c in &list {
        let name = c["name"].as_str().unwrap_or("").to_string();
        let argv = o.argv("commands", &c["command"])?;
        if c.as_object()
            .is_some_and(|m| m.keys().any(|k| k != "name" && k != "command"))
        {
            return Err(o.err("commands", "each is {name, command}"));
        }
        checks.push(nagios::Check { name, argv });
    }
    nagios::validate(&checks)?;
    Ok(Kind::Nagios { checks })
}

/// How long a run may take in all: a run that starts programs outlives their own timeouts
/// (zpool runs two in a row, service checks run their action after the checks, ping waits
/// per answer).
fn run_timeout(kind: &Kind, timeout: Duration) -> Duration {
    match kind {
        Kind::Nagios { .. } | Kind::Zfs { .. } => timeout * 2 + Duration::from_secs(5),
        // The slowest check, then an action.
        Kind::ServiceChecks { checks, .. } => {
            checks.iter().map(|c| c.timeout).max().unwrap_or_default()
                + timeout
                + Duration::from_secs(5)
        }
        // ping waits whole seconds, at least one (ping::collect).
        Kind::Ping { count, wait, .. } => {
            timeout.max((*wait).max(Duration::from_secs(1)) * (count + 1) + Duration::from_secs(5))
        }
        Kind::Custom { .. } => timeout + Duration::from_secs(1),
        _ => timeout,
    }
}

fn service_checks(o: &mut Options) -> Result<Kind, String> {
    let Some(Value::Array(list)) = o.take("checks") else {
        return Err(o.err("checks", "is required: a list of checks"));
    };
    let mut out = Vec::new();
    for c in &list {
        let name = c["name"].as_str().unwrap_or("");
        if name.is_empty() || name.len() > 64 {
            return Err(o.err("checks", "each needs a name (at most 64 characters)"));
        }
        let timeout = match c.get("timeout") {
            None => Duration::from_secs(5),
            Some(v) => v
                .as_f64()
                .filter(|s| *s > 0.0 && *s <= 300.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| {
                    o.err(
                        "checks",
                        format!("{name}: timeout must be seconds, at most 300"),
                    )
                })?,
        };
        let text = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
        let probe = match c["type"].as_str().unwrap_or("") {
            t @ ("http" | "https") => http_probe(o, c, name, t == "https")?,
            "tcp" => tcp_probe(o, c, name)?,
            other => {
                return Err(o.err(
                    "checks",
                    format!("{name}: type {other:?}: use http, https or tcp"),
                ));
            }
        };
        let known = [
            "name",
            "type",
            "url",
            "host",
            "port",
            "path",
            "expect_status",
            "expect_body",
            "timeout",
            "action",
        ];
        if let Some(k) = c
            .as_object()
            .and_then(|m| m.keys().find(|k| !known.contains(&k.as_str())))
        {
            return Err(o.err("checks", format!("{name}: unknown option {k:?}")));
        }
        if out.iter().any(|c: &checks::Check| c.name == name) {
            return Err(o.err("checks", format!("{name}: a second check of that name")));
        }
        out.push(checks::Check {
            name: name.to_string(),
            probe,
            timeout,
            action: text("action"),
        });
    }
    let actions = service_actions(o)?;
    for c in &out {
        if let Some(key) = &c.action
            && !actions.contains_key(key)
        {
            return Err(o.err(
                "checks",
                format!("{}: action {key:?} is not under actions", c.name),
            ));
        }
    }
    let ca_file = o.string("ca_file")?;
    if let Some(f) = &ca_file {
        checks::tls_config(Some(f)).map_err(|e| o.err("ca_file", e))?;
    }
    Ok(Kind::ServiceChecks {
        checks: out,
        actions,
        ca_file,
    })
}

/// An `http` or `https` check: a `url`, or `host`, `port` and `path`.
fn http_probe(o: &Options, c: &Value, name: &str, https: bool) -> Result<Probe, String> {
    let text = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
    let t = if https { "https" } else { "http" };
    let url = match (text("url"), text("host")) {
        (Some(u), _) => u,
        (None, Some(h)) => format!(
            "{t}://{h}:{}{}",
            c.get("port")
                .and_then(Value::as_u64)
                .unwrap_or(if https { 443 } else { 80 }),
            text("path").unwrap_or_else(|| "/".into())
        ),
        (None, None) => {
            return Err(o.err("checks", format!("{name}: url (or host) is required")));
        }
    };
    let (tls, host, port, path) =
        checks::parse_url(&url).map_err(|e| o.err("checks", format!("{name}: {e}")))?;
    if tls != https {
        return Err(o.err("checks", format!("{name}: the url's scheme is not {t}")));
    }
    #[cfg(not(feature = "https"))]
    if tls {
        return Err(o.err("checks", format!("{name}: {}", checks::NO_TLS)));
    }
    let expect_status = match c.get("expect_status") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|s| (100..=599).contains(s))
                .ok_or_else(|| {
                    o.err(
                        "checks",
                        format!("{name}: expect_status must be 100 to 599"),
                    )
                })? as u16,
        ),
    };
    Ok(Probe::Http {
        tls,
        host,
        port,
        path,
        expect_status,
        expect_body: text("expect_body"),
    })
}

/// A `tcp` check: `host` and `port`.
fn tcp_probe(o: &Options, c: &Value, name: &str) -> Result<Probe, String> {
    let text = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
    let host = text("host").ok_or_else(|| o.err("checks", format!("{name}: host is required")))?;
    let port = c
        .get("port")
        .and_then(Value::as_u64)
        .filter(|p| (1..=65535).contains(p))
        .ok_or_else(|| o.err("checks", format!("{name}: port (1 to 65535) is required")))?;
    Ok(Probe::Tcp {
        host,
        port: port as u16,
    })
}

/// `actions`: what a key runs when its checks all pass (`promote`) or one fails (`demote`).
fn service_actions(o: &mut Options) -> Result<BTreeMap<String, checks::Action>, String> {
    let mut actions = BTreeMap::new();
    if let Some(v) = o.take("actions") {
        let Value::Object(m) = v else {
            return Err(o.err("actions", "must map action keys to {promote, demote}"));
        };
        for (key, a) in m {
            let mut action = checks::Action::default();
            for (what, slot) in [
                ("promote", &mut action.promote),
                ("demote", &mut action.demote),
            ] {
                if let Some(cmd) = a.get(what) {
                    *slot = Some(o.argv("actions", cmd)?);
                }
            }
            if a.as_object()
                .is_none_or(|m| m.keys().any(|k| k != "promote" && k != "demote"))
            {
                return Err(o.err("actions", format!("{key}: only promote and demote")));
            }
            actions.insert(key, action);
        }
    }
    Ok(actions)
}

use checks::Probe;

// --- fitting a report into a datagram -------------------------------------------------------

/// Longest string sent; longer ones are cut (the server takes 16 KiB).
const MAX_STRING: usize = 8 * 1024;
/// Most values sent in one report (the server takes 20,000 in a message).
const MAX_VALUES: usize = 15_000;
/// Longest key sent (the server takes 128 bytes).
const MAX_KEY: usize = 128;
/// Deepest nesting sent (the server takes 32, the message itself adds two).
const MAX_DEPTH: usize = 24;

/// Counts the values and cuts long strings and deep nesting; what was cut, by path.
/// `path.key`, or `key` at the top.
fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn shape(v: &mut Value, path: &str, depth: usize, notes: &mut Vec<String>) -> usize {
    match v {
        Value::String(s) if s.len() > MAX_STRING => {
            let mut cut = MAX_STRING;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            notes.push(format!("{path}: string cut from {} bytes", s.len()));
            s.truncate(cut);
            s.push_str(" [trimmed]");
            1
        }
        Value::Object(_) | Value::Array(_) if depth >= MAX_DEPTH => {
            notes.push(format!("{path}: nested too deep"));
            *v = Value::String("[too deep]".into());
            1
        }
        Value::Object(m) => {
            // Keys the server refuses (the whole message with them): left out.
            let bad: Vec<String> = m
                .keys()
                .filter(|k| k.len() > MAX_KEY || k.chars().any(char::is_control))
                .cloned()
                .collect();
            for k in bad {
                m.remove(&k);
                let shown: String = k.chars().filter(|c| !c.is_control()).take(40).collect();
                notes.push(format!(
                    "{}: key {shown:?}... left out (too long, or a control character)",
                    if path.is_empty() { "(top)" } else { path }
                ));
            }
            1 + m
                .iter_mut()
                .map(|(k, x)| shape(x, &join(path, k), depth + 1, notes))
                .sum::<usize>()
        }
        Value::Array(a) => {
            1 + a
                .iter_mut()
                .enumerate()
                .map(|(i, x)| shape(x, &format!("{path}[{i}]"), depth + 1, notes))
                .sum::<usize>()
        }
        _ => 1,
    }
}

/// Where to cut: the largest map or list of the report, or within it the one holding most
/// of it; as a path of keys.
fn largest(v: &Value) -> Option<(Vec<String>, usize)> {
    let size = |x: &Value| serde_json::to_string(x).map_or(0, |s| s.len());
    let container = |x: &&Value| matches!(x, Value::Object(_) | Value::Array(_));
    let biggest = |m: &Map<String, Value>| {
        m.iter()
            .filter(|(_, x)| container(x))
            .max_by_key(|(_, x)| size(x))
            .map(|(k, x)| (k.clone(), x.clone()))
    };
    let (k, mut at) = biggest(v.as_object()?)?;
    let mut path = vec![k];
    while let Some((k, inner)) = at.as_object().and_then(biggest) {
        if size(&inner) * 2 <= size(&at) {
            break;
        }
        path.push(k);
        at = inner;
    }
    Some((path, size(&at)))
}

/// Makes `data` fit in one datagram the server accepts (`fits` says whether the whole
/// message would): long strings are cut, then the largest map or list loses half its
/// entries until it fits. Never silent: what was cut is listed under `_trimmed`.
pub fn fit(
    mut data: Map<String, Value>,
    fits: impl Fn(&Map<String, Value>) -> bool,
) -> Map<String, Value> {
    let mut notes = Vec::new();
    let mut value = Value::Object(std::mem::take(&mut data));
    let mut values = shape(&mut value, "", 0, &mut notes);
    let Value::Object(mut data) = value else {
        unreachable!("an object stays one")
    };
    for _ in 0..64 {
        if values <= MAX_VALUES && fits(&data) {
            break;
        }
        let Some((path, _)) = largest(&Value::Object(data.clone())) else {
            break;
        };
        let pointer: String = path
            .iter()
            .map(|k| format!("/{}", k.replace('~', "~0").replace('/', "~1")))
            .collect();
        let dotted = path.join(".");
        let mut whole = Value::Object(std::mem::take(&mut data));
        if let Some(at) = whole.pointer_mut(&pointer) {
            match at {
                Value::Object(m) if m.len() > 1 => {
                    let before = m.len();
                    let keep: std::collections::BTreeSet<String> =
                        m.keys().take(before / 2).cloned().collect();
                    m.retain(|k, _| keep.contains(k));
                    notes.push(format!("{dotted}: {} of {before} entries kept", m.len()));
                }
                Value::Array(a) if a.len() > 1 => {
                    let before = a.len();
                    a.truncate(before / 2);
                    notes.push(format!("{dotted}: {} of {before} entries kept", a.len()));
                }
                other => {
                    notes.push(format!("{dotted}: left out"));
                    *other = Value::String("[trimmed]".into());
                }
            }
        }
        let Value::Object(d) = whole else {
            unreachable!("an object stays one")
        };
        data = d;
        let mut v = Value::Object(std::mem::take(&mut data));
        values = shape(&mut v, "", 0, &mut Vec::new());
        let Value::Object(d) = v else {
            unreachable!("an object stays one")
        };
        data = d;
    }
    if !notes.is_empty() {
        tracing::warn!(cut = ?notes, "Plugin data trimmed to fit a datagram.");
        data.insert("_trimmed".into(), json!(notes));
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_checks_need_the_https_feature() {
        let config = json!({"service_checks": {"checks": [
            {"name": "api", "type": "https", "host": "example.net"},
        ]}});
        let r = configure(Some(&config), None);
        #[cfg(feature = "https")]
        assert!(r.is_ok(), "{r:?}");
        #[cfg(not(feature = "https"))]
        assert!(r.is_err_and(|e| e.contains("without TLS")));
    }

    #[test]
    fn the_default_set_and_bad_configurations() {
        let specs = configure(None, None).unwrap();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        for d in DEFAULTS {
            assert!(names.contains(d), "{d}");
        }
        let without_sysinfo: Vec<&str> = defaults(false).collect();
        assert_eq!(
            without_sysinfo,
            ["os_info", "filesystem_info", "disk_monitor"]
        );
        assert!(specs.iter().find(|s| s.name == "os_info").unwrap().info);
        for (config, want) in [
            (
                json!({"cpu_monitor": {"interval": 0}}),
                "plugins.cpu_monitor.interval",
            ),
            (
                json!({"cpu_monitor": {"colour": 1}}),
                "plugins.cpu_monitor.colour: unknown option",
            ),
            (
                json!({"ping_monitor": {}}),
                "plugins.ping_monitor.hosts: is required",
            ),
            (
                json!({"nagios_runner": {"commands": [{"name": "x", "command": "check_load"}]}}),
                "absolute program path",
            ),
            (
                json!({"nagios_runner": {"commands": [{"name": "x", "command": "/nonexistent/check"}]}}),
                "/nonexistent/check",
            ),
            (
                json!({"nagios_runner": {"commands": [{"name": "Bad Name", "command": "/bin/true"}]}}),
                "check name",
            ),
            (
                json!({"service_checks": {"checks": [{"name": "w", "type": "ftp"}]}}),
                "use http, https or tcp",
            ),
            (
                json!({"service_checks": {"checks": [{"name": "w", "type": "tcp", "host": "x", "port": 1, "action": "k"}]}}),
                "action \"k\" is not under actions",
            ),
            (json!({"frobnicator": {}}), "no such plugin"),
            (json!([1]), "must be a map"),
        ] {
            let e = configure(Some(&config), None).unwrap_err();
            assert!(e.contains(want), "{config}: {e}");
        }
        let specs = configure(
            Some(&json!({"cpu_monitor": {"interval": 5}, "memory_monitor": false})),
            None,
        )
        .unwrap();
        assert!(
            !specs.iter().any(|s| s.name == "memory_monitor"),
            "left out"
        );
        let cpu = specs.iter().find(|s| s.name == "cpu_monitor").unwrap();
        assert_eq!(cpu.interval, Duration::from_secs(5));
        assert!(
            specs.iter().any(|s| s.name == "disk_monitor"),
            "the rest of the defaults stay"
        );
    }

    #[test]
    fn oversized_reports_are_trimmed_and_say_so() {
        let mut data = Map::new();
        let interfaces: Map<String, Value> = (0..5000)
            .map(|i| {
                (
                    format!("veth{i:05}"),
                    json!({"bytes_sent": i, "bytes_recv": i * 2, "errors_in": 0}),
                )
            })
            .collect();
        data.insert("interfaces".into(), Value::Object(interfaces));
        data.insert("note".into(), json!("x".repeat(20_000)));
        data.insert("errors_total".into(), json!(3));
        let size = |d: &Map<String, Value>| serde_json::to_string(d).map_or(0, |s| s.len());
        let fitted = fit(data, |d| size(d) <= 60_000);
        assert!(size(&fitted) <= 60_000 + 2_000, "{}", size(&fitted));
        assert_eq!(fitted["errors_total"], 3, "small fields stay");
        let notes = fitted["_trimmed"].to_string();
        assert!(
            notes.contains("interfaces:") && notes.contains("note: string cut"),
            "{notes}"
        );
        assert!(fitted["note"].as_str().unwrap().ends_with("[trimmed]"));
        assert!(
            notes.contains("\"note: string cut"),
            "paths without a leading dot: {notes}"
        );
        let mut odd = Map::new();
        odd.insert("k".repeat(200), json!(1));
        odd.insert("ok".into(), json!(2));
        let fitted = fit(odd, |d| size(d) <= 60_000);
        assert_eq!(fitted.get("ok"), Some(&json!(2)));
        assert_eq!(
            fitted.len(),
            2,
            "the long key left out, the note added: {fitted:?}"
        );
        // A report that fits is untouched.
        let small: Map<String, Value> = [("a".to_string(), json!(1))].into_iter().collect();
        assert_eq!(fit(small.clone(), |d| size(d) <= 60_000), small);
    }
}
