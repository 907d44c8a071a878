//! The network fault engine in the kernel: rule maps, matching, seeded decisions and counters.
//!
//! Every packet seen by an attached program is compared against the live rules (bounded loop
//! over `MAX_NET_RULES` slots). A matching rule whose expiry has passed is ignored — the kernel
//! enforces expiry itself, so a dead daemon cannot leave traffic broken.

use aya_ebpf::{
    helpers::bpf_ktime_get_ns,
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf},
};
use dst_common::{
    MAX_NET_RULES,
    net::{
        ACTION_CORRUPT, ACTION_COUNT, ACTION_DELAY, ACTION_DROP, ACTION_DUPLICATE, ACTION_RATE,
        ACTION_REORDER, DelayTaps, EDT_HIST_BUCKETS, EDT_HORIZON_NS, EDT_RATE_MAX_BACKLOG_NS,
        EdtFlow, EdtFlowKey, NET_EVENT_EXPIRED, NET_EVENT_LANDED, NetCounters, NetEvent, NetRule,
        RULE_ACTIVE, RULE_EDT, RULE_EDT_IFB, RULE_EGRESS, RULE_INGRESS, RuleSeq, SPREAD_SALT,
        TapReturn, decide, draw, edt_delay_ns, next_spacing_ns, pacing_ns, reorder_hold_ns,
    },
};

use crate::packet::Flow;

/// The rules, one per slot; userspace writes a whole slot at once.
#[map(name = "DST_NET_RULES")]
pub static RULES: Array<NetRule> = Array::with_max_entries(MAX_NET_RULES, 0);

/// Per-rule, per-CPU counters (the landing evidence).
#[map(name = "DST_NET_COUNTERS")]
pub static COUNTERS: PerCpuArray<NetCounters> = PerCpuArray::with_max_entries(MAX_NET_RULES, 0);

/// Per-rule decision ordinal shared by all CPUs.
#[map(name = "DST_NET_SEQ")]
pub static SEQ: Array<RuleSeq> = Array::with_max_entries(MAX_NET_RULES, 0);

/// Port prefilter: for each destination port, the bitmask of rule slots whose narrow dport
/// range contains it.
#[map(name = "DST_NET_PORTMASK")]
pub static PORTMASK: Array<u64> = Array::with_max_entries(65_536, 0);

/// Slot 0: bitmask of rule slots that are candidates for every packet (wide dport ranges).
#[map(name = "DST_NET_WILDCARD")]
pub static WILDCARD: Array<u64> = Array::with_max_entries(1, 0);

/// Slot 0: one past the highest slot userspace has used (bounds the rule loop).
#[map(name = "DST_NET_CONFIG")]
pub static CONFIG: Array<u32> = Array::with_max_entries(1, 0);

/// Slot 0: the dead-man lease, CLOCK_MONOTONIC ns until which the rules may act. 0 = no lease
/// in use (TCX and cgroup links die with their owner); otherwise userspace renews it while it
/// lives, and once it lapses (owner SIGKILLed, clsact filters left behind) every packet passes.
#[map(name = "DST_NET_LEASE")]
pub static LEASE: Array<u64> = Array::with_max_entries(1, 0);

/// Delay-line TAPs per attached interface (key: ifindex of the interface).
#[map(name = "DST_NET_TAPS")]
pub static TAPS: HashMap<u32, DelayTaps> = HashMap::with_max_entries(64, 0);

/// Where frames written back into a TAP go (key: ifindex of the TAP).
#[map(name = "DST_NET_TAP_RETURN")]
pub static TAP_RETURN: HashMap<u32, TapReturn> = HashMap::with_max_entries(128, 0);

/// EDT: histogram of applied delays, per CPU, key = slot * EDT_HIST_BUCKETS + bucket.
#[map(name = "DST_NET_EDT_HIST")]
pub static EDT_HIST: PerCpuArray<u64> =
    PerCpuArray::with_max_entries(MAX_NET_RULES * EDT_HIST_BUCKETS, 0);

/// EDT rate pacing: the next free departure time (CLOCK_MONOTONIC ns) per rule slot.
#[map(name = "DST_NET_EDT_PACE")]
pub static EDT_PACE: Array<u64> = Array::with_max_entries(MAX_NET_RULES, 0);

/// EDT: latest departure time given per flow and rule (reorder accounting).
#[map(name = "DST_NET_EDT_FLOWS")]
pub static EDT_FLOWS: LruHashMap<EdtFlowKey, EdtFlow> = LruHashMap::with_max_entries(16_384, 0);

