//! A network fault as users write it (CLI, fault files, API) and its translation to a kernel rule.

use std::{net::Ipv4Addr, str::FromStr, time::Duration};

use dst_common::net::{
    ACTION_CORRUPT, ACTION_COUNT, ACTION_DELAY, ACTION_DROP, ACTION_DUPLICATE, ACTION_RATE,
    ACTION_REORDER, DIST_NORMAL, DIST_UNIFORM, EDT_HIST_BUCKETS, EDT_RATE_MAX_BACKLOG_NS, NetRule,
    PROB_ALWAYS, RULE_ACTIVE, RULE_EDT, RULE_EDT_IFB, RULE_EGRESS, RULE_INGRESS,
    probability_to_threshold,
};
use serde::{Deserialize, Serialize};

/// Invalid fault specification; each variant names the field at fault.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpecError {
    /// A probability outside 0..=1.
    #[error("{field}: probability {value} is outside 0..1")]
    Probability {
        /// The field.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// A port range whose start is after its end, or not a number.
    #[error("{field}: {value:?} is not a port or a range N-M with N <= M")]
    PortRange {
        /// The field.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// A CIDR that does not parse.
    #[error("{field}: {value:?} is not an IPv4 address or CIDR like 10.0.0.0/24")]
    Cidr {
        /// The field.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// This action is not carried by the engine version in use.
    #[error("action {0}: no backend on this build carries it yet")]
    Unsupported(&'static str),
}

/// Which direction of traffic a fault applies to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Packets entering the interface.
    Ingress,
    /// Packets leaving the interface.
    #[default]
    Egress,
    /// Both.
    Both,
}

/// An inclusive port range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRange {
    /// First port.
    pub lo: u16,
    /// Last port.
    pub hi: u16,
}

impl PortRange {
    /// Every port.
    pub const ANY: Self = Self {
        lo: 0,
        hi: u16::MAX,
    };

    /// Parses `N` or `N-M`.
    pub fn parse(field: &'static str, s: &str) -> Result<Self, SpecError> {
        let bad = || SpecError::PortRange {
            field,
            value: s.to_string(),
        };
        let (lo, hi) = match s.split_once('-') {
            Some((a, b)) => (
                a.trim().parse().map_err(|_| bad())?,
                b.trim().parse().map_err(|_| bad())?,
            ),
            None => {
                let p = s.trim().parse().map_err(|_| bad())?;
                (p, p)
            }
        };
        if lo > hi {
            return Err(bad());
        }
        Ok(Self { lo, hi })
    }
}

/// An IPv4 network (address + prefix length).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cidr {
    /// Network address.
    pub addr: Ipv4Addr,
    /// Prefix length 0..=32.
    pub prefix: u8,
}

impl Cidr {
    /// Parses `A.B.C.D` or `A.B.C.D/N`.
    pub fn parse(field: &'static str, s: &str) -> Result<Self, SpecError> {
        let bad = || SpecError::Cidr {
            field,
            value: s.to_string(),
        };
        let (a, p) = s.split_once('/').unwrap_or((s, "32"));
        let addr = Ipv4Addr::from_str(a.trim()).map_err(|_| bad())?;
        let prefix: u8 = p.trim().parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Ok(Self { addr, prefix })
    }

    /// (address, mask) in network byte order as the kernel compares them.
    fn to_kernel(self) -> (u32, u32) {
        let mask = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        };
        let addr = u32::from(self.addr) & mask;
        (addr.to_be(), mask.to_be())
    }
}

/// What to do with matched packets.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Action {
    /// Drop with the given probability.
    Drop {
        /// 0..=1.
        probability: f64,
    },
    /// Only count matching packets (observation).
    Count,
    /// Hold every matched packet for `base_ns` ± `jitter_ns` (delay line or EDT).
    Delay {
        /// Mean delay in ns.
        base_ns: u64,
        /// Spread in ns (uniform half-width or normal standard deviation).
        jitter_ns: u64,
        /// `true` = normal distribution, `false` = uniform.
        normal: bool,
    },
    /// With `probability`, hold a packet until `gap` later matched packets have been decided
    /// by the kernel and at least one of them went past (or `max_hold_ns` elapsed).
    Reorder {
        /// 0..=1.
        probability: f64,
        /// Later packets that must go by first.
        gap: u32,
        /// Upper bound on the hold when traffic stops.
        max_hold_ns: u64,
    },
    /// Send the packet twice with `probability`.
    Duplicate {
        /// 0..=1.
        probability: f64,
    },
    /// Flip the lowest bit of the last byte with `probability` (checksum left as is).
    Corrupt {
        /// 0..=1.
        probability: f64,
    },
    /// Pace matched traffic to `bits_per_sec` through the delay line (tail drop beyond 1 s of
    /// backlog).
    Rate {
        /// Bits per second.
        bits_per_sec: u64,
    },
}

