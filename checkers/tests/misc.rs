//! Formats (JSONL / EDN / Porcupine etcd round trips and errors), invariants, the CLI
//! support layer and the HTML page.

mod common;

use checkers::cli::{CheckError, Checker, check_file, check_history, parse_duration};
use checkers::format::{Format, FormatError, edn, jsonl, porcupine};
use checkers::invariants::{self, Invariant};
use checkers::{Budget, Verdict, html};
use common::{ev, hist, kev};
use serde_json::{Value, json};
use std::time::Duration;

#[test]
fn jsonl_round_trip_and_line_numbers() {
    let h = hist(vec![
        kev(0, "invoke", "write", "k", json!(1)),
        kev(0, "ok", "write", "k", json!(1)),
    ]);
    let text = jsonl::export(&h);
    assert!(text.lines().next().unwrap().contains(r#""index":0"#));
    assert_eq!(jsonl::parse(&text).unwrap(), h);
    let bad = format!("{text}\n{{\"process\": 1}}\n");
    match jsonl::parse(&bad) {
        Err(FormatError::Json { line, .. }) => assert_eq!(line, 4),
        other => panic!("{other:?}"),
    }
}

#[test]
fn edn_parses_jepsen_ops_and_round_trips() {
    let text = r#"
{:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}
{:process 0, :type :ok, :f :append, :key "0", :value "x 0 0 y"}
{:process :nemesis, :type :info, :f :start, :value nil}
{:process 1, :type :invoke, :f :txn, :value [[:append 3 1] [:r 4 nil]], :time 12}
; a comment
{:process 1, :type :ok, :f :txn, :value [[:append 3 1] [:r 4 [1 2]]]}
{:process :nemesis, :type :info, :f :stop, :value nil}
"#;
    let h = edn::parse(text).unwrap();
    assert_eq!(h.len(), 6);
    assert_eq!(h.ops[0].key, Some(json!("0")));
    assert_eq!(h.ops[3].value, json!([["append", 3, 1], ["r", 4, null]]));
    assert_eq!(h.ops[3].time, Some(12));
    assert_eq!(h.fault_windows().len(), 1);
    let back = edn::parse(&edn::export(&h)).unwrap();
    assert_eq!(back, h);
    assert!(edn::export(&h).contains("[:append 3 1]"));
    // A vector of ops and tagged records work too.
    let h2 = edn::parse(
        r#"[#jepsen.history.Op{:index 0 :process 0 :type :invoke :f :read :value nil}]"#,
    )
    .unwrap();
    assert_eq!(h2.len(), 1);
}

#[test]
fn edn_errors_carry_line_numbers() {
    match edn::parse("{:process 0, :type :ok, :f :read}\n{:process 1 :type") {
        Err(FormatError::EdnSyntax { line, .. }) => assert_eq!(line, 2),
        other => panic!("{other:?}"),
    }
    match edn::parse("\n\n{:type :ok, :f :read}") {
        Err(FormatError::EdnOp { line, message }) => {
            assert_eq!(line, 3);
            assert!(message.contains(":process"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn porcupine_etcd_semantics() {
    let text = "INFO  jepsen.util - 0\t:invoke\t:read\tnil\n\
                INFO  jepsen.util - 0\t:fail\t:read\t:timed-out\n\
                INFO  jepsen.util - 1\t:invoke\t:cas\t[3 0]\n\
                INFO  jepsen.util - 1\t:fail\t:cas\t[3 0]\n\
                INFO  jepsen.util - 2\t:invoke\t:write\t4\n\
                INFO  jepsen.util - 2\t:info\t:write\t:timed-out\n\
                some other log line\n";
    let h = porcupine::parse_etcd(text).unwrap();
    let ops = h.operations().unwrap();
    assert_eq!(ops.len(), 3);
    assert!(ops[2].is_pending());
    assert_eq!(ops[1].status, checkers::history::Status::Fail);
    let r = check_history(
        &h,
        Format::PorcupineEtcd,
        Checker::CasRegister,
        Budget::unlimited(),
    )
    .unwrap();
    assert_eq!(r.verdict, Verdict::Ok);
    assert!(matches!(
        porcupine::parse_etcd("INFO  jepsen.util - x\t:ok"),
        Err(FormatError::EtcdLine { line: 1, .. })
    ));
}

#[test]
fn format_detection_and_names() {
    assert_eq!(Format::detect("h.jsonl", ""), Format::Jsonl);
    assert_eq!(Format::detect("h.edn", ""), Format::Edn);
    assert_eq!(
        Format::detect("c50-ok.txt", "{:process 0, :type :ok}"),
        Format::Edn
    );
    assert_eq!(Format::detect("x", r#"{"process":0}"#), Format::Jsonl);
    assert_eq!(
        Format::detect("etcd_000.log", "INFO  jepsen.util - 0\t:invoke"),
        Format::PorcupineEtcd
    );
    for n in Format::NAMES {
        assert!(n.parse::<Format>().is_ok());
    }
    assert!("xml".parse::<Format>().is_err());
}

#[test]
fn unmatched_completion_is_a_history_error() {
    let h = hist(vec![ev(0, "ok", "read", json!(1))]);
    assert!(h.operations().is_err());
}

#[test]
fn invariants_table() {
    let n = Value::Null;
    let cases: Vec<(&str, Invariant, Vec<checkers::Op>, bool)> = vec![
        (
            "acked write visible",
            Invariant::NoLostWrites,
            vec![
                ev(0, "invoke", "add", json!(1)),
                ev(0, "ok", "add", json!(1)),
                ev(1, "invoke", "read", n.clone()),
                ev(1, "ok", "read", json!([1])),
            ],
            true,
        ),
        (
            "acked write lost",
            Invariant::NoLostWrites,
            vec![
                ev(0, "invoke", "add", json!(1)),
                ev(0, "ok", "add", json!(1)),
                ev(1, "invoke", "read", n.clone()),
                ev(1, "ok", "read", json!([])),
            ],
            false,
        ),
        (
            "concurrent write may be missing",
            Invariant::NoLostWrites,
            vec![
                ev(0, "invoke", "add", json!(1)),
                ev(1, "invoke", "read", n.clone()),
                ev(0, "ok", "add", json!(1)),
                ev(1, "ok", "read", json!([])),
            ],
            true,
        ),
        (
            "no duplicates ok",
            Invariant::NoDuplicates,
            vec![
                ev(1, "invoke", "read", n.clone()),
                ev(1, "ok", "read", json!([1, 2])),
            ],
            true,
        ),
        (
            "duplicate",
            Invariant::NoDuplicates,
            vec![
                ev(0, "invoke", "append", json!(1)),
                ev(0, "ok", "append", json!(1)),
                ev(1, "invoke", "read", n.clone()),
                ev(1, "ok", "read", json!([1, 1])),
            ],
            false,
        ),
        (
            "retry applied twice",
            Invariant::IdempotentRetries,
            vec![
                ev(0, "invoke", "append", json!(1)),
                ev(0, "info", "append", json!(1)),
                ev(2, "invoke", "append", json!(1)),
                ev(2, "ok", "append", json!(1)),
                ev(1, "invoke", "read", n.clone()),
                ev(1, "ok", "read", json!([1, 1])),
            ],
            false,
        ),
        (
            "retry applied once",
            Invariant::IdempotentRetries,
            vec![
                ev(0, "invoke", "append", json!(1)),
                ev(0, "info", "append", json!(1)),
                ev(2, "invoke", "append", json!(1)),
                ev(2, "ok", "append", json!(1)),
                ev(1, "invoke", "read", n.clone()),
                ev(1, "ok", "read", json!([1])),
            ],
            true,
        ),
        (
            "monotonic",
            Invariant::MonotonicReads,
            vec![
                ev(1, "invoke", "read", n.clone()),
                ev(1, "ok", "read", json!(3)),
                ev(1, "invoke", "read", n.clone()),
                ev(1, "ok", "read", json!(4)),
            ],
            true,
        ),
        (
            "read went backwards",
            Invariant::MonotonicReads,
            vec![
                ev(1, "invoke", "read", n.clone()),
                ev(1, "ok", "read", json!([1, 2])),
                ev(1, "invoke", "read", n.clone()),
                ev(1, "ok", "read", json!([1])),
            ],
            false,
        ),
        (
            "counter within bounds with pending add",
            Invariant::CounterBounds,
            vec![
                ev(0, "invoke", "add", json!(2)),
                ev(0, "ok", "add", json!(2)),
                ev(2, "invoke", "add", json!(5)),
                ev(1, "invoke", "read", n.clone()),
                ev(1, "ok", "read", json!(7)),
            ],
            true,
        ),
        (
            "counter below acknowledged",
            Invariant::CounterBounds,
            vec![
                ev(0, "invoke", "add", json!(2)),
                ev(0, "ok", "add", json!(2)),
                ev(1, "invoke", "read", n.clone()),
                ev(1, "ok", "read", json!(1)),
            ],
            false,
        ),
        (
            "counter above attempted",
            Invariant::CounterBounds,
            vec![
                ev(0, "invoke", "add", json!(2)),
                ev(0, "ok", "add", json!(2)),
                ev(1, "invoke", "read", n.clone()),
                ev(1, "ok", "read", json!(3)),
            ],
            false,
        ),
    ];
    let mut wrong = Vec::new();
    for (name, inv, ops, ok) in cases {
        let r = invariants::check(inv, &hist(ops).operations().unwrap());
        if r.is_ok() != ok {
            wrong.push(format!("{name}: want ok={ok}, got {r:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn registry_names_parse() {
    for n in Checker::NAMES {
        let c: Checker = n.parse().unwrap();
        assert_eq!(c.name(), n);
    }
    let e = "nope".parse::<Checker>().unwrap_err();
    assert_eq!(e.exit_code(), 64);
    assert!(e.to_string().contains("cas-register"));
}

#[test]
fn durations() {
    assert_eq!(parse_duration("50ms").unwrap(), Duration::from_millis(50));
    assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
    assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    assert!(matches!(
        parse_duration("ten"),
        Err(CheckError::BadDuration(_))
    ));
}

#[test]
fn check_file_and_html() {
    let dir = std::env::temp_dir().join(format!("checkers-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("h.jsonl");
    let h = hist(vec![
        ev(0, "invoke", "write", json!(1)),
        ev(0, "ok", "write", json!(1)),
        ev(-1, "invoke", "start", n()).with_nemesis(),
        ev(-1, "info", "landing", json!({"id": "cut", "applied": 3})).with_nemesis(),
        ev(1, "invoke", "read", n()),
        ev(-1, "info", "landing", json!({"id": "cut", "applied": 40})).with_nemesis(),
        ev(1, "ok", "read", json!(2)),
        ev(-1, "info", "stop", n()).with_nemesis(),
    ]);
    std::fs::write(&path, jsonl::export(&h)).unwrap();
    let (h2, report) = check_file(&path, "register", None, Some(Duration::from_secs(5))).unwrap();
    assert_eq!(report.verdict, Verdict::Illegal);
    assert_eq!(report.exit_code, 1);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["verdict"], "illegal");
    assert_eq!(json["result"]["witness"]["kind"], "linearizability");
    let page = html::render(&h2, &report);
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("class=\"op hot\""));
    assert!(page.contains("class=\"fault\""));
    assert_eq!(h2.landing_series()["cut"], vec![(3, 3), (5, 40)]);
    assert!(page.contains("<polyline") && page.contains("cut: applied 40"));
    assert!(!page.contains("<script src"));
    let missing = check_file(&dir.join("missing.jsonl"), "register", None, None).unwrap_err();
    assert_eq!(missing.exit_code(), 5);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn n() -> Value {
    Value::Null
}

trait Nemesis {
    fn with_nemesis(self) -> Self;
}

impl Nemesis for checkers::Op {
    fn with_nemesis(mut self) -> Self {
        self.process = checkers::Process::Name("nemesis".into());
        self
    }
}
