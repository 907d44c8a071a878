//! Read/write register with initial value nil; also the shared register op types.

use super::{Encoded, Model, ModelError, arg, effect, observe, unknown_fn};
use crate::history::{HVal, Operation};

/// A register operation's argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegIn {
    /// Read the value.
    Read,
    /// Overwrite the value.
    Write(HVal),
    /// Compare-and-set `[from to]`.
    Cas(HVal, HVal),
}

/// A register operation's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegOut {
    /// The value read.
    Read(HVal),
    /// Write acknowledged.
    Ack,
    /// Whether the cas compare matched (a `fail` cas is `CasDone(false)`).
    CasDone(bool),
}

/// A read/write register (`read`, `write`), initially nil.
#[derive(Debug, Clone, Copy, Default)]
pub struct Register;

pub(crate) fn step_reg(s: &HVal, i: &RegIn, o: Option<&RegOut>) -> Option<HVal> {
    match (i, o) {
        (RegIn::Read, Some(RegOut::Read(v))) => (v == s).then(|| s.clone()),
        (RegIn::Read, _) => Some(s.clone()),
        (RegIn::Write(v), _) => Some(v.clone()),
        (RegIn::Cas(from, to), out) => {
            let matched = from == s;
            match out {
                Some(RegOut::CasDone(ok)) if *ok != matched => None,
                _ => Some(if matched { to.clone() } else { s.clone() }),
            }
        }
    }
}

pub(crate) fn describe_reg(i: &RegIn, o: Option<&RegOut>) -> String {
    let res = match o {
        None => "?".to_string(),
        Some(RegOut::Read(v)) => v.to_string(),
        Some(RegOut::Ack) => "ok".to_string(),
        Some(RegOut::CasDone(b)) => (if *b { "ok" } else { "fail" }).to_string(),
    };
    match i {
        RegIn::Read => format!("read() -> {res}"),
        RegIn::Write(v) => format!("write({v}) -> {res}"),
        RegIn::Cas(a, b) => format!("cas({a}, {b}) -> {res}"),
    }
}

pub(crate) fn encode_read_write(
    op: &Operation,
) -> Result<Option<Encoded<RegIn, RegOut>>, ModelError> {
    Ok(Some(match op.f.as_str() {
        "read" | "r" | "get" => observe(op, RegIn::Read, |v| Ok(RegOut::Read(HVal::from(v))))?,
        "write" | "w" | "put" => effect(op, RegIn::Write(HVal::from(arg(op))), RegOut::Ack),
        _ => return Ok(None),
    }))
}

impl Model for Register {
    type State = HVal;
    type Input = RegIn;
    type Output = RegOut;
    fn name(&self) -> &'static str {
        "register"
    }
    fn init(&self) -> HVal {
        HVal::Null
    }
    fn step(&self, s: &HVal, i: &RegIn, o: Option<&RegOut>) -> Option<HVal> {
        step_reg(s, i, o)
    }
    fn encode(&self, op: &Operation) -> Result<Encoded<RegIn, RegOut>, ModelError> {
        encode_read_write(op)?.ok_or_else(|| unknown_fn(op, "register"))
    }
    fn is_read_only(&self, i: &Self::Input) -> bool {
        matches!(i, RegIn::Read)
    }
    fn describe(&self, i: &RegIn, o: Option<&RegOut>) -> String {
        describe_reg(i, o)
    }
    fn describe_state(&self, s: &HVal) -> String {
        s.to_string()
    }
}
