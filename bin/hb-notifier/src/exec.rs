//! The `exec` channel: runs the configured program (never through a shell) with the
//! notification in `HB_*` environment variables and as the webhook's JSON on stdin. Exit 0
//! is delivered; another exit, a signal or the timeout (which kills its process group) is
//! tried again.

use std::process::Stdio;
use std::time::Duration;

use hb_ipc::edge::Notification;
use hb_notify::message::Message;
use hb_notify::request::webhook_body;
use hb_notify::retry::Attempt;
use tokio::io::AsyncWriteExt;

/// Runs `argv` for notification `n`.
pub async fn run(argv: &[String], n: &Notification, m: &Message, timeout: Duration) -> Attempt {
    let Some((program, args)) = argv.split_first() else {
        return Attempt::Permanent {
            error: "no command".into(),
        };
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HB_ID", n.id.to_string())
        .env("HB_ALERT", &n.alert)
        .env("HB_KIND", &n.kind)
        .env("HB_LEVEL", &n.level)
        .env("HB_HOST", &n.host)
        .env("HB_TITLE", &m.title)
        .env("HB_TEXT", &n.text)
        .env("HB_LINK", m.link.as_deref().unwrap_or(""))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group, so a timeout kills whatever it started too.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Attempt::Permanent {
                error: format!("cannot run {program}: {}", e.kind()),
            };
        }
    };
    let body = serde_json::to_vec(&webhook_body(n, m)).unwrap_or_default();
    if let Some(mut stdin) = child.stdin.take() {
        // A program that does not read its input is fine.
        let _ = stdin.write_all(&body).await;
    }
    let pid = child.id();
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Attempt::Delivered,
        Ok(Ok(status)) => Attempt::Transient {
            error: format!("{program} ended with {status}"),
            after: None,
        },
        Ok(Err(e)) => Attempt::Transient {
            error: format!("waiting for {program}: {}", e.kind()),
            after: None,
        },
        Err(_) => {
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.wait().await;
            Attempt::Transient {
                error: format!("{program} took longer than {} s", timeout.as_secs_f64()),
                after: None,
            }
        }
    }
}
