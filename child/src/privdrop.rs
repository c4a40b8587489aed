//! Privilege separation, child side: the fixed sequence every role runs in its synchronous
//! `main`, before any thread or async runtime exists.
//!
//! Order (see docs/SECURITY.md): chroot + chdir -> setgroups -> setresgid -> setresuid ->
//! verify root cannot be regained -> no_new_privs -> limit writes -> write probes. Not root
//! means unprivileged mode: no user change and no chroot, but no_new_privs and the write
//! limit still apply, since neither needs privilege.
//!
//! The layers each platform has (docs/SECURITY.md has the table):
//! - Linux: `PR_SET_NO_NEW_PRIVS`, and Landlock limits writes to the role's directories.
//! - FreeBSD: `PROC_NO_NEW_PRIVS_CTL` (FreeBSD 14 and later; older kernels refuse it and the
//!   report says so). Writes are limited by the ids and the chroot alone.
//! - OpenBSD: `pledge` with the role's promises, and `unveil` limiting writes as Landlock does.
//! - NetBSD and the rest: chroot and the ids alone (NetBSD has no setresuid: setgid and setuid,
//!   which as root set the real, effective and saved ids all three).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use hb_ipc::Role;
use hb_ipc::control::Confinement;
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

/// Runs the whole sequence for `role` and reports what it achieved.
pub fn confine(plan: &Plan, role: Role) -> Result<Confinement, PrivdropError> {
    let root = nix::unistd::geteuid().is_root();
    let mut chrooted = None;
    let mut layers = Vec::new();
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
            layers.push(format!("chroot {}", dir.display()));
        }
        let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
        nix::unistd::setgroups(&[gid]).map_err(|e| fail("setgroups", e))?;
        set_ids(uid, gid)?;
        verify_ids(uid, gid)?;
        layers.push(format!("uid {uid} gid {gid}"));
    }
    let no_new_privs = no_new_privs()?;
    if let Some(how) = no_new_privs {
        layers.push(format!("no_new_privs ({how})"));
    }
    // Inside a chroot the writable paths would name other files; chrooted roles get none.
    let writable: Vec<PathBuf> = if chrooted.is_some() {
        Vec::new()
    } else {
        plan.writable.clone()
    };
    let write_limit = restrict_writes(&writable)?;
    if write_limit.enforced() {
        layers.push(write_limit.to_string());
    }
    let escaped = probe_writes(&writable, write_limit.enforced());
    // Last: the probes create files, which most roles' promises do not allow (OpenBSD kills
    // a process that breaks its pledge).
    if let Some(promises) = restrict_calls(role)? {
        layers.push(format!("pledge \"{promises}\""));
    }
    if layers.is_empty() {
        layers.push("none".into());
    }
    Ok(Confinement {
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        chroot: chrooted,
        no_new_privs: no_new_privs.is_some(),
        landlock: write_limit.landlock().into(),
        writable: writable.iter().map(|p| p.display().to_string()).collect(),
        escaped,
        layers,
    })
}

/// Sets the real, effective and saved ids at once.
#[cfg(not(target_os = "netbsd"))]
fn set_ids(uid: Uid, gid: Gid) -> Result<(), PrivdropError> {
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| fail("setresgid", e))?;
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| fail("setresuid", e))
}

/// NetBSD has no setresuid; as root, setgid and setuid set all three ids.
#[cfg(target_os = "netbsd")]
fn set_ids(uid: Uid, gid: Gid) -> Result<(), PrivdropError> {
    nix::unistd::setgid(gid).map_err(|e| fail("setgid", e))?;
    nix::unistd::setuid(uid).map_err(|e| fail("setuid", e))
}

/// Asks the kernel to refuse new privileges on exec (set-id programs, file capabilities);
/// names the call that did it, or `None` where the platform has none.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn no_new_privs() -> Result<Option<&'static str>, PrivdropError> {
    nix::sys::prctl::set_no_new_privs().map_err(|e| fail("no_new_privs", e))?;
    let set = nix::sys::prctl::get_no_new_privs().map_err(|e| fail("no_new_privs", e))?;
    Ok(set.then_some("prctl"))
}

