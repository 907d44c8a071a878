//! The technique catalog: which testing technique fits which failure mechanism, what carries it
//! (dst features or external tools) and what counts as evidence; plus the selection helper.

use serde::Serialize;

use crate::mechanism::Mechanism;

/// One testing technique as plans reference it (`technique = "jepsen-elle"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Technique {
    /// Catalog id used in plans.
    pub id: &'static str,
    /// Human name.
    pub name: &'static str,
    /// What it is best for.
    pub best_for: &'static str,
    /// Symptoms or claims that call for it.
    pub symptoms: &'static [&'static str],
    /// Mechanisms it is a good fit for (drives [`suggest`]).
    pub mechanisms: &'static [Mechanism],
    /// dst features that carry it.
    pub dst_features: &'static [&'static str],
    /// External tools that carry it.
    pub external_tools: &'static [&'static str],
    /// What counts as evidence that it was really applied and decided.
    pub evidence: &'static str,
    /// True when `dst run` can execute a scenario of this technique end to end.
    pub carried_by_dst: bool,
}

use Mechanism::*;

/// Every technique a plan may name.
pub const TECHNIQUES: &[Technique] = &[
    Technique {
        id: "jepsen-elle",
        name: "Jepsen/Elle-style history checking",
        best_for: "consistency claims (linearizable, serializable, snapshot isolation) under faults, decided from a recorded client history",
        symptoms: &[
            "stale or lost reads after failover",
            "acknowledged writes missing later",
            "anomalies only visible across several clients",
        ],
        mechanisms: &[Partition, PacketLoss, SlowNetwork, Crash, Concurrency],
        dst_features: &[
            "dst run (workload history JSONL + nemesis schedule)",
            "dst check --model (linearizability, Elle list-append / rw-register)",
        ],
        external_tools: &["Jepsen", "Elle", "Porcupine", "Knossos", "Maelstrom"],
        evidence: "history file with enough ok ops inside each fault window, checker result (decided), per-fault landing counters",
        carried_by_dst: true,
    },
    Technique {
        id: "deterministic-simulation",
        name: "Deterministic simulation testing",
        best_for: "exploring rare interleavings and timing with exact replay from a seed",
        symptoms: &[
            "heisenbugs that vanish on re-run",
            "races between timers, retries and message arrival",
            "bugs needing many rare events in sequence",
        ],
        mechanisms: &[Concurrency, Clock, PacketLoss, SlowNetwork, Crash],
        dst_features: &[],
        external_tools: &[
            "madsim",
            "turmoil",
            "shuttle / loom",
            "FoundationDB-style simulator",
            "Antithesis",
        ],
        evidence: "simulator seed list and count of explored executions, invariant assertions in the simulated code, a replayable failing seed if any",
        carried_by_dst: false,
    },
    Technique {
        id: "chaos-real-cluster",
        name: "Chaos / fault injection on a real cluster",
        best_for: "availability, convergence and recovery claims of the real binaries, kernel and network stack",
        symptoms: &[
            "cluster does not recover after a fault heals",
            "timeouts and retries misbehave under latency or loss",
            "leader election storms",
        ],
        mechanisms: &[Partition, PacketLoss, SlowNetwork, Overload, Config],
        dst_features: &[
            "dst inject net / partition",
            "dst fault apply (fault files)",
            "dst run nemesis schedule with kernel landing evidence",
        ],
        external_tools: &[
            "Chaos Mesh",
            "LitmusChaos",
            "toxiproxy",
            "tc netem",
            "Pumba",
        ],
        evidence: "per-fault evidence (matched/applied counters, first/last applied time, landed=true) and the workload or invariant result over the same window",
        carried_by_dst: true,
    },
    Technique {
        id: "fuzzing-sanitizers",
        name: "Fuzzing under sanitizers",
        best_for: "parsers, codecs, state machines and message handlers fed hostile or malformed input",
        symptoms: &[
            "crashes on corrupted or truncated messages",
            "memory errors, undefined behaviour, panics on input",
        ],
        mechanisms: &[PacketLoss, Concurrency, Config],
        dst_features: &["dst inject net corrupt/duplicate (on-the-wire mutation)"],
        external_tools: &[
            "cargo-fuzz / libFuzzer",
            "AFL++",
            "ASan / TSan / MSan",
            "Go native fuzzing",
        ],
        evidence: "fuzzer corpus size, executions and coverage reached, sanitizer logs, minimized crashing inputs",
        carried_by_dst: false,
    },
    Technique {
        id: "formal-methods-tla",
        name: "Formal methods (TLA+ / model checking)",
        best_for: "protocol-level safety and liveness (elections, commit rules, reconfiguration) before or beside code",
        symptoms: &[
            "protocol argument relies on timing or clock assumptions",
            "membership change or leader handover corner cases",
            "two leaders or divergent logs suspected",
        ],
        mechanisms: &[Clock, Config, Concurrency, Partition],
        dst_features: &[],
        external_tools: &["TLA+ / TLC", "Apalache", "P language", "Alloy"],
        evidence: "the spec, the model-checker configuration, number of distinct states explored and the invariant list checked (or a counterexample trace)",
        carried_by_dst: false,
    },
    Technique {
        id: "crash-recovery",
        name: "Crash-recovery testing",
        best_for: "durability claims: what is acknowledged survives process crash, power loss and storage errors",
        symptoms: &[
            "acknowledged data lost after restart",
            "corruption after torn or failed writes",
            "fsync errors ignored",
        ],
        mechanisms: &[Crash, DiskFault],
        dst_features: &[
            "dst run nemesis kill-node / pause-node",
            "dst syscall faults (fsync/write errno)",
            "dst check --model over the history across restarts",
        ],
        external_tools: &[
            "ALICE",
            "CrashMonkey",
            "dm-flakey / dm-log-writes",
            "LazyFS",
        ],
        evidence: "crash/kill events observed (exit tracepoint), syscall fault counters, restart completed, checker decided over the history spanning the crash",
        carried_by_dst: true,
    },
];

