//! Conformance tier: every answer in shared/testdata/porcupine/MANIFEST.tsv must match.

use checkers::format::Format;
use checkers::model::{CasRegister, Kv};
use checkers::{Budget, CheckResult, linearizable};
use std::path::{Path, PathBuf};

fn testdata() -> PathBuf {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/testdata"
    ));
    assert!(
        dir.join("porcupine/MANIFEST.tsv").is_file(),
        "conformance corpus missing at {}: put the project's `shared/` directory beside the \
         clone (…/shared next to …/main) — these tests fail rather than skip without it",
        dir.display()
    );
    dir.to_path_buf()
}

fn check(path: &Path) -> CheckResult {
    let text = std::fs::read_to_string(path).expect("read history");
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let format = Format::detect(&name, &text);
    let history = format
        .parse(&text)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let ops = history
        .operations()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let budget = Budget::unlimited();
    let r = if name.starts_with("etcd") {
        linearizable::check(&CasRegister, &ops, &budget)
    } else {
        linearizable::check(&Kv, &ops, &budget)
    };
    r.unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_manifest_answer_matches() {
    let root = testdata().join("porcupine");
    let manifest = std::fs::read_to_string(root.join("MANIFEST.tsv")).expect("MANIFEST.tsv");
    let (mut cases, mut wrong) = (0, Vec::new());
    for line in manifest.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        let expected = match cols.get(1) {
            Some(&"true") => true,
            Some(&"false") => false,
            _ => continue, // NO-TEST rows (etcd_095: empty file)
        };
        cases += 1;
        let got = check(&root.join(cols[0]));
        assert!(
            !matches!(got, CheckResult::Unknown { .. }),
            "{}: unknown without a budget",
            cols[0]
        );
        if got.is_ok() != expected {
            wrong.push(format!(
                "{}: expected {expected}, got {:?}",
                cols[0],
                got.verdict()
            ));
        }
    }
    assert_eq!(cases, 108, "MANIFEST.tsv should list 102 etcd + 6 kv cases");
    assert!(
        wrong.is_empty(),
        "{} of {cases} answers differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn illegal_etcd_history_has_a_small_witness() {
    let r = check(&testdata().join("porcupine/jepsen/etcd_000.log"));
    let CheckResult::Illegal {
        witness: checkers::Witness::Linearizability(w),
    } = r
    else {
        panic!("etcd_000 must be illegal");
    };
    assert!(!w.unplaced.is_empty());
    assert!(w.prefix_tail.len() <= 8);
}

#[test]
fn empty_etcd_log_is_an_empty_history() {
    let text = std::fs::read_to_string(testdata().join("porcupine/jepsen/etcd_095.log")).unwrap();
    assert!(Format::PorcupineEtcd.parse(&text).unwrap().is_empty());
}

#[test]
fn budgets_give_unknown_never_a_guess() {
    let path = testdata().join("porcupine/jepsen/etcd_057.log");
    let text = std::fs::read_to_string(path).unwrap();
    let ops = Format::PorcupineEtcd
        .parse(&text)
        .unwrap()
        .operations()
        .unwrap();
    let r = linearizable::check(&CasRegister, &ops, &Budget::with_max_steps(2048)).unwrap();
    assert!(
        matches!(
            r,
            CheckResult::Unknown {
                reason: checkers::UnknownReason::StepBudget { .. }
            }
        ),
        "{r:?}"
    );
    let past = Budget {
        deadline: Some(std::time::Instant::now()),
        max_steps: None,
    };
    let r = linearizable::check(&CasRegister, &ops, &past).unwrap();
    assert!(
        matches!(
            r,
            CheckResult::Unknown {
                reason: checkers::UnknownReason::Timeout { .. }
            }
        ),
        "{r:?}"
    );
    assert_eq!(r.verdict().exit_code(), 3);
}

#[test]
fn kv_partitions_stop_at_first_illegal_on_one_thread() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let r = pool.install(|| check(&testdata().join("porcupine/kv/c50-bad.txt")));
    assert!(r.is_illegal());
}
