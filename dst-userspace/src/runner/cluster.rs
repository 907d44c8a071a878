//! `dst run --inventory`: the nemesis schedule carried by a cluster's node daemons. Host N is
//! the inventory's node N; each partition window becomes a [`ClusterFault`] applied through the
//! [`Coordinator`] at the window's start (prepare on every daemon, then commit; a refusal or an
//! unreachable daemon rolls every node back) with the window as its kernel-enforced duration,
//! and healed at the window's end. Landing evidence is every daemon's counters of the window's
//! rules, read back right after its heal.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use checkers::history::{OpType, Process};
use serde::Serialize;
use serde_json::{Value, json};

use super::{
    log::HistoryLog,
    nemesis::{Carrier, PlannedCut, SAMPLE_EVERY, Scheduled, plan_partitions},
    scenario::{Scenario, Shape},
};
use crate::{
    cluster::{ApplyReport, ClusterError, ClusterFault, Coordinator, Inventory, Prepared},
    net::{RuleEvidence, spec::monotonic_ns},
};

/// Why a scenario cannot run against an inventory (nothing was started or applied).
#[derive(Debug, thiserror::Error)]
pub enum ClusterRunError {
    /// The scenario's host count differs from the inventory's node count.
    #[error(
        "topology.hosts = {hosts} but the inventory has {nodes} nodes: host N is the inventory's \
         node N, so set topology.hosts = {nodes} (or list {hosts} nodes)"
    )]
    HostCount {
        /// `topology.hosts`.
        hosts: usize,
        /// Nodes in the inventory.
        nodes: usize,
    },
    /// A scenario field the cluster runner cannot honour.
    #[error("{field}: {problem}")]
    Unsupported {
        /// The field (`nemesis[1].syscall`).
        field: String,
        /// What is not carried and what to do instead.
        problem: String,
    },
    /// The inventory's credentials could not be loaded or the coordinator could not start.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// Checks that `scenario` can run against `inv`: one node per host, and only nemeses the
/// coordinator carries (partitions of any shape, no port scope, no syscall faults).
pub fn check(scenario: &Scenario, inv: &Inventory) -> Result<(), ClusterRunError> {
    let unsupported = |field: String, problem: &str| ClusterRunError::Unsupported {
        field,
        problem: problem.to_string(),
    };
    if scenario.topology.hosts != inv.nodes.len() {
        return Err(ClusterRunError::HostCount {
            hosts: scenario.topology.hosts,
            nodes: inv.nodes.len(),
        });
    }
    if !scenario.topology.attach.is_empty() {
        return Err(unsupported(
            "topology.attach".into(),
            "the inventory already names the hosts: remove topology.attach or run without \
             --inventory",
        ));
    }
    for (i, n) in scenario.nemesis.iter().enumerate() {
        if n.syscall.is_some() {
            return Err(unsupported(
                format!("nemesis[{i}].syscall"),
                "syscall faults are not carried on cluster nodes by `dst run --inventory`: run \
                 the scenario locally (without --inventory), or apply the fault on the node's \
                 daemon with `dst fault apply`",
            ));
        }
        if n.port.is_some() {
            return Err(unsupported(
                format!("nemesis[{i}].port"),
                "port-scoped partitions are not carried on cluster nodes: drop `port` (the \
                 whole traffic between the nodes is cut) or run the scenario locally",
            ));
        }
    }
    Ok(())
}

/// The cluster fault that cuts exactly `w.pairs` between the inventory's nodes `names` (host
/// index i = `names[i]`): a symmetric isolate or partition where the shape is one, directed
/// cuts otherwise (one-way partitions, the majorities ring).
pub fn to_cluster_fault(
    shape: Shape,
    one_way: bool,
    w: &PlannedCut,
    names: &[String],
) -> ClusterFault {
    let named = |g: &[usize]| g.iter().map(|&h| names[h].clone()).collect::<Vec<_>>();
    match (shape, one_way) {
        (Shape::Isolate, false) => ClusterFault::Isolate {
            node: names[w.groups[0][0]].clone(),
        },
        (Shape::Halves, false) => ClusterFault::Partition {
            groups: w.groups.iter().map(|g| named(g)).collect(),
        },
        // The bridge host (the middle group) is in no group, so no rule touches it.
        (Shape::Bridge, false) => ClusterFault::Partition {
            groups: vec![named(&w.groups[0]), named(&w.groups[2])],
        },
        _ => ClusterFault::Cuts {
            cuts: w
                .pairs
                .iter()
                .map(|&(a, b)| (names[a].clone(), names[b].clone()))
                .collect(),
        },
    }
}

