//! `dst probe`: print the kernel capability matrix and the backend per fault kind.

use std::process::ExitCode;

/// Arguments of `dst probe`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, json: bool) -> anyhow::Result<ExitCode> {
    let report = dst::probe::run();
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(ExitCode::SUCCESS)
}
