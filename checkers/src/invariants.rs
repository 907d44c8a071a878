//! Invariant checkers for claims that need no search: no acknowledged write lost, no
//! duplicates, idempotent retries, monotonic reads, counter bounds.
//!
//! Writes are ops whose `f` is `add`, `append`, `write`, `put` or `enqueue`; reads are
//! `read`/`r`/`get` ops whose ok value is a list (or, for counters and monotonic reads, a
//! number). Ops with a key are checked per key.

use crate::history::{HVal, Operation, Status};
use crate::result::{CheckResult, Witness};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Which invariant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Invariant {
    /// Every write acknowledged before a read began is visible to that read.
    NoLostWrites,
    /// No read contains an element twice.
    NoDuplicates,
    /// A retried write (same value invoked more than once) takes effect at most once.
    IdempotentRetries,
    /// Per process and key, reads never go backwards (numbers never decrease, lists only grow).
    MonotonicReads,
    /// Every counter read lies between the acknowledged and the attempted sums.
    CounterBounds,
}

impl Invariant {
    /// Every invariant.
    pub const ALL: [Invariant; 5] = [
        Invariant::NoLostWrites,
        Invariant::NoDuplicates,
        Invariant::IdempotentRetries,
        Invariant::MonotonicReads,
        Invariant::CounterBounds,
    ];

    /// Kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::NoLostWrites => "no-lost-writes",
            Invariant::NoDuplicates => "no-duplicates",
            Invariant::IdempotentRetries => "idempotent-retries",
            Invariant::MonotonicReads => "monotonic-reads",
            Invariant::CounterBounds => "counter-bounds",
        }
    }

    /// Parses a kebab-case name.
    pub fn from_name(s: &str) -> Option<Invariant> {
        Invariant::ALL.into_iter().find(|i| i.name() == s)
    }
}

/// One violated invariant instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Which invariant.
    pub invariant: Invariant,
    /// Operation ids involved.
    pub ops: Vec<usize>,
    /// What happened.
    pub message: String,
}

/// At most this many violations are reported per check.
const MAX_VIOLATIONS: usize = 20;

const WRITES: [&str; 5] = ["add", "append", "write", "put", "enqueue"];
const READS: [&str; 3] = ["read", "r", "get"];

fn is_write(o: &Operation) -> bool {
    WRITES.contains(&o.f.as_str())
}

fn is_read(o: &Operation) -> bool {
    READS.contains(&o.f.as_str()) && o.status == Status::Ok
}

fn key(o: &Operation) -> HVal {
    o.key.as_ref().map_or(HVal::Null, HVal::from)
}

fn written(o: &Operation) -> HVal {
    HVal::from(if o.input.is_null() {
        &o.output
    } else {
        &o.input
    })
}

/// Checks one invariant over paired operations.
pub fn check(inv: Invariant, ops: &[Operation]) -> CheckResult {
    let mut v = match inv {
        Invariant::NoLostWrites => lost_writes(ops),
        Invariant::NoDuplicates => duplicates(ops, false),
        Invariant::IdempotentRetries => duplicates(ops, true),
        Invariant::MonotonicReads => monotonic(ops),
        Invariant::CounterBounds => counter_bounds(ops),
    };
    if v.is_empty() {
        return CheckResult::Ok;
    }
    v.truncate(MAX_VIOLATIONS);
    CheckResult::Illegal {
        witness: Witness::Invariant { violations: v },
    }
}

/// Checks every invariant in `invs`; the first violated one decides.
pub fn check_all(invs: &[Invariant], ops: &[Operation]) -> CheckResult {
    invs.iter()
        .map(|&i| check(i, ops))
        .find(|r| !r.is_ok())
        .unwrap_or(CheckResult::Ok)
}

fn lost_writes(ops: &[Operation]) -> Vec<Violation> {
    // Per key: acked writes sorted by completion; reads sorted by invocation.
    let mut acked: BTreeMap<HVal, Vec<(usize, usize)>> = BTreeMap::new();
    for (i, o) in ops.iter().enumerate() {
        if is_write(o) && o.status == Status::Ok {
            acked
                .entry(key(o))
                .or_default()
                .push((o.complete.unwrap_or(usize::MAX), i));
        }
    }
    for w in acked.values_mut() {
        w.sort_unstable();
    }
    let mut out = Vec::new();
    for r in ops.iter().filter(|o| is_read(o)) {
        let Some(list) = r.output.as_array() else {
            continue;
        };
        let Some(ws) = acked.get(&key(r)) else {
            continue;
        };
        let seen: HashSet<HVal> = list.iter().map(HVal::from).collect();
        for &(done, wi) in ws.iter().take_while(|(done, _)| *done < r.invoke) {
            let _ = done;
            let w = &ops[wi];
            if !seen.contains(&written(w)) {
                out.push(Violation {
                    invariant: Invariant::NoLostWrites,
                    ops: vec![w.id, r.id],
                    message: format!(
                        "{}({}) by process {} was acknowledged (#{}) before the read by process {} began (#{}), but that read does not contain it",
                        w.f, written(w), w.process, w.complete.unwrap_or(0), r.process, r.invoke
                    ),
                });
                if out.len() >= MAX_VIOLATIONS {
                    return out;
                }
            }
        }
    }
    out
}

