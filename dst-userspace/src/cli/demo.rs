//! `dst demo`: the main job the README runs. Until the scenario runner lands it runs the probe
//! and a self-test fault in two namespaces and proves the fault landed from kernel counters.

use std::process::ExitCode;

/// Arguments of `dst demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Datagrams to send through the faulted port.
    #[arg(long, default_value_t = 10_000)]
    pub packets: u32,
    /// Drop probability of the self-test fault.
    #[arg(long, default_value_t = 0.3)]
    pub drop: f64,
    /// Seed of the fault's decision stream.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

pub fn run(args: Args, json: bool) -> anyhow::Result<ExitCode> {
    if !(0.0..=1.0).contains(&args.drop) {
        eprintln!("dst demo: --drop {} is outside 0..1", args.drop);
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    let probe = dst::probe::run();
    let prefix = format!("dstdemo{}-", std::process::id() % 100_000);
    let report = dst::selftest::run(&prefix, args.packets, args.drop, args.seed)?;
    if json {
        let v = serde_json::json!({ "probe": probe, "selftest": report });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", probe.render());
        let e = &report.evidence;
        println!(
            "\nself-test: drop {:.0}% of UDP to port 9000 between two namespaces (seed {})",
            args.drop * 100.0,
            args.seed
        );
        println!("  {:<28} {}", "datagrams sent", report.sent);
        println!("  {:<28} {}", "lost at the receiver", report.lost);
        println!(
            "  {:<28} matched={} applied={} passed={} bytes={}",
            "kernel counters", e.matched, e.applied, e.passed, e.bytes
        );
        println!(
            "  {:<28} {} sent, {} lost",
            "control port 9001 (untargeted)", report.control_sent, report.control_lost
        );
        println!(
            "  {:<28} {}",
            "landed",
            if e.applied > 0 { "yes" } else { "NO" }
        );
        println!(
            "  {:<28} {}",
            "verdict",
            if report.landed_exactly {
                "PASS: kernel applied == receiver losses, blast radius zero"
            } else {
                "FAIL: counters and receiver disagree"
            }
        );
    }
    Ok(if report.landed_exactly {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
