//! Where the server keeps its state, journal, socket, pid and log: defaults by whether it
//! runs as root, and every path absolute.

use std::path::{Path, PathBuf};

use super::Report;
use crate::config::File;

/// The paths, defaults applied.
pub(super) struct Paths {
    pub state_dir: PathBuf,
    pub journal_dir: PathBuf,
    pub control_socket: PathBuf,
    pub pidfile: PathBuf,
    pub logfile: PathBuf,
    pub chroot_dir: PathBuf,
}

pub(super) fn resolve(file: &File, root: bool, err: &mut Report<'_>) -> Paths {
    if let Some(name) = &file.journal_file
        && (name.is_empty() || name.contains('/') || name == "." || name == "..")
    {
        err(
            "journal_file",
            format!("{name:?} must be a plain file name"),
        );
    }
    let state_dir = match &file.state_dir {
        Some(dir) => dir.clone(),
        None if root => PathBuf::from("/var/lib/hb"),
        None => user_state_dir(),
    };
    let run_dir = if root && file.state_dir.is_none() {
        PathBuf::from("/run/hb")
    } else {
        state_dir.clone()
    };
    let journal_dir = file
        .journal_dir
        .clone()
        .unwrap_or_else(|| state_dir.join("journal"));
    let control_socket = file
        .control_socket
        .clone()
        .unwrap_or_else(|| run_dir.join("hb.sock"));
    let pidfile = file
        .pidfile
        .clone()
        .unwrap_or_else(|| run_dir.join("hbsupervisor.pid"));
    let logfile = match &file.logfile {
        Some(path) => path.clone(),
        None if root => PathBuf::from("/var/log/hb/hb.log"),
        None => state_dir.join("hb.log"),
    };
    let chroot_dir = file
        .chroot_dir
        .clone()
        .unwrap_or_else(|| run_dir.join("empty"));
    for (key, path) in [
        ("state_dir", Some(&state_dir)),
        ("journal_dir", Some(&journal_dir)),
        ("control_socket", Some(&control_socket)),
        ("pidfile", Some(&pidfile)),
        ("logfile", Some(&logfile)),
        ("chroot_dir", Some(&chroot_dir)),
        ("libexec_dir", file.libexec_dir.as_ref()),
        ("nsupdate_bin", file.nsupdate_bin.as_ref()),
        ("rndc_key", file.rndc_key.as_ref()),
    ] {
        if let Some(path) = path
            && !path.is_absolute()
        {
            err(key, format!("{} must be an absolute path", path.display()));
        }
    }
    Paths {
        state_dir,
        journal_dir,
        control_socket,
        pidfile,
        logfile,
        chroot_dir,
    }
}

/// `$XDG_STATE_HOME/hb`, else `~/.local/state/hb`, else a directory under /tmp named by uid.
pub fn user_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| Path::new(d).is_absolute()) {
        return PathBuf::from(dir).join("hb");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| Path::new(d).is_absolute()) {
        return PathBuf::from(home).join(".local/state/hb");
    }
    PathBuf::from(format!("/tmp/hb-{}", nix::unistd::getuid()))
}