/// Landed and expired events for userspace (at most one per rule, kind and CPU).
#[map(name = "DST_NET_EVENTS")]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(64 * 1024, 0);

/// Sends `kind` for the rule in `slot` (dropped silently when the ring is full: the counters
/// stay the evidence, userspace also polls them).
#[inline(always)]
fn emit(kind: u32, slot: u32, time_ns: u64, seed: u64) {
    let _ = EVENTS.output::<NetEvent>(
        &NetEvent {
            kind,
            slot,
            time_ns,
            seed,
        },
        0,
    );
}

/// What the caller should do with the packet.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Let the packet continue.
    Pass,
    /// Drop the packet.
    Drop,
    /// Redirect the packet to this delay-line TAP (ifindex).
    DelayLine(u32),
    /// Send a marked clone along the same path, then let the packet continue.
    Duplicate,
    /// Flip a bit of the last payload byte, then let the packet continue.
    Corrupt,
    /// EDT: set the departure time (CLOCK_MONOTONIC ns, delivery-mono) and let the packet
    /// continue, or redirect it to `ifb` (non-zero) whose `fq` holds it until then.
    Edt {
        /// Departure time.
        tstamp: u64,
        /// ifb device for ingress delay (0 = none: egress, the device's own fq).
        ifb: u32,
        /// Non-zero: set the packet's flow hash to this. fq holds a whole flow until the
        /// departure it is waiting for, so a packet given an earlier departure than one already
        /// waiting would wait too; with its own hash, a packet of a socket fq classifies by
        /// hash (unconnected UDP, orphaned packets, ifb) is its own fq flow and leaves at its
        /// own time. Connected sockets (TCP) are classified by socket and keep that wait.
        hash: u32,
    },
}

#[inline(always)]
fn is_edt(rule: &NetRule) -> bool {
    rule.flags & RULE_EDT != 0
        && (rule.action == ACTION_DELAY
            || rule.action == ACTION_REORDER
            || rule.action == ACTION_RATE)
}

/// The EDT state of `flow` under rule `slot`, created on first use; the flow's packet spacing
/// is updated with this packet seen at `now`.
#[inline(always)]
fn edt_flow(slot: u32, flow: &Flow, now: u64) -> Option<*mut EdtFlow> {
    let key = EdtFlowKey {
        src: flow.src,
        dst: flow.dst,
        sport: flow.sport,
        dport: flow.dport,
        proto: flow.proto,
        _pad0: 0,
        slot: slot as u16,
    };
    if let Some(f) = EDT_FLOWS.get_ptr_mut(&key) {
        // SAFETY: valid map value for the program's duration; a racing CPU can only make the
        // state slightly stale (accounting and hold sizing, not memory safety).
        let st = unsafe { &mut *f };
        if st.last_seen_ns != 0 && now > st.last_seen_ns {
            st.spacing_ns = next_spacing_ns(st.spacing_ns, now - st.last_seen_ns);
        }
        st.last_seen_ns = now;
        return Some(f);
    }
    let _ = EDT_FLOWS.insert(
        &key,
        &EdtFlow {
            max_tstamp_ns: 0,
            last_seen_ns: now,
            spacing_ns: 0,
        },
        0,
    );
    EDT_FLOWS.get_ptr_mut(&key)
}

/// Records departure `tstamp` in the flow's state; true when it is earlier than a departure
/// already given to an earlier packet of the flow (it overtakes that packet: fq sends each flow
/// in departure order).
#[inline(always)]
fn edt_overtakes(st: Option<*mut EdtFlow>, tstamp: u64) -> bool {
    let Some(f) = st else { return false };
    // SAFETY: pointer from `edt_flow`, valid for the program's duration.
    let f = unsafe { &mut *f };
    if tstamp < f.max_tstamp_ns {
        true
    } else {
        f.max_tstamp_ns = tstamp;
        false
    }
}

/// Counts an applied EDT delay in the rule's histogram.
#[inline(always)]
fn edt_hist(slot: u32, shift: u8, delay: u64) {
    let mut b = delay >> (shift & 63);
    if b >= u64::from(EDT_HIST_BUCKETS) {
        b = u64::from(EDT_HIST_BUCKETS) - 1;
    }
    if let Some(h) = EDT_HIST.get_ptr_mut(slot * EDT_HIST_BUCKETS + b as u32) {
        // SAFETY: per-CPU slot of this CPU.
        unsafe { *h += 1 };
    }
}

