//! `cargo xtask`: build, test tiers (unit, privileged, conformance, VM), lints and benchmarks.

mod bench;
mod leaks;
mod run;
mod test;
mod vm;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "xtask", about = "dst development tasks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every tier CI runs: lints, unit tests, privileged tests (root), conformance.
    Test(test::Args),
    /// rustfmt --check and clippy -D warnings on the workspace.
    Lint,
    /// Privileged tests only (root; real programs, namespaces and cgroups, one at a time).
    Privileged {
        /// Only tests whose name contains this.
        filter: Option<String>,
    },
    /// Checkers against ../shared/testdata (answers in MANIFEST.tsv).
    Conformance,
    /// Benchmarks, side by side with the alternative, written to BENCHMARKS.md.
    #[command(subcommand)]
    Bench(bench::Bench),
    /// The privileged tests in QEMU on Debian kernels 6.1, 6.12, 7.3 (LSM, fq/EDT, netem).
    VmTest(vm::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Test(args) => test::all(&args),
        Command::Lint => test::lint(),
        Command::Privileged { filter } => test::privileged(filter.as_deref()),
        Command::Conformance => test::conformance(),
        Command::Bench(b) => bench::run(b),
        Command::VmTest(a) => vm::run(&a),
    }
}
