//! Privilege separation, child side: the fixed sequence every role runs in its synchronous
//! `main`, before any thread or async runtime exists.
//!
//! Order (see docs/SECURITY.md): chroot + chdir -> setgroups -> setresgid -> setresuid ->
//! verify root cannot be regained -> no_new_privs -> Landlock -> write probes. Not root means
//! unprivileged mode: no user change and no chroot, but no_new_privs and Landlock still apply,
//! since neither needs privilege.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use hb_ipc::control::Confinement;
use landlock::{
    ABI, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, path_beneath_rules,
};
use nix::unistd::{Gid, Uid};

/// What a role is confined to; built by the supervisor, passed on the child's command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Target uid and gid; `None` in unprivileged mode.
    pub ids: Option<(u32, u32)>,
    /// Directory to chroot into.
    pub chroot: Option<PathBuf>,
    /// Directories the role may write below; everything else is read-only to it.
    pub writable: Vec<PathBuf>,
}

impl Plan {
    /// Command-line arguments that carry the plan to the child.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some((uid, gid)) = self.ids {
            args.push(format!("--uid={uid}"));
            args.push(format!("--gid={gid}"));
        }
        if let Some(dir) = &self.chroot {
            args.push(format!("--chroot={}", dir.display()));
        }
        for dir in &self.writable {
            args.push(format!("--writable={}", dir.display()));
        }
        args
    }
}

/// A step of the sequence failed; the child must not run.
#[derive(Debug, thiserror::Error)]
#[error("privilege drop failed at {step}: {reason}")]
pub struct PrivdropError {
    /// The step that failed.
    pub step: &'static str,
    /// Why.
    pub reason: String,
}

fn fail(step: &'static str, reason: impl ToString) -> PrivdropError {
    PrivdropError {
        step,
        reason: reason.to_string(),
    }
}

/// Runs the whole sequence and reports what it achieved.
pub fn confine(plan: &Plan) -> Result<Confinement, PrivdropError> {
    let root = nix::unistd::geteuid().is_root();
    let mut chrooted = None;
    if root {
        let (uid, gid) = plan
            .ids
            .ok_or_else(|| fail("plan", "running as root without a target user"))?;
        if uid == 0 || gid == 0 {
            return Err(fail("plan", "refusing to run a child as uid or gid 0"));
        }
        if let Some(dir) = &plan.chroot {
            check_chroot_dir(dir)?;
            nix::unistd::chroot(dir)
                .map_err(|e| fail("chroot", format!("{}: {e}", dir.display())))?;
            nix::unistd::chdir("/").map_err(|e| fail("chdir", e))?;
            chrooted = Some(dir.display().to_string());
        }
        let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
        nix::unistd::setgroups(&[gid]).map_err(|e| fail("setgroups", e))?;
        nix::unistd::setresgid(gid, gid, gid).map_err(|e| fail("setresgid", e))?;
        nix::unistd::setresuid(uid, uid, uid).map_err(|e| fail("setresuid", e))?;
        verify_ids(uid, gid)?;
    }
    nix::sys::prctl::set_no_new_privs().map_err(|e| fail("no_new_privs", e))?;
    let no_new_privs = nix::sys::prctl::get_no_new_privs().map_err(|e| fail("no_new_privs", e))?;
    // Inside a chroot the writable paths would name other files; chrooted roles get none.
    let writable: Vec<PathBuf> = if chrooted.is_some() {
        Vec::new()
    } else {
        plan.writable.clone()
    };
    let landlock = restrict_writes(&writable)?;
    let escaped = probe_writes(&writable, landlock != "none");
    Ok(Confinement {
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        chroot: chrooted,
        no_new_privs,
        landlock: landlock.into(),
        writable: writable.iter().map(|p| p.display().to_string()).collect(),
        escaped,
    })
}