/// One window: what the scenario scheduled and the cluster fault that carries it.
pub struct Window {
    /// The scheduled entry (carrier filled in when applied).
    pub scheduled: Scheduled,
    /// The fault the coordinator applies.
    pub fault: ClusterFault,
}

/// Every partition window of `scenario` as cluster faults over `inv`, relative to `t0_ns`.
pub fn plan(scenario: &Scenario, inv: &Inventory, t0_ns: u64) -> Vec<Window> {
    let names: Vec<String> = inv.nodes.iter().map(|n| n.name.clone()).collect();
    plan_partitions(&scenario.nemesis, names.len(), scenario.run.seed, t0_ns)
        .into_iter()
        .map(|w| {
            let n = &scenario.nemesis[w.nemesis];
            let shape = n.shape.expect("plan_partitions keeps partitions only");
            Window {
                fault: to_cluster_fault(shape, n.one_way, &w, &names),
                scheduled: w.scheduled(
                    n,
                    t0_ns,
                    Carrier::Cluster(None),
                    "node daemons",
                    scenario.run.seed,
                ),
            }
        })
        .collect()
}

/// What the coordinator did for one window, and what the daemons counted: written into
/// evidence.json and the report's per-node table.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ClusterWindow {
    /// The fault as applied (`isolate n1`, `partition {n1}|{n2,n3}`).
    pub fault: String,
    /// Transaction id (prefix of every rule id on the nodes).
    pub txn: String,
    /// Whether every node committed.
    pub committed: bool,
    /// Prepare phase, ms.
    pub prepare_ms: f64,
    /// Commit phase, ms.
    pub commit_ms: f64,
    /// Rollback phase, ms (0 when committed).
    pub rollback_ms: f64,
    /// Heal (clearing the rules on every node), ms.
    pub heal_ms: f64,
    /// Node refusals at prepare or commit (node: error).
    pub refusals: Vec<String>,
    /// Nodes whose rules could not be healed (the kernel expiry still ends them).
    pub heal_errors: Vec<String>,
    /// Every node's rules of the transaction with their counters (the daemons' answer).
    pub nodes: Value,
}

#[derive(Default)]
struct Live {
    /// Prepared on every node ahead of the window, waiting for the commit at its start.
    pending: Option<Result<Prepared, ClusterError>>,
    cluster: ClusterWindow,
    start_ns: Option<u64>,
    end_ns: Option<u64>,
    healed: bool,
    /// The daemons' answer for the window's rules, read right after the heal (a daemon keeps
    /// only so many ended faults).
    evidence: Option<Value>,
}

/// The coordinator and the windows it carries during one run.
pub struct ClusterNemesis {
    coord: Coordinator,
    windows: Vec<Window>,
    live: Vec<Mutex<Live>>,
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// How long one daemon request may take before the node counts as unreachable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// How long before its start a window is prepared on the nodes (loading and attaching the
/// programs happens then), so that only the commit falls on the window's start. Well inside
/// the 30 s a daemon keeps a prepared set.
pub const PREPARE_AHEAD: Duration = Duration::from_secs(5);

impl ClusterNemesis {
    /// Loads every node's credentials (a missing token file fails here, before any request).
    pub fn new(inv: Inventory) -> Result<Self, ClusterRunError> {
        Ok(Self {
            coord: Coordinator::new(inv, REQUEST_TIMEOUT)?,
            windows: Vec::new(),
            live: Vec::new(),
        })
    }

    /// Plans the scenario's windows relative to `t0_ns` (the start of the workload).
    pub fn schedule(&mut self, scenario: &Scenario, t0_ns: u64) {
        self.windows = plan(scenario, self.coord.inventory(), t0_ns);
        self.live = self.windows.iter().map(|_| Mutex::default()).collect();
    }

    /// Prepares, before the workload starts, every window that starts within
    /// [`PREPARE_AHEAD`] of `t0_ns`, then moves every window by the time that took (so the
    /// schedule still counts from a workload start after it). Returns the new `t0_ns`.
    pub fn prepare_early(&mut self, t0_ns: u64) -> u64 {
        let Ok(rt) = runtime() else {
            return t0_ns;
        };
        let began = monotonic_ns();
        let ahead = PREPARE_AHEAD.as_nanos() as u64;
        for i in 0..self.windows.len() {
            if self.windows[i].scheduled.start_ns <= t0_ns + ahead {
                self.prepare(&rt, i);
            }
        }
        let shift = monotonic_ns().saturating_sub(began);
        for w in &mut self.windows {
            w.scheduled.start_ns += shift;
            w.scheduled.end_ns += shift;
        }
        t0_ns + shift
    }

