//! Compare-and-set register (`read`, `write`, `cas [from to]`), initial value nil.
//!
//! A `fail` cas is an executed cas whose compare did not match (Jepsen/etcd convention);
//! a cas of unknown outcome must be `info`.

use super::register::{RegIn, RegOut, describe_reg, encode_read_write, step_reg};
use super::{Encoded, Model, ModelError, pair, unknown_fn};
use crate::history::{HVal, Operation, Status};

/// The cas-register model.
#[derive(Debug, Clone, Copy, Default)]
pub struct CasRegister;

pub(crate) fn encode_cas(op: &Operation) -> Result<Encoded<RegIn, RegOut>, ModelError> {
    let (from, to) = pair(
        op,
        if op.input.is_null() {
            &op.output
        } else {
            &op.input
        },
    )?;
    let input = RegIn::Cas(from, to);
    Ok(match op.status {
        Status::Ok => Encoded::Op {
            input,
            output: Some(RegOut::CasDone(true)),
        },
        Status::Fail => Encoded::Op {
            input,
            output: Some(RegOut::CasDone(false)),
        },
        Status::Pending => Encoded::Op {
            input,
            output: None,
        },
    })
}

impl Model for CasRegister {
    type State = HVal;
    type Input = RegIn;
    type Output = RegOut;
    fn name(&self) -> &'static str {
        "cas-register"
    }
    fn init(&self) -> HVal {
        HVal::Null
    }
    fn step(&self, s: &HVal, i: &RegIn, o: Option<&RegOut>) -> Option<HVal> {
        step_reg(s, i, o)
    }
    fn encode(&self, op: &Operation) -> Result<Encoded<RegIn, RegOut>, ModelError> {
        if op.f == "cas" {
            return encode_cas(op);
        }
        encode_read_write(op)?.ok_or_else(|| unknown_fn(op, "cas-register"))
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
