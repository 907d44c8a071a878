//! Network fault rules as the tc / cgroup_skb programs read them, and their per-fault counters.

/// The rule slot is in use. A slot without this flag is skipped by the kernel.
pub const RULE_ACTIVE: u32 = 1 << 0;
/// Match packets entering the interface (tc ingress / cgroup ingress).
pub const RULE_INGRESS: u32 = 1 << 1;
/// Match packets leaving the interface (tc egress / cgroup egress).
pub const RULE_EGRESS: u32 = 1 << 2;
/// Carry delay / reorder / rate by setting the packet's departure time (EDT: `skb->tstamp`,
/// enforced by an `fq` qdisc dst installed) instead of redirecting it to the delay line.
pub const RULE_EDT: u32 = 1 << 3;
/// With `RULE_EDT` on an ingress rule: redirect the stamped packet to the `ifb` device (with
/// `fq`) named by [`NetRule::edt_ifb`], which holds it until its departure time.
pub const RULE_EDT_IFB: u32 = 1 << 4;

/// Number of histogram buckets of applied EDT delays per rule.
pub const EDT_HIST_BUCKETS: u32 = 256;
/// The furthest departure time an EDT rule may set, ahead of now; packets that would leave
/// later are dropped and counted (`edt_dropped`). dst configures `fq`'s horizon above it.
pub const EDT_HORIZON_NS: u64 = 9_000_000_000;
/// `fq` horizon dst configures (drop beyond it), above [`EDT_HORIZON_NS`].
pub const FQ_HORIZON_US: u32 = 10_000_000;
/// Rate pacing: traffic queued beyond this much sending time is dropped (like tbf's limit).
pub const EDT_RATE_MAX_BACKLOG_NS: u64 = 1_000_000_000;
/// Salt of the stream of per-packet flow hashes EDT gives delayed packets (see `Verdict::Edt`).
pub const SPREAD_SALT: u64 = 0x7370_7265_6164_5f68;
/// Salt of the delay draw stream (kept apart from the kernel's apply/pass stream).
pub const DELAY_SALT: u64 = 0x6465_6c61_795f_6473;

/// Drop the packet with `probability`.
pub const ACTION_DROP: u32 = 1;
/// Delay the packet by `param1` ns ± `param2` ns jitter.
pub const ACTION_DELAY: u32 = 2;
/// Reorder: hold the packet back by `param2` packets with `probability`.
pub const ACTION_REORDER: u32 = 3;
/// Send the packet twice with `probability`.
pub const ACTION_DUPLICATE: u32 = 4;
/// Flip a payload byte with `probability`.
pub const ACTION_CORRUPT: u32 = 5;
/// Limit the matched traffic to `param1` bits per second.
pub const ACTION_RATE: u32 = 6;
/// Count matching packets and let them pass (observation only; used by probes and tests).
pub const ACTION_COUNT: u32 = 7;

/// A rule whose destination-port range spans at most this many ports is indexed per port in the
/// port prefilter; wider rules are candidates for every packet (the wildcard mask).
pub const PREFILTER_MAX_PORTS: u32 = 16;

/// Delay distribution: base ± jitter, uniform.
pub const DIST_UNIFORM: u32 = 0;
/// Delay distribution: normal, mean base, standard deviation jitter, clipped at 0.
pub const DIST_NORMAL: u32 = 1;

/// `skb->mark` of packets the delay line re-injects and of duplicate clones: the programs let
/// a packet carrying it pass untouched (and clear the mark), so no packet is faulted twice.
pub const PASS_MARK: u32 = 0x0d57_0001;

/// `probability` value meaning "always" (the kernel compares a 32-bit draw against it).
pub const PROB_ALWAYS: u32 = u32::MAX;

