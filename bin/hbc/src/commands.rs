//! Running the commands a server asks for: only those the client's own `commands:` map names,
//! as an argument vector (never through a shell), with a cleared environment, in their own
//! process group, with a timeout after which the whole group is killed, and bounded output.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Output kept and reported, bytes per stream.
const MAX_OUTPUT: usize = 8 * 1024;

/// How a command ended.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    /// Exit status; `None` when it could not start, timed out or was killed by a signal.
    pub exit: Option<i32>,
    /// Output (stdout then stderr), or why it did not run.
    pub text: String,
}

/// Reads a pipe to its end, keeping the first [`MAX_OUTPUT`] bytes and discarding the rest,
/// so a chatty command never blocks on a full pipe.
async fn drain(pipe: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut pipe) = pipe else { return kept };
    let mut chunk = [0u8; 4096];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
}

/// Runs `argv` with `timeout`.
pub async fn run(argv: &[String], timeout: Duration) -> Outcome {
    let Some((program, args)) = argv.split_first() else {
        return Outcome {
            exit: None,
            text: "empty command".into(),
        };
    };
    let child = tokio::process::Command::new(program)
        .args(args)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            return Outcome {
                exit: None,
                text: format!("cannot run {program}: {e}"),
            };
        }
    };
    let group = child.id().map(|pid| nix::unistd::Pid::from_raw(pid as i32));
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let all = async { tokio::join!(drain(stdout), drain(stderr), child.wait()) };
    let outcome = tokio::time::timeout(timeout, all).await;
    // Whatever the command started in its group goes with it.
    if let Some(group) = group {
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    }
    match outcome {
        Ok((out, err, status)) => {
            let mut text = String::from_utf8_lossy(&out).into_owned();
            if out.len() >= MAX_OUTPUT {
                text.push_str("\n[output truncated]\n");
            }
            text.push_str(&String::from_utf8_lossy(&err));
            if err.len() >= MAX_OUTPUT {
                text.push_str("\n[output truncated]\n");
            }
            let exit = status.ok().and_then(|s| s.code());
            Outcome { exit, text }
        }
        Err(_) => Outcome {
            exit: None,
            text: format!("timed out after {timeout:?}; killed"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[tokio::test]
    async fn runs_without_a_shell_and_reports() {
        let o = run(&argv(&["/bin/echo", "a; rm -rf /"]), Duration::from_secs(5)).await;
        assert_eq!(
            o,
            Outcome {
                exit: Some(0),
                text: "a; rm -rf /\n".into()
            }
        );
        let o = run(
            &argv(&["/bin/sh", "-c", "echo oops >&2; exit 3"]),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(
            o,
            Outcome {
                exit: Some(3),
                text: "oops\n".into()
            }
        );
    }

    #[tokio::test]
    async fn lots_of_output_is_cut_not_a_timeout() {
        let o = run(
            &argv(&[
                "/bin/sh",
                "-c",
                "head -c 1000000 /dev/zero | tr '\\0' x; head -c 200000 /dev/zero | tr '\\0' y >&2",
            ]),
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(o.exit, Some(0), "{}", &o.text[..100]);
        assert!(o.text.len() < 3 * MAX_OUTPUT);
        assert!(o.text.contains("[output truncated]") && o.text.contains('y'));
    }

    #[tokio::test]
    async fn timeouts_kill_the_whole_group() {
        let marker = std::env::temp_dir().join(format!("hbc-grandchild-{}", std::process::id()));
        let script = format!("(sleep 1; touch {}) & sleep 10", marker.display());
        let o = run(
            &argv(&["/bin/sh", "-c", &script]),
            Duration::from_millis(300),
        )
        .await;
        assert_eq!(o.exit, None);
        assert!(o.text.contains("timed out"));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!marker.exists(), "a grandchild outlived the timeout");
        let o = run(&argv(&["/nonexistent/x"]), Duration::from_secs(1)).await;
        assert_eq!(o.exit, None);
        assert!(o.text.contains("cannot run"));
    }
}
