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

/// Busybox applets the init script uses.
const APPLETS: &[&str] = &[
    "sh", "mount", "mkdir", "insmod", "ip", "cat", "grep", "tee", "sleep", "poweroff", "echo",
    "rm", "ls", "dmesg", "uname", "timeout",
];

/// Host programs copied with their libraries when present (tests spawn them by name).
const HOST_TOOLS: &[&str] = &["bash", "sqlite3"];

/// Marker lines the init script prints on the serial console (parsed by `report`).
pub const BEGIN: &str = "DSTVM-BEGIN";
pub const RESULT: &str = "DSTVM-RESULT";
pub const PROBE_BEGIN: &str = "DSTVM-PROBE-BEGIN";
pub const PROBE_END: &str = "DSTVM-PROBE-END";
pub const DONE: &str = "DSTVM-DONE";

/// What one guest runs.
pub struct Plan<'a> {
    pub kernel: &'a Prepared,
    pub bins: &'a Binaries,
    pub tests: &'a [String],
    /// `NAME=value` lines exported before the tests (e.g. DST_EXPECT_PROBE).
    pub env: Vec<(String, String)>,
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
    for (at, from) in &plan.bins.placed {
        c.file(&at.to_string_lossy(), 0o755, &fs::read(from)?);
    }
    for tool in HOST_TOOLS {
        if let Ok(path) = which(tool) {
            add_with_libs(&mut c, &path)?;
        }
    }
    c.file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n");
    c.file("etc/group", 0o644, b"root:x:0:\n");
    let tests = plan.tests.join("\n") + "\n";
    c.file("dstvm/tests", 0o644, tests.as_bytes());
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
    // Tests call programs by name: make them findable under /usr/bin too.
    let name = exe.file_name().unwrap_or_default().to_string_lossy();
    let usr = format!("/usr/bin/{name}");
    if exe != Path::new(&usr) {
        c.symlink(&usr, &exe.to_string_lossy());
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
cd /tmp
while read -r t; do
  [ -n "$t" ] || continue
  echo "{BEGIN} $t"
  {{ /dstvm/privileged --exact "$t" --test-threads=1 --nocapture; echo $? > /tmp/rc; }} 2>&1 | tee /tmp/out
  rc=$(cat /tmp/rc)
  if [ "$rc" != 0 ]; then r=FAILED
  elif grep -q '^SKIP:' /tmp/out; then r=SKIP
  elif grep -q '^running 0 tests' /tmp/out; then r=not-run
  else r=ok; fi
  echo "{RESULT} $t $r"
done < /dstvm/tests
echo {DONE}
poweroff -f
"#,
        dst = plan
            .bins
            .placed
            .first()
            .map(|(p, _)| p.display().to_string())
            .unwrap_or_default(),
    ));
    s
}
