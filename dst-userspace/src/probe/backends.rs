//! Which kernel mechanism carries each fault kind, best first (DESIGN.md backend table), and
//! the choice for this kernel given what the probe found. A fault kind with no backend gets the
//! reason, so the engine can refuse it instead of silently doing nothing.

use std::fmt;

use serde::Serialize;

/// The fault kinds of DESIGN.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Drop and partitions.
    Drop,
    /// Delay, jitter, reorder.
    Delay,
    /// Duplicate and corrupt.
    DuplicateCorrupt,
    /// Bandwidth limit.
    Bandwidth,
    /// connect / bind / UDP sendmsg / socket / sockopt errno.
    SocketErrno,
    /// accept / recvmsg / TCP send errno.
    SocketIoErrno,
    /// open / read / write / fsync / mmap / fork errno.
    FileErrno,
    /// Process crash and pause.
    Process,
    /// Observation of what processes saw.
    Observation,
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Drop => "drop/partition",
            Self::Delay => "delay/jitter/reorder",
            Self::DuplicateCorrupt => "duplicate/corrupt",
            Self::Bandwidth => "bandwidth",
            Self::SocketErrno => "connect/bind/socket errno",
            Self::SocketIoErrno => "accept/recv/send errno",
            Self::FileErrno => "file syscall errno",
            Self::Process => "process crash/pause",
            Self::Observation => "observation",
        })
    }
}

/// A kernel mechanism that can carry faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// TCX classifier.
    Tcx,
    /// tc clsact + cls_bpf.
    Clsact,
    /// cgroup_skb programs.
    CgroupSkb,
    /// EDT: skb->tstamp enforced by fq.
    EdtFq,
    /// tc redirect to a TAP device and a userspace delay line.
    DelayLine,
    /// cgroup sock_addr / sock_create hooks with bpf_set_retval.
    CgroupSock,
    /// BPF LSM.
    Lsm,
    /// fmod_ret on security_* functions.
    FmodRet,
    /// seccomp user notification supervisor (processes dst launches).
    Seccomp,
    /// Signals, with bpf_send_signal for in-kernel triggers.
    Signals,
    /// Tracepoints and a ring buffer.
    Tracepoints,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcx => "tcx",
            Self::Clsact => "tc clsact",
            Self::CgroupSkb => "cgroup_skb",
            Self::EdtFq => "edt-fq",
            Self::DelayLine => "delay-line",
            Self::CgroupSock => "cgroup sock hooks",
            Self::Lsm => "bpf lsm",
            Self::FmodRet => "fmod_ret",
            Self::Seccomp => "seccomp user-notif",
            Self::Signals => "signals",
            Self::Tracepoints => "tracepoints+ringbuf",
        })
    }
}

/// The backend chosen for one fault kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BackendChoice {
    /// The fault kind.
    pub fault: FaultKind,
    /// The best available backend, or none.
    pub backend: Option<Backend>,
    /// Why this one (or why none): the mechanisms it needs and which were missing.
    pub why: String,
}

/// Candidates per fault kind, best first, each with the mechanisms it needs (all of them).
pub fn candidates(kind: FaultKind) -> &'static [(Backend, &'static [&'static str])] {
    use Backend::*;
    match kind {
        FaultKind::Drop => &[
            (Tcx, &["tcx"]),
            (Clsact, &["clsact"]),
            (CgroupSkb, &["cgroup_skb"]),
        ],
        FaultKind::Delay => &[
            (EdtFq, &["tcx", "fq"]),
            (EdtFq, &["clsact", "fq"]),
            (DelayLine, &["tcx", "tap"]),
            (DelayLine, &["clsact", "tap"]),
        ],
        FaultKind::DuplicateCorrupt => &[(Tcx, &["tcx"]), (Clsact, &["clsact"])],
        FaultKind::Bandwidth => &[
            (EdtFq, &["tcx", "fq"]),
            (EdtFq, &["clsact", "fq"]),
            (DelayLine, &["tcx", "tap"]),
        ],
        FaultKind::SocketErrno => &[(CgroupSock, &["cgroup_sock_addr", "cgroup_sock_create"])],
        FaultKind::SocketIoErrno => &[(Lsm, &["lsm"]), (Seccomp, &["seccomp_user_notif"])],
        FaultKind::FileErrno => &[
            (Lsm, &["lsm"]),
            (FmodRet, &["fmod_ret"]),
            (Seccomp, &["seccomp_user_notif"]),
        ],
        FaultKind::Process => &[(Signals, &[])],
        FaultKind::Observation => &[(Tracepoints, &["tracepoint", "ringbuf"])],
    }
}

