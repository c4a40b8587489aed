//! Running the commands a server asks for: only those the client's own `commands:` map names,
//! as an argument vector (never through a shell), with a cleared environment, a timeout, and
//! bounded output.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

/// Output kept and reported, bytes.
const MAX_OUTPUT: usize = 8 * 1024;

/// How a command ended.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    /// Exit status; `None` when it could not start, timed out or was killed by a signal.
    pub exit: Option<i32>,
    /// Output (stdout then stderr), or why it did not run.
    pub text: String,
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
    let (mut stdout, mut stderr) = (child.stdout.take(), child.stderr.take());
    let collect = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.take(MAX_OUTPUT as u64).read_to_end(&mut out).await;
        }
        if let Some(s) = stderr.as_mut() {
            let _ = s.take(MAX_OUTPUT as u64).read_to_end(&mut err).await;
        }
        let status = child.wait().await;
        (out, err, status)
    };
    match tokio::time::timeout(timeout, collect).await {
        Ok((out, err, status)) => {
            let mut text = String::from_utf8_lossy(&out).into_owned();
            text.push_str(&String::from_utf8_lossy(&err));
            truncate(&mut text);
            let exit = status.ok().and_then(|s| s.code());
            Outcome { exit, text }
        }
        // The future (and with it the child, kill_on_drop) is dropped here.
        Err(_) => Outcome {
            exit: None,
            text: format!("timed out after {timeout:?}; killed"),
        },
    }
}

fn truncate(text: &mut String) {
    if text.len() > MAX_OUTPUT {
        let mut end = MAX_OUTPUT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("\n[output truncated]");
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
    async fn timeouts_and_missing_programs() {
        let o = run(&argv(&["/bin/sleep", "10"]), Duration::from_millis(200)).await;
        assert_eq!(o.exit, None);
        assert!(o.text.contains("timed out"));
        let o = run(&argv(&["/nonexistent/x"]), Duration::from_secs(1)).await;
        assert_eq!(o.exit, None);
        assert!(o.text.contains("cannot run"));
    }
}