impl Action {
    /// Whether the action is carried by a delay line (or EDT) rather than by the classifier alone.
    pub fn needs_delay_line(&self) -> bool {
        matches!(
            self,
            Self::Delay { .. } | Self::Reorder { .. } | Self::Rate { .. }
        )
    }

    /// Short name of the action kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Drop { .. } => "drop",
            Self::Count => "count",
            Self::Delay { .. } => "delay",
            Self::Reorder { .. } => "reorder",
            Self::Duplicate { .. } => "duplicate",
            Self::Corrupt { .. } => "corrupt",
            Self::Rate { .. } => "rate",
        }
    }
}

/// One network fault.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetFault {
    /// Interface index to act on (0 = every interface the programs are attached to).
    pub ifindex: u32,
    /// Direction.
    pub direction: Direction,
    /// IP protocol number (0 = any).
    pub proto: u8,
    /// Source network.
    pub src: Option<Cidr>,
    /// Destination network.
    pub dst: Option<Cidr>,
    /// Source ports.
    pub sport: PortRange,
    /// Destination ports.
    pub dport: PortRange,
    /// The action.
    pub action: Action,
    /// Seed of the decision stream.
    pub seed: u64,
    /// cgroup id the sending socket must belong to (0 = any).
    pub cgroup_id: u64,
    /// Carry delay / reorder / rate with EDT (`skb->tstamp` + fq) instead of the delay line.
    #[serde(default)]
    pub edt: bool,
    /// With `edt` on ingress: ifindex of the `ifb` device (with fq) that holds the packets.
    #[serde(default)]
    pub edt_ifb: u32,
}

impl NetFault {
    /// A fault matching everything with `action`.
    pub fn new(action: Action) -> Self {
        Self {
            ifindex: 0,
            direction: Direction::Egress,
            proto: 0,
            src: None,
            dst: None,
            sport: PortRange::ANY,
            dport: PortRange::ANY,
            action,
            seed: 0,
            cgroup_id: 0,
            edt: false,
            edt_ifb: 0,
        }
    }

    /// The largest delay this fault can give a packet (sizes the EDT delay histogram).
    pub fn max_delay_ns(&self) -> u64 {
        match self.action {
            Action::Delay {
                base_ns,
                jitter_ns,
                normal,
            } => base_ns + if normal { 4 * jitter_ns } else { jitter_ns },
            Action::Reorder { max_hold_ns, .. } => max_hold_ns,
            Action::Rate { .. } => EDT_RATE_MAX_BACKLOG_NS,
            _ => 0,
        }
    }

    /// Checks the fields; the same checks run before anything touches the kernel.
    pub fn validate(&self) -> Result<(), SpecError> {
        let (field, p) = match self.action {
            Action::Drop { probability } => ("drop", probability),
            Action::Reorder { probability, .. } => ("reorder", probability),
            Action::Duplicate { probability } => ("duplicate", probability),
            Action::Corrupt { probability } => ("corrupt", probability),
            _ => return Ok(()),
        };
        if (0.0..=1.0).contains(&p) {
            Ok(())
        } else {
            Err(SpecError::Probability { field, value: p })
        }
    }

    /// The kernel rule for this fault, live from `not_before_ns` until `expires_ns`
    /// (CLOCK_MONOTONIC; 0 = never expires).
    pub fn to_rule(&self, not_before_ns: u64, expires_ns: u64) -> Result<NetRule, SpecError> {
        self.validate()?;
        let dir = match self.direction {
            Direction::Ingress => RULE_INGRESS,
            Direction::Egress => RULE_EGRESS,
            Direction::Both => RULE_INGRESS | RULE_EGRESS,
        };
        let (mut param1, mut param2, mut param3) = (0u64, 0u64, DIST_UNIFORM);
        let (action, probability) = match self.action {
            Action::Drop { probability } => (ACTION_DROP, probability_to_threshold(probability)),
            Action::Count => (ACTION_COUNT, PROB_ALWAYS),
            Action::Delay {
                base_ns,
                jitter_ns,
                normal,
            } => {
                (param1, param2) = (base_ns, jitter_ns);
                if normal {
                    param3 = DIST_NORMAL;
                }
                (ACTION_DELAY, PROB_ALWAYS)
            }
            Action::Reorder {
                probability,
                gap,
                max_hold_ns,
            } => {
                (param1, param2) = (max_hold_ns, u64::from(gap));
                (ACTION_REORDER, probability_to_threshold(probability))
            }
            Action::Duplicate { probability } => {
                (ACTION_DUPLICATE, probability_to_threshold(probability))
            }
            Action::Corrupt { probability } => {
                (ACTION_CORRUPT, probability_to_threshold(probability))
            }
            Action::Rate { bits_per_sec } => {
                param1 = bits_per_sec;
                (ACTION_RATE, PROB_ALWAYS)
            }
        };
        let mut flags = RULE_ACTIVE | dir;
        if self.edt {
            flags |= RULE_EDT;
            if self.edt_ifb != 0 {
                flags |= RULE_EDT_IFB;
            }
        }
        let (src_addr, src_mask) = self.src.map(Cidr::to_kernel).unwrap_or((0, 0));
        let (dst_addr, dst_mask) = self.dst.map(Cidr::to_kernel).unwrap_or((0, 0));
        Ok(NetRule {
            flags,
            hist_shift: hist_shift(self.max_delay_ns()),
            edt_ifb: self.edt_ifb,
            action,
            ifindex: self.ifindex,
            proto: self.proto,
            src_addr,
            src_mask,
            dst_addr,
            dst_mask,
            sport_lo: self.sport.lo,
            sport_hi: self.sport.hi,
            dport_lo: self.dport.lo,
            dport_hi: self.dport.hi,
            probability,
            param1,
            param2,
            param3,
            not_before_ns,
            expires_ns,
            seed: self.seed,
            cgroup_id: self.cgroup_id,
            ..NetRule::default()
        })
    }
}

