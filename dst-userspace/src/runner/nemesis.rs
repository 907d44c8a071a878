//! The nemesis schedule: partition shapes turned into directed host pairs to cut, each pair a
//! drop rule (egress, src/32 → dst/32), and syscall faults on one host's processes (its
//! cgroup); every live window is enforced by the kernel itself (`not_before`/`expires`), so
//! activation and healing happen at the scheduled instants even if dst is busy. Evidence per
//! nemesis is the sum of its rules' counters (packets dropped, or calls failed).

use std::{fmt, time::Duration};

use checkers::history::{OpType, Process};
use serde::Serialize;
use serde_json::json;

use super::sut::RunningSut;
use super::{
    log::HistoryLog,
    rng::Rng,
    scenario::{Nemesis, Shape},
};
use crate::{
    net::{Action, Direction, NetEngine, NetError, NetFault, PortRange, RuleEvidence, spec::Cidr},
    sys::{
        SysFault, SyscallClass, Target, Trigger,
        inject::{InjectError, Injection, inject_running_window},
        spec::parse_errno,
    },
    testing::Host,
};

/// What carries a scheduled nemesis in the kernel.
pub enum Carrier {
    /// Drop rules in the network engine (slots).
    Net(Vec<u32>),
    /// A syscall injection on a host's cgroup (taken when its evidence is read).
    Sys(Option<Box<Injection>>),
    /// Rules on the cluster's node daemons, applied through the coordinator at the window's
    /// start under this transaction (`None`: the apply was refused and rolled back).
    Cluster(Option<String>),
}

impl fmt::Debug for Carrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Net(slots) => f.debug_tuple("Net").field(slots).finish(),
            Self::Sys(i) => f
                .debug_tuple("Sys")
                .field(&i.as_ref().map(|i| i.backend()))
                .finish(),
            Self::Cluster(txn) => f.debug_tuple("Cluster").field(txn).finish(),
        }
    }
}

/// The groups a shape splits the hosts into (for the report), and the directed pairs
/// (from, to) of 0-based host indexes whose traffic is cut.
pub fn cut_pairs(
    shape: Shape,
    node: usize,
    one_way: bool,
    n: usize,
    rng: &mut Rng,
) -> (Vec<Vec<usize>>, Vec<(usize, usize)>) {
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    let (groups, mut pairs): (Vec<Vec<usize>>, Vec<(usize, usize)>) = match shape {
        Shape::Isolate => {
            let k = if node == 0 { order[0] } else { node - 1 };
            let rest: Vec<usize> = (0..n).filter(|&j| j != k).collect();
            let pairs = rest.iter().flat_map(|&j| [(k, j), (j, k)]).collect();
            (vec![vec![k], rest], pairs)
        }
        Shape::Halves => {
            let (a, b) = order.split_at(n / 2);
            (vec![a.to_vec(), b.to_vec()], cross(a, b))
        }
        Shape::Bridge => {
            let bridge = order[n / 2];
            let a: Vec<usize> = order[..n / 2].to_vec();
            let b: Vec<usize> = order[n / 2 + 1..].to_vec();
            (vec![a.clone(), vec![bridge], b.clone()], cross(&a, &b))
        }
        Shape::MajoritiesRing => {
            // Hosts on a ring in seeded order; each keeps links to the nearest hosts on both
            // sides so that it sees a majority, and no two see the same majority.
            let mut pairs = Vec::new();
            if n == 3 {
                pairs.extend([(order[0], order[1]), (order[1], order[0])]);
            } else {
                let majority = n / 2 + 1;
                let reach = (majority - 1).div_ceil(2);
                for i in 0..n {
                    for j in 0..n {
                        let d = i.abs_diff(j).min(n - i.abs_diff(j));
                        if i != j && d > reach {
                            pairs.push((order[i], order[j]));
                        }
                    }
                }
            }
            (vec![order.clone()], pairs)
        }
    };
    if one_way {
        // Keep one direction of every cut: from the earlier group (or ring position) only.
        let rank = |h: usize| {
            groups.iter().position(|g| g.contains(&h)).unwrap_or(0) * n
                + order.iter().position(|&x| x == h).unwrap_or(0)
        };
        pairs.retain(|&(a, b)| rank(a) < rank(b));
    }
    (groups, pairs)
}

