//! FIFO queue (`enqueue v`, `dequeue -> v | nil when empty`), initially empty.

use super::{Encoded, Model, ModelError, arg, effect, observe, unknown_fn};
use crate::history::{HVal, Operation};
use std::collections::VecDeque;

/// Queue operation argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueIn {
    /// Append at the tail.
    Enqueue(HVal),
    /// Remove from the head.
    Dequeue,
}

/// The FIFO queue model. Result of `dequeue` is the element, `Null` if empty.
#[derive(Debug, Clone, Copy, Default)]
pub struct Queue;

impl Model for Queue {
    type State = VecDeque<HVal>;
    type Input = QueueIn;
    type Output = HVal;
    fn name(&self) -> &'static str {
        "queue"
    }
    fn init(&self) -> VecDeque<HVal> {
        VecDeque::new()
    }
    fn step(&self, s: &VecDeque<HVal>, i: &QueueIn, o: Option<&HVal>) -> Option<VecDeque<HVal>> {
        match i {
            QueueIn::Enqueue(v) => {
                let mut n = s.clone();
                n.push_back(v.clone());
                Some(n)
            }
            QueueIn::Dequeue => {
                let head = s.front().cloned().unwrap_or(HVal::Null);
                if o.is_some_and(|o| *o != head) {
                    return None;
                }
                let mut n = s.clone();
                n.pop_front();
                Some(n)
            }
        }
    }
    fn encode(&self, op: &Operation) -> Result<Encoded<QueueIn, HVal>, ModelError> {
        match op.f.as_str() {
            "enqueue" | "push" | "offer" => Ok(effect(
                op,
                QueueIn::Enqueue(HVal::from(arg(op))),
                HVal::Null,
            )),
            "dequeue" | "pop" | "poll" => match op.status {
                // A dequeue of unknown outcome may have removed the head.
                crate::history::Status::Pending => Ok(Encoded::Op {
                    input: QueueIn::Dequeue,
                    output: None,
                }),
                _ => observe(op, QueueIn::Dequeue, |v| Ok(HVal::from(v))),
            },
            _ => Err(unknown_fn(op, "queue")),
        }
    }
    /// A pending enqueue of a value no completed dequeue returned: if it took effect, its
    /// element was never at the head when a completed dequeue ran (they returned other values)
    /// and the queue was not empty then (a dequeue saw empty only without it), so removing it
    /// changes no completed result.
    fn unobserved(&self, i: &QueueIn, outputs: &[&HVal]) -> bool {
        match i {
            QueueIn::Enqueue(v) => !outputs.contains(&v),
            QueueIn::Dequeue => false,
        }
    }
    fn describe(&self, i: &QueueIn, o: Option<&HVal>) -> String {
        match i {
            QueueIn::Enqueue(v) => format!("enqueue({v})"),
            QueueIn::Dequeue => format!(
                "dequeue() -> {}",
                o.map_or("?".to_string(), HVal::to_string)
            ),
        }
    }
    fn describe_state(&self, s: &VecDeque<HVal>) -> String {
        let items: Vec<String> = s.iter().map(HVal::to_string).collect();
        format!("[{}]", items.join(" "))
    }
}
