//! Pod UID / container id → cgroup v2 directory, cgroup id, pids and network namespace, by
//! walking the layouts container runtimes create:
//!
//! | driver | pod | container |
//! |---|---|---|
//! | kubelet systemd | `kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid_>.slice` (guaranteed: `kubepods.slice/kubepods-pod<uid_>.slice`) | `cri-containerd-<id>.scope`, `crio-<id>.scope`, `docker-<id>.scope` |
//! | kubelet cgroupfs | `kubepods/<qos>/pod<uid>` (guaranteed: `kubepods/pod<uid>`) | `<id>` |
//! | podman | — | `libpod_parent/libpod-<id>` (cgroupfs), `machine.slice/libpod-<id>.scope` (systemd) |
//!
//! The kubepods root may sit below the cgroup root (kind nodes, nested slices): it is looked for
//! up to three levels down.

use std::{
    fs, io,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use serde::Serialize;

/// Why a pod or container could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The pod UID is not a UUID.
    #[error(
        "{0:?} is not a pod UID: give the 36-character UUID from `kubectl get pod NAME -o jsonpath='{{.metadata.uid}}'`"
    )]
    BadPodUid(String),
    /// The container id is not hex or is too short to be unique.
    #[error(
        "{0:?} is not a container id: give at least 12 hex digits (`crictl ps`, `podman ps --no-trunc`)"
    )]
    BadContainerId(String),
    /// No cgroup of that pod or container exists on this node.
    #[error(
        "no cgroup for {what} under {root}: it does not run on this node, or the runtime uses a layout dst does not know (see docs/kubernetes.md)"
    )]
    NotFound {
        /// `pod <uid>` or `container <id>`.
        what: String,
        /// The cgroup root searched.
        root: PathBuf,
    },
    /// A container id prefix matched several cgroups.
    #[error(
        "container id prefix {prefix:?} matches {count} containers ({first}, …); give more digits"
    )]
    Ambiguous {
        /// The prefix given.
        prefix: String,
        /// How many matched.
        count: usize,
        /// One of them.
        first: PathBuf,
    },
    /// A syscall fault needs one cgroup, and the pod runs several workload containers.
    #[error("pod cgroup {pod} has {} containers with processes ({}); syscall faults match one cgroup exactly: give --container", .containers.len(), .containers.iter().map(|c| c.display().to_string()).collect::<Vec<_>>().join(", "))]
    SeveralContainers {
        /// The pod cgroup.
        pod: PathBuf,
        /// Its container cgroups with processes.
        containers: Vec<PathBuf>,
    },
    /// The target has no process, so it has no network namespace to act in.
    #[error("{0} has no process, so it has no network namespace yet; wait until it runs")]
    NoProcess(PathBuf),
    /// Reading the cgroup tree failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The cgroup v2 hierarchy is missing.
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::CgroupError),
}

/// What to resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetRef {
    /// A pod by UID (dashes or underscores).
    Pod(String),
    /// A container by id (full, a unique prefix of at least 12 hex digits, or with a
    /// `containerd://`-style runtime prefix as the Kubernetes API reports it).
    Container(String),
}

/// Which runtime layout a cgroup was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// kubelet with the systemd cgroup driver.
    KubeletSystemd,
    /// kubelet with the cgroupfs driver.
    KubeletCgroupfs,
    /// podman (cgroupfs or systemd manager).
    Podman,
}

/// A resolved target.
#[derive(Clone, Debug, Serialize)]
pub struct Resolved {
    /// The layout it was found in.
    pub layout: Layout,
    /// QoS class of the pod (`guaranteed`, `burstable`, `besteffort`) when kubelet's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qos: Option<String>,
    /// Normalised pod UID (dashes) when a pod (or a container of a pod).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    /// Full container id when a container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// Runtime naming the container cgroup (`containerd`, `crio`, `docker`, `podman`, `cgroupfs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<&'static str>,
    /// Absolute cgroup directory.
    pub cgroup: PathBuf,
    /// Cgroup id as BPF sees it (the directory's inode).
    pub cgroup_id: u64,
    /// Processes in the cgroup and below.
    pub pids: Vec<u32>,
}

impl Resolved {
    /// `/proc/<pid>/ns/net` of the first process, the target's network namespace.
    pub fn netns_path(&self) -> Result<PathBuf, TargetError> {
        self.pids
            .first()
            .map(|p| PathBuf::from(format!("/proc/{p}/ns/net")))
            .ok_or_else(|| TargetError::NoProcess(self.cgroup.clone()))
    }
}

