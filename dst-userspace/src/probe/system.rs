//! System-level checks: pseudo filesystems, BTF, qdiscs (fq, netem) on a private namespace,
//! TAP, AF_XDP, seccomp user notification, and `fmod_ret` through a raw `bpf()` load.

use std::{collections::BTreeMap, fs, mem, os::fd::FromRawFd as _};

use aya::Btf;
use aya_obj::{
    btf::BtfKind,
    generated::{bpf_attach_type, bpf_attr, bpf_cmd, bpf_prog_type},
};

use super::Capability;
use crate::{bpf_sys::sys_bpf, ebpf::is_mounted};

type Caps = BTreeMap<String, Capability>;

/// BTF, bpffs, cgroup v2 and securityfs.
pub(super) fn filesystems(caps: &mut Caps) {
    caps.insert(
        "btf".into(),
        match Btf::from_sys_fs() {
            Ok(_) => Capability::yes("/sys/kernel/btf/vmlinux parsed"),
            Err(e) => Capability::no(format!(
                "kernel BTF unusable: {e} (needs CONFIG_DEBUG_INFO_BTF)"
            )),
        },
    );
    caps.insert(
        "bpffs".into(),
        if is_mounted("/sys/fs/bpf", "bpf") {
            Capability::yes("mounted at /sys/fs/bpf")
        } else {
            Capability::no("bpffs not mounted at /sys/fs/bpf and mounting it failed (mount -t bpf bpf /sys/fs/bpf)")
        },
    );
    caps.insert(
        "cgroup2".into(),
        match crate::cgroup::cgroup2_mount() {
            Ok(p) => Capability::yes(format!("mounted at {}", p.display())),
            Err(e) => Capability::no(e.to_string()),
        },
    );
    caps.insert(
        "securityfs".into(),
        if is_mounted("/sys/kernel/security", "securityfs") {
            match fs::read_to_string("/sys/kernel/security/lsm") {
                Ok(list) => Capability::yes(format!("LSM list: {}", list.trim())),
                Err(e) => Capability::no(format!("securityfs mounted but /sys/kernel/security/lsm unreadable: {e}")),
            }
        } else {
            Capability::no(
                "securityfs not mounted, so the active LSM list is unknown \
                 (mount -t securityfs securityfs /sys/kernel/security); the lsm check below loads a real program instead",
            )
        },
    );
}

/// fq and netem qdiscs on `lo` of a private namespace, TAP, AF_XDP, seccomp user notification.
pub(super) fn devices(caps: &mut Caps) {
    let found = std::thread::scope(|s| {
        s.spawn(|| -> Result<Vec<(&'static str, Capability)>, String> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("unshare(CLONE_NEWNET): {e}"))?;
            let nl = crate::netlink::Netlink::new().map_err(|e| e.to_string())?;
            let lo = nl.link_index("lo").map_err(|e| e.to_string())?;
            let mut out = Vec::new();
            for kind in ["fq", "netem"] {
                let c = match nl.add_root_qdisc(lo, kind) {
                    Ok(()) => {
                        let _ = nl.del_root_qdisc(lo);
                        Capability::yes(format!(
                            "root qdisc {kind} created and removed on lo in a private netns"
                        ))
                    }
                    Err(e) => match e.errno() {
                        Some(errno) => Capability::failed(
                            &format!("adding a {kind} qdisc (sch_{kind})"),
                            errno,
                        ),
                        None => Capability::no(format!("adding a {kind} qdisc: {e}")),
                    },
                };
                out.push((kind, c));
            }
            out.push(("tap", tap()));
            Ok(out)
        })
        .join()
    });
    match found {
        Ok(Ok(v)) => {
            for (k, c) in v {
                caps.insert(k.into(), c);
            }
        }
        Ok(Err(e)) => {
            for k in ["fq", "netem", "tap"] {
                caps.insert(
                    k.into(),
                    Capability::no(format!("private network namespace: {e}")),
                );
            }
        }
        Err(_) => {
            for k in ["fq", "netem", "tap"] {
                caps.insert(
                    k.into(),
                    Capability::no("the probe thread panicked (a bug in dst)"),
                );
            }
        }
    }
    caps.insert("af_xdp".into(), af_xdp());
    caps.insert("seccomp_user_notif".into(), seccomp_user_notif());
}

