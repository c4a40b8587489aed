//! The HTTP requests each channel type sends, following each service's documented API.
//! Pure: hb-notifier sends them. A request's URL, headers or body may hold a secret; only
//! [`Request::describe`] may be logged.

use hb_ipc::edge::Notification;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::Secret;
use crate::channel::{Channel, Kind};
use crate::message::{Message, shorten};

/// One HTTP request.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// `POST`, `PUT` or `GET`.
    pub method: &'static str,
    /// The whole URL (may hold a secret).
    pub url: String,
    /// Headers (may hold a secret).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Request {
    /// What may be logged: the method, and the URL's scheme and host.
    pub fn describe(&self) -> String {
        let host = self
            .url
            .split_once("://")
            .map(|(scheme, rest)| {
                let host = rest.split(['/', '?']).next().unwrap_or("");
                // user:password@host
                let host = host.rsplit('@').next().unwrap_or(host);
                format!("{scheme}://{host}")
            })
            .unwrap_or_default();
        format!("{} {host}/...", self.method)
    }
}

/// Percent-encodes for a query string or form body.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

fn json(value: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&value).unwrap_or_default()
}

fn header(name: &str, value: impl Into<String>) -> (String, String) {
    (name.to_string(), value.into())
}

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

/// The generic webhook's body (docs/NOTIFY.md).
pub fn webhook_body(n: &Notification, m: &Message) -> serde_json::Value {
    serde_json::json!({
        "id": n.id,
        "alert": n.alert,
        "kind": n.kind,
        "level": n.level,
        "host": n.host,
        "title": m.title,
        "text": n.text,
        "created_ms": n.created_ms,
        "link": m.link,
    })
}

/// The signature header of a webhook body: `sha256=<hex HMAC-SHA256 of the body>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length: the else cannot happen.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Mattermost's incoming hook: the title as a heading, and the room and name if set.
fn mattermost(url: &Secret, room: Option<&str>, username: Option<&str>, m: &Message) -> Request {
    let mut body = serde_json::json!({"text": format!("#### {}\n{}", m.title, m.body)});
    if let Some(room) = room {
        body["channel"] = room.into();
    }
    if let Some(name) = username {
        body["username"] = name.into();
    }
    Request {
        method: "POST",
        url: url.expose().to_string(),
        headers: vec![header("Content-Type", JSON)],
        body: json(body),
    }
}

/// ntfy: the body as the message, the level as priority and tag.
fn ntfy(
    base_url: &str,
    topic: &str,
    token: Option<&Secret>,
    n: &Notification,
    m: &Message,
) -> Request {
    let priority = match n.level.as_str() {
        "CRITICAL" => "5",
        "WARNING" | "UNKNOWN" => "4",
        _ => "3",
    };
    let mut headers = vec![
        header("Title", m.title.clone()),
        header("Priority", priority),
        header("Tags", n.level.to_ascii_lowercase()),
    ];
    if let Some(link) = &m.link {
        headers.push(header("Click", link.clone()));
    }
    if let Some(token) = token {
        headers.push(header(
            "Authorization",
            format!("Bearer {}", token.expose()),
        ));
    }
    Request {
        method: "POST",
        url: format!("{base_url}/{}", encode(topic)),
        headers,
        body: m.body.clone().into_bytes(),
    }
}

/// Pushover's message API, the level as priority.
fn pushover(
    base_url: &str,
    token: &Secret,
    user: &Secret,
    n: &Notification,
    m: &Message,
) -> Request {
    // Pushover priorities: 1 high, 0 normal, -1 quiet.
    let priority = match n.level.as_str() {
        "CRITICAL" => "1",
        "WARNING" | "UNKNOWN" => "0",
        _ => "-1",
    };
    let mut pairs = vec![
        ("token", token.expose()),
        ("user", user.expose()),
        ("title", m.title.as_str()),
        ("message", m.body.as_str()),
        ("priority", priority),
    ];
    if let Some(link) = &m.link {
        pairs.push(("url", link.as_str()));
    }
    Request {
        method: "POST",
        url: format!("{base_url}/1/messages.json"),
        headers: vec![header("Content-Type", FORM)],
        body: form(&pairs),
    }
}

/// One Twilio message, to one number: the short text.
fn twilio(
    base_url: &str,
    account_sid: &str,
    auth_token: &Secret,
    from: &str,
    to: &str,
    m: &Message,
) -> Request {
    let login = format!("{account_sid}:{}", auth_token.expose());
    Request {
        method: "POST",
        url: format!(
            "{base_url}/2010-04-01/Accounts/{}/Messages.json",
            encode(account_sid)
        ),
        headers: vec![
            header("Content-Type", FORM),
            header(
                "Authorization",
                format!("Basic {}", base64(login.as_bytes())),
            ),
        ],
        body: form(&[("From", from), ("To", to), ("Body", &m.short)]),
    }
}

