//! Append-only log (`append v`, `read -> [entries]`), initially empty.

use super::{Encoded, Model, ModelError, arg, bad, effect, observe, unknown_fn};
use crate::history::{HVal, Operation};

/// Log operation argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogIn {
    /// Append an entry at the end.
    Append(HVal),
    /// Read the whole log.
    Read,
}

/// The append-only log model; a read returns every entry in order.
#[derive(Debug, Clone, Copy, Default)]
pub struct Log;

impl Model for Log {
    type State = Vec<HVal>;
    type Input = LogIn;
    type Output = Vec<HVal>;
    fn name(&self) -> &'static str {
        "log"
    }
    fn init(&self) -> Vec<HVal> {
        Vec::new()
    }
    fn step(&self, s: &Vec<HVal>, i: &LogIn, o: Option<&Vec<HVal>>) -> Option<Vec<HVal>> {
        match i {
            LogIn::Append(v) => {
                let mut n = s.clone();
                n.push(v.clone());
                Some(n)
            }
            LogIn::Read => match o {
                Some(r) if r != s => None,
                _ => Some(s.clone()),
            },
        }
    }
    fn encode(&self, op: &Operation) -> Result<Encoded<LogIn, Vec<HVal>>, ModelError> {
        match op.f.as_str() {
            "append" => Ok(effect(op, LogIn::Append(HVal::from(arg(op))), Vec::new())),
            "read" | "r" => observe(op, LogIn::Read, |v| match v.as_array() {
                Some(a) => Ok(a.iter().map(HVal::from).collect()),
                None if v.is_null() => Ok(Vec::new()),
                None => Err(bad(op, "an array of entries", v)),
            }),
            _ => Err(unknown_fn(op, "log")),
        }
    }
    fn is_read_only(&self, i: &Self::Input) -> bool {
        matches!(i, LogIn::Read)
    }
    /// A pending append of an entry no completed read contains: every completed read was
    /// ordered before it (a read returns the whole log), so removing it changes none.
    fn unobserved(&self, i: &LogIn, outputs: &[&Vec<HVal>]) -> bool {
        match i {
            LogIn::Append(v) => !outputs.iter().any(|o| o.contains(v)),
            LogIn::Read => false,
        }
    }
    fn describe(&self, i: &LogIn, o: Option<&Vec<HVal>>) -> String {
        match i {
            LogIn::Append(v) => format!("append({v})"),
            LogIn::Read => format!(
                "read() -> {}",
                o.map_or("?".to_string(), |r| self.describe_state(r))
            ),
        }
    }
    fn describe_state(&self, s: &Vec<HVal>) -> String {
        let items: Vec<String> = s.iter().map(HVal::to_string).collect();
        format!("[{}]", items.join(" "))
    }
}