/// All fault kinds in report order.
pub const ALL_KINDS: &[FaultKind] = &[
    FaultKind::Drop,
    FaultKind::Delay,
    FaultKind::DuplicateCorrupt,
    FaultKind::Bandwidth,
    FaultKind::SocketErrno,
    FaultKind::SocketIoErrno,
    FaultKind::FileErrno,
    FaultKind::Process,
    FaultKind::Observation,
];

/// Picks the first candidate whose mechanisms are all available.
pub fn choose_backends(has: &dyn Fn(&str) -> bool) -> Vec<BackendChoice> {
    ALL_KINDS
        .iter()
        .map(|&fault| {
            let mut skipped = Vec::new();
            for (backend, needs) in candidates(fault) {
                let missing: Vec<&str> = needs.iter().copied().filter(|m| !has(m)).collect();
                if missing.is_empty() {
                    let why = if skipped.is_empty() {
                        format!("best backend; needs {}", needs_text(needs))
                    } else {
                        format!(
                            "{} (better ones lack: {})",
                            needs_text(needs),
                            skipped.join("; ")
                        )
                    };
                    return BackendChoice {
                        fault,
                        backend: Some(*backend),
                        why,
                    };
                }
                skipped.push(format!("{backend}: {}", missing.join("+")));
            }
            BackendChoice {
                fault,
                backend: None,
                why: format!("no backend: {}", skipped.join("; ")),
            }
        })
        .collect()
}

fn needs_text(needs: &[&str]) -> String {
    if needs.is_empty() {
        "nothing from the kernel".into()
    } else {
        needs.join("+")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(avail: &[&str], kind: FaultKind) -> Option<Backend> {
        let has = |m: &str| avail.contains(&m);
        choose_backends(&has)
            .into_iter()
            .find(|c| c.fault == kind)
            .unwrap()
            .backend
    }

    #[test]
    fn ci_kernel_shape() {
        // What this project's CI kernel has: TCX, TAP, cgroup hooks, no fq, no LSM, no trampolines.
        let ci = [
            "tcx",
            "clsact",
            "tap",
            "cgroup_skb",
            "cgroup_sock_addr",
            "cgroup_sock_create",
            "seccomp_user_notif",
            "tracepoint",
            "ringbuf",
        ];
        assert_eq!(pick(&ci, FaultKind::Drop), Some(Backend::Tcx));
        assert_eq!(pick(&ci, FaultKind::Delay), Some(Backend::DelayLine));
        assert_eq!(pick(&ci, FaultKind::FileErrno), Some(Backend::Seccomp));
        assert_eq!(pick(&ci, FaultKind::SocketErrno), Some(Backend::CgroupSock));
    }

    #[test]
    fn vm_kernel_prefers_lsm_and_edt() {
        let vm = [
            "clsact",
            "fq",
            "lsm",
            "fmod_ret",
            "tap",
            "seccomp_user_notif",
        ];
        assert_eq!(pick(&vm, FaultKind::Drop), Some(Backend::Clsact));
        assert_eq!(pick(&vm, FaultKind::Delay), Some(Backend::EdtFq));
        assert_eq!(pick(&vm, FaultKind::FileErrno), Some(Backend::Lsm));
    }

    #[test]
    fn nothing_available_names_what_is_missing() {
        let c = choose_backends(&|_| false);
        let drop = c.iter().find(|c| c.fault == FaultKind::Drop).unwrap();
        assert_eq!(drop.backend, None);
        assert!(
            drop.why.contains("tcx") && drop.why.contains("cgroup_skb"),
            "{}",
            drop.why
        );
        // Signals need nothing from the kernel.
        assert_eq!(
            c.iter()
                .find(|c| c.fault == FaultKind::Process)
                .unwrap()
                .backend,
            Some(Backend::Signals)
        );
    }
}