impl Resolved {
    /// The one cgroup holding the workload's processes, for faults that match a cgroup exactly
    /// (the syscall rules): the cgroup itself when its processes sit directly in it, else its
    /// only child cgroup with processes other than the pod sandbox's `pause`.
    pub fn workload_cgroup(&self) -> Result<PathBuf, TargetError> {
        let own = fs::read_to_string(self.cgroup.join("cgroup.procs")).unwrap_or_default();
        if own.lines().any(|l| !l.trim().is_empty()) {
            return Ok(self.cgroup.clone());
        }
        let mut found = Vec::new();
        for (_, child) in read_dirs(&self.cgroup) {
            let mut pids = Vec::new();
            collect_pids(&child, &mut pids, 1);
            let workload = pids.iter().any(|p| {
                fs::read_to_string(format!("/proc/{p}/comm")).map_or(true, |c| c.trim() != "pause")
            });
            if workload {
                found.push(child);
            }
        }
        match found.len() {
            0 => Err(TargetError::NoProcess(self.cgroup.clone())),
            1 => Ok(found.remove(0)),
            _ => Err(TargetError::SeveralContainers {
                pod: self.cgroup.clone(),
                containers: found,
            }),
        }
    }
}

/// Normalises a pod UID to the dashed form; `None` unless it is a UUID.
pub fn normalize_pod_uid(s: &str) -> Option<String> {
    let d = s.trim().replace('_', "-").to_ascii_lowercase();
    let groups: Vec<&str> = d.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    (groups.len() == 5
        && groups
            .iter()
            .zip(lens)
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit())))
    .then_some(d)
}

