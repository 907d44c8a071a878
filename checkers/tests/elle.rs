//! Table-driven Elle tests: hand-made list-append and rw-register histories for every
//! anomaly class, including pending transactions, and the generated-history sanity check.

mod common;

use checkers::elle::generate::{Workload, history};
use checkers::elle::{self, Anomaly, ConsistencyModel};
use checkers::{CheckResult, Op, Witness};
use common::{ev, hist};
use serde_json::{Value, json};

/// A transaction on process `p`: invoke (reads nil) then `t` with the given micro-ops.
fn txn(p: i64, t: &str, mops: Value) -> Vec<Op> {
    let invoke: Vec<Value> = mops
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            if m[0] == "r" {
                json!(["r", m[1], null])
            } else {
                m.clone()
            }
        })
        .collect();
    vec![
        ev(p, "invoke", "txn", Value::Array(invoke)),
        ev(p, t, "txn", mops),
    ]
}

fn la(parts: Vec<Vec<Op>>) -> Vec<Anomaly> {
    let h = hist(parts.concat());
    elle::list_append::check(&h.operations().unwrap()).unwrap()
}

fn rw(parts: Vec<Vec<Op>>) -> Vec<Anomaly> {
    let h = hist(parts.concat());
    elle::rw_register::check(&h.operations().unwrap()).unwrap()
}

