//! Network fault engine through the `dst inject` CLI: drop with exact landing evidence and zero
//! blast radius, asymmetric partition, delay and reorder through the delay line, kernel-side
//! cleanup after SIGKILL, seeded replay, and bad input that changes nothing.

use std::{
    collections::BTreeSet,
    io::{BufRead as _, BufReader, Read as _},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::unique;
use dst::{
    netns::NetNs,
    testing::{Host, Topology, late_arrivals, udp_sequence, udp_timed},
};
use serde_json::Value;

/// A `dst --json inject ...` child; killed on drop so a failing test leaves nothing behind.
pub(crate) struct Inject {
    child: Child,
    stderr: String,
}

impl Inject {
    /// Starts the child and waits until it says the fault is live.
    pub(crate) fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dst"))
            .arg("--json")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting dst");
        let mut err = BufReader::new(child.stderr.take().expect("stderr"));
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            if err.read_line(&mut line).unwrap_or(0) == 0 {
                let status = child.wait().expect("wait");
                panic!("dst {args:?} ended ({status}) before the fault was live:\n{seen}");
            }
            seen.push_str(&line);
            if line.contains(" live") {
                break;
            }
        }
        // Keep draining stderr so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = err.read_to_string(&mut rest);
        });
        Self {
            child,
            stderr: seen,
        }
    }

    /// SIGTERM, wait, and parse the evidence the child printed.
    pub(crate) fn finish(mut self) -> Value {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("SIGTERM");
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut out)
            .expect("read stdout");
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "dst exited {status}: {}", self.stderr);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("evidence JSON: {e}: {out}"))
    }
}