/// One network fault as stored in the rule array map. Addresses and ports are in network byte
/// order exactly as they appear in the packet, so the kernel compares without conversion.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetRule {
    /// `RULE_*` flags.
    pub flags: u32,
    /// One of the `ACTION_*` constants.
    pub action: u32,
    /// Interface index the rule applies to; 0 = any interface the program is attached to.
    pub ifindex: u32,
    /// IP protocol number (6 tcp, 17 udp, 1 icmp); 0 = any.
    pub proto: u8,
    /// EDT delay histogram: bucket = applied delay ns >> `hist_shift`.
    pub hist_shift: u8,
    /// Explicit padding.
    pub _pad0: [u8; 2],
    /// IPv4 source address (network order) after masking with `src_mask`.
    pub src_addr: u32,
    /// IPv4 source mask (network order); 0 = any.
    pub src_mask: u32,
    /// IPv4 destination address (network order) after masking with `dst_mask`.
    pub dst_addr: u32,
    /// IPv4 destination mask (network order); 0 = any.
    pub dst_mask: u32,
    /// Inclusive source port range in host order; `0..=65535` = any.
    pub sport_lo: u16,
    /// Upper end of the source port range.
    pub sport_hi: u16,
    /// Inclusive destination port range in host order.
    pub dport_lo: u16,
    /// Upper end of the destination port range.
    pub dport_hi: u16,
    /// Chance that a matched packet gets the action, scaled to `0..=u32::MAX`.
    pub probability: u32,
    /// Action parameter: delay distribution (`DIST_*`).
    pub param3: u32,
    /// Action parameter: delay ns, reorder maximum hold ns, rate bits/s.
    pub param1: u64,
    /// Action parameter: jitter ns, reorder gap (packets).
    pub param2: u64,
    /// CLOCK_MONOTONIC ns before which the rule does nothing (0 = at once).
    pub not_before_ns: u64,
    /// CLOCK_MONOTONIC ns after which the kernel ignores the rule (expiry enforced in kernel).
    pub expires_ns: u64,
    /// Seed of the rule's decision stream: decision n = hash(seed, n).
    pub seed: u64,
    /// cgroup v2 id the packet's socket must belong to; 0 = any.
    pub cgroup_id: u64,
    /// With `RULE_EDT_IFB`: ifindex of the ifb device (with `fq`) that carries ingress delay.
    pub edt_ifb: u32,
    /// Explicit padding.
    pub _pad1: u32,
}
const _: () = assert!(core::mem::size_of::<NetRule>() == 104);

/// Counters of one rule, one copy per CPU; userspace sums them (and takes min/max of times).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetCounters {
    /// Packets that matched the rule while it was live.
    pub matched: u64,
    /// Matched packets that received the action.
    pub applied: u64,
    /// Matched packets the decision let through unchanged.
    pub passed: u64,
    /// Packets sent to the delay line or given a later departure time.
    pub delayed: u64,
    /// Packets held back for reordering.
    pub reordered: u64,
    /// Packets cloned.
    pub duplicated: u64,
    /// Packets with a flipped byte.
    pub corrupted: u64,
    /// Bytes of the packets the action was applied to.
    pub bytes: u64,
    /// Packets that matched after the rule had expired (let through, not applied).
    pub expired: u64,
    /// CLOCK_MONOTONIC ns of the first applied packet on this CPU (0 = none).
    pub first_applied_ns: u64,
    /// CLOCK_MONOTONIC ns of the last applied packet on this CPU.
    pub last_applied_ns: u64,
    /// EDT: packets dropped because their departure would be beyond the horizon (rate backlog
    /// over [`EDT_RATE_MAX_BACKLOG_NS`], or a delay over [`EDT_HORIZON_NS`]).
    pub edt_dropped: u64,
}
const _: () = assert!(core::mem::size_of::<NetCounters>() == 96);

/// [`NetEvent::kind`]: the rule was applied to its first packet on this CPU.
pub const NET_EVENT_LANDED: u32 = 1;
/// [`NetEvent::kind`]: a packet matched the rule after its kernel-enforced expiry (first time on
/// this CPU).
pub const NET_EVENT_EXPIRED: u32 = 2;

/// A network fault event for userspace (ring buffer `DST_NET_EVENTS`), sent at most once per
/// rule, kind and CPU (when the CPU's counter for it goes from 0 to 1).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetEvent {
    /// `NET_EVENT_*`.
    pub kind: u32,
    /// Rule slot.
    pub slot: u32,
    /// CLOCK_MONOTONIC ns of the packet.
    pub time_ns: u64,
    /// Seed of the rule (tells a slot's successive faults apart).
    pub seed: u64,
}
const _: () = assert!(core::mem::size_of::<NetEvent>() == 24);

/// Key of the per-flow EDT state: the 5-tuple and the rule slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EdtFlowKey {
    /// Source address (network order).
    pub src: u32,
    /// Destination address (network order).
    pub dst: u32,
    /// Source port (host order).
    pub sport: u16,
    /// Destination port (host order).
    pub dport: u16,
    /// IP protocol.
    pub proto: u8,
    /// Explicit padding.
    pub _pad0: u8,
    /// Rule slot.
    pub slot: u16,
}
const _: () = assert!(core::mem::size_of::<EdtFlowKey>() == 16);

/// Per-flow EDT state: the latest departure time given to a packet of the flow (a packet given
/// an earlier departure overtakes an earlier packet of its flow — `fq` sends each flow in
/// departure order — and is counted as `reordered`), and the flow's packet spacing, which
/// sizes a reorder hold of `gap` packets.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EdtFlow {
    /// Latest departure time (CLOCK_MONOTONIC ns) of the flow so far.
    pub max_tstamp_ns: u64,
    /// When the previous packet of the flow was seen.
    pub last_seen_ns: u64,
    /// Moving average of the spacing between the flow's packets (ns, weight 1/8).
    pub spacing_ns: u64,
}
const _: () = assert!(core::mem::size_of::<EdtFlow>() == 24);

