//! Channel definitions (`notification_channels:`): each type's options, checked when the
//! configuration is loaded, with secrets wrapped so they never print.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};

/// A value that must never appear in a log line or an answer: it prints as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A definition that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("notification_channels.{channel}.{key}: {message}")]
pub struct ChannelError {
    /// The channel.
    pub channel: String,
    /// The offending key.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// STARTTLS after connecting (port 587).
    StartTls,
    /// TLS from the start (port 465).
    Tls,
    /// None: only for a relay on loopback.
    Plain,
}

/// What a channel is, with its options.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// SMTP mail.
    Email {
        /// Server name.
        server: String,
        /// Port.
        port: u16,
        /// Security.
        security: SmtpSecurity,
        /// Login, if any.
        user: Option<String>,
        /// Password.
        password: Option<Secret>,
        /// From.
        sender: String,
        /// To.
        recipients: Vec<String>,
    },
    /// Pushover message.
    Pushover {
        /// API base.
        base_url: String,
        /// Application token.
        token: Secret,
        /// User key.
        user: Secret,
    },
    /// Mattermost incoming webhook.
    Mattermost {
        /// The hook's URL (holds its key).
        url: Secret,
        /// Channel to post in, if not the hook's.
        channel: Option<String>,
        /// Name shown.
        username: Option<String>,
    },
    /// Matrix room message.
    Matrix {
        /// Homeserver base URL.
        homeserver: String,
        /// Access token.
        access_token: Secret,
        /// Room id (`!abc:example.org`).
        room_id: String,
    },
    /// Signal through signal-cli's REST API.
    SignalRest {
        /// API base.
        url: String,
        /// Sender number.
        number: String,
        /// Recipient numbers.
        recipients: Vec<String>,
    },
    /// Signal through the signal-cli program (the original's form).
    SignalCli {
        /// Absolute path of signal-cli.
        cli_path: String,
        /// Sender number.
        user: String,
        /// Recipient number.
        recipient: String,
    },
    /// voip.ms SMS.
    SmsVoipms {
        /// API URL.
        base_url: String,
        /// API user.
        api_user: String,
        /// API password.
        api_password: Secret,
        /// Sending DID.
        did: String,
        /// Destination number.
        dst: String,
    },
    /// Twilio SMS.
    Twilio {
        /// API base.
        base_url: String,
        /// Account SID.
        account_sid: String,
        /// Auth token.
        auth_token: Secret,
        /// Sender number.
        from: String,
        /// Recipient numbers.
        to: Vec<String>,
    },
    /// Slack incoming webhook.
    Slack {
        /// The hook's URL (holds its key).
        url: Secret,
    },
    /// Discord webhook.
    Discord {
        /// The hook's URL (holds its key).
        url: Secret,
    },
    /// Generic JSON webhook.
    Webhook {
        /// Where to POST.
        url: Secret,
        /// HMAC-SHA256 key for the `X-Hb-Signature` header.
        secret: Option<Secret>,
    },
    /// ntfy topic.
    Ntfy {
        /// Server base.
        base_url: String,
        /// Topic.
        topic: String,
        /// Access token.
        token: Option<Secret>,
    },
    /// A program run with the notification (never through a shell).
    Exec {
        /// Absolute path and arguments.
        argv: Vec<String>,
    },
}

/// One channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Channel {
    /// Its name.
    pub name: String,
    /// Type and options.
    pub kind: Kind,
    /// Lowest level it gets (recoveries of alerts it got always reach it).
    pub min_level: u8,
    /// Who owns it (absent: made by an admin).
    pub owner: Option<String>,
    /// Only its owner sees and selects it.
    pub private: bool,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// How long delivery is retried before it fails for good.
    pub retry_for: Duration,
}

/// Severity of a level name, for `min_level`: OK 0, INFO 0, WARNING 1, UNKNOWN 1, CRITICAL 2.
pub fn severity(level: &str) -> Option<u8> {
    Some(match level {
        "OK" | "INFO" | "RECOVER" => 0,
        "WARNING" | "UNKNOWN" => 1,
        "CRITICAL" => 2,
        _ => return None,
    })
}

struct Options<'a> {
    channel: &'a str,
    map: &'a Map<String, Value>,
    used: Vec<&'static str>,
}

