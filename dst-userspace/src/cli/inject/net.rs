//! `dst inject net`: one network fault in the foreground, then its evidence.
//!
//! Notes for users: a cgroup_skb egress drop is reported to a UDP sender as EPERM (the kernel
//! tells the socket its packet was refused); `--corrupt` flips the lowest bit of the packet's
//! last byte and leaves the checksum as it was: where the checksum was already computed the
//! receiver's stack discards the packet, where it is computed later (checksum offload, e.g. veth)
//! the corrupted payload reaches the application.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use dst::{
    cgroup::Cgroup,
    fault::{NetAction, NetFaultSpec, NetTarget, Proto, Schedule, net::Distribution},
    net::{
        Direction, NetEngine,
        backend::{self, BackendChoice, NetBackend},
        evidence::{EdtStats, Evidence, Window},
        fq::FqGuard,
        ifb::IfbGuard,
        spec::monotonic_ns,
    },
};

use super::{
    Ended, block_stop_signals, environment, parse_duration, parse_rate, target, usage, wait,
};

/// Arguments of `dst inject net`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("action").required(true).multiple(false)
    .args(["drop", "delay", "reorder", "duplicate", "corrupt", "rate"])))]
pub struct Args {
    /// Named network namespace of the interface (default: dst's own).
    #[arg(long)]
    pub netns: Option<String>,
    /// Interface to act on.
    #[arg(long)]
    pub dev: Option<String>,
    /// cgroup v2 path: act only on its sockets' traffic (drop only).
    #[arg(long)]
    pub cgroup: Option<PathBuf>,
    /// Kubernetes pod (UID, NAMESPACE/NAME or NAMESPACE/LABEL=VALUE): its cgroup, or with
    /// --dev that interface in the pod's network namespace.
    #[arg(long, conflicts_with_all = ["cgroup", "netns", "container"])]
    pub pod: Option<String>,
    /// Container id (containerd, CRI-O, docker, podman), resolved like --pod.
    #[arg(long, conflicts_with_all = ["cgroup", "netns"])]
    pub container: Option<String>,
    /// Direction of the traffic to fault.
    #[arg(long, value_enum, default_value_t = Direction::Egress)]
    pub dir: Direction,
    /// Protocol to match.
    #[arg(long, value_enum)]
    pub proto: Option<Proto>,
    /// Source CIDR to match.
    #[arg(long)]
    pub src: Option<String>,
    /// Destination CIDR to match.
    #[arg(long)]
    pub dst: Option<String>,
    /// Source port or range N-M.
    #[arg(long)]
    pub sport: Option<String>,
    /// Destination port or range N-M.
    #[arg(long)]
    pub dport: Option<String>,
    /// Drop matched packets with this probability (0..1).
    #[arg(long)]
    pub drop: Option<f64>,
    /// Delay every matched packet by this much (e.g. 50ms).
    #[arg(long, value_parser = parse_duration)]
    pub delay: Option<Duration>,
    /// Spread of the delay (uniform half-width, or normal standard deviation).
    #[arg(long, value_parser = parse_duration, requires = "delay")]
    pub jitter: Option<Duration>,
    /// Distribution of the delay spread.
    #[arg(long, value_enum, requires = "delay")]
    pub distribution: Option<Distribution>,
    /// Hold matched packets back with this probability (0..1) so later ones overtake them.
    #[arg(long)]
    pub reorder: Option<f64>,
    /// Later packets that overtake a held one.
    #[arg(long, requires = "reorder")]
    pub gap: Option<u32>,
    /// Send matched packets twice with this probability (0..1).
    #[arg(long)]
    pub duplicate: Option<f64>,
    /// Flip a bit of matched packets with this probability (0..1); checksum left as is.
    #[arg(long)]
    pub corrupt: Option<f64>,
    /// Limit matched traffic to this rate (e.g. 10mbit).
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<u64>,
    /// Seed of the decision stream (random when omitted; always recorded in the evidence).
    #[arg(long)]
    pub seed: Option<u64>,
    /// How long the fault stays (default: until Ctrl-C; the kernel expires it after 1 h anyway).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Id of the fault in the evidence.
    #[arg(long)]
    pub id: Option<String>,
    /// Mechanism for delay, reorder and rate: EDT (skb->tstamp + fq; ingress through an ifb)
    /// where `dst probe` says it works, else the TAP delay line.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
}

