//! Counter (`add n` / `inc`, `read -> n`), initially 0.

use super::{Encoded, Model, ModelError, arg, bad, effect, observe, unknown_fn};
use crate::history::Operation;

/// Counter operation argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CounterIn {
    /// Add a (possibly negative) delta.
    Add(i64),
    /// Read the total.
    Read,
}

/// The counter model; the output of a read is the total.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counter;

impl Model for Counter {
    type State = i64;
    type Input = CounterIn;
    type Output = i64;
    fn name(&self) -> &'static str {
        "counter"
    }
    fn init(&self) -> i64 {
        0
    }
    fn step(&self, s: &i64, i: &CounterIn, o: Option<&i64>) -> Option<i64> {
        match i {
            CounterIn::Add(d) => Some(s.wrapping_add(*d)),
            CounterIn::Read => match o {
                Some(v) if v != s => None,
                _ => Some(*s),
            },
        }
    }
    fn encode(&self, op: &Operation) -> Result<Encoded<CounterIn, i64>, ModelError> {
        match op.f.as_str() {
            "add" | "inc" | "increment" => {
                let v = arg(op);
                let d = if v.is_null() {
                    1
                } else {
                    v.as_i64().ok_or_else(|| bad(op, "an integer delta", v))?
                };
                Ok(effect(op, CounterIn::Add(d), 0))
            }
            "read" | "r" => observe(op, CounterIn::Read, |v| {
                v.as_i64().ok_or_else(|| bad(op, "an integer", v))
            }),
            _ => Err(unknown_fn(op, "counter")),
        }
    }
    fn is_read_only(&self, i: &Self::Input) -> bool {
        matches!(i, CounterIn::Read)
    }
    fn describe(&self, i: &CounterIn, o: Option<&i64>) -> String {
        match i {
            CounterIn::Add(d) => format!("add({d})"),
            CounterIn::Read => format!("read() -> {}", o.map_or("?".to_string(), i64::to_string)),
        }
    }
    fn describe_state(&self, s: &i64) -> String {
        s.to_string()
    }
}
