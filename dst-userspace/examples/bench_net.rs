//! `cargo xtask bench net` body (root): per-packet cost of the attached dst-net program (a Rust
//! UDP sender timing each send, and iperf3 TCP throughput) without dst, with dst attached and no
//! rules, and with 64 active non-matching rules; then fault activation latency (request → first
//! packet affected) for a BPF map update, the daemon API, the `dst inject net` CLI, and `tc` /
//! `nft` / `iptables` rule changes, all measured in one run in two namespaces joined by a veth pair.
//! Prints the Markdown section for BENCHMARKS.md on stdout.

use std::{
    process::{Command, Stdio},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use dst::{
    net::{Action, Direction, NetEngine, NetFault, PortRange, spec::monotonic_ns},
    testing::{Host, Topology, udp_socket},
};

const ROUNDS: usize = 9;
/// Rounds of the per-send measurement (the noisiest figure).
const SEND_ROUNDS: usize = 11;
/// Rounds of iperf3 per configuration (±10% run to run here).
const TCP_ROUNDS: usize = 7;
/// iperf3 rounds with BPF statistics on, attributing CPU time to the program.
const ATTRIB_ROUNDS: usize = 5;

/// One comparison tool's measurement rounds.
type ToolRun<'a> = &'a dyn Fn() -> anyhow::Result<Vec<f64>>;
const SENDS: u32 = 100_000;

/// For each configuration, `f(its round r, no program's round r)` over the rounds.
fn paired(rounds: &[Vec<f64>], f: impl Fn(f64, f64) -> f64) -> Vec<Vec<f64>> {
    rounds
        .iter()
        .map(|v| v.iter().zip(&rounds[0]).map(|(x, b)| f(*x, *b)).collect())
        .collect()
}

/// (min, max) of `v`.
fn spread(v: &[f64]) -> (f64, f64) {
    (
        v.iter().cloned().fold(f64::MAX, f64::min),
        v.iter().cloned().fold(f64::MIN, f64::max),
    )
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Which configuration the packet path is in.
#[derive(Clone, Copy, PartialEq)]
enum Config {
    Bare,
    Attached,
    Rules64,
}

fn setup(a: &Host, cfg: Config) -> anyhow::Result<Option<NetEngine>> {
    if cfg == Config::Bare {
        return Ok(None);
    }
    let mut e = NetEngine::load()?;
    a.ns.run(|| e.attach_tc("eth0", Direction::Egress))??;
    if cfg == Config::Rules64 {
        let faults: Vec<_> = (0..64u16)
            .map(|i| {
                // Same protocol and direction as the traffic, another port: every rule is
                // compared in full and none matches.
                let mut f = NetFault::new(Action::Drop { probability: 1.0 });
                f.proto = 17;
                f.dport = PortRange {
                    lo: 1000 + i,
                    hi: 1000 + i,
                };
                (f, 0, monotonic_ns() + 3_600_000_000_000)
            })
            .collect();
        e.apply(&faults)?;
    }
    Ok(Some(e))
}

/// ns per `send` of a 32-byte datagram (the send path runs the egress program inline).
fn send_cost(a: &Host, b: &Host) -> anyhow::Result<f64> {
    let _rx = udp_socket(b, 9600)?;
    let tx = udp_socket(a, 0)?;
    tx.connect((b.addr, 9600))?;
    let payload = [0u8; 32];
    for _ in 0..2_000 {
        let _ = tx.send(&payload);
    }
    let start = Instant::now();
    for _ in 0..SENDS {
        let _ = tx.send(&payload);
    }
    Ok(start.elapsed().as_nanos() as f64 / f64::from(SENDS))
}

fn nsenter(ns: &str) -> Command {
    let mut c = Command::new("nsenter");
    c.arg(format!("--net=/run/netns/{ns}"));
    c
}

/// One iperf3 run: throughput and the sender's CPU time per byte.
struct TcpRun {
    /// Received throughput, Gbit/s.
    gbps: f64,
    /// Sender (iperf3 client process, getrusage) CPU ns per KiB sent: what the egress program
    /// adds, without the time the hypervisor or other jobs take the CPU away (which moves
    /// throughput by ±10-30% per round on this shared VM).
    cpu_ns_per_kib: f64,
    /// Sender CPU seconds (user + system) over the run.
    cpu_s: f64,
    /// Length of the run, seconds.
    secs: f64,
}

/// iperf3 TCP A → B (2 s, client and server pinned to CPUs 0 and 1).
fn tcp_run(a: &Host, b: &Host) -> anyhow::Result<TcpRun> {
    let mut server = nsenter(b.ns.name())
        .args(["iperf3", "-s", "-1", "-p", "5299"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("iperf3 server (apt-get install iperf3)")?;
    std::thread::sleep(Duration::from_millis(300));
    let out = nsenter(a.ns.name())
        .args([
            "iperf3",
            "-c",
            &b.addr.to_string(),
            "-p",
            "5299",
            "-t",
            "2",
            // Client on CPU 0, server on CPU 1: unpinned runs vary ±5% here, pinned ±1.5%.
            "-A",
            "0,1",
            "-J",
        ])
        .output()?;
    let _ = server.wait();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let num = |path: &str| {
        v.pointer(path)
            .and_then(serde_json::Value::as_f64)
            .with_context(|| format!("iperf3 JSON without {path}"))
    };
    let bps = num("/end/sum_received/bits_per_second")?;
    let secs = num("/end/sum_sent/seconds")?;
    let cpu = num("/end/cpu_utilization_percent/host_total")? / 100.0 * secs;
    let kib = num("/end/sum_sent/bytes")? / 1024.0;
    Ok(TcpRun {
        gbps: bps / 1e9,
        cpu_ns_per_kib: cpu * 1e9 / kib.max(1.0),
        cpu_s: cpu,
        secs,
    })
}

/// The classifier's own share of a TCP transfer with 64 non-matching rules, measured by the
/// kernel: BPF run statistics on (`BPF_ENABLE_STATS`) for the run, the egress program's run
/// count and run time read before and after. Its time over the sender's CPU time bounds the
/// throughput the program can take from a CPU-bound sender. The statistics add two clock reads
/// per run to the measured time, so the bound is on the high side.
struct Attribution {
    /// Program runs (skbs through the egress hook) per second.
    runs_per_s: f64,
    /// ns per program run, statistics overhead included.
    ns_per_run: f64,
    /// Program time / sender CPU time, %.
    share_of_sender_cpu: f64,
    /// Program time / run length, % of one CPU.
    share_of_one_cpu: f64,
    /// Throughput of the run, Gbit/s.
    gbps: f64,
}

fn attribution(a: &Host, b: &Host) -> anyhow::Result<Attribution> {
    let mut engine = setup(a, Config::Rules64)?.context("64-rule setup attaches the program")?;
    let _stats_on = aya::sys::enable_stats(aya::sys::Stats::RunTime)
        .context("BPF_ENABLE_STATS (needs root)")?;
    let before = engine.egress_stats()?;
    let run = tcp_run(a, b)?;
    let after = engine.egress_stats()?;
    let runs = after.run_cnt.saturating_sub(before.run_cnt) as f64;
    let ns = after.run_time_ns.saturating_sub(before.run_time_ns) as f64;
    if runs == 0.0 {
        bail!("the egress program did not run during the transfer (statistics off?)");
    }
    Ok(Attribution {
        runs_per_s: runs / run.secs,
        ns_per_run: ns / runs,
        share_of_sender_cpu: ns / (run.cpu_s * 1e9) * 100.0,
        share_of_one_cpu: ns / (run.secs * 1e9) * 100.0,
        gbps: run.gbps,
    })
}

/// Sends paced datagrams A → B:9700, runs `change` once traffic flows, and returns how long
/// after the request the first packet was affected (the start of the run of lost packets
/// that lasts to the end), in µs, and the pacing interval.
fn activation(
    a: &Host,
    b: &Host,
    settle: Duration,
    change: &mut dyn FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<f64> {
    const MAX: usize = 1_000_000;
    const PACE_NS: u64 = 5_000;
    let rx = udp_socket(b, 9700)?;
    let _ = nix::sys::socket::setsockopt(&rx, nix::sys::socket::sockopt::RcvBufForce, &(32 << 20));
    rx.set_read_timeout(Some(Duration::from_millis(300)))?;
    let tx = udp_socket(a, 0)?;
    tx.connect((b.addr, 9700))?;
    let stop = AtomicBool::new(false);
    let mut sent_at = vec![0u64; MAX];
    let mut got = vec![false; MAX];
    let mut t0 = 0u64;
    let mut n_sent = 0usize;
    std::thread::scope(|s| -> anyhow::Result<()> {
        let receiver = s.spawn(|| {
            let mut buf = [0u8; 16];
            while let Ok(len) = rx.recv(&mut buf) {
                if len >= 4 {
                    let i = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                    if i < MAX {
                        got[i] = true;
                    }
                }
            }
        });
        let sender = s.spawn(|| {
            let mut i = 0usize;
            let mut next = monotonic_ns();
            while i < MAX && !stop.load(Ordering::Relaxed) {
                while monotonic_ns() < next {
                    std::hint::spin_loop();
                }
                sent_at[i] = monotonic_ns();
                let _ = tx.send(&(i as u32).to_be_bytes());
                i += 1;
                next += PACE_NS;
            }
            i
        });
        std::thread::sleep(Duration::from_millis(100));
        t0 = monotonic_ns();
        change()?;
        std::thread::sleep(settle);
        stop.store(true, Ordering::Relaxed);
        n_sent = sender.join().expect("sender");
        receiver.join().expect("receiver");
        Ok(())
    })?;
    let mut first = n_sent;
    while first > 0 && !got[first - 1] {
        first -= 1;
    }
    let received = got[..n_sent].iter().filter(|g| **g).count();
    if first == n_sent || first == 0 {
        bail!(
            "the change never took effect (or traffic never flowed): sent {n_sent}, received {received}"
        );
    }
    Ok(sent_at[first].saturating_sub(t0) as f64 / 1e3)
}

/// One HTTP/1.1 request on a kept-alive connection; returns the status and the body.
fn http(
    conn: &mut std::os::unix::net::UnixStream,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<(u16, Vec<u8>)> {
    use std::io::{Read as _, Write as _};
    // One write, as an HTTP client library sends it (`write!` on the bare stream would send
    // each formatted piece in its own syscall and wake the daemon once per piece).
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: dst\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(request.as_bytes())?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte)? == 0 {
            bail!("daemon closed the connection");
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("HTTP status")?;
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut rest = vec![0u8; len];
    conn.read_exact(&mut rest)?;
    Ok((status, rest))
}

/// Activation through a running `dst daemon`: programs attached by an earlier fault on the same
/// device, then each round `POST /v1/faults` (drop udp 9700) on a kept-alive connection and
/// `DELETE` afterwards.
/// Returns (request → first packet the receiver missed, request → kernel time of the first
/// applied packet) per round, in µs.
fn daemon_api(
    a: &Host,
    b: &Host,
    dst_bin: &std::path::Path,
    ns: &str,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let dir = std::env::temp_dir().join(format!("dstbench-daemon{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let sock = dir.join("dst.sock");
    let mut daemon = Command::new(dst_bin)
        .arg("daemon")
        .arg("--socket")
        .arg(&sock)
        .arg("--history")
        .arg(dir.join("history.jsonl"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting dst daemon")?;
    let result = (|| -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut conn = loop {
            match std::os::unix::net::UnixStream::connect(&sock) {
                Ok(c) => break c,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => return Err(e).context("daemon socket"),
            }
        };
        let fault = |id: &str, port: u16| {
            format!(
                r#"{{"net":[{{"id":"{id}","target":{{"netns":"{ns}","dev":"eth0"}},"direction":"egress","proto":"udp","dport":"{port}","action":{{"kind":"drop","probability":1}},"schedule":{{"duration":"60s"}}}}]}}"#
            )
        };
        // Attaches the programs (verifier load) outside the measurement.
        let (st, _) = http(&mut conn, "POST", "/v1/faults", &fault("warm", 1))?;
        if st != 201 {
            bail!("warm-up fault refused with HTTP {st}");
        }
        let mut first_packet = Vec::new();
        let mut kernel = Vec::new();
        for round in 0..ROUNDS {
            let id = format!("b{round}");
            let mut status = 0;
            let mut req = 0u64;
            let r = activation(a, b, Duration::from_millis(300), &mut || {
                req = monotonic_ns();
                status = http(&mut conn, "POST", "/v1/faults", &fault(&id, 9700))?.0;
                Ok(())
            });
            let (_, cleared) = http(&mut conn, "DELETE", &format!("/v1/faults/{id}"), "")?;
            if status != 201 {
                bail!("fault refused with HTTP {status}");
            }
            first_packet.push(r?);
            let view: serde_json::Value = serde_json::from_slice(&cleared)?;
            if let Some(first) = view["evidence"]["first_applied_ns"].as_u64() {
                kernel.push(first.saturating_sub(req) as f64 / 1e3);
            }
        }
        Ok((first_packet, kernel))
    })();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = daemon.wait();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The `dst` binary built beside this example.
fn dst_binary() -> anyhow::Result<std::path::PathBuf> {
    std::env::current_exe()?
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("dst"))
        .context("locating the dst binary")
}

fn run_tool(ns: &str, args: &[&str]) -> anyhow::Result<()> {
    let st = nsenter(ns).args(args).status()?;
    if !st.success() {
        bail!("{args:?} failed: {st}");
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let topo = Topology::new(
        &format!("dstbench{}-", std::process::id() % 100_000),
        2,
        250,
    )?;
    let (a, b) = (&topo.hosts[0], &topo.hosts[1]);
    let ns = a.ns.name().to_string();
    if std::env::var_os("DST_BENCH_NET_ONLY").is_some_and(|v| v == "daemon") {
        // Development aid: only the daemon API activation rounds, medians on stderr.
        let (mut p, mut k) = daemon_api(a, b, &dst_binary()?, &ns)?;
        eprintln!(
            "bench: daemon API: first packet missed {:.1} µs, kernel first applied {:.1} µs (medians of {ROUNDS})",
            median(&mut p),
            median(&mut k)
        );
        return Ok(());
    }
    let cfgs = [
        (Config::Bare, "no program"),
        (Config::Attached, "dst-net attached, 0 rules"),
        (Config::Rules64, "dst-net attached, 64 non-matching rules"),
    ];
    let mut send = vec![Vec::new(); 3];
    let mut tcp = vec![Vec::new(); 3];
    let mut tcp_cpu: Vec<Vec<f64>> = vec![Vec::new(); 3];
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load1 = load.split_whitespace().next().unwrap_or("?").to_string();
    // Each round measures every configuration once, starting with a different one each round
    // (drift and order effects cancel); deltas are medians of the per-round differences.
    for r in 0..SEND_ROUNDS {
        for k in 0..cfgs.len() {
            let i = (r + k) % cfgs.len();
            let _engine = setup(a, cfgs[i].0)?;
            send[i].push(send_cost(a, b)?);
        }
    }
    if std::env::var_os("DST_BENCH_NET_ONLY").is_some_and(|v| v == "send") {
        // Development aid: only the per-send cost, paired per round, on stderr.
        let d: Vec<f64> = paired(&send, |x, b| x - b)
            .iter()
            .map(|v| median(&mut v.clone()))
            .collect();
        eprintln!(
            "bench: send Δ vs no program: 0 rules {:+.0} ns, 64 rules {:+.0} ns (medians of {SEND_ROUNDS} paired rounds)",
            d[1], d[2]
        );
        return Ok(());
    }
    let only_attrib = std::env::var_os("DST_BENCH_NET_ONLY").is_some_and(|v| v == "attribution");
    let mut attrib = Vec::new();
    for _ in 0..ATTRIB_ROUNDS {
        attrib.push(attribution(a, b)?);
    }
    let attr_med =
        |f: fn(&Attribution) -> f64| median(&mut attrib.iter().map(f).collect::<Vec<_>>());
    let attr_max = |f: fn(&Attribution) -> f64| attrib.iter().map(f).fold(f64::MIN, f64::max);
    if only_attrib {
        for x in &attrib {
            eprintln!(
                "bench: {:.2} Gbit/s, {:.0} runs/s, {:.1} ns/run, {:.3}% of sender CPU, {:.3}% of one CPU",
                x.gbps, x.runs_per_s, x.ns_per_run, x.share_of_sender_cpu, x.share_of_one_cpu
            );
        }
        return Ok(());
    }
    for r in 0..TCP_ROUNDS {
        for k in 0..cfgs.len() {
            let i = (r + k) % cfgs.len();
            let _engine = setup(a, cfgs[i].0)?;
            let run = tcp_run(a, b)?;
            tcp[i].push(run.gbps);
            tcp_cpu[i].push(run.cpu_ns_per_kib);
        }
    }
    eprintln!("bench: per-packet cost done");
    let send_delta: Vec<f64> = paired(&send, |x, b| x - b)
        .iter()
        .map(|v| median(&mut v.clone()))
        .collect();
    let tcp_ratios = paired(&tcp, |x, b| (x / b - 1.0) * 100.0);
    let tcp_delta: Vec<f64> = tcp_ratios.iter().map(|v| median(&mut v.clone())).collect();
    // Sender CPU per byte, per-round ratio to no program, in %.
    let cpu_ratios = paired(&tcp_cpu, |x, b| (x / b - 1.0) * 100.0);
    let cpu_delta: Vec<f64> = cpu_ratios.iter().map(|v| median(&mut v.clone())).collect();
    let tcp_cpu: Vec<f64> = tcp_cpu.iter_mut().map(|v| median(v)).collect();
    let send: Vec<f64> = send.iter_mut().map(|v| median(v)).collect();
    let tcp_spread: Vec<(f64, f64)> = tcp.iter().map(|v| spread(v)).collect();
    let tcp: Vec<f64> = tcp.iter_mut().map(|v| median(v)).collect();

    // Activation latency.
    let mut results: Vec<(&str, Vec<f64>)> = Vec::new();
    let mut map_update = Vec::new();
    let mut kernel_first = Vec::new();
    for _ in 0..ROUNDS {
        let mut e = NetEngine::load()?;
        a.ns.run(|| e.attach_tc("eth0", Direction::Egress))??;
        let mut f = NetFault::new(Action::Drop { probability: 1.0 });
        f.proto = 17;
        f.dport = PortRange { lo: 9700, hi: 9700 };
        let mut req = 0u64;
        let mut slot = 0;
        let r = activation(a, b, Duration::from_millis(300), &mut || {
            req = monotonic_ns();
            slot = e.apply(&[(f.clone(), 0, monotonic_ns() + 60_000_000_000)])?[0];
            Ok(())
        });
        map_update.push(r?);
        if let Some(first) = e.evidence(slot)?.first_applied_ns {
            kernel_first.push(first.saturating_sub(req) as f64 / 1e3);
        }
    }
    results.push((
        "dst: BPF map update (`NetEngine::apply`, the daemon path)",
        map_update,
    ));
    results.push((
        "dst: same, kernel timestamp of the first applied packet",
        kernel_first,
    ));
    let dst_bin = dst_binary()?;
    let mut cli = Vec::new();
    for _ in 0..ROUNDS {
        let mut child = None;
        cli.push(activation(a, b, Duration::from_millis(3_000), &mut || {
            child = Some(
                Command::new(&dst_bin)
                    .args([
                        "inject",
                        "net",
                        "--netns",
                        &ns,
                        "--dev",
                        "eth0",
                        "--proto",
                        "udp",
                        "--dport",
                        "9700",
                        "--drop",
                        "1",
                        "--duration",
                        "1s",
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()?,
            );
            Ok(())
        })?);
        if let Some(mut c) = child {
            c.wait()?;
        }
    }
    results.push((
        "dst: `dst inject net` CLI from spawn (load + attach + apply)",
        cli,
    ));
    let mut unavailable: Vec<String> = Vec::new();
    match daemon_api(a, b, &dst_bin, &ns) {
        Ok((first_packet, kernel)) => {
            results.insert(
                2,
                (
                    "dst: daemon API, `POST /v1/faults` on a kept-alive unix socket connection \
                     (programs already attached)",
                    first_packet,
                ),
            );
            results.insert(
                3,
                (
                    "dst: same, kernel timestamp of the first applied packet",
                    kernel,
                ),
            );
        }
        Err(e) => unavailable.push(format!("dst daemon API: not measured: {e:#}")),
    }
    let tc = || -> anyhow::Result<Vec<f64>> {
        // This kernel has no act_gact (`action drop`): the filter redirects the matched packets
        // (mirred) to a veth whose peer is down, where they are dropped.
        run_tool(
            &ns,
            &[
                "ip", "link", "add", "dstblk0", "type", "veth", "peer", "name", "dstblk1",
            ],
        )?;
        run_tool(&ns, &["ip", "link", "set", "dstblk0", "up"])?;
        let mut v = Vec::new();
        for _ in 0..ROUNDS {
            run_tool(&ns, &["tc", "qdisc", "add", "dev", "eth0", "clsact"])?;
            let r = activation(a, b, Duration::from_millis(300), &mut || {
                run_tool(
                    &ns,
                    &[
                        "tc", "filter", "add", "dev", "eth0", "egress", "protocol", "ip", "prio",
                        "1", "u32", "match", "ip", "dport", "9700", "0xffff", "action", "mirred",
                        "egress", "redirect", "dev", "dstblk0",
                    ],
                )
            });
            run_tool(&ns, &["tc", "qdisc", "del", "dev", "eth0", "clsact"])?;
            v.push(r?);
        }
        let _ = run_tool(&ns, &["ip", "link", "del", "dstblk0"]);
        Ok(v)
    };
    let nft = || -> anyhow::Result<Vec<f64>> {
        let mut v = Vec::new();
        for _ in 0..ROUNDS {
            run_tool(&ns, &["nft", "add", "table", "inet", "dstbench"])?;
            let chain = "{ type filter hook output priority 0 ; }";
            let r = run_tool(
                &ns,
                &["nft", "add", "chain", "inet", "dstbench", "out", chain],
            )
            .and_then(|()| {
                activation(a, b, Duration::from_millis(300), &mut || {
                    run_tool(
                        &ns,
                        &[
                            "nft", "add", "rule", "inet", "dstbench", "out", "udp", "dport",
                            "9700", "drop",
                        ],
                    )
                })
            });
            run_tool(&ns, &["nft", "delete", "table", "inet", "dstbench"])?;
            v.push(r?);
        }
        Ok(v)
    };
    let ipt = || -> anyhow::Result<Vec<f64>> {
        let rule = ["-p", "udp", "--dport", "9700", "-j", "DROP"];
        let mut v = Vec::new();
        for _ in 0..ROUNDS {
            let r = activation(a, b, Duration::from_millis(300), &mut || {
                run_tool(&ns, &[&["iptables", "-A", "OUTPUT"][..], &rule].concat())
            });
            let _ = run_tool(&ns, &[&["iptables", "-D", "OUTPUT"][..], &rule].concat());
            v.push(r?);
        }
        Ok(v)
    };
    let tools: [(&str, ToolRun); 3] = [
        (
            "`tc filter add ... u32 ... action mirred redirect` to a dead-end veth (process spawn \
             included; this kernel has no act_gact for `action drop`)",
            &tc,
        ),
        ("`nft add rule ... drop` (process spawn included)", &nft),
        (
            "`iptables -A OUTPUT ... -j DROP` (process spawn included)",
            &ipt,
        ),
    ];
    for (name, f) in tools {
        match f() {
            Ok(v) => results.push((name, v)),
            Err(e) => unavailable.push(format!("{name}: not measured here: {e:#}")),
        }
    }

    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    println!("## Network\n");
    println!(
        "Reproduce: `sudo cargo xtask bench net` (kernel {kernel}, {} CPUs; two network namespaces \
         joined by a veth pair, program attached with TCX on the sender's egress; load average \
         {load1} at the start: the machine is shared, so expect ±200 ns of noise per row). Medians \
         of {SEND_ROUNDS} rounds for sends, {TCP_ROUNDS} for iperf3, {ROUNDS} for activation; configurations \
         interleaved in the same run.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("### Per-packet cost\n");
    println!(
        "| configuration | UDP send, ns/packet (Rust sender, 32 B, median) | Δ vs none (median of per-round Δ) |"
    );
    println!("|---|---:|---:|");
    for (i, (_, name)) in cfgs.iter().enumerate() {
        println!("| {name} | {:.0} | {:+.0} ns |", send[i], send_delta[i]);
    }
    println!(
        "\nTCP (iperf3, 2 s per round, client on CPU 0, server on CPU 1). Throughput, and the \
         sender's CPU time per KiB sent (iperf3's getrusage of the client: the egress program \
         runs in the sender's context; time the hypervisor or other jobs take away from the CPU \
         is not in it). Δ columns are medians of per-round ratios to no program, with their \
         spread.\n"
    );
    println!(
        "| configuration | Gbit/s (median) | min–max | Δ throughput | per-round min…max | sender CPU ns/KiB (median) | Δ CPU per byte | per-round min…max |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (i, (_, name)) in cfgs.iter().enumerate() {
        let (lo, hi) = spread(&tcp_ratios[i]);
        let (clo, chi) = spread(&cpu_ratios[i]);
        println!(
            "| {name} | {:.2} | {:.2}–{:.2} | {:+.1}% | {lo:+.1}%…{hi:+.1}% | {:.1} | {:+.1}% | {clo:+.1}%…{chi:+.1}% |",
            tcp[i], tcp_spread[i].0, tcp_spread[i].1, tcp_delta[i], tcp_cpu[i], cpu_delta[i],
        );
    }
    println!(
        "\nThe program's own share of the transfer, measured by the kernel ({ATTRIB_ROUNDS} more \
         iperf3 rounds with 64 non-matching rules and BPF run statistics on; the statistics add \
         two clock reads to every run, so these figures are upper bounds):\n"
    );
    println!(
        "| Gbit/s (median) | program runs/s (skbs, GSO) | ns per run | program time / sender CPU time | program time / one CPU |"
    );
    println!("|---:|---:|---:|---:|---:|");
    println!(
        "| {:.2} | {:.0} | {:.1} | {:.3}% (max {:.3}%) | {:.3}% (max {:.3}%) |",
        attr_med(|x| x.gbps),
        attr_med(|x| x.runs_per_s),
        attr_med(|x| x.ns_per_run),
        attr_med(|x| x.share_of_sender_cpu),
        attr_max(|x| x.share_of_sender_cpu),
        attr_med(|x| x.share_of_one_cpu),
        attr_max(|x| x.share_of_one_cpu),
    );
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let bound = attr_max(|x| x.share_of_sender_cpu);
    println!(
        "\nGoals (issue 3): small-packet cost under +200 ns with 64 active rules: {} ({:+.0} ns); \
         untargeted TCP throughput within 2%: {} by attribution — the program takes at most \
         {bound:.3}% of the sender's CPU time in any round, and a CPU-bound sender cannot lose \
         more throughput than the CPU time taken from it. Throughput compared directly: \
         {:+.1}% median of per-round ratios, sender CPU per byte {:+.1}%, each round moving by \
         the spread shown (the hypervisor and other jobs on this shared VM), so the direct \
         comparison cannot resolve 2% here.",
        verdict(send_delta[2] < 200.0),
        send_delta[2],
        verdict(bound < 2.0),
        tcp_delta[2],
        cpu_delta[2],
    );
    println!("\n### Fault activation latency (request → first packet affected)\n");
    println!(
        "A sender paced at one 4-byte datagram per 5 µs; the change takes effect at the first \
         packet of the run of losses that lasts to the end (resolution 5 µs).\n"
    );
    println!("| mechanism | median µs | min µs | max µs |");
    println!("|---|---:|---:|---:|");
    let mut dst_median = f64::MAX;
    let mut daemon_median = f64::MAX;
    let mut tool_best = f64::MAX;
    for (name, v) in &mut results {
        if v.is_empty() {
            continue;
        }
        let m = median(v);
        if name.starts_with("dst: BPF") {
            dst_median = m;
        } else if name.starts_with("dst: daemon") {
            daemon_median = m;
        } else if !name.starts_with("dst") {
            tool_best = tool_best.min(m);
        }
        println!(
            "| {name} | {m:.1} | {:.1} | {:.1} |",
            v.iter().cloned().fold(f64::MAX, f64::min),
            v.iter().cloned().fold(0.0, f64::max)
        );
    }
    for u in &unavailable {
        println!("\n- {u}");
    }
    if tool_best < f64::MAX {
        println!(
            "\nMap update vs the fastest rule-change tool measured here: {:.0}x faster \
             (goal: under 1 ms: {}; at least 10x faster than any tool: {}). The map update \
             path writes the port index and the rule into a zeroed slot (slots are zeroed when \
             their fault ends), and the loop bound when it grows; the CLI row is dominated by \
             the verifier loading the classifier (the 64-slot rule loop).",
            tool_best / dst_median.max(0.001),
            verdict(dst_median < 1000.0),
            verdict(tool_best / dst_median.max(0.001) >= 10.0)
        );
        if daemon_median < f64::MAX {
            println!(
                "\nThrough the daemon API (what a test harness or agent calls): {daemon_median:.1} µs \
                 median, {:.0}x faster than the fastest rule-change tool (goal: under 1 ms: {}; \
                 at least 10x faster than any tool: {}). It adds HTTP parsing, JSON validation, \
                 target resolution (the interface index is cached while dst's programs stay attached to it) and \
                 the response to the map update; the request runs on the HTTP worker that read it.",
                tool_best / daemon_median.max(0.001),
                verdict(daemon_median < 1000.0),
                verdict(tool_best / daemon_median.max(0.001) >= 10.0)
            );
        }
    }
    Ok(())
}
