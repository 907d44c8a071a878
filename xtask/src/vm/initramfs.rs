//! The guest's initramfs: busybox-static as `/init` (a shell script), the kernel's modules,
//! the static test binaries at the paths the tests expect, host tools the tests call (bash,
//! sqlite3) with their shared libraries, and the list of tests to run.

use std::{
    fs,
    io::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

use super::{build::Binaries, cpio::Cpio, kernels::Prepared};

/// Where Debian's busybox-static lives.
const BUSYBOX: &str = "/bin/busybox";

/// Busybox applets the init script and the tests' shell snippets use (`seq`, `head`, …).
const APPLETS: &[&str] = &[
    "sh", "mount", "mkdir", "insmod", "ip", "cat", "grep", "tee", "sleep", "poweroff", "echo",
    "rm", "ls", "dmesg", "uname", "timeout", "seq", "head", "tail", "wc", "true", "false",
    "printf", "dd", "env", "kill", "date", "od", "tr", "cut", "sort", "uniq", "ps", "id", "touch",
    "cp", "mv", "ln", "chmod", "stat", "sync", "yes", "xargs", "sed", "awk", "mktemp", "basename",
    "dirname", "nproc", "pidof", "pgrep", "test", "[",
];

/// Host programs copied with their libraries when present (tests spawn them by name).
const HOST_TOOLS: &[&str] = &["bash", "sqlite3"];

/// Marker lines the init script prints on the serial console (parsed by `report`).
pub const BEGIN: &str = "DSTVM-BEGIN";
pub const RESULT: &str = "DSTVM-RESULT";
pub const PROBE_BEGIN: &str = "DSTVM-PROBE-BEGIN";
pub const PROBE_END: &str = "DSTVM-PROBE-END";
pub const DONE: &str = "DSTVM-DONE";

pub const BENCH_BEGIN: &str = "DSTVM-BENCH-BEGIN";
pub const BENCH_END: &str = "DSTVM-BENCH-END";

/// What one guest runs.
pub struct Plan<'a> {
    pub kernel: &'a Prepared,
    pub bins: &'a Binaries,
    pub tests: &'a [String],
    /// `NAME=value` lines exported before the tests (e.g. DST_EXPECT_PROBE).
    pub env: Vec<(String, String)>,
    /// Instead of the tests: this command line, its stdout between the bench markers.
    pub bench: Option<String>,
    /// More host programs to copy with their libraries (e.g. `tc` for the netem baseline).
    pub extra_tools: &'a [&'a str],
    /// Tests not run again after a failure (known failures on this kernel).
    pub no_retry: Vec<String>,
}

/// Writes the gzip-compressed initramfs for `plan` to `out`.
pub fn write(plan: &Plan<'_>, out: &Path) -> anyhow::Result<()> {
    let mut c = Cpio::default();
    for d in [
        "dev", "proc", "sys", "run", "tmp", "root", "etc", "bin", "sbin", "usr/bin", "usr/sbin",
    ] {
        c.dir(d);
    }
    let busybox = fs::read(BUSYBOX)
        .with_context(|| format!("{BUSYBOX} missing: apt-get install busybox-static"))?;
    c.file("bin/busybox", 0o755, &busybox);
    for a in APPLETS {
        c.symlink(&format!("bin/{a}"), "busybox");
    }
    c.file("init", 0o755, init_script(plan).as_bytes());
    for m in &plan.kernel.modules {
        let name = m.file_name().unwrap_or_default().to_string_lossy();
        c.file(&format!("lib/modules/dstvm/{name}"), 0o644, &fs::read(m)?);
    }
    c.file("dstvm/privileged", 0o755, &fs::read(&plan.bins.tests)?);
    for extra in &plan.bins.extra {
        let name = extra.file_name().unwrap_or_default().to_string_lossy();
        c.file(&format!("dstvm/{name}"), 0o755, &fs::read(extra)?);
    }
    for (at, from) in &plan.bins.placed {
        c.file(&at.to_string_lossy(), 0o755, &fs::read(from)?);
    }
    for tool in HOST_TOOLS.iter().chain(plan.extra_tools) {
        if let Ok(path) = which(tool) {
            add_with_libs(&mut c, &path)?;
        }
    }
    c.file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n");
    c.file("etc/group", 0o644, b"root:x:0:\n");
    let tests = plan.tests.join("\n") + "\n";
    c.file("dstvm/tests", 0o644, tests.as_bytes());
    let no_retry = plan.no_retry.join("\n") + "\n";
    c.file("dstvm/no-retry", 0o644, no_retry.as_bytes());
    let cpio = c.finish();
    gzip(&cpio, out)
}