/// Like ntpd: a chroot is only a jail if the child cannot write into it.
fn check_chroot_dir(dir: &Path) -> Result<(), PrivdropError> {
    let meta =
        std::fs::metadata(dir).map_err(|e| fail("chroot", format!("{}: {e}", dir.display())))?;
    if !meta.is_dir() {
        return Err(fail(
            "chroot",
            format!("{} is not a directory", dir.display()),
        ));
    }
    if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(fail(
            "chroot",
            format!(
                "{} must be owned by root and not group or world writable",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// OpenSSH's `permanently_set_uid` check: the ids stuck, and root cannot be regained.
fn verify_ids(uid: Uid, gid: Gid) -> Result<(), PrivdropError> {
    let r = nix::unistd::getresuid().map_err(|e| fail("verify", e))?;
    let g = nix::unistd::getresgid().map_err(|e| fail("verify", e))?;
    if (r.real, r.effective, r.saved) != (uid, uid, uid)
        || (g.real, g.effective, g.saved) != (gid, gid, gid)
    {
        return Err(fail("verify", "ids did not change as asked"));
    }
    if nix::unistd::setuid(Uid::from_raw(0)).is_ok()
        || nix::unistd::seteuid(Uid::from_raw(0)).is_ok()
    {
        return Err(fail("verify", "root could be regained after setresuid"));
    }
    if nix::unistd::setgid(Gid::from_raw(0)).is_ok() {
        return Err(fail("verify", "gid 0 could be regained after setresgid"));
    }
    Ok(())
}

/// Landlock: every write-type access is denied except below `writable`. Reads stay governed
/// by ordinary permissions (roles that read nothing are chrooted instead).
fn restrict_writes(writable: &[PathBuf]) -> Result<&'static str, PrivdropError> {
    let abi = ABI::V5;
    let status = Ruleset::default()
        .handle_access(AccessFs::from_write(abi))
        .and_then(|r| r.create())
        // /dev/null too: programs a role runs (an exec channel, nsupdate) send output there.
        .and_then(|r| {
            let paths = writable
                .iter()
                .map(PathBuf::as_path)
                .chain([Path::new("/dev/null")]);
            r.add_rules(path_beneath_rules(paths, AccessFs::from_write(abi)))
        })
        .and_then(|r| r.restrict_self())
        .map_err(|e| fail("landlock", e))?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => "full",
        RulesetStatus::PartiallyEnforced => "partial",
        RulesetStatus::NotEnforced => "none",
    })
}

/// Tries to create a file where the role must not write; every success is reported (and the
/// file removed). Checked from inside the process, so it tests the real confinement.
fn probe_writes(writable: &[PathBuf], landlocked: bool) -> Vec<String> {
    if !landlocked {
        // Old kernels and some containers lack Landlock: world-writable directories stay
        // writable, which the report's `landlock: none` shows; refusing to run would leave
        // the operator with no monitoring at all.
        tracing::warn!(
            "Landlock is not available: this process can still write to world-writable directories."
        );
    }
    let mut escaped = Vec::new();
    for dir in ["/", "/tmp", "/var/tmp", "/dev/shm", "/etc"] {
        let dir = Path::new(dir);
        let world_writable = dir != Path::new("/") && dir != Path::new("/etc");
        if writable.iter().any(|w| dir.starts_with(w)) || (world_writable && !landlocked) {
            continue;
        }
        let probe = dir.join(format!(".hb-write-probe-{}", std::process::id()));
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe);
        if created.is_ok() {
            let _ = std::fs::remove_file(&probe);
            escaped.push(dir.display().to_string());
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_round_trips_through_args() {
        let plan = Plan {
            ids: Some((61001, 61002)),
            chroot: Some("/var/empty".into()),
            writable: vec!["/var/lib/hb".into(), "/var/log/hb".into()],
        };
        assert_eq!(
            plan.to_args(),
            [
                "--uid=61001",
                "--gid=61002",
                "--chroot=/var/empty",
                "--writable=/var/lib/hb",
                "--writable=/var/log/hb"
            ]
        );
    }
}
