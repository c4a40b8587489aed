//! Command line and configuration file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

/// What this run does.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    /// Heartbeats until stopped.
    Run,
    /// One heartbeat to every server, then exit.
    Once,
    /// One free-text message to every server, then exit.
    Message(String),
}

/// Parsed command line.
#[derive(Debug)]
pub struct Options {
    pub config: Option<PathBuf>,
    pub detach: bool,
    pub boot: bool,
    pub verbosity: u8,
    pub check: bool,
    pub name: Option<String>,
    pub interval: Option<u32>,
    pub port: Option<u16>,
    pub servers: Vec<String>,
    pub mode: Mode,
}

impl Options {
    /// `Ok(None)` for `-h`.
    pub fn parse() -> anyhow::Result<Option<Options>> {
        use lexopt::prelude::*;
        let mut o = Options {
            config: None,
            detach: false,
            boot: false,
            verbosity: 0,
            check: false,
            name: None,
            interval: None,
            port: None,
            servers: Vec::new(),
            mode: Mode::Run,
        };
        let mut parser = lexopt::Parser::from_env();
        while let Some(arg) = parser.next()? {
            match arg {
                Short('c') => o.config = Some(parser.value()?.into()),
                Short('d') => o.detach = true,
                Short('b') => o.boot = true,
                Short('v') => o.verbosity = o.verbosity.saturating_add(1),
                Short('m') => o.mode = Mode::Message(parser.value()?.string()?),
                Short('1') => o.mode = Mode::Once,
                Short('n') => o.check = true,
                Short('N') => o.name = Some(parser.value()?.string()?),
                Short('i') => o.interval = Some(parser.value()?.parse()?),
                Short('p') => o.port = Some(parser.value()?.parse()?),
                Short('h') | Long("help") => return Ok(None),
                Value(v) => o.servers.push(v.string()?),
                _ => return Err(arg.unexpected().into()),
            }
        }
        Ok(Some(o))
    }
}

/// `/etc/hbc.yaml` or `~/.hbc.yaml`.
#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    servers: Option<Vec<String>>,
    hb_port: Option<u16>,
    interval: Option<u32>,
    name: Option<String>,
    key: Option<String>,
    #[serde(default)]
    commands: BTreeMap<String, Vec<String>>,
    command_timeout: Option<u64>,
    update_command: Option<Vec<String>>,
    /// Plugins and their options (docs/PLUGINS.md); absent: the default set.
    plugins: Option<serde_json::Value>,
    /// Every executable in it is a plugin too.
    plugins_dir: Option<PathBuf>,
}

/// Everything the client runs with.
#[derive(Clone, Debug)]
pub struct Settings {
    pub servers: Vec<String>,
    pub port: u16,
    pub interval: u32,
    pub name: String,
    pub key: Option<Vec<u8>>,
    pub commands: BTreeMap<String, Vec<String>>,
    pub command_timeout: Duration,
    pub update_command: Option<Vec<String>>,
    pub boot: bool,
    pub plugins: Vec<crate::plugins::Spec>,
}

impl Settings {
    pub fn load(o: &Options) -> anyhow::Result<Settings> {
        let path = match &o.config {
            Some(path) => Some(path.clone()),
            None => {
                let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".hbc.yaml"));
                home.into_iter()
                    .chain([PathBuf::from("/etc/hbc.yaml")])
                    .find(|p| p.is_file())
            }
        };
        let file: File = match &path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                yaml_serde::from_str::<Option<File>>(&text)
                    .with_context(|| format!("{}", path.display()))?
                    .unwrap_or_default()
            }
            None => File::default(),
        };
        let where_ = path
            .as_ref()
            .map_or("command line".to_string(), |p| p.display().to_string());
        let servers = if o.servers.is_empty() {
            file.servers.unwrap_or_default()
        } else {
            o.servers.clone()
        };
        if servers.is_empty() {
            bail!("no server: name one on the command line or under `servers` in {where_}");
        }
        let interval = o.interval.or(file.interval).unwrap_or(10);
        if !(1..=hb_proto::message::MAX_INTERVAL).contains(&interval) {
            bail!(
                "{where_}: interval must be 1 to {} seconds",
                hb_proto::message::MAX_INTERVAL
            );
        }
        let name = match o.name.clone().or(file.name) {
            Some(name) => name,
            None => nix::unistd::gethostname()?.to_string_lossy().into_owned(),
        };
        hb_proto::names::check_host_name(&name)
            .map_err(|e| anyhow::anyhow!("{where_}: name: {e}"))?;
        if let Some(key) = &file.key
            && key.len() < hb_proto::sign::MIN_KEY_LEN
        {
            bail!(
                "{where_}: key must be at least {} bytes",
                hb_proto::sign::MIN_KEY_LEN
            );
        }
        for (command, argv) in &file.commands {
            hb_proto::datagram::check_command_name(command)
                .map_err(|e| anyhow::anyhow!("{where_}: commands: {e}"))?;
            check_argv(&where_, command, argv)?;
        }
        if let Some(argv) = &file.update_command {
            check_argv(&where_, "update_command", argv)?;
        }
        let plugins = crate::plugins::configure(file.plugins.as_ref(), file.plugins_dir.as_deref())
            .map_err(|e| anyhow::anyhow!("{where_}: {e}"))?;
        Ok(Settings {
            servers,
            port: o.port.or(file.hb_port).unwrap_or(50003),
            interval,
            name,
            key: file.key.map(String::into_bytes),
            commands: file.commands,
            command_timeout: Duration::from_secs(file.command_timeout.unwrap_or(30).clamp(1, 3600)),
            update_command: file.update_command,
            boot: o.boot,
            plugins,
        })
    }
}

fn check_argv(where_: &str, command: &str, argv: &[String]) -> anyhow::Result<()> {
    match argv.first() {
        Some(program) if program.starts_with('/') => Ok(()),
        _ => bail!(
            "{where_}: {command:?} must be a list starting with an absolute program path (it runs without a shell)"
        ),
    }
}