impl Drop for Inject {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn u(v: &Value, path: &str) -> u64 {
    v.pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{path} missing in {v}"))
}

pub(crate) fn f(v: &Value, path: &str) -> f64 {
    v.pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{path} missing in {v}"))
}

fn lost(got: &[bool]) -> BTreeSet<usize> {
    got.iter()
        .enumerate()
        .filter(|(_, g)| !**g)
        .map(|(i, _)| i)
        .collect()
}

fn ns_name(h: &Host) -> &str {
    h.ns.name()
}

/// Names of dst programs attached to `dev` in `ns` (both directions), with TCX or as clsact
/// cls_bpf filters (kernels without TCX). A clsact filter whose dead-man lease has lapsed is
/// still listed: it is attached, only inert.
fn dst_programs_on(ns: &NetNs, dev: &str) -> Vec<String> {
    use aya::programs::{SchedClassifier, TcAttachType};
    let mut names = ns
        .run(|| {
            let mut names = Vec::new();
            for ty in [TcAttachType::Ingress, TcAttachType::Egress] {
                if let Ok((_, progs)) = SchedClassifier::query_tcx(dev, ty) {
                    names.extend(
                        progs
                            .iter()
                            .filter_map(|p| p.name_as_str().map(str::to_string)),
                    );
                }
            }
            names.retain(|n| n.starts_with("dst_"));
            names
        })
        .unwrap();
    names.extend(dst_filters_on(ns, dev));
    names
}

/// Names of dst programs attached to `dev` in `ns` as clsact cls_bpf filters.
fn dst_filters_on(ns: &NetNs, dev: &str) -> Vec<String> {
    ns.run(|| {
        let nl = dst::netlink::Netlink::new().expect("netlink socket");
        let index = nl.link_index(dev).expect("device in the namespace");
        // Without a clsact qdisc the kernel answers the dump with an error: nothing attached.
        let mut names = nl.bpf_filter_names(index).unwrap_or_default();
        names.retain(|n| n.starts_with("dst_"));
        names
    })
    .unwrap()
}

/// Must-show: drop 30% of 10,000 UDP datagrams to one port; the receiver's missing count equals
/// the kernel's `applied` exactly, the rate is within binomial bounds, and another port and the
/// reverse direction (which pass through the same attached programs) lose nothing.
#[test]
fn drop_30_percent_applied_equals_receiver_losses() {
    let topo = Topology::new(&unique("dstn"), 2, 240).unwrap();
    let (a, b) = (&topo.hosts[0], &topo.hosts[1]);
    let dst = format!("{}/32", b.addr);
    let inj = Inject::start(&[
        "inject",
        "net",
        "--netns",
        ns_name(a),
        "--dev",
        "eth0",
        "--dir",
        "both",
        "--proto",
        "udp",
        "--dst",
        &dst,
        "--dport",
        "9000",
        "--drop",
        "0.3",
        "--seed",
        "42",
    ]);
    let got = udp_sequence(a, b, 9000, 10_000).unwrap();
    let other_port = udp_sequence(a, b, 9001, 1_000).unwrap();
    let reverse = udp_sequence(b, a, 9000, 1_000).unwrap();
    let ev = inj.finish();
    let missing = lost(&got).len() as u64;
    eprintln!(
        "lost {missing} of 10000, applied {}, passed {}, other port lost {}, reverse lost {}",
        u(&ev, "/counters/applied"),
        u(&ev, "/counters/passed"),
        lost(&other_port).len(),
        lost(&reverse).len()
    );
    assert_eq!(u(&ev, "/counters/matched"), 10_000, "{ev}");
    assert_eq!(
        u(&ev, "/counters/applied"),
        missing,
        "kernel applied vs receiver losses"
    );
    assert_eq!(
        u(&ev, "/counters/applied") + u(&ev, "/counters/passed"),
        10_000
    );
    // Binomial(10000, 0.3): sd ≈ 46; ±6 sd.
    assert!((2_724..=3_276).contains(&missing), "lost {missing}");
    assert!(
        lost(&other_port).is_empty(),
        "blast radius: other port lost packets"
    );
    assert!(
        lost(&reverse).is_empty(),
        "blast radius: reverse direction lost packets"
    );
    assert_eq!(ev["landed"], Value::Bool(true));
    assert_eq!(u(&ev, "/seed"), 42);
    assert!(ev["backend"].as_str().unwrap().contains("tc"), "{ev}");
}

/// Must-show: asymmetric partition A→B blocked, B→A delivered, by counters and receivers.
#[test]
fn asymmetric_partition_blocks_one_direction() {
    let topo = Topology::new(&unique("dstn"), 2, 241).unwrap();
    let (a, b) = (&topo.hosts[0], &topo.hosts[1]);
    let inj = Inject::start(&[
        "inject",
        "partition",
        "--group",
        ns_name(a),
        "--group",
        ns_name(b),
        "--one-way",
    ]);
    let ab = udp_sequence(a, b, 9100, 500).unwrap();
    let ba = udp_sequence(b, a, 9100, 500).unwrap();
    let ev = inj.finish();
    assert_eq!(lost(&ab).len(), 500, "A→B must be blocked");
    assert!(lost(&ba).is_empty(), "B→A must be delivered");
    let faults = ev["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 1, "one-way: one blocked pair: {ev}");
    assert_eq!(
        faults[0]["id"].as_str().unwrap(),
        format!("{}->{}", ns_name(a), ns_name(b))
    );
    assert_eq!(u(&faults[0], "/counters/applied"), 500);
    assert_eq!(
        u(&faults[0], "/counters/matched"),
        500,
        "B→A traffic must not match"
    );
    assert_eq!(faults[0]["landed"], Value::Bool(true));
}

/// Must-show: delay 50 ms ± 10 ms through the delay line; the receiver's one-way delays are
/// centred within ±5 ms of 50 ms and bounded by the jitter; untargeted traffic is not held.
#[test]
fn delay_line_delays_by_the_requested_distribution() {
    let topo = Topology::new(&unique("dstn"), 2, 242).unwrap();
    let (a, b) = (&topo.hosts[0], &topo.hosts[1]);
    let inj = Inject::start(&[
        "inject",
        "net",
        "--backend",
        "delay-line",
        "--netns",
        ns_name(a),
        "--dev",
        "eth0",
        "--proto",
        "udp",
        "--dport",
        "9200",
        "--delay",
        "50ms",
        "--jitter",
        "10ms",
        "--seed",
        "5",
    ]);
    let got = udp_timed(
        a,
        b,
        9200,
        500,
        Duration::from_millis(2),
        Duration::from_millis(500),
    )
    .unwrap();
    let control = udp_timed(a, b, 9201, 100, Duration::ZERO, Duration::from_millis(300)).unwrap();
    let ev = inj.finish();
    assert_eq!(got.len(), 500, "every delayed datagram arrives");
    let mut ms: Vec<f64> = got.iter().map(|x| x.one_way_ns as f64 / 1e6).collect();
    ms.sort_by(|x, y| x.partial_cmp(y).unwrap());
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    let p50 = ms[ms.len() / 2];
    eprintln!(
        "one-way ms: min {:.2} p10 {:.2} p50 {p50:.2} p90 {:.2} max {:.2} mean {mean:.2}",
        ms[0],
        ms[ms.len() / 10],
        ms[ms.len() * 9 / 10],
        ms[ms.len() - 1]
    );
    assert!((45.0..=55.0).contains(&mean), "mean {mean:.2} ms");
    assert!((45.0..=55.0).contains(&p50), "median {p50:.2} ms");
    assert!(
        ms[0] >= 39.5,
        "a datagram was held less than base - jitter: {:.2}",
        ms[0]
    );
    assert_eq!(u(&ev, "/counters/delayed"), 500);
    assert_eq!(u(&ev, "/delay_line/released"), 500);
    assert!(
        (f(&ev, "/delay_line/delay/mean_ms") - 50.0).abs() < 5.0,
        "{ev}"
    );
    assert_eq!(control.len(), 100);
    assert!(
        control.iter().all(|x| x.one_way_ns < 40_000_000),
        "untargeted port was delayed"
    );
    assert!(ev["backend"].as_str().unwrap().contains("delay-line"));
}

/// Must-show: reorder makes the receiver see out-of-order sequence numbers, and the counters
/// match: every packet the delay line released after later ones overtook it is late at the
/// receiver, and the kernel's `reordered` count is those plus the tail held to the timeout.
#[test]
fn reorder_is_observed_by_the_receiver_and_counted() {
    let topo = Topology::new(&unique("dstn"), 2, 243).unwrap();
    let (a, b) = (&topo.hosts[0], &topo.hosts[1]);
    let inj = Inject::start(&[
        "inject",
        "net",
        "--backend",
        "delay-line",
        "--netns",
        ns_name(a),
        "--dev",
        "eth0",
        "--proto",
        "udp",
        "--dport",
        "9300",
        "--reorder",
        "0.2",
        "--gap",
        "3",
        "--seed",
        "3",
    ]);
    let got = udp_timed(
        a,
        b,
        9300,
        1_000,
        Duration::from_millis(1),
        Duration::from_millis(800),
    )
    .unwrap();
    let ev = inj.finish();
    assert_eq!(got.len(), 1_000, "reorder must not lose datagrams");
    let late = late_arrivals(&got) as u64;
    let reordered = u(&ev, "/counters/reordered");
    let overtaken = u(&ev, "/delay_line/overtaken");
    let timeouts = u(&ev, "/delay_line/hold_timeouts");
    eprintln!("late {late}, reordered {reordered}, overtaken {overtaken}, timeouts {timeouts}");
    assert!(late > 100, "receiver saw only {late} late datagrams");
    assert_eq!(late, overtaken, "receiver-late vs delay-line overtaken");
    assert_eq!(reordered, overtaken + timeouts);
    assert!(
        timeouts <= 3,
        "only the tail may wait for the timeout: {timeouts}"
    );
    assert_eq!(u(&ev, "/counters/applied"), reordered);
}

/// Must-show: SIGKILL of dst removes the fault within a second and leaves nothing attached.
#[test]
fn sigkill_of_dst_removes_the_fault() {
    let topo = Topology::new(&unique("dstn"), 2, 244).unwrap();
    let (a, b) = (&topo.hosts[0], &topo.hosts[1]);
    let mut inj = Inject::start(&[
        "inject",
        "net",
        "--netns",
        ns_name(a),
        "--dev",
        "eth0",
        "--proto",
        "udp",
        "--dport",
        "9400",
        "--drop",
        "1",
        "--duration",
        "60s",
    ]);
    assert!(!dst_programs_on(&a.ns, "eth0").is_empty());
    let during = udp_sequence(a, b, 9400, 100).unwrap();
    assert_eq!(lost(&during).len(), 100, "fault live: everything dropped");
    inj.child.kill().expect("SIGKILL");
    let killed = Instant::now();
    inj.child.wait().unwrap();
    // TCX links die with dst: nothing is left and the first batch after the kill must get
    // through (udp_sequence waits 300 ms of receiver idleness, so it fits in 1 s). clsact
    // filters (no TCX) stay attached but go inert once the dead-man lease lapses: batches are
    // sent until one is whole, within the lease term plus the same 1 s.
    let lease = filters_left_after_kill(&a.ns, "eth0");
    let mut batches = 0;
    let took = loop {
        batches += 1;
        let after = udp_sequence(a, b, 9400, 100).unwrap();
        let took = killed.elapsed();
        if lost(&after).is_empty() || lease.is_zero() || took > lease + Duration::from_secs(1) {
            assert!(
                lost(&after).is_empty(),
                "traffic still dropped after SIGKILL"
            );
            break took;
        }
    };
    eprintln!(
        "after SIGKILL: batch {batches} of 100 all delivered, check done in {took:?} \
         (lease term {lease:?})"
    );
    assert!(
        took < lease + Duration::from_secs(1),
        "recovery took {took:?}"
    );
    if lease.is_zero() {
        return;
    }
    // clsact: the next dst on the device removes the dead one's filters (lease lapsed for
    // more than a term) before attaching its own, and takes its own away when it ends.
    let left = dst_filters_on(&a.ns, "eth0");
    let lapsed = killed + lease * 2 + Duration::from_millis(200);
    std::thread::sleep(lapsed.saturating_duration_since(Instant::now()));
    let next = Inject::start(&[
        "inject",
        "net",
        "--netns",
        ns_name(a),
        "--dev",
        "eth0",
        "--proto",
        "udp",
        "--dport",
        "9401",
        "--drop",
        "1",
        "--duration",
        "60s",
    ]);
    let on = dst_filters_on(&a.ns, "eth0");
    eprintln!("clsact: filters of the dead dst {left:?}; with the next dst live: {on:?}");
    assert_eq!(
        on.len(),
        left.len(),
        "the dead dst's filters were not swept: {on:?}"
    );
    let during = udp_sequence(a, b, 9401, 100).unwrap();
    assert_eq!(lost(&during).len(), 100, "the next dst's fault is live");
    let _ = next.finish();
    let after = dst_filters_on(&a.ns, "eth0");
    assert!(
        after.is_empty(),
        "filters left after a clean exit: {after:?}"
    );
}

/// After dst was SIGKILLed: TCX leaves nothing attached (returns zero); on kernels without TCX
/// dst's clsact filters remain (they are not owned by an fd), and the returned lease term
/// bounds how long they may keep acting.
fn filters_left_after_kill(ns: &NetNs, dev: &str) -> Duration {
    let left = dst_programs_on(ns, dev);
    if left.is_empty() {
        return Duration::ZERO;
    }
    assert_eq!(
        left,
        dst_filters_on(ns, dev),
        "TCX programs left attached after SIGKILL"
    );
    eprintln!("after SIGKILL: clsact filters left (inert once the lease lapses): {left:?}");
    dst::net::lease::LEASE_TERM
}

/// Must-show: the same seed twice gives the same dropped sequence numbers (through the CLI),
/// and they are exactly the ones `dst_common::net::draw` predicts.
#[test]
fn same_seed_same_drops_through_the_cli() {
    let run = |subnet: u8| {
        let topo = Topology::new(&unique(&format!("dsts{subnet}")), 2, subnet).unwrap();
        let (a, b) = (&topo.hosts[0], &topo.hosts[1]);
        let inj = Inject::start(&[
            "inject",
            "net",
            "--netns",
            ns_name(a),
            "--dev",
            "eth0",
            "--proto",
            "udp",
            "--dport",
            "9500",
            "--drop",
            "0.2",
            "--seed",
            "7",
        ]);
        let got = udp_sequence(a, b, 9500, 2_000).unwrap();
        let ev = inj.finish();
        assert_eq!(u(&ev, "/seed"), 7);
        lost(&got)
    };
    let first = run(245);
    let second = run(246);
    assert!(!first.is_empty());
    assert_eq!(first, second, "same seed must drop the same packets");
    let t = dst_common::net::probability_to_threshold(0.2);
    let predicted: BTreeSet<usize> = (0..2_000u64)
        .filter(|&n| dst_common::net::decide(t, dst_common::net::draw(7, n)))
        .map(|n| n as usize)
        .collect();
    assert_eq!(first, predicted);
}

/// Bad input: a one-line error, exit 64 (usage) or 6 (environment), and nothing attached.
#[test]
fn bad_input_changes_nothing() {
    let topo = Topology::new(&unique("dstn"), 2, 247).unwrap();
    let a = &topo.hosts[0];
    let ns = ns_name(a).to_string();
    let cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["--netns", &ns, "--dev", "eth0", "--drop", "1.5"], 64),
        (
            vec![
                "--netns", &ns, "--dev", "eth0", "--dport", "90-80", "--drop", "1",
            ],
            64,
        ),
        (vec!["--netns", &ns, "--dev", "eth0"], 64),
        (
            vec!["--netns", &ns, "--dev", "eth0", "--reorder", "-0.1"],
            64,
        ),
        (
            vec!["--netns", "dst-no-such-ns", "--dev", "eth0", "--drop", "1"],
            6,
        ),
        (vec!["--netns", &ns, "--dev", "nosuch0", "--drop", "1"], 6),
        (
            vec!["--netns", &ns, "--dev", "nosuch0", "--delay", "10ms"],
            6,
        ),
    ];
    for (args, code) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_dst"))
            .args(["inject", "net"])
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(!err.trim().is_empty(), "{args:?}: no message");
        if code == 6 {
            assert_eq!(
                err.trim().lines().count(),
                1,
                "{args:?}: not one line: {err}"
            );
        }
        assert!(
            dst_programs_on(&a.ns, "eth0").is_empty(),
            "{args:?} attached something"
        );
    }
}

