//! `dst run --inventory` end to end: three network namespaces as cluster nodes, each running
//! the example replicated service and a `dst daemon` on TCP with a token, and a fourth as the
//! runner. The runner's clients talk to the nodes from the fourth namespace and the isolate
//! nemesis is applied and healed through the daemons: the safe service passes with the
//! partition proven by every node's counters, the unsafe one fails with a witness; a node
//! that refuses its rules, or a daemon that is down, gives ENVIRONMENT_ERROR with nothing left
//! applied anywhere.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use dst::{netns::NetNs, testing::Topology};
use serde_json::Value;

use super::{
    support::{Daemon, Scratch, join_netns, skip_without, start_nodes},
    unique,
};

const API: u16 = 7070;
const KV: u16 = 7000;

/// The demo scenario without a start command (the service already runs on the nodes) on a
/// short schedule: 6 s of workload, the primary n1 cut off from 1.5 s to 4 s.
const SCENARIO: &str = r#"
[claim]
id = "acknowledged_adds_survive_primary_partition"
statement = "Every ADD the service acknowledges is present in every later read, even when the primary is partitioned away."

[topology]
hosts = 3

[sut]
port = 7000
health_timeout = "10s"

[workload]
client = "kv-set"
clients = 6
rate = 150
duration = "6s"
read_share = 0.2
keys = 1
op_timeout = "1s"
settle = "1s"

[[nemesis]]
id = "isolate-primary"
shape = "isolate"
node = 1
start = "1500ms"
duration = "2500ms"
min_applied = 10

[checker]
model = "set"
linearizable = false
invariants = ["no-lost-writes"]

[run]
seed = 42
min_ops = 100
min_ops_per_window = 10
"#;

/// The example service on every node, killed and reaped on drop.
struct Service(Vec<Child>);

