//! The scenario runner behind `dst run` and `dst demo`: hosts as namespaces, the system under
//! test started in them, workload clients recording history, the nemesis schedule installed as
//! kernel rules with kernel-enforced windows, then the checker, the verdict and the report; or,
//! with an inventory, hosts as cluster nodes whose daemons carry the nemesis (`cluster`).

pub mod check;
pub mod cluster;
pub mod endpoint;
pub mod etcd;
pub mod exec;
pub mod log;
pub mod nemesis;
pub mod redis;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod sut;
pub mod workload;

use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use checkers::history::OpType;

use self::{
    cluster::ClusterWindow,
    endpoint::Endpoint,
    log::HistoryLog,
    report::{Findings, NemesisEvidence},
    scenario::Scenario,
};
use crate::{
    cluster::Inventory,
    net::{Direction, NetEngine, RuleEvidence, spec::monotonic_ns},
    testing::Topology,
    verdict::{Decision, Facts, Landing, Verdict, decide},
};

/// Errors that stop the runner from producing any report (the out directory is unusable).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The output directory could not be written.
    #[error("writing the run's output to {path}: {source}")]
    Output {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Options of one run.
#[derive(Clone)]
pub struct RunOptions {
    /// Output directory (created).
    pub out: PathBuf,
    /// Name prefix of the run's namespaces and cgroup.
    pub prefix: String,
    /// Command that reproduces this run (written into the report).
    pub reproduce: String,
    /// Path of the scenario (for the report).
    pub scenario_path: String,
    /// Scenario id written to verdict.json (the file stem; `dst plan coverage` joins on it).
    pub scenario_id: String,
    /// Run against these nodes (`dst run --inventory`): hosts are the inventory's nodes, the
    /// system under test already runs there, the nemesis goes through their daemons. `None`:
    /// hosts are local network namespaces.
    pub inventory: Option<Inventory>,
}

/// What a run produced.
pub struct RunOutcome {
    /// Verdict and reasons.
    pub decision: Decision,
    /// Per-nemesis evidence.
    pub evidence: Vec<NemesisEvidence>,
    /// Where the report went.
    pub report: PathBuf,
    /// Progress/diagnostic lines for the console.
    pub notes: Vec<String>,
}

fn environment(why: String) -> Facts {
    Facts {
        environment_error: Some(why),
        ..Facts::default()
    }
}

/// What a run gathered for its report besides the facts.
#[derive(Default)]
struct Collected {
    evidence: Vec<NemesisEvidence>,
    landings: Vec<Landing>,
    invoked: u64,
    checker: Option<crate::verdict::CheckerOutcome>,
    check_report: Option<check::CheckReport>,
    hosts_note: Option<String>,
}

/// Runs `scenario` once. Environment and harness failures become verdicts, not errors; only an
/// unwritable output directory is an error.
pub fn run(
    scenario: &Scenario,
    opts: &RunOptions,
    progress: &dyn Fn(&str),
) -> Result<RunOutcome, RunError> {
    let started = Instant::now();
    let out = &opts.out;
    std::fs::create_dir_all(out).map_err(|source| RunError::Output {
        path: out.clone(),
        source,
    })?;
    let log = HistoryLog::durable(&out.join("history.jsonl")).unwrap_or_else(|e| {
        progress(&format!(
            "history recorder unavailable ({e}); keeping the history in memory"
        ));
        HistoryLog::in_memory()
    });
    let mut c = Collected::default();
    let missing: Vec<&String> = scenario
        .run
        .requires
        .iter()
        .filter(|p| !on_path(p))
        .collect();
    let facts = if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        Facts {
            not_run: Some(format!(
                "required program(s) not on PATH: {} (install them, e.g. scripts/setup)",
                names.join(", ")
            )),
            ..Facts::default()
        }
    } else {
        match &opts.inventory {
            None => run_local(scenario, opts, &log, progress, &mut c),
            Some(inv) => run_cluster(scenario, inv, out, &log, progress, &mut c),
        }
    };
    log.close();
    let decision = decide(&facts);
    let findings = Findings {
        scenario,
        scenario_path: &opts.scenario_path,
        scenario_id: &opts.scenario_id,
        reproduce: opts.reproduce.clone(),
        decision: &decision,
        checker: c.checker.as_ref(),
        check_report: c.check_report.as_ref(),
        evidence: &c.evidence,
        landings: &c.landings,
        invoked_ops: c.invoked,
        elapsed_s: started.elapsed().as_secs_f64(),
        hosts_note: c.hosts_note.as_deref(),
    };
    report::write(out, &findings).map_err(|source| RunError::Output {
        path: out.clone(),
        source,
    })?;
    let mut notes = Vec::new();
    if decision.verdict == Verdict::Pass || decision.verdict == Verdict::Fail {
        notes.push(format!("{} client operations", c.invoked));
    }
    Ok(RunOutcome {
        decision,
        evidence: c.evidence,
        report: out.join("report.md"),
        notes,
    })
}

