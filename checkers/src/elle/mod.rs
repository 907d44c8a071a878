//! Elle-style transactional checking for list-append and rw-register workloads: infer
//! version orders, build the ww/wr/rw/process/realtime dependency graph, find cycles in
//! its strongly connected components, and report non-cycle anomalies (G1a, G1b, internal,
//! lost update, duplicates).
//!
//! Operations have `f: "txn"` and a value that is a list of micro-ops `[f, key, value]`:
//! `append`/`r` (list-append) or `w`/`r` (rw-register). Reads carry `nil` on invocation and
//! the observed value on completion.

pub mod anomaly;
mod cycles;
pub mod generate;
pub mod graph;
pub mod list_append;
pub mod rw_register;
pub mod scc;

pub use anomaly::{Anomaly, ConsistencyModel};

use crate::history::{HVal, Operation, Status};
use crate::result::{CheckResult, Witness};
use graph::{Graph, PROCESS, REALTIME};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

/// Errors in a transactional history's shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElleError {
    /// The op's value is not a list of `[f key value]` micro-ops.
    #[error("op {index}: transaction value must be a list of [f key value] micro-ops, got {got}")]
    BadTxn {
        /// History position of the invocation.
        index: usize,
        /// What was found.
        got: String,
    },
    /// A micro-op function this workload does not have.
    #[error("op {index}: unknown micro-op {f:?} for the {workload} workload")]
    BadMicroOp {
        /// History position of the invocation.
        index: usize,
        /// The micro-op function.
        f: String,
        /// `list-append` or `rw-register`.
        workload: &'static str,
    },
}

/// Evidence for transactional anomalies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ElleWitness {
    /// Distinct anomaly names found, sorted.
    pub anomaly_types: Vec<String>,
    /// The weakest consistency model the history violates.
    pub weakest_violated: ConsistencyModel,
    /// Every model ruled out (the weakest and all stronger).
    pub not: Vec<ConsistencyModel>,
    /// The anomalies (at most 8 of each type).
    pub anomalies: Vec<Anomaly>,
}

impl ElleWitness {
    /// Builds the witness; `None` when there are no anomalies.
    pub fn from_anomalies(mut anomalies: Vec<Anomaly>) -> Option<ElleWitness> {
        let weakest = anomalies.iter().map(|a| a.violates).min()?;
        let mut counts: HashMap<String, usize> = HashMap::new();
        anomalies.retain(|a| {
            let c = counts.entry(a.name.clone()).or_default();
            *c += 1;
            *c <= 8
        });
        let mut types: Vec<String> = counts.into_keys().collect();
        types.sort();
        Some(ElleWitness {
            anomaly_types: types,
            weakest_violated: weakest,
            not: ConsistencyModel::ALL
                .into_iter()
                .filter(|m| *m >= weakest)
                .collect(),
            anomalies,
        })
    }

    /// Plain-text rendering.
    pub fn render(&self) -> String {
        let mut s = format!(
            "anomalies: {}\nviolates {} (and so: {})\n",
            self.anomaly_types.join(", "),
            self.weakest_violated.name(),
            self.not
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
        for a in &self.anomalies {
            s.push_str(&format!(
                "\n{} (rules out {}):\n{}",
                a.name,
                a.violates.name(),
                a.explanation
            ));
            if !a.explanation.ends_with('\n') {
                s.push('\n');
            }
        }
        s
    }

    /// Operation ids mentioned (for highlighting).
    pub fn op_ids(&self) -> Vec<usize> {
        self.anomalies
            .iter()
            .flat_map(|a| a.ops.iter().copied())
            .collect()
    }
}

/// Turns anomalies into a check result.
pub fn to_result(anomalies: Vec<Anomaly>) -> CheckResult {
    match ElleWitness::from_anomalies(anomalies) {
        None => CheckResult::Ok,
        Some(w) => CheckResult::Illegal {
            witness: Witness::Transactional(w),
        },
    }
}

/// One transaction: an operation and its micro-ops `(f, key, value)`.
#[derive(Debug, Clone)]
pub(crate) struct Txn {
    /// Index into the operation slice.
    pub op: usize,
    pub status: Status,
    pub mops: Vec<(String, HVal, Value)>,
}

/// Extracts the transactions (ops with a list value; others are ignored).
pub(crate) fn txns(ops: &[Operation]) -> Result<Vec<Txn>, ElleError> {
    let mut out = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        if op.f != "txn" {
            continue;
        }
        let v = if op.status == Status::Ok {
            &op.output
        } else {
            &op.input
        };
        let bad = || ElleError::BadTxn {
            index: op.invoke,
            got: v.to_string(),
        };
        let list = v.as_array().ok_or_else(bad)?;
        let mut mops = Vec::with_capacity(list.len());
        for m in list {
            match m.as_array().map(Vec::as_slice) {
                Some([f, k, v]) => mops.push((
                    f.as_str().ok_or_else(bad)?.to_string(),
                    HVal::from(k),
                    v.clone(),
                )),
                _ => return Err(bad()),
            }
        }
        out.push(Txn {
            op: i,
            status: op.status,
            mops,
        });
    }
    Ok(out)
}

/// Adds process-order and real-time edges between the non-failed transactions (only
/// committed ones have outgoing order edges).
pub(crate) fn add_order_edges(g: &mut Graph, ops: &[Operation], txns: &[Txn]) {
    let mut by_process: HashMap<&crate::history::Process, usize> = HashMap::new();
    // (position, is_completion, txn)
    let mut events: Vec<(usize, bool, usize)> = Vec::new();
    for (t, txn) in txns.iter().enumerate() {
        if txn.status == Status::Fail {
            continue;
        }
        let op = &ops[txn.op];
        // An indeterminate (info) txn may have committed after later ones: no order out of it.
        if let Some(prev) = by_process.insert(&op.process, t)
            && txns[prev].status == Status::Ok
        {
            g.add(prev, t, PROCESS);
        }
        events.push((op.invoke, false, t));
        if txn.status == Status::Ok
            && let Some(c) = op.complete
        {
            events.push((c, true, t));
        }
    }
    events.sort_unstable();
    // Frontier: completed txns not yet implied by a later completed one.
    let mut frontier: Vec<usize> = Vec::new();
    let mut preds: HashMap<usize, Vec<usize>> = HashMap::new();
    for (_, done, t) in events {
        if !done {
            for &p in &frontier {
                g.add(p, t, REALTIME);
            }
            preds.insert(t, frontier.clone());
        } else {
            let before = preds.remove(&t).unwrap_or_default();
            frontier.retain(|f| !before.contains(f));
            frontier.push(t);
        }
    }
}

/// Short text of a transaction for explanations.
pub(crate) fn show_txn(ops: &[Operation], txn: &Txn) -> String {
    let op = &ops[txn.op];
    let mops: Vec<String> = txn
        .mops
        .iter()
        .map(|(f, k, v)| format!("[{f} {k} {v}]"))
        .collect();
    let status = match txn.status {
        Status::Ok => "ok",
        Status::Fail => "fail",
        Status::Pending => "info",
    };
    format!(
        "{{process {}, {status}, op #{}: [{}]}}",
        op.process,
        op.invoke,
        mops.join(" ")
    )
}