impl Options<'_> {
    fn err(&self, key: &str, message: impl Into<String>) -> ChannelError {
        ChannelError {
            channel: self.channel.to_string(),
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn opt_str(&mut self, key: &'static str) -> Result<Option<String>, ChannelError> {
        self.used.push(key);
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(self.err(key, "must be a non-empty string")),
        }
    }

    fn str(&mut self, key: &'static str) -> Result<String, ChannelError> {
        self.opt_str(key)?
            .ok_or_else(|| self.err(key, "is required for this channel type"))
    }

    fn secret(&mut self, key: &'static str) -> Result<Secret, ChannelError> {
        self.str(key).map(Secret)
    }

    fn url(&mut self, key: &'static str, default: Option<&str>) -> Result<String, ChannelError> {
        let url = match (self.opt_str(key)?, default) {
            (Some(u), _) => u,
            (None, Some(d)) => d.to_string(),
            (None, None) => return Err(self.err(key, "is required for this channel type")),
        };
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(self.err(key, "must start with https:// (or http://)"));
        }
        Ok(url.trim_end_matches('/').to_string())
    }

    fn secret_url(&mut self, key: &'static str) -> Result<Secret, ChannelError> {
        self.url(key, None).map(Secret)
    }

    fn list(&mut self, key: &'static str) -> Result<Vec<String>, ChannelError> {
        self.used.push(key);
        let items = match self.map.get(key) {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| self.err(key, "must be a list of strings"))?,
            _ => return Err(self.err(key, "is required: a string or a list of strings")),
        };
        if items.is_empty() || items.iter().any(String::is_empty) {
            return Err(self.err(key, "must not be empty"));
        }
        Ok(items)
    }

    fn seconds(
        &mut self,
        key: &'static str,
        default: u64,
        max: u64,
    ) -> Result<Duration, ChannelError> {
        self.used.push(key);
        match self.map.get(key) {
            None => Ok(Duration::from_secs(default)),
            Some(v) => v
                .as_f64()
                .filter(|s| s.is_finite() && *s > 0.0 && *s <= max as f64)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| self.err(key, format!("must be seconds above 0, at most {max}"))),
        }
    }
}

/// The channel types hb knows.
pub const TYPES: &[&str] = &[
    "discord",
    "email",
    "exec",
    "matrix",
    "mattermost",
    "ntfy",
    "pushover",
    "signal",
    "slack",
    "sms_voipms",
    "twilio",
    "webhook",
];

/// `email`: SMTP with STARTTLS (port 587), TLS (465) or neither.
fn email(o: &mut Options<'_>) -> Result<Kind, ChannelError> {
    let security = match o.opt_str("security")?.as_deref() {
        None | Some("starttls") => SmtpSecurity::StartTls,
        Some("tls") => SmtpSecurity::Tls,
        Some("none") => SmtpSecurity::Plain,
        Some(other) => {
            return Err(o.err("security", format!("{other:?}: use starttls, tls or none")));
        }
    };
    let default_port = if security == SmtpSecurity::Tls {
        465
    } else {
        587
    };
    let port = match o.opt_str("smtp_port")? {
        None => default_port,
        Some(p) => p
            .parse()
            .map_err(|_| o.err("smtp_port", format!("{p:?} is not a port")))?,
    };
    Ok(Kind::Email {
        server: o.str("smtp_server")?,
        port,
        security,
        user: o.opt_str("smtp_user")?,
        password: o.opt_str("smtp_password")?.map(Secret),
        sender: o.str("sender")?,
        recipients: o.list("recipients")?,
    })
}

/// `mattermost`: the hook's whole URL, or the original's host and token.
fn mattermost(o: &mut Options<'_>) -> Result<Kind, ChannelError> {
    // The original's form: host and token; or the hook's whole URL.
    let url = match (o.opt_str("url")?, o.opt_str("host")?) {
        (Some(_), _) => o.secret_url("url")?,
        (None, Some(host)) => {
            let host = host.trim_end_matches('/');
            let base = if host.contains("://") {
                host.to_string()
            } else {
                format!("https://{host}")
            };
            Secret(format!("{base}/hooks/{}", o.secret("token")?.expose()))
        }
        (None, None) => return Err(o.err("url", "url (or host and token) is required")),
    };
    Ok(Kind::Mattermost {
        url,
        channel: o.opt_str("channel")?,
        username: o.opt_str("username")?,
    })
}