/// (name, transactions, expected anomaly names)
type Case = (&'static str, Vec<Vec<Op>>, &'static [&'static str]);

fn names(a: &[Anomaly]) -> Vec<String> {
    let mut n: Vec<String> = a.iter().map(|a| a.name.clone()).collect();
    n.sort();
    n.dedup();
    n
}

#[test]
fn list_append_table() {
    let cases: Vec<Case> = vec![
        (
            "serial ok",
            vec![
                txn(0, "ok", json!([["append", "x", 1]])),
                txn(1, "ok", json!([["r", "x", [1]]])),
            ],
            &[],
        ),
        (
            "pending append may be read",
            vec![
                txn(0, "info", json!([["append", "x", 1]])),
                txn(1, "ok", json!([["r", "x", [1]]])),
            ],
            &[],
        ),
        (
            "failed append never read",
            vec![
                txn(0, "fail", json!([["append", "x", 1]])),
                txn(1, "ok", json!([["r", "x", []]])),
            ],
            &[],
        ),
        (
            "G0 write cycle",
            vec![
                txn(0, "ok", json!([["append", "x", 1], ["append", "y", 1]])),
                txn(1, "ok", json!([["append", "x", 2], ["append", "y", 2]])),
                txn(2, "ok", json!([["r", "x", [1, 2]], ["r", "y", [2, 1]]])),
            ],
            &["G0"],
        ),
        (
            "G1a aborted read",
            vec![
                txn(0, "fail", json!([["append", "x", 1]])),
                txn(1, "ok", json!([["r", "x", [1]]])),
            ],
            &["G1a"],
        ),
        (
            "G1b intermediate read",
            vec![
                txn(0, "ok", json!([["append", "x", 1], ["append", "x", 2]])),
                txn(1, "ok", json!([["r", "x", [1]]])),
            ],
            &["G1b"],
        ),
        (
            "G1c circular information flow",
            vec![
                txn(0, "ok", json!([["append", "x", 1], ["r", "y", [1]]])),
                txn(1, "ok", json!([["append", "y", 1], ["r", "x", [1]]])),
            ],
            &["G1c"],
        ),
        (
            "G-single read skew",
            vec![
                vec![ev(
                    0,
                    "invoke",
                    "txn",
                    json!([["r", "x", null], ["r", "y", null]]),
                )],
                txn(1, "ok", json!([["append", "x", 1], ["append", "y", 1]])),
                vec![ev(0, "ok", "txn", json!([["r", "x", []], ["r", "y", [1]]]))],
                txn(2, "ok", json!([["r", "x", [1]]])),
            ],
            &["G-single"],
        ),
        (
            "G2-item write skew",
            vec![
                txn(0, "ok", json!([["r", "x", []], ["append", "y", 1]])),
                txn(1, "ok", json!([["r", "y", []], ["append", "x", 1]])),
                txn(2, "ok", json!([["r", "x", [1]], ["r", "y", [1]]])),
            ],
            &["G2-item"],
        ),
        (
            "internal inconsistency",
            vec![txn(0, "ok", json!([["append", "x", 1], ["r", "x", []]]))],
            &["internal"],
        ),
        (
            "duplicate elements",
            vec![
                txn(0, "ok", json!([["append", "x", 1]])),
                txn(1, "ok", json!([["r", "x", [1, 1]]])),
            ],
            &["duplicate-elements"],
        ),
        (
            "lost update",
            vec![
                vec![ev(
                    0,
                    "invoke",
                    "txn",
                    json!([["r", "x", null], ["append", "x", 1]]),
                )],
                vec![ev(
                    1,
                    "invoke",
                    "txn",
                    json!([["r", "x", null], ["append", "x", 2]]),
                )],
                vec![ev(
                    0,
                    "ok",
                    "txn",
                    json!([["r", "x", []], ["append", "x", 1]]),
                )],
                vec![ev(
                    1,
                    "ok",
                    "txn",
                    json!([["r", "x", []], ["append", "x", 2]]),
                )],
                txn(2, "ok", json!([["r", "x", [1, 2]]])),
            ],
            &["G-single", "lost-update"],
        ),
        (
            "G-single-realtime stale read",
            vec![
                txn(0, "ok", json!([["append", "x", 1]])),
                txn(1, "ok", json!([["r", "x", []]])),
                txn(2, "ok", json!([["r", "x", [1]]])),
            ],
            &["G-single-realtime"],
        ),
        (
            "G-single-process stale read on one process",
            vec![
                txn(0, "ok", json!([["append", "x", 1]])),
                txn(0, "ok", json!([["r", "x", []]])),
                txn(2, "ok", json!([["r", "x", [1]]])),
            ],
            &["G-single-process"],
        ),
        (
            "G0-process",
            vec![
                txn(0, "ok", json!([["append", "x", 1]])),
                txn(0, "ok", json!([["append", "x", 2]])),
                txn(1, "ok", json!([["r", "x", [2, 1]]])),
            ],
            &["G0-process"],
        ),
        (
            "G1c-realtime",
            vec![
                txn(0, "ok", json!([["append", "x", 1]])),
                vec![ev(
                    1,
                    "invoke",
                    "txn",
                    json!([["append", "y", 1], ["r", "z", null]]),
                )],
                txn(2, "ok", json!([["append", "z", 1], ["r", "y", [1]]])),
                vec![ev(
                    1,
                    "ok",
                    "txn",
                    json!([["append", "y", 1], ["r", "z", [1]]]),
                )],
                txn(3, "ok", json!([["r", "x", [1]]])),
            ],
            &["G1c"],
        ),
    ];
    let mut wrong = Vec::new();
    for (name, parts, want) in cases {
        let got = names(&la(parts));
        if got != want.iter().map(|s| s.to_string()).collect::<Vec<_>>() {
            wrong.push(format!("{name}: want {want:?}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn rw_register_table() {
    let cases: Vec<Case> = vec![
        (
            "serial ok",
            vec![
                txn(0, "ok", json!([["w", "x", 1]])),
                txn(1, "ok", json!([["r", "x", 1]])),
            ],
            &[],
        ),
        (
            "initial nil",
            vec![
                txn(1, "ok", json!([["r", "x", null]])),
                txn(0, "ok", json!([["w", "x", 1]])),
            ],
            &[],
        ),
        (
            "pending write may be read",
            vec![
                txn(0, "info", json!([["w", "x", 1]])),
                txn(1, "ok", json!([["r", "x", 1]])),
            ],
            &[],
        ),
        (
            "G1a aborted read",
            vec![
                txn(0, "fail", json!([["w", "x", 1]])),
                txn(1, "ok", json!([["r", "x", 1]])),
            ],
            &["G1a"],
        ),
        (
            "G1b intermediate read",
            vec![
                txn(0, "ok", json!([["w", "x", 1], ["w", "x", 2]])),
                txn(1, "ok", json!([["r", "x", 1]])),
            ],
            &["G1b"],
        ),
        (
            "internal",
            vec![txn(0, "ok", json!([["w", "x", 1], ["r", "x", 2]]))],
            &["internal"],
        ),
        (
            "G1c",
            vec![
                txn(0, "ok", json!([["w", "x", 1], ["r", "y", 1]])),
                txn(1, "ok", json!([["w", "y", 1], ["r", "x", 1]])),
            ],
            &["G1c"],
        ),
        (
            "G-single read skew",
            vec![
                vec![ev(
                    0,
                    "invoke",
                    "txn",
                    json!([["r", "x", null], ["r", "y", null]]),
                )],
                txn(1, "ok", json!([["w", "x", 1], ["w", "y", 1]])),
                vec![ev(0, "ok", "txn", json!([["r", "x", null], ["r", "y", 1]]))],
            ],
            &["G-single"],
        ),
        (
            "G2-item write skew",
            vec![
                vec![ev(
                    0,
                    "invoke",
                    "txn",
                    json!([["r", "x", null], ["w", "y", 1]]),
                )],
                vec![ev(
                    1,
                    "invoke",
                    "txn",
                    json!([["r", "y", null], ["w", "x", 1]]),
                )],
                vec![ev(0, "ok", "txn", json!([["r", "x", null], ["w", "y", 1]]))],
                vec![ev(1, "ok", "txn", json!([["r", "y", null], ["w", "x", 1]]))],
            ],
            &["G2-item"],
        ),
        (
            "lost update",
            vec![
                vec![ev(
                    0,
                    "invoke",
                    "txn",
                    json!([["r", "x", null], ["w", "x", 1]]),
                )],
                vec![ev(
                    1,
                    "invoke",
                    "txn",
                    json!([["r", "x", null], ["w", "x", 2]]),
                )],
                vec![ev(0, "ok", "txn", json!([["r", "x", null], ["w", "x", 1]]))],
                vec![ev(1, "ok", "txn", json!([["r", "x", null], ["w", "x", 2]]))],
            ],
            &["G2-item", "lost-update"],
        ),
        (
            "G-single-realtime stale read",
            vec![
                txn(0, "ok", json!([["w", "x", 1]])),
                txn(1, "ok", json!([["r", "x", null]])),
            ],
            &["G-single-realtime"],
        ),
    ];
    let mut wrong = Vec::new();
    for (name, parts, want) in cases {
        let got = names(&rw(parts));
        if got != want.iter().map(|s| s.to_string()).collect::<Vec<_>>() {
            wrong.push(format!("{name}: want {want:?}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn weakest_violated_model_and_explanation() {
    let a = la(vec![
        txn(0, "ok", json!([["r", "x", []], ["append", "y", 1]])),
        txn(1, "ok", json!([["r", "y", []], ["append", "x", 1]])),
        txn(2, "ok", json!([["r", "x", [1]], ["r", "y", [1]]])),
    ]);
    let CheckResult::Illegal {
        witness: Witness::Transactional(w),
    } = elle::to_result(a)
    else {
        panic!("write skew must be illegal")
    };
    assert_eq!(w.weakest_violated, ConsistencyModel::Serializable);
    assert_eq!(
        w.not,
        vec![
            ConsistencyModel::Serializable,
            ConsistencyModel::StrictSerializable
        ]
    );
    let text = w.render();
    assert!(
        text.contains("Let:") && text.contains("T1 < T2 (rw)") && text.contains("However"),
        "{text}"
    );

    let g1a = la(vec![
        txn(0, "fail", json!([["append", "x", 1]])),
        txn(1, "ok", json!([["r", "x", [1]]])),
    ]);
    let CheckResult::Illegal {
        witness: Witness::Transactional(w),
    } = elle::to_result(g1a)
    else {
        panic!()
    };
    assert_eq!(w.weakest_violated, ConsistencyModel::ReadCommitted);
}

#[test]
fn generated_histories_are_valid() {
    for seed in 0..5 {
        let h = history(Workload::ListAppend, 2_000, 5, seed);
        let a = elle::list_append::check(&h.operations().unwrap()).unwrap();
        assert!(a.is_empty(), "seed {seed}: {:?}", a.first());
        let h = history(Workload::RwRegister, 2_000, 5, seed);
        let a = elle::rw_register::check(&h.operations().unwrap()).unwrap();
        assert!(a.is_empty(), "seed {seed}: {:?}", a.first());
    }
}

#[test]
fn malformed_transaction_is_an_error() {
    let h = hist(vec![
        ev(0, "invoke", "txn", json!(5)),
        ev(0, "ok", "txn", json!(5)),
    ]);
    assert!(elle::list_append::check(&h.operations().unwrap()).is_err());
    let h = hist(txn(0, "ok", json!([["frob", "x", 1]])));
    let e = elle::list_append::check(&h.operations().unwrap()).unwrap_err();
    assert!(e.to_string().contains("frob"));
}
