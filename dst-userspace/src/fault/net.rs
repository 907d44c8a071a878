//! The user-facing network fault: target (netns + device and/or cgroup), match, action,
//! seed and schedule; validation with field paths, and conversion to the engine's `NetFault`.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use super::FaultFileError;
use crate::net::{
    Action, Direction, NetFault, PortRange,
    spec::{Cidr, SpecError},
};

/// Where a network fault acts: an interface inside a network namespace, a cgroup, or both.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetTarget {
    /// Named network namespace (`ip netns` name); omitted = the caller's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    /// Interface in that namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    /// cgroup v2 path (absolute or relative to the cgroup2 mount): only its sockets' traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<PathBuf>,
    /// Kubernetes pod: UID, `namespace/name` or `namespace/label=selector` (the last two
    /// through the Kubernetes API). Resolved to the pod's cgroup, or with `dev` to that
    /// interface in the pod's network namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Container id (containerd, CRI-O, docker, podman; a unique prefix of ≥ 12 hex digits).
    /// Resolved like `pod`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

/// Transport protocol to match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// ICMP (1).
    Icmp,
}

impl Proto {
    /// IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Self::Tcp => 6,
            Self::Udp => 17,
            Self::Icmp => 1,
        }
    }
}

/// Delay distribution.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    /// base ± jitter, uniform.
    #[default]
    Uniform,
    /// Normal with mean base and standard deviation jitter (clipped at 0).
    Normal,
}

/// What happens to matched packets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum NetAction {
    /// Drop with a probability.
    Drop {
        /// 0..=1.
        probability: f64,
    },
    /// Delay each packet by base ± jitter.
    Delay {
        /// Mean delay.
        #[serde(with = "humantime_serde")]
        base: Duration,
        /// Spread around the base.
        #[serde(default, with = "humantime_serde")]
        jitter: Duration,
        /// Distribution of the spread.
        #[serde(default)]
        distribution: Distribution,
    },
    /// Hold a packet back behind `gap` later ones with a probability.
    Reorder {
        /// 0..=1.
        probability: f64,
        /// Packets that overtake the held one.
        #[serde(default = "default_gap")]
        gap: u32,
    },
    /// Send a packet twice with a probability.
    Duplicate {
        /// 0..=1.
        probability: f64,
    },
    /// Flip a payload byte with a probability.
    Corrupt {
        /// 0..=1.
        probability: f64,
    },
    /// Limit matched traffic to a rate.
    Rate {
        /// Bits per second.
        bits_per_sec: u64,
    },
}

fn default_gap() -> u32 {
    3
}

/// When a fault is live, relative to the moment it is applied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Delay before the fault takes effect.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub start: Option<Duration>,
    /// How long it stays once started; omitted = until cleared (bounded by `expiry`).
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub duration: Option<Duration>,
    /// Hard stop the kernel enforces even if dst dies; default `start + duration`, or 1 h.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub expiry: Option<Duration>,
}

/// Longest a reordered packet is held when no later packet comes to overtake it.
pub const REORDER_MAX_HOLD: Duration = Duration::from_millis(500);

/// Default kernel-enforced expiry for a fault without duration or explicit expiry.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(3600);

impl Schedule {
    /// Checks the schedule of the fault at `at` (a zero duration is refused).
    pub fn validate(&self, at: &str) -> Result<(), FaultFileError> {
        if self.duration.is_some_and(|d| d.is_zero()) {
            return Err(invalid(
                format!("{at}.schedule.duration"),
                "must be greater than 0",
            ));
        }
        Ok(())
    }

    /// (not_before, expires) in CLOCK_MONOTONIC ns for a fault applied at `now_ns`.
    pub fn window(&self, now_ns: u64) -> (u64, u64) {
        let start = self.start.unwrap_or_default();
        let end = match (self.duration, self.expiry) {
            (_, Some(e)) => e,
            (Some(d), None) => start + d,
            (None, None) => DEFAULT_EXPIRY,
        };
        let ns = |d: Duration| now_ns.saturating_add(d.as_nanos() as u64);
        (if start.is_zero() { 0 } else { ns(start) }, ns(end))
    }
}

