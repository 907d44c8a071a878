//! `dst plan`: claim-driven test plans — skeleton, lint, coverage matrix, technique catalog,
//! compile to runnable scenarios, and coverage filled from real runs.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;

/// Subcommands of `dst plan`.
#[derive(Debug, clap::Subcommand)]
pub enum Plan {
    /// Print a plan skeleton for SYSTEM (Markdown) to fill in.
    Init {
        /// Name of the system under test.
        system: String,
    },
    /// Check a plan: uncovered claims, orphan hypotheses, scenarios without checker or landing
    /// requirement or named after setup, unknown techniques, an adequacy argument that skips a
    /// critical claim. Exit 1 when anything is found.
    Lint {
        /// The plan (Markdown).
        plan: PathBuf,
    },
    /// Print the claims × hypotheses coverage matrix.
    Render {
        /// The plan (Markdown).
        plan: PathBuf,
    },
    /// Print the technique catalog.
    Techniques,
    /// Write one runnable scenario per scenario dst can carry (the rest listed in MANUAL.md).
    Compile {
        /// The plan (Markdown).
        plan: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Fill the coverage matrix from run directories (verdict.json + evidence.json).
    Coverage {
        /// The plan (Markdown).
        plan: PathBuf,
        /// Run output directories.
        runs: Vec<PathBuf>,
    },
}

fn load(path: &PathBuf) -> anyhow::Result<(String, planner::Plan)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading plan {}", path.display()))?;
    let plan = planner::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((text, plan))
}

pub fn run(cmd: Plan, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        Plan::Init { system } => print!("{}", planner::init(&system)),
        Plan::Lint { plan } => {
            let text = std::fs::read_to_string(&plan)
                .with_context(|| format!("reading plan {}", plan.display()))?;
            let findings = planner::lint_source(&text);
            if json {
                println!("{}", serde_json::to_string_pretty(&findings)?);
            } else if findings.is_empty() {
                println!("{}: clean", plan.display());
            } else {
                for f in &findings {
                    println!("{}:{f}", plan.display());
                }
            }
            return Ok(if findings.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        Plan::Render { plan } => {
            let (_, p) = load(&plan)?;
            if json {
                println!("{}", planner::render_json(&p));
            } else {
                print!("{}", planner::render_markdown(&p));
            }
        }
        Plan::Techniques => {
            if json {
                println!("{}", planner::techniques_json());
            } else {
                print!("{}", planner::render_techniques());
            }
        }
        Plan::Compile { plan, out } => {
            let (_, p) = load(&plan)?;
            let compiled = planner::compile(&p);
            let written = planner::write_compiled(&out, &compiled)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&written)?);
            } else {
                for w in &written {
                    println!("wrote {}", w.display());
                }
                print!("{}", planner::compile::render_manual(&compiled));
            }
        }
        Plan::Coverage { plan, runs } => {
            let (_, p) = load(&plan)?;
            let results = runs
                .iter()
                .map(|r| {
                    planner::read_run_dir(r).map_err(|e| anyhow::anyhow!("{}: {e}", r.display()))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let m = planner::coverage(&p, &results);
            if json {
                println!("{}", m.to_json());
            } else {
                print!("{}", m.render_markdown());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
