//! The history model: one recorded event per [`Op`], the whole run as a [`History`].
//!
//! Matches the DESIGN.md JSONL contract
//! `{"index","time","process","type":"invoke"|"ok"|"fail"|"info","f","key"?,"value"}`.

mod operation;
mod value;

pub use operation::{Operation, Status};
pub use value::HVal;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Which kind of event an [`Op`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    /// The client started the operation.
    Invoke,
    /// The operation completed and took effect.
    Ok,
    /// The operation definitely did not take effect.
    Fail,
    /// Outcome unknown: it may have taken effect at any point after its invocation, or never.
    Info,
}

impl OpType {
    /// The lowercase name used by JSONL and EDN (`invoke`, `ok`, `fail`, `info`).
    pub fn as_str(self) -> &'static str {
        match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        }
    }

    /// Parses `invoke|ok|fail|info` (no leading colon).
    pub fn parse(s: &str) -> Option<OpType> {
        Some(match s {
            "invoke" => OpType::Invoke,
            "ok" => OpType::Ok,
            "fail" => OpType::Fail,
            "info" => OpType::Info,
            _ => return None,
        })
    }
}

/// The logical client that issued an operation: a number, or a name such as `nemesis`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Process {
    /// A numbered client process.
    Id(i64),
    /// A named process (Jepsen uses `nemesis` for the fault injector).
    Name(String),
}

impl Process {
    /// True for the fault-injecting process (`nemesis`), whose ops are fault windows, not data.
    pub fn is_nemesis(&self) -> bool {
        matches!(self, Process::Name(n) if n == "nemesis")
    }
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Id(i) => write!(f, "{i}"),
            Process::Name(n) => f.write_str(n),
        }
    }
}

/// One history event (one JSONL line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// Position in the history (0-based); assigned from the line order when absent.
    #[serde(default)]
    pub index: Option<u64>,
    /// Wall-clock or monotonic time in nanoseconds, if recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<i64>,
    /// Which client issued it.
    pub process: Process,
    /// invoke / ok / fail / info.
    #[serde(rename = "type")]
    pub kind: OpType,
    /// The operation's function, e.g. `read`, `write`, `cas`, `append`, `txn`.
    pub f: String,
    /// The key, for keyed workloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Value>,
    /// Argument on invoke, result on completion.
    #[serde(default)]
    pub value: Value,
}

impl Op {
    /// Builds an op with no index, time or key.
    pub fn new(process: Process, kind: OpType, f: &str, value: Value) -> Op {
        Op {
            index: None,
            time: None,
            process,
            kind,
            f: f.to_string(),
            key: None,
            value,
        }
    }

    /// Same op with a key.
    pub fn with_key(mut self, key: Value) -> Op {
        self.key = Some(key);
        self
    }
}

/// A fault window recovered from nemesis events (`start`…`stop`), in history positions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultWindow {
    /// Position of the event that opened the window.
    pub start: usize,
    /// Position of the event that closed it (`None`: still open at the end).
    pub end: Option<usize>,
    /// What the nemesis did (its `f` and value).
    pub label: String,
}

/// A whole recorded run, in the order events happened.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct History {
    /// The events; `ops[i].index == Some(i)` after [`History::new`].
    pub ops: Vec<Op>,
}

/// Structural problems that make a history unusable for checking.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    /// An `ok`/`fail` completion whose process had no open invocation.
    #[error("op {index}: {kind} completion for process {process} with no open invocation")]
    UnmatchedCompletion {
        /// History position of the completion.
        index: usize,
        /// Its process.
        process: String,
        /// `ok` or `fail`.
        kind: &'static str,
    },
    /// The history is too large for a checker's index type.
    #[error("history has {ops} operations, more than the supported {max}")]
    TooLarge {
        /// Operations in the history.
        ops: usize,
        /// Supported maximum.
        max: usize,
    },
}

impl History {
    /// Wraps events, numbering them by position (any recorded `index` is replaced).
    pub fn new(mut ops: Vec<Op>) -> History {
        for (i, op) in ops.iter_mut().enumerate() {
            op.index = Some(i as u64);
        }
        History { ops }
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when there are no events.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Pairs invocations with completions (see [`Operation`]), skipping nemesis events.
    ///
    /// An invocation never completed, or completed by `info`, is pending. A process that
    /// invokes again while an op is still open leaves that op pending (Jepsen would have
    /// given it a fresh process id). A stray `info` without invocation is ignored.
    pub fn operations(&self) -> Result<Vec<Operation>, HistoryError> {
        operation::pair(self)
    }

    /// Landing counters sampled during fault windows: nemesis `landing` events carrying
    /// `{"id": ..., "applied": n}`, per nemesis id as (event position, applied so far).
    pub fn landing_series(&self) -> std::collections::BTreeMap<String, Vec<(usize, u64)>> {
        let mut out: std::collections::BTreeMap<String, Vec<(usize, u64)>> = Default::default();
        for (i, op) in self.ops.iter().enumerate() {
            if !op.process.is_nemesis() || op.f != "landing" {
                continue;
            }
            if let (Some(id), Some(n)) = (op.value["id"].as_str(), op.value["applied"].as_u64()) {
                out.entry(id.to_string()).or_default().push((i, n));
            }
        }
        out
    }

    /// Fault windows from nemesis events: a `start*`/`partition*` event opens one, the
    /// last of the following `stop*`/`heal*` events (invoke or completion) closes it.
    pub fn fault_windows(&self) -> Vec<FaultWindow> {
        let mut out: Vec<FaultWindow> = Vec::new();
        let mut open: Option<usize> = None;
        let mut closing: Option<usize> = None;
        for (i, op) in self.ops.iter().enumerate() {
            if !op.process.is_nemesis() {
                continue;
            }
            if op.f.starts_with("start") || op.f.starts_with("partition") {
                if open.is_none() {
                    let label = match &op.value {
                        Value::Null => op.f.clone(),
                        v => format!("{} {}", op.f, v),
                    };
                    open = Some(out.len());
                    closing = None;
                    out.push(FaultWindow {
                        start: i,
                        end: None,
                        label,
                    });
                }
            } else if (op.f.starts_with("stop") || op.f.starts_with("heal"))
                && let Some(w) = open.take().or(closing)
            {
                out[w].end = Some(i);
                closing = Some(w);
            }
        }
        out
    }
}
