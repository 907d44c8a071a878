//! Privileged tier: real programs on the running kernel, in namespaces and cgroups that each
//! test creates and removes (RAII). Compiled only with `--features privileged-tests`; run one
//! at a time through `cargo xtask privileged` (or `cargo xtask test`), as root.
//!
//! One module per area; each test names its namespaces with [`unique`] so parallel runs of
//! different checkouts never collide.
#![cfg(feature = "privileged-tests")]

mod cluster;
mod containers;
mod daemon;
mod daemon_delay;
mod daemon_sys;
mod edt;
mod foundation;
mod k8s;
mod lsm;
mod net;
mod run_cluster;
mod runner;
mod support;
mod sys;

/// A namespace-name prefix unique to this test process.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}-", std::process::id() % 100_000)
}

/// Whether a named network namespace exists.
pub fn ns_exists(name: &str) -> bool {
    std::path::Path::new("/run/netns").join(name).exists()
}
