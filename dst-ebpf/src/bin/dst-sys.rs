//! ELF object `dst-sys`: syscall faults through cgroup sock hooks (`bpf_set_retval`), BPF LSM
//! hooks and fmod_ret on `security_*` functions (the `fentry/` sections: userspace loads them
//! with the fmod_ret attach type, which aya has no program type for), and the observers (per-syscall exit tracepoints, signals, exits, forks) that prove what the targeted
//! processes actually received.
#![no_std]
#![no_main]

use core::ffi::c_void;

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, generated::bpf_set_retval},
    macros::{cgroup_sock, cgroup_sock_addr, lsm, tracepoint},
    programs::{FEntryContext, LsmContext, SockAddrContext, SockContext, TracePointContext},
};
use dst_common::sys::{CLASS_BIND, CLASS_CONNECT, CLASS_SEND, CLASS_SOCKET};
use dst_ebpf::{
    sys::evaluate,
    sys_lsm::{Hook, Runner, try_hook},
    sys_observe,
};

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
    sys_observe::try_sys_exit(
        &ctx,
        &sys_observe::OBS_PCPU,
        &sys_observe::OBS,
        &sys_observe::OBS_CACHE,
    )
}

#[tracepoint]
pub fn dst_sys_exit_twin(ctx: TracePointContext) -> u32 {
    sys_observe::try_sys_exit(
        &ctx,
        &sys_observe::OBS_PCPU_TWIN,
        &sys_observe::OBS_TWIN,
        &sys_observe::OBS_CACHE_TWIN,
    )
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
pub fn dst_invalidate(_ctx: TracePointContext) -> u32 {
    sys_observe::try_invalidate()
}

#[tracepoint]
pub fn dst_signal_at(_ctx: TracePointContext) -> u32 {
    sys_observe::try_signal_at()
}

#[lsm(hook = "file_open")]
pub fn dst_lsm_file_open(ctx: LsmContext) -> i32 {
    try_hook(&ctx, Hook::FileOpen, Runner::Lsm)
}

#[lsm(hook = "file_permission")]
pub fn dst_lsm_file_permission(ctx: LsmContext) -> i32 {
    try_hook(&ctx, Hook::FilePermission, Runner::Lsm)
}

#[lsm(hook = "mmap_file")]
pub fn dst_lsm_mmap_file(ctx: LsmContext) -> i32 {
    try_hook(&ctx, Hook::MmapFile { nargs: 4 }, Runner::Lsm)
}

#[lsm(hook = "task_alloc")]
pub fn dst_lsm_task_alloc(ctx: LsmContext) -> i32 {
    try_hook(&ctx, Hook::TaskAlloc, Runner::Lsm)
}

#[lsm(hook = "socket_connect")]
pub fn dst_lsm_socket_connect(ctx: LsmContext) -> i32 {
    try_hook(&ctx, Hook::SocketConnect, Runner::Lsm)
}

#[lsm(hook = "socket_sendmsg")]
pub fn dst_lsm_socket_sendmsg(ctx: LsmContext) -> i32 {
    try_hook(&ctx, Hook::SocketSendmsg, Runner::Lsm)
}

#[lsm(hook = "socket_recvmsg")]
pub fn dst_lsm_socket_recvmsg(ctx: LsmContext) -> i32 {
    try_hook(&ctx, Hook::SocketRecvmsg, Runner::Lsm)
}

#[lsm(hook = "socket_accept")]
pub fn dst_lsm_socket_accept(ctx: LsmContext) -> i32 {
    try_hook(&ctx, Hook::SocketAccept, Runner::Lsm)
}

/// fmod_ret on `security_file_open` (aya's `#[fentry]` macro would discard the return value).
#[unsafe(no_mangle)]
#[unsafe(link_section = "fentry/security_file_open")]
pub fn dst_fmod_file_open(ctx: *mut c_void) -> i32 {
    try_hook(&FEntryContext::new(ctx), Hook::FileOpen, Runner::FmodRet)
}

/// fmod_ret on `security_file_permission` (aya's `#[fentry]` macro would discard the return value).
#[unsafe(no_mangle)]
#[unsafe(link_section = "fentry/security_file_permission")]
pub fn dst_fmod_file_permission(ctx: *mut c_void) -> i32 {
    try_hook(
        &FEntryContext::new(ctx),
        Hook::FilePermission,
        Runner::FmodRet,
    )
}

/// fmod_ret on `security_mmap_file` (aya's `#[fentry]` macro would discard the return value).
#[unsafe(no_mangle)]
#[unsafe(link_section = "fentry/security_mmap_file")]
pub fn dst_fmod_mmap_file(ctx: *mut c_void) -> i32 {
    try_hook(
        &FEntryContext::new(ctx),
        Hook::MmapFile { nargs: 3 },
        Runner::FmodRet,
    )
}

/// fmod_ret on `security_task_alloc` (aya's `#[fentry]` macro would discard the return value).
#[unsafe(no_mangle)]
#[unsafe(link_section = "fentry/security_task_alloc")]
pub fn dst_fmod_task_alloc(ctx: *mut c_void) -> i32 {
    try_hook(&FEntryContext::new(ctx), Hook::TaskAlloc, Runner::FmodRet)
}

/// fmod_ret on `security_socket_connect` (aya's `#[fentry]` macro would discard the return value).
#[unsafe(no_mangle)]
#[unsafe(link_section = "fentry/security_socket_connect")]
pub fn dst_fmod_socket_connect(ctx: *mut c_void) -> i32 {
    try_hook(
        &FEntryContext::new(ctx),
        Hook::SocketConnect,
        Runner::FmodRet,
    )
}
