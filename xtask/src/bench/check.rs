//! `cargo xtask bench check`: the checkers on the 102 etcd + 6 kv Porcupine histories
//! (single-threaded and parallel) and Elle list-append on 100,000 generated transactions,
//! next to Porcupine's cost on the same corpus on this machine kind.

use std::process::Command;

use anyhow::{Context as _, bail};

use super::{workspace_root, write_section};
use crate::run::cargo;

/// Options of `cargo xtask bench check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Repetitions per measurement (the best is reported).
    #[arg(long, default_value_t = 5)]
    runs: u32,
}

/// Porcupine (Go, partitioned kv model) on a 2-core machine of this kind, checking only
/// (parsing excluded), as given in issue #6: (workload, milliseconds).
const PORCUPINE_MS: &[(&str, f64)] = &[("etcd, 102 histories", 420.0), ("kv c50-ok", 140.0)];

pub fn run(args: &Args) -> anyhow::Result<()> {
    let testdata = workspace_root().join("../shared/testdata");
    if !testdata.join("porcupine/MANIFEST.tsv").exists() {
        bail!(
            "{} not found: put shared/ beside the clone",
            testdata.display()
        );
    }
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--quiet",
        "--release",
        "-p",
        "checkers",
        "--example",
        "bench_check",
        "--",
    ])
    .arg(&testdata)
    .args(["--runs", &args.runs.to_string()]);
    eprintln!("xtask: running the checker benchmark (release build)");
    let out = cmd.output().context("running the bench_check example")?;
    if !out.status.success() {
        bail!(
            "bench_check failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{table}");
    let cpu = Command::new("sh")
        .args(["-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let mut body = format!(
        "Command: `cargo xtask bench check --runs {}` (best of {} runs; checking only, parsing excluded).\n\
         Machine: {} cores, {cpu}.\n\n{table}\n\nBaseline — Porcupine (Go, partitioned kv model), same corpus, \
         same machine kind, checking only:\n\n| workload | Porcupine ms |\n|---|---:|\n",
        args.runs,
        args.runs,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    for (w, ms) in PORCUPINE_MS {
        body.push_str(&format!("| {w} | {ms:.0} |\n"));
    }
    write_section("Checkers", &body)
}
