//! The runner end to end: the demo's safe/unsafe outcomes, then every verdict rule produced by a
//! real run (shortened schedules so the module takes about a minute).

use std::time::Duration;

use dst::{
    runner::{self, RunOptions, scenario::Scenario},
    verdict::Verdict,
};

use super::unique;

const DEMO: &str = include_str!("../../../examples/scenarios/replicated-kv-partition.toml");

/// The demo scenario on a shorter schedule: 5 s workload, the primary cut off from 1 s to 3.5 s.
fn short() -> Scenario {
    let mut s = Scenario::parse(DEMO).unwrap();
    s.workload.duration = Duration::from_secs(5);
    s.workload.settle = Duration::from_secs(1);
    s.nemesis[0].start = Duration::from_secs(1);
    s.nemesis[0].duration = Duration::from_millis(2500);
    s.run.min_ops = 100;
    s.run.min_ops_per_window = 10;
    s.validate().unwrap();
    s
}

fn run(s: &Scenario, name: &str, rerun: bool) -> (runner::RunOutcome, tempdir::Dir) {
    let dir = tempdir::Dir::new(name);
    let opts = RunOptions {
        out: dir.0.clone(),
        prefix: unique("dstr"),
        reproduce: format!("test {name}"),
        scenario_path: format!("<test {name}>"),
        scenario_id: name.to_string(),
        inventory: None,
    };
    let outcome =
        runner::run_with_rerun(s, &opts, rerun, &|_| {}).expect("the runner writes its report");
    for f in [
        "report.md",
        "verdict.json",
        "evidence.json",
        "history.jsonl",
    ] {
        assert!(dir.0.join(f).exists(), "{name}: {f} missing");
    }
    (outcome, dir)
}

