//! The run's operation history as it is recorded: client operations and nemesis entries in the
//! order they happened, each with a monotonic index and a CLOCK_MONOTONIC timestamp — the clock
//! the kernel's fault counters use, so ops and fault windows join.
//!
//! Every event also goes to the durable recorder (`history.jsonl`, group commit), so a crash of
//! dst mid-run leaves everything recorded up to the last commit on disk. The recorder stamps its
//! own `time` at write and keeps the event's time as `client_time`; indices are the same because
//! events are pushed and submitted under one lock.

use std::{path::Path, sync::Mutex};

use checkers::history::{Op, OpType, Process};
use serde_json::Value;

use crate::{
    history::{HistoryError, Recorder},
    net::spec::monotonic_ns,
};

/// Append-only, thread-safe history of one run.
pub struct HistoryLog {
    ops: Mutex<Vec<Op>>,
    recorder: Option<Recorder>,
}

impl HistoryLog {
    /// A history kept in memory only.
    pub fn in_memory() -> Self {
        Self {
            ops: Mutex::new(Vec::new()),
            recorder: None,
        }
    }

    /// A history also written durably to `path` (created fresh).
    pub fn durable(path: &Path) -> Result<Self, HistoryError> {
        let _ = std::fs::remove_file(path);
        Ok(Self {
            ops: Mutex::new(Vec::new()),
            recorder: Some(Recorder::open(path)?),
        })
    }

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
        if let Some(r) = &self.recorder
            && let Ok(v) = serde_json::to_value(&op)
            && let Ok(m) = crate::history::normalize_op("op", v)
        {
            // Not awaited: the recorder group-commits in order; `close` waits for the rest.
            drop(r.submit(vec![m]));
        }
        ops.push(op);
        index
    }

    /// Everything recorded so far.
    pub fn snapshot(&self) -> Vec<Op> {
        self.ops.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Writes and syncs everything queued, then stops the recorder.
    pub fn close(&self) {
        if let Some(r) = &self.recorder {
            r.close();
        }
    }
}
