//! dst userspace library: loads and probes the kernel programs, drives faults and collects
//! evidence. The `dst` binary (src/main.rs) is a thin clap layer over this crate.

pub mod bpf_sys;
pub mod cgroup;
pub mod client;
pub mod cluster;
pub mod daemon;
pub mod ebpf;
pub mod fault;
pub mod history;
pub mod k8s;
pub mod net;
pub mod netlink;
pub mod netns;
pub mod probe;
pub mod remote;
pub mod runner;
pub mod selftest;
pub mod sys;
pub mod testing;
pub mod tls;
pub mod verdict;
