//! `dst toolbox [PATH]`: what a repository already has for testing (runbooks, compose and
//! Kubernetes manifests, Makefile/justfile targets, chaos scripts, Jepsen/Maelstrom, test
//! frameworks, CI files), so a test author reuses scaffolding instead of reinventing it.

use std::{path::PathBuf, process::ExitCode};

/// Arguments of `dst toolbox`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Repository to scan (default: the current directory).
    #[arg(default_value = ".")]
    pub path: PathBuf,
}

pub fn run(args: Args, json: bool) -> anyhow::Result<ExitCode> {
    let findings = planner::toolbox::discover(&args.path)?;
    if json {
        println!("{}", planner::toolbox::render_json(&findings));
    } else {
        print!("{}", planner::toolbox::render_markdown(&findings));
    }
    Ok(ExitCode::SUCCESS)
}
