//! `cargo xtask bench net --vm` guest body (root, inside a QEMU guest): 50 ms ± 10 ms delay by
//! dst (`dst inject net --delay 50ms --jitter 10ms`, whichever backend dst picks) and by
//! `tc qdisc … netem delay 50ms 10ms` on the same kernel and the same traffic: requested vs
//! observed one-way delay (p10/p50/p90), sender cost per packet (`send` duration) and dst's own
//! CPU time per packet. Prints Markdown rows on stdout.
//!
//! Usage: `bench_vm_delay DST_BINARY TC_BINARY [PROBES]`.

use std::{
    io::{BufRead as _, BufReader, Read as _},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, bail};
use dst::{
    net::spec::monotonic_ns,
    testing::{Host, Topology, udp_socket},
};

const PORT: u16 = 9800;
const INTERVAL: Duration = Duration::from_millis(2);

/// What one configuration measured.
struct Run {
    one_way_ms: Vec<f64>,
    send_ns: Vec<f64>,
    lost: usize,
    /// Arrivals after a datagram with a higher sequence number.
    reordered: usize,
}

/// `n` datagrams A → B at [`INTERVAL`], each `send` timed, one-way delays from the payload.
fn probe(a: &Host, b: &Host, n: u32) -> anyhow::Result<Run> {
    let rx = udp_socket(b, PORT)?;
    let _ = nix::sys::socket::setsockopt(&rx, nix::sys::socket::sockopt::RcvBufForce, &(8 << 20));
    rx.set_read_timeout(Some(Duration::from_millis(500)))?;
    let tx = udp_socket(a, 0)?;
    tx.connect((b.addr, PORT))?;
    let (arrivals, send_ns) = std::thread::scope(|s| {
        let receiver = s.spawn(|| {
            let mut out = Vec::new();
            let mut buf = [0u8; 64];
            while let Ok(len) = rx.recv(&mut buf) {
                let now = monotonic_ns();
                if len >= 12 {
                    let seq = u32::from_be_bytes(buf[..4].try_into().expect("4 bytes"));
                    let sent = u64::from_be_bytes(buf[4..12].try_into().expect("8 bytes"));
                    out.push((seq, now.saturating_sub(sent)));
                }
            }
            out
        });
        let mut send_ns = Vec::with_capacity(n as usize);
        for seq in 0..n {
            let mut payload = [0u8; 32];
            payload[..4].copy_from_slice(&seq.to_be_bytes());
            let t0 = monotonic_ns();
            payload[4..12].copy_from_slice(&t0.to_be_bytes());
            let _ = tx.send(&payload);
            send_ns.push((monotonic_ns() - t0) as f64);
            std::thread::sleep(INTERVAL);
        }
        (receiver.join().expect("receiver"), send_ns)
    });
    let mut max_seq = None;
    let mut reordered = 0;
    for (seq, _) in &arrivals {
        if max_seq.is_some_and(|m| *seq < m) {
            reordered += 1;
        }
        max_seq = max_seq.max(Some(*seq));
    }
    Ok(Run {
        one_way_ms: arrivals.iter().map(|(_, ns)| *ns as f64 / 1e6).collect(),
        send_ns,
        lost: n as usize - arrivals.len(),
        reordered,
    })
}