/// Hosts as namespaces (or attached ones), the system under test started in them, the nemesis
/// installed as local kernel rules.
fn run_local(
    scenario: &Scenario,
    opts: &RunOptions,
    log: &HistoryLog,
    progress: &dyn Fn(&str),
    c: &mut Collected,
) -> Facts {
    let out = &opts.out;
    if let Err(e) = scenario.validate_local() {
        return Facts {
            not_run: Some(e.to_string()),
            ..Facts::default()
        };
    }
    let attach = &scenario.topology.attach;
    let topo = if attach.is_empty() {
        progress("building hosts");
        match Topology::new(
            &opts.prefix,
            scenario.topology.hosts,
            scenario.topology.subnet,
        ) {
            Ok(t) => t,
            Err(e) => {
                return environment(format!("could not build the host namespaces: {e}"));
            }
        }
    } else {
        progress("attaching to the existing hosts");
        let mut hosts = Vec::new();
        for a in attach {
            match crate::netns::NetNs::open(&a.netns) {
                Ok(ns) => hosts.push(crate::testing::Host { ns, addr: a.addr }),
                Err(e) => {
                    return environment(format!("topology.attach: netns {}: {e}", a.netns));
                }
            }
        }
        Topology {
            hosts,
            switch: None,
        }
    };
    let devs: Vec<String> = if attach.is_empty() {
        vec!["eth0".to_string(); topo.hosts.len()]
    } else {
        attach.iter().map(|a| a.dev.clone()).collect()
    };
    let mut engine = match NetEngine::load() {
        Ok(e) => e,
        Err(e) => return environment(e.to_string()),
    };
    let mut backend = String::new();
    for (h, dev) in topo.hosts.iter().zip(&devs) {
        match h.ns.run(|| engine.attach_tc(dev, Direction::Egress)) {
            Ok(Ok(m)) => backend = format!("{m:?}").to_lowercase(),
            Ok(Err(e)) => return environment(e.to_string()),
            Err(e) => return environment(e.to_string()),
        }
    }
    progress("starting the system under test");
    let cgroup = format!("{}sut", opts.prefix.trim_end_matches('-'));
    let started = if scenario.sut.start.trim().is_empty() {
        sut::RunningSut::attached(&scenario.sut, &topo.hosts, attach)
    } else {
        sut::RunningSut::start(&scenario.sut, &topo.hosts, out, &cgroup)
    };
    let mut sut = match started {
        Ok(s) => s,
        Err(e) => return environment(e.to_string()),
    };
    let t0 = Instant::now() + Duration::from_millis(200);
    let t0_ns = monotonic_ns() + 200_000_000;
    let mut scheduled = match nemesis::install(
        &mut engine,
        &scenario.nemesis,
        &topo.hosts,
        scenario.run.seed,
        t0_ns,
        &backend,
    ) {
        Ok(s) => s,
        Err(e) => return environment(format!("installing the nemesis rules: {e}")),
    };
    if scenario.nemesis.iter().any(|n| n.syscall.is_some()) {
        let facts = crate::sys::select::SysFacts::from_probe(&crate::probe::run());
        match nemesis::install_syscalls(
            &scenario.nemesis,
            &sut,
            topo.hosts.len(),
            scenario.run.seed,
            t0_ns,
            &facts,
        ) {
            Ok(s) => scheduled.extend(s),
            Err(e) => return environment(e.to_string()),
        }
    }
    let hosts = endpoint::of_hosts(&topo.hosts);
    let done = workload_phase(scenario, &hosts, log, t0, progress, || {
        nemesis::record_windows(&scheduled, log, &|sc| nemesis::peek(&engine, sc).ok())
    });
    if let Err(e) = done {
        return Facts {
            harness_error: Some(e.to_string()),
            ..Facts::default()
        };
    }
    sut.stop();
    let mut results = Vec::new();
    for mut s in scheduled {
        match nemesis::evidence(&engine, &mut s) {
            Ok(counters) => results.push((s, counters, None)),
            Err(e) => {
                return Facts {
                    harness_error: Some(format!("reading fault counters: {e}")),
                    ..Facts::default()
                };
            }
        }
    }
    conclude(scenario, &opts.out, log, results, c)
}