    fn prepare(&self, rt: &tokio::runtime::Runtime, i: usize) {
        if lock(&self.live[i]).pending.is_some() {
            return;
        }
        let w = &self.windows[i];
        let s = &w.scheduled;
        let duration = Duration::from_nanos(s.end_ns - s.start_ns);
        let p = rt.block_on(self.coord.prepare(&w.fault, Some(duration)));
        lock(&self.live[i]).pending = Some(p);
    }

    /// Asks every daemon for its health; the unreachable or failing ones, as `node: why`.
    pub fn unreachable(&self) -> Vec<String> {
        let Ok(rt) = runtime() else {
            return vec!["the coordinator runtime could not start".into()];
        };
        rt.block_on(self.coord.status())
            .into_iter()
            .filter(|s| !s.ok)
            .map(|s| {
                let addr = self
                    .coord
                    .inventory()
                    .node(&s.node)
                    .map_or(String::new(), |n| format!(" at {}", n.address));
                format!(
                    "{}{addr}: {}",
                    s.node,
                    s.error.unwrap_or_else(|| format!("HTTP {}", s.status))
                )
            })
            .collect()
    }

    /// Applies each window at its start and heals it at its end, writing start/stop (or
    /// refusal) entries and landing samples into the history. Returns after the last window.
    pub fn drive(&self, log: &HistoryLog) {
        let Ok(rt) = runtime() else {
            for l in &self.live {
                lock(l).cluster.refusals = vec!["the coordinator runtime could not start".into()];
            }
            return;
        };
        // (time, step, window): step 0 = heal at the end, 1 = prepare ahead, 2 = commit at the
        // start (a heal and a start at the same instant: heal first).
        let ahead = PREPARE_AHEAD.as_nanos() as u64;
        let mut edges: Vec<(u64, u8, usize)> = self
            .windows
            .iter()
            .enumerate()
            .flat_map(|(i, w)| {
                let s = &w.scheduled;
                [
                    (s.start_ns.saturating_sub(ahead), 1, i),
                    (s.start_ns, 2, i),
                    (s.end_ns, 0, i),
                ]
            })
            .collect();
        edges.sort_by_key(|e| (e.0, e.1));
        let nemesis = || Process::Name("nemesis".into());
        let mut live: Vec<usize> = Vec::new();
        for (at, step, i) in edges {
            loop {
                let now = monotonic_ns();
                if now >= at {
                    break;
                }
                let wait = Duration::from_nanos(at - now);
                std::thread::sleep(wait.min(SAMPLE_EVERY));
                if wait > SAMPLE_EVERY {
                    for &l in &live {
                        self.sample(&rt, l, log);
                    }
                }
            }
            let w = &self.windows[i];
            let s = &w.scheduled;
            if step == 1 {
                self.prepare(&rt, i);
            } else if step == 2 {
                self.prepare(&rt, i);
                let pending = lock(&self.live[i]).pending.take();
                // The window as recorded runs from the commit's sending to the heal's answer, so
                // it holds every moment a node's rule was live and every drop it counted.
                let sent = monotonic_ns();
                let r = match pending {
                    Some(Ok(p)) => Ok(rt.block_on(self.coord.commit(p))),
                    Some(Err(e)) => Err(e.to_string()),
                    None => Err("the window was not prepared".to_string()),
                };
                let mut l = lock(&self.live[i]);
                l.cluster.fault = w.fault.describe();
                match r {
                    Ok(r) => record_apply(&mut l.cluster, &r),
                    Err(e) => l.cluster.refusals.push(e),
                }
                if l.cluster.committed {
                    l.start_ns = Some(sent);
                    live.push(i);
                    log.record(
                        nemesis(),
                        OpType::Info,
                        "start-partition",
                        None,
                        json!({ "id": s.id, "groups": s.groups, "cuts": s.cuts,
                                "fault": l.cluster.fault, "txn": l.cluster.txn }),
                    );
                } else {
                    log.record(
                        nemesis(),
                        OpType::Info,
                        "partition-refused",
                        None,
                        json!({ "id": s.id, "fault": l.cluster.fault,
                                "refusals": l.cluster.refusals, "rolled_back": true }),
                    );
                }
            } else if live.contains(&i) {
                self.sample(&rt, i, log);
                live.retain(|&l| l != i);
                self.heal(&rt, i);
                log.record(
                    nemesis(),
                    OpType::Info,
                    "stop-partition",
                    None,
                    json!({ "id": s.id, "groups": s.groups, "cuts": s.cuts }),
                );
            }
        }
    }

