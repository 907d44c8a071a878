//! `dst run SCENARIO --out DIR`: run a claim-driven scenario end to end and exit with the
//! verdict's code; `--rerun-on-fail` re-runs a FAIL with the same seed and reports FLAKY if the
//! failure does not come back; `--inventory` runs it against a cluster's nodes and daemons.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use dst::{
    cluster::Inventory,
    runner::{self, RunOptions, scenario::Scenario},
    verdict::Verdict,
};

/// Arguments of `dst run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario file (TOML).
    pub scenario: PathBuf,
    /// Directory for the report, history and evidence (default out/<scenario name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Re-run a FAIL once with the same seed; a failure that does not come back is FLAKY.
    #[arg(long)]
    pub rerun_on_fail: bool,
    /// Run against a cluster instead of local namespaces: host N is the inventory's node N
    /// (`dst cluster` inventory TOML), the system under test already runs there and is reached
    /// at the node's ip and `sut.port`, and each nemesis window is applied through the node
    /// daemons (two-phase, healed at the window's end).
    #[arg(long, value_name = "INV.toml")]
    pub inventory: Option<PathBuf>,
}

pub fn run(args: Args, json: bool) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.scenario)
        .with_context(|| format!("reading scenario {}", args.scenario.display()))?;
    let mut scenario = match Scenario::parse(&text) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dst run: {}: {e}", args.scenario.display());
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    if let Some(seed) = args.seed {
        scenario.run.seed = seed;
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| runner::default_out(&args.scenario));
    let id = args
        .scenario
        .file_stem()
        .map_or("scenario".into(), |s| s.to_string_lossy().into_owned());
    let inventory = match &args.inventory {
        None => {
            if let Err(e) = scenario.validate_local() {
                eprintln!("dst run: {}: {e}", args.scenario.display());
                return Ok(ExitCode::from(super::EXIT_USAGE));
            }
            None
        }
        Some(path) => {
            let checked = Inventory::load(path)
                .map_err(|e| e.to_string())
                .and_then(|inv| {
                    runner::cluster::check(&scenario, &inv)
                        .map(|()| inv)
                        .map_err(|e| e.to_string())
                });
            match checked {
                Ok(inv) => Some((path.display().to_string(), inv)),
                Err(e) => {
                    eprintln!("dst run: {}: {e}", args.scenario.display());
                    return Ok(ExitCode::from(super::EXIT_USAGE));
                }
            }
        }
    };
    let verdict = run_scenario(
        &scenario,
        &id,
        &args.scenario.display().to_string(),
        &out,
        args.rerun_on_fail,
        json,
        inventory,
    )?;
    Ok(ExitCode::from(verdict.exit_code()))
}

/// Runs a parsed scenario (used by `dst run` and `dst demo`) and prints the outcome.
pub fn run_scenario(
    scenario: &Scenario,
    id: &str,
    path: &str,
    out: &std::path::Path,
    rerun: bool,
    json: bool,
    inventory: Option<(String, Inventory)>,
) -> anyhow::Result<Verdict> {
    let reproduce = match path.strip_prefix("<dst demo") {
        // The demo's scenarios are embedded: the demo itself reproduces them.
        Some(_) => format!("dst demo --seed {}", scenario.run.seed),
        None => format!(
            "dst run {path}{} --seed {} --out {}",
            inventory
                .as_ref()
                .map_or(String::new(), |(p, _)| format!(" --inventory {p}")),
            scenario.run.seed,
            out.display()
        ),
    };
    let opts = RunOptions {
        out: out.to_path_buf(),
        prefix: format!("dstrun{}-", std::process::id() % 100_000),
        reproduce,
        scenario_path: path.to_string(),
        scenario_id: id.to_string(),
        inventory: inventory.map(|(_, inv)| inv),
    };
    let bar = (!json).then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.enable_steady_tick(std::time::Duration::from_millis(120));
        b
    });
    let progress = |msg: &str| {
        if let Some(b) = &bar {
            b.set_message(format!("{}: {msg}", scenario.claim.id));
        }
    };
    let outcome = runner::run_with_rerun(scenario, &opts, rerun, &progress)?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if json {
        let evidence: Vec<_> = outcome.evidence.iter().map(|e| serde_json::json!({"nemesis": e.scheduled.id, "applied": e.counters.applied, "matched": e.counters.matched, "landed": e.landed})).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "claim": scenario.claim.id,
                "verdict": outcome.decision.verdict,
                "reasons": outcome.decision.reasons,
                "evidence": evidence,
                "report": outcome.report,
            }))?
        );
    } else {
        println!(
            "{} — {}",
            scenario.claim.id,
            outcome.decision.verdict.as_str()
        );
        for r in &outcome.decision.reasons {
            println!("  {r}");
        }
        println!(
            "  {:<18} {:<18} {:>8} {:>8}  landed",
            "nemesis", "cuts", "matched", "applied"
        );
        for e in &outcome.evidence {
            let cuts = e.scheduled.what(">", ",");
            println!(
                "  {:<18} {:<18} {:>8} {:>8}  {}",
                e.scheduled.id,
                cuts,
                e.counters.matched,
                e.counters.applied,
                if e.landed { "yes" } else { "NO" }
            );
        }
        println!("  report: {}", outcome.report.display());
    }
    Ok(outcome.decision.verdict)
}