fn tap() -> Capability {
    const TUNSETIFF: libc::c_ulong = 0x400454ca;
    let fd = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Capability::failed("opening /dev/net/tun", nix::errno::Errno::last_raw());
    }
    // SAFETY: fd was just opened and is owned here.
    let file = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut ifr = [0u8; 40];
    ifr[..10].copy_from_slice(b"dstprobe0\0");
    let flags = (libc::IFF_TAP | libc::IFF_NO_PI) as u16;
    ifr[16..18].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: TUNSETIFF reads a struct ifreq (40 bytes) from the pointer.
    let r = unsafe { libc::ioctl(fd, TUNSETIFF, ifr.as_mut_ptr()) };
    let c = if r < 0 {
        Capability::failed("TUNSETIFF(IFF_TAP)", nix::errno::Errno::last_raw())
    } else {
        Capability::yes("TAP device created in a private netns (removed on close)")
    };
    drop(file);
    c
}

fn af_xdp() -> Capability {
    const AF_XDP: i32 = 44;
    // SAFETY: plain socket(2) call; the fd is closed below.
    let fd = unsafe { libc::socket(AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Capability::failed("socket(AF_XDP)", nix::errno::Errno::last_raw());
    }
    // SAFETY: fd is owned here.
    unsafe { libc::close(fd) };
    Capability::yes("AF_XDP socket created")
}

fn seccomp_user_notif() -> Capability {
    match fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail") {
        Ok(s) if s.split_whitespace().any(|a| a == "user_notif") => {
            Capability::yes("seccomp action user_notif available (for processes dst launches)")
        }
        Ok(s) => Capability::no(format!(
            "seccomp actions are [{}]: no user_notif (kernel older than 5.0)",
            s.trim()
        )),
        Err(e) => Capability::no(format!(
            "/proc/sys/kernel/seccomp/actions_avail unreadable: {e} (no CONFIG_SECCOMP?)"
        )),
    }
}

/// `fmod_ret` on `security_file_open`: aya has no program type for it, so load
/// `r0 = 0; exit` with BPF_PROG_TYPE_TRACING / BPF_MODIFY_RETURN through `bpf(2)` and attach it
/// with BPF_RAW_TRACEPOINT_OPEN; both fds are closed at once.
pub(super) fn fmod_ret(btf: Option<&Btf>) -> Capability {
    let Some(btf) = btf else {
        return Capability::no("no kernel BTF: fmod_ret needs the target's BTF id");
    };
    let id = match btf.id_by_type_name_kind("security_file_open", BtfKind::Func) {
        Ok(id) => id,
        Err(e) => return Capability::no(format!("security_file_open not in kernel BTF: {e}")),
    };
    let insns: [u64; 2] = [0x0000_0000_0000_00b7, 0x0000_0000_0000_0095];
    let license = c"GPL";
    // SAFETY: an all-zero bpf_attr is the documented way to start a request.
    let mut attr: bpf_attr = unsafe { mem::zeroed() };
    // SAFETY: writing the PROG_LOAD member of the union.
    unsafe {
        let u = &mut attr.__bindgen_anon_3;
        u.prog_type = bpf_prog_type::BPF_PROG_TYPE_TRACING as u32;
        u.expected_attach_type = bpf_attach_type::BPF_MODIFY_RETURN as u32;
        u.insn_cnt = insns.len() as u32;
        u.insns = insns.as_ptr() as u64;
        u.license = license.as_ptr() as u64;
        u.attach_btf_id = id;
    }
    let prog = unsafe { sys_bpf(bpf_cmd::BPF_PROG_LOAD, &mut attr) };
    if prog < 0 {
        return Capability::failed(
            "loading fmod_ret/security_file_open",
            nix::errno::Errno::last_raw(),
        );
    }
    // SAFETY: an all-zero bpf_attr is valid; then the RAW_TRACEPOINT_OPEN member.
    let mut attr: bpf_attr = unsafe { mem::zeroed() };
    attr.raw_tracepoint.name = 0;
    attr.raw_tracepoint.prog_fd = prog as u32;
    let link = unsafe { sys_bpf(bpf_cmd::BPF_RAW_TRACEPOINT_OPEN, &mut attr) };
    let errno = nix::errno::Errno::last_raw();
    // SAFETY: closing fds this function opened.
    unsafe {
        if link >= 0 {
            libc::close(link as i32);
        }
        libc::close(prog as i32);
    }
    if link < 0 {
        Capability::failed("attaching fmod_ret/security_file_open", errno)
    } else {
        Capability::yes("fmod_ret/security_file_open loaded and attached")
    }
}
