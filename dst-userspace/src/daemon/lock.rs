//! One daemon per socket: an exclusive `flock` on `<socket>.lock` (released by the kernel when
//! the process dies, even by SIGKILL), then the unix socket is bound with mode 0600.

use std::{
    fs::{File, OpenOptions},
    io::{Read as _, Seek as _, Write as _},
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
};

use nix::fcntl::{Flock, FlockArg};

use super::DaemonError;

/// The held lock; released on drop or process death.
pub struct SocketLock {
    _lock: Flock<File>,
    path: PathBuf,
}

impl SocketLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes the lock for `socket`, refusing when another daemon holds it.
pub fn lock(socket: &Path) -> Result<SocketLock, DaemonError> {
    let io = |op: &'static str| {
        let socket = socket.to_path_buf();
        move |source: std::io::Error| DaemonError::Socket {
            op,
            path: socket,
            source,
        }
    };
    if let Some(dir) = socket
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        std::fs::create_dir_all(dir).map_err(io("creating the directory of"))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io("restricting the directory of"))?;
    }
    let mut name = socket.as_os_str().to_owned();
    name.push(".lock");
    let path = PathBuf::from(name);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io("opening the lock file of"))?;
    let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err((mut file, _)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            return Err(DaemonError::AlreadyRunning {
                socket: socket.to_path_buf(),
                pid: pid.trim().to_string(),
            });
        }
    };
    let _ = lock.set_len(0);
    let _ = lock.rewind();
    let _ = write!(lock, "{}", std::process::id());
    // We hold the lock, so a socket file left here is stale (its daemon died).
    let _ = std::fs::remove_file(socket);
    Ok(SocketLock { _lock: lock, path })
}

/// Binds the unix socket with mode 0600 (umask set around the bind so it is never wider).
pub fn bind(socket: &Path) -> Result<tokio::net::UnixListener, DaemonError> {
    use nix::sys::stat::{Mode, umask};
    let old = umask(Mode::from_bits_truncate(0o177));
    let l = tokio::net::UnixListener::bind(socket);
    umask(old);
    let l = l.map_err(|source| DaemonError::Socket {
        op: "binding",
        path: socket.to_path_buf(),
        source,
    })?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600)).map_err(|source| {
        DaemonError::Socket {
            op: "setting mode 0600 on",
            path: socket.to_path_buf(),
            source,
        }
    })?;
    Ok(l)
}
