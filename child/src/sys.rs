//! The only unsafe code in hb: raw file descriptor plumbing that std and nix do not cover.
//!
//! Each block's `SAFETY` comment says why the descriptor or the context makes it sound.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The descriptor every child finds its control channel on.
pub const CONTROL_FD: RawFd = 3;

/// Arranges for `fd` to appear as fd 3 in the child `cmd` spawns, inheritable across exec.
pub fn map_to_control_fd(cmd: &mut tokio::process::Command, fd: &OwnedFd) {
    let raw = fd.as_raw_fd();
    // SAFETY: the closure runs in the forked child before exec and calls only dup2 and fcntl,
    // which are async-signal-safe; it allocates nothing and takes no locks. `raw` stays open
    // in the parent until after spawn() returns, so it is valid in the child.
    unsafe {
        cmd.pre_exec(move || {
            if raw == CONTROL_FD {
                // dup2 onto itself would keep FD_CLOEXEC; clear it instead.
                let flags = libc::fcntl(raw, libc::F_GETFD);
                if flags < 0 || libc::fcntl(raw, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(raw, CONTROL_FD) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Takes ownership of fd 3, after checking it is an open socket, and marks it close-on-exec
/// so programs the role runs (nsupdate) do not inherit the control channel.
pub fn take_control_fd() -> io::Result<OwnedFd> {
    // SAFETY: fcntl(F_GETFD) on any integer is harmless; it only reports whether it is open.
    let flags = unsafe { libc::fcntl(CONTROL_FD, libc::F_GETFD) };
    if flags < 0 {
        return Err(io::Error::other(
            "fd 3 is not open: this program is started by hbsupervisor, not by hand",
        ));
    }
    // SAFETY: a zeroed `stat` is a valid value for fstat to overwrite.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd 3 is open (checked above) and `st` is a valid, writable stat buffer.
    if unsafe { libc::fstat(CONTROL_FD, &raw mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(io::Error::other("fd 3 is not a socket"));
    }
    // SAFETY: fd 3 is open, nothing else in this process refers to it (it was inherited and
    // this function runs once at start-up), so the OwnedFd becomes its only owner.
    let fd = unsafe { OwnedFd::from_raw_fd(CONTROL_FD) };
    // SAFETY: F_SETFD on a descriptor we own.
    if unsafe { libc::fcntl(CONTROL_FD, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// Takes ownership of a descriptor the kernel installed in this process with `SCM_RIGHTS`.
pub fn adopt_received_fd(raw: RawFd) -> OwnedFd {
    // SAFETY: recvmsg just created `raw` in our descriptor table for this message; no other
    // code has seen the number, so this OwnedFd is its sole owner and closes it exactly once.
    unsafe { OwnedFd::from_raw_fd(raw) }
}

/// Which side of [`fork_with_pipe`] this is.
pub enum Forked {
    /// The original process; the pipe's read end.
    Parent(OwnedFd),
    /// The new process; the pipe's write end.
    Child(OwnedFd),
}

/// Forks, with a close-on-exec pipe from the child to the parent. Call it only while the
/// process has a single thread (before any runtime): the child gets a copy of just the
/// calling thread.
pub fn fork_with_pipe() -> io::Result<Forked> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // SAFETY: the caller guarantees no other thread exists, so no lock or allocator state can
    // be held by a thread that the child would not have.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { .. } => {
            drop(write);
            Ok(Forked::Parent(read))
        }
        nix::unistd::ForkResult::Child => {
            drop(read);
            Ok(Forked::Child(write))
        }
    }
}

/// FreeBSD's no_new_privs: set-id programs this process runs do not gain their owner's
/// privileges. FreeBSD 14 and later; older kernels answer EINVAL.
#[cfg(target_os = "freebsd")]
pub fn proc_no_new_privs() -> io::Result<()> {
    let mut enable: libc::c_int = libc::PROC_NO_NEW_PRIVS_ENABLE;
    // SAFETY: procctl on our own pid with a pointer to a live c_int, which is what
    // PROC_NO_NEW_PRIVS_CTL reads; the kernel does not keep the pointer.
    let rc = unsafe {
        libc::procctl(
            libc::P_PID,
            libc::id_t::from(std::process::id()),
            libc::PROC_NO_NEW_PRIVS_CTL,
            (&raw mut enable).cast(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// OpenBSD's pledge with `promises`; programs the process runs are not pledged.
#[cfg(target_os = "openbsd")]
pub fn pledge(promises: &str) -> io::Result<()> {
    let promises = std::ffi::CString::new(promises)?;
    // SAFETY: a NUL-terminated string that outlives the call, and a null execpromises,
    // which leaves exec'd programs unrestricted; pledge keeps no pointer.
    if unsafe { libc::pledge(promises.as_ptr(), std::ptr::null()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// OpenBSD's unveil of `path` with `permissions` (`r`, `w`, `x`, `c`).
#[cfg(target_os = "openbsd")]
pub fn unveil(path: &std::path::Path, permissions: &str) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    let permissions = std::ffi::CString::new(permissions)?;
    // SAFETY: two NUL-terminated strings that outlive the call; unveil copies them.
    if unsafe { libc::unveil(path.as_ptr(), permissions.as_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Locks the unveiled list: no later unveil can widen it.
#[cfg(target_os = "openbsd")]
pub fn unveil_lock() -> io::Result<()> {
    // SAFETY: two null pointers are unveil's documented way to lock the list.
    if unsafe { libc::unveil(std::ptr::null(), std::ptr::null()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Gives the memory the allocator holds free back to the system. After a burst (a fleet's
/// heartbeats at once, 100,000 new hosts) glibc keeps what the burst freed, and the process
/// would show that peak as its size for good. Costs about what there is to give back.
pub fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim has no preconditions: it takes the allocator's own locks and only
    // returns memory no allocation uses.
    unsafe {
        libc::malloc_trim(0);
    }
}
