//! `dst cluster`: the multi-node coordinator — apply a partition, isolation or delay across
//! the daemons of an inventory atomically, heal it, gather every node's evidence.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use dst::cluster::{ClusterFault, Coordinator, Inventory, NodeStep, report};

use super::inject::syscall::parse_duration;

/// Arguments of `dst cluster`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Inventory TOML: one [[node]] per daemon (name, address, token_file, optional ca, ip, dev).
    #[arg(long, env = "DST_INVENTORY")]
    pub inventory: PathBuf,
    /// Per-request timeout towards each daemon.
    #[arg(long, value_parser = parse_duration, default_value = "10s", global = true)]
    pub timeout: Duration,
    #[command(subcommand)]
    pub verb: Verb,
}

fn groups(raw: &[String]) -> Vec<Vec<String>> {
    raw.iter()
        .map(|g| {
            g.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .collect()
}

#[derive(Debug, clap::Subcommand)]
pub enum Verb {
    /// Partition node groups from each other: --group n1,n2 --group n3.
    Partition {
        /// A group of node names (comma separated); repeat for each group.
        #[arg(long = "group", required = true, num_args = 1)]
        groups: Vec<String>,
        /// How long the partition lasts (kernel-enforced); default until healed (≤ 1 h).
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
    },
    /// Cut one node off from every other.
    Isolate {
        /// The node.
        #[arg(long)]
        node: String,
        /// How long.
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
    },
    /// Delay traffic between node groups.
    Delay {
        /// A group of node names; repeat.
        #[arg(long = "group", required = true, num_args = 1)]
        groups: Vec<String>,
        /// One-way delay added, e.g. 50ms.
        #[arg(long, value_parser = parse_duration)]
        base: Duration,
        /// Spread around the base.
        #[arg(long, value_parser = parse_duration, default_value = "0ms")]
        jitter: Duration,
        /// How long.
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
    },
    /// Clear the faults of one transaction (or of every coordinator transaction).
    Heal {
        /// Transaction id printed by the apply.
        #[arg(long)]
        txn: Option<String>,
    },
    /// Gather every node's evidence into one report (JSON; Markdown too with --out).
    Evidence {
        /// Transaction id (default: every coordinator transaction).
        #[arg(long)]
        txn: Option<String>,
        /// Directory for cluster-evidence.json and cluster-evidence.md.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Each node's health.
    Status,
}

fn print_steps(title: &str, steps: &[NodeStep]) {
    for s in steps {
        println!(
            "  {title:<8} {:<10} {:<4} {:>7.1} ms  {}{}",
            s.node,
            if s.ok { "ok" } else { "FAIL" },
            s.ms,
            s.faults.join(","),
            s.error
                .as_deref()
                .map(|e| format!("  {e}"))
                .unwrap_or_default()
        );
    }
}

pub fn run(args: Args, json: bool) -> anyhow::Result<ExitCode> {
    let inv = match Inventory::load(&args.inventory) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("dst cluster: {e}");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    let coord = match Coordinator::new(inv, args.timeout) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dst cluster: {e}");
            return Ok(ExitCode::from(super::EXIT_ENVIRONMENT));
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (fault, duration) = match args.verb {
        Verb::Partition {
            groups: g,
            duration,
        } => (ClusterFault::Partition { groups: groups(&g) }, duration),
        Verb::Isolate { node, duration } => (ClusterFault::Isolate { node }, duration),
        Verb::Delay {
            groups: g,
            base,
            jitter,
            duration,
        } => (
            ClusterFault::Delay {
                groups: groups(&g),
                base,
                jitter,
            },
            duration,
        ),
        Verb::Heal { txn } => {
            let t = std::time::Instant::now();
            let steps = rt.block_on(coord.heal(txn.as_deref()));
            let ok = steps.iter().all(|s| s.ok);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                    "healed": ok, "ms": t.elapsed().as_secs_f64() * 1000.0, "nodes": steps}))?
                );
            } else {
                println!(
                    "heal: {} in {:.1} ms",
                    if ok { "ok" } else { "FAILED" },
                    t.elapsed().as_secs_f64() * 1000.0
                );
                print_steps("heal", &steps);
            }
            return Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(super::EXIT_ENVIRONMENT)
            });
        }
        Verb::Evidence { txn, out } => {
            let ev = rt.block_on(coord.evidence(txn.as_deref()));
            if let Some(dir) = out {
                std::fs::create_dir_all(&dir)?;
                std::fs::write(
                    dir.join("cluster-evidence.json"),
                    serde_json::to_vec_pretty(&ev)?,
                )?;
                std::fs::write(dir.join("cluster-evidence.md"), report::markdown(&ev))?;
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&ev)?);
            } else {
                print!("{}", report::markdown(&ev));
            }
            let down = report::totals(&ev).3;
            return Ok(if down == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(super::EXIT_ENVIRONMENT)
            });
        }
        Verb::Status => {
            let steps = rt.block_on(coord.status());
            let ok = steps.iter().all(|s| s.ok);
            if json {
                println!("{}", serde_json::to_string_pretty(&steps)?);
            } else {
                print_steps("health", &steps);
            }
            return Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(super::EXIT_ENVIRONMENT)
            });
        }
    };
    let report = match rt.block_on(coord.apply(&fault, duration)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dst cluster: {e}");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} {}: {} (prepare {:.1} ms, commit {:.1} ms, total {:.1} ms)",
            report.txn,
            report.fault,
            if report.committed {
                "committed on every node"
            } else {
                "ROLLED BACK"
            },
            report.prepare_ms,
            report.commit_ms,
            report.total_ms
        );
        print_steps("prepare", &report.prepare);
        print_steps("commit", &report.commit);
        print_steps("rollback", &report.rollback);
    }
    Ok(if report.committed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_ENVIRONMENT)
    })
}
