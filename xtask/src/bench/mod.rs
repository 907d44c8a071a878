//! `cargo xtask bench <area>`: benchmarks side by side with the alternative a user would pick,
//! measured in the same run, written to BENCHMARKS.md.

mod syscall;

use clap::Subcommand;

/// The benchmark areas.
#[derive(Debug, Subcommand)]
pub enum Bench {
    /// Syscall faults: cost to untargeted and targeted processes vs no dst and vs strace.
    Syscall(syscall::Args),
    /// (internal) The measured loop: `bench-loop getppid|write N`.
    #[command(hide = true, name = "loop")]
    Loop {
        /// getppid or write.
        kind: String,
        /// Iterations.
        n: u64,
    },
}

pub fn run(b: Bench) -> anyhow::Result<()> {
    match b {
        Bench::Syscall(a) => syscall::run(&a),
        Bench::Loop { kind, n } => syscall::measured_loop(&kind, n),
    }
}
