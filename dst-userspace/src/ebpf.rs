//! The eBPF objects built from `dst-ebpf` by build.rs, embedded in the binary.

/// Network fault programs (tc/TCX classifiers, cgroup_skb).
pub static NET_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/dst-net"));

/// Syscall fault programs (cgroup sock hooks) and the syscall/process observers.
pub static SYS_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/dst-sys"));

/// One trivial program per mechanism, for `dst probe`.
pub static PROBE_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/dst-probe"));

/// Mounts tracefs and bpffs where aya and the kernel expect them, if they are missing.
/// Both are pseudo filesystems; mounting them changes nothing else on the host.
pub fn ensure_pseudo_filesystems() -> Vec<String> {
    let mut done = Vec::new();
    for (fstype, target) in [("tracefs", "/sys/kernel/tracing"), ("bpf", "/sys/fs/bpf")] {
        let magic_ok = is_mounted(target, fstype);
        if !magic_ok
            && nix::mount::mount(
                Some(fstype),
                target,
                Some(fstype),
                nix::mount::MsFlags::empty(),
                None::<&str>,
            )
            .is_ok()
        {
            done.push(format!("mounted {fstype} at {target}"));
        }
    }
    done
}

/// True when `target` is a mount point of filesystem type `fstype`.
pub fn is_mounted(target: &str, fstype: &str) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| {
            m.lines().any(|l| {
                let Some((pre, post)) = l.split_once(" - ") else {
                    return false;
                };
                pre.split_whitespace().nth(4) == Some(target)
                    && post.split_whitespace().next() == Some(fstype)
            })
        })
        .unwrap_or(false)
}