/// The departure delay of an applied EDT rule, or None when it would exceed the horizon (the
/// packet is dropped).
#[inline(always)]
fn edt_delay(
    rule: &NetRule,
    slot: u32,
    n: u64,
    now: u64,
    len: u32,
    st: Option<*mut EdtFlow>,
) -> Option<u64> {
    match rule.action {
        ACTION_DELAY => {
            let d = edt_delay_ns(rule.seed, n, rule.param1, rule.param2, rule.param3);
            if d > EDT_HORIZON_NS { None } else { Some(d) }
        }
        // Held for about `gap` of the flow's packet spacings: that many later packets of the
        // flow leave first (the maximum hold while the spacing is unknown).
        ACTION_REORDER => {
            // SAFETY: pointer from `edt_flow`, valid for the program's duration.
            let spacing = st.map_or(0, |f| unsafe { (*f).spacing_ns });
            Some(reorder_hold_ns(
                rule.param2,
                spacing,
                rule.param1.min(EDT_HORIZON_NS),
            ))
        }
        _ => {
            let p = EDT_PACE.get_ptr_mut(slot)?;
            // SAFETY: valid map value; concurrent CPUs may race on it, which only loosens the
            // pacing by one packet (no memory unsafety).
            let next = unsafe { &mut *p };
            let t = if *next > now { *next } else { now };
            if t - now > EDT_RATE_MAX_BACKLOG_NS {
                return None;
            }
            *next = t + pacing_ns(len, rule.param1);
            Some(t - now)
        }
    }
}

/// The delay-line TAP for packets seen on `ifindex` in `dir` (0 = none installed).
#[inline(always)]
fn tap_for(ifindex: u32, dir: Direction) -> u32 {
    // SAFETY: the value is copied out immediately; userspace replaces entries whole.
    match unsafe { TAPS.get(&ifindex) } {
        Some(t) => match dir {
            Direction::Ingress => t.ingress_tap,
            Direction::Egress => t.egress_tap,
        },
        None => 0,
    }
}

/// Where a frame coming back from the delay line through TAP `tap` must go.
#[inline(always)]
pub fn tap_return(tap: u32) -> Option<TapReturn> {
    // SAFETY: copied out immediately.
    unsafe { TAP_RETURN.get(&tap) }.copied()
}

/// Which hook saw the packet.
#[derive(Clone, Copy)]
pub enum Direction {
    /// Packet entering (tc ingress, cgroup ingress).
    Ingress,
    /// Packet leaving (tc egress, cgroup egress).
    Egress,
}

/// Atomic fetch-and-add (BPF_ATOMIC | BPF_FETCH, kernel 5.12+). Written as assembly because the
/// linker's default `generic` CPU would reject a used XADD result coming from the intrinsic.
#[inline(always)]
pub(crate) fn fetch_add(ptr: *mut u64, v: u64) -> u64 {
    let mut val = v;
    // SAFETY: `ptr` is a valid, aligned map value for the program's duration.
    unsafe {
        core::arch::asm!(
            "{val} = atomic_fetch_add((u64 *)({ptr} + 0), {val})",
            ptr = in(reg) ptr,
            val = inout(reg) val,
        );
    }
    val
}

#[inline(always)]
fn port_in(p: u16, lo: u16, hi: u16) -> bool {
    p >= lo && p <= hi
}

#[inline(always)]
fn matches(rule: &NetRule, flow: &Flow, dir: Direction, ifindex: u32, cgroup_id: u64) -> bool {
    let dir_flag = match dir {
        Direction::Ingress => RULE_INGRESS,
        Direction::Egress => RULE_EGRESS,
    };
    rule.flags & RULE_ACTIVE != 0
        && rule.flags & dir_flag != 0
        && (rule.ifindex == 0 || rule.ifindex == ifindex)
        && (rule.proto == 0 || rule.proto == flow.proto)
        && flow.src & rule.src_mask == rule.src_addr
        && flow.dst & rule.dst_mask == rule.dst_addr
        && port_in(flow.sport, rule.sport_lo, rule.sport_hi)
        && port_in(flow.dport, rule.dport_lo, rule.dport_hi)
        && (rule.cgroup_id == 0 || rule.cgroup_id == cgroup_id)
}

/// Whether a lease is in use and has lapsed: then no rule may act (safety invariant 2 for
/// filters that outlive their owner). One array lookup; the clock is read only under a lease.
#[inline(always)]
fn lease_lapsed() -> bool {
    match LEASE.get(0) {
        Some(&until) if until != 0 => {
            // SAFETY: helper without preconditions.
            let now = unsafe { bpf_ktime_get_ns() };
            now > until
        }
        _ => false,
    }
}