fn cross(a: &[usize], b: &[usize]) -> Vec<(usize, usize)> {
    a.iter()
        .flat_map(|&x| b.iter().flat_map(move |&y| [(x, y), (y, x)]))
        .collect()
}

/// One scheduled nemesis after its rules were installed.
#[derive(Debug, Serialize)]
pub struct Scheduled {
    /// Nemesis id.
    pub id: String,
    /// `partition` or `syscall`.
    pub kind: &'static str,
    /// For syscall faults: `write→EIO` and the like.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// Groups of host numbers (1-based) as the shape split them.
    pub groups: Vec<Vec<usize>>,
    /// Directed cuts (1-based host numbers).
    pub cuts: Vec<(usize, usize)>,
    /// Window start, CLOCK_MONOTONIC ns.
    pub start_ns: u64,
    /// Window end, CLOCK_MONOTONIC ns.
    pub end_ns: u64,
    /// Window start relative to the start of the workload, in milliseconds.
    pub start_offset_ms: u64,
    /// Landing requirement.
    pub min_applied: u64,
    /// Rule slots in the engine, or the syscall injection.
    #[serde(skip)]
    pub carrier: Carrier,
    /// Backend that carries it (`tcx`, `cgroup sock hooks`, `BPF LSM` …).
    pub backend: String,
    /// Seed of the rules' decision streams.
    pub seed: u64,
}

/// One partition window as the seed shapes it, before anything carries it.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedCut {
    /// Index of its nemesis in the scenario.
    pub nemesis: usize,
    /// Window id (`id`, or `id#k` when repeated).
    pub id: String,
    /// Groups of 0-based host indexes as the shape split them.
    pub groups: Vec<Vec<usize>>,
    /// Directed cuts (from, to), 0-based host indexes.
    pub pairs: Vec<(usize, usize)>,
    /// Window start, CLOCK_MONOTONIC ns.
    pub start_ns: u64,
    /// Window end, CLOCK_MONOTONIC ns.
    pub end_ns: u64,
}

/// Every partition window of the schedule over `hosts` hosts, relative to `t0_ns`; each
/// repetition draws its own choices (which node, which split) from the seed. Local and
/// cluster runs plan through this one function, so a seed cuts the same pairs in both.
pub fn plan_partitions(
    nemeses: &[Nemesis],
    hosts: usize,
    seed: u64,
    t0_ns: u64,
) -> Vec<PlannedCut> {
    let mut out = Vec::new();
    for (i, n) in nemeses.iter().enumerate() {
        let Some(shape) = n.shape else {
            continue;
        };
        for k in 0..n.repeat.max(1) {
            let mut rng = Rng::new(seed, 7 + i as u64 + 1000 * u64::from(k));
            let (groups, pairs) = cut_pairs(shape, n.node, n.one_way, hosts, &mut rng);
            let start_ns = t0_ns + (n.start + n.period() * k).as_nanos() as u64;
            out.push(PlannedCut {
                nemesis: i,
                id: window_id(n, k),
                groups,
                pairs,
                start_ns,
                end_ns: start_ns + n.duration.as_nanos() as u64,
            });
        }
    }
    out
}

impl PlannedCut {
    /// The scheduled entry (1-based host numbers) carried by `carrier` on `backend`.
    pub fn scheduled(
        &self,
        n: &Nemesis,
        t0_ns: u64,
        carrier: Carrier,
        backend: &str,
        seed: u64,
    ) -> Scheduled {
        Scheduled {
            id: self.id.clone(),
            kind: "partition",
            fault: None,
            groups: self
                .groups
                .iter()
                .map(|g| g.iter().map(|h| h + 1).collect())
                .collect(),
            cuts: self.pairs.iter().map(|&(a, b)| (a + 1, b + 1)).collect(),
            start_ns: self.start_ns,
            start_offset_ms: (self.start_ns - t0_ns) / 1_000_000,
            end_ns: self.end_ns,
            min_applied: n.min_applied,
            carrier,
            backend: backend.to_string(),
            seed,
        }
    }
}

