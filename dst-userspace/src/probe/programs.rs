//! Program-level checks: load each trivial program of the `dst-probe` object and attach it
//! where attaching is the real question (TCX/clsact/XDP on `lo` of a private network namespace,
//! cgroup hooks on a throwaway cgroup, tracepoint, kprobe, LSM and trampolines).

use std::{collections::BTreeMap, os::fd::AsFd as _};

use aya::{
    Btf, Ebpf, EbpfLoader,
    maps::MapType,
    programs::{
        CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, CgroupSock, CgroupSockAddr, FEntry,
        KProbe, LinkOrder, Lsm, ProgramError, ProgramType, SchedClassifier, TcAttachType,
        TracePoint, Xdp,
        tc::{NlOptions, TcAttachOptions},
    },
    sys::{BpfHelper, is_helper_supported, is_map_supported},
};

use super::Capability;
use crate::{cgroup::Cgroup, ebpf::PROBE_OBJ};

type Caps = BTreeMap<String, Capability>;

/// The errno behind an aya program error, when there is one.
pub(crate) fn program_errno(e: &ProgramError) -> Option<i32> {
    match e {
        ProgramError::LoadError { io_error, .. } => io_error.raw_os_error(),
        ProgramError::SyscallError(s) => s.io_error.raw_os_error(),
        ProgramError::IOError(e) => e.raw_os_error(),
        ProgramError::TcError(aya::programs::tc::TcError::IoError(e)) => e.raw_os_error(),
        ProgramError::TcError(aya::programs::tc::TcError::NetlinkError(e)) => {
            netlink_errno(&e.to_string())
        }
        ProgramError::NetlinkError(e) => netlink_errno(&e.to_string()),
        ProgramError::KProbeError(aya::programs::kprobe::KProbeError::FileError {
            io_error,
            ..
        }) => io_error.raw_os_error(),
        ProgramError::TracePointError(aya::programs::trace_point::TracePointError::FileError {
            io_error,
            ..
        }) => io_error.raw_os_error(),
        _ => None,
    }
}

fn netlink_errno(text: &str) -> Option<i32> {
    // aya's netlink errors print the OS error ("... (os error 22)").
    let start = text.rfind("os error ")? + "os error ".len();
    text[start..].trim_end_matches(')').parse().ok()
}

fn cap_from(what: &str, e: &ProgramError) -> Capability {
    match program_errno(e) {
        Some(errno) => Capability::failed(what, errno),
        None => Capability::no(format!("{what}: {e}")),
    }
}

fn typed<'a, T>(bpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, String>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    bpf.program_mut(name)
        .ok_or_else(|| format!("{name} missing from the probe object"))?
        .try_into()
        .map_err(|e: ProgramError| e.to_string())
}

/// Runs every program-level check and records the results.
pub(super) fn all(caps: &mut Caps) {
    let btf = Btf::from_sys_fs().ok();
    let mut loader = EbpfLoader::new();
    if let Some(btf) = btf.as_ref() {
        loader.btf(Some(btf));
    }
    let mut bpf = match loader.load(PROBE_OBJ) {
        Ok(b) => b,
        Err(e) => {
            let c = Capability::no(format!("loading the probe object failed: {e}"));
            for name in [
                "tcx",
                "clsact",
                "xdp",
                "cgroup_skb",
                "cgroup_sock_addr",
                "cgroup_sock_create",
            ] {
                caps.insert(name.into(), c.clone());
            }
            return;
        }
    };
    netns_checks(&mut bpf, caps);
    cgroup_checks(&mut bpf, caps);
    tracing_checks(&mut bpf, btf.as_ref(), caps);
    caps.insert("fmod_ret".into(), super::system::fmod_ret(btf.as_ref()));
    caps.insert(
        "ringbuf".into(),
        match is_map_supported(MapType::RingBuf) {
            Ok(true) => Capability::yes("BPF_MAP_TYPE_RINGBUF created"),
            Ok(false) => Capability::no("BPF_MAP_TYPE_RINGBUF refused: kernel older than 5.8"),
            Err(e) => match e.io_error.raw_os_error() {
                Some(errno) => Capability::failed("creating a ring buffer", errno),
                None => Capability::no(e.to_string()),
            },
        },
    );
    caps.insert(
        "bpf_send_signal".into(),
        helper(
            ProgramType::TracePoint,
            BpfHelper::BPF_FUNC_send_signal,
            "bpf_send_signal from a tracepoint",
        ),
    );
    caps.insert(
        "bpf_timer".into(),
        helper(
            ProgramType::SchedClassifier,
            BpfHelper::BPF_FUNC_timer_init,
            "bpf_timer_init from a tc program",
        ),
    );
}