/// Duplicate: every extra copy the receiver gets is one the kernel counted, and nothing is lost.
#[test]
fn duplicate_copies_equal_the_counter() {
    let topo = Topology::new(&unique("dstn"), 2, 248).unwrap();
    let (a, b) = (&topo.hosts[0], &topo.hosts[1]);
    let inj = Inject::start(&[
        "inject",
        "net",
        "--netns",
        ns_name(a),
        "--dev",
        "eth0",
        "--proto",
        "udp",
        "--dport",
        "9600",
        "--duplicate",
        "0.25",
        "--seed",
        "11",
    ]);
    let got = udp_timed(
        a,
        b,
        9600,
        2_000,
        Duration::ZERO,
        Duration::from_millis(300),
    )
    .unwrap();
    let ev = inj.finish();
    let distinct: BTreeSet<u32> = got.iter().map(|x| x.seq).collect();
    assert_eq!(distinct.len(), 2_000, "duplicate must not lose datagrams");
    let extra = (got.len() - distinct.len()) as u64;
    assert_eq!(u(&ev, "/counters/duplicated"), extra, "{ev}");
    // Binomial(2000, 0.25): sd ≈ 19; ±6 sd.
    assert!((386..=614).contains(&extra), "extra copies {extra}");
}

/// Ingress delay: the delay line also serves packets entering an interface (redirected from
/// the TCX ingress hook and re-injected into the ingress path).
#[test]
fn ingress_delay_through_the_delay_line() {
    let topo = Topology::new(&unique("dstn"), 2, 249).unwrap();
    let (a, b) = (&topo.hosts[0], &topo.hosts[1]);
    let inj = Inject::start(&[
        "inject",
        "net",
        "--backend",
        "delay-line",
        "--netns",
        ns_name(b),
        "--dev",
        "eth0",
        "--dir",
        "ingress",
        "--proto",
        "udp",
        "--dport",
        "9650",
        "--delay",
        "20ms",
        "--seed",
        "2",
    ]);
    let got = udp_timed(
        a,
        b,
        9650,
        200,
        Duration::from_millis(2),
        Duration::from_millis(300),
    )
    .unwrap();
    let ev = inj.finish();
    assert_eq!(got.len(), 200);
    let mut ms: Vec<f64> = got.iter().map(|x| x.one_way_ns as f64 / 1e6).collect();
    ms.sort_by(|x, y| x.partial_cmp(y).unwrap());
    assert!(ms[0] >= 19.5, "held less than the delay: {:.2} ms", ms[0]);
    assert!((19.5..=25.0).contains(&ms[100]), "median {:.2} ms", ms[100]);
    assert_eq!(u(&ev, "/delay_line/released"), 200);
}