/// `signal`: signal-cli on this machine (`cli_path`), or its REST API.
fn signal(o: &mut Options<'_>) -> Result<Kind, ChannelError> {
    Ok(match o.opt_str("cli_path")? {
        Some(cli_path) => {
            if !cli_path.starts_with('/') {
                return Err(o.err("cli_path", "must be an absolute path"));
            }
            Kind::SignalCli {
                cli_path,
                user: o.str("user")?,
                recipient: o.str("recipient")?,
            }
        }
        None => Kind::SignalRest {
            url: o.url("url", None)?,
            number: o.str("number")?,
            recipients: o.list("recipients")?,
        },
    })
}

impl Channel {
    /// Parses a definition: `type` and its options; unknown options are errors.
    pub fn parse(name: &str, definition: &Value) -> Result<Channel, ChannelError> {
        let empty = Map::new();
        let map = definition.as_object().unwrap_or(&empty);
        let mut o = Options {
            channel: name,
            map,
            used: vec!["type", "min_level", "owner", "private"],
        };
        let kind_name = map.get("type").and_then(Value::as_str).unwrap_or("");
        let kind = match kind_name {
            "email" => email(&mut o)?,
            "pushover" => Kind::Pushover {
                base_url: o.url("base_url", Some("https://api.pushover.net"))?,
                token: o.secret("token")?,
                user: o.secret("user")?,
            },
            "mattermost" => mattermost(&mut o)?,
            "matrix" => Kind::Matrix {
                homeserver: o.url("homeserver", None)?,
                access_token: o.secret("access_token")?,
                room_id: o.str("room_id")?,
            },
            "signal" => signal(&mut o)?,
            "sms_voipms" => Kind::SmsVoipms {
                base_url: o.url("base_url", Some("https://voip.ms/api/v1/rest.php"))?,
                api_user: o.str("api_user")?,
                api_password: o.secret("api_password")?,
                did: o.str("did")?,
                dst: o.str("dst")?,
            },
            "twilio" => Kind::Twilio {
                base_url: o.url("base_url", Some("https://api.twilio.com"))?,
                account_sid: o.str("account_sid")?,
                auth_token: o.secret("auth_token")?,
                from: o.str("from")?,
                to: o.list("to")?,
            },
            "slack" => Kind::Slack {
                url: o.secret_url("url")?,
            },
            "discord" => Kind::Discord {
                url: o.secret_url("url")?,
            },
            "webhook" => Kind::Webhook {
                url: o.secret_url("url")?,
                secret: o.opt_str("secret")?.map(Secret),
            },
            "ntfy" => Kind::Ntfy {
                base_url: o.url("base_url", Some("https://ntfy.sh"))?,
                topic: o.str("topic")?,
                token: o.opt_str("token")?.map(Secret),
            },
            "exec" => {
                let argv = o.list("command")?;
                if !argv[0].starts_with('/') {
                    return Err(o.err(
                        "command",
                        "the program must be an absolute path (it never runs through a shell)",
                    ));
                }
                Kind::Exec { argv }
            }
            other => {
                return Err(o.err(
                    "type",
                    format!(
                        "unknown channel type {other:?}; known: {}",
                        TYPES.join(", ")
                    ),
                ));
            }
        };
        let min_level = match map.get("min_level") {
            None => 1,
            Some(v) => v
                .as_str()
                .and_then(severity)
                .ok_or_else(|| o.err("min_level", "must be OK, WARNING or CRITICAL"))?,
        };
        let owner = map.get("owner").and_then(Value::as_str).map(str::to_string);
        let private = map.get("private").and_then(Value::as_bool).unwrap_or(false);
        let timeout = o.seconds("timeout", 10, 300)?;
        let retry_for = o.seconds("retry_for", 900, 86_400)?;
        if let Some(extra) = map.keys().find(|k| !o.used.contains(&k.as_str())) {
            return Err(o.err(extra, "unknown option for this channel type"));
        }
        Ok(Channel {
            name: name.to_string(),
            kind,
            min_level,
            owner,
            private,
            timeout,
            retry_for,
        })
    }
}

/// What an option holds, for forms and the API's type list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionKind {
    /// A string.
    Text,
    /// An `https://` (or `http://`) URL.
    Url,
    /// A string or a list of strings.
    List,
    /// A TCP port.
    Port,
    /// One of the given words.
    Choice(&'static [&'static str]),
    /// An absolute path of a program on the server.
    Program,
}

