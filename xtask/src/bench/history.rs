//! `cargo xtask bench history`: acknowledged appends per second with 1, 8 and 64 concurrent
//! clients over the daemon's unix socket (one op per request, and batches), against appending
//! the same operations to a plain file with one write + fdatasync per batch, in the same run.

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::run::{cargo, run as run_cmd};

/// Options of `cargo xtask bench history`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 3)]
    pub secs: u64,
    /// Client counts.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 8, 64])]
    pub clients: Vec<usize>,
    /// Operations per request in the batched runs.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Directory for the history files (on a real disk, not tmpfs: fsync must cost what it costs).
    #[arg(long, default_value = "target/bench-history")]
    pub dir: PathBuf,
}

const OP: &str = r#"{"process":7,"type":"ok","f":"append","key":"k3","value":[1,2,3]}"#;

fn body(ops: usize) -> String {
    if ops == 1 {
        return OP.to_string();
    }
    let mut s = String::from("[");
    for i in 0..ops {
        if i > 0 {
            s.push(',');
        }
        s.push_str(OP);
    }
    s.push(']');
    s
}

struct Daemon(Child, PathBuf);

impl Drop for Daemon {
    fn drop(&mut self) {
        // SIGTERM so it removes its socket; then reap.
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
        let _ = std::fs::remove_file(&self.1);
    }
}

fn start_daemon(bin: &Path, dir: &Path, tag: &str) -> anyhow::Result<Daemon> {
    let socket = dir.join(format!("{tag}.sock"));
    let history = dir.join(format!("{tag}.jsonl"));
    let _ = std::fs::remove_file(&history);
    let child = Command::new(bin)
        .args(["daemon", "--socket"])
        .arg(&socket)
        .arg("--history")
        .arg(&history)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let d = Daemon(child, socket.clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(&socket).is_err() {
        if Instant::now() > deadline {
            bail!("the daemon did not open {} within 10 s", socket.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(d)
}

/// One keep-alive HTTP/1.1 connection, written by hand to keep the load generator cheap.
struct Conn {
    w: UnixStream,
    r: BufReader<UnixStream>,
}

impl Conn {
    fn new(socket: &Path) -> anyhow::Result<Self> {
        let w = UnixStream::connect(socket)?;
        let r = BufReader::new(w.try_clone()?);
        Ok(Self { w, r })
    }

    fn post(&mut self, req: &[u8]) -> anyhow::Result<()> {
        self.w.write_all(req)?;
        let mut line = String::new();
        self.r.read_line(&mut line)?;
        if !line.starts_with("HTTP/1.1 200") {
            bail!("daemon answered {line:?}");
        }
        let mut len = 0usize;
        loop {
            line.clear();
            self.r.read_line(&mut line)?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse()?;
            }
        }
        let mut b = vec![0u8; len];
        self.r.read_exact(&mut b)?;
        Ok(())
    }
}

/// Runs `clients` threads for `secs`, each repeating `step`; returns acknowledged ops/s.
fn drive<S>(
    clients: usize,
    secs: u64,
    ops_per_step: usize,
    mk: impl Fn() -> anyhow::Result<S>,
) -> anyhow::Result<f64>
where
    S: FnMut() -> anyhow::Result<()> + Send + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for _ in 0..clients {
        let mut step = mk()?;
        let (stop, done) = (stop.clone(), done.clone());
        handles.push(std::thread::spawn(move || -> anyhow::Result<()> {
            while !stop.load(Ordering::Relaxed) {
                step()?;
                done.fetch_add(ops_per_step as u64, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let n = done.load(Ordering::Relaxed);
    let t = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join()
            .map_err(|_| anyhow::anyhow!("a client panicked"))??;
    }
    Ok(n as f64 / t)
}

fn via_daemon(
    bin: &Path,
    dir: &Path,
    clients: usize,
    ops: usize,
    secs: u64,
) -> anyhow::Result<f64> {
    let d = start_daemon(bin, dir, &format!("d{clients}x{ops}"))?;
    let b = body(ops);
    let req: Arc<Vec<u8>> = Arc::new(
        format!(
            "POST /v1/history HTTP/1.1\r\nHost: dst\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{b}",
            b.len()
        )
        .into_bytes(),
    );
    let socket = d.1.clone();
    let r = drive(clients, secs, ops, || {
        let mut c = Conn::new(&socket)?;
        let req = req.clone();
        Ok(move || c.post(&req))
    });
    drop(d);
    r
}

fn plain_file(dir: &Path, clients: usize, ops: usize, secs: u64) -> anyhow::Result<f64> {
    let path = dir.join(format!("plain{clients}x{ops}.jsonl"));
    let _ = std::fs::remove_file(&path);
    let f = Arc::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?,
    );
    let mut line = String::new();
    for _ in 0..ops {
        line.push_str(OP);
        line.push('\n');
    }
    let data = Arc::new(line.into_bytes());
    let r = drive(clients, secs, ops, || {
        let (f, data) = (f.clone(), data.clone());
        Ok(move || -> anyhow::Result<()> {
            (&*f).write_all(&data)?;
            f.sync_data()?;
            Ok(())
        })
    });
    let _ = std::fs::remove_file(&path);
    r
}

/// Builds the release binary, measures, prints a Markdown table for BENCHMARKS.md.
pub fn run(args: &Args) -> anyhow::Result<()> {
    run_cmd(cargo().args(["build", "--release", "-p", "dst-userspace", "--bin", "dst"]))?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin = root.join("target/release/dst");
    let dir = if args.dir.is_absolute() {
        args.dir.clone()
    } else {
        root.join(&args.dir)
    };
    std::fs::create_dir_all(&dir)?;
    let mut rows = Vec::new();
    for &ops in &[1usize, args.batch] {
        for &c in &args.clients {
            let daemon = via_daemon(&bin, &dir, c, ops, args.secs)?;
            let plain = plain_file(&dir, c, ops, args.secs)?;
            eprintln!(
                "xtask: bench history: {c} clients x {ops} op/request: daemon {daemon:.0} ops/s, \
                 plain file + fdatasync per batch {plain:.0} ops/s"
            );
            rows.push((c, ops, daemon, plain));
        }
    }
    println!(
        "| clients | ops per request | dst daemon (acked ops/s) | plain file, fdatasync per batch (ops/s) | ratio |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for (c, ops, d, p) in rows {
        println!("| {c} | {ops} | {d:.0} | {p:.0} | {:.2}x |", d / p);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
