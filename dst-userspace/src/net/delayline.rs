//! The userspace delay line (backend for delay, jitter, reorder and rate where `fq` is missing):
//! the classifier redirects matched packets to a TAP; this thread reads them, holds each one
//! (binary heap ordered by release time) and writes it back into the TAP, whose return program
//! marks it and sends it on along its original path. It also records the delay actually
//! applied per fault.

use std::{
    cmp::Ordering,
    collections::{BTreeMap, BinaryHeap},
    io::{self, Read as _, Write as _},
    os::fd::AsRawFd as _,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering as AtomicOrdering},
    },
    thread::JoinHandle,
};

use aya::maps::{Array, Map, MapData, PerCpuArray};
use dst_common::net::{
    ACTION_DELAY, ACTION_RATE, ACTION_REORDER, DELAY_SALT, DIST_NORMAL, NetCounters, NetRule,
    RULE_EGRESS, RULE_INGRESS, RuleSeq, draw,
};
use serde::Serialize;

use super::{spec::monotonic_ns, tap::Tap};

/// Rate-limited traffic queued beyond this much sending time is tail-dropped (like tbf).
const RATE_MAX_BACKLOG_NS: u64 = 1_000_000_000;
/// What the delay line did for one fault.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DelayStats {
    /// Frames of this fault read from the TAP.
    pub received: u64,
    /// Frames written back (released).
    pub released: u64,
    /// Reordered frames released after at least one later matched packet had gone past.
    pub overtaken: u64,
    /// Reordered frames released because no later packet came within the maximum hold.
    pub hold_timeouts: u64,
    /// Frames tail-dropped by the rate limit (backlog over 1 s).
    pub rate_dropped: u64,
    /// Distribution of the hold actually applied (read from the TAP → written back).
    pub delay: Option<Histogram>,
}

/// Summary of applied delays in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Histogram {
    /// Samples.
    pub count: u64,
    /// Smallest.
    pub min_ms: f64,
    /// 10th percentile.
    pub p10_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
    /// 20 equal-width buckets from min to max: (upper bound ms, count).
    pub buckets: Vec<(f64, u64)>,
}

impl Histogram {
    /// Summarises delays given in ns (None when empty).
    pub fn from_ns(samples: &[u64]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut v: Vec<f64> = samples.iter().map(|&ns| ns as f64 / 1e6).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
        let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
        let (min, max) = (v[0], v[v.len() - 1]);
        let width = ((max - min) / 20.0).max(1e-9);
        let mut buckets: Vec<(f64, u64)> = (1..=20).map(|i| (min + width * i as f64, 0)).collect();
        for x in &v {
            let i = (((x - min) / width) as usize).min(19);
            buckets[i].1 += 1;
        }
        Some(Self {
            count: v.len() as u64,
            min_ms: min,
            p10_ms: q(0.1),
            p50_ms: q(0.5),
            p90_ms: q(0.9),
            max_ms: max,
            mean_ms: v.iter().sum::<f64>() / v.len() as f64,
            buckets,
        })
    }
}

impl Histogram {
    /// Summarises a bucketed histogram: `counts[i]` delays in `[i * width, (i + 1) * width)` ns,
    /// each taken at its bucket's midpoint (None when empty). Used for EDT, whose kernel
    /// program counts buckets instead of keeping samples.
    pub fn from_buckets(counts: &[u64], width_ns: u64) -> Option<Self> {
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let mid = |i: usize| (i as f64 + 0.5) * width_ns as f64 / 1e6;
        let q = |p: f64| {
            let rank = ((total - 1) as f64 * p).round() as u64;
            let mut seen = 0;
            for (i, &c) in counts.iter().enumerate() {
                seen += c;
                if seen > rank {
                    return mid(i);
                }
            }
            mid(counts.len() - 1)
        };
        let first = counts.iter().position(|&c| c > 0).unwrap_or(0);
        let last = counts.iter().rposition(|&c| c > 0).unwrap_or(0);
        let mean = counts
            .iter()
            .enumerate()
            .map(|(i, &c)| mid(i) * c as f64)
            .sum::<f64>()
            / total as f64;
        Some(Self {
            count: total,
            min_ms: mid(first),
            p10_ms: q(0.1),
            p50_ms: q(0.5),
            p90_ms: q(0.9),
            max_ms: mid(last),
            mean_ms: mean,
            buckets: counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(i, &c)| ((i + 1) as f64 * width_ns as f64 / 1e6, c))
                .collect(),
        })
    }
}

