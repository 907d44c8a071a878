//! Booting one guest under QEMU (TCG): serial console streamed to a log file and to a line
//! callback, a deadline, and the QEMU process killed on timeout, error or panic.

use std::{
    fs,
    io::{BufRead as _, BufReader, Write as _},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::Context as _;

/// How a boot ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// QEMU exited by itself (the guest powered off).
    Exited,
    /// The deadline passed and QEMU was killed.
    TimedOut,
}

/// One boot's parameters.
pub struct Boot<'a> {
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    pub log: PathBuf,
    pub cpus: u32,
    pub timeout: Duration,
}

/// Kills QEMU when dropped (timeout, error, panic). On ctrl-c the terminal's SIGINT reaches
/// QEMU too: it runs in xtask's process group.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Boots and feeds every console line to `on_line` until QEMU exits or the deadline passes.
pub fn boot(b: &Boot<'_>, mut on_line: impl FnMut(&str)) -> anyhow::Result<Ending> {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args([
        "-accel",
        "tcg",
        "-cpu",
        "max",
        "-m",
        "1G",
        "-nographic",
        "-no-reboot",
    ])
    .args(["-smp", &b.cpus.to_string()])
    .arg("-kernel")
    .arg(b.kernel)
    .arg("-initrd")
    .arg(b.initrd)
    .args([
        "-append",
        "console=ttyS0 panic=-1 quiet loglevel=3 rdinit=/init",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    let mut child = cmd
        .spawn()
        .context("starting qemu-system-x86_64: apt-get install qemu-system-x86 (scripts/setup)")?;
    let stdout = child.stdout.take().context("qemu stdout")?;
    let mut guard = Guard(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut buf = Vec::new();
        while r.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
            let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
            buf.clear();
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log =
        fs::File::create(&b.log).with_context(|| format!("creating {}", b.log.display()))?;
    let deadline = Instant::now() + b.timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left.min(Duration::from_millis(500))) {
            Ok(line) => {
                writeln!(log, "{line}")?;
                on_line(&line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                guard.0.wait()?;
                return Ok(Ending::Exited);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if Instant::now() >= deadline {
            writeln!(
                log,
                "xtask: vm: timeout after {:?}, killing qemu",
                b.timeout
            )?;
            return Ok(Ending::TimedOut);
        }
    }
}