/// Runs the packet through every live rule and returns what to do with it. `tstamp` is the
/// packet's current delivery-mono departure time (0 = none); EDT never makes it earlier.
#[inline(always)]
pub fn evaluate(
    flow: &Flow,
    dir: Direction,
    ifindex: u32,
    cgroup_id: u64,
    len: u32,
    tstamp: u64,
) -> Verdict {
    let limit = match CONFIG.get(0) {
        Some(n) => *n,
        None => return Verdict::Pass,
    };
    // Only rules whose port index or wildcard bit is set can match: most packets skip the
    // rule comparisons entirely.
    let wild = WILDCARD.get(0).copied().unwrap_or(u64::MAX);
    let by_port = PORTMASK.get(u32::from(flow.dport)).copied().unwrap_or(0);
    let candidates = wild | by_port;
    if candidates == 0 || lease_lapsed() {
        return Verdict::Pass;
    }
    let mut now = 0u64;
    for i in 0..MAX_NET_RULES {
        if i >= limit {
            break;
        }
        if candidates & (1u64 << i) == 0 {
            continue;
        }
        let Some(rule) = RULES.get(i) else { break };
        if !matches(rule, flow, dir, ifindex, cgroup_id) {
            continue;
        }
        if now == 0 {
            // SAFETY: helper without preconditions.
            now = unsafe { bpf_ktime_get_ns() };
        }
        if now < rule.not_before_ns {
            continue;
        }
        let Some(c) = COUNTERS.get_ptr_mut(i) else {
            continue;
        };
        // SAFETY: per-CPU slot of this CPU; no other writer while the program runs on it.
        let c = unsafe { &mut *c };
        if rule.expires_ns != 0 && now >= rule.expires_ns {
            if c.expired == 0 {
                emit(NET_EVENT_EXPIRED, i, now, rule.seed);
            }
            c.expired += 1;
            continue;
        }
        c.matched += 1;
        let n = match SEQ.get_ptr_mut(i) {
            // SAFETY: the slot is a valid, aligned u64 for the map's lifetime.
            Some(s) => fetch_add(s.cast(), 1),
            None => 0,
        };
        let edt = is_edt(rule);
        let st = if edt { edt_flow(i, flow, now) } else { None };
        if !decide(rule.probability, draw(rule.seed, n)) {
            c.passed += 1;
            if edt && edt_overtakes(st, if tstamp > now { tstamp } else { now }) {
                c.reordered += 1;
            }
            continue;
        }
        let verdict = match rule.action {
            ACTION_DROP => Verdict::Drop,
            _ if edt => match edt_delay(rule, i, n, now, len, st) {
                Some(d) => {
                    let at = now + d;
                    let at = if tstamp > at { tstamp } else { at };
                    edt_hist(i, rule.hist_shift, at - now);
                    c.delayed += 1;
                    if edt_overtakes(st, at) {
                        c.reordered += 1;
                    }
                    let ifb = match dir {
                        Direction::Ingress if rule.flags & RULE_EDT_IFB != 0 => rule.edt_ifb,
                        _ => 0,
                    };
                    // Rate pacing keeps departures in order: no need for a flow of its own.
                    let hash = if rule.action == ACTION_RATE {
                        0
                    } else {
                        draw(rule.seed ^ SPREAD_SALT, n) | 1
                    };
                    Verdict::Edt {
                        tstamp: at,
                        ifb,
                        hash,
                    }
                }
                None => {
                    c.edt_dropped += 1;
                    Verdict::Drop
                }
            },
            ACTION_DELAY | ACTION_REORDER | ACTION_RATE => {
                let tap = tap_for(ifindex, dir);
                if tap == 0 {
                    // No delay line on this interface/direction: the fault cannot act here.
                    c.passed += 1;
                    continue;
                }
                c.delayed += 1;
                if rule.action == ACTION_REORDER {
                    c.reordered += 1;
                }
                Verdict::DelayLine(tap)
            }
            ACTION_DUPLICATE => {
                c.duplicated += 1;
                Verdict::Duplicate
            }
            ACTION_CORRUPT => {
                c.corrupted += 1;
                Verdict::Corrupt
            }
            _ => Verdict::Pass,
        };
        c.applied += 1;
        c.bytes += len as u64;
        if c.first_applied_ns == 0 {
            c.first_applied_ns = now;
            emit(NET_EVENT_LANDED, i, now, rule.seed);
        }
        c.last_applied_ns = now;
        if rule.action != ACTION_COUNT && verdict != Verdict::Pass {
            return verdict;
        }
    }
    Verdict::Pass
}