impl Args {
    fn action(&self) -> Result<NetAction, String> {
        let prob = |flag: &str, p: f64| {
            if (0.0..=1.0).contains(&p) {
                Ok(p)
            } else {
                Err(format!("--{flag} {p} is outside 0..1"))
            }
        };
        Ok(if let Some(p) = self.drop {
            NetAction::Drop {
                probability: prob("drop", p)?,
            }
        } else if let Some(base) = self.delay {
            NetAction::Delay {
                base,
                jitter: self.jitter.unwrap_or_default(),
                distribution: self.distribution.unwrap_or_default(),
            }
        } else if let Some(p) = self.reorder {
            NetAction::Reorder {
                probability: prob("reorder", p)?,
                gap: self.gap.unwrap_or(3),
            }
        } else if let Some(p) = self.duplicate {
            NetAction::Duplicate {
                probability: prob("duplicate", p)?,
            }
        } else if let Some(p) = self.corrupt {
            NetAction::Corrupt {
                probability: prob("corrupt", p)?,
            }
        } else if let Some(bits_per_sec) = self.rate {
            NetAction::Rate { bits_per_sec }
        } else {
            return Err(
                "give one action: --drop, --delay, --reorder, --duplicate, --corrupt or --rate"
                    .into(),
            );
        })
    }

    fn spec(&self, seed: u64) -> Result<NetFaultSpec, String> {
        if self.dev.is_none() && self.cgroup.is_none() {
            return Err("give --dev IFACE (with --netns NAME) and/or --cgroup PATH".into());
        }
        if self.netns.is_some() && self.dev.is_none() {
            return Err("--netns needs --dev".into());
        }
        if self.dev.is_some() && self.cgroup.is_some() {
            return Err("give either --dev or --cgroup, not both".into());
        }
        let spec = NetFaultSpec {
            id: self.id.clone(),
            target: NetTarget {
                netns: self.netns.clone(),
                dev: self.dev.clone(),
                cgroup: self.cgroup.clone(),
                ..Default::default()
            },
            direction: self.dir,
            proto: self.proto,
            src: self.src.clone(),
            dst: self.dst.clone(),
            sport: self.sport.clone(),
            dport: self.dport.clone(),
            action: self.action()?,
            seed: Some(seed),
            schedule: Schedule {
                duration: self.duration,
                ..Schedule::default()
            },
        };
        spec.validate("fault").map_err(|e| e.to_string())?;
        Ok(spec)
    }
}

