//! `dst report RUN_DIR`: print the findings a run left in its directory — the Markdown report,
//! or with `--json` the verdict and the evidence — and exit with the run's verdict code.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;

/// Arguments of `dst report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A run's output directory (written by `dst run` or `dst demo`).
    pub run_dir: PathBuf,
}

pub fn run(args: Args, json: bool) -> anyhow::Result<ExitCode> {
    let read = |name: &str| {
        let p = args.run_dir.join(name);
        std::fs::read_to_string(&p).with_context(|| {
            format!(
                "reading {}: is {} a run directory written by `dst run`?",
                p.display(),
                args.run_dir.display()
            )
        })
    };
    let verdict: serde_json::Value =
        serde_json::from_str(&read("verdict.json")?).context("verdict.json is not JSON")?;
    if json {
        let evidence: serde_json::Value =
            serde_json::from_str(&read("evidence.json")?).context("evidence.json is not JSON")?;
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "verdict": verdict, "evidence": evidence })
            )?
        );
    } else {
        print!("{}", read("report.md")?);
        let html = args.run_dir.join("report.html");
        if html.exists() {
            println!("\ntimeline: {}", html.display());
        }
    }
    let code = verdict["exit_code"]
        .as_u64()
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(5);
    Ok(ExitCode::from(code))
}