#[derive(Default)]
struct SlotState {
    stats: DelayStats,
    delays_ns: Vec<u64>,
    ordinal: u64,
    next_free_ns: u64,
}

/// Rules and per-fault state shared between the engine (which registers rules before the kernel
/// sees them) and the delay-line thread.
#[derive(Default)]
pub struct Shared {
    rules: BTreeMap<u32, NetRule>,
    slots: BTreeMap<u32, SlotState>,
}

/// Handle the engine keeps to register and retire rules.
pub type SharedRules = Arc<Mutex<Shared>>;

/// Registers `rule` in `slot` (before it goes live in the kernel).
pub fn register(shared: &SharedRules, slot: u32, rule: NetRule) {
    let mut s = shared.lock().expect("delay line lock");
    s.rules.insert(slot, rule);
    s.slots.insert(slot, SlotState::default());
}

/// Retires the rule in `slot`; frames already held are still released, its stats stay readable.
pub fn retire(shared: &SharedRules, slot: u32) {
    shared.lock().expect("delay line lock").rules.remove(&slot);
}

/// The delay for the `n`-th packet of `rule` (seeded: the same seed gives the same delays).
pub fn delay_for(rule: &NetRule, n: u64) -> u64 {
    let (base, jitter) = (rule.param1 as f64, rule.param2 as f64);
    let unit = |k: u64| (draw(rule.seed ^ DELAY_SALT, k) as f64 + 0.5) / 4_294_967_296.0;
    let d = if rule.param3 == DIST_NORMAL {
        let (u1, u2) = (unit(2 * n), unit(2 * n + 1));
        base + (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos() * jitter
    } else {
        base + (2.0 * unit(n) - 1.0) * jitter
    };
    d.max(0.0) as u64
}

/// Reads the kernel's decision ordinal and `passed` count of a rule (for reorder).
struct KernelView {
    seq: Array<MapData, RuleSeq>,
    counters: PerCpuArray<MapData, NetCounters>,
}

impl KernelView {
    fn open(seq_id: u32, counters_id: u32) -> Result<Self, aya::maps::MapError> {
        Ok(Self {
            seq: Array::try_from(Map::Array(MapData::from_id(seq_id)?))?,
            counters: PerCpuArray::try_from(Map::PerCpuArray(MapData::from_id(counters_id)?))?,
        })
    }

    fn progress(&self, slot: u32) -> (u64, u64) {
        let seq = self.seq.get(&slot, 0).map_or(0, |s| s.next);
        let passed = self
            .counters
            .get(&slot, 0)
            .map_or(0, |v| v.iter().map(|c| c.passed).sum());
        (seq, passed)
    }
}

struct Pending {
    release_ns: u64,
    order: u64,
    tap: usize,
    slot: u32,
    arrived_ns: u64,
    frame: Vec<u8>,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.release_ns, self.order) == (o.release_ns, o.order)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> Ordering {
        // Min-heap on (release time, arrival order).
        (o.release_ns, o.order).cmp(&(self.release_ns, self.order))
    }
}

struct Held {
    tap: usize,
    slot: u32,
    arrived_ns: u64,
    frame: Vec<u8>,
    seq_at: u64,
    passed_at: u64,
    gap: u64,
    deadline_ns: u64,
}

/// A running delay line serving the TAPs of one interface. Dropping it releases every held
/// frame at once and closes the TAPs (the kernel then deletes them).
pub struct DelayLine {
    shared: SharedRules,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// (name, ifindex, RULE_INGRESS or RULE_EGRESS) of each TAP.
    pub taps: Vec<(String, u32, u32)>,
}

