//! `dst demo`: the main job the README runs. Starts the example 3-node replicated service in
//! network namespaces, cuts its primary off with a kernel-enforced partition, records history,
//! checks it and writes a report — twice: the service in safe mode (expected PASS) and with
//! `--unsafe` (expected FAIL with a witness naming a lost acknowledged write).

use std::{path::PathBuf, process::ExitCode};

use dst::{runner::scenario::Scenario, verdict::Verdict};

/// The demo scenario, embedded so the demo needs no files besides the binaries.
const SCENARIO: &str = include_str!("../../../examples/scenarios/replicated-kv-partition.toml");

/// Arguments of `dst demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the two runs' reports go (`safe/` and `unsafe/` inside).
    #[arg(long, default_value = "dst-demo")]
    pub out: PathBuf,
    /// Seed of both runs.
    #[arg(long)]
    pub seed: Option<u64>,
}

pub fn run(args: Args, json: bool) -> anyhow::Result<ExitCode> {
    let probe = dst::probe::run();
    let drop = probe
        .backends
        .iter()
        .find(|b| b.fault == dst::probe::FaultKind::Drop);
    if drop.and_then(|b| b.backend).is_none() {
        eprintln!(
            "dst demo: this kernel has no backend for partitions: {}",
            drop.map_or("", |b| b.why.as_str())
        );
        return Ok(ExitCode::from(Verdict::EnvironmentError.exit_code()));
    }
    let mut base = Scenario::parse(SCENARIO)?;
    if let Some(seed) = args.seed {
        base.run.seed = seed;
    }
    if !json {
        println!(
            "dst demo: {} — 3 hosts, primary cut off for {:?} of a {:?} workload; partition backend: {}\n",
            base.claim.id,
            base.nemesis[0].duration,
            base.workload.duration,
            drop.and_then(|b| b.backend)
                .map_or("none".into(), |b| b.to_string())
        );
    }
    let mut unsafe_run = base.clone();
    unsafe_run.sut.start.push_str(" --unsafe");
    let mut results = Vec::new();
    for (mode, scenario, expect) in [
        ("safe", &base, Verdict::Pass),
        ("unsafe", &unsafe_run, Verdict::Fail),
    ] {
        if !json {
            println!("== service in {mode} mode (expected {})", expect.as_str());
        }
        let out = args.out.join(mode);
        let v = super::run::run_scenario(
            scenario,
            &format!("demo-{mode}"),
            &format!("<dst demo {mode}>"),
            &out,
            false,
            json,
            None,
        )?;
        if !json {
            println!();
        }
        results.push((mode, v, expect));
    }
    let as_expected = results.iter().all(|(_, v, e)| v == e);
    if !json {
        for (mode, v, e) in &results {
            println!(
                "{mode:<7} {:<22} expected {:<6} {}",
                v.as_str(),
                e.as_str(),
                if v == e { "ok" } else { "UNEXPECTED" }
            );
        }
        println!(
            "reports: {}/safe/report.md, {}/unsafe/report.md",
            args.out.display(),
            args.out.display()
        );
    }
    Ok(if as_expected {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
