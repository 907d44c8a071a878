//! ELF object `dst-net`: the network fault programs (TCX/tc classifiers, cgroup_skb hooks and
//! the delay-line return program attached to the TAP devices).
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::{BPF_F_INGRESS, TC_ACT_SHOT, TC_ACT_UNSPEC},
    helpers::{bpf_redirect, bpf_set_hash, bpf_skb_set_tstamp},
    macros::{cgroup_skb, classifier},
    programs::{SkBuffContext, TcContext},
};
use dst_common::net::PASS_MARK;
use dst_ebpf::{
    net::{Direction, Verdict, evaluate, tap_return},
    packet::{Direct, ETH_HLEN, is_ipv4_frame, parse_ipv4, parse_tc_direct},
};

/// "Not mine / let it go on": TCX_NEXT under TCX, "continue" for cls_bpf. Programs attached
/// after dst's still see the packet (TC_ACT_OK would end the TCX chain and skip them).
const NEXT: i32 = TC_ACT_UNSPEC;

/// `BPF_SKB_TSTAMP_DELIVERY_MONO` (uapi bpf.h): the tstamp is a CLOCK_MONOTONIC departure time.
/// (aya-ebpf's bindings put it in an anonymous module.)
const BPF_SKB_TSTAMP_DELIVERY_MONO: u32 = 1;

#[classifier]
pub fn dst_tc_ingress(ctx: TcContext) -> i32 {
    try_tc(&ctx, Direction::Ingress)
}

#[classifier]
pub fn dst_tc_egress(ctx: TcContext) -> i32 {
    try_tc(&ctx, Direction::Egress)
}

/// Attached to the ingress of each delay-line TAP: frames the delay line writes back are marked
/// (so the fault programs let them pass) and sent on along their original path.
#[classifier]
pub fn dst_tap_return(ctx: TcContext) -> i32 {
    try_tap_return(&ctx)
}

#[cgroup_skb]
pub fn dst_cg_ingress(ctx: SkBuffContext) -> i32 {
    try_cgroup(&ctx, Direction::Ingress)
}

#[cgroup_skb]
pub fn dst_cg_egress(ctx: SkBuffContext) -> i32 {
    try_cgroup(&ctx, Direction::Egress)
}

#[inline(always)]
fn try_tc(ctx: &TcContext, dir: Direction) -> i32 {
    // SAFETY: ctx.skb points at the live __sk_buff for the duration of the program.
    let (ifindex, mark) = unsafe { ((*ctx.skb.skb).ifindex, (*ctx.skb.skb).mark) };
    if mark == PASS_MARK {
        // Re-injected by the delay line or a duplicate clone: already faulted once.
        ctx.set_mark(0);
        return NEXT;
    }
    let flow = match parse_tc_direct(ctx) {
        Direct::Flow(f) => f,
        Direct::NotIpv4 => return NEXT,
        Direct::Fallback => {
            if !is_ipv4_frame(ctx) {
                return NEXT;
            }
            let Some(f) = parse_ipv4(ctx, ETH_HLEN) else {
                return NEXT;
            };
            f
        }
    };
    // SAFETY: as above.
    let (tstamp, tstamp_type) = unsafe { ((*ctx.skb.skb).tstamp, (*ctx.skb.skb).tstamp_type) };
    // Only a delivery-mono tstamp is a departure time (TCP's EDT); others are receive times.
    let departure = if u32::from(tstamp_type) == BPF_SKB_TSTAMP_DELIVERY_MONO {
        tstamp
    } else {
        0
    };
    match evaluate(&flow, dir, ifindex, 0, ctx.len(), departure) {
        Verdict::Pass => NEXT,
        Verdict::Edt { tstamp, ifb, hash } => {
            if hash != 0 {
                // SAFETY: ctx.skb.skb is the live skb.
                unsafe { bpf_set_hash(ctx.skb.skb, hash) };
            }
            // The helper (not a plain field write) marks the time delivery-mono, which fq on
            // this device or on the ifb honours and which survives the redirect.
            // SAFETY: ctx.skb.skb is the live skb.
            unsafe { bpf_skb_set_tstamp(ctx.skb.skb, tstamp, BPF_SKB_TSTAMP_DELIVERY_MONO) };
            if ifb == 0 {
                NEXT
            } else {
                // SAFETY: helper without memory arguments.
                unsafe { bpf_redirect(ifb, 0) as i32 }
            }
        }
        Verdict::Drop => TC_ACT_SHOT,
        // SAFETY: helper without memory arguments.
        Verdict::DelayLine(tap) => unsafe { bpf_redirect(tap, 0) as i32 },
        Verdict::Duplicate => {
            let flags = match dir {
                Direction::Ingress => u64::from(BPF_F_INGRESS),
                Direction::Egress => 0,
            };
            ctx.set_mark(PASS_MARK);
            let _ = ctx.clone_redirect(ifindex, flags);
            ctx.set_mark(mark);
            NEXT
        }
        Verdict::Corrupt => {
            // The checksum is left as it is (a bit flip on the wire); see the CLI docs.
            let last = (ctx.len() as usize).saturating_sub(1);
            if let Ok(b) = ctx.load::<u8>(last) {
                let _ = ctx.store(last, &(b ^ 0x01), 0);
            }
            NEXT
        }
    }
}

#[inline(always)]
fn try_tap_return(ctx: &TcContext) -> i32 {
    // SAFETY: ctx.skb points at the live __sk_buff for the duration of the program.
    let tap = unsafe { (*ctx.skb.skb).ifindex };
    let Some(ret) = tap_return(tap) else {
        return TC_ACT_SHOT;
    };
    ctx.set_mark(PASS_MARK);
    let flags = if ret.ingress != 0 {
        u64::from(BPF_F_INGRESS)
    } else {
        0
    };
    // SAFETY: helper without memory arguments.
    unsafe { bpf_redirect(ret.ifindex, flags) as i32 }
}

#[inline(always)]
fn try_cgroup(ctx: &SkBuffContext, dir: Direction) -> i32 {
    // cgroup_skb sees the packet from its IP header on.
    let Some(flow) = parse_ipv4(ctx, 0) else {
        return 1;
    };
    // SAFETY: ctx.skb points at the live __sk_buff for the duration of the program.
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
    // cgroup_skb can only drop; userspace refuses other actions for cgroup-only targets.
    match evaluate(&flow, dir, ifindex, 0, ctx.len(), 0) {
        Verdict::Drop => 0,
        _ => 1,
    }
}
