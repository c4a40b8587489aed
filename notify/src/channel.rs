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

impl<'a> Options<'a> {
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
            "email" => {
                let security = match o.opt_str("security")?.as_deref() {
                    None | Some("starttls") => SmtpSecurity::StartTls,
                    Some("tls") => SmtpSecurity::Tls,
                    Some("none") => SmtpSecurity::Plain,
                    Some(other) => {
                        return Err(
                            o.err("security", format!("{other:?}: use starttls, tls or none"))
                        );
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
                Kind::Email {
                    server: o.str("smtp_server")?,
                    port,
                    security,
                    user: o.opt_str("smtp_user")?,
                    password: o.opt_str("smtp_password")?.map(Secret),
                    sender: o.str("sender")?,
                    recipients: o.list("recipients")?,
                }
            }
            "pushover" => Kind::Pushover {
                base_url: o.url("base_url", Some("https://api.pushover.net"))?,
                token: o.secret("token")?,
                user: o.secret("user")?,
            },
            "mattermost" => {
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
                Kind::Mattermost {
                    url,
                    channel: o.opt_str("channel")?,
                    username: o.opt_str("username")?,
                }
            }
            "matrix" => Kind::Matrix {
                homeserver: o.url("homeserver", None)?,
                access_token: o.secret("access_token")?,
                room_id: o.str("room_id")?,
            },
            "signal" => match o.opt_str("cli_path")? {
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
            },
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