fn helper(pt: ProgramType, h: BpfHelper, what: &str) -> Capability {
    match is_helper_supported(pt, h) {
        Ok(true) => Capability::yes(format!("{what}: verifier knows the helper")),
        Ok(false) => Capability::no(format!("{what}: verifier reports an unknown helper")),
        Err(e) => cap_from(what, &e),
    }
}

/// TCX, clsact and XDP on `lo` inside a private network namespace that vanishes with the thread.
fn netns_checks(bpf: &mut Ebpf, caps: &mut Caps) {
    let result = std::thread::scope(|s| {
        s.spawn(|| -> Result<Vec<(&'static str, Capability)>, String> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("unshare(CLONE_NEWNET): {e}"))?;
            let nl = crate::netlink::Netlink::new().map_err(|e| e.to_string())?;
            let lo = nl.link_index("lo").map_err(|e| e.to_string())?;
            nl.link_up(lo).map_err(|e| e.to_string())?;
            let mut out = Vec::new();

            let tc = typed::<SchedClassifier>(bpf, "probe_tc")?;
            match tc.load() {
                Err(e) => {
                    let c = cap_from("loading a sched_cls program", &e);
                    out.push(("tcx", c.clone()));
                    out.push(("clsact", c));
                }
                Ok(()) => {
                    let tcx = tc.attach_with_options(
                        "lo",
                        TcAttachType::Ingress,
                        TcAttachOptions::TcxOrder(LinkOrder::default()),
                    );
                    out.push(match tcx {
                        Ok(id) => {
                            let _ = tc.detach(id);
                            (
                                "tcx",
                                Capability::yes(
                                    "TCX link attached to lo ingress in a private netns",
                                ),
                            )
                        }
                        Err(e) => ("tcx", cap_from("attaching a TCX link", &e)),
                    });
                    let clsact = aya::programs::tc::qdisc_add_clsact("lo")
                        .map_err(ProgramError::from)
                        .and_then(|()| {
                            tc.attach_with_options(
                                "lo",
                                TcAttachType::Ingress,
                                TcAttachOptions::Netlink(NlOptions::default()),
                            )
                        });
                    out.push(match clsact {
                        Ok(id) => {
                            let _ = tc.detach(id);
                            (
                                "clsact",
                                Capability::yes(
                                    "clsact qdisc + cls_bpf filter (direct action) on lo",
                                ),
                            )
                        }
                        Err(e) => ("clsact", cap_from("clsact qdisc + cls_bpf attach", &e)),
                    });
                    // Leave no clsact qdisc behind even though the namespace is about to vanish.
                    let _ = nl.del_clsact(lo);
                }
            }

            let xdp = typed::<Xdp>(bpf, "probe_xdp")?;
            out.push(
                match xdp
                    .load()
                    .and_then(|()| xdp.attach("lo", aya::programs::xdp::XdpMode::Skb))
                {
                    Ok(id) => {
                        let _ = xdp.detach(id);
                        ("xdp", Capability::yes("XDP (generic mode) attached to lo"))
                    }
                    Err(e) => ("xdp", cap_from("loading/attaching an XDP program", &e)),
                },
            );
            Ok(out)
        })
        .join()
    });
    match result {
        Ok(Ok(found)) => {
            for (k, c) in found {
                caps.insert(k.into(), c);
            }
        }
        Ok(Err(e)) => {
            for k in ["tcx", "clsact", "xdp"] {
                caps.insert(
                    k.into(),
                    Capability::no(format!("private network namespace: {e}")),
                );
            }
        }
        Err(_) => {
            for k in ["tcx", "clsact", "xdp"] {
                caps.insert(
                    k.into(),
                    Capability::no("the probe thread panicked (a bug in dst)"),
                );
            }
        }
    }
}

