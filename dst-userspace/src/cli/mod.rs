//! Command-line parsing and dispatch; each verb lives in its own module.

mod check;
mod cluster;
mod daemon;
mod demo;
mod exec;
mod fault;
mod history;
mod inject;
mod plan;
mod probe;
mod report;
mod run;
mod target;
mod toolbox;

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
    /// Run the built-in demonstration: the example service partitioned, safe then unsafe.
    Demo(demo::Args),
    /// Run a scenario: start the system, record history under faults, check, report a verdict.
    Run(run::Args),
    /// Print a run's findings (report.md, or verdict and evidence as JSON); exit with its verdict.
    Report(report::Args),
    /// Check a recorded history: linearizability, Elle anomalies or invariants.
    Check(check::Args),
    /// Claim-driven test plans: init, lint, render, techniques, compile, coverage.
    #[command(subcommand)]
    Plan(plan::Plan),
    /// Discover the testing scaffolding a repository already has.
    Toolbox(toolbox::Args),
    /// Run the daemon: owns faults, records history, serves the HTTP API on a unix socket.
    Daemon(daemon::Args),
    /// Apply, list, show, clear faults held by the daemon and read their evidence.
    Fault(fault::Args),
    /// Append operations to the daemon's durable history, or export it.
    History(history::Args),
    /// Apply one fault now and print its evidence.
    Inject(inject::Args),
    /// Run a command in a fresh cgroup under a syscall fault that follows it and its children.
    Exec(exec::Args),
    /// Multi-node coordinator: partition, isolate, delay across node daemons; heal; evidence.
    Cluster(cluster::Args),
    /// Show the cgroup and network namespace a pod or container resolves to on this node.
    Target(target::Args),
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
        Command::Run(a) => run::run(a, cli.json),
        Command::Plan(p) => plan::run(p, cli.json),
        Command::Check(a) => check::run(a, cli.json),
        Command::Report(a) => report::run(a, cli.json),
        Command::Toolbox(a) => toolbox::run(a, cli.json),
        Command::Daemon(a) => daemon::run(a, cli.json),
        Command::Fault(a) => fault::run(a, cli.json),
        Command::History(a) => history::run(a, cli.json),
        Command::Inject(a) => inject::run(a, cli.json),
        Command::Exec(a) => exec::run(a, cli.json),
        Command::Target(a) => target::run(a, cli.json),
        Command::Cluster(a) => cluster::run(a, cli.json),
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
    use clap::{CommandFactory as _, Parser as _};

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }

    /// Every `dst ...` line the agent skills quote must parse with the real CLI.
    #[test]
    fn skill_commands_parse() {
        for file in ["design-distributed-tests", "execute-distributed-tests"] {
            let path = format!("{}/../skills/{file}/SKILL.md", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).unwrap();
            let lines = planner::skills::command_lines(&text);
            assert!(!lines.is_empty(), "{path} quotes no dst command");
            for l in lines {
                let words = shell_words(&l.text);
                if let Err(e) = super::Cli::try_parse_from(&words) {
                    panic!(
                        "{path}:{}: `{}` does not parse with the real CLI: {e}",
                        l.line, l.text
                    );
                }
            }
        }
    }

    fn shell_words(s: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut quote = None;
        for c in s.chars() {
            match (quote, c) {
                (None, '\'' | '"') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, ' ') => {
                    if !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                    }
                }
                _ => cur.push(c),
            }
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    }
}