/// One network fault as users write it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetFaultSpec {
    /// Caller-chosen id (unique within a daemon); generated when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Where it acts.
    pub target: NetTarget,
    /// Which direction.
    #[serde(default)]
    pub direction: Direction,
    /// Protocol; omitted = any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<Proto>,
    /// Source CIDR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    /// Destination CIDR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<String>,
    /// Source port or range `N-M`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sport: Option<String>,
    /// Destination port or range `N-M`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dport: Option<String>,
    /// What to do.
    pub action: NetAction,
    /// Seed of the decision stream; random (and recorded) when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// When.
    #[serde(default)]
    pub schedule: Schedule,
}

fn invalid(field: String, problem: impl Into<String>) -> FaultFileError {
    FaultFileError::Invalid {
        field,
        problem: problem.into(),
    }
}

fn probability(at: &str, p: f64) -> Result<(), FaultFileError> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(invalid(
            format!("{at}.action.probability"),
            format!("{p} is outside 0..1"),
        ))
    }
}

impl NetFaultSpec {
    /// Validates every field; `at` is this fault's path (`net[0]`).
    pub fn validate(&self, at: &str) -> Result<(), FaultFileError> {
        let t = &self.target;
        if t.pod.is_some() || t.container.is_some() {
            if t.pod.is_some() && t.container.is_some() {
                return Err(invalid(
                    format!("{at}.target.container"),
                    "give either pod or container, not both",
                ));
            }
            if t.netns.is_some() || t.cgroup.is_some() {
                return Err(invalid(
                    format!("{at}.target"),
                    "pod/container already name the cgroup and network namespace: drop netns \
                     and cgroup",
                ));
            }
        } else if t.cgroup.is_none() && (t.netns.is_none() && t.dev.is_none()) {
            return Err(invalid(
                format!("{at}.target"),
                "give a dev (with its netns), a cgroup, a pod or a container",
            ));
        }
        if t.netns.is_some() && t.dev.is_none() {
            return Err(invalid(
                format!("{at}.target.dev"),
                "an interface is required with netns",
            ));
        }
        match &self.action {
            NetAction::Drop { probability: p }
            | NetAction::Duplicate { probability: p }
            | NetAction::Corrupt { probability: p } => probability(at, *p)?,
            NetAction::Reorder {
                probability: p,
                gap,
            } => {
                probability(at, *p)?;
                if *gap == 0 || *gap > 1024 {
                    return Err(invalid(
                        format!("{at}.action.gap"),
                        format!("{gap} must be within 1..=1024"),
                    ));
                }
            }
            NetAction::Delay { base, jitter, .. } => {
                if jitter > base {
                    return Err(invalid(
                        format!("{at}.action.jitter"),
                        format!("{jitter:?} exceeds base {base:?}; delays cannot be negative"),
                    ));
                }
                if *base > Duration::from_secs(10) {
                    return Err(invalid(format!("{at}.action.base"), "at most 10s"));
                }
            }
            NetAction::Rate { bits_per_sec } => {
                if *bits_per_sec < 8_000 {
                    return Err(invalid(
                        format!("{at}.action.bits_per_sec"),
                        "at least 8000 (1 kB/s)",
                    ));
                }
            }
        }
        self.schedule.validate(at)?;
        self.to_engine_fault(at, 0).map(|_| ())
    }

    /// The engine-level fault (without target resolution: `ifindex` and `cgroup_id` stay 0
    /// and are filled in by whoever attaches the programs).
    pub fn to_engine_fault(&self, at: &str, default_seed: u64) -> Result<NetFault, FaultFileError> {
        let action = match self.action {
            NetAction::Drop { probability } => Action::Drop { probability },
            NetAction::Delay {
                base,
                jitter,
                distribution,
            } => Action::Delay {
                base_ns: base.as_nanos() as u64,
                jitter_ns: jitter.as_nanos() as u64,
                normal: distribution == Distribution::Normal,
            },
            NetAction::Reorder { probability, gap } => Action::Reorder {
                probability,
                gap,
                max_hold_ns: REORDER_MAX_HOLD.as_nanos() as u64,
            },
            NetAction::Duplicate { probability } => Action::Duplicate { probability },
            NetAction::Corrupt { probability } => Action::Corrupt { probability },
            NetAction::Rate { bits_per_sec } => Action::Rate { bits_per_sec },
        };
        let cgroup_only = (self.target.cgroup.is_some()
            || self.target.pod.is_some()
            || self.target.container.is_some())
            && self.target.dev.is_none();
        if cgroup_only && action.kind() != "drop" {
            return Err(invalid(
                format!("{at}.action.kind"),
                format!(
                    "{} needs a dev target: cgroup_skb programs can only drop",
                    kind_name(&self.action)
                ),
            ));
        }
        let mut f = NetFault::new(action);
        f.direction = self.direction;
        f.proto = self.proto.map_or(0, Proto::number);
        let spec_err = |field: &str, e: SpecError| invalid(format!("{at}.{field}"), e.to_string());
        if let Some(s) = &self.src {
            f.src = Some(Cidr::parse("src", s).map_err(|e| spec_err("src", e))?);
        }
        if let Some(s) = &self.dst {
            f.dst = Some(Cidr::parse("dst", s).map_err(|e| spec_err("dst", e))?);
        }
        if let Some(s) = &self.sport {
            f.sport = PortRange::parse("sport", s).map_err(|e| spec_err("sport", e))?;
        }
        if let Some(s) = &self.dport {
            f.dport = PortRange::parse("dport", s).map_err(|e| spec_err("dport", e))?;
        }
        f.seed = self.seed.unwrap_or(default_seed);
        Ok(f)
    }
}