/// Hosts are the inventory's nodes, where the system under test already runs; clients connect
/// from here; each nemesis window is applied and healed through the node daemons.
fn run_cluster(
    scenario: &Scenario,
    inv: &Inventory,
    out: &Path,
    log: &HistoryLog,
    progress: &dyn Fn(&str),
    c: &mut Collected,
) -> Facts {
    if let Err(e) = cluster::check(scenario, inv) {
        return Facts {
            not_run: Some(e.to_string()),
            ..Facts::default()
        };
    }
    let addrs: Vec<Ipv4Addr> = inv
        .nodes
        .iter()
        .map(|n| n.data_ip().expect("the inventory checks every node's ip"))
        .collect();
    c.hosts_note = Some(format!(
        "Hosts are the inventory's nodes (host N = node N): {}. The system under test was \
         already running on them{}; clients connected from the runner to each node's address \
         and port {}, and the nemesis was applied by the node daemons through the coordinator.",
        inv.nodes
            .iter()
            .zip(&addrs)
            .enumerate()
            .map(|(i, (n, a))| format!("n{} = {} ({a}, daemon {})", i + 1, n.name, n.address))
            .collect::<Vec<_>>()
            .join(", "),
        if scenario.sut.start.trim().is_empty() {
            String::new()
        } else {
            " (sut.start was not run)".to_string()
        },
        scenario.sut.port
    ));
    let mut nem = match cluster::ClusterNemesis::new(inv.clone()) {
        Ok(n) => n,
        Err(e) => return environment(e.to_string()),
    };
    progress("asking the node daemons");
    let down = nem.unreachable();
    if !down.is_empty() {
        return environment(format!(
            "node daemon(s) not answering, nothing was applied: {} (start `dst daemon --listen \
             ADDR --token-file F` on each node, or fix the inventory)",
            down.join("; ")
        ));
    }
    progress("checking the system under test on the nodes");
    let hosts: Vec<Endpoint<'_>> = addrs.iter().map(|&a| Endpoint::remote(a)).collect();
    let names: Vec<String> = inv
        .nodes
        .iter()
        .map(|n| format!("node {} (its own logs)", n.name))
        .collect();
    if let Err(e) = sut::wait_healthy(&scenario.sut, &hosts, &names) {
        return environment(e.to_string());
    }
    let t0_ns = monotonic_ns() + 200_000_000;
    nem.schedule(scenario, t0_ns);
    progress("preparing the first windows on the nodes");
    let t0_ns = nem.prepare_early(t0_ns);
    let t0 = Instant::now() + Duration::from_nanos(t0_ns.saturating_sub(monotonic_ns()));
    let done = workload_phase(scenario, &hosts, log, t0, progress, || nem.drive(log));
    if let Err(e) = done {
        return Facts {
            harness_error: Some(e.to_string()),
            ..Facts::default()
        };
    }
    let (results, problems) = nem.finish();
    let results = results
        .into_iter()
        .map(|(s, counters, cw)| (s, counters, Some(cw)))
        .collect();
    let mut facts = conclude(scenario, out, log, results, c);
    if !problems.is_empty() {
        // The nemesis is not proven: the verdict must not read as if it had acted.
        facts.environment_error = Some(problems.join("; "));
    }
    facts
}

