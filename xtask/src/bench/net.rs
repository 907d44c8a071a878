//! `cargo xtask bench net`: builds dst and the `bench_net` example in release, makes sure the
//! comparison tools exist (installs nftables/iptables with apt when missing, and says so), runs
//! the measurement as root and writes the `## Network` section of BENCHMARKS.md. `--vm` runs
//! the netem comparison in QEMU guests instead (`crate::vm::bench`).

use std::process::Command;

use anyhow::{Context as _, bail};

use crate::run::{cargo, run as run_cmd};

/// Options of `cargo xtask bench net`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Instead: dst's delay vs `tc qdisc netem` inside QEMU guests (Debian kernels).
    #[arg(long)]
    vm: bool,
    /// With --vm: 6.1, 6.12, 7.3 or all.
    #[arg(long, default_value = "6.12", requires = "vm")]
    kernel: String,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    if args.vm {
        return crate::vm::bench::run(&args.kernel);
    }
    for (tool, pkg) in [
        ("nft", "nftables"),
        ("iptables", "iptables"),
        ("iperf3", "iperf3"),
    ] {
        if which(tool) {
            continue;
        }
        eprintln!("xtask: {tool} is missing; installing {pkg} with apt-get for the baseline");
        run_cmd(Command::new("apt-get").args(["install", "-y", "--no-install-recommends", pkg]))
            .with_context(|| format!("installing {pkg}"))?;
    }
    run_cmd(cargo().args([
        "build",
        "--release",
        "-p",
        "dst-userspace",
        "--bins",
        "--example",
        "bench_net",
    ]))?;
    let exe = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/release/examples/bench_net");
    eprintln!("xtask: $ {}", exe.display());
    let out = Command::new(&exe)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", exe.display()))?;
    if !out.status.success() {
        bail!("bench_net failed with {}", out.status);
    }
    let body = String::from_utf8(out.stdout)?;
    print!("{body}");
    super::write_section("Network", &body)
}

fn which(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        || ["/usr/sbin", "/sbin"]
            .iter()
            .any(|d| std::path::Path::new(d).join(tool).is_file())
}
