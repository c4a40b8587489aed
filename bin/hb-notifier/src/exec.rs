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

/// Bytes of a failing program's stderr kept for the error.
const STDERR_KEPT: usize = 300;

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
        // Pipes, not /dev/null: the notifier may open nothing for writing (Landlock).
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
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
    // Its output is read (so it never blocks on a full pipe); the end of stderr explains a
    // failure.
    let stdout = child.stdout.take();
    tokio::spawn(async move {
        if let Some(mut out) = stdout {
            let _ = tokio::io::copy(&mut out, &mut tokio::io::sink()).await;
        }
    });
    let stderr_tail = child.stderr.take().map(|mut err| {
        tokio::spawn(async move {
            let mut tail = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = tokio::io::AsyncReadExt::read(&mut err, &mut buf).await {
                if n == 0 {
                    break;
                }
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > 2 * STDERR_KEPT {
                    tail.drain(..tail.len() - STDERR_KEPT);
                }
            }
            let start = tail.len().saturating_sub(STDERR_KEPT);
            String::from_utf8_lossy(&tail[start..]).trim().to_string()
        })
    });
    let pid = child.id();
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Attempt::Delivered,
        Ok(Ok(status)) => {
            let said = match stderr_tail {
                Some(task) => task.await.unwrap_or_default(),
                None => String::new(),
            };
            let said = if said.is_empty() {
                String::new()
            } else {
                format!(": {said}")
            };
            Attempt::Transient {
                error: format!("{program} ended with {status}{said}"),
                after: None,
            }
        }
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
