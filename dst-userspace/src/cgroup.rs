//! cgroup v2: find the unified hierarchy, create and remove cgroups, move processes, read ids.

use std::{
    fs, io,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

/// Errors of cgroup handling.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// No cgroup2 filesystem is mounted.
    #[error(
        "no cgroup v2 hierarchy is mounted; mount one with `mount -t cgroup2 none /sys/fs/cgroup`"
    )]
    NotMounted,
    /// The path is not inside the cgroup v2 hierarchy.
    #[error("{0} is not a cgroup v2 directory under {1}; pass a path inside the cgroup2 mount")]
    OutsideHierarchy(PathBuf, PathBuf),
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CgroupError + use<> {
    let path = path.to_path_buf();
    move |source| CgroupError::Io { op, path, source }
}

/// Mount point of the cgroup v2 hierarchy (e.g. `/sys/fs/cgroup` or `/sys/fs/cgroup/unified`).
pub fn cgroup2_mount() -> Result<PathBuf, CgroupError> {
    let mounts = fs::read_to_string("/proc/self/mountinfo")
        .map_err(io_err("reading", Path::new("/proc/self/mountinfo")))?;
    parse_cgroup2_mount(&mounts).ok_or(CgroupError::NotMounted)
}

fn parse_cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (pre, post) = line.split_once(" - ")?;
        let fstype = post.split_whitespace().next()?;
        let mount = pre.split_whitespace().nth(4)?;
        (fstype == "cgroup2").then(|| PathBuf::from(mount))
    })
}

/// A cgroup v2 directory. Cgroups made by [`Cgroup::create`] are killed and removed on drop.
#[derive(Debug)]
pub struct Cgroup {
    path: PathBuf,
    owned: bool,
}

impl Cgroup {
    /// Creates `rel` under the cgroup2 mount (parents included).
    pub fn create(rel: &str) -> Result<Self, CgroupError> {
        let path = cgroup2_mount()?.join(rel.trim_start_matches('/'));
        fs::create_dir_all(&path).map_err(io_err("creating cgroup", &path))?;
        Ok(Self { path, owned: true })
    }

    /// Opens an existing cgroup given as an absolute path or relative to the cgroup2 mount.
    pub fn open(path: &Path) -> Result<Self, CgroupError> {
        let root = cgroup2_mount()?;
        let full = if path.is_absolute() {
            path.to_path_buf()
        } else {
            root.join(path)
        };
        let canon = full
            .canonicalize()
            .map_err(io_err("opening cgroup", &full))?;
        if !canon.starts_with(&root) || !canon.join("cgroup.procs").exists() {
            return Err(CgroupError::OutsideHierarchy(canon, root));
        }
        Ok(Self {
            path: canon,
            owned: false,
        })
    }

    /// Absolute path of the cgroup directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cgroup id as BPF sees it (`bpf_get_current_cgroup_id`): the directory's inode number.
    pub fn id(&self) -> Result<u64, CgroupError> {
        Ok(fs::metadata(&self.path)
            .map_err(io_err("stat", &self.path))?
            .ino())
    }

    /// Moves process `pid` into this cgroup.
    pub fn add_pid(&self, pid: u32) -> Result<(), CgroupError> {
        let procs = self.path.join("cgroup.procs");
        fs::write(&procs, pid.to_string()).map_err(io_err("writing", &procs))
    }

    /// Pids currently in the cgroup.
    pub fn pids(&self) -> Result<Vec<u32>, CgroupError> {
        let procs = self.path.join("cgroup.procs");
        let s = fs::read_to_string(&procs).map_err(io_err("reading", &procs))?;
        Ok(s.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// Kills every process in the cgroup and removes the directory (waits up to 2 s).
    pub fn remove(&self) -> Result<(), CgroupError> {
        let kill = self.path.join("cgroup.kill");
        if kill.exists() {
            let _ = fs::write(&kill, "1");
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match fs::remove_dir(&self.path) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    return Err(io_err("removing cgroup", &self.path)(e));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if self.owned {
            let _ = self.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_hybrid_and_unified_mounts() {
        let hybrid = "35 25 0:30 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw\n\
                      36 25 0:31 / /sys/fs/cgroup/cpu rw shared:11 - cgroup cgroup rw,cpu\n";
        assert_eq!(
            parse_cgroup2_mount(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let v1only = "36 25 0:31 / /sys/fs/cgroup/cpu rw shared:11 - cgroup cgroup rw,cpu\n";
        assert_eq!(parse_cgroup2_mount(v1only), None);
    }
}
