//! Command-line parsing and dispatch; each verb lives in its own module.

mod demo;
mod inject;
mod probe;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for usage errors (sysexits EX_USAGE), as DESIGN.md requires.
pub const EXIT_USAGE: u8 = 64;
/// Exit code for ENVIRONMENT_ERROR.
pub const EXIT_ENVIRONMENT: u8 = 6;

/// dst — eBPF fault injection and observation for testing distributed systems.
#[derive(Debug, Parser)]
#[command(name = "dst", version, about, propagate_version = true)]
pub struct Cli {
    /// Print machine-readable JSON instead of the human report.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Report which kernel mechanisms work here and which backend each fault kind would use.
    Probe(probe::Args),
    /// Run the built-in demonstration: namespaces, a seeded fault, and its landing evidence.
    Demo(demo::Args),
    /// Apply a fault in the foreground until its duration ends or Ctrl-C, then print evidence.
    Inject(inject::Args),
}

/// Parses arguments, runs the verb and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DST_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(EXIT_USAGE),
            };
        }
    };
    let result = match cli.command {
        Command::Probe(a) => probe::run(a, cli.json),
        Command::Demo(a) => demo::run(a, cli.json),
        Command::Inject(a) => inject::run(a, cli.json),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dst: {e:#}");
            ExitCode::from(EXIT_ENVIRONMENT)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