/// Installs every nemesis's rules up front with kernel-enforced windows relative to `t0_ns`.
pub fn install(
    engine: &mut NetEngine,
    nemeses: &[Nemesis],
    hosts: &[Host],
    seed: u64,
    t0_ns: u64,
    backend: &str,
) -> Result<Vec<Scheduled>, NetError> {
    let mut out = Vec::new();
    for w in plan_partitions(nemeses, hosts.len(), seed, t0_ns) {
        let n = &nemeses[w.nemesis];
        let rule = |a: usize, b: usize| {
            let mut f = NetFault::new(Action::Drop { probability: 1.0 });
            f.direction = Direction::Egress;
            f.src = Some(Cidr {
                addr: hosts[a].addr,
                prefix: 32,
            });
            f.dst = Some(Cidr {
                addr: hosts[b].addr,
                prefix: 32,
            });
            f.seed = seed;
            f
        };
        let mut faults: Vec<(NetFault, u64, u64)> = Vec::new();
        for &(a, b) in &w.pairs {
            match n.port {
                None => faults.push((rule(a, b), w.start_ns, w.end_ns)),
                Some(p) => {
                    // Requests to the port and replies from it.
                    let mut to = rule(a, b);
                    to.dport = PortRange { lo: p, hi: p };
                    let mut from = rule(a, b);
                    from.sport = PortRange { lo: p, hi: p };
                    faults.push((to, w.start_ns, w.end_ns));
                    faults.push((from, w.start_ns, w.end_ns));
                }
            }
        }
        let slots = engine.apply(&faults)?;
        out.push(w.scheduled(n, t0_ns, Carrier::Net(slots), backend, seed));
    }
    Ok(out)
}

impl Scheduled {
    /// What it does, for tables: the cuts (`n1→n2 n2→n1`) or the syscall fault (`n2: write→EIO`).
    pub fn what(&self, arrow: &str, sep: &str) -> String {
        match &self.fault {
            Some(f) => format!("n{}: {f}", self.groups[0][0]),
            None => self
                .cuts
                .iter()
                .map(|(a, b)| format!("n{a}{arrow}n{b}"))
                .collect::<Vec<_>>()
                .join(sep),
        }
    }
}

fn window_id(n: &Nemesis, k: u32) -> String {
    if n.repeat > 1 {
        format!("{}#{}", n.id, k + 1)
    } else {
        n.id.clone()
    }
}

/// A syscall nemesis that could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("nemesis {id}: this kernel cannot carry it: {source}")]
pub struct SyscallNemesisError {
    /// The nemesis (window) id.
    pub id: String,
    /// Why.
    #[source]
    pub source: Box<InjectError>,
}

