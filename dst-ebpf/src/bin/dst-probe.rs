//! ELF object `dst-probe`: one trivial program per kernel mechanism, loaded (and attached where
//! that is the question) by `dst probe` to learn what this kernel really allows.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::{TC_ACT_OK, xdp_action::XDP_PASS},
    macros::{
        cgroup_skb, cgroup_sock, cgroup_sock_addr, classifier, fentry, kprobe, lsm, tracepoint, xdp,
    },
    programs::{
        FEntryContext, LsmContext, ProbeContext, SkBuffContext, SockAddrContext, SockContext,
        TcContext, TracePointContext, XdpContext,
    },
};
use dst_ebpf as _;

#[classifier]
pub fn probe_tc(_ctx: TcContext) -> i32 {
    TC_ACT_OK
}

#[xdp]
pub fn probe_xdp(_ctx: XdpContext) -> u32 {
    XDP_PASS
}

#[cgroup_skb]
pub fn probe_cgroup_skb(_ctx: SkBuffContext) -> i32 {
    1
}

#[cgroup_sock_addr(connect4)]
pub fn probe_connect4(_ctx: SockAddrContext) -> i32 {
    1
}

#[cgroup_sock(sock_create)]
pub fn probe_sock_create(_ctx: SockContext) -> i32 {
    1
}

#[lsm(hook = "file_open")]
pub fn probe_lsm(_ctx: LsmContext) -> i32 {
    0
}

#[fentry(function = "security_file_open")]
pub fn probe_fentry(_ctx: FEntryContext) -> u32 {
    0
}

#[kprobe]
pub fn probe_kprobe(_ctx: ProbeContext) -> u32 {
    0
}

#[tracepoint]
pub fn probe_tracepoint(_ctx: TracePointContext) -> u32 {
    0
}
