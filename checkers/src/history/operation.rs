//! Pairing of invocation and completion events into whole [`Operation`]s.

use super::{History, HistoryError, OpType, Process};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Completed with `ok`: it took effect.
    Ok,
    /// Completed with `fail`: it did not take effect (models may give this a meaning,
    /// e.g. a failed cas whose compare did not match).
    Fail,
    /// Completed with `info` or never: it may take effect at any time after its
    /// invocation, or never.
    Pending,
}

/// One client operation: its invocation and (if any) its completion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Operation {
    /// Dense id (0..n) in invocation order.
    pub id: usize,
    /// Issuing process.
    pub process: Process,
    /// Function (from the invocation).
    pub f: String,
    /// Key, from the completion if present, else from the invocation.
    pub key: Option<Value>,
    /// Value at invocation (the argument).
    pub input: Value,
    /// Value at completion (the result); `Null` when pending.
    pub output: Value,
    /// How it ended.
    pub status: Status,
    /// History position of the invocation.
    pub invoke: usize,
    /// History position of the completion (`None` for never-completed ops; `info`
    /// completions are recorded here but still make the op [`Status::Pending`]).
    pub complete: Option<usize>,
}

impl Operation {
    /// True when the outcome is unknown.
    pub fn is_pending(&self) -> bool {
        self.status == Status::Pending
    }

    /// Position before which the op must have taken effect (`None`: no bound).
    pub fn deadline(&self) -> Option<usize> {
        if self.is_pending() {
            None
        } else {
            self.complete
        }
    }
}

pub(super) fn pair(history: &History) -> Result<Vec<Operation>, HistoryError> {
    let mut out: Vec<Operation> = Vec::new();
    let mut open: HashMap<&Process, usize> = HashMap::new();
    for (i, op) in history.ops.iter().enumerate() {
        if op.process.is_nemesis() {
            continue;
        }
        match op.kind {
            OpType::Invoke => {
                // A still-open op of this process stays pending.
                open.insert(&op.process, out.len());
                out.push(Operation {
                    id: out.len(),
                    process: op.process.clone(),
                    f: op.f.clone(),
                    key: op.key.clone(),
                    input: op.value.clone(),
                    output: Value::Null,
                    status: Status::Pending,
                    invoke: i,
                    complete: None,
                });
            }
            kind => {
                let Some(id) = open.remove(&op.process) else {
                    if kind == OpType::Info {
                        continue;
                    }
                    return Err(HistoryError::UnmatchedCompletion {
                        index: i,
                        process: op.process.to_string(),
                        kind: kind.as_str(),
                    });
                };
                let o = &mut out[id];
                o.complete = Some(i);
                o.output = op.value.clone();
                if op.key.is_some() {
                    o.key = op.key.clone();
                }
                o.status = match kind {
                    OpType::Ok => Status::Ok,
                    OpType::Fail => Status::Fail,
                    _ => Status::Pending,
                };
            }
        }
    }
    Ok(out)
}
