//! ELF object `dst-sys`: syscall faults through cgroup sock hooks (`bpf_set_retval`), and the
//! observers (per-syscall exit tracepoints, signals, exits, forks) that prove what the targeted
//! processes actually received.
#![no_std]
#![no_main]

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, generated::bpf_set_retval},
    macros::{cgroup_sock, cgroup_sock_addr, tracepoint},
    programs::{SockAddrContext, SockContext, TracePointContext},
};
use dst_common::sys::{CLASS_BIND, CLASS_CONNECT, CLASS_SEND, CLASS_SOCKET};
use dst_ebpf::{sys::evaluate, sys_observe};

#[cgroup_sock_addr(connect4)]
pub fn dst_connect4(_ctx: SockAddrContext) -> i32 {
    try_sock(CLASS_CONNECT)
}

#[cgroup_sock_addr(connect6)]
pub fn dst_connect6(_ctx: SockAddrContext) -> i32 {
    try_sock(CLASS_CONNECT)
}

#[cgroup_sock_addr(bind4)]
pub fn dst_bind4(_ctx: SockAddrContext) -> i32 {
    try_sock(CLASS_BIND)
}

#[cgroup_sock_addr(bind6)]
pub fn dst_bind6(_ctx: SockAddrContext) -> i32 {
    try_sock(CLASS_BIND)
}

#[cgroup_sock_addr(sendmsg4)]
pub fn dst_sendmsg4(_ctx: SockAddrContext) -> i32 {
    try_sock(CLASS_SEND)
}

#[cgroup_sock_addr(sendmsg6)]
pub fn dst_sendmsg6(_ctx: SockAddrContext) -> i32 {
    try_sock(CLASS_SEND)
}

#[cgroup_sock(sock_create)]
pub fn dst_sock_create(_ctx: SockContext) -> i32 {
    try_sock(CLASS_SOCKET)
}

/// 1 = let the call run; 0 with a retval set = fail it with that errno.
#[inline(always)]
fn try_sock(class: u32) -> i32 {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    match evaluate(class, tgid) {
        None => 1,
        Some(errno) => {
            // Newer verifiers (7.3 in the VM tier; 6.12 does not check) reject a retval they
            // cannot bound to [-4095, 0]. Userspace only stores errnos in 1..=4095 (parse_errno),
            // so the mask changes nothing but gives the verifier the bound.
            let errno = (errno & 0xfff) as i32;
            if errno == 0 {
                return 1;
            }
            // SAFETY: helper 187, valid in cgroup sock / sock_addr programs.
            unsafe { bpf_set_retval(-errno) };
            0
        }
    }
}

#[tracepoint]
pub fn dst_sys_exit(ctx: TracePointContext) -> u32 {
    sys_observe::try_sys_exit(&ctx)
}

#[tracepoint]
pub fn dst_exit_group(ctx: TracePointContext) -> u32 {
    sys_observe::try_exit_group(&ctx)
}

#[tracepoint]
pub fn dst_signal(ctx: TracePointContext) -> u32 {
    sys_observe::try_signal(&ctx)
}

#[tracepoint]
pub fn dst_process_exit(ctx: TracePointContext) -> u32 {
    sys_observe::try_process_exit(&ctx)
}

#[tracepoint]
pub fn dst_fork(ctx: TracePointContext) -> u32 {
    sys_observe::try_fork(&ctx)
}

#[tracepoint]
pub fn dst_signal_at(_ctx: TracePointContext) -> u32 {
    sys_observe::try_signal_at()
}
