//! Running an outside program for a role (an `exec` channel, nsupdate): never through a
//! shell, with only the environment given, input on stdin, output read through pipes (a
//! confined role may open nothing for writing, not even /dev/null on every kernel) and kept
//! short, and a timeout that kills the program's whole process group, so nothing it started
//! outlives it.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// Bytes of each output stream kept (the end, which is where errors are).
pub const OUTPUT_KEPT: usize = 300;

/// How a run ended.
#[derive(Debug)]
pub enum Ended {
    /// It exited (or was killed by a signal) by itself.
    Exited {
        /// Its status.
        status: ExitStatus,
        /// The end of its stderr, or of its stdout when stderr was empty, trimmed.
        said: String,
    },
    /// It could not be started.
    CannotStart(std::io::ErrorKind),
    /// Waiting for it failed.
    Lost(std::io::ErrorKind),
    /// It took longer than the timeout and was killed with its process group.
    TimedOut,
}

impl Ended {
    /// Whether it exited with status 0.
    pub fn success(&self) -> bool {
        matches!(self, Ended::Exited { status, .. } if status.success())
    }

    /// What went wrong, for a log line or an event (`None` on success).
    pub fn failure(&self, program: &Path, timeout: Duration) -> Option<String> {
        let program = program.display();
        match self {
            Ended::Exited { status, .. } if status.success() => None,
            Ended::Exited { status, said } if said.is_empty() => {
                Some(format!("{program} ended with {status}"))
            }
            Ended::Exited { status, said } => {
                Some(format!("{program} ended with {status}: {said}"))
            }
            Ended::CannotStart(kind) => Some(format!("cannot run {program}: {kind}")),
            Ended::Lost(kind) => Some(format!("waiting for {program}: {kind}")),
            Ended::TimedOut => Some(format!(
                "{program} took longer than {} s and was killed",
                timeout.as_secs_f64()
            )),
        }
    }
}

/// Runs `program` with `args` and exactly `env`, writes `input` to its stdin, and waits at
/// most `timeout`.
pub async fn run<A: AsRef<OsStr>>(
    program: &Path,
    args: &[A],
    env: &[(&str, &str)],
    input: &[u8],
    timeout: Duration,
) -> Ended {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout kills whatever it started too.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Ended::CannotStart(e.kind()),
    };
    let pid = child.id();
    let stdin = child.stdin.take();
    let input = input.to_vec();
    tokio::spawn(async move {
        if let Some(mut stdin) = stdin {
            // A program that does not read its input is fine.
            let _ = stdin.write_all(&input).await;
        }
    });
    // Both streams are read to the end (so it never blocks on a full pipe).
    let stdout = child.stdout.take().map(|out| tokio::spawn(tail(out)));
    let stderr = child.stderr.take().map(|err| tokio::spawn(tail(err)));
    let waited = tokio::time::timeout(timeout, child.wait()).await;
    let status = match waited {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => return Ended::Lost(e.kind()),
        Err(_) => {
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.wait().await;
            return Ended::TimedOut;
        }
    };
    // A grandchild may hold the pipes open after the program exited: its output is not
    // waited for beyond a moment.
    let mut said = String::new();
    for task in [stderr, stdout].into_iter().flatten() {
        if let Ok(Ok(text)) = tokio::time::timeout(Duration::from_millis(200), task).await
            && said.is_empty()
        {
            said = text;
        }
    }
    Ended::Exited { status, said }
}

/// The last [`OUTPUT_KEPT`] bytes of a stream, trimmed.
async fn tail(mut stream: impl AsyncRead + Unpin) -> String {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > 2 * OUTPUT_KEPT {
            kept.drain(..kept.len() - OUTPUT_KEPT);
        }
    }
    let start = kept.len().saturating_sub(OUTPUT_KEPT);
    String::from_utf8_lossy(&kept[start..]).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn exit_status_output_and_input_are_seen() {
        let sh = Path::new("/bin/sh");
        let ok = run(
            sh,
            &["-c", "read x; test \"$x\" = hello"],
            &[],
            b"hello\n",
            SECOND * 5,
        )
        .await;
        assert!(ok.success(), "{ok:?}");
        let failed = run(
            sh,
            &["-c", "echo out; echo bad >&2; exit 3"],
            &[],
            b"",
            SECOND * 5,
        )
        .await;
        let why = failed.failure(sh, SECOND).expect("a failure");
        assert!(
            why.contains("exit status: 3") && why.ends_with(": bad"),
            "{why}"
        );
        // Only stdout: it explains.
        let out = run(sh, &["-c", "echo only-out; exit 1"], &[], b"", SECOND * 5).await;
        assert!(out.failure(sh, SECOND).unwrap().ends_with(": only-out"));
        // The environment is exactly what was given.
        let env = run(
            sh,
            &["-c", "test \"$HB_X\" = 1 && test -z \"$HOME\""],
            &[("HB_X", "1")],
            b"",
            SECOND * 5,
        )
        .await;
        assert!(env.success(), "{env:?}");
        let missing = run(
            Path::new("/nonexistent/prog"),
            &[] as &[&str],
            &[],
            b"",
            SECOND,
        )
        .await;
        assert!(matches!(
            missing,
            Ended::CannotStart(std::io::ErrorKind::NotFound)
        ));
    }

    #[tokio::test]
    async fn a_hanging_program_is_killed_with_what_it_started() {
        let marker = format!("{}", 400_000 + std::process::id() % 100_000);
        let started = std::time::Instant::now();
        let ended = run(
            Path::new("/bin/sh"),
            &["-c", &format!("sleep {marker} & sleep {marker}; wait")],
            &[],
            b"",
            Duration::from_millis(300),
        )
        .await;
        assert!(matches!(ended, Ended::TimedOut), "{ended:?}");
        assert!(started.elapsed() < SECOND * 5);
        std::thread::sleep(Duration::from_millis(200));
        let left: Vec<_> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .filter(|c| String::from_utf8_lossy(c).contains(&marker))
            .collect();
        assert!(left.is_empty(), "{} processes survived", left.len());
    }
}
