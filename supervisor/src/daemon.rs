//! Detaching from the terminal and the pid file. Runs before any runtime or thread exists:
//! forking a process with threads keeps only the forking thread.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Forks into the background, starts a new session, and points stdin at /dev/null and
/// stdout and stderr at `logfile`, which children inherit.
pub fn detach(logfile: &Path) -> anyhow::Result<()> {
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
    nix::unistd::daemon(false, true).context("cannot detach")?;
    nix::unistd::dup2_stdin(&null).context("dup2 stdin")?;
    nix::unistd::dup2_stdout(&log).context("dup2 stdout")?;
    nix::unistd::dup2_stderr(&log).context("dup2 stderr")?;
    Ok(())
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
