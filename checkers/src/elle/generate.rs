//! Synthetic, strictly serializable transactional histories (for tests and benchmarks):
//! concurrent clients whose transactions take effect atomically at their completion.

use crate::history::{History, Op, OpType, Process};
use serde_json::{Value, json};
use std::collections::HashMap;

/// A small deterministic PRNG (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator (seed 0 is remapped).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Next value in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) % n
    }
}

/// Which transactional workload to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// `[append k v]` / `[r k list]`.
    ListAppend,
    /// `[w k v]` / `[r k v]`.
    RwRegister,
}

/// Generates `txns` transactions over `processes` clients. Keys are retired after 32
/// writes (as Elle's generator does) so reads stay short.
pub fn history(workload: Workload, txns: usize, processes: usize, seed: u64) -> History {
    let mut rng = Rng::new(seed);
    let mut ops = Vec::with_capacity(txns * 2);
    let mut open: Vec<Option<Vec<(bool, u64, i64)>>> = vec![None; processes.max(1)];
    let mut active: Vec<u64> = (0..8).collect();
    let mut next_key = 8u64;
    let mut writes: HashMap<u64, i64> = HashMap::new();
    let mut lists: HashMap<u64, Vec<i64>> = HashMap::new();
    let mut regs: HashMap<u64, i64> = HashMap::new();
    let mut started = 0usize;
    let wname = if workload == Workload::ListAppend {
        "append"
    } else {
        "w"
    };
    let encode = |mops: &[(bool, u64, i64)], reads: Option<&[Value]>| -> Value {
        Value::Array(
            mops.iter()
                .enumerate()
                .map(|(i, &(w, k, v))| {
                    if w {
                        json!([wname, k, v])
                    } else {
                        json!(["r", k, reads.map_or(Value::Null, |r| r[i].clone())])
                    }
                })
                .collect(),
        )
    };
    loop {
        let all_closed = open.iter().all(Option::is_none);
        if started >= txns && all_closed {
            break;
        }
        let p = rng.below(open.len() as u64) as usize;
        match open[p].take() {
            Some(mops) => {
                // Take effect now, atomically.
                let mut reads = vec![Value::Null; mops.len()];
                for (i, &(w, k, v)) in mops.iter().enumerate() {
                    match (workload, w) {
                        (Workload::ListAppend, true) => lists.entry(k).or_default().push(v),
                        (Workload::ListAppend, false) => {
                            reads[i] = json!(lists.get(&k).cloned().unwrap_or_default())
                        }
                        (Workload::RwRegister, true) => {
                            regs.insert(k, v);
                        }
                        (Workload::RwRegister, false) => {
                            reads[i] = regs.get(&k).map_or(Value::Null, |v| json!(v))
                        }
                    }
                }
                ops.push(Op::new(
                    Process::Id(p as i64),
                    OpType::Ok,
                    "txn",
                    encode(&mops, Some(&reads)),
                ));
            }
            None if started < txns => {
                started += 1;
                let n = 1 + rng.below(4) as usize;
                let mut mops = Vec::with_capacity(n);
                for _ in 0..n {
                    let slot = rng.below(active.len() as u64) as usize;
                    let k = active[slot];
                    if rng.below(2) == 0 {
                        let c = writes.entry(k).or_default();
                        *c += 1;
                        let v = *c;
                        if v >= 32 {
                            active[slot] = next_key;
                            next_key += 1;
                        }
                        mops.push((true, k, v));
                    } else {
                        mops.push((false, k, 0));
                    }
                }
                ops.push(Op::new(
                    Process::Id(p as i64),
                    OpType::Invoke,
                    "txn",
                    encode(&mops, None),
                ));
                open[p] = Some(mops);
            }
            None => {}
        }
    }
    History::new(ops)
}