/// EDT delay for decision `n` of a rule: `base ± jitter` (uniform) or normal with mean `base`
/// and standard deviation `jitter` (sum of 12 uniforms, Irwin–Hall), clipped at 0. Integer
/// arithmetic only, shared by the kernel and the unit tests.
#[inline(always)]
pub fn edt_delay_ns(seed: u64, n: u64, base: u64, jitter: u64, dist: u32) -> u64 {
    if jitter == 0 {
        return base;
    }
    let s = seed ^ DELAY_SALT;
    if dist == DIST_NORMAL {
        let mut sum: i64 = 0;
        let mut k = 0u64;
        while k < 6 {
            let d = draw(s, n.wrapping_mul(6).wrapping_add(k));
            sum += i64::from(d & 0xffff) + i64::from(d >> 16);
            k += 1;
        }
        // 12 uniforms on 0..65536: mean 6*65535, standard deviation ~65536.
        let z = 2 * sum - 12 * 65_535;
        let off = (z * (jitter.min(1 << 36) as i64)) >> 17;
        let d = base as i64 + off;
        if d < 0 { 0 } else { d as u64 }
    } else {
        let d = u64::from(draw(s, n));
        let off = ((d >> 8) * (2 * jitter.min(1 << 36))) >> 24;
        (base + off).saturating_sub(jitter)
    }
}

/// EDT reorder hold for `gap` later packets at the flow's `spacing_ns`: just over `gap`
/// spacings (so exactly about `gap` packets overtake), at most `max_hold_ns`; `max_hold_ns`
/// when the spacing is unknown yet.
#[inline(always)]
pub fn reorder_hold_ns(gap: u64, spacing_ns: u64, max_hold_ns: u64) -> u64 {
    if spacing_ns == 0 {
        return max_hold_ns;
    }
    // Bounded operands instead of saturating_mul (no 128-bit multiply in BPF).
    let (gap, spacing_ns) = (gap.min(1 << 16), spacing_ns.min(1 << 40));
    let hold = gap * spacing_ns + spacing_ns / 2;
    if hold > max_hold_ns {
        max_hold_ns
    } else {
        hold
    }
}

/// Next moving average (weight 1/8) of a flow's packet spacing.
#[inline(always)]
pub fn next_spacing_ns(avg: u64, sample: u64) -> u64 {
    if avg == 0 {
        sample
    } else {
        avg - avg / 8 + sample / 8
    }
}

/// EDT pacing: the time a packet of `len` bytes needs on a link of `bits_per_sec`.
#[inline(always)]
pub fn pacing_ns(len: u32, bits_per_sec: u64) -> u64 {
    if bits_per_sec == 0 {
        return 0;
    }
    u64::from(len) * 8_000_000_000 / bits_per_sec
}

/// The delay-line TAP devices serving one attached interface (key: its ifindex): matched
/// packets of delay-line actions are redirected to the TAP of their direction.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DelayTaps {
    /// TAP for packets seen at ingress (0 = none).
    pub ingress_tap: u32,
    /// TAP for packets seen at egress (0 = none).
    pub egress_tap: u32,
}
const _: () = assert!(core::mem::size_of::<DelayTaps>() == 8);

/// Where a frame written back into a delay-line TAP goes (key: the TAP's ifindex).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TapReturn {
    /// The original interface.
    pub ifindex: u32,
    /// 1 = back into its ingress path (`BPF_F_INGRESS`), 0 = out of its egress.
    pub ingress: u32,
}
const _: () = assert!(core::mem::size_of::<TapReturn>() == 8);

/// Per-rule global decision ordinal (one copy, atomically incremented) so that the same seed and
/// the same packet sequence produce the same decisions regardless of which CPU saw a packet.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuleSeq {
    /// Number of decisions drawn so far.
    pub next: u64,
}
const _: () = assert!(core::mem::size_of::<RuleSeq>() == 8);

