//! Linearizability checking: encode operations with a [`Model`], split them into
//! independent partitions (P-compositionality), search each in parallel, stop at the first
//! illegal one.

mod search;
mod witness;

pub use witness::{LinWitness, UnplacedOp, WitnessOp};

use crate::history::{HVal, Operation};
use crate::model::{Encoded, Model, ModelError};
use crate::result::{Budget, CheckResult, Witness};
use rayon::prelude::*;
use search::{Entry, Search};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// Operations encoded for one model, split by partition (ready to search).
pub struct Prepared<M: Model> {
    partitions: Vec<(Option<HVal>, Vec<Entry<M::Input, M::Output>>)>,
}

impl<M: Model> Prepared<M> {
    /// Number of partitions.
    pub fn partitions(&self) -> usize {
        self.partitions.len()
    }

    /// Number of operations entering the search.
    pub fn operations(&self) -> usize {
        self.partitions.iter().map(|(_, e)| e.len()).sum()
    }
}

/// Encodes and partitions operations.
pub fn prepare<M: Model>(model: &M, ops: &[Operation]) -> Result<Prepared<M>, ModelError> {
    let mut parts: BTreeMap<Option<HVal>, Vec<Entry<M::Input, M::Output>>> = BTreeMap::new();
    for (pos, op) in ops.iter().enumerate() {
        if let Encoded::Op { input, output } = model.encode(op)? {
            let e = Entry {
                input,
                output,
                call: op.invoke,
                ret: op.deadline(),
                op: pos,
            };
            parts.entry(model.partition(op)).or_default().push(e);
        }
    }
    let mut partitions: Vec<_> = parts.into_iter().collect();
    // Largest first: better balance across threads.
    partitions.sort_by_key(|(_, e)| std::cmp::Reverse(e.len()));
    Ok(Prepared { partitions })
}

/// Searches prepared partitions in parallel (rayon's current pool).
pub fn check_prepared<M: Model>(
    model: &M,
    ops: &[Operation],
    prepared: &Prepared<M>,
    budget: &Budget,
) -> CheckResult {
    let cancel = AtomicBool::new(false);
    let results: Vec<(usize, Search<M::State>)> = prepared
        .partitions
        .par_iter()
        .enumerate()
        .map(|(i, (_, entries))| {
            let r = search::search(model, entries, budget, &cancel);
            if matches!(r, Search::Illegal { .. }) {
                cancel.store(true, Ordering::Relaxed);
            }
            (i, r)
        })
        .collect();
    let mut unknown = None;
    for (i, r) in results {
        match r {
            Search::Illegal { prefix, state } => {
                let (key, entries) = &prepared.partitions[i];
                let key = key.as_ref().map(HVal::to_string);
                let w = witness::build(model, ops, entries, key, &prefix, &state);
                return CheckResult::Illegal {
                    witness: Witness::Linearizability(w),
                };
            }
            Search::Unknown(reason) => unknown = Some(reason),
            Search::Ok | Search::Cancelled => {}
        }
    }
    match unknown {
        Some(reason) => CheckResult::Unknown { reason },
        None => CheckResult::Ok,
    }
}

/// Checks that `ops` (from [`crate::history::History::operations`]) are linearizable
/// with respect to `model`.
pub fn check<M: Model>(
    model: &M,
    ops: &[Operation],
    budget: &Budget,
) -> Result<CheckResult, ModelError> {
    let prepared = prepare(model, ops)?;
    Ok(check_prepared(model, ops, &prepared, budget))
}
