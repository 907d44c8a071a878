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

/// A paused or finished search over one partition.
pub(crate) trait Resumable<S>: Send {
    /// Runs until decided or until `steps` more model steps were taken (then `None`).
    fn advance(&mut self, steps: u64, budget: &Budget, cancel: &AtomicBool) -> Option<Search<S>>;
}

/// Starts a search over one partition; picks a fixed-size bitset when it is small.
pub(crate) fn start<'a, M: Model>(
    model: &'a M,
    entries: &'a [Entry<M::Input, M::Output>],
) -> Box<dyn Resumable<M::State> + 'a> {
    match entries.len() {
        0..=64 => Box::new(Searcher::<M, [u64; 1]>::new(model, entries)),
        65..=128 => Box::new(Searcher::<M, [u64; 2]>::new(model, entries)),
        129..=256 => Box::new(Searcher::<M, [u64; 4]>::new(model, entries)),
        257..=512 => Box::new(Searcher::<M, [u64; 8]>::new(model, entries)),
        _ => Box::new(Searcher::<M, Box<[u64]>>::new(model, entries)),
    }
}

const NONE: u32 = u32::MAX;

/// Scan pass 0: completed read-only ops. A legal one is placed at once and alone: any
/// linearization placing it later can place it here instead, since it changes nothing.
const READS: u8 = 0;
/// Scan pass 1: the other completed ops.
const WRITES: u8 = 1;
/// Scan pass 2: pending ops, last (they may also never take effect).
const PENDING: u8 = 2;
/// Stack mark of a read placed in pass 0: backtracking over it fails its node too.
const FORCED: u8 = 3;

struct Searcher<'a, M: Model, B> {
    model: &'a M,
    entries: &'a [Entry<M::Input, M::Output>],
    started: Instant,
    next: Vec<u32>,
    prev: Vec<u32>,
    /// Per node: 2*op for a call, 2*op+1 for a return.
    code: Vec<u32>,
    ret_node: Vec<u32>,
    remaining: usize,
    cache: FxHashSet<(B, M::State)>,
    bits: B,
    state: M::State,
    /// Per op: completed and read-only (never changes the state).
    read_only: Vec<bool>,
    /// (call node, state before it, scan pass it was placed in).
    stack: Vec<(u32, M::State, u8)>,
    /// Which candidates the scan is trying, see [`READS`], [`WRITES`], [`PENDING`].
    pass: u8,
    best: Vec<usize>,
    best_state: M::State,
    steps: u64,
    node: u32,
    done: bool,
}

impl<'a, M: Model, B: Bits> Searcher<'a, M, B> {
    fn new(model: &'a M, entries: &'a [Entry<M::Input, M::Output>]) -> Self {
        let n = entries.len();
        // Events in time order. Pending ops have no return event: once every completed op
        // is placed, the rest may simply never have happened.
        let mut events: Vec<(usize, u32)> = Vec::with_capacity(2 * n);
        for (i, e) in entries.iter().enumerate() {
            events.push((e.call, 2 * i as u32));
            if let Some(r) = e.ret {
                events.push((r, 2 * i as u32 + 1));
            }
        }
        events.sort_unstable();
        // Doubly linked list: node 0 = head, 1..=len = events, len+1 = tail.
        let len = events.len();
        let next: Vec<u32> = (1..=len as u32 + 1).chain([NONE]).collect();
        let prev: Vec<u32> = [NONE].into_iter().chain(0..=len as u32).collect();
        let mut code: Vec<u32> = vec![NONE; len + 2];
        let mut ret_node = vec![NONE; n];
        for (k, &(_, c)) in events.iter().enumerate() {
            code[k + 1] = c;
            if c & 1 == 1 {
                ret_node[(c >> 1) as usize] = k as u32 + 1;
            }
        }
        let state = model.init();
        Searcher {
            model,
            entries,
            started: Instant::now(),
            next,
            prev,
            code,
            ret_node,
            remaining: entries.iter().filter(|e| e.ret.is_some()).count(),
            cache: FxHashSet::with_capacity_and_hasher(1024, Default::default()),
            bits: B::zeros(n),
            best_state: state.clone(),
            state,
            read_only: entries
                .iter()
                .map(|e| e.output.is_some() && model.is_read_only(&e.input))
                .collect(),
            stack: Vec::new(),
            pass: READS,
            best: Vec::new(),
            steps: 0,
            node: 1,
            done: false,
        }
    }

    #[inline]
    fn unlink(&mut self, x: u32) {
        let x = x as usize;
        let (p, n) = (self.prev[x], self.next[x]);
        self.next[p as usize] = n;
        self.prev[n as usize] = p;
    }

