//! The readable evidence for a non-linearizable partition: the longest linearizable prefix
//! and the operations that could not be placed after it.

use super::search::Entry;
use crate::history::Operation;
use crate::model::Model;
use serde::Serialize;

/// How many prefix operations and candidates a witness shows.
const SHOW: usize = 8;

/// One operation as shown in a witness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WitnessOp {
    /// Operation id (see [`Operation::id`]).
    pub op: usize,
    /// Issuing process.
    pub process: String,
    /// History position of the invocation.
    pub invoke: usize,
    /// History position of the completion, if any.
    pub complete: Option<usize>,
    /// `f(args) -> result` in the model's words.
    pub description: String,
}

/// Evidence that a partition has no linearization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinWitness {
    /// The model checked.
    pub model: String,
    /// The partition key (kv: the key), if partitioned.
    pub partition: Option<String>,
    /// Length of the longest linearizable prefix found.
    pub prefix_len: usize,
    /// Its last operations, in linearization order (at most 8).
    pub prefix_tail: Vec<WitnessOp>,
    /// Model state after that prefix.
    pub state: String,
    /// Operations that would have to come next but cannot (illegal from that state, or
    /// legal but leading nowhere); at most 8.
    pub unplaced: Vec<UnplacedOp>,
}

/// A candidate that could not be placed after the prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnplacedOp {
    /// The operation.
    #[serde(flatten)]
    pub op: WitnessOp,
    /// True when the model rejects it right after the prefix; false when it is accepted
    /// there but no continuation places every completed operation.
    pub illegal_here: bool,
}

impl LinWitness {
    /// Operation ids the witness mentions (for highlighting).
    pub fn op_ids(&self) -> Vec<usize> {
        self.prefix_tail
            .iter()
            .map(|o| o.op)
            .chain(self.unplaced.iter().map(|u| u.op.op))
            .collect()
    }

    /// A few lines of plain text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        if let Some(p) = &self.partition {
            s.push_str(&format!("partition (key) {p}\n"));
        }
        s.push_str(&format!(
            "longest linearizable prefix: {} ops{}\n",
            self.prefix_len,
            if self.prefix_len > self.prefix_tail.len() {
                ", ending with:"
            } else {
                ":"
            }
        ));
        for o in &self.prefix_tail {
            s.push_str(&format!(
                "  p{:<4} #{:<5} {}\n",
                o.process, o.invoke, o.description
            ));
        }
        s.push_str(&format!("state after prefix: {}\n", self.state));
        s.push_str("could not be placed next:\n");
        for u in &self.unplaced {
            let why = if u.illegal_here {
                "illegal in that state"
            } else {
                "legal, but leads to a dead end"
            };
            s.push_str(&format!(
                "  p{:<4} #{:<5} {}  ({why})\n",
                u.op.process, u.op.invoke, u.op.description
            ));
        }
        s
    }
}

pub(crate) fn build<M: Model>(
    model: &M,
    ops: &[Operation],
    entries: &[Entry<M::Input, M::Output>],
    partition: Option<String>,
    prefix: &[usize],
    state: &M::State,
) -> LinWitness {
    let show = |i: usize| {
        let e = &entries[i];
        let o = &ops[e.op];
        WitnessOp {
            op: o.id,
            process: o.process.to_string(),
            invoke: o.invoke,
            complete: o.complete,
            description: model.describe(&e.input, e.output.as_ref()),
        }
    };
    let mut placed = vec![false; entries.len()];
    for &i in prefix {
        placed[i] = true;
    }
    let horizon = entries
        .iter()
        .enumerate()
        .filter(|(i, _)| !placed[*i])
        .filter_map(|(_, e)| e.ret)
        .min()
        .unwrap_or(usize::MAX);
    let mut unplaced: Vec<UnplacedOp> = entries
        .iter()
        .enumerate()
        .filter(|(i, e)| !placed[*i] && e.call < horizon)
        .map(|(i, e)| UnplacedOp {
            op: show(i),
            illegal_here: model.step(state, &e.input, e.output.as_ref()).is_none(),
        })
        .collect();
    unplaced.sort_by_key(|u| (!u.illegal_here, u.op.invoke));
    unplaced.truncate(SHOW);
    let tail = prefix.len().saturating_sub(SHOW);
    LinWitness {
        model: model.name().to_string(),
        partition,
        prefix_len: prefix.len(),
        prefix_tail: prefix[tail..].iter().map(|&i| show(i)).collect(),
        state: model.describe_state(state),
        unplaced,
    }
}
