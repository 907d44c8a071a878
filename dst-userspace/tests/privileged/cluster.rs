//! The multi-node coordinator on this machine: three network namespaces as nodes on a bridge
//! plus a fourth for the coordinator, one `dst daemon` per node inside its namespace serving
//! TCP on the node's address with a token. `dst cluster partition` cuts {n1,n2}|{n3}, evidence
//! comes from all three daemons in one report, heal restores traffic; `dst cluster delay`
//! delays traffic between the groups only, then heals; a daemon killed between
//! prepare and commit, or one refusing at prepare, rolls every other node back.

use std::{process::Command, time::Duration};

use dst::{
    cluster::{ClusterFault, Coordinator, Inventory},
    testing::{Topology, udp_sequence, udp_timed},
};
use serde_json::Value;

use super::{
    support::{Daemon, Scratch, join_netns, skip_without, start_nodes},
    unique,
};

const PORT: u16 = 7070;

fn lost(got: &[bool]) -> usize {
    got.iter().filter(|&&g| !g).count()
}

/// Runs `dst --json cluster --inventory INV ARGS` inside the coordinator's namespace.
fn cluster_cli(ctl: &dst::netns::NetNs, inv: &std::path::Path, args: &[&str]) -> (i32, Value) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dst"));
    cmd.args(["--json", "cluster", "--inventory"])
        .arg(inv)
        .args(args);
    join_netns(&mut cmd, ctl);
    let out = cmd.output().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    if v.is_null() {
        eprintln!(
            "dst cluster {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (out.status.code().unwrap_or(-1), v)
}

fn faults_of(d: &Daemon) -> Value {
    dst::client::Client::new(&d.socket)
        .request_blocking(hyper::Method::GET, "/v1/faults", None)
        .unwrap()
        .json()["faults"]
        .clone()
}

#[test]
fn coordinator_partitions_heals_and_rolls_back() {
    if skip_without(&["tcx"]) {
        return;
    }
    let topo = Topology::new(&unique("dstc"), 4, 91).expect("topology");
    let (n1, n2, n3, ctl) = (
        &topo.hosts[0],
        &topo.hosts[1],
        &topo.hosts[2],
        &topo.hosts[3],
    );
    let dir = Scratch::new("cluster");
    let (mut daemons, inv_path) = start_nodes(&dir, &topo.hosts[..3], PORT);
    let inv = std::fs::read_to_string(&inv_path).unwrap();

    let (code, status) = cluster_cli(&ctl.ns, &inv_path, &["status"]);
    assert_eq!(code, 0, "{status}");

    // Partition {n1,n2} | {n3}.
    let (code, applied) = cluster_cli(
        &ctl.ns,
        &inv_path,
        &[
            "partition",
            "--group",
            "n1,n2",
            "--group",
            "n3",
            "--duration",
            "60s",
        ],
    );
    assert_eq!(code, 0, "{applied}");
    assert_eq!(applied["committed"], true);
    let txn = applied["txn"].as_str().unwrap().to_string();
    let n13 = udp_sequence(n1, n3, 9100, 200).unwrap();
    let n23 = udp_sequence(n2, n3, 9101, 200).unwrap();
    let n31 = udp_sequence(n3, n1, 9102, 200).unwrap();
    let n12 = udp_sequence(n1, n2, 9103, 200).unwrap();
    let n21 = udp_sequence(n2, n1, 9104, 200).unwrap();
    assert_eq!(
        (lost(&n13), lost(&n23), lost(&n31)),
        (200, 200, 200),
        "partition leaks"
    );
    assert_eq!(
        (lost(&n12), lost(&n21)),
        (0, 0),
        "n1<->n2 must stay connected"
    );

    let out = dir.0.join("report");
    let (code, ev) = cluster_cli(
        &ctl.ns,
        &inv_path,
        &["evidence", "--txn", &txn, "--out", out.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{ev}");
    let (rules, landed, applied_pkts, down) = dst::cluster::report::totals(&ev);
    eprintln!("evidence: {rules} rules, {landed} landed, {applied_pkts} packets, {down} down");
    assert_eq!((rules, down), (4, 0), "{ev}");
    for node in ev["nodes"].as_array().unwrap() {
        let landed_here = node["faults"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["landed"] == true);
        assert!(landed_here, "no landed rule on {}: {node}", node["node"]);
    }
    assert!(applied_pkts >= 600, "{ev}");
    let md = std::fs::read_to_string(out.join("cluster-evidence.md")).unwrap();
    assert!(
        md.contains(&format!("{txn}.n3-n1")) && md.contains(&format!("{txn}.n1-n3")),
        "{md}"
    );

    let (code, healed) = cluster_cli(&ctl.ns, &inv_path, &["heal", "--txn", &txn]);
    assert_eq!(code, 0, "{healed}");
    assert_eq!(
        (
            lost(&udp_sequence(n1, n3, 9105, 200).unwrap()),
            lost(&udp_sequence(n3, n2, 9106, 200).unwrap())
        ),
        (0, 0),
        "heal did not restore traffic"
    );
    for d in &daemons {
        assert_eq!(faults_of(d), serde_json::json!([]));
    }
    eprintln!(
        "apply: prepare {:.1} ms, commit {:.1} ms, total {:.1} ms; heal {:.1} ms",
        applied["prepare_ms"].as_f64().unwrap(),
        applied["commit_ms"].as_f64().unwrap(),
        applied["total_ms"].as_f64().unwrap(),
        healed["ms"].as_f64().unwrap()
    );

    // Delay between {n1,n2} and {n3}: 40 ms one-way across the groups (each side delays its
    // egress towards the other group), none inside a group; heal removes it.
    let (code, delayed) = cluster_cli(
        &ctl.ns,
        &inv_path,
        &[
            "delay",
            "--group",
            "n1,n2",
            "--group",
            "n3",
            "--base",
            "40ms",
            "--duration",
            "60s",
        ],
    );
    assert_eq!(code, 0, "{delayed}");
    let dtxn = delayed["txn"].as_str().unwrap().to_string();
    let median = |got: Vec<dst::testing::Arrival>| {
        assert_eq!(got.len(), 100, "delay must not lose datagrams");
        let mut ms: Vec<f64> = got.iter().map(|a| a.one_way_ns as f64 / 1e6).collect();
        ms.sort_by(|x, y| x.partial_cmp(y).unwrap());
        ms[50]
    };
    let timed = |a, b, port| {
        median(
            udp_timed(
                a,
                b,
                port,
                100,
                Duration::from_millis(2),
                Duration::from_millis(400),
            )
            .unwrap(),
        )
    };
    let (d13, d31, d12) = (
        timed(n1, n3, 9110),
        timed(n3, n1, 9111),
        timed(n1, n2, 9112),
    );
    eprintln!(
        "cluster delay 40ms: one-way median n1->n3 {d13:.2} n3->n1 {d31:.2} n1->n2 {d12:.2} ms"
    );
    assert!((35.0..=45.0).contains(&d13), "n1->n3 {d13:.2} ms");
    assert!((35.0..=45.0).contains(&d31), "n3->n1 {d31:.2} ms");
    assert!(d12 < 20.0, "n1->n2 inside a group was delayed: {d12:.2} ms");
    let (code, ev) = cluster_cli(&ctl.ns, &inv_path, &["evidence", "--txn", &dtxn]);
    assert_eq!(code, 0, "{ev}");
    let held: u64 = ev["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| n["faults"].as_array().unwrap().iter())
        .map(|f| f["evidence"]["delayed"].as_u64().unwrap_or(0))
        .sum();
    assert!(held >= 200, "delayed counters across nodes: {held}: {ev}");
    let (code, healed) = cluster_cli(&ctl.ns, &inv_path, &["heal", "--txn", &dtxn]);
    assert_eq!(code, 0, "{healed}");
    assert!(timed(n1, n3, 9113) < 20.0, "heal did not remove the delay");
    for d in &daemons {
        assert_eq!(faults_of(d), serde_json::json!([]));
    }

    // A node that refuses at prepare (its interface does not exist): nothing anywhere.
    let coord_in_ctl = |inv_text: String, kill_n3: bool, daemons: &mut Vec<Daemon>| {
        let inv = Inventory::parse(&inv_text, &dir.0, &inv_path).unwrap();
        let d3 = daemons.pop().unwrap();
        let (report, d3) = ctl
            .ns
            .run(move || {
                let mut d3 = d3;
                let coord = Coordinator::new(inv, Duration::from_secs(5)).unwrap();
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let f = ClusterFault::Partition {
                    groups: vec![vec!["n1".into(), "n2".into()], vec!["n3".into()]],
                };
                let r = rt
                    .block_on(coord.apply_with(&f, Some(Duration::from_secs(60)), || {
                        if kill_n3 {
                            d3.kill();
                        }
                    }))
                    .unwrap();
                (r, d3)
            })
            .unwrap();
        daemons.push(d3);
        report
    };
    let refusing = inv.replace("name = \"n3\"\n", "name = \"n3\"\ndev = \"nosuch0\"\n");
    let r = coord_in_ctl(refusing, false, &mut daemons);
    assert!(!r.committed, "{r:?}");
    assert!(
        r.commit.is_empty(),
        "commit must not start after a refused prepare"
    );
    let p3 = r.prepare.iter().find(|s| s.node == "n3").unwrap();
    assert_eq!(p3.status, 422, "{p3:?}");
    for d in &daemons {
        assert_eq!(faults_of(d), serde_json::json!([]));
    }
    eprintln!(
        "refused prepare rolled back in {:.1} ms (total {:.1} ms)",
        r.rollback_ms, r.total_ms
    );

    // n3's daemon killed between prepare and commit: n1 and n2 roll back.
    let r = coord_in_ctl(inv.clone(), true, &mut daemons);
    assert!(!r.committed, "{r:?}");
    let c3 = r.commit.iter().find(|s| s.node == "n3").unwrap();
    assert!(!c3.ok && c3.status == 0, "{c3:?}");
    assert!(
        r.rollback.iter().filter(|s| s.node != "n3").all(|s| s.ok),
        "{r:?}"
    );
    for d in &daemons[..2] {
        assert_eq!(faults_of(d), serde_json::json!([]), "a node kept its rules");
    }
    assert_eq!(
        (
            lost(&udp_sequence(n1, n3, 9107, 200).unwrap()),
            lost(&udp_sequence(n2, n3, 9108, 200).unwrap())
        ),
        (0, 0),
        "traffic affected after rollback"
    );
    eprintln!(
        "killed n3 mid-apply: commit {:.1} ms, rollback {:.1} ms, total {:.1} ms; n1/n2 faults empty",
        r.commit_ms, r.rollback_ms, r.total_ms
    );
}