    #[inline]
    fn relink(&mut self, x: u32) {
        let (p, n) = (self.prev[x as usize], self.next[x as usize]);
        self.next[p as usize] = x;
        self.prev[n as usize] = x;
    }

    /// Undoes the last placement (and every forced read above the last real choice) and
    /// resumes the scan after it; `Some(Illegal)` when nothing is left to undo.
    fn backtrack(&mut self) -> Option<Search<M::State>> {
        loop {
            let Some((call, old, pass)) = self.stack.pop() else {
                let prefix = std::mem::take(&mut self.best);
                let state = self.best_state.clone();
                return Some(Search::Illegal { prefix, state });
            };
            let op = (self.code[call as usize] >> 1) as usize;
            self.state = old;
            self.bits.flip(op);
            let r = self.ret_node[op];
            if r != NONE {
                self.relink(r);
                self.remaining += 1;
            }
            self.relink(call);
            if pass != FORCED {
                self.pass = pass;
                self.node = self.next[call as usize];
                return None;
            }
        }
    }

    fn finish(&mut self, r: Search<M::State>) -> Option<Search<M::State>> {
        self.done = true;
        Some(r)
    }
}

impl<M: Model, B: Bits + Send> Resumable<M::State> for Searcher<'_, M, B> {
    fn advance(
        &mut self,
        quantum: u64,
        budget: &Budget,
        cancel: &AtomicBool,
    ) -> Option<Search<M::State>> {
        if self.done {
            return None;
        }
        if self.remaining == 0 {
            return self.finish(Search::Ok);
        }
        let stop_at = self.steps.saturating_add(quantum);
        loop {
            let node = self.node;
            let c = self.code[node as usize];
            let op = (c >> 1) as usize;
            if c & 1 == 0 {
                let pending = self.ret_node[op] == NONE;
                let class = if pending {
                    PENDING
                } else if self.read_only[op] {
                    READS
                } else {
                    WRITES
                };
                if class != self.pass {
                    self.node = self.next[node as usize];
                    continue;
                }
                self.steps += 1;
                if self.steps & 1023 == 0 {
                    if cancel.load(Ordering::Relaxed) {
                        return self.finish(Search::Cancelled);
                    }
                    if let Some(max) = budget.max_steps
                        && self.steps >= max
                    {
                        return self.finish(Search::Unknown(UnknownReason::StepBudget {
                            steps: self.steps,
                        }));
                    }
                    if let Some(d) = budget.deadline
                        && Instant::now() >= d
                    {
                        let elapsed_ms = self.started.elapsed().as_millis() as u64;
                        return self.finish(Search::Unknown(UnknownReason::Timeout { elapsed_ms }));
                    }
                }
                if self.steps >= stop_at {
                    self.steps -= 1;
                    return None;
                }
                let e = &self.entries[op];
                if let Some(ns) = self.model.step(&self.state, &e.input, e.output.as_ref()) {
                    // A pending op that leaves the state unchanged is dominated by not
                    // placing it at all: skip it.
                    if !(pending && ns == self.state) {
                        self.bits.flip(op);
                        if self.cache.insert((self.bits.clone(), ns.clone())) {
                            let old = std::mem::replace(&mut self.state, ns);
                            let mark = if class == READS { FORCED } else { class };
                            self.stack.push((node, old, mark));
                            self.unlink(node);
                            let r = self.ret_node[op];
                            if r != NONE {
                                self.unlink(r);
                                self.remaining -= 1;
                                if self.remaining == 0 {
                                    return self.finish(Search::Ok);
                                }
                            }
                            if self.stack.len() > self.best.len() {
                                self.best = self
                                    .stack
                                    .iter()
                                    .map(|(nd, _, _)| (self.code[*nd as usize] >> 1) as usize)
                                    .collect();
                                self.best_state = self.state.clone();
                            }
                            self.pass = READS;
                            self.node = self.next[0];
                            continue;
                        }
                        self.bits.flip(op);
                        if class == READS {
                            // Its only child was already explored: this node fails.
                            if let Some(r) = self.backtrack() {
                                return self.finish(r);
                            }
                            continue;
                        }
                    }
                }
                self.node = self.next[node as usize];
            } else if self.pass != PENDING {
                // Every candidate of this pass tried: on to the next pass.
                self.pass += 1;
                self.node = self.next[0];
            } else if let Some(r) = self.backtrack() {
                return self.finish(r);
            }
        }
    }
}
