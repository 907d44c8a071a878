//! What a daemon may touch: with `--confine` (implied by `--listen`), only its own node's
//! network namespace, the network namespaces of containers running on the node, and cgroups
//! under the allowed roots — for syscall faults, a pid whose cgroup lies under them, and command
//! names only when the roots cover the whole node. A target outside is refused (HTTP 403) with the reason, before
//! anything is resolved or attached.

use std::{
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use crate::{fault::FaultSet, k8s::Resolver};

/// A target outside the daemon's node.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct OutOfScope {
    /// The field (`net[0].target.netns`).
    pub field: String,
    /// Why, and what to do.
    pub problem: String,
}

/// The confinement policy.
#[derive(Clone, Debug)]
pub struct Scope {
    /// Whether targets are checked at all (off on a local unix socket-only daemon).
    pub confined: bool,
    /// Allowed cgroup subtrees (absolute, canonical).
    pub cgroup_roots: Vec<PathBuf>,
    /// The container cgroups whose processes' network namespaces are allowed.
    pub resolver: Option<Resolver>,
}

fn netns_ino(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl Scope {
    /// No checks.
    pub fn open() -> Self {
        Self {
            confined: false,
            cgroup_roots: Vec::new(),
            resolver: None,
        }
    }

    /// The network namespace file a target names (`/run/netns/NAME` or a `/proc` path).
    fn netns_file(name: &str) -> PathBuf {
        if name.starts_with('/') {
            PathBuf::from(name)
        } else {
            Path::new(crate::netns::NETNS_RUN_DIR).join(name)
        }
    }

    /// Network namespaces of processes in container cgroups (kubepods, libpod) on this node.
    fn container_netns(&self) -> Vec<(u64, u64)> {
        let Some(r) = &self.resolver else {
            return Vec::new();
        };
        let mut pids = Vec::new();
        for parent in [
            "kubepods.slice",
            "kubepods",
            "libpod_parent",
            "machine.slice",
        ] {
            collect(&r.root().join(parent), &mut pids, 0);
        }
        pids.iter()
            .filter_map(|p| netns_ino(Path::new(&format!("/proc/{p}/ns/net"))))
            .collect()
    }

    /// Refuses the first target outside the node.
    pub fn check(&self, set: &FaultSet) -> Result<(), OutOfScope> {
        if !self.confined {
            return Ok(());
        }
        let own = netns_ino(Path::new("/proc/self/ns/net"));
        let mut containers: Option<Vec<(u64, u64)>> = None;
        for (i, f) in set.net.iter().enumerate() {
            let at = format!("net[{i}].target");
            if let Some(ns) = &f.target.netns {
                let file = Self::netns_file(ns);
                let ino = netns_ino(&file);
                let allowed = ino.is_some()
                    && (ino == own
                        || containers
                            .get_or_insert_with(|| self.container_netns())
                            .contains(&ino.unwrap_or_default()));
                if !allowed {
                    return Err(OutOfScope {
                        field: format!("{at}.netns"),
                        problem: format!(
                            "network namespace {ns} is not this node's: a confined daemon acts \
                             only in its own namespace and in those of containers running on \
                             its node; send the fault to the daemon of the node it belongs to"
                        ),
                    });
                }
            }
            if let Some(cg) = &f.target.cgroup {
                self.check_cgroup(&format!("{at}.cgroup"), cg)?;
            }
        }
        for (i, f) in set.sys.iter().enumerate() {
            let at = format!("sys[{i}].target");
            if let Some(cg) = &f.target.cgroup {
                self.check_cgroup(&format!("{at}.cgroup"), cg)?;
            }
            if let Some(pid) = f.target.pid {
                // The process's own cgroup decides: it must lie under an allowed root.
                let cg = process_cgroup(pid).ok_or_else(|| OutOfScope {
                    field: format!("{at}.pid"),
                    problem: format!(
                        "pid {pid} is not a process of this node (no /proc/{pid}/cgroup in the \
                         daemon's pid namespace; the DaemonSet needs hostPID)"
                    ),
                })?;
                self.check_cgroup(&format!("{at}.pid"), &cg)?;
            }
            if f.target.comm.is_some() && !self.whole_node() {
                return Err(OutOfScope {
                    field: format!("{at}.comm"),
                    problem: "a command-name target matches processes anywhere on the node, \
                              also outside the allowed cgroup roots; give a pid or a cgroup"
                        .into(),
                });
            }
        }
        Ok(())
    }

    /// Whether a root covers the whole cgroup hierarchy (then every process is in scope).
    fn whole_node(&self) -> bool {
        let mount = crate::cgroup::cgroup2_mount().ok();
        self.cgroup_roots
            .iter()
            .any(|r| mount.as_deref().is_some_and(|m| r == m))
    }

    fn check_cgroup(&self, field: &str, cg: &Path) -> Result<(), OutOfScope> {
        let canon = crate::cgroup::Cgroup::open(cg)
            .map(|c| c.path().to_path_buf())
            .unwrap_or_else(|_| cg.to_path_buf());
        if self.cgroup_roots.iter().any(|r| canon.starts_with(r)) {
            return Ok(());
        }
        Err(OutOfScope {
            field: field.to_string(),
            problem: format!(
                "cgroup {} is outside the cgroups this daemon may touch ({}); start it with \
                 --cgroup-root covering it",
                canon.display(),
                self.cgroup_roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }
}

/// The cgroup v2 directory of `pid` (absolute, under the cgroup2 mount).
fn process_cgroup(pid: u32) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let rel = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    let mount = crate::cgroup::cgroup2_mount().ok()?;
    Some(mount.join(rel.trim_start_matches('/')))
}

fn collect(dir: &Path, out: &mut Vec<u32>, depth: usize) {
    if let Ok(s) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(s.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    }
    if depth >= 5 {
        return;
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.filter_map(Result::ok) {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect(&e.path(), out, depth + 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confined_scope_refuses_foreign_netns_and_cgroups() {
        let set = |target: serde_json::Value| -> FaultSet {
            serde_json::from_value(serde_json::json!({"net": [{
                "target": target, "action": {"kind": "drop", "probability": 1.0}}]}))
            .unwrap()
        };
        let s = Scope {
            confined: true,
            cgroup_roots: vec![PathBuf::from("/sys/fs/cgroup/unified/kubepods")],
            resolver: None,
        };
        let e = s
            .check(&set(
                serde_json::json!({"netns": "dst-no-such-ns", "dev": "eth0"}),
            ))
            .unwrap_err();
        assert_eq!(e.field, "net[0].target.netns");
        let e = s
            .check(&set(
                serde_json::json!({"cgroup": "/sys/fs/cgroup/unified/system.slice"}),
            ))
            .unwrap_err();
        assert_eq!(e.field, "net[0].target.cgroup");
        // Own namespace (no netns named) and a cgroup under the root are fine.
        s.check(&set(serde_json::json!({"dev": "eth0"}))).unwrap();
        s.check(&set(
            serde_json::json!({"cgroup": "/sys/fs/cgroup/unified/kubepods/pod1"}),
        ))
        .unwrap();
        Scope::open()
            .check(&set(
                serde_json::json!({"netns": "dst-no-such-ns", "dev": "eth0"}),
            ))
            .unwrap();
    }

    #[test]
    fn confined_scope_refuses_syscall_targets_outside_the_roots() {
        let set = |target: serde_json::Value| -> FaultSet {
            serde_json::from_value(serde_json::json!({"sys": [{
                "target": target, "syscall": "write", "errno": "EIO"}]}))
            .unwrap()
        };
        let s = Scope {
            confined: true,
            cgroup_roots: vec![PathBuf::from("/sys/fs/cgroup/unified/kubepods")],
            resolver: None,
        };
        let e = s
            .check(&set(
                serde_json::json!({"cgroup": "/sys/fs/cgroup/unified/system.slice"}),
            ))
            .unwrap_err();
        assert_eq!(e.field, "sys[0].target.cgroup");
        s.check(&set(
            serde_json::json!({"cgroup": "/sys/fs/cgroup/unified/kubepods/pod1"}),
        ))
        .unwrap();
        // This test's own process is not in a kubepods cgroup.
        let e = s
            .check(&set(serde_json::json!({"pid": std::process::id()})))
            .unwrap_err();
        assert_eq!(e.field, "sys[0].target.pid");
        let e = s
            .check(&set(serde_json::json!({"pid": u32::MAX - 1})))
            .unwrap_err();
        assert!(e.problem.contains("not a process of this node"), "{e}");
        let e = s
            .check(&set(serde_json::json!({"comm": "redis-server"})))
            .unwrap_err();
        assert_eq!(e.field, "sys[0].target.comm");
        Scope::open()
            .check(&set(serde_json::json!({"comm": "redis-server"})))
            .unwrap();
    }
}
