//! The control socket: `hbctl` sends one request line and reads one answer line.
//!
//! The socket is mode 0660 so only root and the socket's group can control the server.
//! Connections are bounded in number and time; a malformed request gets an error answer.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hb_ipc::codec::{CTL_MAX_LINE, encode_line};
use hb_ipc::ctl::{CtlRequest, CtlResponse};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::sync::{Semaphore, mpsc, oneshot};

/// A request and where its answer goes.
pub type CtlCall = (CtlRequest, oneshot::Sender<CtlResponse>);

const MAX_CONNECTIONS: usize = 8;
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Binds the control socket, replacing a stale one but never a live server's.
pub fn bind(path: &Path) -> anyhow::Result<StdUnixListener> {
    use anyhow::Context;
    use std::os::unix::fs::FileTypeExt;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            anyhow::bail!(
                "{} exists and is not a socket; refusing to replace it (control_socket)",
                path.display()
            );
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "another hbsupervisor is running: {} answers (control_socket)",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove stale {}", path.display()))?;
    }
    // Created 0660 from the start: a chmod after bind would leave a window in which anyone
    // could connect. Called before any thread exists, so the process-wide umask is ours.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o117));
    let bound = StdUnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener =
        bound.with_context(|| format!("cannot bind {} (control_socket)", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("cannot chmod {}", path.display()))?;
    Ok(listener)
}

/// Accepts connections and forwards each request to the supervisor's loop.
pub fn serve(listener: StdUnixListener, calls: mpsc::Sender<CtlCall>) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = UnixListener::from_std(listener)?;
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "Control socket accept failed.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                tracing::warn!("Too many control connections; refusing one.");
                continue;
            };
            let calls = calls.clone();
            tokio::spawn(async move {
                let _permit = permit;
                if tokio::time::timeout(IO_TIMEOUT, handle(stream, calls))
                    .await
                    .is_err()
                {
                    tracing::debug!("Control connection timed out.");
                }
            });
        }
    });
    Ok(())
}

async fn handle(stream: tokio::net::UnixStream, calls: mpsc::Sender<CtlCall>) {
    let (read, mut write) = stream.into_split();
    let mut line = Vec::new();
    let mut reader = tokio::io::BufReader::new(read).take(CTL_MAX_LINE as u64 + 1);
    let response = match reader.read_until(b'\n', &mut line).await {
        Err(e) => CtlResponse::Error {
            message: format!("read: {e}"),
        },
        Ok(_) if line.len() > CTL_MAX_LINE => CtlResponse::Error {
            message: "request too long".into(),
        },
        Ok(_) => match serde_json::from_slice::<CtlRequest>(&line) {
            Err(e) => CtlResponse::Error {
                message: format!("bad request: {e}"),
            },
            Ok(request) => {
                let (tx, rx) = oneshot::channel();
                if calls.send((request, tx)).await.is_err() {
                    CtlResponse::Error {
                        message: "shutting down".into(),
                    }
                } else {
                    rx.await.unwrap_or(CtlResponse::Error {
                        message: "no answer".into(),
                    })
                }
            }
        },
    };
    if let Ok(out) = encode_line(&response, usize::MAX) {
        let _ = write.write_all(&out).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("hb-ctl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn bind_replaces_a_stale_socket_but_nothing_else() {
        let dir = scratch("bind");
        let path = dir.join("hb.sock");
        let first = bind(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o660
        );
        // A live server answers: refuse.
        assert!(
            bind(&path)
                .unwrap_err()
                .to_string()
                .contains("another hbsupervisor")
        );
        drop(first);
        // Stale: replaced.
        let _again = bind(&path).unwrap();
        // A regular file (a typo naming the config, say) is never removed.
        let file = dir.join("hb.yaml");
        std::fs::write(&file, "keep me").unwrap();
        assert!(
            bind(&file)
                .unwrap_err()
                .to_string()
                .contains("not a socket")
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    }
}