impl DelayLine {
    /// Starts the thread over `taps` (each with the direction flag of the packets it carries).
    pub fn start(
        taps: Vec<(Tap, u32)>,
        shared: SharedRules,
        seq_map_id: u32,
        counters_map_id: u32,
    ) -> Result<Self, aya::maps::MapError> {
        let kernel = KernelView::open(seq_map_id, counters_map_id)?;
        let stop = Arc::new(AtomicBool::new(false));
        let info = taps
            .iter()
            .map(|(t, d)| (t.name.clone(), t.ifindex, *d))
            .collect();
        let thread = {
            let (shared, stop) = (shared.clone(), stop.clone());
            std::thread::Builder::new()
                .name("dst-delay-line".into())
                .spawn(move || run(taps, shared, stop, kernel))
                .map_err(aya::maps::MapError::IoError)?
        };
        Ok(Self {
            shared,
            stop,
            thread: Some(thread),
            taps: info,
        })
    }

    /// The rule table this line serves.
    pub fn shared(&self) -> SharedRules {
        self.shared.clone()
    }

    /// What the line did for the fault in `slot` so far.
    pub fn stats(&self, slot: u32) -> Option<DelayStats> {
        let s = self.shared.lock().expect("delay line lock");
        s.slots.get(&slot).map(|st| {
            let mut out = st.stats.clone();
            out.delay = Histogram::from_ns(&st.delays_ns);
            out
        })
    }
}

