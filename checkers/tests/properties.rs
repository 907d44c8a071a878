//! Property tests: histories generated from a real concurrent execution (each operation
//! takes effect atomically between its invocation and completion; some end `info`,
//! applied or not) are always linearizable; corrupting one read result gives Illegal or
//! Ok, never a crash or a hang. Elle and format round trips likewise.

use checkers::cli::{Checker, check_history};
use checkers::elle::generate::{Rng, Workload, history};
use checkers::format::{Format, edn, jsonl};
use checkers::{Budget, History, Op, OpType, Process, Verdict};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap, VecDeque};

const MODELS: [Checker; 7] = [
    Checker::Register,
    Checker::CasRegister,
    Checker::Kv,
    Checker::Set,
    Checker::Queue,
    Checker::Counter,
    Checker::Log,
];

#[derive(Default)]
struct Real {
    reg: Option<i64>,
    kv: HashMap<String, String>,
    set: BTreeSet<i64>,
    queue: VecDeque<i64>,
    counter: i64,
    log: Vec<i64>,
}

/// Picks an operation: (f, key, invoke value).
fn pick(m: Checker, rng: &mut Rng, uniq: &mut i64) -> (&'static str, Option<String>, Value) {
    *uniq += 1;
    let r = rng.below(3);
    let small = rng.below(4) as i64;
    match m {
        Checker::Register | Checker::CasRegister => match (r, m) {
            (0, _) => ("read", None, Value::Null),
            (2, Checker::CasRegister) => ("cas", None, json!([small, rng.below(4)])),
            _ => ("write", None, json!(small)),
        },
        Checker::Kv => {
            let k = if rng.below(2) == 0 { "a" } else { "b" };
            let f = ["get", "put", "append", "cas"][rng.below(4) as usize];
            let v = match f {
                "get" => Value::Null,
                "cas" => json!([format!("p{small}"), format!("p{}", uniq)]),
                "put" => json!(format!("p{small}")),
                _ => json!(format!("y{}", uniq)),
            };
            (f, Some(k.to_string()), v)
        }
        Checker::Set => {
            if r == 0 {
                ("read", None, Value::Null)
            } else {
                ("add", None, json!(*uniq))
            }
        }
        Checker::Queue => {
            if r == 0 {
                ("dequeue", None, Value::Null)
            } else {
                ("enqueue", None, json!(*uniq))
            }
        }
        Checker::Counter => {
            if r == 0 {
                ("read", None, Value::Null)
            } else {
                ("add", None, json!(small))
            }
        }
        _ => {
            if r == 0 {
                ("read", None, Value::Null)
            } else {
                ("append", None, json!(*uniq))
            }
        }
    }
}

/// Applies the op to the real object: (completion type, completion value).
fn apply(real: &mut Real, f: &str, key: &Option<String>, v: &Value) -> (OpType, Value) {
    let ok = OpType::Ok;
    match (f, key) {
        ("get", Some(k)) => (ok, json!(real.kv.get(k).cloned().unwrap_or_default())),
        ("put", Some(k)) => {
            real.kv.insert(k.clone(), v.as_str().unwrap().to_string());
            (ok, v.clone())
        }
        ("append", Some(k)) => {
            real.kv
                .entry(k.clone())
                .or_default()
                .push_str(v.as_str().unwrap());
            (ok, v.clone())
        }
        ("cas", Some(k)) => {
            let cur = real.kv.get(k).cloned().unwrap_or_default();
            if cur == v[0].as_str().unwrap() {
                real.kv
                    .insert(k.clone(), v[1].as_str().unwrap().to_string());
                (ok, v.clone())
            } else {
                (OpType::Fail, v.clone())
            }
        }
        _ => unreachable!(),
    }
}