/// Installs every syscall nemesis on its host's cgroup with kernel-enforced windows relative to
/// `t0_ns`. A class no backend of this kernel can carry for running processes is refused with
/// the reason (from the probe's `facts`), which makes the run ENVIRONMENT_ERROR.
pub fn install_syscalls(
    nemeses: &[Nemesis],
    sut: &RunningSut,
    hosts: usize,
    seed: u64,
    t0_ns: u64,
    facts: &crate::sys::select::SysFacts,
) -> Result<Vec<Scheduled>, SyscallNemesisError> {
    let err = |id: &str, e: InjectError| SyscallNemesisError {
        id: id.to_string(),
        source: Box::new(e),
    };
    let mut out = Vec::new();
    for (i, n) in nemeses.iter().enumerate() {
        let Some(name) = &n.syscall else {
            continue;
        };
        // Validated with the scenario: the class and errno parse.
        let class = SyscallClass::parse(name).map_err(|e| err(&n.id, e.into()))?;
        let errno =
            parse_errno(n.errno.as_deref().unwrap_or("EIO")).map_err(|e| err(&n.id, e.into()))?;
        for k in 0..n.repeat.max(1) {
            let mut rng = Rng::new(seed, 7 + i as u64 + 1000 * u64::from(k));
            let mut order: Vec<usize> = (1..=hosts).collect();
            rng.shuffle(&mut order);
            let node = if n.node == 0 { order[0] } else { n.node };
            let start_ns = t0_ns + (n.start + n.period() * k).as_nanos() as u64;
            let end_ns = start_ns + n.duration.as_nanos() as u64;
            let id = window_id(n, k);
            let cg = sut
                .host_cgroup(node)
                .expect("the scenario validates node against topology.hosts");
            let cg_id = cg.id().map_err(|e| err(&id, InjectError::Cgroup(e)))?;
            let fault = SysFault {
                target: Target::Cgroup {
                    path: cg.path().to_path_buf(),
                    id: cg_id,
                },
                class,
                errno,
                trigger: Trigger {
                    probability: n.probability,
                    seed,
                    ..Trigger::default()
                },
                path: n.path.clone(),
                duration: None,
            };
            let inj =
                inject_running_window(&fault, facts, start_ns, end_ns).map_err(|e| err(&id, e))?;
            out.push(Scheduled {
                id,
                kind: "syscall",
                fault: Some(format!(
                    "{}→{}",
                    class.name(),
                    crate::sys::spec::errno_to_name(errno)
                )),
                groups: vec![vec![node]],
                cuts: Vec::new(),
                start_ns,
                start_offset_ms: (start_ns - t0_ns) / 1_000_000,
                end_ns,
                min_applied: n.min_applied,
                backend: inj.backend().to_string(),
                carrier: Carrier::Sys(Some(Box::new(inj))),
                seed,
            });
        }
    }
    Ok(out)
}

/// How often the landing counters of live windows are sampled into the history.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// Writes start/stop nemesis entries into the history at the windows' edges and, while any
/// window is live, a `landing` entry per live nemesis every [`SAMPLE_EVERY`] with its counters
/// so far (from `sample`) — the kernel acts on its own; these entries are for the reader and
/// the timeline's landing curves. Returns when the last window ended.
pub fn record_windows(
    scheduled: &[Scheduled],
    log: &HistoryLog,
    sample: &dyn Fn(&Scheduled) -> Option<RuleEvidence>,
) {
    let mut edges: Vec<(u64, bool, &Scheduled)> = scheduled
        .iter()
        .flat_map(|s| [(s.start_ns, true, s), (s.end_ns, false, s)])
        .collect();
    edges.sort_by_key(|e| e.0);
    let nemesis = || Process::Name("nemesis".into());
    let record_landing = |s: &Scheduled| {
        if let Some(e) = sample(s) {
            log.record(
                nemesis(),
                OpType::Info,
                "landing",
                None,
                json!({ "id": s.id, "applied": e.applied, "matched": e.matched }),
            );
        }
    };
    let mut live: Vec<&Scheduled> = Vec::new();
    for (at, start, s) in edges {
        loop {
            let now = crate::net::spec::monotonic_ns();
            if now >= at {
                break;
            }
            let wait = Duration::from_nanos(at - now);
            if live.is_empty() || wait <= SAMPLE_EVERY {
                std::thread::sleep(wait.min(SAMPLE_EVERY));
                continue;
            }
            std::thread::sleep(SAMPLE_EVERY);
            for l in &live {
                record_landing(l);
            }
        }
        let (f, value) = match (s.kind, start) {
            ("syscall", true) => (
                "start-syscall-fault",
                json!({ "id": s.id, "node": s.groups[0][0], "fault": s.fault }),
            ),
            ("syscall", false) => (
                "stop-syscall-fault",
                json!({ "id": s.id, "node": s.groups[0][0], "fault": s.fault }),
            ),
            (_, true) => (
                "start-partition",
                json!({ "id": s.id, "groups": s.groups, "cuts": s.cuts }),
            ),
            (_, false) => (
                "stop-partition",
                json!({ "id": s.id, "groups": s.groups, "cuts": s.cuts }),
            ),
        };
        if start {
            live.push(s);
        } else {
            record_landing(s);
            live.retain(|l| l.id != s.id);
        }
        log.record(nemesis(), OpType::Info, f, None, value);
    }
}

