//! `dst inject partition`: cut groups of hosts apart (symmetric or one-way) or apply a Jepsen
//! shape, as one atomic set of drop rules (src host → dst host), then print per-pair evidence.
//!
//! Hosts are network namespace names (their address is read from `--dev`, and the rules are
//! attached to that interface's egress) or IPv4 CIDRs (rules then act on every `--attach
//! NETNS/DEV` given).

use std::{net::Ipv4Addr, process::ExitCode, time::Duration};

use dst::net::{
    Action, Direction, NetEngine, NetFault,
    evidence::{Evidence, Window},
    partition::{self, Shape},
    spec::{Cidr, monotonic_ns},
};
use serde_json::json;

use super::{Ended, block_stop_signals, environment, parse_duration, target, usage, wait};

/// Arguments of `dst inject partition`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("how").required(true).multiple(false).args(["group", "shape"])))]
pub struct Args {
    /// A group of hosts (comma-separated netns names or CIDRs); give two or more.
    #[arg(long, value_delimiter = ',', num_args = 1.., action = clap::ArgAction::Append)]
    pub group: Vec<String>,
    /// Only the first group is cut off from the others (asymmetric: replies still flow).
    #[arg(long, requires = "group")]
    pub one_way: bool,
    /// A Jepsen shape over --hosts.
    #[arg(long, value_enum, requires = "hosts")]
    pub shape: Option<Shape>,
    /// The hosts a shape applies to, in order (comma-separated netns names or CIDRs).
    #[arg(long, value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// Host that `--shape isolate` cuts off (default: the first).
    #[arg(long)]
    pub node: Option<String>,
    /// Interface of each netns host.
    #[arg(long, default_value = "eth0")]
    pub dev: String,
    /// Extra attach points NETNS/DEV for CIDR hosts.
    #[arg(long)]
    pub attach: Vec<String>,
    /// How long the partition stays (default: until Ctrl-C).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
}

/// One participant: its name and the network it is matched by.
struct Host {
    name: String,
    cidr: Cidr,
}

