//! Sequential specifications for linearizability checking: the [`Model`] trait and the
//! built-in models (register, cas-register, kv, set, queue, counter, log).

pub mod cas_register;
pub mod counter;
pub mod kv;
pub mod log;
pub mod queue;
pub mod register;
pub mod set;

pub use cas_register::CasRegister;
pub use counter::Counter;
pub use kv::Kv;
pub use log::Log;
pub use queue::Queue;
pub use register::Register;
pub use set::Set;

use crate::history::{HVal, Operation, Status};
use serde_json::Value;
use std::fmt::Debug;
use std::hash::Hash;

/// How one history operation enters the search.
#[derive(Debug, Clone, PartialEq)]
pub enum Encoded<I, O> {
    /// Irrelevant to the model (e.g. a failed write, which never took effect).
    Skip,
    /// An operation to linearize. `output: None` means the outcome is unknown: any result
    /// is accepted, the effect is applied.
    Op {
        /// The argument.
        input: I,
        /// The observed result, if known.
        output: Option<O>,
    },
}

/// Errors turning history operations into model operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The model has no such function.
    #[error("op {index}: model {model} does not know function {f:?}")]
    UnknownFunction {
        /// History position of the invocation.
        index: usize,
        /// Model name.
        model: &'static str,
        /// The function.
        f: String,
    },
    /// The value does not have the shape the function needs.
    #[error("op {index}: {f} expects {expected}, got {got}")]
    BadValue {
        /// History position of the invocation.
        index: usize,
        /// The function.
        f: String,
        /// What shape was expected.
        expected: &'static str,
        /// What was found.
        got: String,
    },
    /// The function needs a key and the op has none.
    #[error("op {index}: {f} needs a key")]
    MissingKey {
        /// History position of the invocation.
        index: usize,
        /// The function.
        f: String,
    },
}

/// A sequential specification. Implement it to check your own data type.
///
/// `step` must be deterministic. When `output` is `None` (unknown outcome) it must return
/// the state after the operation took effect and never reject.
pub trait Model: Sync + Send {
    /// Model state; hashed into the search cache.
    type State: Clone + Eq + Hash + Debug + Send + Sync;
    /// Operation argument.
    type Input: Clone + Debug + Send + Sync;
    /// Operation result.
    type Output: Clone + Debug + Send + Sync;

    /// Short name (`cas-register`, ...).
    fn name(&self) -> &'static str;
    /// The initial state.
    fn init(&self) -> Self::State;
    /// Applies `input` to `state`; `None` if `output` is impossible there.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State>;
    /// Turns a history operation into model input/output.
    fn encode(&self, op: &Operation) -> Result<Encoded<Self::Input, Self::Output>, ModelError>;
    /// Partition (P-compositionality): ops in different partitions are checked
    /// independently. `None` = everything in one partition.
    fn partition(&self, _op: &Operation) -> Option<HVal> {
        None
    }
    /// True when `input` never changes any state (a pure read). The search then places a
    /// legal read at once instead of branching over it. Default: `false` (always sound).
    fn is_read_only(&self, _input: &Self::Input) -> bool {
        false
    }
    /// True when a pending `input` (outcome unknown) can be left out of the search because
    /// none of `outputs` (the results of the completed operations in its partition) can have
    /// observed its effect: taking any valid order and removing the op from it leaves a valid
    /// order, and "never happened" is always allowed for a pending op, so no verdict changes.
    /// Default: `false` (always sound).
    fn unobserved(&self, _input: &Self::Input, _outputs: &[&Self::Output]) -> bool {
        false
    }
    /// Human-readable `f(args) -> result`.
    fn describe(&self, input: &Self::Input, output: Option<&Self::Output>) -> String;
    /// Human-readable state.
    fn describe_state(&self, state: &Self::State) -> String {
        format!("{state:?}")
    }
}

/// Helpers shared by the built-in models.
pub(crate) fn bad(op: &Operation, expected: &'static str, v: &Value) -> ModelError {
    ModelError::BadValue {
        index: op.invoke,
        f: op.f.clone(),
        expected,
        got: v.to_string(),
    }
}

pub(crate) fn unknown_fn(op: &Operation, model: &'static str) -> ModelError {
    ModelError::UnknownFunction {
        index: op.invoke,
        model,
        f: op.f.clone(),
    }
}

/// A write-like op: `fail` never happened, `ok` known, pending unknown.
pub(crate) fn effect<I, O>(op: &Operation, input: I, ack: O) -> Encoded<I, O> {
    match op.status {
        Status::Fail => Encoded::Skip,
        Status::Ok => Encoded::Op {
            input,
            output: Some(ack),
        },
        Status::Pending => Encoded::Op {
            input,
            output: None,
        },
    }
}

/// A read-like op: only `ok` reads carry information.
pub(crate) fn observe<I, O>(
    op: &Operation,
    input: I,
    read: impl FnOnce(&Value) -> Result<O, ModelError>,
) -> Result<Encoded<I, O>, ModelError> {
    Ok(match op.status {
        Status::Ok => Encoded::Op {
            input,
            output: Some(read(&op.output)?),
        },
        _ => Encoded::Skip,
    })
}

/// Parses `[a b]` pairs (cas arguments).
pub(crate) fn pair(op: &Operation, v: &Value) -> Result<(HVal, HVal), ModelError> {
    match v.as_array().map(Vec::as_slice) {
        Some([a, b]) => Ok((HVal::from(a), HVal::from(b))),
        _ => Err(bad(op, "[from to]", v)),
    }
}

/// The value of an op: the completion's if it has one, else the invocation's.
pub(crate) fn arg(op: &Operation) -> &Value {
    if op.input.is_null() {
        &op.output
    } else {
        &op.input
    }
}
