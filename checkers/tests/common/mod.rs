//! Helpers to write small histories by hand.
#![allow(dead_code)]

use checkers::{History, Op, OpType, Process};
use serde_json::Value;

/// One event: process, type, f, value.
pub fn ev(p: i64, t: &str, f: &str, v: Value) -> Op {
    Op::new(Process::Id(p), OpType::parse(t).expect("type"), f, v)
}

/// One keyed event.
pub fn kev(p: i64, t: &str, f: &str, k: &str, v: Value) -> Op {
    ev(p, t, f, v).with_key(Value::from(k))
}

/// A history from events.
pub fn hist(ops: Vec<Op>) -> History {
    History::new(ops)
}

/// A complete single-process op: invoke with `arg`, ok with `res`.
pub fn call(p: i64, f: &str, arg: Value, res: Value) -> Vec<Op> {
    vec![ev(p, "invoke", f, arg), ev(p, "ok", f, res)]
}