impl NetAction {
    /// Whether the action holds packets (delay, reorder, rate): it needs a delay backend
    /// (fq/ifb or the TAP delay line) besides the rule.
    pub fn holds_packets(&self) -> bool {
        matches!(
            self,
            Self::Delay { .. } | Self::Reorder { .. } | Self::Rate { .. }
        )
    }
}

/// The `kind` tag of an action.
pub fn kind_name(a: &NetAction) -> &'static str {
    match a {
        NetAction::Drop { .. } => "drop",
        NetAction::Delay { .. } => "delay",
        NetAction::Reorder { .. } => "reorder",
        NetAction::Duplicate { .. } => "duplicate",
        NetAction::Corrupt { .. } => "corrupt",
        NetAction::Rate { .. } => "rate",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(action: NetAction, target: NetTarget) -> NetFaultSpec {
        NetFaultSpec {
            id: None,
            target,
            direction: Direction::Egress,
            proto: None,
            src: None,
            dst: None,
            sport: None,
            dport: None,
            action,
            seed: Some(1),
            schedule: Schedule::default(),
        }
    }

    #[test]
    fn every_action_reaches_the_engine() {
        let dev = NetTarget {
            netns: Some("n1".into()),
            dev: Some("eth0".into()),
            cgroup: None,
            ..Default::default()
        };
        let delay = NetAction::Delay {
            base: Duration::from_millis(50),
            jitter: Duration::from_millis(10),
            distribution: Distribution::Normal,
        };
        let f = spec(delay.clone(), dev.clone())
            .to_engine_fault("f", 0)
            .unwrap();
        assert_eq!(
            f.action,
            Action::Delay {
                base_ns: 50_000_000,
                jitter_ns: 10_000_000,
                normal: true
            }
        );
        let r = f.to_rule(0, 0).unwrap();
        assert_eq!((r.param1, r.param2, r.param3), (50_000_000, 10_000_000, 1));
        for a in [
            NetAction::Reorder {
                probability: 0.2,
                gap: 3,
            },
            NetAction::Duplicate { probability: 0.1 },
            NetAction::Corrupt { probability: 0.1 },
            NetAction::Rate {
                bits_per_sec: 1_000_000,
            },
        ] {
            let f = spec(a.clone(), dev.clone())
                .to_engine_fault("f", 0)
                .unwrap();
            assert_eq!(f.action.kind(), kind_name(&a));
        }
        let cg = NetTarget {
            netns: None,
            dev: None,
            cgroup: Some("x".into()),
            ..Default::default()
        };
        match spec(delay, cg).validate("net[0]") {
            Err(FaultFileError::Invalid { field, .. }) => assert_eq!(field, "net[0].action.kind"),
            other => panic!("cgroup-only delay must be refused, got {other:?}"),
        }
    }

    #[test]
    fn schedule_window() {
        let s = Schedule {
            start: Some(Duration::from_secs(1)),
            duration: Some(Duration::from_secs(2)),
            expiry: None,
        };
        assert_eq!(s.window(10), (1_000_000_010, 3_000_000_010));
        assert_eq!(
            Schedule::default().window(0),
            (0, DEFAULT_EXPIRY.as_nanos() as u64)
        );
    }
}
