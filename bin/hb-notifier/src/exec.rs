//! The `exec` channel: runs the configured program (never through a shell) with the
//! notification in `HB_*` environment variables and as the webhook's JSON on stdin. Exit 0
//! is delivered; another exit, a signal or the timeout (which kills its process group) is
//! tried again.

use std::path::Path;
use std::time::Duration;

use hb_child::program::Ended;
use hb_ipc::edge::Notification;
use hb_notify::message::Message;
use hb_notify::request::webhook_body;
use hb_notify::retry::Attempt;

/// Runs `argv` for notification `n`.
pub async fn run(argv: &[String], n: &Notification, m: &Message, timeout: Duration) -> Attempt {
    let Some((program, args)) = argv.split_first() else {
        return Attempt::Permanent {
            error: "no command".into(),
        };
    };
    let id = n.id.to_string();
    let env = [
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ("HB_ID", id.as_str()),
        ("HB_ALERT", &n.alert),
        ("HB_KIND", &n.kind),
        ("HB_LEVEL", &n.level),
        ("HB_HOST", &n.host),
        ("HB_TITLE", &m.title),
        ("HB_TEXT", &n.text),
        ("HB_LINK", m.link.as_deref().unwrap_or("")),
    ];
    let body = serde_json::to_vec(&webhook_body(n, m)).unwrap_or_default();
    let program = Path::new(program);
    let ended = hb_child::program::run(program, args, &env, &body, timeout).await;
    match ended {
        Ended::CannotStart(_) => Attempt::Permanent {
            error: ended.failure(program, timeout).unwrap_or_default(),
        },
        _ => match ended.failure(program, timeout) {
            None => Attempt::Delivered,
            Some(error) => Attempt::Transient { error, after: None },
        },
    }
}