fn apply_plain(m: Checker, real: &mut Real, f: &str, v: &Value) -> (OpType, Value) {
    let ok = OpType::Ok;
    match (m, f) {
        (Checker::Register | Checker::CasRegister, "read") => {
            (ok, real.reg.map_or(Value::Null, |x| json!(x)))
        }
        (Checker::Register | Checker::CasRegister, "write") => {
            real.reg = v.as_i64();
            (ok, v.clone())
        }
        (_, "cas") => {
            if real.reg == v[0].as_i64() {
                real.reg = v[1].as_i64();
                (ok, v.clone())
            } else {
                (OpType::Fail, v.clone())
            }
        }
        (Checker::Set, "read") => (ok, json!(real.set.iter().collect::<Vec<_>>())),
        (Checker::Set, _) => {
            real.set.insert(v.as_i64().unwrap());
            (ok, v.clone())
        }
        (Checker::Queue, "dequeue") => {
            (ok, real.queue.pop_front().map_or(Value::Null, |x| json!(x)))
        }
        (Checker::Queue, _) => {
            real.queue.push_back(v.as_i64().unwrap());
            (ok, v.clone())
        }
        (Checker::Counter, "read") => (ok, json!(real.counter)),
        (Checker::Counter, _) => {
            real.counter += v.as_i64().unwrap();
            (ok, v.clone())
        }
        (_, "read") => (ok, json!(real.log)),
        _ => {
            real.log.push(v.as_i64().unwrap());
            (ok, v.clone())
        }
    }
}

