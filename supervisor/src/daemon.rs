//! Detaching from the terminal and the pid file. Runs before any runtime or thread exists:
//! forking a process with threads keeps only the forking thread.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

use hb_child::sys::{Forked, fork_with_pipe};

/// Which process continues after [`detach`].
#[derive(Debug)]
pub enum Detached {
    /// The process started from the terminal: exit now, successfully if the daemon reported
    /// ready (so scripts that start it find the pid file and socket in place).
    Parent {
        /// Whether the daemon said it was ready before it closed the pipe.
        ready: bool,
    },
    /// The daemon: carry on, and call [`Readiness::ready`] once the pid file is written.
    Daemon(Readiness),
}

/// The daemon's end of the readiness pipe; dropping it unsaid tells the parent "failed".
#[derive(Debug)]
pub struct Readiness(OwnedFd);

impl Readiness {
    /// Tells the waiting parent that start-up succeeded.
    pub fn ready(self) {
        let mut pipe = std::fs::File::from(self.0);
        let _ = pipe.write_all(b"1");
    }
}

/// Forks into the background: the child starts a new session, changes to `/`, and points
/// stdin at /dev/null and stdout and stderr at `logfile` (which its children inherit); the
/// parent waits until the child reports ready or fails.
pub fn detach(logfile: &Path) -> anyhow::Result<Detached> {
    if let Some(dir) = logfile.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(logfile)
        .with_context(|| format!("cannot open {} (logfile)", logfile.display()))?;
    let null = std::fs::File::open("/dev/null").context("cannot open /dev/null")?;
    match fork_with_pipe().context("cannot fork")? {
        Forked::Parent(read) => {
            let mut answer = Vec::new();
            let _ = std::fs::File::from(read).read_to_end(&mut answer);
            Ok(Detached::Parent {
                ready: answer == b"1",
            })
        }
        Forked::Child(write) => {
            nix::unistd::setsid().context("setsid")?;
            nix::unistd::chdir("/").context("chdir /")?;
            nix::unistd::dup2_stdin(&null).context("dup2 stdin")?;
            nix::unistd::dup2_stdout(&log).context("dup2 stdout")?;
            nix::unistd::dup2_stderr(&log).context("dup2 stderr")?;
            Ok(Detached::Daemon(Readiness(write)))
        }
    }
}

/// A pid file that is removed when dropped.
#[derive(Debug)]
pub struct Pidfile {
    path: PathBuf,
}

impl Pidfile {
    /// Writes this process's pid, refusing if the file names a live process.
    pub fn create(path: &Path) -> anyhow::Result<Pidfile> {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(pid) = text.trim().parse::<i32>()
            && pid > 0
            && pid as u32 != std::process::id()
            && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        {
            anyhow::bail!(
                "{} names running process {pid}; is hbsupervisor already running?",
                path.display()
            );
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let tmp = path.with_extension("tmp");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)
            .with_context(|| format!("cannot write {} (pidfile)", tmp.display()))?;
        writeln!(file, "{}", std::process::id())?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot write {} (pidfile)", path.display()))?;
        Ok(Pidfile {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