impl OptionKind {
    /// Its name in the API.
    pub fn name(self) -> &'static str {
        match self {
            OptionKind::Text => "text",
            OptionKind::Url => "url",
            OptionKind::List => "list",
            OptionKind::Port => "port",
            OptionKind::Choice(_) => "choice",
            OptionKind::Program => "program",
        }
    }
}

/// One option of a channel type.
#[derive(Clone, Copy, Debug)]
pub struct OptionSpec {
    /// Its key.
    pub name: &'static str,
    /// What it holds.
    pub kind: OptionKind,
    /// Whether a definition must have it.
    pub required: bool,
    /// Whether it is a secret: never shown, never logged.
    pub secret: bool,
    /// Whether only the configuration file may set it (it makes the notifier run a program).
    pub file_only: bool,
    /// The value used when it is absent.
    pub default: Option<&'static str>,
    /// What it is.
    pub help: &'static str,
}

const fn opt(name: &'static str, kind: OptionKind, help: &'static str) -> OptionSpec {
    OptionSpec {
        name,
        kind,
        required: false,
        secret: false,
        file_only: false,
        default: None,
        help,
    }
}

const fn req(name: &'static str, kind: OptionKind, help: &'static str) -> OptionSpec {
    OptionSpec {
        required: true,
        ..opt(name, kind, help)
    }
}

const fn secret(spec: OptionSpec) -> OptionSpec {
    OptionSpec {
        secret: true,
        ..spec
    }
}

const fn default(spec: OptionSpec, value: &'static str) -> OptionSpec {
    OptionSpec {
        default: Some(value),
        ..spec
    }
}

/// A channel type: its options, and whether the API may define one.
#[derive(Clone, Copy, Debug)]
pub struct TypeSpec {
    /// Its `type`.
    pub name: &'static str,
    /// What it sends.
    pub help: &'static str,
    /// Its own options.
    pub options: &'static [OptionSpec],
    /// Whether only the configuration file may define one (it runs a program).
    pub file_only: bool,
}

use OptionKind::{Choice, List, Port, Program, Text, Url};

/// Options every channel has.
pub const COMMON_OPTIONS: &[OptionSpec] = &[
    default(
        opt(
            "min_level",
            Choice(&["OK", "WARNING", "CRITICAL"]),
            "lowest level sent (recoveries of alerts it got always are)",
        ),
        "WARNING",
    ),
    opt(
        "owner",
        Text,
        "the user who owns it; absent: made by an admin",
    ),
    default(
        opt(
            "private",
            Choice(&["false", "true"]),
            "only its owner sees and chooses it",
        ),
        "false",
    ),
    default(
        opt(
            "timeout",
            Text,
            "seconds one attempt may take (at most 300)",
        ),
        "10",
    ),
    default(
        opt(
            "retry_for",
            Text,
            "seconds delivery is retried before it fails (at most 86400)",
        ),
        "900",
    ),
];