mod tempdir {
    /// A scratch directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(name: &str) -> Self {
            let p = std::env::temp_dir().join(format!("dst-runner-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            Self(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn demo_safe_passes_and_unsafe_loses_acknowledged_writes() {
    let safe = short();
    let (o, _d) = run(&safe, "safe", false);
    assert_eq!(
        o.decision.verdict,
        Verdict::Pass,
        "{:?}",
        o.decision.reasons
    );
    assert!(
        o.evidence
            .iter()
            .all(|e| e.landed && e.counters.applied >= 10),
        "every nemesis landed"
    );

    let mut unsafe_ = short();
    unsafe_.sut.start.push_str(" --unsafe");
    let (o, d) = run(&unsafe_, "unsafe", false);
    assert_eq!(
        o.decision.verdict,
        Verdict::Fail,
        "{:?}",
        o.decision.reasons
    );
    let why = o.decision.reasons.join(" ");
    assert!(
        why.contains("no-lost-writes") && why.contains("acknowledged"),
        "witness names a lost acknowledged write: {why}"
    );
    let report = std::fs::read_to_string(d.0.join("report.md")).unwrap();
    assert!(
        report.contains("FAIL") && report.contains("Witness"),
        "{report}"
    );
}

#[test]
fn fault_on_an_unused_port_is_not_landed() {
    let mut s = short();
    s.nemesis[0].port = Some(9);
    let (o, _d) = run(&s, "notlanded", false);
    assert_eq!(
        o.decision.verdict,
        Verdict::NotLanded,
        "{:?}",
        o.decision.reasons
    );
    assert_eq!(o.evidence[0].counters.applied, 0);
}

#[test]
fn too_few_operations_is_insufficient_history() {
    let mut s = short();
    s.run.min_ops = 1_000_000;
    let (o, _d) = run(&s, "thin", false);
    assert_eq!(
        o.decision.verdict,
        Verdict::InsufficientHistory,
        "{:?}",
        o.decision.reasons
    );
}

#[test]
fn a_one_millisecond_checker_budget_is_inconclusive() {
    let mut s = short();
    s.checker.linearizable = true;
    s.checker.timeout = Duration::from_millis(1);
    s.workload.rate = 300;
    let (o, _d) = run(&s, "budget", false);
    assert_eq!(
        o.decision.verdict,
        Verdict::Inconclusive,
        "{:?}",
        o.decision.reasons
    );
}

#[test]
fn a_client_that_cannot_speak_to_the_system_is_a_harness_error() {
    let mut s = short();
    // A "service" that answers every line with something outside the protocol.
    s.sut.start = "python3 -c 'import socketserver as s\nclass H(s.StreamRequestHandler):\n def handle(self):\n  for l in self.rfile: self.wfile.write(b\"HELLO\\n\")\ns.ThreadingTCPServer.allow_reuse_address=True\ns.ThreadingTCPServer((\"{addr}\",{port}),H).serve_forever()'".into();
    s.nemesis.clear();
    let (o, _d) = run(&s, "harness", false);
    assert_eq!(
        o.decision.verdict,
        Verdict::HarnessError,
        "{:?}",
        o.decision.reasons
    );
    assert!(o.decision.reasons.join(" ").contains("HELLO"));
}

#[test]
fn a_system_that_does_not_start_is_an_environment_error() {
    let mut s = short();
    s.sut.start = "false".into();
    s.sut.health_timeout = Duration::from_secs(1);
    let (o, _d) = run(&s, "env", false);
    assert_eq!(
        o.decision.verdict,
        Verdict::EnvironmentError,
        "{:?}",
        o.decision.reasons
    );
}

#[test]
fn a_missing_precondition_is_not_run() {
    let mut s = short();
    s.run.requires = vec!["dst-no-such-program".into()];
    let (o, _d) = run(&s, "notrun", false);
    assert_eq!(
        o.decision.verdict,
        Verdict::NotRun,
        "{:?}",
        o.decision.reasons
    );
}

#[test]
fn a_failure_the_same_seed_does_not_reproduce_is_flaky() {
    // Node 1 runs unsafe only the first time (a flag file marks the first start), so the first
    // run loses acknowledged writes and the same-seed re-run does not.
    let flag = std::env::temp_dir().join(format!("dst-flaky-{}", std::process::id()));
    let _ = std::fs::remove_file(&flag);
    let mut s = short();
    let base = s.sut.start.clone();
    s.sut.start = format!(
        "if [ {{id}} = 1 ] && [ ! -e {f} ]; then touch {f}; exec {base} --unsafe; else exec {base}; fi",
        f = flag.display()
    );
    let (o, d) = run(&s, "flaky", true);
    let _ = std::fs::remove_file(&flag);
    assert_eq!(
        o.decision.verdict,
        Verdict::Flaky,
        "{:?}",
        o.decision.reasons
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.0.join("verdict.json")).unwrap()).unwrap();
    assert_eq!(v["verdict"], "FLAKY");
    assert_eq!(v["exit_code"], 7);
}

/// A real 3-member etcd cluster from Debian's packages (installed by scripts/setup): the
/// scenario must reach a decided verdict with its partition landed.
#[test]
fn etcd_cluster_under_member_isolation_is_decided_with_the_partition_landed() {
    let text = include_str!("../../../examples/scenarios/etcd-register-partition.toml");
    let mut s = Scenario::parse(text).unwrap();
    s.workload.duration = Duration::from_secs(12);
    s.nemesis[0].start = Duration::from_secs(3);
    s.nemesis[0].duration = Duration::from_secs(6);
    s.validate().unwrap();
    let (o, _d) = run(&s, "etcd", false);
    assert!(
        matches!(o.decision.verdict, Verdict::Pass | Verdict::Fail),
        "etcd run not decided: {:?} {:?}",
        o.decision.verdict,
        o.decision.reasons
    );
    assert!(
        o.evidence[0].landed && o.evidence[0].counters.applied >= 20,
        "{:?}",
        o.evidence[0].counters
    );
}

/// Redis primary + asynchronous replica (Debian's redis-server): replica reads miss acknowledged
/// adds, which the no-lost-writes invariant reports with the add and the read that missed it.
#[test]
fn redis_async_replica_misses_acknowledged_adds() {
    let text = include_str!("../../../examples/scenarios/redis-replica-partition.toml");
    let mut s = Scenario::parse(text).unwrap();
    s.workload.duration = Duration::from_secs(6);
    s.nemesis[0].start = Duration::from_secs(2);
    s.nemesis[0].duration = Duration::from_secs(3);
    s.validate().unwrap();
    let (o, _d) = run(&s, "redis", false);
    assert_eq!(
        o.decision.verdict,
        Verdict::Fail,
        "{:?}",
        o.decision.reasons
    );
    assert!(o.decision.reasons.join(" ").contains("no-lost-writes"));
    assert!(o.evidence[0].landed, "{:?}", o.evidence[0].counters);
}

/// The generic exec client (a shell command per operation) drives the example service: the
/// same decided verdicts as the built-in client; a command killed by a signal is a client crash.
#[test]
fn exec_client_decides_and_a_crashing_client_is_a_harness_error() {
    let text = include_str!("../../../examples/scenarios/replicated-kv-exec.toml");
    let mut s = Scenario::parse(text).unwrap();
    s.workload.duration = Duration::from_secs(5);
    s.nemesis[0].start = Duration::from_secs(1);
    s.nemesis[0].duration = Duration::from_secs(3);
    s.run.min_ops = 60;
    s.validate().unwrap();
    let mut unsafe_ = s.clone();
    unsafe_.sut.start.push_str(" --unsafe");
    let (o, _d) = run(&unsafe_, "exec-unsafe", false);
    assert_eq!(
        o.decision.verdict,
        Verdict::Fail,
        "{:?}",
        o.decision.reasons
    );

    let mut crash = s.clone();
    crash.workload.exec.as_mut().unwrap().command = "kill -9 $$".into();
    crash.nemesis.clear();
    let (o, _d) = run(&crash, "exec-crash", false);
    assert_eq!(
        o.decision.verdict,
        Verdict::HarnessError,
        "{:?}",
        o.decision.reasons
    );
    assert!(o.decision.reasons.join(" ").contains("signal 9"));
}

/// The example plan compiles to scenarios the runner executes, and `dst plan coverage` fills the
/// matrix from those real runs: covered only where the verdict was decided and the nemesis landed.
#[test]
fn plan_coverage_is_filled_from_real_runs() {
    let text = include_str!("../../../examples/plans/replicated-kv.md");
    let plan = planner::parse(text).unwrap();
    let compiled = planner::compile(&plan);
    let mut results = Vec::new();
    let mut dirs = Vec::new();
    for id in [
        "acked_adds_durable_when_primary_isolated",
        "reads_monotonic_across_primary_stepdown",
    ] {
        let toml = compiled
            .iter()
            .find_map(|c| match c {
                planner::Compiled::Scenario { id: cid, toml, .. } if cid == id => {
                    Some(toml.clone())
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("{id} is not a runnable compiled scenario"));
        let mut s = Scenario::parse(&toml).unwrap();
        // A shorter schedule with the same shape, so the test stays quick.
        s.workload.duration = Duration::from_secs(6);
        for n in &mut s.nemesis {
            n.start = Duration::from_secs(1);
            n.duration = Duration::from_secs(3);
        }
        s.run.min_ops = s.run.min_ops.min(100);
        s.run.min_ops_per_window = s.run.min_ops_per_window.min(10);
        s.validate().unwrap();
        let (o, d) = run(&s, id, false);
        assert!(
            matches!(o.decision.verdict, Verdict::Pass | Verdict::Fail),
            "{id}: {:?}",
            o.decision.reasons
        );
        results.push(planner::read_run_dir(&d.0).unwrap());
        dirs.push(d);
    }
    let m = planner::coverage(&plan, &results);
    for id in ["acked_adds_durable", "reads_monotonic"] {
        let c = m.summary.iter().find(|c| c.claim == id).unwrap();
        assert!(
            matches!(
                c.status,
                planner::coverage::Status::Covered | planner::coverage::Status::Falsified
            ),
            "{id}: {:?}\n{}",
            c.status,
            m.render_markdown()
        );
    }
    assert!(m.unmatched_runs.is_empty(), "{:?}", m.unmatched_runs);
}

/// A repeated nemesis: each window is its own kernel-windowed rule set with its own evidence,
/// recorded in the history as its own start/stop pair.
#[test]
fn repeated_nemesis_windows_each_land() {
    let mut s = short();
    s.nemesis[0].start = Duration::from_millis(500);
    s.nemesis[0].duration = Duration::from_secs(1);
    s.nemesis[0].repeat = 2;
    s.nemesis[0].every = Some(Duration::from_secs(2));
    s.run.min_ops_per_window = 5;
    s.validate().unwrap();
    let (o, d) = run(&s, "repeat", false);
    assert!(
        matches!(o.decision.verdict, Verdict::Pass),
        "{:?}",
        o.decision.reasons
    );
    let ids: Vec<&str> = o.evidence.iter().map(|e| e.scheduled.id.as_str()).collect();
    assert_eq!(ids, ["isolate-primary#1", "isolate-primary#2"]);
    assert!(
        o.evidence.iter().all(|e| e.landed),
        "{:?}",
        o.evidence
            .iter()
            .map(|e| e.counters.applied)
            .collect::<Vec<_>>()
    );
    let gap = o.evidence[1].scheduled.start_ns - o.evidence[0].scheduled.start_ns;
    assert_eq!(gap, 2_000_000_000);
    let history = std::fs::read_to_string(d.0.join("history.jsonl")).unwrap();
    assert_eq!(history.matches("\"start-partition\"").count(), 2);
}

fn syscall_nemesis(s: &mut Scenario, syscall: &str, errno: &str) {
    let n = &mut s.nemesis[0];
    n.id = format!("{syscall}-fails-on-n1");
    n.shape = None;
    n.syscall = Some(syscall.into());
    n.errno = Some(errno.into());
    n.node = 1;
    s.validate().unwrap();
}

/// A syscall nemesis: `connect` fails with ECONNREFUSED on host 1 (the primary, which opens a
/// connection per replication) inside its window; the kernel counts the failed calls as its
/// landing evidence and the history holds its start/stop entries.
#[test]
fn a_syscall_nemesis_lands_on_one_hosts_processes() {
    let mut s = short();
    syscall_nemesis(&mut s, "connect", "ECONNREFUSED");
    let (o, d) = run(&s, "sysnem", false);
    assert!(
        matches!(o.decision.verdict, Verdict::Pass),
        "{:?}",
        o.decision.reasons
    );
    let e = &o.evidence[0];
    assert_eq!(e.scheduled.kind, "syscall");
    assert!(e.landed && e.counters.applied > 0, "{e:?}");
    assert_eq!(e.scheduled.backend, "cgroup sock hooks");
    let history = std::fs::read_to_string(d.0.join("history.jsonl")).unwrap();
    assert_eq!(history.matches("\"start-syscall-fault\"").count(), 1);
    assert_eq!(history.matches("\"stop-syscall-fault\"").count(), 1);
    let report = std::fs::read_to_string(d.0.join("report.md")).unwrap();
    assert!(report.contains("n1: connect→ECONNREFUSED"), "{report}");
    eprintln!(
        "syscall nemesis: {} connects of n1 failed in its window ({} matched)",
        e.counters.applied, e.counters.matched
    );
}

/// A scenario asking for a hook the kernel lacks (a `write` fault on running processes needs
/// BPF LSM) is an ENVIRONMENT_ERROR that names the missing mechanism, before any workload.
#[test]
fn a_hook_the_kernel_lacks_is_an_environment_error() {
    if dst::probe::run().has("lsm") {
        eprintln!("SKIP: this kernel has BPF LSM, so a write nemesis is carried, not refused");
        return;
    }
    let mut s = short();
    syscall_nemesis(&mut s, "write", "EIO");
    let (o, _d) = run(&s, "nohook", false);
    assert_eq!(
        o.decision.verdict,
        Verdict::EnvironmentError,
        "{:?}",
        o.decision.reasons
    );
    let why = o.decision.reasons.join(" ");
    assert!(why.contains("write") && why.contains("LSM"), "{why}");
}

/// The Redis kv, counter and list-append clients against a primary and an asynchronous
/// replica: with one client (reading from the primary) the histories check out (PASS); with
/// four clients, half reading from the replica while it is cut off, each checker finds the
/// stale reads (FAIL) — so every client records histories its checker can decide both ways.
#[test]
fn redis_kv_counter_and_list_append_clients_decide() {
    use dst::runner::scenario::Client;
    if !std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        panic!("redis-server is not installed: scripts/setup installs it");
    }
    let text = include_str!("../../../examples/scenarios/redis-list-append-partition.toml");
    let base = Scenario::parse(text).unwrap();
    for (client, model) in [
        (Client::RedisKv, "kv"),
        (Client::RedisCounter, "counter"),
        (Client::RedisListAppend, "list-append"),
    ] {
        let mut s = base.clone();
        s.workload.client = client;
        s.checker.model = model.into();
        s.workload.duration = Duration::from_secs(6);
        s.nemesis[0].start = Duration::from_secs(2);
        s.nemesis[0].duration = Duration::from_secs(3);
        s.validate().unwrap();
        let mut one = s.clone();
        one.workload.clients = 1;
        one.workload.rate = 100;
        one.run.min_ops = 100;
        one.run.min_ops_per_window = 10;
        let (o, _d) = run(&one, &format!("redis-{model}-1"), false);
        assert_eq!(
            o.decision.verdict,
            Verdict::Pass,
            "{model} with one client on the primary: {:?}",
            o.decision.reasons
        );
        let (o, _d) = run(&s, &format!("redis-{model}-4"), false);
        assert_eq!(
            o.decision.verdict,
            Verdict::Fail,
            "{model} with replica reads: {:?}",
            o.decision.reasons
        );
        assert!(o.evidence[0].landed, "{:?}", o.evidence[0].counters);
        eprintln!(
            "redis {model}: PASS with 1 client, FAIL with replica reads: {}",
            o.decision.reasons.join(" | ")
        );
    }
}

/// `topology.attach`: the runner drives a system it did not start — the test builds the
/// namespaces and starts the example service in its own cgroups; dst attaches, partitions and
/// fails syscalls on it, decides, and leaves the namespaces and processes running.
#[test]
fn attach_to_running_hosts_and_cgroups() {
    use dst::{cgroup::Cgroup, runner::scenario::AttachHost, testing::Topology};
    let prefix = unique("dsta");
    let topo = Topology::new(&prefix, 3, 236).expect("topology");
    let mut bin = std::env::current_exe().unwrap();
    bin.pop();
    if bin.ends_with("deps") {
        bin.pop();
    }
    let kv = bin.join("dst-example-kv");
    let peers: Vec<String> = topo
        .hosts
        .iter()
        .map(|h| format!("{}:7000", h.addr))
        .collect();
    // Dropped last (locals drop in reverse order): removes what the children leave.
    let _parent = Cgroup::create(&format!("{prefix}svc")).unwrap();
    let mut cgroups = Vec::new();
    let mut servers = Vec::new();
    for (i, h) in topo.hosts.iter().enumerate() {
        let cg = Cgroup::create(&format!("{prefix}svc/n{}", i + 1)).unwrap();
        let child =
            h.ns.run(|| {
                std::process::Command::new(&kv)
                    .args([
                        "--id",
                        &(i + 1).to_string(),
                        "--listen",
                        &format!("{}:7000", h.addr),
                    ])
                    .args(["--peers", &peers.join(",")])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
            })
            .unwrap()
            .expect("dst-example-kv starts (cargo xtask privileged builds it)");
        cg.add_pid(child.id()).unwrap();
        servers.push(child);
        cgroups.push(cg);
    }
    struct Reap(Vec<std::process::Child>);
    impl Drop for Reap {
        fn drop(&mut self) {
            for c in &mut self.0 {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let mut servers = Reap(servers);
    let mut s = short();
    s.sut.start = String::new();
    s.topology.attach = topo
        .hosts
        .iter()
        .zip(&cgroups)
        .map(|(h, cg)| AttachHost {
            netns: h.ns.name().to_string(),
            addr: h.addr,
            dev: "eth0".into(),
            cgroup: Some(cg.path().to_path_buf()),
        })
        .collect();
    s.validate().unwrap();
    let (o, _d) = run(&s, "attach", false);
    assert_eq!(
        o.decision.verdict,
        Verdict::Pass,
        "{:?}",
        o.decision.reasons
    );
    assert!(o.evidence[0].landed, "{:?}", o.evidence[0].counters);
    let cut = o.evidence[0].counters.applied;
    syscall_nemesis(&mut s, "connect", "ECONNREFUSED");
    let (o, _d) = run(&s, "attach-sys", false);
    assert_eq!(
        o.decision.verdict,
        Verdict::Pass,
        "{:?}",
        o.decision.reasons
    );
    assert!(o.evidence[0].landed, "{:?}", o.evidence[0].counters);
    for (i, c) in servers.0.iter_mut().enumerate() {
        assert!(
            c.try_wait().unwrap().is_none(),
            "dst stopped attached server {} (it must leave it running)",
            i + 1
        );
    }
    for h in &topo.hosts {
        assert!(super::ns_exists(h.ns.name()), "dst removed {}", h.ns.name());
    }
    eprintln!(
        "attach: partition applied {cut} packets, then {} connects of n1 failed, on servers dst did not start",
        o.evidence[0].counters.applied
    );
}
