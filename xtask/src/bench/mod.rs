//! `cargo xtask bench <what>`: benchmarks measured side by side with the alternative a user
//! would pick, in the same run.

pub mod history;

/// Which benchmark.
#[derive(Debug, clap::Subcommand)]
pub enum Bench {
    /// Acknowledged history appends per second through the daemon vs a plain file + fsync.
    History(history::Args),
}

/// Runs the chosen benchmark.
pub fn run(b: &Bench) -> anyhow::Result<()> {
    match b {
        Bench::History(a) => history::run(a),
    }
}
