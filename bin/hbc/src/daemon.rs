//! `hbc -d`: detaching from the terminal with the `daemonize` crate, plus a readiness pipe so
//! the command that started hbc exits 0 only once the daemon is up (as before, when hbc used
//! the server's own fork). Runs before any runtime or thread exists: forking a process with
//! threads keeps only the forking thread.

use std::io::{Read, Write};

/// Which process continues after [`detach`].
#[derive(Debug)]
pub enum Detached {
    /// The process started from the terminal: exit now, successfully if the daemon reported
    /// ready.
    Parent {
        /// Whether the daemon said it was ready before its end of the pipe closed.
        ready: bool,
    },
    /// The daemon: carry on, and call [`Readiness::ready`] once started.
    Daemon(Readiness),
}

/// The daemon's end of the readiness pipe; dropping it unsaid tells the parent "failed".
#[derive(Debug)]
pub struct Readiness(std::fs::File);

impl Readiness {
    /// Tells the waiting parent that start-up succeeded.
    pub fn ready(mut self) {
        let _ = self.0.write_all(b"1");
    }
}

/// Forks twice (daemonize: the daemon is no session leader, so it never gets a controlling
/// terminal again), starts a new session, changes to `/`, points the standard streams at
/// /dev/null, and keeps the umask hbc was started with (daemonize would set 027 otherwise;
/// hbc's commands and plugins inherit it). The parent then waits until the daemon reports
/// ready or fails.
pub fn detach() -> anyhow::Result<Detached> {
    let (read, write) = nix::unistd::pipe()?;
    // umask(2) can only be read by setting it; put it straight back.
    let umask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    nix::sys::stat::umask(umask);
    let outcome = daemonize::Daemonize::new()
        .working_directory("/")
        .umask(umask.bits() as u32)
        .execute();
    match outcome {
        daemonize::Outcome::Parent(parent) => {
            drop(write);
            let parent = parent.map_err(|e| anyhow::anyhow!("{e}"))?;
            // The first child exits once the daemon is forked, or fails before that; either
            // way its end of the pipe is closed, and the daemon's closes when it exits.
            let mut answer = Vec::new();
            let _ = std::fs::File::from(read).read_to_end(&mut answer);
            Ok(Detached::Parent {
                ready: parent.first_child_exit_code == 0 && answer == b"1",
            })
        }
        daemonize::Outcome::Child(child) => {
            drop(read);
            match child {
                Ok(_) => Ok(Detached::Daemon(Readiness(std::fs::File::from(write)))),
                // The first child (or the daemon) could not set itself up: it must not run
                // on as a second hbc. Exiting closes its end of the pipe: the parent fails.
                Err(_) => std::process::exit(71),
            }
        }
    }
}
