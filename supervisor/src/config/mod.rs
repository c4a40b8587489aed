//! `/etc/hb.yaml`: parsing, defaults, validation and the per-role slices.
//!
//! The file is read by the supervisor alone, before anything is spawned. Every error names the
//! file, the line and the key; an unknown key is an error. Semantic checks (a host owned by a
//! user who does not exist, a relative path, a channel of an unknown type) run after parsing and
//! are all reported at once, so an operator fixes a file in one pass.
//!
//! Layout: [`file`] is the schema, [`errors`] where an error is, `resolve` the checks by
//! concern and the defaults, `slices` what each role is told.

mod errors;
mod file;
mod resolve;
mod slices;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use hb_ipc::Role;

pub use errors::{ConfigError, ConfigErrors, Source, locate};
pub use file::{Channel, File};
pub use resolve::{dns_server, user_state_dir};

/// Kernel receive buffer asked for the heartbeat socket by default: a fleet heartbeating at
/// the top of the minute arrives at once, and whatever does not fit is dropped by the
/// kernel. A small datagram takes about 830 bytes of it on loopback (2 KiB or more from a
/// NIC), and Linux grants twice what is asked, so 64 MiB holds about 160,000 such datagrams
/// (about 60,000 from a NIC). Memory is only used while datagrams wait.
pub const UDP_RECEIVE_BUFFER: u64 = 64 << 20;
const UDP_RECEIVE_BUFFER_MIN: u64 = 1 << 20;
const UDP_RECEIVE_BUFFER_MAX: u64 = 1 << 30;

/// A validated configuration with every default resolved.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where it came from.
    pub source: Source,
    /// The file as parsed.
    pub file: File,
    /// The file's text, for naming lines in errors found later.
    pub text: String,
    /// UDP bind address.
    pub hb_addr: std::net::SocketAddr,
    /// Bytes of kernel receive buffer asked for the UDP socket.
    pub udp_receive_buffer: usize,
    /// HTTP bind address.
    pub hbd_addr: std::net::SocketAddr,
    /// The second HTTP address (`ws_port`), if any.
    pub ws_addr: Option<std::net::SocketAddr>,
    /// Durable state directory.
    pub state_dir: PathBuf,
    /// Journal directory.
    pub journal_dir: PathBuf,
    /// Control socket path.
    pub control_socket: PathBuf,
    /// Pid file path.
    pub pidfile: PathBuf,
    /// Log file path (daemon mode).
    pub logfile: PathBuf,
    /// Chroot directory.
    pub chroot_dir: PathBuf,
    /// Shutdown grace.
    pub shutdown_grace: std::time::Duration,
    /// The TLS certificate chain and key, read when the file was loaded (so a reload picks
    /// up renewed ones).
    pub tls: Option<hb_ipc::config::TlsPem>,
}