/// The requests that deliver `n` (rendered as `m`) on `channel`; empty for channels that
/// are not HTTP (email, exec, signal-cli).
pub fn requests(channel: &Channel, n: &Notification, m: &Message) -> Vec<Request> {
    let text = format!("{}\n{}", m.title, m.body);
    match &channel.kind {
        Kind::Slack { url } => vec![Request {
            method: "POST",
            url: url.expose().to_string(),
            headers: vec![header("Content-Type", JSON)],
            body: json(serde_json::json!({"text": format!("*{}*\n{}", m.title, m.body)})),
        }],
        Kind::Discord { url } => vec![Request {
            method: "POST",
            url: url.expose().to_string(),
            headers: vec![header("Content-Type", JSON)],
            // Discord refuses content over 2000 characters.
            body: json(serde_json::json!({
                "content": shorten(&format!("**{}**\n{}", m.title, m.body), 2000)
            })),
        }],
        Kind::Mattermost {
            url,
            channel: room,
            username,
        } => vec![mattermost(url, room.as_deref(), username.as_deref(), m)],
        Kind::Webhook { url, secret } => {
            let body = json(webhook_body(n, m));
            let mut headers = vec![header("Content-Type", JSON)];
            if let Some(secret) = secret {
                headers.push(header("X-Hb-Signature", signature(secret.expose(), &body)));
            }
            vec![Request {
                method: "POST",
                url: url.expose().to_string(),
                headers,
                body,
            }]
        }
        Kind::Ntfy {
            base_url,
            topic,
            token,
        } => vec![ntfy(base_url, topic, token.as_ref(), n, m)],
        Kind::Pushover {
            base_url,
            token,
            user,
        } => vec![pushover(base_url, token, user, n, m)],
        Kind::Matrix {
            homeserver,
            access_token,
            room_id,
        } => vec![Request {
            method: "PUT",
            // The transaction id makes a retried or repeated send appear once.
            url: format!(
                "{homeserver}/_matrix/client/v3/rooms/{}/send/m.room.message/hb-{}-{}",
                encode(room_id),
                n.id,
                encode(&channel.name)
            ),
            headers: vec![
                header("Content-Type", JSON),
                header("Authorization", format!("Bearer {}", access_token.expose())),
            ],
            body: json(serde_json::json!({"msgtype": "m.text", "body": text})),
        }],
        Kind::SignalRest {
            url,
            number,
            recipients,
        } => vec![Request {
            method: "POST",
            url: format!("{url}/v2/send"),
            headers: vec![header("Content-Type", JSON)],
            body: json(serde_json::json!({
                "message": text,
                "number": number,
                "recipients": recipients,
            })),
        }],
        Kind::Twilio {
            base_url,
            account_sid,
            auth_token,
            from,
            to,
        } => to
            .iter()
            .map(|to| twilio(base_url, account_sid, auth_token, from, to, m))
            .collect(),
        Kind::SmsVoipms {
            base_url,
            api_user,
            api_password,
            did,
            dst,
        } => vec![Request {
            method: "GET",
            url: format!(
                "{base_url}?{}",
                String::from_utf8_lossy(&form(&[
                    ("api_username", api_user),
                    ("api_password", api_password.expose()),
                    ("method", "sendSMS"),
                    ("did", did),
                    ("dst", dst),
                    ("message", &m.short),
                ]))
            ),
            headers: Vec::new(),
            body: Vec::new(),
        }],
        Kind::Email { .. } | Kind::Exec { .. } | Kind::SignalCli { .. } => Vec::new(),
    }
}

