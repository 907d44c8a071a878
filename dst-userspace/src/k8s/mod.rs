//! Kubernetes and container targeting: pod UIDs and container ids resolved to their cgroup v2
//! directory (kubelet's systemd and cgroupfs drivers, containerd/CRI-O/docker naming, podman)
//! and network namespace, and pod names or label selectors resolved through the Kubernetes API.

pub mod api;
pub mod lookup;
pub mod resolve;

pub use lookup::{LookupError, lookup, lookup_blocking, retarget};
pub use resolve::{Layout, Resolved, Resolver, TargetError, TargetRef};
