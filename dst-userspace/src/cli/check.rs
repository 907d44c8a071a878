//! `dst check HISTORY --model NAME`: decide a recorded history with a checker (linearizability
//! per model, Elle list-append / rw-register, invariants) and exit Ok 0 / Illegal 1 / Unknown 3.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use checkers::cli::{CheckError, check_file, parse_duration};

/// Arguments of `dst check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// History file (JSONL, Jepsen EDN, or Porcupine's etcd log).
    pub history: PathBuf,
    /// Checker: a model for linearizability, an Elle workload, or an invariant.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(checkers::cli::Checker::NAMES))]
    pub model: String,
    /// History format (default: detected from the name and content).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(checkers::format::Format::NAMES))]
    pub format: Option<String>,
    /// Checker budget, e.g. `500ms`, `30s`; reaching it gives Unknown (exit 3), never a guess.
    #[arg(long)]
    pub timeout: Option<String>,
    /// Write a self-contained HTML timeline (operations per process, the witness highlighted).
    #[arg(long)]
    pub html: Option<PathBuf>,
}

fn fail(e: &CheckError) -> ExitCode {
    eprintln!("dst check: {e}");
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(5))
}

pub fn run(args: Args, json: bool) -> anyhow::Result<ExitCode> {
    let timeout = match args.timeout.as_deref().map(parse_duration).transpose() {
        Ok(t) => t,
        Err(e) => return Ok(fail(&e)),
    };
    let (history, report) =
        match check_file(&args.history, &args.model, args.format.as_deref(), timeout) {
            Ok(r) => r,
            Err(e) => return Ok(fail(&e)),
        };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render_human());
    }
    if let Some(out) = &args.html {
        std::fs::write(out, checkers::html::render(&history, &report))
            .with_context(|| format!("writing {}", out.display()))?;
        if !json {
            println!("timeline: {}", out.display());
        }
    }
    Ok(ExitCode::from(u8::try_from(report.exit_code).unwrap_or(5)))
}