enum Slot {
    Idle,
    Invoked(&'static str, Option<String>, Value),
    Applied(&'static str, Option<String>, OpType, Value),
}

/// A history of `n` ops over `procs` processes, each taking effect at a real instant.
fn generate(m: Checker, seed: u64, procs: usize, n: usize) -> History {
    let mut rng = Rng::new(seed);
    let mut real = Real::default();
    let mut slots: Vec<Slot> = (0..procs).map(|_| Slot::Idle).collect();
    let (mut started, mut uniq, mut ops) = (0, 0i64, Vec::new());
    let ev = |p: usize, t: OpType, f: &str, k: &Option<String>, v: Value| {
        let op = Op::new(Process::Id(p as i64), t, f, v);
        match k {
            Some(k) => op.with_key(json!(k)),
            None => op,
        }
    };
    while started < n || slots.iter().any(|s| !matches!(s, Slot::Idle)) {
        let p = rng.below(procs as u64) as usize;
        slots[p] = match std::mem::replace(&mut slots[p], Slot::Idle) {
            Slot::Idle if started < n => {
                started += 1;
                let (f, k, v) = pick(m, &mut rng, &mut uniq);
                ops.push(ev(p, OpType::Invoke, f, &k, v.clone()));
                Slot::Invoked(f, k, v)
            }
            Slot::Idle => Slot::Idle,
            Slot::Invoked(f, k, v) if rng.below(20) == 0 => {
                // Crashed before taking effect.
                ops.push(ev(p, OpType::Info, f, &k, v));
                Slot::Idle
            }
            Slot::Invoked(f, k, v) => {
                let (t, out) = if m == Checker::Kv {
                    apply(&mut real, f, &k, &v)
                } else {
                    apply_plain(m, &mut real, f, &v)
                };
                Slot::Applied(f, k, t, out)
            }
            Slot::Applied(f, k, t, out) => {
                // Sometimes the client never learns the outcome.
                let t = if rng.below(10) == 0 { OpType::Info } else { t };
                ops.push(ev(p, t, f, &k, out));
                Slot::Idle
            }
        };
    }
    History::new(ops)
}

fn verdict(m: Checker, h: &History) -> Verdict {
    let budget = Budget::with_max_steps(5_000_000);
    check_history(h, Format::Jsonl, m, budget)
        .expect("well-formed")
        .verdict
}

/// Changes one ok read result, if there is one.
fn corrupt(h: &mut History, pick: u64) -> bool {
    let reads: Vec<usize> = (0..h.ops.len())
        .filter(|&i| {
            h.ops[i].kind == OpType::Ok && matches!(h.ops[i].f.as_str(), "read" | "get" | "dequeue")
        })
        .collect();
    if reads.is_empty() {
        return false;
    }
    let i = reads[pick as usize % reads.len()];
    let v = &mut h.ops[i].value;
    *v = match v.take() {
        Value::Number(n) => json!(n.as_i64().unwrap_or(0) + 1),
        Value::String(s) => json!(format!("{s}z")),
        Value::Array(mut a) => {
            if a.pop().is_none() {
                a.push(json!(999));
            }
            Value::Array(a)
        }
        _ => json!(3),
    };
    true
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn real_executions_are_linearizable(seed in any::<u64>(), procs in 1usize..5, n in 1usize..30, mi in 0usize..7) {
        let m = MODELS[mi];
        let h = generate(m, seed, procs, n);
        prop_assert_eq!(verdict(m, &h), Verdict::Ok, "{:?}\n{}", m, jsonl::export(&h));
    }

    #[test]
    fn corrupted_read_is_decided(seed in any::<u64>(), procs in 1usize..5, n in 1usize..30, mi in 0usize..7, which in any::<u64>()) {
        let m = MODELS[mi];
        let mut h = generate(m, seed, procs, n);
        if corrupt(&mut h, which) {
            let v = verdict(m, &h);
            prop_assert!(v == Verdict::Ok || v == Verdict::Illegal, "{:?}: {:?}", m, v);
        }
    }

    #[test]
    fn elle_generated_histories_have_no_anomalies(seed in any::<u64>(), procs in 1usize..6, n in 1usize..200) {
        for w in [Workload::ListAppend, Workload::RwRegister] {
            let h = history(w, n, procs, seed);
            let c = if w == Workload::ListAppend { Checker::ListAppend } else { Checker::RwRegister };
            let r = check_history(&h, Format::Jsonl, c, Budget::unlimited()).unwrap();
            prop_assert_eq!(r.verdict, Verdict::Ok, "{}", r.render_human());
        }
    }

    #[test]
    fn elle_corrupted_read_never_panics(seed in any::<u64>(), n in 1usize..100, which in any::<u64>()) {
        let mut h = history(Workload::ListAppend, n, 3, seed);
        let oks: Vec<usize> = (0..h.ops.len()).filter(|&i| h.ops[i].kind == OpType::Ok).collect();
        let i = oks[which as usize % oks.len()];
        if let Some(mops) = h.ops[i].value.as_array_mut() {
            for m in mops.iter_mut() {
                if let Some(list) = m[2].as_array_mut() {
                    list.reverse();
                    list.push(json!(1));
                    break;
                }
            }
        }
        let r = check_history(&h, Format::Jsonl, Checker::ListAppend, Budget::unlimited()).unwrap();
        prop_assert!(r.verdict != Verdict::Unknown);
    }

    #[test]
    fn formats_round_trip(seed in any::<u64>(), n in 1usize..40, mi in 0usize..7) {
        let h = generate(MODELS[mi], seed, 3, n);
        prop_assert_eq!(&jsonl::parse(&jsonl::export(&h)).unwrap(), &h);
        prop_assert_eq!(&edn::parse(&edn::export(&h)).unwrap(), &h);
        let t = history(Workload::ListAppend, n, 3, seed);
        prop_assert_eq!(&edn::parse(&edn::export(&t)).unwrap(), &t);
    }
}

#[test]
fn corruption_is_usually_caught() {
    for m in MODELS {
        let mut illegal = 0;
        for seed in 0..60 {
            let mut h = generate(m, seed, 3, 20);
            if corrupt(&mut h, seed) && verdict(m, &h) == Verdict::Illegal {
                illegal += 1;
            }
        }
        assert!(
            illegal > 10,
            "{m:?}: only {illegal} of 60 corrupted histories were illegal"
        );
    }
}
