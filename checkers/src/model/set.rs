//! Grow-only set (`add v`, `read -> [elements]`), initially empty.

use super::{Encoded, Model, ModelError, arg, bad, effect, observe, unknown_fn};
use crate::history::{HVal, Operation};
use std::collections::BTreeSet;

/// Set operation argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetIn {
    /// Add an element.
    Add(HVal),
    /// Read all elements.
    Read,
}

/// Set operation result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetOut {
    /// Add acknowledged.
    Ack,
    /// The elements read.
    Read(BTreeSet<HVal>),
}

/// The set model.
#[derive(Debug, Clone, Copy, Default)]
pub struct Set;

impl Model for Set {
    type State = BTreeSet<HVal>;
    type Input = SetIn;
    type Output = SetOut;
    fn name(&self) -> &'static str {
        "set"
    }
    fn init(&self) -> BTreeSet<HVal> {
        BTreeSet::new()
    }
    fn step(&self, s: &BTreeSet<HVal>, i: &SetIn, o: Option<&SetOut>) -> Option<BTreeSet<HVal>> {
        match (i, o) {
            (SetIn::Add(v), _) => {
                let mut n = s.clone();
                n.insert(v.clone());
                Some(n)
            }
            (SetIn::Read, Some(SetOut::Read(r))) => (r == s).then(|| s.clone()),
            (SetIn::Read, _) => Some(s.clone()),
        }
    }
    fn encode(&self, op: &Operation) -> Result<Encoded<SetIn, SetOut>, ModelError> {
        match op.f.as_str() {
            "add" => Ok(effect(op, SetIn::Add(HVal::from(arg(op))), SetOut::Ack)),
            "read" | "r" => observe(op, SetIn::Read, |v| match v.as_array() {
                Some(a) => Ok(SetOut::Read(a.iter().map(HVal::from).collect())),
                None => Err(bad(op, "an array of elements", v)),
            }),
            _ => Err(unknown_fn(op, "set")),
        }
    }
    fn is_read_only(&self, i: &Self::Input) -> bool {
        matches!(i, SetIn::Read)
    }
    /// A pending add of an element no completed read contains: every completed read was
    /// ordered before it (a read returns the whole set), so removing it changes none.
    fn unobserved(&self, i: &SetIn, outputs: &[&SetOut]) -> bool {
        match i {
            SetIn::Add(v) => !outputs
                .iter()
                .any(|o| matches!(o, SetOut::Read(r) if r.contains(v))),
            SetIn::Read => false,
        }
    }
    fn describe(&self, i: &SetIn, o: Option<&SetOut>) -> String {
        match (i, o) {
            (SetIn::Add(v), _) => format!("add({v})"),
            (SetIn::Read, Some(SetOut::Read(r))) => format!("read() -> {}", fmt_set(r)),
            (SetIn::Read, _) => "read() -> ?".to_string(),
        }
    }
    fn describe_state(&self, s: &BTreeSet<HVal>) -> String {
        fmt_set(s)
    }
}

fn fmt_set(s: &BTreeSet<HVal>) -> String {
    let items: Vec<String> = s.iter().map(HVal::to_string).collect();
    format!("#{{{}}}", items.join(" "))
}