fn duplicates(ops: &[Operation], retries_only: bool) -> Vec<Violation> {
    let mut attempts: HashMap<(HVal, HVal), Vec<usize>> = HashMap::new();
    for o in ops.iter().filter(|o| is_write(o)) {
        attempts.entry((key(o), written(o))).or_default().push(o.id);
    }
    let mut out = Vec::new();
    for r in ops.iter().filter(|o| is_read(o)) {
        let Some(list) = r.output.as_array() else {
            continue;
        };
        let mut counts: HashMap<HVal, usize> = HashMap::new();
        for x in list {
            *counts.entry(HVal::from(x)).or_default() += 1;
        }
        let mut dups: Vec<_> = counts.into_iter().filter(|(_, c)| *c > 1).collect();
        dups.sort();
        for (x, c) in dups {
            let tries = attempts
                .get(&(key(r), x.clone()))
                .cloned()
                .unwrap_or_default();
            let retried = tries.len() > 1;
            if retries_only != retried {
                continue;
            }
            let (invariant, what) = if retried {
                (
                    Invariant::IdempotentRetries,
                    format!("a write retried {} times", tries.len()),
                )
            } else {
                (Invariant::NoDuplicates, "a single write".to_string())
            };
            let mut ids = tries;
            ids.push(r.id);
            out.push(Violation {
                invariant,
                ops: ids,
                message: format!(
                    "read by process {} (#{}) contains {x} {c} times; it came from {what}",
                    r.process, r.invoke
                ),
            });
        }
    }
    out
}

fn monotonic(ops: &[Operation]) -> Vec<Violation> {
    let mut last: HashMap<(String, HVal), &Operation> = HashMap::new();
    let mut out = Vec::new();
    let mut reads: Vec<&Operation> = ops.iter().filter(|o| is_read(o)).collect();
    reads.sort_by_key(|o| o.invoke);
    for r in reads {
        let k = (r.process.to_string(), key(r));
        if let Some(prev) = last.get(&k) {
            let backwards = match (&prev.output, &r.output) {
                (a, b) if a.is_number() && b.is_number() => b.as_f64() < a.as_f64(),
                (serde_json::Value::Array(a), serde_json::Value::Array(b)) => {
                    let now: HashSet<HVal> = b.iter().map(HVal::from).collect();
                    a.iter().any(|x| !now.contains(&HVal::from(x)))
                }
                _ => false,
            };
            if backwards {
                out.push(Violation {
                    invariant: Invariant::MonotonicReads,
                    ops: vec![prev.id, r.id],
                    message: format!(
                        "process {} read {} (#{}) and later {} (#{}): it went backwards",
                        r.process, prev.output, prev.invoke, r.output, r.invoke
                    ),
                });
            }
        }
        last.insert(k, r);
    }
    out
}

fn counter_bounds(ops: &[Operation]) -> Vec<Violation> {
    let adds: Vec<(&Operation, i64)> = ops
        .iter()
        .filter(|o| matches!(o.f.as_str(), "add" | "inc" | "increment") && o.status != Status::Fail)
        .map(|o| {
            (
                o,
                if o.input.is_null() {
                    1
                } else {
                    o.input.as_i64().unwrap_or(0)
                },
            )
        })
        .collect();
    let mut out = Vec::new();
    for r in ops.iter().filter(|o| is_read(o) && o.key.is_none()) {
        let Some(v) = r.output.as_i64() else { continue };
        let end = r.complete.unwrap_or(usize::MAX);
        let (mut lo, mut hi) = (0i64, 0i64);
        for &(a, d) in &adds {
            let certain = a.status == Status::Ok && a.complete.is_some_and(|c| c < r.invoke);
            let possible = a.invoke < end;
            if certain {
                lo += d;
                hi += d;
            } else if possible {
                lo += d.min(0);
                hi += d.max(0);
            }
        }
        if v < lo || v > hi {
            out.push(Violation {
                invariant: Invariant::CounterBounds,
                ops: vec![r.id],
                message: format!("read by process {} (#{}) returned {v}, outside the possible range [{lo}, {hi}]", r.process, r.invoke),
            });
        }
    }
    out
}
