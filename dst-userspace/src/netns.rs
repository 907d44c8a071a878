//! Named network namespaces (`/run/netns/NAME`, compatible with `ip netns`): create, open, run
//! code inside one through `setns` on a dedicated thread, and delete on drop.
//!
//! `ip netns exec` remounts `/sys`, which hides bpffs and cgroupfs; entering with `setns` from a
//! thread keeps the process's mounts, so BPF objects and cgroups stay reachable.

use std::{
    fs::{self, File, OpenOptions},
    io,
    os::fd::AsFd,
    path::{Path, PathBuf},
};

use nix::{
    mount::{MntFlags, MsFlags, mount, umount2},
    sched::{CloneFlags, setns, unshare},
};

/// Directory where named namespaces are bind-mounted, as `ip netns` does.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// Errors of network-namespace handling.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The name cannot be used as a file name under /run/netns.
    #[error("invalid network namespace name {0:?}: use letters, digits, '-', '_' or '.'")]
    InvalidName(String),
    /// A namespace of that name already exists.
    #[error(
        "network namespace {0:?} already exists; delete it (`ip netns del {0}`) or pick another name"
    )]
    Exists(String),
    /// No namespace of that name exists.
    #[error("network namespace {0:?} not found; list them with `ip netns list`")]
    NotFound(String),
    /// A system call failed.
    #[error(
        "{op} for network namespace {name:?} failed: {source} (dst needs root / CAP_SYS_ADMIN)"
    )]
    Sys {
        /// What was being done.
        op: &'static str,
        /// The namespace.
        name: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The thread running code inside the namespace panicked.
    #[error("the task run inside network namespace {0:?} panicked")]
    Panicked(String),
}

/// A named network namespace. Namespaces made by [`NetNs::create`] are deleted on drop.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    path: PathBuf,
    file: File,
    owned: bool,
}

fn sys(op: &'static str, name: &str) -> impl FnOnce(io::Error) -> NetnsError + use<> {
    let name = name.to_string();
    move |source| NetnsError::Sys { op, name, source }
}

/// `/proc/<pid>/ns/net`.
fn is_proc_netns(p: &str) -> bool {
    p.strip_prefix("/proc/")
        .and_then(|r| r.strip_suffix("/ns/net"))
        .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 64
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl NetNs {
    /// Creates a new, empty named network namespace (only `lo`, down).
    pub fn create(name: &str) -> Result<Self, NetnsError> {
        if !valid_name(name) {
            return Err(NetnsError::InvalidName(name.to_string()));
        }
        fs::create_dir_all(NETNS_RUN_DIR).map_err(sys("create /run/netns", name))?;
        let path = Path::new(NETNS_RUN_DIR).join(name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(NetnsError::Exists(name.to_string()));
            }
            Err(e) => return Err(sys("create mount point", name)(e)),
        }
        let bind = {
            let path = path.clone();
            std::thread::spawn(move || -> io::Result<()> {
                unshare(CloneFlags::CLONE_NEWNET)?;
                mount(
                    Some("/proc/thread-self/ns/net"),
                    &path,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )?;
                Ok(())
            })
            .join()
        };
        let bound = match bind {
            Ok(r) => r,
            Err(_) => Err(io::Error::other("namespace thread panicked")),
        };
        if let Err(e) = bound {
            let _ = fs::remove_file(&path);
            return Err(sys("unshare and bind-mount", name)(e));
        }
        let file = File::open(&path).map_err(sys("open", name))?;
        Ok(Self {
            name: name.to_string(),
            path,
            file,
            owned: true,
        })
    }

    /// Opens an existing named namespace, or a process's (`/proc/PID/ns/net`, as pod and
    /// container targets resolve to); it is left in place on drop.
    pub fn open(name: &str) -> Result<Self, NetnsError> {
        let path = if is_proc_netns(name) {
            PathBuf::from(name)
        } else if valid_name(name) {
            Path::new(NETNS_RUN_DIR).join(name)
        } else {
            return Err(NetnsError::InvalidName(name.to_string()));
        };
        let file = File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => NetnsError::NotFound(name.to_string()),
            _ => sys("open", name)(e),
        })?;
        Ok(Self {
            name: name.to_string(),
            path,
            file,
            owned: false,
        })
    }

    /// The calling thread's network namespace (named `(current)`; left in place on drop).
    pub fn current() -> Result<Self, NetnsError> {
        let path = PathBuf::from("/proc/thread-self/ns/net");
        let file = File::open(&path).map_err(sys("open", "(current)"))?;
        Ok(Self {
            name: "(current)".to_string(),
            path,
            file,
            owned: false,
        })
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bind-mounted namespace file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An open handle to the namespace (for `setns` or `IFLA_NET_NS_FD`).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Runs `f` on a fresh thread that has joined this namespace, and returns its result.
    pub fn run<T, F>(&self, f: F) -> Result<T, NetnsError>
    where
        T: Send,
        F: FnOnce() -> T + Send,
    {
        std::thread::scope(|s| {
            s.spawn(|| {
                setns(self.file.as_fd(), CloneFlags::CLONE_NEWNET)
                    .map_err(|e| sys("setns", &self.name)(e.into()))?;
                Ok(f())
            })
            .join()
            .map_err(|_| NetnsError::Panicked(self.name.clone()))?
        })
    }

    /// Keeps the namespace after this handle is dropped.
    pub fn leak(mut self) {
        self.owned = false;
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if self.owned {
            let _ = umount2(&self.path, MntFlags::MNT_DETACH);
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("dst-a_1.x"));
        assert!(!valid_name(""));
        assert!(!valid_name(".."));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(&"x".repeat(70)));
        assert!(is_proc_netns("/proc/42/ns/net"));
        assert!(!is_proc_netns("/proc/self/ns/net"));
        assert!(!is_proc_netns("/proc/42/ns/mnt"));
    }
}
