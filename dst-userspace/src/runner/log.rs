//! The run's operation history as it is recorded: client operations and nemesis entries in the
//! order they happened, each with a monotonic index and a CLOCK_MONOTONIC timestamp — the clock
//! the kernel's fault counters use, so ops and fault windows join.

use std::sync::Mutex;

use checkers::history::{Op, OpType, Process};
use serde_json::Value;

use crate::net::spec::monotonic_ns;

/// Append-only, thread-safe history of one run.
#[derive(Default)]
pub struct HistoryLog {
    ops: Mutex<Vec<Op>>,
}

impl HistoryLog {
    /// Records one event and returns its index.
    pub fn record(
        &self,
        process: Process,
        kind: OpType,
        f: &str,
        key: Option<Value>,
        value: Value,
    ) -> u64 {
        let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        let index = ops.len() as u64;
        let mut op = Op::new(process, kind, f, value);
        op.index = Some(index);
        op.time = Some(monotonic_ns() as i64);
        op.key = key;
        ops.push(op);
        index
    }

    /// Everything recorded so far.
    pub fn snapshot(&self) -> Vec<Op> {
        self.ops.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// JSONL of the history (the DESIGN.md schema), one op per line.
pub fn to_jsonl(ops: &[Op]) -> String {
    let mut out = String::new();
    for op in ops {
        out.push_str(&serde_json::to_string(op).expect("ops serialize"));
        out.push('\n');
    }
    out
}