/// Strips `containerd://`, `cri-o://`, `docker://` and checks the id is hex, ≥ 12 digits.
pub fn normalize_container_id(s: &str) -> Option<String> {
    let id = s
        .trim()
        .rsplit("://")
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    (id.len() >= 12 && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// The container id a cgroup directory name carries, with its runtime; `None` for other names
/// (pod slices, `crio-conmon-…`, `init.scope`).
fn container_of(name: &str, in_pod_cgroupfs: bool) -> Option<(String, &'static str)> {
    let hex64 = |s: &str| {
        (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| s.to_string())
    };
    for (prefix, runtime) in [
        ("cri-containerd-", "containerd"),
        ("crio-", "crio"),
        ("docker-", "docker"),
        ("libpod-", "podman"),
    ] {
        if let Some(rest) = name.strip_prefix(prefix) {
            let id = rest.strip_suffix(".scope").unwrap_or(rest);
            return hex64(id).map(|i| (i, runtime));
        }
    }
    if in_pod_cgroupfs {
        return hex64(name).map(|i| (i, "cgroupfs"));
    }
    None
}

/// QoS class and pod UID a pod cgroup directory name carries.
fn pod_of(name: &str) -> Option<(String, String)> {
    // `kubepods-…` or, on nested roots such as kind's, `kubelet-kubepods-…`.
    let systemd = name
        .find("kubepods-")
        .map(|i| &name[i + "kubepods-".len()..])
        .and_then(|r| r.strip_suffix(".slice"));
    let (qos, uid) = match systemd {
        Some(r) => match r.split_once("-pod") {
            Some((qos, uid)) => (qos.to_string(), uid),
            None => ("guaranteed".to_string(), r.strip_prefix("pod")?),
        },
        None => ("".to_string(), name.strip_prefix("pod")?),
    };
    Some((qos, normalize_pod_uid(uid)?))
}

/// Resolves pods and containers under one cgroup v2 root (the real mount, or a fixture tree).
#[derive(Clone, Debug)]
pub struct Resolver {
    root: PathBuf,
}

fn read_dirs(p: &Path) -> Vec<(String, PathBuf)> {
    let Ok(rd) = fs::read_dir(p) else {
        return Vec::new();
    };
    let mut v: Vec<(String, PathBuf)> = rd
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    v.sort();
    v
}

/// A container cgroup matching an id: (layout, qos, pod uid, (id, runtime), dir).
type Hit = (
    Layout,
    Option<String>,
    Option<String>,
    (String, &'static str),
    PathBuf,
);

/// One pod cgroup found: (qos, uid, layout, dir).
type PodDir = (String, String, Layout, PathBuf);

impl Resolver {
    /// A resolver over the host's cgroup v2 mount.
    pub fn host() -> Result<Self, TargetError> {
        Ok(Self::new(crate::cgroup::cgroup2_mount()?))
    }

    /// A resolver over `root` (tests use fixture trees).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root searched.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Runtime roots up to 3 levels down: kubepods (`kubepods.slice`, `kubepods`,
    /// `*-kubepods.slice`) and podman's (`libpod_parent`, `machine.slice`).
    fn runtime_roots(&self) -> Vec<(Layout, PathBuf)> {
        let mut out = Vec::new();
        let mut level = vec![self.root.clone()];
        for _ in 0..3 {
            let mut next = Vec::new();
            for dir in &level {
                for (name, path) in read_dirs(dir) {
                    if name == "kubepods.slice" || name.ends_with("-kubepods.slice") {
                        out.push((Layout::KubeletSystemd, path));
                    } else if name == "kubepods" {
                        out.push((Layout::KubeletCgroupfs, path));
                    } else if name == "libpod_parent" || name == "machine.slice" {
                        out.push((Layout::Podman, path));
                    } else if name.ends_with(".slice") || name == "kubelet" {
                        next.push(path);
                    }
                }
            }
            level = next;
        }
        out
    }

    /// Every pod cgroup on the node.
    fn pods(&self) -> Vec<PodDir> {
        let mut out = Vec::new();
        for (layout, root) in self.runtime_roots() {
            if layout == Layout::Podman {
                continue;
            }
            for (name, path) in read_dirs(&root) {
                if let Some((qos, uid)) = pod_of(&name) {
                    let qos = if qos.is_empty() {
                        "guaranteed".into()
                    } else {
                        qos
                    };
                    out.push((qos, uid, layout, path));
                    continue;
                }
                // QoS level: kubepods-burstable.slice / burstable.
                for (pname, ppath) in read_dirs(&path) {
                    if let Some((qos, uid)) = pod_of(&pname) {
                        let qos = if qos.is_empty() {
                            name.trim_start_matches("kubepods-")
                                .trim_end_matches(".slice")
                                .to_string()
                        } else {
                            qos
                        };
                        out.push((qos, uid, layout, ppath));
                    }
                }
            }
        }
        out
    }

    fn resolved(
        &self,
        layout: Layout,
        qos: Option<String>,
        pod_uid: Option<String>,
        container: Option<(String, &'static str)>,
        cgroup: PathBuf,
    ) -> Result<Resolved, TargetError> {
        let meta = fs::metadata(&cgroup).map_err(|source| TargetError::Io {
            path: cgroup.clone(),
            source,
        })?;
        let mut pids = Vec::new();
        collect_pids(&cgroup, &mut pids, 0);
        let (container_id, runtime) = match container {
            Some((id, rt)) => (Some(id), Some(rt)),
            None => (None, None),
        };
        Ok(Resolved {
            layout,
            qos,
            pod_uid,
            container_id,
            runtime,
            cgroup,
            cgroup_id: meta.ino(),
            pids,
        })
    }

    /// Resolves a pod or container.
    pub fn resolve(&self, target: &TargetRef) -> Result<Resolved, TargetError> {
        match target {
            TargetRef::Pod(uid) => self.pod(uid),
            TargetRef::Container(id) => self.container(id),
        }
    }

    /// The pod cgroup of `uid`.
    pub fn pod(&self, uid: &str) -> Result<Resolved, TargetError> {
        let want = normalize_pod_uid(uid).ok_or_else(|| TargetError::BadPodUid(uid.into()))?;
        let (qos, uid, layout, path) =
            self.pods()
                .into_iter()
                .find(|p| p.1 == want)
                .ok_or_else(|| TargetError::NotFound {
                    what: format!("pod {want}"),
                    root: self.root.clone(),
                })?;
        self.resolved(layout, Some(qos), Some(uid), None, path)
    }

    /// The container cgroup of `id` (a pod's container or a podman container).
    pub fn container(&self, id: &str) -> Result<Resolved, TargetError> {
        let want =
            normalize_container_id(id).ok_or_else(|| TargetError::BadContainerId(id.into()))?;
        let mut hits: Vec<Hit> = Vec::new();
        for (qos, uid, layout, pod) in self.pods() {
            let cgroupfs = layout == Layout::KubeletCgroupfs;
            for (name, path) in read_dirs(&pod) {
                if let Some(c) = container_of(&name, cgroupfs).filter(|c| c.0.starts_with(&want)) {
                    hits.push((layout, Some(qos.clone()), Some(uid.clone()), c, path));
                }
            }
        }
        let podman = self
            .runtime_roots()
            .into_iter()
            .filter(|(l, _)| *l == Layout::Podman);
        for (_, parent) in podman {
            for (name, path) in read_dirs(&parent) {
                if let Some(c) =
                    container_of(&name, false).filter(|c| c.1 == "podman" && c.0.starts_with(&want))
                {
                    hits.push((Layout::Podman, None, None, c, path));
                }
            }
        }
        match hits.len() {
            0 => Err(TargetError::NotFound {
                what: format!("container {want}"),
                root: self.root.clone(),
            }),
            1 => {
                let (layout, qos, uid, c, path) = hits.remove(0);
                self.resolved(layout, qos, uid, Some(c), path)
            }
            n => Err(TargetError::Ambiguous {
                prefix: want,
                count: n,
                first: hits.remove(0).4,
            }),
        }
    }
}

/// Pids of `dir` and its descendants (bounded depth).
fn collect_pids(dir: &Path, out: &mut Vec<u32>, depth: usize) {
    if let Ok(s) = fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(s.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    }
    if depth < 4 {
        for (_, p) in read_dirs(dir) {
            collect_pids(&p, out, depth + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "0f5a1b2c-3d4e-4f60-8a9b-0c1d2e3f4a5b";

    fn cid(c: char) -> String {
        std::iter::repeat_n(c, 64).collect()
    }

    /// A fixture tree: `rels` are directories under a fresh temp root; a `cgroup.procs` with
    /// `pid` goes into the last one.
    struct Tree(PathBuf);

    impl Tree {
        fn new(tag: &str, rels: &[String], pid: u32) -> Self {
            let root = std::env::temp_dir().join(format!("dst-k8s-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&root);
            for r in rels {
                fs::create_dir_all(root.join(r)).unwrap();
            }
            if let Some(last) = rels.last() {
                fs::write(root.join(last).join("cgroup.procs"), format!("{pid}\n")).unwrap();
            }
            Self(root)
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn layouts() -> Vec<(
        &'static str,
        String,
        String,
        Layout,
        &'static str,
        &'static str,
    )> {
        let u = UID.replace('-', "_");
        let a = cid('a');
        vec![
            // (tag, pod dir, container dir, layout, qos, runtime)
            (
                "sd-burst",
                format!("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice"),
                format!("cri-containerd-{a}.scope"),
                Layout::KubeletSystemd,
                "burstable",
                "containerd",
            ),
            (
                "sd-best",
                format!(
                    "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{u}.slice"
                ),
                format!("crio-{a}.scope"),
                Layout::KubeletSystemd,
                "besteffort",
                "crio",
            ),
            (
                "sd-guar",
                format!("kubepods.slice/kubepods-pod{u}.slice"),
                format!("cri-containerd-{a}.scope"),
                Layout::KubeletSystemd,
                "guaranteed",
                "containerd",
            ),
            (
                "kind",
                format!(
                    "kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{u}.slice"
                ),
                format!("cri-containerd-{a}.scope"),
                Layout::KubeletSystemd,
                "besteffort",
                "containerd",
            ),
            (
                "fs-burst",
                format!("kubepods/burstable/pod{UID}"),
                a.clone(),
                Layout::KubeletCgroupfs,
                "burstable",
                "cgroupfs",
            ),
            (
                "fs-best",
                format!("kubepods/besteffort/pod{UID}"),
                a.clone(),
                Layout::KubeletCgroupfs,
                "besteffort",
                "cgroupfs",
            ),
            (
                "fs-guar",
                format!("kubepods/pod{UID}"),
                a.clone(),
                Layout::KubeletCgroupfs,
                "guaranteed",
                "cgroupfs",
            ),
        ]
    }

    #[test]
    fn every_kubelet_layout_resolves_pod_and_container() {
        for (tag, pod, ctr, layout, qos, runtime) in layouts() {
            let rels = vec![
                // A sibling the resolver must not pick: conmon's scope or another container.
                format!(
                    "{pod}/{}",
                    if runtime == "crio" {
                        format!("crio-conmon-{}.scope", cid('a'))
                    } else {
                        ctr.replace(&cid('a'), &cid('c'))
                    }
                ),
                format!("{pod}/{ctr}"),
            ];
            let t = Tree::new(tag, &rels, 4242);
            let r = Resolver::new(&t.0);
            // Pod UID in both spellings.
            for spelling in [UID.to_string(), UID.replace('-', "_"), UID.to_uppercase()] {
                let p = r.pod(&spelling).unwrap_or_else(|e| panic!("{tag}: {e}"));
                assert_eq!(p.cgroup, t.0.join(&pod), "{tag}");
                assert_eq!(p.layout, layout, "{tag}");
                assert_eq!(p.qos.as_deref(), Some(qos), "{tag}");
                assert_eq!(p.pod_uid.as_deref(), Some(UID), "{tag}");
                assert_eq!(p.pids, vec![4242], "{tag}: pids below the pod");
                assert_eq!(p.netns_path().unwrap(), PathBuf::from("/proc/4242/ns/net"));
            }
            for id in [
                cid('a'),
                cid('a')[..12].to_string(),
                format!("containerd://{}", cid('a')),
            ] {
                let c = r
                    .container(&id)
                    .unwrap_or_else(|e| panic!("{tag} {id}: {e}"));
                assert_eq!(c.cgroup, t.0.join(&pod).join(&ctr), "{tag}");
                assert_eq!(c.runtime, Some(runtime), "{tag}");
                assert_eq!(c.pod_uid.as_deref(), Some(UID), "{tag}");
                assert_eq!(c.container_id.as_deref(), Some(cid('a').as_str()));
                assert_eq!(c.cgroup_id, fs::metadata(&c.cgroup).unwrap().ino());
            }
            // Another pod's UID is not found, and says where it looked.
            let other = "11111111-2222-4333-8444-555555555555";
            assert!(
                matches!(r.pod(other), Err(TargetError::NotFound { .. })),
                "{tag}"
            );
        }
    }

    #[test]
    fn podman_layouts_resolve_containers() {
        let a = cid('d');
        for (tag, dir) in [
            ("pm-fs", format!("libpod_parent/libpod-{a}")),
            ("pm-sd", format!("machine.slice/libpod-{a}.scope")),
        ] {
            let t = Tree::new(tag, std::slice::from_ref(&dir), 77);
            let c = Resolver::new(&t.0).container(&a[..16]).unwrap();
            assert_eq!(
                (c.layout, c.runtime, c.pids.clone()),
                (Layout::Podman, Some("podman"), vec![77])
            );
            assert_eq!(c.cgroup, t.0.join(&dir));
            assert!(c.pod_uid.is_none());
        }
    }

    #[test]
    fn bad_ambiguous_and_empty_targets_are_refused() {
        let u = UID.replace('-', "_");
        let pod =
            format!("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice");
        let one = format!("ab00000000001{}", "2".repeat(51));
        let two = format!("ab00000000001{}", "3".repeat(51));
        let t = Tree::new(
            "amb",
            &[
                format!("{pod}/cri-containerd-{one}.scope"),
                format!("{pod}/cri-containerd-{two}.scope"),
            ],
            0,
        );
        fs::write(
            t.0.join(&pod)
                .join(format!("cri-containerd-{two}.scope/cgroup.procs")),
            "",
        )
        .unwrap();
        let r = Resolver::new(&t.0);
        match r.container("ab00000000001") {
            Err(TargetError::Ambiguous { count: 2, .. }) => {}
            other => panic!("an ambiguous prefix must be refused: {other:?}"),
        }
        assert_eq!(
            r.container(&one).unwrap().container_id.as_deref(),
            Some(one.as_str())
        );
        assert!(matches!(
            r.container("abab"),
            Err(TargetError::BadContainerId(_))
        ));
        assert!(matches!(
            r.container("zz0000000000"),
            Err(TargetError::BadContainerId(_))
        ));
        assert!(matches!(r.pod("not-a-uid"), Err(TargetError::BadPodUid(_))));
        let empty = r.container(&two).unwrap();
        assert!(empty.pids.is_empty());
        assert!(matches!(empty.netns_path(), Err(TargetError::NoProcess(_))));
    }

    #[test]
    fn names() {
        assert_eq!(
            normalize_pod_uid(&UID.replace('-', "_")).as_deref(),
            Some(UID)
        );
        assert_eq!(normalize_pod_uid("0f5a1b2c"), None);
        assert_eq!(
            normalize_container_id("cri-o://ABCDEF012345").as_deref(),
            Some("abcdef012345")
        );
        assert_eq!(normalize_container_id("xyz"), None);
        assert_eq!(
            container_of(&format!("crio-conmon-{}.scope", cid('a')), false),
            None
        );
        assert_eq!(container_of("init.scope", false), None);
        assert_eq!(pod_of("kubepods-burstable.slice"), None);
    }
}
