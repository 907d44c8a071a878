//! Failure mechanisms: the small closed vocabulary a hypothesis uses to say *how* a claim breaks.

use serde::{Deserialize, Serialize};

/// How a failure-mode hypothesis says the system breaks. Drives technique suggestions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mechanism {
    /// Nodes cannot reach each other (full, partial or asymmetric partition).
    Partition,
    /// Packets are dropped, duplicated, reordered or corrupted.
    PacketLoss,
    /// Messages arrive late: latency, jitter, bandwidth limits.
    SlowNetwork,
    /// Clocks disagree or jump (skew, drift, leap).
    Clock,
    /// A process dies or pauses and restarts from what it persisted.
    Crash,
    /// Storage fails: fsync/write errors, torn writes, full disk.
    DiskFault,
    /// More load than the system can serve: queues, timeouts, retries.
    Overload,
    /// Interleavings of concurrent operations or internal threads.
    Concurrency,
    /// Wrong or changing configuration: membership change, flags, versions.
    Config,
}

impl Mechanism {
    /// Every mechanism, in declaration order.
    pub const ALL: [Mechanism; 9] = [
        Self::Partition,
        Self::PacketLoss,
        Self::SlowNetwork,
        Self::Clock,
        Self::Crash,
        Self::DiskFault,
        Self::Overload,
        Self::Concurrency,
        Self::Config,
    ];

    /// The name used in plans (`disk-fault`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Partition => "partition",
            Self::PacketLoss => "packet-loss",
            Self::SlowNetwork => "slow-network",
            Self::Clock => "clock",
            Self::Crash => "crash",
            Self::DiskFault => "disk-fault",
            Self::Overload => "overload",
            Self::Concurrency => "concurrency",
            Self::Config => "config",
        }
    }

    /// Parses a plan name (`slow-network`); `None` if unknown.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_from_name() {
        for m in Mechanism::ALL {
            assert_eq!(Mechanism::from_name(m.name()), Some(m));
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.name()));
        }
        assert_eq!(Mechanism::from_name("gremlins"), None);
    }
}
