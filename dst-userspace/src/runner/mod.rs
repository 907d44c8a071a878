//! The scenario runner behind `dst run` and `dst demo`: hosts as namespaces, the system under
//! test started in them, workload clients recording history, the nemesis schedule installed as
//! kernel rules with kernel-enforced windows, then the checker, the verdict and the report.

pub mod check;
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
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use checkers::history::OpType;

use self::{
    log::HistoryLog,
    report::{Findings, NemesisEvidence},
    scenario::Scenario,
};
use crate::{
    net::{Direction, NetEngine, spec::monotonic_ns},
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
    let mut evidence = Vec::new();
    let mut landings = Vec::new();
    let mut invoked = 0u64;
    let mut checker = None;
    let mut check_report = None;
    let missing: Vec<&String> = scenario
        .run
        .requires
        .iter()
        .filter(|p| !on_path(p))
        .collect();
    let facts = (|| -> Facts {
        if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
            return Facts {
                not_run: Some(format!(
                    "required program(s) not on PATH: {} (install them, e.g. scripts/setup)",
                    names.join(", ")
                )),
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
        progress("running the workload and the nemesis schedule");
        let w = &scenario.workload;
        let end = t0 + w.duration;
        let workload_result = std::thread::scope(|s| {
            s.spawn(|| {
                nemesis::record_windows(&scheduled, &log, &|sc| nemesis::peek(&engine, sc).ok())
            });
            workload::run(
                w,
                &topo.hosts,
                scenario.sut.port,
                &log,
                scenario.run.seed,
                t0,
                end,
            )
        });
        if let Err(e) = workload_result {
            return Facts {
                harness_error: Some(e.to_string()),
                ..Facts::default()
            };
        }
        progress("settling, then final reads");
        std::thread::sleep(w.settle);
        workload::final_reads(w, &topo.hosts, scenario.sut.port, &log, 20);
        sut.stop();
        let ops = log.snapshot();
        invoked = ops
            .iter()
            .filter(|o| o.kind == OpType::Invoke && !o.process.is_nemesis())
            .count() as u64;
        for mut s in scheduled {
            let counters = match nemesis::evidence(&engine, &mut s) {
                Ok(c) => c,
                Err(e) => {
                    return Facts {
                        harness_error: Some(format!("reading fault counters: {e}")),
                        ..Facts::default()
                    };
                }
            };
            let ops_in_window = completed_in_window(&ops, s.start_ns, s.end_ns);
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
                    "landed": counters.applied >= s.min_applied.max(1),
                }),
            );
            landings.push(Landing {
                nemesis: s.id.clone(),
                required_applied: s.min_applied,
                applied_in_window: counters.applied,
                ops_in_window,
            });
            evidence.push(NemesisEvidence {
                landed: counters.applied >= s.min_applied.max(1),
                counters,
                scheduled: s,
            });
        }
        log.close();
        progress("checking the history");
        check::write_timeline(&scenario.checker, &ops, &out.join("report.html"));
        let (outcome, report) = check::run(&scenario.checker, ops);
        let completed = report.as_ref().map_or(0, |r| r.completed_ops);
        checker = Some(outcome.clone());
        check_report = report;
        Facts {
            checker: Some(outcome),
            completed_ops: completed,
            min_ops: scenario.run.min_ops,
            min_ops_per_window: scenario.run.min_ops_per_window,
            landings: landings.clone(),
            ..Facts::default()
        }
    })();
    log.close();
    let decision = decide(&facts);
    let findings = Findings {
        scenario,
        scenario_path: &opts.scenario_path,
        scenario_id: &opts.scenario_id,
        reproduce: opts.reproduce.clone(),
        decision: &decision,
        checker: checker.as_ref(),
        check_report: check_report.as_ref(),
        evidence: &evidence,
        landings: &landings,
        invoked_ops: invoked,
        elapsed_s: started.elapsed().as_secs_f64(),
    };
    report::write(out, &findings).map_err(|source| RunError::Output {
        path: out.clone(),
        source,
    })?;
    let mut notes = Vec::new();
    if decision.verdict == Verdict::Pass || decision.verdict == Verdict::Fail {
        notes.push(format!("{invoked} client operations"));
    }
    Ok(RunOutcome {
        decision,
        evidence,
        report: out.join("report.md"),
        notes,
    })
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