/// Every channel type with its options (what [`Channel::parse`] accepts; a test holds them
/// together).
pub const TYPE_SPECS: &[TypeSpec] = &[
    TypeSpec {
        name: "discord",
        help: "Discord webhook",
        options: &[secret(req(
            "url",
            Url,
            "the webhook's URL (it holds its key)",
        ))],
        file_only: false,
    },
    TypeSpec {
        name: "email",
        help: "mail over SMTP",
        options: &[
            req("smtp_server", Text, "SMTP server name"),
            opt("smtp_port", Port, "port: 587 with starttls, 465 with tls"),
            default(
                opt(
                    "security",
                    Choice(&["starttls", "tls", "none"]),
                    "how the connection is secured (none only for a relay on loopback)",
                ),
                "starttls",
            ),
            opt("smtp_user", Text, "login"),
            secret(opt("smtp_password", Text, "password")),
            req("sender", Text, "From address"),
            req("recipients", List, "To addresses"),
        ],
        file_only: false,
    },
    TypeSpec {
        name: "exec",
        help: "a program run with the notification (never through a shell)",
        options: &[req(
            "command",
            List,
            "absolute path of the program, then its arguments",
        )],
        file_only: true,
    },
    TypeSpec {
        name: "matrix",
        help: "Matrix room message",
        options: &[
            req("homeserver", Url, "homeserver base URL"),
            secret(req("access_token", Text, "access token")),
            req("room_id", Text, "room id (!abc:example.org)"),
        ],
        file_only: false,
    },
    TypeSpec {
        name: "mattermost",
        help: "Mattermost incoming webhook: url, or host and token",
        options: &[
            secret(opt("url", Url, "the hook's URL (it holds its key)")),
            opt("host", Text, "server name (with token, instead of url)"),
            secret(opt("token", Text, "the hook's key (with host)")),
            opt("channel", Text, "channel to post in, if not the hook's"),
            opt("username", Text, "name shown"),
        ],
        file_only: false,
    },
    TypeSpec {
        name: "ntfy",
        help: "ntfy topic",
        options: &[
            default(opt("base_url", Url, "server"), "https://ntfy.sh"),
            req("topic", Text, "topic"),
            secret(opt("token", Text, "access token")),
        ],
        file_only: false,
    },
    TypeSpec {
        name: "pushover",
        help: "Pushover message",
        options: &[
            default(opt("base_url", Url, "API base"), "https://api.pushover.net"),
            secret(req("token", Text, "application token")),
            secret(req("user", Text, "user key")),
        ],
        file_only: false,
    },
    TypeSpec {
        name: "signal",
        help: "Signal through signal-cli's REST API (url, number, recipients), or the signal-cli program (cli_path, user, recipient; configuration file only)",
        options: &[
            opt("url", Url, "signal-cli REST API base"),
            opt("number", Text, "sender number"),
            opt("recipients", List, "recipient numbers"),
            OptionSpec {
                file_only: true,
                ..opt("cli_path", Program, "absolute path of signal-cli")
            },
            opt("user", Text, "sender number (with cli_path)"),
            opt("recipient", Text, "recipient number (with cli_path)"),
        ],
        file_only: false,
    },
    TypeSpec {
        name: "slack",
        help: "Slack incoming webhook",
        options: &[secret(req(
            "url",
            Url,
            "the webhook's URL (it holds its key)",
        ))],
        file_only: false,
    },
    TypeSpec {
        name: "sms_voipms",
        help: "SMS through voip.ms",
        options: &[
            default(
                opt("base_url", Url, "API URL"),
                "https://voip.ms/api/v1/rest.php",
            ),
            req("api_user", Text, "API user"),
            secret(req("api_password", Text, "API password")),
            req("did", Text, "sending DID"),
            req("dst", Text, "destination number"),
        ],
        file_only: false,
    },
    TypeSpec {
        name: "twilio",
        help: "SMS through Twilio",
        options: &[
            default(opt("base_url", Url, "API base"), "https://api.twilio.com"),
            req("account_sid", Text, "account SID"),
            secret(req("auth_token", Text, "auth token")),
            req("from", Text, "sender number"),
            req("to", List, "recipient numbers"),
        ],
        file_only: false,
    },
    TypeSpec {
        name: "webhook",
        help: "JSON POST to any URL, optionally signed (X-Hb-Signature)",
        options: &[
            secret(req("url", Url, "where to POST")),
            secret(opt(
                "secret",
                Text,
                "HMAC-SHA256 key for the X-Hb-Signature header",
            )),
        ],
        file_only: false,
    },
];

/// The type named `name`.
pub fn type_spec(name: &str) -> Option<&'static TypeSpec> {
    TYPE_SPECS.iter().find(|t| t.name == name)
}

/// The secret options of a definition's type.
pub fn secret_keys(definition: &Value) -> Vec<&'static str> {
    definition
        .get("type")
        .and_then(Value::as_str)
        .and_then(type_spec)
        .map(|t| {
            t.options
                .iter()
                .filter(|o| o.secret)
                .map(|o| o.name)
                .collect()
        })
        .unwrap_or_default()
}