/// The smallest shift that puts `max_ns` into the last EDT histogram bucket or below.
pub fn hist_shift(max_ns: u64) -> u8 {
    let mut s = 0u8;
    while s < 63 && (max_ns >> s) >= u64::from(EDT_HIST_BUCKETS) {
        s += 1;
    }
    s
}

/// CLOCK_MONOTONIC now in ns — the clock `bpf_ktime_get_ns` reads, shared by evidence and history.
pub fn monotonic_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

/// Absolute expiry for a fault that should last `d` from now.
pub fn expiry_after(d: Duration) -> u64 {
    monotonic_ns().saturating_add(d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges() {
        assert_eq!(
            PortRange::parse("dport", "80"),
            Ok(PortRange { lo: 80, hi: 80 })
        );
        assert_eq!(
            PortRange::parse("dport", "1000-2000"),
            Ok(PortRange { lo: 1000, hi: 2000 })
        );
        assert!(PortRange::parse("dport", "2000-1000").is_err());
        assert!(PortRange::parse("dport", "x").is_err());
        assert!(PortRange::parse("dport", "70000").is_err());
    }

    #[test]
    fn cidr_to_kernel_order() {
        let c = Cidr::parse("dst", "10.1.2.3/24").unwrap();
        let (a, m) = c.to_kernel();
        assert_eq!(a.to_ne_bytes(), [10, 1, 2, 0]);
        assert_eq!(m.to_ne_bytes(), [255, 255, 255, 0]);
        assert!(Cidr::parse("dst", "10.1.2.3/33").is_err());
        assert_eq!(Cidr::parse("dst", "0.0.0.0/0").unwrap().to_kernel(), (0, 0));
    }

    #[test]
    fn bad_probability_is_refused_with_field() {
        let f = NetFault::new(Action::Drop { probability: 1.5 });
        assert_eq!(
            f.to_rule(0, 0),
            Err(SpecError::Probability {
                field: "drop",
                value: 1.5
            })
        );
    }

    #[test]
    fn edt_rules_carry_the_flags_and_histogram_scale() {
        let mut f = NetFault::new(Action::Delay {
            base_ns: 50_000_000,
            jitter_ns: 10_000_000,
            normal: false,
        });
        let r = f.to_rule(0, 0).unwrap();
        assert_eq!(r.flags & (RULE_EDT | RULE_EDT_IFB), 0);
        f.edt = true;
        f.edt_ifb = 7;
        let r = f.to_rule(0, 0).unwrap();
        assert_eq!(r.flags & (RULE_EDT | RULE_EDT_IFB), RULE_EDT | RULE_EDT_IFB);
        assert_eq!(r.edt_ifb, 7);
        // 60 ms over 256 buckets: 2^18 ns (262 us) per bucket.
        assert_eq!(r.hist_shift, 18);
        assert!((60_000_000u64 >> r.hist_shift) < 256);
        assert_eq!(hist_shift(0), 0);
    }

    #[test]
    fn rule_layout() {
        let mut f = NetFault::new(Action::Drop { probability: 1.0 });
        f.direction = Direction::Both;
        f.proto = 17;
        f.dport = PortRange { lo: 9000, hi: 9000 };
        let r = f.to_rule(5, 10).unwrap();
        assert_eq!(r.flags, RULE_ACTIVE | RULE_INGRESS | RULE_EGRESS);
        assert_eq!(
            (r.dport_lo, r.dport_hi, r.sport_lo, r.sport_hi),
            (9000, 9000, 0, 65535)
        );
        assert_eq!(
            (r.not_before_ns, r.expires_ns, r.probability),
            (5, 10, u32::MAX)
        );
    }
}
