//! Porcupine's Jepsen etcd log (`INFO  jepsen.util - P\t:type\t:f\tVALUE`) import.
//!
//! Mapping (see shared/testdata/README.md): `:fail :cas` stays a `fail` cas (the
//! cas-register model reads it as "compare did not match"); `:fail :read :timed-out`
//! is a failed read (no information); `:info` lines are skipped, leaving that op pending.
//! Lines not from `jepsen.util` are ignored.

use super::FormatError;
use super::edn::parse_value;
use crate::history::{History, Op, OpType, Process};
use serde_json::Value;

/// Parses an etcd log; an empty file gives an empty history.
pub fn parse_etcd(text: &str) -> Result<History, FormatError> {
    let mut ops = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(rest) = line.split_once("jepsen.util - ").map(|(_, r)| r) else {
            continue;
        };
        let bad = || FormatError::EtcdLine {
            line: i + 1,
            text: line.to_string(),
        };
        let mut rest = rest.trim();
        let mut word = || {
            let (w, r) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            rest = r.trim_start();
            w
        };
        let (p, kind, f) = (word(), word(), word());
        if f.is_empty() {
            return Err(bad());
        }
        let process = Process::Id(p.trim().parse().map_err(|_| bad())?);
        let kind = OpType::parse(kind.trim_start_matches(':')).ok_or_else(bad)?;
        let f = f.trim_start_matches(':');
        if kind == OpType::Info {
            // Leaves the invocation open: pending to the end of the history.
            continue;
        }
        let raw = if rest.is_empty() { "nil" } else { rest.trim() };
        let mut value = parse_value(raw).map_err(|_| bad())?;
        if kind == OpType::Fail && f == "read" {
            value = Value::Null;
        }
        ops.push(Op::new(process, kind, f, value));
    }
    Ok(History::new(ops))
}