#[cfg(target_os = "freebsd")]
fn no_new_privs() -> Result<Option<&'static str>, PrivdropError> {
    match crate::sys::proc_no_new_privs() {
        Ok(()) => Ok(Some("procctl")),
        // FreeBSD before 14 does not know the request: the ids and the chroot still hold.
        Err(e) => {
            tracing::warn!(
                "procctl(PROC_NO_NEW_PRIVS_CTL) refused ({e}): this kernel predates it."
            );
            Ok(None)
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn no_new_privs() -> Result<Option<&'static str>, PrivdropError> {
    Ok(None)
}

/// How writes outside a role's directories are refused.
// Each platform constructs only its own variants.
#[allow(dead_code)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriteLimit {
    /// Landlock, with its status: `full`, `partial` or `none` (an old kernel).
    Landlock(&'static str),
    /// OpenBSD's unveil.
    Unveil,
    /// Nothing but the ids and the chroot.
    Absent,
}

impl WriteLimit {
    fn enforced(self) -> bool {
        !matches!(self, WriteLimit::Landlock("none") | WriteLimit::Absent)
    }

    /// The report's `landlock` field.
    fn landlock(self) -> &'static str {
        match self {
            WriteLimit::Landlock(status) => status,
            WriteLimit::Unveil | WriteLimit::Absent => "none",
        }
    }
}

impl std::fmt::Display for WriteLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteLimit::Landlock(status) => write!(f, "landlock {status}"),
            WriteLimit::Unveil => f.write_str("unveil"),
            WriteLimit::Absent => f.write_str("no write limit"),
        }
    }
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
    if current_ids()? != ([uid; 3], [gid; 3]) {
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

/// Real, effective and saved uid, and the same of gid.
#[cfg(not(target_os = "netbsd"))]
fn current_ids() -> Result<([Uid; 3], [Gid; 3]), PrivdropError> {
    let r = nix::unistd::getresuid().map_err(|e| fail("verify", e))?;
    let g = nix::unistd::getresgid().map_err(|e| fail("verify", e))?;
    Ok((
        [r.real, r.effective, r.saved],
        [g.real, g.effective, g.saved],
    ))
}

/// NetBSD cannot report the saved ids; the attempts to regain root in `verify_ids` stand in
/// for that check.
#[cfg(target_os = "netbsd")]
fn current_ids() -> Result<([Uid; 3], [Gid; 3]), PrivdropError> {
    let (uid, euid) = (nix::unistd::getuid(), nix::unistd::geteuid());
    let (gid, egid) = (nix::unistd::getgid(), nix::unistd::getegid());
    Ok(([uid, euid, euid], [gid, egid, egid]))
}

/// Landlock: every write-type access is denied except below `writable`. Reads stay governed
/// by ordinary permissions (roles that read nothing are chrooted instead).
#[cfg(target_os = "linux")]
fn restrict_writes(writable: &[PathBuf]) -> Result<WriteLimit, PrivdropError> {
    use landlock::{
        ABI, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, path_beneath_rules,
    };
    let abi = ABI::V5;
    let status = Ruleset::default()
        .handle_access(AccessFs::from_write(abi))
        .and_then(landlock::Ruleset::create)
        .and_then(|r| {
            r.add_rules(path_beneath_rules(
                write_paths(writable),
                AccessFs::from_write(abi),
            ))
        })
        .and_then(landlock::RulesetCreated::restrict_self)
        .map_err(|e| fail("landlock", e))?;
    Ok(WriteLimit::Landlock(match status.ruleset {
        RulesetStatus::FullyEnforced => "full",
        RulesetStatus::PartiallyEnforced => "partial",
        RulesetStatus::NotEnforced => "none",
    }))
}

/// unveil: everything stays readable and runnable, only `writable` writable, and the list
/// is locked.
#[cfg(target_os = "openbsd")]
fn restrict_writes(writable: &[PathBuf]) -> Result<WriteLimit, PrivdropError> {
    crate::sys::unveil(Path::new("/"), "rx").map_err(|e| fail("unveil", e))?;
    // unveil refuses a path that is not there (/dev/null inside an empty chroot), where
    // Landlock's rules skip it.
    for path in write_paths(writable).filter(|p| p.exists()) {
        crate::sys::unveil(path, "rwc")
            .map_err(|e| fail("unveil", format!("{}: {e}", path.display())))?;
    }
    crate::sys::unveil_lock().map_err(|e| fail("unveil", e))?;
    Ok(WriteLimit::Unveil)
}

#[cfg(not(any(target_os = "linux", target_os = "openbsd")))]
fn restrict_writes(_: &[PathBuf]) -> Result<WriteLimit, PrivdropError> {
    Ok(WriteLimit::Absent)
}

/// Where a role may write: its directories, and /dev/null, where programs a role runs (an
/// exec channel, nsupdate) send their output.
#[cfg_attr(not(any(target_os = "linux", target_os = "openbsd")), allow(dead_code))]
fn write_paths(writable: &[PathBuf]) -> impl Iterator<Item = &Path> {
    writable
        .iter()
        .map(PathBuf::as_path)
        .chain([Path::new("/dev/null")])
}

/// OpenBSD's pledge: the system calls the role makes once running, by promise. Kept for
/// every platform so the table is compiled and tested here; applied only on OpenBSD.
pub fn promises(role: Role) -> &'static str {
    match role {
        // Datagrams in and ACKs out on the passed socket; peers' sockets by fd passing.
        Role::Receiver => "stdio inet recvfd",
        // SQLite (locks, the WAL, its temporary files) and the journal's rotation.
        Role::Engine => "stdio rpath wpath cpath flock fattr recvfd",
        // HTTPS and SMTP by name, exec channels, and the CA file read at reload.
        Role::Notifier => "stdio rpath inet dns proc exec recvfd",
        // nsupdate, and the key file checked at reload.
        Role::Dnsupdate => "stdio rpath proc exec recvfd",
        // The passed listeners, and TLS certificates read at reload.
        Role::Web => "stdio rpath inet recvfd",
    }
}