/// Jepsen's bridge over five hosts: the halves cannot talk, the middle node talks to both.
#[test]
fn bridge_shape_over_five_hosts() {
    let topo = Topology::new(&unique("dstb"), 5, 239).unwrap();
    let h = &topo.hosts;
    let names: Vec<&str> = h.iter().map(ns_name).collect();
    let hosts = names.join(",");
    let inj = Inject::start(&[
        "inject",
        "partition",
        "--shape",
        "bridge",
        "--hosts",
        &hosts,
    ]);
    let cut = udp_sequence(&h[0], &h[4], 9700, 100).unwrap();
    let back = udp_sequence(&h[4], &h[0], 9700, 100).unwrap();
    let via_left = udp_sequence(&h[0], &h[2], 9700, 100).unwrap();
    let via_right = udp_sequence(&h[2], &h[4], 9700, 100).unwrap();
    let same_side = udp_sequence(&h[3], &h[4], 9700, 100).unwrap();
    let ev = inj.finish();
    assert_eq!(lost(&cut).len(), 100, "left half → right half must be cut");
    assert_eq!(lost(&back).len(), 100, "right half → left half must be cut");
    for (what, got) in [
        ("left → bridge", &via_left),
        ("bridge → right", &via_right),
        ("within the right half", &same_side),
    ] {
        assert!(lost(got).is_empty(), "{what} must be delivered");
    }
    let faults = ev["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 8, "2×2 hosts, both directions");
    assert_eq!(u(&ev, "/landed_pairs"), 2, "{ev}");
    let applied: u64 = faults.iter().map(|f| u(f, "/counters/applied")).sum();
    assert_eq!(applied, 200);
}

/// Rate: 200 datagrams of 74-byte frames sent back to back through a 200 kbit/s limit leave
/// paced at the limit (199 × 592 bits ≈ 0.59 s from first to last) and none is lost.
#[test]
fn rate_paces_matched_traffic() {
    let topo = Topology::new(&unique("dstn"), 2, 251).unwrap();
    let (a, b) = (&topo.hosts[0], &topo.hosts[1]);
    let inj = Inject::start(&[
        "inject",
        "net",
        "--backend",
        "delay-line",
        "--netns",
        ns_name(a),
        "--dev",
        "eth0",
        "--proto",
        "udp",
        "--dport",
        "9800",
        "--rate",
        "200kbit",
    ]);
    let got = udp_timed(a, b, 9800, 200, Duration::ZERO, Duration::from_millis(500)).unwrap();
    let ev = inj.finish();
    assert_eq!(got.len(), 200, "under 1 s of backlog nothing is dropped");
    let min = got.iter().map(|x| x.one_way_ns).min().unwrap() as f64 / 1e9;
    let max = got.iter().map(|x| x.one_way_ns).max().unwrap() as f64 / 1e9;
    let span = max - min;
    eprintln!("rate: spread of one-way delays {span:.3} s (ideal 0.589 s)");
    assert!((0.53..=0.66).contains(&span), "span {span:.3} s");
    assert_eq!(u(&ev, "/delay_line/rate_dropped"), 0);
    assert_eq!(u(&ev, "/counters/delayed"), 200);
}

/// Corrupt: every datagram the kernel counted as corrupted either reaches the receiver with its
/// last byte flipped (checksum offloaded, e.g. veth) or is discarded by the receiver's stack
/// for a bad checksum; untouched datagrams arrive intact.
#[test]
fn corrupt_flips_bits_that_the_receiver_sees() {
    let topo = Topology::new(&unique("dstn"), 2, 252).unwrap();
    let (a, b) = (&topo.hosts[0], &topo.hosts[1]);
    let inj = Inject::start(&[
        "inject",
        "net",
        "--netns",
        ns_name(a),
        "--dev",
        "eth0",
        "--proto",
        "udp",
        "--dport",
        "9900",
        "--corrupt",
        "0.3",
        "--seed",
        "4",
    ]);
    let rx = dst::testing::udp_socket(b, 9900).unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    nix::sys::socket::setsockopt(&rx, nix::sys::socket::sockopt::RcvBufForce, &(16 << 20)).unwrap();
    let overflow_before = dst::testing::udp_rcvbuf_errors(b).unwrap();
    let tx = dst::testing::udp_socket(a, 0).unwrap();
    let n = 1_000u32;
    for seq in 0..n {
        let mut p = [0u8; 32];
        p[..4].copy_from_slice(&seq.to_be_bytes());
        tx.send_to(&p, (b.addr, 9900)).unwrap();
        if seq % 100 == 99 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let (mut intact, mut flipped) = (0u64, 0u64);
    let mut buf = [0u8; 64];
    while let Ok(len) = rx.recv(&mut buf) {
        assert_eq!(len, 32);
        match buf[31] {
            0 => intact += 1,
            1 => flipped += 1,
            other => panic!("unexpected last byte {other}"),
        }
    }
    let ev = inj.finish();
    assert_eq!(
        dst::testing::udp_rcvbuf_errors(b).unwrap(),
        overflow_before,
        "receiver overflowed: losses cannot be attributed"
    );
    let corrupted = u(&ev, "/counters/corrupted");
    let discarded = u64::from(n) - intact - flipped;
    eprintln!("corrupt: counted {corrupted}, flipped at receiver {flipped}, discarded {discarded}");
    assert_eq!(flipped + discarded, corrupted, "{ev}");
    assert_eq!(intact, u64::from(n) - corrupted);
    // Binomial(1000, 0.3): sd ≈ 14.5; ±6 sd.
    assert!((213..=387).contains(&corrupted), "corrupted {corrupted}");
}

/// SIGKILL during a delay-line fault: the TAP disappears with dst, the classifier is detached
/// and traffic flows undelayed at once.
#[test]
fn sigkill_removes_the_delay_line() {
    let topo = Topology::new(&unique("dstn"), 2, 253).unwrap();
    let (a, b) = (&topo.hosts[0], &topo.hosts[1]);
    let taps = |ns: &NetNs| -> Vec<String> {
        ns.run(|| {
            nix::net::if_::if_nameindex()
                .map(|l| {
                    l.iter()
                        .map(|i| i.name().to_string_lossy().into_owned())
                        .filter(|n| n.starts_with("dstd"))
                        .collect()
                })
                .unwrap_or_default()
        })
        .unwrap()
    };
    let mut inj = Inject::start(&[
        "inject",
        "net",
        "--backend",
        "delay-line",
        "--netns",
        ns_name(a),
        "--dev",
        "eth0",
        "--proto",
        "udp",
        "--dport",
        "9450",
        "--delay",
        "200ms",
        "--duration",
        "60s",
    ]);
    assert_eq!(
        taps(&a.ns).len(),
        1,
        "one egress TAP while the fault is live"
    );
    let during = udp_timed(a, b, 9450, 20, Duration::ZERO, Duration::from_millis(400)).unwrap();
    assert!(
        during.iter().all(|x| x.one_way_ns >= 190_000_000),
        "fault live: delayed"
    );
    inj.child.kill().expect("SIGKILL");
    inj.child.wait().unwrap();
    let killed = Instant::now();
    assert!(taps(&a.ns).is_empty(), "TAP left after SIGKILL");
    // Until a clsact filter's lease lapses, it redirects to the vanished TAP (a drop).
    let lease = filters_left_after_kill(&a.ns, "eth0");
    let after = loop {
        let after = udp_timed(a, b, 9450, 20, Duration::ZERO, Duration::from_millis(300)).unwrap();
        if after.len() == 20 || killed.elapsed() > lease + Duration::from_secs(1) {
            break after;
        }
    };
    eprintln!(
        "after SIGKILL: 20 of 20 undelayed datagrams {:?} after the kill",
        killed.elapsed()
    );
    assert_eq!(after.len(), 20);
    assert!(
        after.iter().all(|x| x.one_way_ns < 100_000_000),
        "still delayed after SIGKILL"
    );
}

/// `--cgroup`: the drop follows the cgroup's processes (cgroup_skb), not the interface; a
/// sender outside the cgroup is untouched.
#[test]
fn cgroup_target_through_the_cli() {
    let topo = Topology::new(&unique("dstn"), 2, 254).unwrap();
    let (a, b) = (&topo.hosts[0], &topo.hosts[1]);
    let cg =
        dst::cgroup::Cgroup::create(&format!("dst-test-inject-{}", std::process::id())).unwrap();
    let path = cg.path().display().to_string();
    let inj = Inject::start(&[
        "inject", "net", "--cgroup", &path, "--proto", "udp", "--dport", "9460", "--drop", "1",
    ]);
    let outside = udp_sequence(a, b, 9460, 100).unwrap();
    let sent = a
        .ns
        .run(|| {
            Command::new("bash")
                .arg("-c")
                .arg(format!(
                    "echo $$ > {path}/cgroup.procs && for i in $(seq 1 30); do printf x 2>/dev/null > /dev/udp/{}/9460 || true; done",
                    b.addr
                ))
                .status()
        })
        .unwrap()
        .unwrap();
    assert!(sent.success());
    let ev = inj.finish();
    assert!(
        lost(&outside).is_empty(),
        "a sender outside the cgroup must pass"
    );
    assert_eq!(u(&ev, "/counters/applied"), 30, "{ev}");
    assert_eq!(ev["backend"].as_str(), Some("cgroup_skb"));
}
