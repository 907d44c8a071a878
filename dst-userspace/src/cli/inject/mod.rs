//! `dst inject`: apply one fault now and print its evidence (one subcommand per fault family).

pub mod process;
pub mod syscall;

use std::process::ExitCode;

use clap::Subcommand;

/// Arguments of `dst inject`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: InjectCommand,
}

/// The fault families.
#[derive(Debug, Subcommand)]
pub enum InjectCommand {
    /// Fail a syscall class of running processes with an errno.
    Syscall(syscall::Args),
    /// Kill or pause running processes.
    Process(process::Args),
}

pub fn run(args: Args, json: bool) -> anyhow::Result<ExitCode> {
    match args.command {
        InjectCommand::Syscall(a) => syscall::run(a, json),
        InjectCommand::Process(a) => process::run(a, json),
    }
}