/// Deterministic 32-bit draw number `n` of the stream `seed` (splitmix64 finaliser). Shared by
/// kernel and userspace so tests can predict which packets a seed drops.
#[inline(always)]
pub fn draw(seed: u64, n: u64) -> u32 {
    let mut z = seed.wrapping_add(n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as u32
}

/// Converts a probability in `0.0..=1.0` to the kernel's scaled threshold.
pub fn probability_to_threshold(p: f64) -> u32 {
    if p >= 1.0 {
        PROB_ALWAYS
    } else if p <= 0.0 {
        0
    } else {
        (p * (u32::MAX as f64)) as u32
    }
}

/// The decision the kernel makes: act when the draw is below the threshold (always at `PROB_ALWAYS`).
#[inline(always)]
pub fn decide(threshold: u32, draw: u32) -> bool {
    threshold == PROB_ALWAYS || draw < threshold
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of them are #[repr(C)], Copy, made only of integers with explicit padding.
    unsafe impl aya::Pod for super::NetRule {}
    unsafe impl aya::Pod for super::NetCounters {}
    unsafe impl aya::Pod for super::RuleSeq {}
    unsafe impl aya::Pod for super::NetEvent {}
    unsafe impl aya::Pod for super::DelayTaps {}
    unsafe impl aya::Pod for super::TapReturn {}
    unsafe impl aya::Pod for super::EdtFlowKey {}
    unsafe impl aya::Pod for super::EdtFlow {}
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    #[test]
    fn draw_is_deterministic_and_spread() {
        assert_eq!(draw(7, 3), draw(7, 3));
        assert_ne!(draw(7, 3), draw(8, 3));
        let t = probability_to_threshold(0.3);
        let hits = (0..100_000u64).filter(|&n| decide(t, draw(42, n))).count();
        // Binomial(100000, 0.3): sd ≈ 145, so ±1000 is ~7 sd.
        assert!((29_000..31_000).contains(&hits), "hits {hits}");
    }

    fn quantile(v: &mut [u64], p: f64) -> f64 {
        v.sort_unstable();
        v[((v.len() - 1) as f64 * p).round() as usize] as f64
    }

    #[test]
    fn edt_uniform_delay_spans_the_band() {
        let ms = 1_000_000u64;
        let mut v: Vec<u64> = (0..20_000)
            .map(|n| edt_delay_ns(9, n, 50 * ms, 10 * ms, DIST_UNIFORM))
            .collect();
        assert!(v.iter().all(|&d| (40 * ms..=60 * ms).contains(&d)));
        // Uniform 40..60 ms: p10 = 42, p50 = 50, p90 = 58.
        for (p, want) in [(0.1, 42.0), (0.5, 50.0), (0.9, 58.0)] {
            let got = quantile(&mut v, p) / ms as f64;
            assert!((got - want).abs() < 0.3, "p{p}: {got} ms, want {want}");
        }
        assert_eq!(edt_delay_ns(9, 3, 7, 0, DIST_UNIFORM), 7);
    }

    #[test]
    fn edt_normal_delay_has_the_asked_spread() {
        let ms = 1_000_000u64;
        let mut v: Vec<u64> = (0..20_000)
            .map(|n| edt_delay_ns(4, n, 50 * ms, 10 * ms, DIST_NORMAL))
            .collect();
        let mean = v.iter().sum::<u64>() as f64 / v.len() as f64 / ms as f64;
        assert!((mean - 50.0).abs() < 0.4, "mean {mean}");
        // Normal(50, 10): p10 = 37.2, p90 = 62.8.
        let (p10, p90) = (quantile(&mut v, 0.1) / 1e6, quantile(&mut v, 0.9) / 1e6);
        assert!(
            (p10 - 37.2).abs() < 0.6 && (p90 - 62.8).abs() < 0.6,
            "{p10} {p90}"
        );
        // Clipped at zero.
        assert!((0..1000).all(|n| edt_delay_ns(1, n, 0, 10 * ms, DIST_NORMAL) < 60 * ms));
    }

    #[test]
    fn reorder_hold_covers_gap_packets() {
        let ms = 1_000_000;
        assert_eq!(reorder_hold_ns(3, 2 * ms, 500 * ms), 7 * ms);
        assert_eq!(reorder_hold_ns(3, 0, 500 * ms), 500 * ms);
        assert_eq!(reorder_hold_ns(3, 400 * ms, 500 * ms), 500 * ms);
        assert_eq!(next_spacing_ns(0, 8), 8);
        assert_eq!(next_spacing_ns(800, 0), 700);
    }

    #[test]
    fn pacing_time_per_packet() {
        // 1500 bytes at 12 Mbit/s = 1 ms.
        assert_eq!(pacing_ns(1500, 12_000_000), 1_000_000);
        assert_eq!(pacing_ns(1500, 0), 0);
    }

    #[test]
    fn probability_edges() {
        assert_eq!(probability_to_threshold(0.0), 0);
        assert_eq!(probability_to_threshold(1.0), PROB_ALWAYS);
        assert!(!decide(0, 0));
        assert!(decide(PROB_ALWAYS, u32::MAX));
    }
}
