//! The test tiers: lint, unit, privileged (root, one test at a time, leak-checked), conformance,
//! then the VM tier (`crate::vm`).

use std::path::Path;

use anyhow::{Context as _, bail};

use crate::{
    leaks::Snapshot,
    run::{cargo, run},
};

/// Options of `cargo xtask test`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Skip rustfmt and clippy.
    #[arg(long)]
    no_lint: bool,
    /// Skip the VM tier (QEMU on Debian kernels 6.1, 6.12, 7.3; about 20-30 min on 2 cores).
    #[arg(long)]
    no_vm: bool,
}

/// Every tier, in order; stops at the first failing tier.
pub fn all(args: &Args) -> anyhow::Result<()> {
    if !args.no_lint {
        lint()?;
    }
    unit()?;
    crate::manifests::manifests()?;
    privileged(None)?;
    conformance()?;
    if args.no_vm {
        eprintln!("xtask: VM tier skipped (--no-vm)");
    } else {
        crate::vm::run(&crate::vm::Args {
            kernel: "all".into(),
            filter: None,
            timeout: 1500,
            cpus: 1,
            verbose: false,
        })?;
    }
    eprintln!("xtask: all tiers passed");
    Ok(())
}

/// rustfmt --check and clippy with -D warnings (including the privileged test code).
pub fn lint() -> anyhow::Result<()> {
    run(cargo().args(["fmt", "--all", "--", "--check"]))
        .context("formatting differs: run `cargo fmt --all`")?;
    run(cargo().args([
        "clippy",
        "--all-targets",
        "--features",
        "dst-userspace/privileged-tests",
        "--",
        "-D",
        "warnings",
    ]))
}

/// Unit tests of every default member (no root needed).
pub fn unit() -> anyhow::Result<()> {
    run(cargo().args(["test", "--workspace", "--exclude", "dst-ebpf"]))
}

/// Privileged tests: root, real kernel, one at a time; fails if anything is left behind.
pub fn privileged(filter: Option<&str>) -> anyhow::Result<()> {
    if !nix_is_root() {
        bail!(
            "privileged tests need root (they load BPF programs and create namespaces): run as root"
        );
    }
    // The runner tests start the example service, which lives in another package.
    run(cargo().args(["build", "-p", "dst-example-kv"]))?;
    let before = Snapshot::take();
    eprintln!("xtask: before privileged tests: {}", before.summary());
    let mut cmd = cargo();
    cmd.args([
        "test",
        "-p",
        "dst-userspace",
        "--features",
        "privileged-tests",
        "--test",
        "privileged",
        "--",
    ]);
    cmd.arg("--test-threads=1");
    if let Some(f) = filter {
        cmd.arg(f);
    }
    let result = run(&mut cmd);
    let after = Snapshot::take();
    eprintln!("xtask: after privileged tests: {}", after.summary());
    let leaked = before.leaked(&after);
    result?;
    if !leaked.is_empty() {
        bail!(
            "privileged tests left things behind:\n  {}",
            leaked.join("\n  ")
        );
    }
    eprintln!("xtask: nothing left behind (namespaces, BPF links, cgroups, qdiscs compared)");
    Ok(())
}

/// The checkers against the external corpus in ../shared/testdata.
pub fn conformance() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata");
    if !root.join("porcupine/MANIFEST.tsv").exists() {
        bail!(
            "conformance corpus not found at {}: put the shared/ directory beside this clone",
            root.display()
        );
    }
    run(cargo().args([
        "test",
        "--release",
        "-p",
        "checkers",
        "--test",
        "conformance",
        "--",
        "--nocapture",
    ]))
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}
