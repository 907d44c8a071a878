//! Key-value store (`get`/`read`, `put`/`write`, `append`, `cas [from to]`), partitioned by key.
//!
//! Each key is an independent register whose missing value equals `""` (so `nil` and `""`
//! reads are the same). `append` concatenates strings, or pushes onto a list.

use super::cas_register::encode_cas;
use super::register::{RegIn, RegOut, describe_reg};
use super::{Encoded, Model, ModelError, arg, effect, observe, unknown_fn};
use crate::history::{HVal, Operation};

/// The kv model's per-key input: register ops plus append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvIn {
    /// A register op (get = read, put = write, cas).
    Reg(RegIn),
    /// Append to the value.
    Append(HVal),
}

/// The key-value model (checked one key at a time).
#[derive(Debug, Clone, Copy, Default)]
pub struct Kv;

fn norm(v: HVal) -> HVal {
    if v == HVal::Null {
        HVal::Str(String::new())
    } else {
        v
    }
}

fn append(s: &HVal, v: &HVal) -> HVal {
    match (s, v) {
        (HVal::Str(a), HVal::Str(b)) => {
            let mut out = String::with_capacity(a.len() + b.len());
            out.push_str(a);
            out.push_str(b);
            HVal::Str(out)
        }
        (HVal::List(l), v) => {
            let mut l = l.clone();
            l.push(v.clone());
            HVal::List(l)
        }
        (HVal::Str(a), v) if a.is_empty() => HVal::List(vec![v.clone()]),
        (s, v) => HVal::Str(format!("{s}{v}")),
    }
}

impl Model for Kv {
    type State = HVal;
    type Input = KvIn;
    type Output = RegOut;
    fn name(&self) -> &'static str {
        "kv"
    }
    fn init(&self) -> HVal {
        HVal::Str(String::new())
    }
    fn step(&self, s: &HVal, i: &KvIn, o: Option<&RegOut>) -> Option<HVal> {
        match i {
            KvIn::Reg(RegIn::Read) => match o {
                Some(RegOut::Read(v)) => (v == s).then(|| s.clone()),
                _ => Some(s.clone()),
            },
            KvIn::Reg(r) => super::register::step_reg(s, r, o),
            KvIn::Append(v) => Some(append(s, v)),
        }
    }
    fn encode(&self, op: &Operation) -> Result<Encoded<KvIn, RegOut>, ModelError> {
        if op.key.is_none() {
            return Err(ModelError::MissingKey {
                index: op.invoke,
                f: op.f.clone(),
            });
        }
        let reg = |e: Encoded<RegIn, RegOut>| match e {
            Encoded::Skip => Encoded::Skip,
            Encoded::Op { input, output } => Encoded::Op {
                input: KvIn::Reg(input),
                output,
            },
        };
        Ok(match op.f.as_str() {
            "get" | "read" | "r" => reg(observe(op, RegIn::Read, |v| {
                Ok(RegOut::Read(norm(HVal::from(v))))
            })?),
            "put" | "write" | "w" => reg(effect(
                op,
                RegIn::Write(norm(HVal::from(arg(op)))),
                RegOut::Ack,
            )),
            "append" => effect(op, KvIn::Append(HVal::from(arg(op))), RegOut::Ack),
            "cas" => reg(match encode_cas(op)? {
                Encoded::Op {
                    input: RegIn::Cas(a, b),
                    output,
                } => Encoded::Op {
                    input: RegIn::Cas(norm(a), norm(b)),
                    output,
                },
                other => other,
            }),
            _ => return Err(unknown_fn(op, "kv")),
        })
    }
    fn partition(&self, op: &Operation) -> Option<HVal> {
        op.key.as_ref().map(HVal::from)
    }
    fn describe(&self, i: &KvIn, o: Option<&RegOut>) -> String {
        match i {
            KvIn::Reg(r) => describe_reg(r, o),
            KvIn::Append(v) => format!("append({v})"),
        }
    }
    fn describe_state(&self, s: &HVal) -> String {
        s.to_string()
    }
}
