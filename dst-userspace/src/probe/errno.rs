//! Errno names and what they mean for a BPF load or attach, so a reason reads as advice.

/// The symbolic name of an errno (kernel-internal ENOTSUPP included).
pub fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINVAL => "EINVAL",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::E2BIG => "E2BIG",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::ENOSYS => "ENOSYS",
        libc::ESRCH => "ESRCH",
        524 => "ENOTSUPP",
        _ => "E?",
    }
}

/// What the errno means when the kernel answers a BPF load/attach or a netlink request with it.
pub fn explain_errno(errno: i32) -> &'static str {
    match errno {
        libc::EPERM => {
            "refused: kernel lockdown, a missing capability, or this hook is blocked on this kernel"
        }
        libc::ENOENT => {
            "not present in this kernel (not built, module not loaded, or symbol missing)"
        }
        libc::EINVAL => "the kernel does not know this program, attach or qdisc type",
        libc::EACCES => "the verifier rejected the program",
        libc::EOPNOTSUPP | 524 => "not supported by this kernel build or device",
        libc::E2BIG => "the kernel is older than the interface dst uses",
        libc::ENOSYS => "the system call is not available",
        libc::EAFNOSUPPORT => "the address family is not built into this kernel",
        libc::ENODEV => "no such device",
        _ => "unexpected error",
    }
}
