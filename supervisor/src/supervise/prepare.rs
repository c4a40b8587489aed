//! Before the first child: the configuration resolved into users, directories and plans,
//! and the listeners bound.

use super::*;

/// Everything resolved before the first child is spawned.
#[derive(Debug)]
pub struct Prepared {
    /// The configuration.
    pub config: Config,
    /// Where the role binaries are.
    pub libexec: PathBuf,
    /// Confinement per role.
    pub plans: BTreeMap<Role, Plan>,
    /// True when not root.
    pub unprivileged: bool,
    /// `-v` count, passed on to children.
    pub verbosity: u8,
}

impl Prepared {
    /// Resolves users and confinement for every role. Checked by `-n` too, so "configuration
    /// OK" means the server can start.
    pub fn new(config: Config, verbosity: u8) -> Result<Prepared, ConfigErrors> {
        let unprivileged = !nix::unistd::geteuid().is_root();
        let libexec = match &config.file.libexec_dir {
            Some(dir) => dir.clone(),
            None => own_dir().map_err(|e| config.error("libexec_dir", e))?,
        };
        let mut plans = BTreeMap::new();
        for role in Role::ALL {
            let ids = if unprivileged {
                None
            } else {
                let (user, group) = config.user_spec(role);
                Some(
                    resolve_ids(&user, group.as_deref())
                        .map_err(|e| config.error(config.user_key(role), e))?,
                )
            };
            let chroot = match role {
                Role::Receiver | Role::Web if !unprivileged => Some(config.chroot_dir.clone()),
                _ => None,
            };
            let writable = match role {
                Role::Engine => vec![config.state_dir.clone(), config.journal_dir.clone()],
                _ => Vec::new(),
            };
            plans.insert(
                role,
                Plan {
                    ids,
                    chroot,
                    writable,
                },
            );
        }
        Ok(Prepared {
            config,
            libexec,
            plans,
            unprivileged,
            verbosity,
        })
    }

    /// Creates the directories the server needs, owned by whoever must write them.
    pub fn make_dirs(&self) -> std::io::Result<()> {
        let engine = self.plans.get(&Role::Engine).and_then(|p| p.ids);
        for dir in [&self.config.state_dir, &self.config.journal_dir] {
            let handle = make_dir(dir, 0o750)?;
            if let Some((uid, gid)) = engine {
                // Through the handle: the path is opened without following a final symlink,
                // so an engine that planted one cannot have root chown what it points to.
                std::os::unix::fs::fchown(&handle, Some(uid), Some(gid))?;
            }
        }
        if let Some(parent) = self.config.control_socket.parent() {
            make_dir(parent, 0o755)?;
        }
        if !self.unprivileged {
            make_dir(&self.config.chroot_dir, 0o755)?;
        }
        Ok(())
    }
}

/// Creates `dir` if missing (with `mode`) and opens it. Refuses a path with a symlink that
/// root does not own in any component: these directories are chowned to, and written by,
/// less privileged users, who must not be able to redirect root's next start elsewhere.
fn make_dir(dir: &Path, mode: u32) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let mut prefix = PathBuf::new();
    for part in dir.components() {
        prefix.push(part);
        match std::fs::symlink_metadata(&prefix) {
            Ok(meta) if meta.file_type().is_symlink() && meta.uid() != 0 => {
                return Err(std::io::Error::other(format!(
                    "{} is a symlink owned by uid {}; refusing to use {}",
                    prefix.display(),
                    meta.uid(),
                    dir.display()
                )));
            }
            _ => {}
        }
    }
    let created = match std::fs::symlink_metadata(dir) {
        Ok(_) => false,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)?;
            true
        }
        Err(e) => return Err(e),
    };
    let handle = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY)
        .open(dir)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    if created {
        handle.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    Ok(handle)
}

fn own_dir() -> Result<PathBuf, String> {
    // Resolved once at start: after a package upgrade the path names the new binaries, and
    // the Hello version check refuses any that do not match this supervisor.
    let exe = std::fs::read_link("/proc/self/exe")
        .or_else(|_| std::env::current_exe())
        .map_err(|e| format!("cannot find my own executable: {e}"))?;
    exe.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| "my executable has no directory".to_string())
}