/// Errors reading a nemesis's evidence.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// Reading network rule counters failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// Reading a syscall injection's counters failed.
    #[error(transparent)]
    Sys(#[from] InjectError),
}

/// The counters of a nemesis: its drop rules summed, or its syscall injection's (`applied` =
/// calls failed, `matched` = calls of the class in the window). Removes a syscall injection
/// once read.
pub fn evidence(engine: &NetEngine, s: &mut Scheduled) -> Result<RuleEvidence, EvidenceError> {
    let total = peek(engine, s)?;
    if let Carrier::Sys(inj) = &mut s.carrier
        && let Some(mut inj) = inj.take()
    {
        let _ = inj.clear();
    }
    Ok(total)
}

/// The counters of a nemesis so far, leaving it installed.
pub fn peek(engine: &NetEngine, s: &Scheduled) -> Result<RuleEvidence, EvidenceError> {
    let slots = match &s.carrier {
        Carrier::Net(slots) => slots.clone(),
        // Counted by the node daemons; the coordinator reads them (runner::cluster).
        Carrier::Cluster(_) => return Ok(RuleEvidence::default()),
        Carrier::Sys(inj) => {
            let Some(inj) = inj else {
                return Ok(RuleEvidence::default());
            };
            let c = inj.evidence()?.counters;
            return Ok(RuleEvidence {
                matched: c.matched,
                applied: c.injected,
                passed: c.passed,
                expired: c.expired,
                first_applied_ns: c.first_injected_ns,
                last_applied_ns: c.last_injected_ns,
                ..RuleEvidence::default()
            });
        }
    };
    let mut total = RuleEvidence::default();
    for slot in slots {
        let e = engine.evidence(slot)?;
        total.matched += e.matched;
        total.applied += e.applied;
        total.passed += e.passed;
        total.bytes += e.bytes;
        total.expired += e.expired;
        total.decisions += e.decisions;
        total.first_applied_ns = match (total.first_applied_ns, e.first_applied_ns) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        total.last_applied_ns = total.last_applied_ns.max(e.last_applied_ns);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(shape: Shape, node: usize, one_way: bool, n: usize) -> Vec<(usize, usize)> {
        cut_pairs(shape, node, one_way, n, &mut Rng::new(1, 1)).1
    }

    #[test]
    fn isolate_cuts_one_host_both_ways() {
        let p = cut(Shape::Isolate, 1, false, 3);
        assert_eq!(p.len(), 4);
        assert!(p.iter().all(|&(a, b)| a == 0 || b == 0));
        let one = cut(Shape::Isolate, 1, true, 3);
        assert_eq!(
            one,
            vec![(0, 1), (0, 2)],
            "one-way isolate: host 1 cannot send, can receive"
        );
    }

    #[test]
    fn shapes_leave_the_right_connectivity() {
        // Halves of 5: every cross pair cut both ways (2×3×2 = 12).
        assert_eq!(cut(Shape::Halves, 0, false, 5).len(), 12);
        // Bridge of 5: 2×2×2 = 8 cuts, the bridge host is in none.
        let (groups, pairs) = cut_pairs(Shape::Bridge, 0, false, 5, &mut Rng::new(1, 1));
        let bridge = groups[1][0];
        assert_eq!(pairs.len(), 8);
        assert!(pairs.iter().all(|&(a, b)| a != bridge && b != bridge));
        // Majorities ring of 5: each host keeps exactly 2 peers (itself + 2 = majority of 3).
        let ring = cut(Shape::MajoritiesRing, 0, false, 5);
        for h in 0..5 {
            let cut_from_h = ring.iter().filter(|&&(a, _)| a == h).count();
            assert_eq!(cut_from_h, 2, "host {h}");
        }
    }
}
