//! ELF object `dst-probe`: one trivial program per kernel mechanism, loaded (and attached where
//! that is the question) by `dst probe` to learn what this kernel really allows.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::{TC_ACT_OK, xdp_action::XDP_PASS},
    helpers::{bpf_ktime_get_ns, bpf_redirect, bpf_skb_set_tstamp},
    macros::{
        cgroup_skb, cgroup_sock, cgroup_sock_addr, classifier, fentry, kprobe, lsm, map,
        raw_tracepoint, tracepoint, xdp,
    },
    maps::Array,
    programs::{
        FEntryContext, LsmContext, ProbeContext, RawTracePointContext, SkBuffContext,
        SockAddrContext, SockContext, TcContext, TracePointContext, XdpContext,
    },
};
use dst_ebpf as _;

#[classifier]
pub fn probe_tc(_ctx: TcContext) -> i32 {
    TC_ACT_OK
}

/// Slot 0: ifindex of the ifb device `probe_ifb_edt` redirects to (0 = pass).
#[map(name = "DST_PROBE_IFB")]
static PROBE_IFB: Array<u32> = Array::with_max_entries(1, 0);

/// Ingress EDT through an ifb, as the network engine does it: IPv4 packets get a delivery-mono
/// departure 1 ms ahead and are redirected to the ifb (ARP passes, so neighbours resolve).
#[classifier]
pub fn probe_ifb_edt(ctx: TcContext) -> i32 {
    try_probe_ifb_edt(&ctx)
}

#[inline(always)]
fn try_probe_ifb_edt(ctx: &TcContext) -> i32 {
    let ifb = PROBE_IFB.get(0).copied().unwrap_or(0);
    let ipv4 = matches!(ctx.load::<u16>(12), Ok(p) if u16::from_be(p) == 0x0800);
    if ifb == 0 || !ipv4 {
        return TC_ACT_OK;
    }
    // SAFETY: helpers on the live skb; 1 = BPF_SKB_TSTAMP_DELIVERY_MONO.
    unsafe {
        let t = bpf_ktime_get_ns() + 1_000_000;
        bpf_skb_set_tstamp(ctx.skb.skb, t, 1);
        bpf_redirect(ifb, 0) as i32
    }
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

/// An empty raw tracepoint program: `cargo xtask bench syscall` attaches it to `sys_exit` as the
/// floor of a catch-all syscall-exit observer (what every syscall of every process would pay).
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn probe_raw_tp(_ctx: RawTracePointContext) -> i32 {
    0
}