/// Resolves `user[:group]` (names or numbers) to ids; refuses root.
pub fn resolve_ids(user: &str, group: Option<&str>) -> Result<(u32, u32), String> {
    use nix::unistd::{Group, User};
    let (uid, primary) = match user.parse::<u32>() {
        Ok(uid) => (uid, None),
        Err(_) => match User::from_name(user) {
            Ok(Some(u)) => (u.uid.as_raw(), Some(u.gid.as_raw())),
            Ok(None) => {
                return Err(format!(
                    "user {user:?} does not exist; create it (useradd --system --no-create-home --shell /usr/sbin/nologin {user}) or name another"
                ));
            }
            Err(e) => return Err(format!("cannot look up user {user:?}: {e}")),
        },
    };
    let gid = match group {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => match Group::from_name(g) {
                Ok(Some(grp)) => grp.gid.as_raw(),
                Ok(None) => return Err(format!("group {g:?} does not exist")),
                Err(e) => return Err(format!("cannot look up group {g:?}: {e}")),
            },
        },
        None => {
            primary.ok_or_else(|| format!("numeric user {uid} needs a group: write {uid}:GID"))?
        }
    };
    if uid == 0 || gid == 0 {
        return Err(
            "children must not run as root (uid or gid 0); name an unprivileged user".into(),
        );
    }
    Ok((uid, gid))
}

/// The sockets the supervisor binds for its children.
#[derive(Debug)]
pub struct Listeners {
    /// UDP heartbeats, for the receiver.
    pub udp: std::net::UdpSocket,
    /// HTTP, for web.
    pub tcp: std::net::TcpListener,
    /// The second HTTP port (`ws_port`), for web.
    pub ws: Option<std::net::TcpListener>,
    /// hbctl's socket.
    pub control: std::os::unix::net::UnixListener,
}

impl Listeners {
    /// Binds everything; errors name the address.
    pub fn bind(config: &Config) -> anyhow::Result<Listeners> {
        use anyhow::Context;
        let udp = std::net::UdpSocket::bind(config.hb_addr)
            .with_context(|| format!("cannot bind UDP {} (hb_host, hb_port)", config.hb_addr))?;
        size_receive_buffer(&udp, config.udp_receive_buffer);
        let tcp = std::net::TcpListener::bind(config.hbd_addr)
            .with_context(|| format!("cannot bind TCP {} (hbd_host, hbd_port)", config.hbd_addr))?;
        let ws = config
            .ws_addr
            .map(|addr| {
                std::net::TcpListener::bind(addr)
                    .with_context(|| format!("cannot bind TCP {addr} (hbd_host, ws_port)"))
            })
            .transpose()?;
        let control = crate::ctl::bind(&config.control_socket)?;
        Ok(Listeners {
            udp,
            tcp,
            ws,
            control,
        })
    }
}

/// Sizes the heartbeat socket's receive buffer (`udp_receive_buffer`): on Linux as root past
/// `net.core.rmem_max` (`SO_RCVBUFFORCE`), otherwise up to it (the BSDs' limit is
/// `kern.ipc.maxsockbuf`). Logs what the kernel granted.
fn size_receive_buffer(udp: &std::net::UdpSocket, wanted: usize) {
    use nix::sys::socket::{setsockopt, sockopt};
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let forced = setsockopt(udp, sockopt::RcvBufForce, &wanted).is_ok();
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let forced = false;
    if !forced {
        let _ = setsockopt(udp, sockopt::RcvBuf, &wanted);
    }
    // Linux grants (and reports) twice what is asked, half of it for its own overhead; the
    // BSDs grant what is asked.
    let usable = |granted: usize| {
        if cfg!(any(target_os = "linux", target_os = "android")) {
            granted / 2
        } else {
            granted
        }
    };
    match nix::sys::socket::getsockopt(udp, sockopt::RcvBuf) {
        Ok(granted) if usable(granted) < wanted => tracing::warn!(
            granted,
            wanted,
            "UDP receive buffer is small; a burst of heartbeats may be dropped by the kernel (raise net.core.rmem_max or kern.ipc.maxsockbuf, or start as root on Linux)."
        ),
        Ok(granted) => tracing::debug!(granted, "UDP receive buffer sized."),
        Err(e) => tracing::warn!(error = %e, "Cannot read the UDP receive buffer size."),
    }
}