/// A definition as it may be shown: every secret option left out and named under
/// `secrets_set`. Of an unknown type, only the common options are kept.
pub fn public_view(definition: &Value) -> Value {
    let Some(map) = definition.as_object() else {
        return Value::Object(Map::new());
    };
    let known = definition
        .get("type")
        .and_then(Value::as_str)
        .and_then(type_spec);
    let shown = |key: &str| {
        key == "type"
            || COMMON_OPTIONS.iter().any(|o| o.name == key)
            || known.is_some_and(|t| t.options.iter().any(|o| o.name == key && !o.secret))
    };
    let mut view: Map<String, Value> = map
        .iter()
        .filter(|(k, _)| shown(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let set: Vec<Value> = map
        .keys()
        .filter(|k| !shown(k))
        .map(|k| Value::String(k.clone()))
        .collect();
    view.insert("secrets_set".into(), Value::Array(set));
    Value::Object(view)
}

impl Channel {
    /// Parses a definition made through the API: as [`Channel::parse`], but a type or
    /// option that runs a program on the server is refused (only the file may).
    pub fn parse_from_api(name: &str, definition: &Value) -> Result<Channel, ChannelError> {
        let err = |key: &str, message: &str| ChannelError {
            channel: name.to_string(),
            key: key.to_string(),
            message: message.to_string(),
        };
        let spec = definition
            .get("type")
            .and_then(Value::as_str)
            .and_then(type_spec);
        if let Some(spec) = spec {
            if spec.file_only {
                return Err(err(
                    "type",
                    "runs a program on the server: only the configuration file may define one",
                ));
            }
            if let Some(o) = spec
                .options
                .iter()
                .find(|o| o.file_only && definition.get(o.name).is_some())
            {
                return Err(err(
                    o.name,
                    "runs a program on the server: only the configuration file may set it",
                ));
            }
        }
        Channel::parse(name, definition)
    }
}

/// Parses every channel of `notification_channels`.
pub fn parse_all(
    channels: &BTreeMap<String, Value>,
) -> Result<BTreeMap<String, Channel>, ChannelError> {
    channels
        .iter()
        .map(|(name, def)| Channel::parse(name, def).map(|c| (name.clone(), c)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_type_parses_with_its_options() {
        for def in [
            json!({"type": "email", "smtp_server": "mail.example.net", "sender": "hb@example.net", "recipients": ["a@example.net", "b@example.net"], "smtp_user": "hb", "smtp_password": "pw"}),
            json!({"type": "pushover", "token": "t", "user": "u"}),
            json!({"type": "mattermost", "host": "chat.example.net", "token": "k", "channel": "ops", "username": "heartbeat-bot"}),
            json!({"type": "mattermost", "url": "https://chat.example.net/hooks/k"}),
            json!({"type": "matrix", "homeserver": "https://matrix.example.org", "access_token": "t", "room_id": "!abc:example.org"}),
            json!({"type": "signal", "url": "http://127.0.0.1:8080", "number": "+1555", "recipients": "+1666"}),
            json!({"type": "signal", "cli_path": "/usr/local/bin/signal-cli", "user": "+1555", "recipient": "+1666"}),
            json!({"type": "sms_voipms", "api_user": "u", "api_password": "p", "did": "1555", "dst": "1666"}),
            json!({"type": "twilio", "account_sid": "AC1", "auth_token": "t", "from": "+1555", "to": ["+1666"]}),
            json!({"type": "slack", "url": "https://hooks.slack.com/services/X"}),
            json!({"type": "discord", "url": "https://discord.com/api/webhooks/1/x"}),
            json!({"type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "s"}),
            json!({"type": "ntfy", "topic": "alerts", "min_level": "CRITICAL"}),
            json!({"type": "exec", "command": ["/usr/local/bin/page", "--urgent"], "timeout": 5}),
        ] {
            let c = Channel::parse("c", &def).unwrap_or_else(|e| panic!("{def}: {e}"));
            assert_eq!(c.retry_for, Duration::from_secs(900));
        }
        let c = Channel::parse(
            "m",
            &json!({"type": "mattermost", "host": "chat.example.net", "token": "k"}),
        )
        .unwrap();
        let Kind::Mattermost { url, .. } = c.kind else {
            panic!()
        };
        assert_eq!(url.expose(), "https://chat.example.net/hooks/k");
    }

    /// A valid value of an option's kind.
    fn sample(o: &OptionSpec) -> Value {
        match o.kind {
            OptionKind::Url => json!("https://example.net/x"),
            // The first item is a program for exec's `command`.
            OptionKind::List => json!(["/usr/bin/true"]),
            OptionKind::Port => json!(2525),
            OptionKind::Choice(words) => json!(words[0]),
            OptionKind::Program => json!("/usr/bin/true"),
            OptionKind::Text => json!("x"),
        }
    }

    #[test]
    fn the_type_list_is_what_the_parser_accepts() {
        let listed: Vec<&str> = TYPE_SPECS.iter().map(|t| t.name).collect();
        assert_eq!(listed, TYPES, "every type is described");
        for t in TYPE_SPECS {
            // Mattermost and signal have two forms; each is filled in on its own.
            let forms: &[&[&str]] = match t.name {
                "mattermost" => &[&["url"], &["host", "token"]],
                "signal" => &[
                    &["url", "number", "recipients"],
                    &["cli_path", "user", "recipient"],
                ],
                _ => &[&[]],
            };
            let filled = |form: &[&str]| {
                let mut def = json!({"type": t.name});
                for o in t.options {
                    if o.required || form.contains(&o.name) {
                        def[o.name] = sample(o);
                    }
                }
                def
            };
            // Its required options alone make a channel.
            for form in forms {
                let def = filled(form);
                Channel::parse("c", &def).unwrap_or_else(|e| panic!("{def}: {e}"));
            }
            // Every option listed is one it knows.
            for o in t.options.iter().chain(COMMON_OPTIONS) {
                let form = forms
                    .iter()
                    .find(|f| f.contains(&o.name))
                    .unwrap_or(&forms[0]);
                let mut with = filled(form);
                with[o.name] = match o.name {
                    "timeout" | "retry_for" => json!(5),
                    "private" => json!(true),
                    _ => sample(o),
                };
                if let Err(e) = Channel::parse("c", &with) {
                    panic!("{}.{}: {e}", t.name, o.name);
                }
            }
            let def = filled(forms[0]);
            // And it knows no other.
            let mut extra = def.clone();
            extra["colour"] = json!("x");
            assert!(Channel::parse("c", &extra).is_err());
        }
    }

    #[test]
    fn the_public_view_hides_every_secret() {
        let def = json!({"type": "webhook", "url": "https://h/SECRET-1", "secret": "SECRET-2", "min_level": "CRITICAL", "owner": "bob"});
        let view = public_view(&def);
        assert!(!view.to_string().contains("SECRET"), "{view}");
        assert_eq!(view["secrets_set"], json!(["secret", "url"]));
        assert_eq!(view["min_level"], "CRITICAL");
        assert_eq!(secret_keys(&def), ["url", "secret"]);
        let odd = json!({"type": "pager", "password": "SECRET-3"});
        assert!(!public_view(&odd).to_string().contains("SECRET"));
    }

    #[test]
    fn the_api_may_not_define_programs() {
        let exec = json!({"type": "exec", "command": ["/bin/sh", "-c", "id"]});
        assert!(Channel::parse("c", &exec).is_ok());
        let e = Channel::parse_from_api("c", &exec).unwrap_err();
        assert_eq!(e.key, "type");
        let cli = json!({"type": "signal", "cli_path": "/usr/bin/signal-cli", "user": "+1", "recipient": "+2"});
        assert_eq!(
            Channel::parse_from_api("c", &cli).unwrap_err().key,
            "cli_path"
        );
        let rest = json!({"type": "signal", "url": "http://127.0.0.1:8080", "number": "+1", "recipients": "+2"});
        assert!(Channel::parse_from_api("c", &rest).is_ok());
    }

    #[test]
    fn secrets_never_print() {
        let c = Channel::parse(
            "p",
            &json!({"type": "pushover", "token": "tok-SECRET", "user": "usr-SECRET"}),
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("***"));
    }

    #[test]
    fn bad_definitions_name_the_option() {
        for (def, want) in [
            (
                json!({"type": "pager"}),
                "c.type: unknown channel type \"pager\"",
            ),
            (json!({"type": "slack"}), "c.url: is required"),
            (
                json!({"type": "slack", "url": "ftp://x"}),
                "c.url: must start with https://",
            ),
            (
                json!({"type": "pushover", "token": "t", "user": "u", "tokn": 1}),
                "c.tokn: unknown option",
            ),
            (
                json!({"type": "exec", "command": ["page"]}),
                "c.command: the program must be an absolute path",
            ),
            (
                json!({"type": "ntfy", "topic": "t", "min_level": "LOUD"}),
                "c.min_level: must be OK, WARNING or CRITICAL",
            ),
            (
                json!({"type": "email", "smtp_server": "m", "sender": "s", "recipients": [], "security": "tls"}),
                "c.recipients: must not be empty",
            ),
            (
                json!({"type": "webhook", "url": "https://x", "retry_for": 0}),
                "c.retry_for: must be seconds above 0",
            ),
        ] {
            let e = Channel::parse("c", &def).unwrap_err().to_string();
            assert!(e.contains(want), "{e} (wanted {want})");
        }
    }
}
