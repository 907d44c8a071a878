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

type EntryOf<M> = Entry<<M as Model>::Input, <M as Model>::Output>;
/// A search in progress over partition `usize`.
type Live<'a, M> = (usize, Box<dyn search::Resumable<<M as Model>::State> + 'a>);

/// One partition: its key and its encoded operations.
type Partition<M> = (
    Option<HVal>,
    Vec<Entry<<M as Model>::Input, <M as Model>::Output>>,
);

/// Operations encoded for one model, split by partition (ready to search).
pub struct Prepared<M: Model> {
    partitions: Vec<Partition<M>>,
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
    let mut parts: BTreeMap<Option<HVal>, Vec<EntryOf<M>>> = BTreeMap::new();
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
    for entries in parts.values_mut() {
        let outputs: Vec<M::Output> = entries.iter().filter_map(|e| e.output.clone()).collect();
        let outputs: Vec<&M::Output> = outputs.iter().collect();
        entries.retain(|e| e.output.is_some() || !model.unobserved(&e.input, &outputs));
    }
    let mut partitions: Vec<_> = parts.into_iter().collect();
    // Largest first: better balance across threads.
    partitions.sort_by_key(|(_, e)| std::cmp::Reverse(e.len()));
    Ok(Prepared { partitions })
}

/// Searches prepared partitions in parallel (rayon's current pool), stopping at the first
/// illegal one. Partitions advance in rounds of growing step quanta, so an easy illegal
/// partition is found even when a hard one comes first and only one thread is available.
pub fn check_prepared<M: Model>(
    model: &M,
    ops: &[Operation],
    prepared: &Prepared<M>,
    budget: &Budget,
) -> CheckResult {
    let cancel = AtomicBool::new(false);
    let mut live: Vec<Live<'_, M>> = prepared
        .partitions
        .iter()
        .enumerate()
        .map(|(i, (_, e))| (i, search::start(model, e)))
        .collect();
    let mut quantum: u64 = if live.len() <= 1 { u64::MAX } else { 512 };
    let mut unknown = None;
    while !live.is_empty() {
        let results: Vec<Option<Search<M::State>>> = live
            .par_iter_mut()
            .map(|(_, s)| {
                let r = s.advance(quantum, budget, &cancel);
                if matches!(r, Some(Search::Illegal { .. })) {
                    cancel.store(true, Ordering::Relaxed);
                }
                r
            })
            .collect();
        let mut still = Vec::new();
        for ((i, s), r) in live.into_iter().zip(results) {
            match r {
                None => still.push((i, s)),
                Some(Search::Illegal { prefix, state }) => {
                    let (key, entries) = &prepared.partitions[i];
                    let key = key.as_ref().map(HVal::to_string);
                    let w = witness::build(model, ops, entries, key, &prefix, &state);
                    return CheckResult::Illegal {
                        witness: Witness::Linearizability(w),
                    };
                }
                Some(Search::Unknown(reason)) => unknown = Some(reason),
                Some(Search::Ok | Search::Cancelled) => {}
            }
        }
        live = still;
        quantum = quantum.saturating_mul(2);
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