impl DelayLine {
    /// Releases every held frame, stops the thread and closes the TAPs; stats stay readable.
    pub fn stop(&mut self) {
        self.stop.store(true, AtomicOrdering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// IPv4 5-tuple of an Ethernet frame as the kernel rule compares it.
fn flow(frame: &[u8]) -> Option<(u8, u32, u32, u16, u16)> {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] || frame[14] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    let proto = frame[23];
    let src = u32::from_ne_bytes(frame[26..30].try_into().ok()?);
    let dst = u32::from_ne_bytes(frame[30..34].try_into().ok()?);
    let l4 = 14 + ihl;
    let (sp, dp) = if (proto == 6 || proto == 17) && frame.len() >= l4 + 4 {
        (
            u16::from_be_bytes([frame[l4], frame[l4 + 1]]),
            u16::from_be_bytes([frame[l4 + 2], frame[l4 + 3]]),
        )
    } else {
        (0, 0)
    };
    Some((proto, src, dst, sp, dp))
}

/// The first delay-line rule (slot order) that matches the frame seen in direction `dir`.
fn match_rule(rules: &BTreeMap<u32, NetRule>, frame: &[u8], dir: u32) -> Option<(u32, NetRule)> {
    let (proto, src, dst, sp, dp) = flow(frame)?;
    rules
        .iter()
        .find(|(_, r)| {
            matches!(r.action, ACTION_DELAY | ACTION_REORDER | ACTION_RATE)
                && r.flags & dir != 0
                && (r.proto == 0 || r.proto == proto)
                && src & r.src_mask == r.src_addr
                && dst & r.dst_mask == r.dst_addr
                && (r.sport_lo..=r.sport_hi).contains(&sp)
                && (r.dport_lo..=r.dport_hi).contains(&dp)
        })
        .map(|(s, r)| (*s, *r))
}

fn run(taps: Vec<(Tap, u32)>, shared: SharedRules, stop: Arc<AtomicBool>, kernel: KernelView) {
    let mut taps = taps;
    let mut heap: BinaryHeap<Pending> = BinaryHeap::new();
    let mut held: Vec<Held> = Vec::new();
    let mut order = 0u64;
    let mut buf = vec![0u8; 65_536];
    loop {
        let stopping = stop.load(AtomicOrdering::SeqCst);
        let now = monotonic_ns();
        while heap.peek().is_some_and(|p| stopping || p.release_ns <= now) {
            let p = heap.pop().expect("peeked");
            release(
                &mut taps,
                &shared,
                p.tap,
                p.slot,
                p.arrived_ns,
                &p.frame,
                None,
            );
        }
        if !held.is_empty() {
            let mut progress: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
            let mut keep = Vec::with_capacity(held.len());
            for h in held.drain(..) {
                let (seq, passed) = *progress
                    .entry(h.slot)
                    .or_insert_with(|| kernel.progress(h.slot));
                let overtaken = seq >= h.seq_at + h.gap && passed > h.passed_at;
                if overtaken || stopping || now >= h.deadline_ns {
                    release(
                        &mut taps,
                        &shared,
                        h.tap,
                        h.slot,
                        h.arrived_ns,
                        &h.frame,
                        Some(overtaken),
                    );
                } else {
                    keep.push(h);
                }
            }
            held = keep;
        }
        if stopping {
            break;
        }
        let mut wait_ns: u64 = 20_000_000;
        if let Some(p) = heap.peek() {
            wait_ns = wait_ns.min(p.release_ns.saturating_sub(now));
        }
        if !held.is_empty() {
            wait_ns = wait_ns.min(200_000);
        }
        // poll has ms resolution: sleep the sub-ms remainder precisely instead.
        let readable: Vec<bool> = if wait_ns < 1_000_000 {
            if wait_ns > 0 {
                std::thread::sleep(std::time::Duration::from_nanos(wait_ns));
            }
            vec![true; taps.len()]
        } else {
            let mut fds: Vec<libc::pollfd> = taps
                .iter()
                .map(|(t, _)| libc::pollfd {
                    fd: t.file.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            let ms = (wait_ns / 1_000_000).min(i32::MAX as u64) as i32;
            // SAFETY: `fds` is a valid array of pollfd for the duration of the call.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
            fds.iter().map(|f| f.revents & libc::POLLIN != 0).collect()
        };
        for (i, ready) in readable.into_iter().enumerate() {
            if !ready {
                continue;
            }
            loop {
                let n = match taps[i].0.file.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::warn!("delay line: reading {}: {e}", taps[i].0.name);
                        break;
                    }
                };
                let frame = buf[..n].to_vec();
                let arrived = monotonic_ns();
                let dir = taps[i].1;
                let mut s = shared.lock().expect("delay line lock");
                let Some((slot, rule)) = match_rule(&s.rules, &frame, dir) else {
                    drop(s);
                    // Not ours (e.g. IPv6 noise from the TAP) or the fault was cleared: pass it.
                    let _ = taps[i].0.file.write(&frame);
                    continue;
                };
                let st = s.slots.entry(slot).or_default();
                st.stats.received += 1;
                order += 1;
                match rule.action {
                    ACTION_REORDER => {
                        drop(s);
                        let (seq_at, passed_at) = kernel.progress(slot);
                        held.push(Held {
                            tap: i,
                            slot,
                            arrived_ns: arrived,
                            frame,
                            seq_at,
                            passed_at,
                            gap: rule.param2.max(1),
                            deadline_ns: arrived + rule.param1,
                        });
                    }
                    ACTION_RATE => {
                        let start = st.next_free_ns.max(arrived);
                        if start - arrived > RATE_MAX_BACKLOG_NS {
                            st.stats.rate_dropped += 1;
                            continue;
                        }
                        let send_ns =
                            (n as u64 * 8).saturating_mul(1_000_000_000) / rule.param1.max(1);
                        st.next_free_ns = start + send_ns;
                        heap.push(Pending {
                            release_ns: start + send_ns,
                            order,
                            tap: i,
                            slot,
                            arrived_ns: arrived,
                            frame,
                        });
                    }
                    _ => {
                        let d = delay_for(&rule, st.ordinal);
                        st.ordinal += 1;
                        heap.push(Pending {
                            release_ns: arrived + d,
                            order,
                            tap: i,
                            slot,
                            arrived_ns: arrived,
                            frame,
                        });
                    }
                }
            }
        }
    }
}

fn release(
    taps: &mut [(Tap, u32)],
    shared: &SharedRules,
    tap: usize,
    slot: u32,
    arrived_ns: u64,
    frame: &[u8],
    overtaken: Option<bool>,
) {
    if let Err(e) = taps[tap].0.file.write(frame) {
        tracing::warn!("delay line: writing to {}: {e}", taps[tap].0.name);
        return;
    }
    let held = monotonic_ns().saturating_sub(arrived_ns);
    let mut s = shared.lock().expect("delay line lock");
    let st = s.slots.entry(slot).or_default();
    st.stats.released += 1;
    match overtaken {
        Some(true) => st.stats.overtaken += 1,
        Some(false) => st.stats.hold_timeouts += 1,
        None => {}
    }
    if st.delays_ns.len() < 1_000_000 {
        st.delays_ns.push(held);
    }
}

/// The direction flag a TAP serves.
pub fn dir_flag(ingress: bool) -> u32 {
    if ingress { RULE_INGRESS } else { RULE_EGRESS }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delay_rule(base_ms: u64, jitter_ms: u64, dist: u32) -> NetRule {
        NetRule {
            action: ACTION_DELAY,
            param1: base_ms * 1_000_000,
            param2: jitter_ms * 1_000_000,
            param3: dist,
            seed: 9,
            ..NetRule::default()
        }
    }

    #[test]
    fn uniform_delays_stay_in_band_and_centre() {
        let r = delay_rule(50, 10, 0);
        let d: Vec<u64> = (0..10_000).map(|n| delay_for(&r, n)).collect();
        assert!(d.iter().all(|&x| (40_000_000..=60_000_000).contains(&x)));
        let mean = d.iter().sum::<u64>() as f64 / d.len() as f64 / 1e6;
        assert!((mean - 50.0).abs() < 0.5, "mean {mean}");
        assert_eq!(delay_for(&r, 17), delay_for(&r, 17));
    }

    #[test]
    fn normal_delays_have_the_asked_spread() {
        let r = delay_rule(50, 10, DIST_NORMAL);
        let d: Vec<f64> = (0..20_000).map(|n| delay_for(&r, n) as f64 / 1e6).collect();
        let mean = d.iter().sum::<f64>() / d.len() as f64;
        let sd = (d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / d.len() as f64).sqrt();
        assert!((mean - 50.0).abs() < 0.5, "mean {mean}");
        assert!((sd - 10.0).abs() < 0.5, "sd {sd}");
    }

    #[test]
    fn bucketed_histogram_quantiles() {
        // 10 delays in each 1 ms bucket from 40 to 59 ms.
        let mut counts = vec![0u64; 256];
        for c in &mut counts[40..60] {
            *c = 10;
        }
        let h = Histogram::from_buckets(&counts, 1_000_000).unwrap();
        assert_eq!(h.count, 200);
        assert_eq!((h.min_ms, h.max_ms), (40.5, 59.5));
        assert_eq!((h.p10_ms, h.p50_ms, h.p90_ms), (42.5, 50.5, 57.5));
        assert!((h.mean_ms - 50.0).abs() < 1e-9);
        assert!(Histogram::from_buckets(&[0; 4], 1).is_none());
    }

    #[test]
    fn histogram_quantiles() {
        let h = Histogram::from_ns(&(1..=100).map(|i| i * 1_000_000).collect::<Vec<_>>()).unwrap();
        assert_eq!((h.count, h.min_ms, h.max_ms), (100, 1.0, 100.0));
        assert!((h.p50_ms - 50.0).abs() <= 1.0 && (h.p90_ms - 90.0).abs() <= 1.0);
        assert_eq!(h.buckets.iter().map(|b| b.1).sum::<u64>(), 100);
        assert!(Histogram::from_ns(&[]).is_none());
    }

    #[test]
    fn frames_match_rules_by_five_tuple_and_direction() {
        let mut f = vec![0u8; 60];
        f[12] = 0x08;
        f[14] = 0x45;
        f[23] = 17;
        f[26..30].copy_from_slice(&[10, 0, 0, 1]);
        f[30..34].copy_from_slice(&[10, 0, 0, 2]);
        f[36..38].copy_from_slice(&9000u16.to_be_bytes());
        let mut rules = BTreeMap::new();
        let mut r = delay_rule(1, 0, 0);
        r.flags = RULE_EGRESS;
        r.proto = 17;
        r.sport_hi = u16::MAX;
        r.dport_lo = 9000;
        r.dport_hi = 9000;
        rules.insert(3, r);
        assert_eq!(match_rule(&rules, &f, RULE_EGRESS).map(|m| m.0), Some(3));
        assert!(match_rule(&rules, &f, RULE_INGRESS).is_none());
        f[36..38].copy_from_slice(&9001u16.to_be_bytes());
        assert!(match_rule(&rules, &f, RULE_EGRESS).is_none());
    }
}