/// Where a file path for the default configuration points.
pub const DEFAULT_PATH: &str = "/etc/hb.yaml";

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        // Absolute, so a reload after daemonizing (cwd /) reads the same file.
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let path = path.as_path();
        let source = Source::File(path.to_path_buf());
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
            source: source.clone(),
            errors: vec![ConfigError {
                line: None,
                key: String::new(),
                message: format!("cannot read: {e}"),
            }],
        })?;
        Config::parse(source, &text)
    }

    /// Parses and validates configuration text.
    pub fn parse(source: Source, text: &str) -> Result<Config, ConfigErrors> {
        let fail = |errors| ConfigErrors {
            source: source.clone(),
            errors,
        };
        let mut errors = errors::obsolete_keys(text);
        let file: File = match yaml_serde::from_str::<Option<File>>(text) {
            Ok(file) => file.unwrap_or_default(),
            Err(e) => {
                errors.push(errors::yaml_error(&e, text));
                return Err(fail(errors));
            }
        };
        let config = resolve::resolve(source.clone(), file, text, &mut errors);
        if errors.is_empty() {
            Ok(config)
        } else {
            errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
            Err(fail(errors))
        }
    }

    /// The configuration used without `-c` when `/etc/hb.yaml` does not exist: loopback only,
    /// state in a per-user directory, no root needed.
    pub fn builtin() -> Config {
        let mut errors = Vec::new();
        let file = File {
            user: Some("nobody".into()),
            ..File::default()
        };
        let config = resolve::resolve(Source::Builtin, file, "", &mut errors);
        debug_assert!(errors.is_empty(), "built-in default invalid: {errors:?}");
        config
    }

    /// The configuration as admins may see it on the dashboard: the file as written with
    /// every secret left out, and where the server listens and keeps its state.
    pub fn shown(&self) -> serde_json::Value {
        let mut file = yaml_serde::from_str::<yaml_serde::Value>(&self.text)
            .ok()
            .and_then(|v| serde_json::to_value(v).ok())
            .filter(serde_json::Value::is_object)
            .unwrap_or_else(|| serde_json::json!({}));
        hide_secrets(&mut file);
        let path = |p: &Path| p.display().to_string();
        serde_json::json!({
            "source": match &self.source {
                Source::File(p) => path(p),
                Source::Builtin => "built-in default".to_string(),
            },
            "udp": self.hb_addr.to_string(),
            "http": self.hbd_addr.to_string(),
            "ws": self.ws_addr.map(|a| a.to_string()),
            "https": self.tls.is_some(),
            "state_dir": path(&self.state_dir),
            "journal_dir": path(&self.journal_dir),
            "control_socket": path(&self.control_socket),
            "file": file,
        })
    }

    /// `default_owner`, or else the first admin user.
    pub fn default_owner(&self) -> Option<String> {
        self.file.default_owner.clone().or_else(|| {
            self.file
                .users
                .iter()
                .find(|(_, u)| u.admin)
                .map(|(name, _)| name.clone())
        })
    }

    /// The role's own user setting and its key name.
    fn role_user(&self, role: Role) -> (&Option<String>, &'static str) {
        let f = &self.file;
        match role {
            Role::Receiver => (&f.receiver_user, "receiver_user"),
            Role::Engine => (&f.engine_user, "engine_user"),
            Role::Notifier => (&f.notifier_user, "notifier_user"),
            Role::Dnsupdate => (&f.dnsupdate_user, "dnsupdate_user"),
            Role::Web => (&f.web_user, "web_user"),
        }
    }

    /// The user spec (`name`, `name:group`, `uid` or `uid:gid`) a role runs as.
    pub fn user_spec(&self, role: Role) -> (String, Option<String>) {
        let f = &self.file;
        let spec = self
            .role_user(role)
            .0
            .clone()
            .or_else(|| f.user.clone())
            .unwrap_or_else(|| DEFAULT_USER.into());
        match spec.split_once(':') {
            Some((user, group)) => (user.to_string(), Some(group.to_string())),
            None => (spec, f.group.clone()),
        }
    }

    /// An error about `key` found after parsing (start-up checks), with its line.
    pub fn error(&self, key: &str, message: String) -> ConfigErrors {
        let path: Vec<&str> = key.split('.').collect();
        ConfigErrors {
            source: self.source.clone(),
            errors: vec![ConfigError {
                line: locate(&self.text, &path),
                key: key.to_string(),
                message,
            }],
        }
    }

    /// The key naming the user a role runs as, for error messages.
    pub fn user_key(&self, role: Role) -> &'static str {
        match self.role_user(role) {
            (Some(_), key) => key,
            (None, _) => "user",
        }
    }
}

/// The unprivileged user when the file names none.
pub const DEFAULT_USER: &str = "_hb";

/// Keys whose values are secrets wherever they appear (and any key naming a password,
/// token, secret or key, even a key file's path, which only its one role needs); channel
/// options by their type's description.
const SECRET_KEYS: &[&str] = &["hb_key", "key", "password", "metrics_token", "cert_path"];

/// Replaces every secret in a configuration document by `"(hidden)"`.
fn hide_secrets(doc: &mut serde_json::Value) {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                for (key, value) in map.iter_mut() {
                    let lower = key.to_ascii_lowercase();
                    let secret = SECRET_KEYS.contains(&lower.as_str())
                        || ["password", "token", "secret", "key"]
                            .iter()
                            .any(|s| lower.contains(s));
                    // Secrets are values, never maps: a host or user named "monkey" is shown.
                    let scalar = !value.is_null() && !value.is_object();
                    if secret && scalar {
                        *value = serde_json::Value::String("(hidden)".into());
                    } else {
                        walk(value);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let channels = doc
        .as_object_mut()
        .and_then(|d| d.remove("notification_channels"));
    walk(doc);
    if let (Some(serde_json::Value::Object(channels)), Some(d)) = (channels, doc.as_object_mut()) {
        let shown = channels
            .iter()
            .map(|(name, def)| (name.clone(), hb_notify::channel::public_view(def)))
            .collect();
        d.insert(
            "notification_channels".into(),
            serde_json::Value::Object(shown),
        );
    }
}
