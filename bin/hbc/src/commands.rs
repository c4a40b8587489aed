//! Running the commands a server asks for: only those the client's own `commands:` map names,
//! as an argument vector (never through a shell), with a cleared environment, in their own
//! process group, with a timeout after which the whole group is killed, and bounded output.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Output kept and reported, bytes per stream.
pub const MAX_OUTPUT: usize = 8 * 1024;

/// How a command ended.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    /// Exit status; `None` when it could not start, timed out or was killed by a signal.
    pub exit: Option<i32>,
    /// Output (stdout then stderr), or why it did not run.
    pub text: String,
}

/// Reads a pipe to its end, keeping the first `max` bytes and discarding the rest, so a
/// chatty command never blocks on a full pipe.
async fn drain(pipe: Option<impl AsyncRead + Unpin>, max: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut pipe) = pipe else { return kept };
    let mut chunk = [0u8; 4096];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = max.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
}

/// How a program ended, in full (for plugins that read stdout and stderr apart).
#[derive(Debug, Default, PartialEq)]
pub struct Execution {
    /// Exit status, if it exited.
    pub exit: Option<i32>,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// Its output, each cut at [`MAX_OUTPUT`] bytes.
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Killed at the timeout.
    pub timed_out: bool,
    /// Why it did not start.
    pub error: Option<String>,
}

/// Runs `argv` with `timeout` and `env` (on top of a cleared environment with a plain PATH).
pub async fn execute(argv: &[String], timeout: Duration, env: &[(&str, &str)]) -> Execution {
    execute_bounded(argv, timeout, env, MAX_OUTPUT).await
}

/// As [`execute`], keeping up to `max_output` bytes of each stream.
pub async fn execute_bounded(
    argv: &[String],
    timeout: Duration,
    env: &[(&str, &str)],
    max_output: usize,
) -> Execution {
    let Some((program, args)) = argv.split_first() else {
        return Execution {
            error: Some("empty command".into()),
            ..Execution::default()
        };
    };
    let child = tokio::process::Command::new(program)
        .args(args)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            return Execution {
                error: Some(format!("cannot run {program}: {e}")),
                ..Execution::default()
            };
        }
    };
    let group = child.id().map(|pid| nix::unistd::Pid::from_raw(pid as i32));
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let all = async {
        tokio::join!(
            drain(stdout, max_output),
            drain(stderr, max_output),
            child.wait()
        )
    };
    let outcome = tokio::time::timeout(timeout, all).await;
    // Whatever the command started in its group goes with it.
    if let Some(group) = group {
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    }
    match outcome {
        Ok((stdout, stderr, status)) => {
            use std::os::unix::process::ExitStatusExt;
            let status = status.ok();
            Execution {
                exit: status.and_then(|s| s.code()),
                signal: status.and_then(|s| s.signal()),
                stdout,
                stderr,
                ..Execution::default()
            }
        }
        Err(_) => Execution {
            timed_out: true,
            ..Execution::default()
        },
    }
}

/// Runs `argv` with `timeout`.
pub async fn run(argv: &[String], timeout: Duration) -> Outcome {
    let e = execute(argv, timeout, &[]).await;
    if let Some(error) = e.error {
        return Outcome {
            exit: None,
            text: error,
        };
    }
    if e.timed_out {
        return Outcome {
            exit: None,
            text: format!("timed out after {timeout:?}; killed"),
        };
    }
    let mut text = String::from_utf8_lossy(&e.stdout).into_owned();
    if e.stdout.len() >= MAX_OUTPUT {
        text.push_str("\n[output truncated]\n");
    }
    text.push_str(&String::from_utf8_lossy(&e.stderr));
    if e.stderr.len() >= MAX_OUTPUT {
        text.push_str("\n[output truncated]\n");
    }
    Outcome { exit: e.exit, text }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(std::string::ToString::to_string).collect()
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