fn pct(v: &mut [f64], p: usize) -> f64 {
    v.sort_by(|x, y| x.total_cmp(y));
    if v.is_empty() {
        return f64::NAN;
    }
    v[(v.len() * p / 100).min(v.len() - 1)]
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// `dst inject net` in the background until it says the fault is live.
fn start_dst(dst: &str, ns: &str) -> anyhow::Result<(Child, BufReader<std::process::ChildStderr>)> {
    let mut child = Command::new(dst)
        .args(["--json", "inject", "net", "--netns", ns, "--dev", "eth0"])
        .args(["--proto", "udp", "--dport", &PORT.to_string()])
        .args(["--delay", "50ms", "--jitter", "10ms", "--seed", "7"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {dst}"))?;
    let mut err = BufReader::new(child.stderr.take().context("stderr")?);
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if err.read_line(&mut line)? == 0 {
            let st = child.wait()?;
            bail!("dst inject ended ({st}) before the fault was live:\n{seen}");
        }
        seen.push_str(&line);
        if line.contains(" live") {
            return Ok((child, err));
        }
    }
}

/// CPU time of every thread of a process so far, in ms (`/proc/PID/task/*/schedstat`, ns).
fn cpu_ms(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    let ns: u64 = tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    ns as f64 / 1e6
}

fn row(name: &str, backend: &str, r: &mut Run, dst_cpu_us: Option<f64>) -> String {
    let n = r.one_way_ms.len();
    let (p10, p50, p90) = (
        pct(&mut r.one_way_ms, 10),
        pct(&mut r.one_way_ms, 50),
        pct(&mut r.one_way_ms, 90),
    );
    let send = pct(&mut r.send_ns, 50) / 1000.0;
    let send_mean = mean(&r.send_ns) / 1000.0;
    format!(
        "| {name} | {backend} | {p10:.1} / {p50:.1} / {p90:.1} | {n} ({} lost, {} reordered) | {send:.1} / {send_mean:.1} | {} |",
        r.lost,
        r.reordered,
        dst_cpu_us.map_or("—".into(), |c| format!("{c:.1}"))
    )
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dst), Some(tc)) = (args.get(1), args.get(2)) else {
        bail!("usage: bench_vm_delay DST_BINARY TC_BINARY [PROBES]");
    };
    let n: u32 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let topo = Topology::new(&format!("dstvb{}-", std::process::id() % 10_000), 2, 231)?;
    let (a, b) = (&topo.hosts[0], &topo.hosts[1]);
    let mut rows = Vec::new();

    let mut base = probe(a, b, n)?;
    rows.push(row("no delay (base)", "—", &mut base, None));

    let (mut child, mut err) = start_dst(dst, a.ns.name())?;
    let cpu0 = cpu_ms(child.id());
    let mut with_dst = probe(a, b, n)?;
    let cpu = cpu_ms(child.id()) - cpu0;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    let mut out = String::new();
    child
        .stdout
        .take()
        .context("stdout")?
        .read_to_string(&mut out)?;
    let mut rest = String::new();
    let _ = err.read_to_string(&mut rest);
    child.wait()?;
    let ev: serde_json::Value = serde_json::from_str(&out)
        .with_context(|| format!("dst evidence is not JSON: {out}\n{rest}"))?;
    let backend = ev["backend"].as_str().unwrap_or("?").to_owned();
    let per_packet_us = cpu * 1000.0 / f64::from(n);
    rows.push(row(
        "dst inject net --delay 50ms --jitter 10ms",
        &backend,
        &mut with_dst,
        Some(per_packet_us),
    ));

    let tc_cmd = |args: &[&str]| -> anyhow::Result<()> {
        let st = a.ns.run(|| Command::new(tc).args(args).status())??;
        if !st.success() {
            bail!("tc {args:?} failed with {st}");
        }
        Ok(())
    };
    tc_cmd(&[
        "qdisc", "add", "dev", "eth0", "root", "netem", "delay", "50ms", "10ms",
    ])?;
    let netem = probe(a, b, n);
    tc_cmd(&["qdisc", "del", "dev", "eth0", "root"])?;
    let mut netem = netem?;
    rows.push(row(
        "tc qdisc netem delay 50ms 10ms",
        "netem",
        &mut netem,
        None,
    ));

    println!(
        "| configuration | backend | one-way ms p10 / p50 / p90 (requested 50 ± 10 ms; uniform jitter gives 42 / 50 / 58) | received | send() µs median / mean | dst CPU µs per packet |"
    );
    println!("|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
    println!();
    println!(
        "Kernel: {}; {n} datagrams of 32 bytes every {} ms per configuration.",
        release(),
        INTERVAL.as_millis()
    );
    Ok(())
}

fn release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}