impl Service {
    fn start(topo: &Topology, dir: &Path, unsafe_mode: bool) -> Self {
        let bin = Path::new(env!("CARGO_BIN_EXE_dst")).with_file_name("dst-example-kv");
        assert!(
            bin.exists(),
            "{} is missing: build it with `cargo build -p dst-example-kv`",
            bin.display()
        );
        let peers: Vec<String> = topo.hosts[..3]
            .iter()
            .map(|h| format!("{}:{KV}", h.addr))
            .collect();
        let mut children = Vec::new();
        for (i, h) in topo.hosts[..3].iter().enumerate() {
            let log = std::fs::File::create(dir.join(format!("kv-n{}.log", i + 1))).unwrap();
            let mut cmd = Command::new(&bin);
            cmd.args(["--id", &(i + 1).to_string()])
                .args(["--listen", &format!("{}:{KV}", h.addr)])
                .args(["--peers", &peers.join(",")])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            if unsafe_mode {
                cmd.arg("--unsafe");
            }
            join_netns(&mut cmd, &h.ns);
            children.push(cmd.spawn().expect("starting dst-example-kv"));
        }
        Self(children)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What one `dst --json run` left behind.
struct Run {
    code: i32,
    out: PathBuf,
    stdout: Value,
    verdict: Value,
    evidence: Value,
    report: String,
    history: Vec<Value>,
}

/// Runs `dst --json run SCENARIO --inventory INV --out DIR` inside the runner's namespace.
fn dst_run(runner: &NetNs, dir: &Path, inv: &Path, name: &str) -> Run {
    let scenario = dir.join(format!("{name}.toml"));
    std::fs::write(&scenario, SCENARIO).unwrap();
    let out = dir.join(name);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dst"));
    cmd.args(["--json", "run"])
        .arg(&scenario)
        .arg("--inventory")
        .arg(inv)
        .arg("--out")
        .arg(&out);
    join_netns(&mut cmd, runner);
    let o = cmd.output().unwrap();
    eprintln!(
        "dst run ({name}): exit {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    if std::env::var_os("DST_KEEP_RUN").is_some() {
        let _ = Command::new("cp")
            .arg("-r")
            .arg(&out)
            .arg(format!("/tmp/keep-{name}"))
            .status();
    }
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap_or_default();
    let json = |f: &str| serde_json::from_str(&read(f)).unwrap_or(Value::Null);
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: serde_json::from_slice(&o.stdout).unwrap_or(Value::Null),
        verdict: json("verdict.json"),
        evidence: json("evidence.json"),
        report: read("report.md"),
        history: read("history.jsonl")
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
        out,
    }
}

impl Run {
    fn count(&self, kind: &str, f: Option<&str>) -> usize {
        self.history
            .iter()
            .filter(|o| o["type"] == kind && f.is_none_or(|f| o["f"] == f))
            .count()
    }
}

fn active_faults(d: &Daemon) -> Value {
    dst::client::Client::new(&d.socket)
        .request_blocking(hyper::Method::GET, "/v1/faults", None)
        .unwrap()
        .json()["faults"]
        .clone()
}

fn assert_nothing_applied(daemons: &[Daemon], when: &str) {
    for (i, d) in daemons.iter().enumerate() {
        assert_eq!(
            active_faults(d),
            serde_json::json!([]),
            "n{} has active faults {when}",
            i + 1
        );
    }
}

#[test]
fn run_against_an_inventory_applies_the_nemesis_through_the_daemons() {
    if skip_without(&["tcx"]) {
        return;
    }
    let topo = Topology::new(&unique("dstrc"), 4, 92).expect("topology");
    let runner = &topo.hosts[3].ns;
    let dir = Scratch::new("runcluster");
    let (mut daemons, inv_path) = start_nodes(&dir, &topo.hosts[..3], API);
    let inv = std::fs::read_to_string(&inv_path).unwrap();

    // The safe service: the isolate lands on every node and nothing is lost: PASS.
    let safe = {
        let _kv = Service::start(&topo, &dir.0, false);
        dst_run(runner, &dir.0, &inv_path, "safe")
    };
    assert_eq!(safe.code, 0, "verdict {}", safe.verdict);
    assert_eq!(safe.verdict["verdict"], "PASS");
    assert_eq!(safe.stdout["verdict"], "PASS");
    let ok_ops = safe.count("ok", None);
    assert!(ok_ops >= 100, "{ok_ops} ok operations recorded");
    assert_eq!(safe.count("info", Some("start-partition")), 1);
    assert_eq!(safe.count("info", Some("stop-partition")), 1);
    let e = &safe.evidence[0];
    let c = &e["cluster"];
    assert_eq!(c["committed"], true, "{e}");
    assert_eq!(c["fault"], "isolate n1");
    let txn = c["txn"].as_str().unwrap().to_string();
    let mut per_node = Vec::new();
    for node in c["nodes"].as_array().unwrap() {
        let name = node["node"].as_str().unwrap();
        let rules = node["faults"].as_array().unwrap();
        assert_eq!(
            rules.len(),
            if name == "n1" { 2 } else { 1 },
            "rules on {name}: {node}"
        );
        let applied: u64 = rules
            .iter()
            .map(|f| f["evidence"]["applied"].as_u64().unwrap())
            .sum();
        assert!(rules.iter().all(|f| f["state"] != "active"), "{node}");
        per_node.push((name.to_string(), applied));
    }
    // n1 (isolated) drops towards both others; n2 and n3 together drop towards n1 (how much
    // each sends n1 during the cut is the service's business).
    assert!(per_node[0].1 > 0, "no packet dropped on n1: {c}");
    assert!(
        per_node[1].1 + per_node[2].1 > 0,
        "nothing dropped towards n1: {c}"
    );
    let per_node: Vec<String> = per_node.iter().map(|(n, a)| format!("{n} {a}")).collect();
    let total = e["counters"]["applied"].as_u64().unwrap();
    assert!(e["landed"] == true && total >= 10, "{e}");
    assert_eq!(safe.verdict["landings"][0]["applied_in_window"], total);
    assert!(
        safe.report.contains("Rules per node")
            && safe.report.contains(&format!("{txn}.n1-n2"))
            && safe.report.contains(&format!("{txn}.n3-n1")),
        "{}",
        safe.report
    );
    assert!(safe.out.join("report.html").exists());
    assert_nothing_applied(&daemons, "after the safe run");
    eprintln!(
        "safe: PASS, {ok_ops} ok ops of {} invoked; dropped per node: {}; total {total}; \
         prepare {:.1} ms, commit {:.1} ms, heal {:.1} ms; backend {}",
        safe.count("invoke", None),
        per_node.join(", "),
        c["prepare_ms"].as_f64().unwrap(),
        c["commit_ms"].as_f64().unwrap(),
        c["heal_ms"].as_f64().unwrap(),
        e["backend"]
    );

    // The unsafe service acknowledges ADDs the partition then loses: FAIL with a witness.
    let unsafe_ = {
        let _kv = Service::start(&topo, &dir.0, true);
        dst_run(runner, &dir.0, &inv_path, "unsafe")
    };
    assert_eq!(unsafe_.code, 1, "verdict {}", unsafe_.verdict);
    let why = unsafe_.verdict["reasons"].to_string();
    assert!(why.contains("no-lost-writes"), "{why}");
    assert_eq!(unsafe_.evidence[0]["cluster"]["committed"], true);
    assert_nothing_applied(&daemons, "after the unsafe run");
    eprintln!("unsafe: FAIL: {why}");

    // n3 refuses its rule (no such interface): the apply is rolled back on every node and the
    // run says the environment failed, not that the partition happened.
    let refusing = inv.replace("name = \"n3\"\n", "name = \"n3\"\ndev = \"nosuch0\"\n");
    let refusing_path = dir.0.join("refusing.toml");
    std::fs::write(&refusing_path, refusing).unwrap();
    let refused = {
        let _kv = Service::start(&topo, &dir.0, false);
        dst_run(runner, &dir.0, &refusing_path, "refused")
    };
    assert_eq!(refused.code, 6, "verdict {}", refused.verdict);
    assert_eq!(refused.verdict["verdict"], "ENVIRONMENT_ERROR");
    let why = refused.verdict["reasons"].to_string();
    assert!(why.contains("rolled back") && why.contains("n3"), "{why}");
    let c = &refused.evidence[0]["cluster"];
    assert_eq!(c["committed"], false, "{c}");
    assert!(c["refusals"].to_string().contains("n3"), "{c}");
    assert_eq!(refused.evidence[0]["landed"], false);
    assert_eq!(refused.count("info", Some("start-partition")), 0);
    assert_eq!(refused.count("info", Some("partition-refused")), 1);
    assert!(
        refused.count("ok", None) >= 100,
        "the history is still recorded"
    );
    assert!(
        refused.report.contains("not committed"),
        "{}",
        refused.report
    );
    assert_nothing_applied(&daemons, "after the refused run");
    eprintln!(
        "refused: ENVIRONMENT_ERROR; prepare {:.1} ms, rollback {:.1} ms; {}",
        c["prepare_ms"].as_f64().unwrap(),
        c["rollback_ms"].as_f64().unwrap(),
        c["refusals"]
    );

    // n3's daemon is down: nothing starts, nothing is applied on n1 and n2.
    daemons[2].kill();
    let down = {
        let _kv = Service::start(&topo, &dir.0, false);
        dst_run(runner, &dir.0, &inv_path, "down")
    };
    assert_eq!(down.code, 6, "verdict {}", down.verdict);
    let why = down.verdict["reasons"].to_string();
    assert!(why.contains("n3") && why.contains("not answering"), "{why}");
    assert_eq!(
        down.count("invoke", None),
        0,
        "no workload without the daemons"
    );
    assert_nothing_applied(&daemons[..2], "after the run with n3 down");
    eprintln!("down: ENVIRONMENT_ERROR: {why}");
}