pub fn run(args: Args, json_out: bool) -> anyhow::Result<ExitCode> {
    let signals = block_stop_signals();
    // Group membership as given: with --group each occurrence is one group. clap flattens the
    // values, so group boundaries come from the raw command line.
    let groups_raw = match group_boundaries(&args) {
        Ok(g) => g,
        Err(e) => return usage("partition", e),
    };
    let names: Vec<String> = if args.shape.is_some() {
        args.hosts.clone()
    } else {
        groups_raw.iter().flatten().cloned().collect()
    };
    let mut seen = std::collections::BTreeSet::new();
    for n in &names {
        if !seen.insert(n) {
            return usage("partition", partition::PartitionError::Duplicate(n.clone()));
        }
    }
    let pairs = if let Some(shape) = args.shape {
        let node = match &args.node {
            Some(n) => match names.iter().position(|h| h == n) {
                Some(i) => i,
                None => {
                    return usage(
                        "partition",
                        partition::PartitionError::NoSuchNode(n.clone()),
                    );
                }
            },
            None => 0,
        };
        partition::shape(shape, names.len(), node)
    } else {
        let idx = |n: &String| names.iter().position(|h| h == n).unwrap_or(0);
        let groups: Vec<Vec<usize>> = groups_raw
            .iter()
            .map(|g| g.iter().map(idx).collect())
            .collect();
        partition::groups(&groups, args.one_way)
    };
    let pairs = match pairs {
        Ok(p) => p,
        Err(e) => return usage("partition", e),
    };
    if pairs.len() > dst_common::MAX_NET_RULES as usize {
        return usage(
            "partition",
            format!(
                "{} blocked pairs exceed the {} rule slots; use CIDR groups",
                pairs.len(),
                dst_common::MAX_NET_RULES
            ),
        );
    }

    // Resolve hosts and attach points before changing anything.
    let mut hosts = Vec::new();
    let mut devs = Vec::new();
    for n in &names {
        if let Ok(c) = Cidr::parse("host", n) {
            hosts.push(Host {
                name: n.clone(),
                cidr: c,
            });
            continue;
        }
        let dev = match target::resolve(Some(n), &args.dev) {
            Ok(d) => d,
            Err(e) => return environment("partition", format!("{e:#}")),
        };
        let addr: Ipv4Addr = match target::ipv4_of(&dev) {
            Ok(a) => a,
            Err(e) => return environment("partition", format!("{e:#}")),
        };
        hosts.push(Host {
            name: n.clone(),
            cidr: Cidr { addr, prefix: 32 },
        });
        devs.push(dev);
    }
    for a in &args.attach {
        let Some((ns, d)) = a.split_once('/') else {
            return usage("partition", format!("--attach {a:?}: expected NETNS/DEV"));
        };
        match target::resolve(Some(ns), d) {
            Ok(dev) => devs.push(dev),
            Err(e) => return environment("partition", format!("{e:#}")),
        }
    }
    if devs.is_empty() {
        return usage(
            "partition",
            "no attach point: name netns hosts or give --attach NETNS/DEV",
        );
    }
    let mut engine = match NetEngine::load() {
        Ok(e) => e,
        Err(e) => return environment("partition", e),
    };
    let mut attached = Vec::new();
    let mut backend = String::new();
    for dev in &devs {
        match target::attach(&mut engine, dev, Direction::Egress, false) {
            Ok((mech, _)) => {
                backend = target::mech_name(mech).to_string();
                attached.push(format!("{} egress", dev.label()));
            }
            Err(e) => return environment("partition", format!("{e:#}")),
        }
    }
    let applied_ns = monotonic_ns();
    let expires_ns = applied_ns
        + args
            .duration
            .unwrap_or(dst::fault::net::DEFAULT_EXPIRY)
            .as_nanos() as u64;
    let faults: Vec<(NetFault, u64, u64)> = pairs
        .iter()
        .map(|&(a, b)| {
            let mut f = NetFault::new(Action::Drop { probability: 1.0 });
            f.src = Some(hosts[a].cidr);
            f.dst = Some(hosts[b].cidr);
            (f, 0, expires_ns)
        })
        .collect();
    // One call: every pair is blocked, or none is.
    let slots = engine.apply(&faults)?;
    {
        // Always on stderr (also with --json): callers wait for this line before sending.
        eprintln!(
            "dst inject partition: {} blocked pairs live; {}",
            pairs.len(),
            match args.duration {
                Some(d) => format!("for {d:?}, Ctrl-C to stop early"),
                None => "until Ctrl-C".into(),
            }
        );
    }
    let ended = wait(&signals, args.duration);
    for s in &slots {
        engine.clear(*s)?;
    }
    let cleared_ns = monotonic_ns();
    let mut evidence = Vec::new();
    for (&(a, b), &slot) in pairs.iter().zip(&slots) {
        let spec = json!({"kind": "partition-pair", "from": hosts[a].name, "to": hosts[b].name,
            "src": format!("{}/{}", hosts[a].cidr.addr, hosts[a].cidr.prefix),
            "dst": format!("{}/{}", hosts[b].cidr.addr, hosts[b].cidr.prefix)});
        evidence.push(Evidence::new(
            format!("{}->{}", hosts[a].name, hosts[b].name),
            spec,
            backend.clone(),
            attached.clone(),
            0,
            engine.evidence(slot)?,
            None,
            Window {
                applied_ns,
                not_before_ns: 0,
                expires_ns,
                cleared_ns: Some(cleared_ns),
            },
        ));
    }
    let landed = evidence.iter().filter(|e| e.landed).count();
    if json_out {
        let v = json!({
            "hosts": names,
            "blocked": pairs.iter().map(|&(a, b)| [&hosts[a].name, &hosts[b].name]).collect::<Vec<_>>(),
            "landed_pairs": landed,
            "faults": evidence,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        if let Ended::Signal(s) = ended {
            eprintln!("dst inject partition: stopped by signal {s}");
        }
        println!(
            "partition: {} blocked pairs, {landed} saw traffic and dropped it",
            pairs.len()
        );
        for e in &evidence {
            print!("{}", e.render());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Groups as given on the command line: each `--group` occurrence is one group.
fn group_boundaries(args: &Args) -> Result<Vec<Vec<String>>, String> {
    if args.group.is_empty() {
        return Ok(Vec::new());
    }
    let mut groups = Vec::new();
    let mut it = std::env::args().peekable();
    while let Some(a) = it.next() {
        let val = if a == "--group" {
            it.next()
        } else {
            a.strip_prefix("--group=").map(str::to_string)
        };
        if let Some(v) = val {
            groups.push(
                v.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            );
        }
    }
    if groups.iter().flatten().count() != args.group.len() {
        return Err("could not read the --group lists; write them as --group a,b --group c".into());
    }
    Ok(groups)
}