fn which(tool: &str) -> anyhow::Result<PathBuf> {
    for dir in ["/usr/bin", "/bin", "/usr/sbin", "/sbin"] {
        let p = Path::new(dir).join(tool);
        if p.exists() {
            return Ok(fs::canonicalize(p)?);
        }
    }
    bail!("{tool} not found")
}

/// Copies a dynamically linked host program and every library `ldd` names, at the same paths.
fn add_with_libs(c: &mut Cpio, exe: &Path) -> anyhow::Result<()> {
    c.file(&exe.to_string_lossy(), 0o755, &fs::read(exe)?);
    let out = Command::new("ldd")
        .arg(exe)
        .output()
        .context("running ldd")?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
        let path = match line.split_once("=>") {
            Some((_, r)) => r.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            let real = fs::canonicalize(p)?;
            c.file(p, 0o755, &fs::read(&real)?);
        }
    }
    // Tests call programs by name or as /bin/NAME (the guest has no merged /usr).
    let name = exe.file_name().unwrap_or_default().to_string_lossy();
    for dir in ["/usr/bin", "/bin"] {
        let alias = format!("{dir}/{name}");
        if exe != Path::new(&alias) {
            c.symlink(&alias, &exe.to_string_lossy());
        }
    }
    Ok(())
}

fn gzip(data: &[u8], out: &Path) -> anyhow::Result<()> {
    let file = fs::File::create(out)?;
    let mut child = Command::new("gzip")
        .args(["-1", "-c"])
        .stdin(Stdio::piped())
        .stdout(file)
        .spawn()
        .context("running gzip")?;
    child.stdin.take().context("gzip stdin")?.write_all(data)?;
    if !child.wait()?.success() {
        bail!("gzip failed writing {}", out.display());
    }
    Ok(())
}

/// The `/init` script: mounts, modules, loopback, the probe, then each test with its result
/// on one marker line, then power off.
fn init_script(plan: &Plan<'_>) -> String {
    let mut s = String::from(
        r#"#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root RUST_BACKTRACE=1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t bpf bpf /sys/fs/bpf
mount -t securityfs securityfs /sys/kernel/security
mount -t debugfs debugfs /sys/kernel/debug
mount -t tracefs tracefs /sys/kernel/tracing
mount -t tmpfs cgroup /sys/fs/cgroup && mkdir /sys/fs/cgroup/unified
mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified
"#,
    );
    for m in &plan.kernel.modules {
        let name = m.file_name().unwrap_or_default().to_string_lossy();
        s.push_str(&format!(
            "insmod /lib/modules/dstvm/{name} || echo \"DSTVM-WARN insmod {name} failed\"\n"
        ));
    }
    for (k, v) in &plan.env {
        s.push_str(&format!("export {k}='{v}'\n"));
    }
    s.push_str(&format!(
        r#"ip link set lo up
echo "DSTVM-KERNEL $(uname -r) lsm=$(cat /sys/kernel/security/lsm)"
echo {PROBE_BEGIN}
{dst} probe --json
echo {PROBE_END}
{body}echo {DONE}
poweroff -f
"#,
        dst = dst_path(plan),
        body = match &plan.bench {
            Some(cmd) => format!("cd /tmp\necho {BENCH_BEGIN}\n{cmd}\necho {BENCH_END} rc=$?\n"),
            None => tests_loop(),
        },
    ));
    s
}

/// Where the guest finds `dst` (the path the tests have baked in).
pub fn dst_path(plan: &Plan<'_>) -> String {
    plan.bins
        .placed
        .first()
        .map(|(p, _)| p.display().to_string())
        .unwrap_or_default()
}

/// Each listed test on its own, its outcome on one marker line. A failing test runs once more:
/// passing then is reported as `flaky` (the emulated CPU is slow and shared, and a few tests
/// have timing margins made for real hardware); failing twice is `FAILED`.
fn tests_loop() -> String {
    format!(
        r#"cd /tmp
run() {{
  {{ /dstvm/privileged --exact "$1" --test-threads=1 --nocapture; echo $? > /tmp/rc; }} 2>&1 | tee /tmp/out
  rc=$(cat /tmp/rc)
}}
while read -r t; do
  [ -n "$t" ] || continue
  echo "{BEGIN} $t"
  run "$t"
  again=
  if [ "$rc" != 0 ] && ! grep -qxF "$t" /dstvm/no-retry; then
    echo "DSTVM-RETRY $t"; run "$t"; again=1
  fi
  if [ "$rc" != 0 ]; then r=FAILED
  elif [ -n "$again" ]; then r=flaky
  elif grep -q '^SKIP:' /tmp/out; then r=SKIP
  elif grep -q '^running 0 tests' /tmp/out; then r=not-run
  else r=ok; fi
  echo "{RESULT} $t $r"
done < /dstvm/tests
"#
    )
}