pub fn run(mut args: Args, json: bool) -> anyhow::Result<ExitCode> {
    if args.pod.is_some() || args.container.is_some() {
        let resolved = dst::k8s::Resolver::host()
            .map_err(dst::k8s::LookupError::from)
            .and_then(|r| {
                dst::k8s::lookup_blocking(&r, args.pod.as_deref(), args.container.as_deref())
            });
        let r = match resolved {
            Ok(r) => r,
            Err(e) => return environment("net", e),
        };
        if args.dev.is_some() {
            match r.netns_path() {
                Ok(p) => args.netns = Some(p.display().to_string()),
                Err(e) => return environment("net", e),
            }
        } else {
            args.cgroup = Some(r.cgroup);
        }
    }
    let signals = block_stop_signals();
    let seed = args.seed.unwrap_or_else(rand_seed);
    let spec = match args.spec(seed) {
        Ok(s) => s,
        Err(e) => return usage("net", e),
    };
    let mut fault = spec.to_engine_fault("fault", seed)?;
    let needs_line = fault.action.needs_delay_line();

    // Resolve everything before touching the kernel: a bad target changes nothing.
    let dev = match &args.dev {
        Some(d) => match target::resolve(args.netns.as_deref(), d) {
            Ok(d) => Some(d),
            Err(e) => return environment("net", format!("{e:#}")),
        },
        None => None,
    };
    let cgroup = match &args.cgroup {
        Some(p) => match Cgroup::open(p) {
            Ok(c) => Some(c),
            Err(e) => return environment("net", e),
        },
        None => None,
    };
    let chosen = if needs_line && dev.is_some() {
        match backend::select(
            &fault.action,
            args.dir,
            args.backend,
            &dst::probe::net_facts(),
        ) {
            Ok(b) => b,
            Err(e) => return environment("net", e),
        }
    } else {
        NetBackend::Classifier
    };
    let mut engine = match NetEngine::load() {
        Ok(e) => e,
        Err(e) => return environment("net", e),
    };
    let mut attached = Vec::new();
    let mut line = None;
    let mut edt = None;
    let backend;
    if let Some(dev) = &dev {
        fault.ifindex = dev.ifindex;
        let with_line = chosen == NetBackend::DelayLine;
        if chosen == NetBackend::EdtFq {
            // fq (egress) and the ifb (ingress) before the rule: a refusal changes nothing.
            match edt_devices(dev, args.dir) {
                Ok(e) => {
                    fault.edt = true;
                    fault.edt_ifb = e.1.as_ref().map_or(0, |i| i.ifindex);
                    edt = Some(e);
                }
                Err(e) => return environment("net", format!("{e:#}")),
            }
        }
        let (mech, l) = match target::attach(&mut engine, dev, args.dir, with_line) {
            Ok(x) => x,
            Err(e) => return environment("net", format!("{e:#}")),
        };
        line = l;
        let dir = format!("{:?}", args.dir).to_lowercase();
        attached.push(format!(
            "{} {dir} ({})",
            dev.label(),
            target::mech_name(mech)
        ));
        backend = match chosen {
            NetBackend::Classifier => target::mech_name(mech).to_string(),
            b => format!("{b} via {}", target::mech_name(mech)),
        };
    } else if let Some(cg) = &cgroup {
        if let Err(e) = engine.attach_cgroup(cg, args.dir) {
            return environment("net", e);
        }
        attached.push(format!("cgroup {}", cg.path().display()));
        backend = "cgroup_skb".into();
    } else {
        return usage("net", "give --dev or --cgroup");
    }

    let applied_ns = monotonic_ns();
    let (not_before_ns, expires_ns) = spec.schedule.window(applied_ns);
    let slot = engine.apply(&[(fault, not_before_ns, expires_ns)])?[0];
    {
        // Always on stderr (also with --json): callers wait for this line before sending.
        eprintln!(
            "dst inject net: {} live on {} (seed {seed}); {}",
            dst::fault::net::kind_name(&spec.action),
            attached.join(", "),
            match args.duration {
                Some(d) => format!("for {d:?}, Ctrl-C to stop early"),
                None => "until Ctrl-C".into(),
            }
        );
    }
    let ended = wait(&signals, args.duration);
    engine.clear(slot)?;
    let cleared_ns = monotonic_ns();
    let mut delay_stats = None;
    if let Some(mut l) = line {
        engine.detach_delay_line(&l)?;
        l.stop();
        delay_stats = l.stats(slot);
    }
    let counters = engine.evidence(slot)?;
    let edt_stats = match edt {
        Some((fq, ifb)) => Some(EdtStats {
            delay: engine.edt_histogram(slot)?,
            fq: fq
                .into_iter()
                .map(FqGuard::restore)
                .chain(ifb.as_ref().and_then(|i| i.fq_report().cloned()))
                .collect(),
            ifb: ifb.as_ref().map(|i| i.name.clone()),
        }),
        None => None,
    };
    let mut evidence = Evidence::new(
        spec.id.clone().unwrap_or_else(|| format!("net-{slot}")),
        serde_json::to_value(&spec)?,
        backend,
        attached,
        seed,
        counters,
        delay_stats,
        Window {
            applied_ns,
            not_before_ns,
            expires_ns,
            cleared_ns: Some(cleared_ns),
        },
    );
    if let Some(e) = edt_stats {
        evidence = evidence.with_edt(e);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&evidence)?);
    } else {
        if let Ended::Signal(s) = ended {
            eprintln!("dst inject net: stopped by signal {s}");
        }
        print!("{}", evidence.render());
    }
    Ok(ExitCode::SUCCESS)
}

/// The devices EDT needs on `dev` for `dir`: fq as its root qdisc (egress) and an ifb with fq
/// (ingress). Both are removed when dropped.
fn edt_devices(
    dev: &target::Dev,
    dir: Direction,
) -> anyhow::Result<(Option<FqGuard>, Option<IfbGuard>)> {
    let (name, ifindex) = (dev.name.clone(), dev.ifindex);
    dev.run(move || -> anyhow::Result<_> {
        let fq = if dir != Direction::Ingress {
            Some(FqGuard::install(&name, ifindex)?)
        } else {
            None
        };
        let ifb = if dir != Direction::Egress {
            Some(IfbGuard::create(&format!("dstifb{ifindex}"))?)
        } else {
            None
        };
        Ok((fq, ifb))
    })?
}

/// A fresh seed from the OS (recorded in the evidence so the run can be replayed).
pub(crate) fn rand_seed() -> u64 {
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_err()
    {
        return monotonic_ns();
    }
    u64::from_ne_bytes(b)
}
