//! Times the checkers: the 102 etcd + 6 kv Porcupine histories (checking only, parsing
//! excluded; best of N; single-threaded and parallel) and Elle list-append on a generated
//! 100,000-transaction history. Prints a Markdown table, or JSON with `--json`.
//!
//! Usage: `cargo run --release -p checkers --example bench_check -- TESTDATA_DIR [--runs N] [--json]`

use checkers::format::Format;
use checkers::history::Operation;
use checkers::linearizable::Prepared;
use checkers::model::{CasRegister, Kv};
use checkers::{Budget, linearizable};
use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Case {
    name: String,
    kv: bool,
    ops: Vec<Operation>,
    /// Model-encoded operations (the typed inputs Porcupine's parser produces).
    kv_prep: Option<Prepared<Kv>>,
    reg_prep: Option<Prepared<CasRegister>>,
}

/// Checking only: search over already-encoded operations.
fn check(c: &Case) -> bool {
    let b = Budget::unlimited();
    let r = match (&c.kv_prep, &c.reg_prep) {
        (Some(p), _) => linearizable::check_prepared(&Kv, &c.ops, p, &b),
        (_, Some(p)) => linearizable::check_prepared(&CasRegister, &c.ops, p, &b),
        _ => unreachable!(),
    };
    r.is_ok()
}

/// Encoding plus checking.
fn check_all(c: &Case) -> bool {
    let b = Budget::unlimited();
    let r = if c.kv {
        linearizable::check(&Kv, &c.ops, &b)
    } else {
        linearizable::check(&CasRegister, &c.ops, &b)
    };
    r.expect("model").is_ok()
}

fn load(dir: &std::path::Path) -> Vec<Case> {
    let root = dir.join("porcupine");
    let manifest =
        std::fs::read_to_string(root.join("MANIFEST.tsv")).expect("MANIFEST.tsv in testdata dir");
    let mut cases = Vec::new();
    for line in manifest.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        if !matches!(cols.get(1), Some(&"true") | Some(&"false")) {
            continue;
        }
        let path = root.join(cols[0]);
        let text = std::fs::read_to_string(&path).expect("history");
        let name = cols[0].rsplit('/').next().unwrap().to_string();
        let h = Format::detect(&name, &text).parse(&text).expect("parse");
        let ops = h.operations().expect("pair");
        let kv = !name.starts_with("etcd");
        let kv_prep = kv.then(|| linearizable::prepare(&Kv, &ops).expect("encode"));
        let reg_prep = (!kv).then(|| linearizable::prepare(&CasRegister, &ops).expect("encode"));
        cases.push(Case {
            kv,
            name,
            ops,
            kv_prep,
            reg_prep,
        });
    }
    cases
}

fn best_of(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let dir = PathBuf::from(
        args.iter()
            .find(|a| !a.starts_with("--") && a.parse::<usize>().is_err())
            .map_or(
                concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/testdata"),
                String::as_str,
            ),
    );
    let cases = load(&dir);
    let etcd: Vec<&Case> = cases.iter().filter(|c| !c.kv).collect();
    let pool1 = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let pool = rayon::ThreadPoolBuilder::new().build().unwrap();

    // Per-history single-threaded times.
    let mut per: Vec<(String, f64)> = Vec::new();
    pool1.install(|| {
        for c in &cases {
            if std::env::var_os("BENCH_VERBOSE").is_some() {
                eprintln!("checking {}", c.name);
            }
            per.push((
                c.name.clone(),
                ms(best_of(runs, || {
                    check(c);
                })),
            ));
        }
    });
    per.sort_by(|a, b| b.1.total_cmp(&a.1));
    let etcd_single = pool1.install(|| {
        best_of(runs, || {
            etcd.iter().for_each(|c| {
                check(c);
            })
        })
    });
    let etcd_par = pool.install(|| {
        best_of(runs, || {
            use rayon::prelude::*;
            etcd.par_iter().for_each(|c| {
                check(c);
            })
        })
    });
    let kv_time = |name: &str, p: &rayon::ThreadPool| {
        let c = cases.iter().find(|c| c.name == name).expect("kv case");
        ms(p.install(|| {
            best_of(runs, || {
                check(c);
            })
        }))
    };
    let etcd_enc = pool1.install(|| {
        best_of(runs, || {
            etcd.iter().for_each(|c| {
                check_all(c);
            })
        })
    });
    let kv_enc = |name: &str| {
        let c = cases.iter().find(|c| c.name == name).expect("kv case");
        ms(pool1.install(|| {
            best_of(runs, || {
                check_all(c);
            })
        }))
    };
    let encoded = [
        ("etcd x102", ms(etcd_enc)),
        ("kv c50-ok", kv_enc("c50-ok.txt")),
        ("kv c50-bad", kv_enc("c50-bad.txt")),
    ];
    let rows = [
        ("etcd x102", ms(etcd_single), ms(etcd_par)),
        (
            "kv c50-ok",
            kv_time("c50-ok.txt", &pool1),
            kv_time("c50-ok.txt", &pool),
        ),
        (
            "kv c50-bad",
            kv_time("c50-bad.txt", &pool1),
            kv_time("c50-bad.txt", &pool),
        ),
    ];
    let (elle_ms, elle_txns) = elle_bench();
    if json {
        let v = serde_json::json!({
            "threads": pool.current_num_threads(),
            "runs": runs,
            "rows": rows.iter().map(|(n, s, p)| serde_json::json!({"name": n, "single_ms": s, "parallel_ms": p})).collect::<Vec<_>>(),
            "slowest": per.iter().take(5).map(|(n, t)| serde_json::json!({"name": n, "ms": t})).collect::<Vec<_>>(),
            "elle_list_append": {"txns": elle_txns, "ms": elle_ms},
            "with_encoding_single_ms": encoded.iter().map(|(n, t)| serde_json::json!({"name": n, "ms": t})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap());
    } else {
        println!(
            "| checking (parse excluded, best of {runs}) | 1 thread (ms) | {} threads (ms) |",
            pool.current_num_threads()
        );
        println!("|---|---:|---:|");
        for (n, s, p) in rows {
            println!("| {n} | {s:.1} | {p:.1} |");
        }
        println!("| elle list-append, {elle_txns} txns | {elle_ms:.0} | |");
        println!("\nincluding model encoding of the parsed ops (1 thread):");
        for (n, t) in encoded {
            println!("- {n}: {t:.1} ms");
        }
        println!("\nslowest single histories (1 thread):");
        for (n, t) in per.iter().take(5) {
            println!("- {n}: {t:.2} ms");
        }
    }
}

fn elle_bench() -> (f64, usize) {
    use checkers::elle::generate::{Workload, history};
    let n = 100_000;
    let h = history(Workload::ListAppend, n, 10, 42);
    let ops = h.operations().expect("pair");
    let t = Instant::now();
    let anomalies = checkers::elle::list_append::check(&ops).expect("list-append");
    let d = t.elapsed();
    assert!(
        anomalies.is_empty(),
        "generated history must be valid: {:?}",
        anomalies.first()
    );
    (ms(d), n)
}