#[cfg(target_os = "openbsd")]
fn restrict_calls(role: Role) -> Result<Option<&'static str>, PrivdropError> {
    let promises = promises(role);
    crate::sys::pledge(promises).map_err(|e| fail("pledge", e))?;
    Ok(Some(promises))
}

#[cfg(not(target_os = "openbsd"))]
fn restrict_calls(_: Role) -> Result<Option<&'static str>, PrivdropError> {
    Ok(None)
}

/// Tries to create a file where the role must not write; every success is reported (and the
/// file removed). Checked from inside the process, so it tests the real confinement.
fn probe_writes(writable: &[PathBuf], landlocked: bool) -> Vec<String> {
    if !landlocked {
        // Old kernels, some containers and platforms without Landlock or unveil: world-
        // writable directories stay writable, which the report shows; refusing to run would
        // leave the operator with no monitoring at all.
        tracing::warn!(
            "No write limit (Landlock, unveil) is in force: this process can still write to world-writable directories."
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
    fn every_role_has_promises_without_exec_unless_it_runs_programs() {
        for role in [
            Role::Receiver,
            Role::Engine,
            Role::Notifier,
            Role::Dnsupdate,
            Role::Web,
        ] {
            let p: Vec<&str> = promises(role).split(' ').collect();
            assert_eq!(p[0], "stdio", "{role}");
            assert!(
                p.contains(&"recvfd"),
                "{role}: peers' sockets come by fd passing"
            );
            let runs_programs = matches!(role, Role::Notifier | Role::Dnsupdate);
            assert_eq!(p.contains(&"exec"), runs_programs, "{role}");
            assert_eq!(p.contains(&"proc"), runs_programs, "{role}");
        }
        assert!(
            !promises(Role::Engine).contains("inet"),
            "the engine has no network"
        );
    }

    #[test]
    fn the_write_limit_reports_as_before() {
        assert!(WriteLimit::Landlock("full").enforced());
        assert!(!WriteLimit::Landlock("none").enforced());
        assert!(!WriteLimit::Absent.enforced());
        assert_eq!(WriteLimit::Unveil.landlock(), "none");
        assert_eq!(
            WriteLimit::Landlock("partial").to_string(),
            "landlock partial"
        );
    }

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
