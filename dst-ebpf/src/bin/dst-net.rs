//! ELF object `dst-net`: the network fault programs (TCX/tc classifiers and cgroup_skb hooks).
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::{TC_ACT_OK, TC_ACT_SHOT},
    macros::{cgroup_skb, classifier},
    programs::{SkBuffContext, TcContext},
};
use dst_ebpf::{
    net::{Direction, Verdict, evaluate},
    packet::{ETH_HLEN, is_ipv4_frame, parse_ipv4},
};

#[classifier]
pub fn dst_tc_ingress(ctx: TcContext) -> i32 {
    try_tc(&ctx, Direction::Ingress)
}

#[classifier]
pub fn dst_tc_egress(ctx: TcContext) -> i32 {
    try_tc(&ctx, Direction::Egress)
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
    if !is_ipv4_frame(ctx) {
        return TC_ACT_OK;
    }
    let Some(flow) = parse_ipv4(ctx, ETH_HLEN) else {
        return TC_ACT_OK;
    };
    // SAFETY: ctx.skb points at the live __sk_buff for the duration of the program.
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
    match evaluate(&flow, dir, ifindex, 0, ctx.len()) {
        Verdict::Pass => TC_ACT_OK,
        Verdict::Drop => TC_ACT_SHOT,
    }
}

#[inline(always)]
fn try_cgroup(ctx: &SkBuffContext, dir: Direction) -> i32 {
    // cgroup_skb sees the packet from its IP header on.
    let Some(flow) = parse_ipv4(ctx, 0) else {
        return 1;
    };
    // SAFETY: ctx.skb points at the live __sk_buff for the duration of the program.
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
    match evaluate(&flow, dir, ifindex, 0, ctx.len()) {
        Verdict::Pass => 1,
        Verdict::Drop => 0,
    }
}
