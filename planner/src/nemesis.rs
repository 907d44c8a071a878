//! Named nemeses a plan may use instead of spelling out a fault file: what each does, which
//! runner partition shape carries it, or why the runner does not carry it yet.

use serde::Serialize;

/// A named nemesis (`name = "partition-halves"` in a scenario's `[[scenario.nemesis]]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct NamedNemesis {
    /// Name used in plans.
    pub name: &'static str,
    /// What it does to the topology.
    pub effect: &'static str,
    /// How many `targets` (host names `n1`..) it takes: (min, max).
    pub targets: (usize, usize),
    /// The runner's partition shape that carries it (`isolate`, `halves`, ...), if any.
    pub shape: Option<&'static str>,
    /// For nemeses the runner does not carry: why, and what to use instead.
    pub why_not: &'static str,
}

impl NamedNemesis {
    /// True when `dst run` schedules it with landing evidence.
    pub fn carried_by_dst(&self) -> bool {
        self.shape.is_some()
    }
}

const NOT_SCHEDULED: &str = "the dst fault engine applies it (dst inject net / dst fault apply) but the runner's nemesis schedule carries only partition shapes so far: run it by hand and keep the evidence";

/// Every named nemesis.
pub const NAMED_NEMESES: &[NamedNemesis] = &[
    NamedNemesis {
        name: "isolate-node",
        effect: "cut one host (the target, or one chosen by the seed) off from all others",
        targets: (0, 1),
        shape: Some("isolate"),
        why_not: "",
    },
    NamedNemesis {
        name: "partition-halves",
        effect: "split the hosts into two halves (a random split from the seed)",
        targets: (0, 0),
        shape: Some("halves"),
        why_not: "",
    },
    NamedNemesis {
        name: "majorities-ring",
        effect: "each host sees a majority, no two hosts the same one (Jepsen's majorities ring)",
        targets: (0, 0),
        shape: Some("majorities-ring"),
        why_not: "",
    },
    NamedNemesis {
        name: "bridge",
        effect: "two halves joined by one host that sees both",
        targets: (0, 0),
        shape: Some("bridge"),
        why_not: "",
    },
    NamedNemesis {
        name: "packet-loss",
        effect: "drop a fraction of the target hosts' packets",
        targets: (1, 16),
        shape: None,
        why_not: NOT_SCHEDULED,
    },
    NamedNemesis {
        name: "slow-network",
        effect: "delay the target hosts' packets",
        targets: (1, 16),
        shape: None,
        why_not: NOT_SCHEDULED,
    },
    NamedNemesis {
        name: "duplicate-packets",
        effect: "send a fraction of the target hosts' packets twice",
        targets: (1, 16),
        shape: None,
        why_not: NOT_SCHEDULED,
    },
    NamedNemesis {
        name: "kill-node",
        effect: "SIGKILL the target hosts' process and restart it when the window ends",
        targets: (1, 16),
        shape: None,
        why_not: "the runner does not schedule process faults yet: kill and restart by hand (dst inject process) and keep the exit evidence",
    },
    NamedNemesis {
        name: "pause-node",
        effect: "SIGSTOP the target hosts' process for the window, then SIGCONT",
        targets: (1, 16),
        shape: None,
        why_not: "the runner does not schedule process faults yet: pause by hand (dst inject process) and keep the evidence",
    },
    NamedNemesis {
        name: "fsync-eio",
        effect: "make fsync/fdatasync of the target hosts' process fail with EIO",
        targets: (1, 16),
        shape: None,
        why_not: "the runner does not schedule syscall faults yet: use dst inject syscall by hand and keep its counters",
    },
    NamedNemesis {
        name: "clock-skew",
        effect: "shift the target hosts' wall clock",
        targets: (1, 16),
        shape: None,
        why_not: "dst has no clock fault: use a time namespace, libfaketime, or a model checker / simulator",
    },
];

/// Looks a named nemesis up.
pub fn find(name: &str) -> Option<&'static NamedNemesis> {
    NAMED_NEMESES.iter().find(|n| n.name == name)
}

/// The 1-based host number of a target name (`n3` → 3).
pub fn host_number(target: &str) -> Option<usize> {
    target
        .strip_prefix('n')?
        .parse()
        .ok()
        .filter(|&n: &usize| n >= 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_uncarried_ones_say_why() {
        for (i, n) in NAMED_NEMESES.iter().enumerate() {
            assert!(
                NAMED_NEMESES[..i].iter().all(|m| m.name != n.name),
                "{}",
                n.name
            );
            assert_eq!(n.carried_by_dst(), n.why_not.is_empty(), "{}", n.name);
            assert!(n.targets.0 <= n.targets.1, "{}", n.name);
            assert_eq!(find(n.name), Some(n));
        }
        assert_eq!(find("gremlins"), None);
    }

    #[test]
    fn host_numbers() {
        let cases = [
            ("n1", Some(1)),
            ("n12", Some(12)),
            ("n0", None),
            ("h1", None),
            ("n", None),
        ];
        for (t, want) in cases {
            assert_eq!(host_number(t), want, "{t}");
        }
    }
}
