//! The Wing–Gong / Lowe search over one partition, with a (linearized-set, state) cache.

use crate::model::Model;
use crate::result::{Budget, UnknownReason};
use rustc_hash::FxHashSet;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// One operation prepared for the search.
#[derive(Debug, Clone)]
pub(crate) struct Entry<I, O> {
    pub input: I,
    /// `None`: outcome unknown.
    pub output: Option<O>,
    /// Position of the invocation.
    pub call: usize,
    /// Position by which it took effect; `None` = pending (no bound, may never happen).
    pub ret: Option<usize>,
    /// Position in the checked operation slice.
    pub op: usize,
}

/// Outcome of one partition's search.
#[derive(Debug)]
pub(crate) enum Search<S> {
    Ok,
    /// No linearization: the longest linearizable prefix (indices into the entries) and
    /// the state after it.
    Illegal {
        prefix: Vec<usize>,
        state: S,
    },
    Unknown(UnknownReason),
    /// Another partition was found illegal first.
    Cancelled,
}

trait Bits: Clone + Eq + Hash {
    fn zeros(n: usize) -> Self;
    fn flip(&mut self, i: usize);
}

impl<const W: usize> Bits for [u64; W] {
    fn zeros(_: usize) -> Self {
        [0; W]
    }
    #[inline]
    fn flip(&mut self, i: usize) {
        self[i >> 6] ^= 1 << (i & 63);
    }
}

impl Bits for Box<[u64]> {
    fn zeros(n: usize) -> Self {
        vec![0; n.div_ceil(64)].into_boxed_slice()
    }
    #[inline]
    fn flip(&mut self, i: usize) {
        self[i >> 6] ^= 1 << (i & 63);
    }
}

/// Checks one partition; picks a fixed-size bitset when the partition is small.
pub(crate) fn search<M: Model>(
    model: &M,
    entries: &[Entry<M::Input, M::Output>],
    budget: &Budget,
    cancel: &AtomicBool,
) -> Search<M::State> {
    match entries.len() {
        0..=64 => run::<M, [u64; 1]>(model, entries, budget, cancel),
        65..=128 => run::<M, [u64; 2]>(model, entries, budget, cancel),
        129..=256 => run::<M, [u64; 4]>(model, entries, budget, cancel),
        257..=512 => run::<M, [u64; 8]>(model, entries, budget, cancel),
        _ => run::<M, Box<[u64]>>(model, entries, budget, cancel),
    }
}

const NONE: u32 = u32::MAX;

fn run<M: Model, B: Bits>(
    model: &M,
    entries: &[Entry<M::Input, M::Output>],
    budget: &Budget,
    cancel: &AtomicBool,
) -> Search<M::State> {
    let started = Instant::now();
    let n = entries.len();
    // Events in time order; code = 2*op for a call, 2*op+1 for a return. Pending ops have
    // no return event: once every completed op is placed the rest may simply not happen.
    let mut events: Vec<(usize, u32)> = Vec::with_capacity(2 * n);
    for (i, e) in entries.iter().enumerate() {
        events.push((e.call, 2 * i as u32));
        if let Some(r) = e.ret {
            events.push((r, 2 * i as u32 + 1));
        }
    }
    events.sort_unstable();
    // Doubly linked list of nodes: 0 = head, 1..=len = events, len+1 = tail.
    let len = events.len();
    let tail = len as u32 + 1;
    let mut next: Vec<u32> = (1..=len as u32 + 1).chain([NONE]).collect();
    let mut prev: Vec<u32> = [NONE].into_iter().chain(0..=len as u32).collect();
    let mut code: Vec<u32> = vec![NONE; len + 2];
    let mut call_node = vec![NONE; n];
    let mut ret_node = vec![NONE; n];
    for (k, &(_, c)) in events.iter().enumerate() {
        let node = k as u32 + 1;
        code[node as usize] = c;
        let op = (c >> 1) as usize;
        if c & 1 == 0 {
            call_node[op] = node;
        } else {
            ret_node[op] = node;
        }
    }
    let mut remaining = entries.iter().filter(|e| e.ret.is_some()).count();
    if remaining == 0 {
        return Search::Ok;
    }

    let mut cache: FxHashSet<(B, M::State)> = FxHashSet::default();
    let mut bits = B::zeros(n);
    let mut state = model.init();
    let mut stack: Vec<(u32, M::State)> = Vec::new();
    let mut best: Vec<usize> = Vec::new();
    let mut best_state = state.clone();
    let mut steps: u64 = 0;
    let mut node = next[0];

    macro_rules! unlink {
        ($x:expr) => {{
            let x = $x as usize;
            next[prev[x] as usize] = next[x];
            prev[next[x] as usize] = prev[x];
        }};
    }
    macro_rules! relink {
        ($x:expr) => {{
            let x = $x as usize;
            next[prev[x] as usize] = x as u32;
            prev[next[x] as usize] = x as u32;
        }};
    }

    loop {
        debug_assert!(node != tail && node != NONE);
        let c = code[node as usize];
        let op = (c >> 1) as usize;
        if c & 1 == 0 {
            steps += 1;
            if steps & 1023 == 0 {
                if cancel.load(Ordering::Relaxed) {
                    return Search::Cancelled;
                }
                if let Some(max) = budget.max_steps
                    && steps >= max
                {
                    return Search::Unknown(UnknownReason::StepBudget { steps });
                }
                if let Some(d) = budget.deadline
                    && Instant::now() >= d
                {
                    let elapsed_ms = started.elapsed().as_millis() as u64;
                    return Search::Unknown(UnknownReason::Timeout { elapsed_ms });
                }
            }
            let e = &entries[op];
            if let Some(ns) = model.step(&state, &e.input, e.output.as_ref()) {
                bits.flip(op);
                if cache.insert((bits.clone(), ns.clone())) {
                    stack.push((node, std::mem::replace(&mut state, ns)));
                    unlink!(node);
                    if ret_node[op] != NONE {
                        unlink!(ret_node[op]);
                        remaining -= 1;
                        if remaining == 0 {
                            return Search::Ok;
                        }
                    }
                    if stack.len() > best.len() {
                        best = stack
                            .iter()
                            .map(|(nd, _)| (code[*nd as usize] >> 1) as usize)
                            .collect();
                        best_state = state.clone();
                    }
                    node = next[0];
                    continue;
                }
                bits.flip(op);
            }
            node = next[node as usize];
        } else {
            // A return whose call is not placed yet: backtrack.
            let Some((call, old)) = stack.pop() else {
                return Search::Illegal {
                    prefix: best,
                    state: best_state,
                };
            };
            let op = (code[call as usize] >> 1) as usize;
            state = old;
            bits.flip(op);
            if ret_node[op] != NONE {
                relink!(ret_node[op]);
                remaining += 1;
            }
            relink!(call);
            node = next[call as usize];
        }
    }
}
