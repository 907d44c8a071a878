//! `dst probe`: the kernel capability matrix, found by trying each mechanism (load a tiny
//! program, attach it in a private network namespace or a throwaway cgroup, create a qdisc),
//! never by reading the kernel version; then the backend each fault kind would use.

mod backends;
mod errno;
mod ifb;
mod programs;
mod system;

use std::{collections::BTreeMap, time::Instant};

pub use backends::{Backend, BackendChoice, FaultKind, choose_backends};
pub use errno::{errno_name, explain_errno};
use serde::Serialize;

/// Every mechanism the probe checks, in report order (also the JSON keys).
pub const MECHANISMS: &[&str] = &[
    "btf",
    "bpffs",
    "cgroup2",
    "securityfs",
    "tcx",
    "clsact",
    "xdp",
    "cgroup_skb",
    "cgroup_sock_addr",
    "cgroup_sock_create",
    "lsm",
    "fentry",
    "fmod_ret",
    "kprobe",
    "tracepoint",
    "ringbuf",
    "bpf_send_signal",
    "bpf_timer",
    "fq",
    "ifb_edt",
    "netem",
    "tap",
    "af_xdp",
    "seccomp_user_notif",
];

/// The result of trying one mechanism.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Capability {
    /// Whether dst can use it here.
    pub available: bool,
    /// Why not (present when `available` is false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The errno the kernel answered, by name, when that was the reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errno: Option<String>,
    /// What was tried or found (mount point, LSM list, attach mechanism ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Capability {
    /// Available, with what was found.
    pub fn yes(detail: impl Into<String>) -> Self {
        Self {
            available: true,
            reason: None,
            errno: None,
            detail: Some(detail.into()),
        }
    }

    /// Not available, for a reason that is not an errno.
    pub fn no(reason: impl Into<String>) -> Self {
        Self {
            available: false,
            reason: Some(reason.into()),
            errno: None,
            detail: None,
        }
    }

    /// Not available because `what` failed with `errno`.
    pub fn failed(what: &str, errno: i32) -> Self {
        Self {
            available: false,
            reason: Some(format!(
                "{what}: {} ({})",
                errno_name(errno),
                explain_errno(errno)
            )),
            errno: Some(errno_name(errno).to_string()),
            detail: None,
        }
    }
}

/// Kernel identity, for the report header only (never used to decide anything).
#[derive(Clone, Debug, Serialize)]
pub struct KernelInfo {
    /// `uname -r`.
    pub release: String,
    /// `uname -m`.
    pub machine: String,
}

/// The full probe result.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeReport {
    /// Kernel identity.
    pub kernel: KernelInfo,
    /// Mechanism name → result (flattened: `report.tcx.available`).
    #[serde(flatten)]
    pub mechanisms: BTreeMap<String, Capability>,
    /// Fault kind → chosen backend or why none.
    pub backends: Vec<BackendChoice>,
    /// Pseudo filesystems the probe had to mount (tracefs, bpffs).
    pub mounted: Vec<String>,
    /// How long probing took.
    pub elapsed_ms: u64,
}

impl ProbeReport {
    /// Whether `mechanism` is available (false for unknown names).
    pub fn has(&self, mechanism: &str) -> bool {
        self.mechanisms.get(mechanism).is_some_and(|c| c.available)
    }

    /// Human-readable matrix.
    pub fn render(&self) -> String {
        let mut out = format!(
            "kernel {} ({})\n\n",
            self.kernel.release, self.kernel.machine
        );
        out.push_str(&format!(
            "{:<20} {:<5} {}\n",
            "MECHANISM", "OK", "DETAIL / REASON"
        ));
        for name in MECHANISMS {
            if let Some(c) = self.mechanisms.get(*name) {
                let text = if c.available {
                    c.detail.clone()
                } else {
                    c.reason.clone()
                };
                let ok = if c.available { "yes" } else { "no" };
                out.push_str(&format!(
                    "{name:<20} {ok:<5} {}\n",
                    text.unwrap_or_default()
                ));
            }
        }
        out.push_str(&format!("\n{:<22} {:<22} {}\n", "FAULT", "BACKEND", "WHY"));
        for b in &self.backends {
            let backend = b.backend.map_or("none".to_string(), |b| b.to_string());
            out.push_str(&format!(
                "{:<22} {:<22} {}\n",
                b.fault.to_string(),
                backend,
                b.why
            ));
        }
        for m in &self.mounted {
            out.push_str(&format!("\nnote: {m}"));
        }
        out.push_str(&format!("\nprobed in {} ms\n", self.elapsed_ms));
        out
    }
}

/// The facts the network engine chooses delay backends by, without the full probe: fq and
/// TAP on a private namespace, and the ifb check only when fq works.
pub fn net_facts() -> crate::net::backend::NetFacts {
    let mut caps = BTreeMap::new();
    system::devices(&mut caps);
    let has = |m: &str| caps.get(m).is_some_and(|c: &Capability| c.available);
    let fq = has("fq");
    crate::net::backend::NetFacts {
        fq,
        tap: has("tap"),
        ifb_edt: fq && ifb::ifb_edt(true).available,
    }
}

/// Runs every check. Needs root; each check cleans up what it created.
pub fn run() -> ProbeReport {
    let start = Instant::now();
    let mounted = crate::ebpf::ensure_pseudo_filesystems();
    let mut mechanisms = BTreeMap::new();
    system::filesystems(&mut mechanisms);
    programs::all(&mut mechanisms);
    system::devices(&mut mechanisms);
    let fq = mechanisms.get("fq").is_some_and(|c| c.available);
    mechanisms.insert("ifb_edt".into(), ifb::ifb_edt(fq));
    let backends =
        choose_backends(&|m| mechanisms.get(m).is_some_and(|c: &Capability| c.available));
    let uts = nix::sys::utsname::uname().ok();
    let kernel = KernelInfo {
        release: uts
            .as_ref()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        machine: uts
            .as_ref()
            .map(|u| u.machine().to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    ProbeReport {
        kernel,
        mechanisms,
        backends,
        mounted,
        elapsed_ms: start.elapsed().as_millis() as u64,
    }
}