    fn heal(&self, rt: &tokio::runtime::Runtime, i: usize) {
        let txn = {
            let l = lock(&self.live[i]);
            if l.healed || !l.cluster.committed {
                return;
            }
            l.cluster.txn.clone()
        };
        let t = Instant::now();
        let steps = rt.block_on(self.coord.heal(Some(&txn)));
        let healed_ns = monotonic_ns();
        let heal_ms = t.elapsed().as_secs_f64() * 1000.0;
        let evidence = rt.block_on(self.coord.evidence(Some(&txn)));
        let mut l = lock(&self.live[i]);
        l.evidence = Some(evidence);
        l.end_ns = Some(healed_ns);
        l.healed = true;
        l.cluster.heal_ms = heal_ms;
        l.cluster.heal_errors = steps
            .into_iter()
            .filter(|s| !s.ok)
            .map(|s| format!("{}: {}", s.node, s.error.unwrap_or_default()))
            .collect();
    }

    fn sample(&self, rt: &tokio::runtime::Runtime, i: usize, log: &HistoryLog) {
        let txn = lock(&self.live[i]).cluster.txn.clone();
        let ev = rt.block_on(self.coord.evidence(Some(&txn)));
        let (total, _, _) = sum_evidence(&ev, 0);
        log.record(
            Process::Name("nemesis".into()),
            OpType::Info,
            "landing",
            None,
            json!({ "id": self.windows[i].scheduled.id, "applied": total.applied,
                    "matched": total.matched }),
        );
    }

    /// After the workload: heals whatever is still applied, reads every window's rules from
    /// every daemon and returns each window with its summed counters and per-node record, and
    /// the problems that make the run's nemesis unproven (refusals, nodes whose evidence could
    /// not be read).
    pub fn finish(mut self) -> (Vec<(Scheduled, RuleEvidence, ClusterWindow)>, Vec<String>) {
        let mut problems = Vec::new();
        let rt = match runtime() {
            Ok(rt) => rt,
            Err(e) => {
                problems.push(format!("the coordinator runtime could not start: {e}"));
                return (Vec::new(), problems);
            }
        };
        for i in 0..self.windows.len() {
            self.heal(&rt, i);
        }
        let mut out = Vec::new();
        let windows = std::mem::take(&mut self.windows);
        let live: Vec<Live> = std::mem::take(&mut self.live)
            .into_iter()
            .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
            .collect();
        for (w, mut l) in windows.into_iter().zip(live) {
            let mut s = w.scheduled;
            let mut total = RuleEvidence::default();
            if l.cluster.committed {
                let ev = match l.evidence.take() {
                    Some(ev) => ev,
                    None => rt.block_on(self.coord.evidence(Some(&l.cluster.txn))),
                };
                let start = l.start_ns.unwrap_or(s.start_ns);
                let (sum, backends, unreadable) = sum_evidence(&ev, start);
                total = sum;
                for u in unreadable {
                    problems.push(format!(
                        "nemesis {}: the evidence of {u}; its rules' counters are unknown",
                        s.id
                    ));
                }
                s.backend = backends;
                s.carrier = Carrier::Cluster(Some(l.cluster.txn.clone()));
                s.start_ns = start;
                s.end_ns = l.end_ns.unwrap_or(s.end_ns);
                l.cluster.nodes = ev["nodes"].clone();
            } else {
                problems.push(format!(
                    "nemesis {}: the cluster apply of `{}` did not commit and was rolled back on \
                     every node ({}); the fault never acted — fix the node or the inventory and \
                     run again",
                    s.id,
                    l.cluster.fault,
                    l.cluster.refusals.join("; ")
                ));
            }
            out.push((s, total, l.cluster));
        }
        (out, problems)
    }
}

impl Drop for ClusterNemesis {
    /// A runner that stops early (a panic, an error) still heals what it committed; the kernel
    /// expiry set at apply ends the rules even when this cannot reach a daemon.
    fn drop(&mut self) {
        if let Ok(rt) = runtime() {
            for i in 0..self.windows.len() {
                self.heal(&rt, i);
            }
        }
    }
}

fn lock(m: &Mutex<Live>) -> std::sync::MutexGuard<'_, Live> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn record_apply(c: &mut ClusterWindow, r: &ApplyReport) {
    c.txn = r.txn.clone();
    c.committed = r.committed;
    c.prepare_ms = r.prepare_ms;
    c.commit_ms = r.commit_ms;
    c.rollback_ms = r.rollback_ms;
    c.refusals = r
        .prepare
        .iter()
        .chain(&r.commit)
        .filter(|s| !s.ok)
        .map(|s| format!("{}: {}", s.node, s.error.clone().unwrap_or_default()))
        .collect();
    c.heal_errors = r
        .rollback
        .iter()
        .filter(|s| !s.ok)
        .map(|s| {
            format!(
                "rollback on {}: {}",
                s.node,
                s.error.clone().unwrap_or_default()
            )
        })
        .collect();
}