/// cgroup_skb, sock_addr (connect4) and sock_create on a throwaway cgroup.
fn cgroup_checks(bpf: &mut Ebpf, caps: &mut Caps) {
    let cg = match Cgroup::create(&format!("dst-probe-{}", std::process::id())) {
        Ok(c) => c,
        Err(e) => {
            for k in ["cgroup_skb", "cgroup_sock_addr", "cgroup_sock_create"] {
                caps.insert(
                    k.into(),
                    Capability::no(format!("creating a throwaway cgroup: {e}")),
                );
            }
            return;
        }
    };
    let file = match std::fs::File::open(cg.path()) {
        Ok(f) => f,
        Err(e) => {
            for k in ["cgroup_skb", "cgroup_sock_addr", "cgroup_sock_create"] {
                caps.insert(
                    k.into(),
                    Capability::no(format!("opening the throwaway cgroup: {e}")),
                );
            }
            return;
        }
    };
    // aya attaches through bpf_link on 5.7+, where flags must be 0 and the link is always
    // multi-attach; passing ALLOW_MULTI there is EINVAL.
    let mode = CgroupAttachMode::Single;
    let c = match typed::<CgroupSkb>(bpf, "probe_cgroup_skb") {
        Ok(p) => match p
            .load()
            .and_then(|()| p.attach(file.as_fd(), CgroupSkbAttachType::Ingress, mode))
        {
            Ok(id) => {
                let _ = p.detach(id);
                Capability::yes("cgroup_skb ingress attached to a throwaway cgroup")
            }
            Err(e) => cap_from("cgroup_skb load/attach", &e),
        },
        Err(e) => Capability::no(e),
    };
    caps.insert("cgroup_skb".into(), c);
    let c = match typed::<CgroupSockAddr>(bpf, "probe_connect4") {
        Ok(p) => match p.load().and_then(|()| p.attach(file.as_fd(), mode)) {
            Ok(id) => {
                let _ = p.detach(id);
                Capability::yes("cgroup/connect4 attached to a throwaway cgroup")
            }
            Err(e) => cap_from("cgroup/connect4 load/attach", &e),
        },
        Err(e) => Capability::no(e),
    };
    caps.insert("cgroup_sock_addr".into(), c);
    let c = match typed::<CgroupSock>(bpf, "probe_sock_create") {
        Ok(p) => match p.load().and_then(|()| p.attach(file.as_fd(), mode)) {
            Ok(id) => {
                let _ = p.detach(id);
                Capability::yes("cgroup/sock_create attached to a throwaway cgroup")
            }
            Err(e) => cap_from("cgroup/sock_create load/attach", &e),
        },
        Err(e) => Capability::no(e),
    };
    caps.insert("cgroup_sock_create".into(), c);
    drop(file);
    if let Err(e) = cg.remove() {
        tracing::warn!("probe cgroup left behind: {e}");
    }
}

/// Tracepoint, kprobe, BPF LSM and fentry.
fn tracing_checks(bpf: &mut Ebpf, btf: Option<&Btf>, caps: &mut Caps) {
    let c = match typed::<TracePoint>(bpf, "probe_tracepoint") {
        Ok(p) => match p.load().and_then(|()| p.attach("raw_syscalls", "sys_exit")) {
            Ok(id) => {
                let _ = p.detach(id);
                Capability::yes("attached to raw_syscalls:sys_exit")
            }
            Err(e) => cap_from("tracepoint load/attach", &e),
        },
        Err(e) => Capability::no(e),
    };
    caps.insert("tracepoint".into(), c);

    let c = match typed::<KProbe>(bpf, "probe_kprobe") {
        Ok(p) => match p.load().and_then(|()| p.attach("security_file_open", 0)) {
            Ok(id) => {
                let _ = p.detach(id);
                Capability::yes("kprobe attached to security_file_open")
            }
            Err(e) => cap_from("kprobe attach", &e),
        },
        Err(e) => Capability::no(e),
    };
    caps.insert("kprobe".into(), c);

    let Some(btf) = btf else {
        for k in ["lsm", "fentry"] {
            caps.insert(
                k.into(),
                Capability::no(
                    "no kernel BTF (/sys/kernel/btf/vmlinux): BTF-typed programs cannot load",
                ),
            );
        }
        return;
    };
    let c = match typed::<Lsm>(bpf, "probe_lsm") {
        Ok(p) => match p.load("file_open", btf).and_then(|()| p.attach()) {
            Ok(id) => {
                let _ = p.detach(id);
                Capability::yes("lsm/file_open loaded and attached")
            }
            Err(e) => cap_from("BPF LSM program lsm/file_open load/attach", &e),
        },
        Err(e) => Capability::no(e),
    };
    caps.insert("lsm".into(), c);
    let c = match typed::<FEntry>(bpf, "probe_fentry") {
        Ok(p) => match p.load("security_file_open", btf).and_then(|()| p.attach()) {
            Ok(id) => {
                let _ = p.detach(id);
                Capability::yes("fentry/security_file_open loaded and attached")
            }
            Err(e) => cap_from("fentry program load/attach", &e),
        },
        Err(e) => Capability::no(e),
    };
    caps.insert("fentry".into(), c);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netlink_errno_is_read_from_text() {
        assert_eq!(
            netlink_errno("netlink error while adding qdisc: File exists (os error 17)"),
            Some(17)
        );
        assert_eq!(netlink_errno("something else"), None);
    }
}