/// Standard base64 with padding (for HTTP Basic auth).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::render;
    use serde_json::json;

    fn n() -> Notification {
        Notification {
            id: 42,
            alert: "web1/down".into(),
            kind: "alert".into(),
            level: "CRITICAL".into(),
            host: "web1".into(),
            title: "[CRITICAL] web1 down".into(),
            text: "web1 sent nothing for 22 s".into(),
            created_ms: 0,
            users: vec![],
            channels: vec![],
            alerted: vec![],
            done_channels: Vec::new(),
        }
    }

    fn one(def: serde_json::Value) -> Request {
        let ch = Channel::parse("ops", &def).unwrap();
        let n = n();
        let mut r = requests(&ch, &n, &render(&n, Some("https://hb.example.net")));
        assert_eq!(r.len(), 1);
        r.remove(0)
    }

    fn body(r: &Request) -> serde_json::Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn each_service_gets_its_documented_request() {
        let r = one(json!({"type": "slack", "url": "https://hooks.slack.com/services/T/B/X"}));
        assert_eq!(
            (r.method, r.url.as_str()),
            ("POST", "https://hooks.slack.com/services/T/B/X")
        );
        assert!(
            body(&r)["text"]
                .as_str()
                .unwrap()
                .starts_with("*[CRITICAL] web1 down*\n")
        );

        let r = one(json!({"type": "discord", "url": "https://discord.com/api/webhooks/1/x"}));
        assert!(
            body(&r)["content"]
                .as_str()
                .unwrap()
                .starts_with("**[CRITICAL] web1 down**")
        );

        let r = one(
            json!({"type": "mattermost", "host": "chat.example.net", "token": "k", "channel": "ops", "username": "heartbeat-bot"}),
        );
        assert_eq!(r.url, "https://chat.example.net/hooks/k");
        assert_eq!(body(&r)["channel"], "ops");
        assert_eq!(body(&r)["username"], "heartbeat-bot");

        let r = one(
            json!({"type": "ntfy", "base_url": "http://127.0.0.1:1", "topic": "hb alerts", "token": "tk"}),
        );
        assert_eq!(r.url, "http://127.0.0.1:1/hb%20alerts");
        assert!(r.headers.contains(&("Priority".into(), "5".into())));
        assert!(
            r.headers
                .contains(&("Authorization".into(), "Bearer tk".into()))
        );
        assert!(
            r.headers
                .contains(&("Click".into(), "https://hb.example.net/plugins/web1".into()))
        );

        let r = one(json!({"type": "pushover", "token": "apptoken", "user": "userkey"}));
        assert_eq!(r.url, "https://api.pushover.net/1/messages.json");
        let form = String::from_utf8(r.body.clone()).unwrap();
        assert!(
            form.starts_with("token=apptoken&user=userkey&title=%5BCRITICAL%5D%20web1%20down&"),
            "{form}"
        );
        assert!(
            form.contains("&priority=1&url=https%3A%2F%2Fhb.example.net%2Fplugins%2Fweb1"),
            "{form}"
        );

        let r = one(
            json!({"type": "matrix", "homeserver": "https://m.example.org", "access_token": "syt", "room_id": "!abc:example.org"}),
        );
        assert_eq!(r.method, "PUT");
        assert_eq!(
            r.url,
            "https://m.example.org/_matrix/client/v3/rooms/%21abc%3Aexample.org/send/m.room.message/hb-42-ops"
        );
        assert_eq!(body(&r)["msgtype"], "m.text");

        let r = one(
            json!({"type": "signal", "url": "http://127.0.0.1:8080", "number": "+1555", "recipients": ["+1666"]}),
        );
        assert_eq!(r.url, "http://127.0.0.1:8080/v2/send");
        assert_eq!(body(&r)["recipients"], json!(["+1666"]));

        let r = one(
            json!({"type": "twilio", "account_sid": "AC1", "auth_token": "tok", "from": "+1555", "to": "+1666"}),
        );
        assert_eq!(
            r.url,
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json"
        );
        assert!(r.headers.contains(&(
            "Authorization".into(),
            format!("Basic {}", base64(b"AC1:tok"))
        )));

        let r = one(
            json!({"type": "sms_voipms", "api_user": "u", "api_password": "p", "did": "1555", "dst": "1666"}),
        );
        assert_eq!(r.method, "GET");
        assert!(
            r.url.contains("method=sendSMS&did=1555&dst=1666&message="),
            "{}",
            r.url
        );
    }

    #[test]
    fn the_webhook_is_signed_and_nothing_secret_is_described() {
        let r = one(
            json!({"type": "webhook", "url": "https://user:pw@hooks.example.net/path?key=SECRET", "secret": "s3"}),
        );
        let b = body(&r);
        assert_eq!(b["id"], 42);
        assert_eq!(b["alert"], "web1/down");
        assert_eq!(b["link"], "https://hb.example.net/plugins/web1");
        let sig = signature("s3", &r.body);
        assert!(r.headers.contains(&("X-Hb-Signature".into(), sig.clone())));
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        let shown = format!("{r:?}");
        assert_eq!(shown, "POST https://hooks.example.net/...");
        assert!(!shown.contains("SECRET") && !shown.contains("pw"));
    }

    #[test]
    fn base64_and_encoding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