/// Sums the counters of every node's rules in a coordinator evidence answer. First/last applied
/// times are moved from each node's clock onto the runner's: `start_ns` is when the runner saw
/// the commit, and each rule's times count from its node's `applied_at`. Returns the sum, the
/// backends with their nodes (`tcx on n1,n2,n3`), and the nodes whose evidence could not be read.
pub fn sum_evidence(ev: &Value, start_ns: u64) -> (RuleEvidence, String, Vec<String>) {
    let mut total = RuleEvidence::default();
    let mut backends: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut unreadable = Vec::new();
    for n in ev["nodes"].as_array().into_iter().flatten() {
        let node = n["node"].as_str().unwrap_or("?").to_string();
        if let Some(e) = n.get("error") {
            unreadable.push(format!(
                "{node} could not be read: {}",
                e.as_str().unwrap_or("")
            ));
            continue;
        }
        for f in n["faults"].as_array().into_iter().flatten() {
            let e = &f["evidence"];
            let u = |k: &str| e[k].as_u64().unwrap_or(0);
            total.matched += u("matched");
            total.applied += u("applied");
            total.passed += u("passed");
            total.bytes += u("bytes");
            total.expired += u("expired");
            total.decisions += u("decisions");
            let applied_at = f["applied_at"].as_u64().unwrap_or(0);
            let moved = |k: &str| {
                e[k].as_u64()
                    .map(|t| start_ns + t.saturating_sub(applied_at))
            };
            total.first_applied_ns = match (total.first_applied_ns, moved("first_applied_ns")) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            total.last_applied_ns = total.last_applied_ns.max(moved("last_applied_ns"));
            let nodes = backends
                .entry(f["backend"].as_str().unwrap_or("?").to_string())
                .or_default();
            if !nodes.contains(&node) {
                nodes.push(node.clone());
            }
        }
    }
    let backends = backends
        .into_iter()
        .map(|(b, n)| format!("{b} on {}", n.join(",")))
        .collect::<Vec<_>>()
        .join("; ");
    (total, backends, unreadable)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::cluster::plan::directed_pairs;

    const DEMO: &str = include_str!("../../../examples/scenarios/replicated-kv-partition.toml");

    fn inv(n: usize) -> Inventory {
        let mut t = String::new();
        for i in 1..=n {
            t.push_str(&format!(
                "[[node]]\nname='db{i}'\naddress='10.9.0.{i}:7070'\ntoken_file='t'\n"
            ));
        }
        Inventory::parse(&t, Path::new("/"), Path::new("/i")).unwrap()
    }

    #[test]
    fn every_shape_cuts_on_the_cluster_what_it_cuts_locally() {
        for n in [3, 4, 5] {
            let inv = inv(n);
            let names: Vec<String> = inv.nodes.iter().map(|x| x.name.clone()).collect();
            for shape in [
                Shape::Isolate,
                Shape::Halves,
                Shape::Bridge,
                Shape::MajoritiesRing,
            ] {
                for one_way in [false, true] {
                    let mut s = Scenario::parse(DEMO).unwrap();
                    s.topology.hosts = n;
                    s.nemesis[0].shape = Some(shape);
                    s.nemesis[0].node = 0;
                    s.nemesis[0].one_way = one_way;
                    s.nemesis[0].repeat = 2;
                    s.nemesis[0].every = Some(Duration::from_secs(6));
                    s.nemesis[0].duration = Duration::from_secs(3);
                    s.workload.duration = Duration::from_secs(20);
                    s.validate().unwrap();
                    let windows = plan(&s, &inv, 1_000);
                    assert_eq!(windows.len(), 2);
                    for w in &windows {
                        let want: std::collections::BTreeSet<(String, String)> = w
                            .scheduled
                            .cuts
                            .iter()
                            .map(|&(a, b)| (names[a - 1].clone(), names[b - 1].clone()))
                            .collect();
                        if want.is_empty() {
                            continue;
                        }
                        let got: std::collections::BTreeSet<_> = directed_pairs(&inv, &w.fault)
                            .unwrap()
                            .into_iter()
                            .collect();
                        assert_eq!(
                            got, want,
                            "{shape:?} one_way={one_way} n={n}: {:?}",
                            w.fault
                        );
                    }
                    assert_eq!(windows[1].scheduled.id, "isolate-primary#2");
                    assert_eq!(
                        windows[1].scheduled.start_ns - windows[0].scheduled.start_ns,
                        6_000_000_000
                    );
                }
            }
        }
    }

    #[test]
    fn symmetric_shapes_become_isolate_and_partition() {
        let inv = inv(3);
        let s = Scenario::parse(DEMO).unwrap();
        let w = plan(&s, &inv, 0);
        assert_eq!(w[0].fault, ClusterFault::Isolate { node: "db1".into() });
        assert_eq!(w[0].scheduled.start_offset_ms, 3000);
        assert_eq!(
            w[0].scheduled.end_ns - w[0].scheduled.start_ns,
            5_000_000_000
        );
        let mut ring = s.clone();
        ring.nemesis[0].shape = Some(Shape::MajoritiesRing);
        assert!(matches!(
            plan(&ring, &inv, 0)[0].fault,
            ClusterFault::Cuts { .. }
        ));
    }

    #[test]
    fn scenarios_the_cluster_cannot_carry_are_refused_naming_the_field() {
        let s = Scenario::parse(DEMO).unwrap();
        check(&s, &inv(3)).unwrap();
        let e = check(&s, &inv(4)).unwrap_err().to_string();
        assert!(
            e.contains("topology.hosts = 3") && e.contains("4 nodes"),
            "{e}"
        );
        let mut port = s.clone();
        port.nemesis[0].port = Some(7000);
        match check(&port, &inv(3)) {
            Err(ClusterRunError::Unsupported { field, .. }) => assert_eq!(field, "nemesis[0].port"),
            other => panic!("{other:?}"),
        }
        let sys = Scenario::parse(&DEMO.replace(
            "shape = \"isolate\"",
            "syscall = \"connect\"\nerrno = \"ECONNREFUSED\"",
        ))
        .unwrap();
        match check(&sys, &inv(3)) {
            Err(ClusterRunError::Unsupported { field, .. }) => {
                assert_eq!(field, "nemesis[0].syscall")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn evidence_sums_nodes_and_moves_times_onto_the_runner_clock() {
        let ev = json!({"txn": "t", "nodes": [
            {"node": "db1", "reachable": true, "faults": [
                {"id": "t.db1-db2", "backend": "tcx", "applied_at": 1_000,
                 "evidence": {"matched": 7, "applied": 5, "passed": 2,
                              "first_applied_ns": 1_500, "last_applied_ns": 9_000}},
                {"id": "t.db1-db3", "backend": "tcx", "applied_at": 1_000,
                 "evidence": {"matched": 3, "applied": 3, "passed": 0,
                              "first_applied_ns": 1_200, "last_applied_ns": 2_000}}]},
            {"node": "db2", "reachable": true, "faults": [
                {"id": "t.db2-db1", "backend": "clsact", "applied_at": 50,
                 "evidence": {"matched": 4, "applied": 4, "passed": 0,
                              "first_applied_ns": 100, "last_applied_ns": 20_050}}]},
            {"node": "db3", "reachable": false, "error": "connection refused"}]});
        let (sum, backends, unreadable) = sum_evidence(&ev, 1_000_000);
        assert_eq!((sum.matched, sum.applied, sum.passed), (14, 12, 2));
        assert_eq!(sum.first_applied_ns, Some(1_000_050));
        assert_eq!(sum.last_applied_ns, Some(1_020_000));
        assert_eq!(backends, "clsact on db2; tcx on db1");
        assert_eq!(unreadable.len(), 1);
        assert!(unreadable[0].starts_with("db3"), "{unreadable:?}");
    }
}