/// The workload clients against `hosts` from `t0` for the workload's duration while `nemesis`
/// drives the schedule on another thread; then the settle time and the final reads.
fn workload_phase(
    scenario: &Scenario,
    hosts: &[Endpoint<'_>],
    log: &HistoryLog,
    t0: Instant,
    progress: &dyn Fn(&str),
    nemesis: impl FnOnce() + Send,
) -> Result<(), workload::WorkloadError> {
    progress("running the workload and the nemesis schedule");
    let w = &scenario.workload;
    let end = t0 + w.duration;
    std::thread::scope(|s| {
        s.spawn(nemesis);
        workload::run(w, hosts, scenario.sut.port, log, scenario.run.seed, t0, end)
    })?;
    progress("settling, then final reads");
    std::thread::sleep(w.settle);
    workload::final_reads(w, hosts, scenario.sut.port, log, 20);
    Ok(())
}

/// From each nemesis's counters to the facts: evidence entries in the history, landing facts,
/// the checker over the history (timeline in report.html).
fn conclude(
    scenario: &Scenario,
    out: &Path,
    log: &HistoryLog,
    results: Vec<(nemesis::Scheduled, RuleEvidence, Option<ClusterWindow>)>,
    c: &mut Collected,
) -> Facts {
    let ops = log.snapshot();
    c.invoked = ops
        .iter()
        .filter(|o| o.kind == OpType::Invoke && !o.process.is_nemesis())
        .count() as u64;
    for (s, counters, cluster) in results {
        let ops_in_window = completed_in_window(&ops, s.start_ns, s.end_ns);
        let landed = counters.applied >= s.min_applied.max(1);
        // The landing counters go into the history too, next to the window's entries.
        log.record(
            checkers::history::Process::Name("nemesis".into()),
            OpType::Info,
            "evidence",
            None,
            serde_json::json!({
                "id": s.id,
                "matched": counters.matched,
                "applied": counters.applied,
                "first_applied_ns": counters.first_applied_ns,
                "last_applied_ns": counters.last_applied_ns,
                "window": [s.start_ns, s.end_ns],
                "landed": landed,
            }),
        );
        c.landings.push(Landing {
            nemesis: s.id.clone(),
            required_applied: s.min_applied,
            applied_in_window: counters.applied,
            ops_in_window,
        });
        c.evidence.push(NemesisEvidence {
            landed,
            counters,
            scheduled: s,
            cluster,
        });
    }
    log.close();
    check::write_timeline(&scenario.checker, &ops, &out.join("report.html"));
    let (outcome, report) = check::run(&scenario.checker, ops);
    let completed = report.as_ref().map_or(0, |r| r.completed_ops);
    c.checker = Some(outcome.clone());
    c.check_report = report;
    Facts {
        checker: Some(outcome),
        completed_ops: completed,
        min_ops: scenario.run.min_ops,
        min_ops_per_window: scenario.run.min_ops_per_window,
        landings: c.landings.clone(),
        ..Facts::default()
    }
}

/// Runs once; when `rerun` is set and the verdict is FAIL, runs again with the same seed (output
/// in `rerun/`) and turns a failure that does not come back into FLAKY (report updated).
pub fn run_with_rerun(
    scenario: &Scenario,
    opts: &RunOptions,
    rerun: bool,
    progress: &dyn Fn(&str),
) -> Result<RunOutcome, RunError> {
    let mut outcome = run(scenario, opts, progress)?;
    if rerun && outcome.decision.verdict == Verdict::Fail {
        progress("re-running with the same seed");
        let again_opts = RunOptions {
            out: opts.out.join("rerun"),
            ..opts.clone()
        };
        let again = run(scenario, &again_opts, progress)?;
        if again.decision.verdict != Verdict::Fail {
            outcome.decision.reasons.push(format!(
                "a re-run with the same seed gave {} (see {})",
                again.decision.verdict.as_str(),
                again_opts.out.display()
            ));
            outcome.decision.verdict = Verdict::Flaky;
            report::update_verdict(&opts.out, &outcome.decision).map_err(|source| {
                RunError::Output {
                    path: opts.out.clone(),
                    source,
                }
            })?;
        }
    }
    Ok(outcome)
}

/// Whether `program` is an executable on PATH (or an existing path).
fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).exists();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// Completed client operations (ok/fail) whose [invoke, complete] overlaps [start, end].
fn completed_in_window(ops: &[checkers::history::Op], start: u64, end: u64) -> u64 {
    use std::collections::HashMap;
    let mut open: HashMap<String, u64> = HashMap::new();
    let mut n = 0;
    for o in ops.iter().filter(|o| !o.process.is_nemesis()) {
        let t = o.time.unwrap_or(0) as u64;
        let p = o.process.to_string();
        match o.kind {
            OpType::Invoke => {
                open.insert(p, t);
            }
            OpType::Ok | OpType::Fail => {
                if let Some(inv) = open.remove(&p)
                    && inv <= end
                    && t >= start
                {
                    n += 1;
                }
            }
            OpType::Info => {
                open.remove(&p);
            }
        }
    }
    n
}

/// Path helper for callers: the default output directory of a scenario run.
pub fn default_out(scenario: &Path) -> PathBuf {
    let stem = scenario
        .file_stem()
        .map_or("run".into(), |s| s.to_string_lossy().into_owned());
    PathBuf::from("out").join(stem)
}
