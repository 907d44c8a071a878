//! One entry point for every caller (CLI flags, fault files, the daemon API): a `pod` (UID,
//! `namespace/name`, `namespace/label=selector`) or `container` reference → a [`Resolved`]
//! cgroup on this node, and a network target rewritten onto that cgroup or netns.

use super::{
    api::{ApiError, KubeApi},
    resolve::{Resolved, Resolver, TargetError, TargetRef, normalize_pod_uid},
};
use crate::fault::NetTarget;

/// Why a pod or container reference could not be turned into a target.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// Local resolution failed.
    #[error(transparent)]
    Resolve(#[from] TargetError),
    /// The Kubernetes API lookup failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Every pod the selector matched runs on another node.
    #[error(
        "{selector}: the matching pods ({pods}) do not run on this node; ask the daemon of their node"
    )]
    NotOnThisNode {
        /// What was asked.
        selector: String,
        /// The pods found.
        pods: String,
    },
}

/// How a pod reference is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodRef {
    /// A UID.
    Uid(String),
    /// `namespace/name`.
    Name(String, String),
    /// `namespace/label=value,...`.
    Selector(String, String),
}

/// Parses a `pod` reference.
pub fn parse_pod_ref(s: &str) -> PodRef {
    if let Some(uid) = normalize_pod_uid(s) {
        return PodRef::Uid(uid);
    }
    match s.split_once('/') {
        Some((ns, rest)) if rest.contains('=') => PodRef::Selector(ns.into(), rest.into()),
        Some((ns, name)) => PodRef::Name(ns.into(), name.into()),
        None => PodRef::Uid(s.into()),
    }
}

/// Resolves a pod or container reference on this node.
pub async fn lookup(
    resolver: &Resolver,
    pod: Option<&str>,
    container: Option<&str>,
) -> Result<Resolved, LookupError> {
    if let Some(c) = container {
        return Ok(resolver.resolve(&TargetRef::Container(c.to_string()))?);
    }
    let Some(pod) = pod else {
        return Err(TargetError::BadPodUid(String::new()).into());
    };
    let pods = match parse_pod_ref(pod) {
        PodRef::Uid(uid) => return Ok(resolver.pod(&uid)?),
        PodRef::Name(ns, name) => vec![KubeApi::in_cluster()?.pod(&ns, &name).await?],
        PodRef::Selector(ns, sel) => KubeApi::in_cluster()?.select(&ns, &sel).await?,
    };
    for p in &pods {
        if let Ok(r) = resolver.pod(&p.uid) {
            return Ok(r);
        }
    }
    Err(LookupError::NotOnThisNode {
        selector: pod.to_string(),
        pods: pods
            .iter()
            .map(|p| {
                format!(
                    "{}/{} on {}",
                    p.namespace,
                    p.name,
                    p.node.as_deref().unwrap_or("?")
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// [`lookup`] for callers without a runtime.
pub fn lookup_blocking(
    resolver: &Resolver,
    pod: Option<&str>,
    container: Option<&str>,
) -> Result<Resolved, LookupError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| TargetError::Io {
            path: "tokio runtime".into(),
            source,
        })?;
    rt.block_on(lookup(resolver, pod, container))
}

/// The target with `pod`/`container` replaced by what they resolved to: the cgroup, or with a
/// `dev` the pod's network namespace (`/proc/PID/ns/net`). The references stay for the record.
pub fn retarget(t: &NetTarget, r: &Resolved) -> Result<NetTarget, LookupError> {
    let mut out = t.clone();
    if t.dev.is_some() {
        out.netns = Some(r.netns_path()?.display().to_string());
    } else {
        out.cgroup = Some(r.cgroup.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_references() {
        let uid = "0f5a1b2c-3d4e-4f60-8a9b-0c1d2e3f4a5b";
        assert_eq!(parse_pod_ref(uid), PodRef::Uid(uid.into()));
        assert_eq!(
            parse_pod_ref(&uid.replace('-', "_")),
            PodRef::Uid(uid.into())
        );
        assert_eq!(
            parse_pod_ref("db/etcd-0"),
            PodRef::Name("db".into(), "etcd-0".into())
        );
        assert_eq!(
            parse_pod_ref("db/app=etcd,tier=x"),
            PodRef::Selector("db".into(), "app=etcd,tier=x".into())
        );
    }

    #[test]
    fn retarget_picks_cgroup_or_netns() {
        let r = Resolved {
            layout: super::super::Layout::KubeletCgroupfs,
            qos: None,
            pod_uid: None,
            container_id: None,
            runtime: None,
            cgroup: "/sys/fs/cgroup/kubepods/podx".into(),
            cgroup_id: 1,
            pids: vec![42],
        };
        let t = NetTarget {
            pod: Some("u".into()),
            ..Default::default()
        };
        assert_eq!(retarget(&t, &r).unwrap().cgroup, Some(r.cgroup.clone()));
        let t = NetTarget {
            dev: Some("eth0".into()),
            ..t
        };
        let n = retarget(&t, &r).unwrap();
        assert_eq!(n.netns.as_deref(), Some("/proc/42/ns/net"));
        assert_eq!(n.cgroup, None);
    }
}
