//! Helpers shared by the Kubernetes, hardening and cluster tests: scratch directories, daemons
//! (optionally inside a network namespace, joined with setns before exec), tokens, certificates.

use std::{
    os::{fd::AsRawFd as _, unix::process::CommandExt as _},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use dst::netns::NetNs;

use super::unique;

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("{}{tag}", unique("dstk")));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    /// Writes a 0600 token file and returns (path, token).
    pub fn token(&self, name: &str) -> (PathBuf, String) {
        use std::os::unix::fs::PermissionsExt as _;
        let token = format!("tok-{name}-{}-0123456789abcdef", std::process::id());
        let p = self.0.join(format!("{name}.token"));
        std::fs::write(&p, &token).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        (p, token)
    }

    /// A self-signed P-256 certificate for `san` (e.g. `IP:127.0.0.1`): (cert, key).
    pub fn cert(&self, san: &str) -> (PathBuf, PathBuf) {
        let (cert, key) = (self.0.join("cert.pem"), self.0.join("key.pem"));
        let out = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-days", "1", "-subj", "/CN=dst-test"])
            .arg("-addext")
            .arg(format!("subjectAltName={san}"))
            // A leaf certificate: webpki refuses a CA certificate as the server's.
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (cert, key)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `dst daemon`, SIGKILLed and reaped on drop.
pub struct Daemon {
    pub child: Option<Child>,
    pub socket: PathBuf,
}

impl Daemon {
    /// Starts `dst daemon` with its socket and history in `dir` (named `name`), inside `ns`
    /// when given, and waits until its unix socket answers.
    pub fn start(dir: &Path, name: &str, ns: Option<&NetNs>, extra: &[&str]) -> Self {
        let socket = dir.join(format!("{name}.sock"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dst"));
        cmd.arg("daemon")
            .arg("--socket")
            .arg(&socket)
            .arg("--history")
            .arg(dir.join(format!("{name}.jsonl")))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(ns) = ns {
            join_netns(&mut cmd, ns);
        }
        let child = cmd.spawn().expect("spawning dst daemon");
        let d = Self {
            child: Some(child),
            socket,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = dst::client::Client::new(&d.socket)
                .request_blocking(hyper::Method::GET, "/v1/health", None)
                .is_ok_and(|r| r.ok());
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "daemon {name} did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A free TCP port on loopback (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Prints `SKIP: …` and returns true when the probe lacks a mechanism.
pub fn skip_without(mechanisms: &[&str]) -> bool {
    let report = dst::probe::run();
    for m in mechanisms {
        if !report.has(m) {
            eprintln!(
                "SKIP: probe says {m} is missing: {:?}",
                report.mechanisms.get(*m)
            );
            return true;
        }
    }
    false
}

/// Makes `cmd`'s child join the network namespace `ns` before it execs.
pub fn join_netns(cmd: &mut Command, ns: &NetNs) {
    let fd = ns.file().as_raw_fd();
    // SAFETY: setns is async-signal-safe; the fd stays open in the parent until exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// One `dst daemon` per host, inside the host's namespace, serving TCP on `host:port` with a
/// token; returns them (named n1, n2, …) and the path of their inventory.
pub fn start_nodes(
    dir: &Scratch,
    hosts: &[dst::testing::Host],
    port: u16,
) -> (Vec<Daemon>, PathBuf) {
    let mut inv = String::new();
    let mut daemons = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let name = format!("n{}", i + 1);
        let (tf, _) = dir.token(&name);
        let addr = format!("{}:{port}", h.addr);
        daemons.push(Daemon::start(
            &dir.0,
            &name,
            Some(&h.ns),
            &["--listen", &addr, "--token-file", tf.to_str().unwrap()],
        ));
        inv.push_str(&format!(
            "[[node]]\nname = \"{name}\"\naddress = \"{addr}\"\ntoken_file = \"{name}.token\"\n\n"
        ));
    }
    let inv_path = dir.0.join("inventory.toml");
    std::fs::write(&inv_path, &inv).unwrap();
    (daemons, inv_path)
}

/// The exit observer's count of a result against the truth (the process's own record or the
/// injector's counter): equal, or, on kernels that run the observer preemptibly (7.x, see
/// `dst::sys::twin`), short by no more than the skipped runs the kernel counted and the
/// evidence reports as `observer_missed`. Never more than the truth.
pub fn assert_observed(seen: u64, truth: u64, missed: u64, what: &str) {
    if missed == 0 {
        assert_eq!(seen, truth, "{what}: the observer skipped nothing");
        return;
    }
    eprintln!(
        "NOTE: {what}: observed {seen} of {truth}; the kernel skipped the observer {missed} \
         times, which the evidence reports"
    );
    assert!(
        seen <= truth && truth - seen <= missed,
        "{what}: observed {seen} of {truth}, beyond the {missed} skipped runs the evidence reports"
    );
}

/// What a target's calls returned against what the fault should have made them return
/// (`want[i]` an errno, or 0 for a call the fault does not match): equal, or, when the kernel
/// skipped the fault's hook programs (`injector_missed`, trampoline programs preempted on
/// kernels that preempt there), some calls that should have failed succeeded instead, no more
/// than the skips the evidence reports. A call that should succeed never fails.
pub fn assert_injected(got: &[i32], want: &[i32], missed: u64, what: &str) {
    if missed == 0 {
        assert_eq!(got, want, "{what}: the kernel skipped no hook program");
        return;
    }
    assert_eq!(got.len(), want.len(), "{what}: number of calls");
    let mut short = 0u64;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if g != w {
            assert!(
                *w != 0 && *g == 0,
                "{what}: call {i} returned {g}, expected {w} (or 0 if its hook was skipped)"
            );
            short += 1;
        }
    }
    eprintln!(
        "NOTE: {what}: {short} calls that should have failed ran untouched; the kernel skipped \
         the hook programs {missed} times, which the evidence reports"
    );
    assert!(
        short <= missed,
        "{what}: {short} calls escaped the fault, beyond the {missed} skipped runs the evidence \
         reports"
    );
}