/// Looks a technique up by id.
pub fn find(id: &str) -> Option<&'static Technique> {
    TECHNIQUES.iter().find(|t| t.id == id)
}

/// The catalog as a Markdown table (what `dst plan techniques` prints).
pub fn render_techniques() -> String {
    let mut out = String::from(
        "| id | technique | best for | symptoms that call for it | carried by | evidence | dst runs it |\n|---|---|---|---|---|---|---|\n",
    );
    for t in TECHNIQUES {
        let carried: Vec<&str> = t
            .dst_features
            .iter()
            .chain(t.external_tools.iter())
            .copied()
            .collect();
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} |\n",
            t.id,
            t.name,
            t.best_for,
            t.symptoms.join("; "),
            carried.join("; "),
            t.evidence,
            if t.carried_by_dst {
                "yes"
            } else {
                "no (manual)"
            },
        ));
    }
    out
}

/// The catalog as pretty JSON (what `dst plan techniques --json` prints).
pub fn techniques_json() -> String {
    serde_json::to_string_pretty(TECHNIQUES).unwrap_or_else(|_| "[]".to_owned())
}

/// Suggests techniques for a set of mechanisms, best first: each technique with the reason
/// (which of the given mechanisms it fits). Techniques that fit more of them come first; ties
/// keep catalog order.
pub fn suggest(mechanisms: &[Mechanism]) -> Vec<(&'static Technique, String)> {
    let mut scored: Vec<(usize, usize, &'static Technique, String)> = TECHNIQUES
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let mut hits: Vec<&str> = mechanisms
                .iter()
                .filter(|m| t.mechanisms.contains(m))
                .map(|m| m.name())
                .collect();
            hits.sort_unstable();
            hits.dedup();
            (!hits.is_empty()).then(|| {
                let why = format!("fits {}: {}", hits.join(", "), t.best_for);
                (hits.len(), i, t, why)
            })
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(_, _, t, why)| (t, why)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_has_the_six_techniques_each_complete() {
        let ids: Vec<&str> = TECHNIQUES.iter().map(|t| t.id).collect();
        assert_eq!(
            ids,
            [
                "jepsen-elle",
                "deterministic-simulation",
                "chaos-real-cluster",
                "fuzzing-sanitizers",
                "formal-methods-tla",
                "crash-recovery"
            ]
        );
        for t in TECHNIQUES {
            assert!(!t.best_for.is_empty() && !t.evidence.is_empty(), "{}", t.id);
            assert!(
                !t.symptoms.is_empty() && !t.mechanisms.is_empty(),
                "{}",
                t.id
            );
            assert!(
                !(t.dst_features.is_empty() && t.external_tools.is_empty()),
                "{}",
                t.id
            );
            let carried = ["jepsen-elle", "chaos-real-cluster", "crash-recovery"];
            assert_eq!(t.carried_by_dst, carried.contains(&t.id), "{}", t.id);
        }
    }

    #[test]
    fn suggestions_follow_mechanisms() {
        let cases: [(&[Mechanism], &str); 5] = [
            (&[Mechanism::DiskFault], "crash-recovery"),
            (&[Mechanism::Crash, Mechanism::DiskFault], "crash-recovery"),
            (&[Mechanism::Clock, Mechanism::Config], "formal-methods-tla"),
            (&[Mechanism::Partition, Mechanism::Crash], "jepsen-elle"),
            (&[Mechanism::Overload], "chaos-real-cluster"),
        ];
        for (mechs, first) in cases {
            let got = suggest(mechs);
            assert_eq!(got[0].0.id, first, "{mechs:?}");
            assert!(got[0].1.starts_with("fits "), "{}", got[0].1);
        }
        assert!(suggest(&[]).is_empty());
    }

    #[test]
    fn renders_every_technique_as_table_and_json() {
        let md = render_techniques();
        let json: serde_json::Value = serde_json::from_str(&techniques_json()).unwrap();
        for t in TECHNIQUES {
            assert!(md.contains(&format!("`{}`", t.id)));
        }
        assert_eq!(json.as_array().unwrap().len(), TECHNIQUES.len());
        assert_eq!(json[0]["mechanisms"][0], "partition");
    }
}
