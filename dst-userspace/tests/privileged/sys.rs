//! Syscall and process faults: errno injection on exactly the targeted process (cgroup sock
//! hooks and the seccomp supervisor), the exit observer's count of what the target received,
//! kill and pause with kernel evidence.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    net::TcpListener,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use dst::sys::{
    LaunchReport, launch,
    process::{self, ProcessAction},
};

use super::support::assert_observed;
use dst::{
    cgroup::Cgroup,
    probe,
    sys::{
        SysEngine, SysFault, SyscallClass, Target, Trigger, engine::ProcessEvent, spec::parse_errno,
    },
};

/// Kills and reaps a child on drop, so a failing assertion leaves nothing behind.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether a mechanism the test needs is missing (per `dst probe`); prints `SKIP: ...` if so.
pub(crate) fn skip_without(mechanisms: &[&str]) -> bool {
    let report = probe::run();
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

/// A bash process that waits for a line on stdin, then tries `n` TCP connects to `port` on
/// loopback in its own process (a builtin redirection, no fork) and logs `ok` or `fail` each.
fn connector(port: u16, n: u32) -> Reaped {
    let script = format!(
        "read go; for i in {{1..{n}}}; do \
           if : 3<>/dev/tcp/127.0.0.1/{port}; then echo ok; else echo fail; fi; \
         done"
    );
    Reaped(
        Command::new("bash")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bash starts"),
    )
}

fn go_and_collect(c: &mut Reaped) -> (Vec<String>, String) {
    c.0.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = BufReader::new(c.0.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .collect();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut c.0.stderr.take().unwrap(), &mut err).unwrap();
    (out, err)
}

/// Must show: `connect` of a targeted pid fails with ECONNREFUSED while an untargeted sibling
/// in the same cgroup connects fine; injected == failures the target logged == ECONNREFUSED
/// returns the sys_exit observer saw for that pid.
#[test]
fn connect_refused_for_target_pid_only() {
    if skip_without(&["cgroup_sock_addr", "tracepoint"]) {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicU64::new(0));
    let acc = accepted.clone();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            if s.is_ok() {
                acc.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    let cg = Cgroup::create(&format!("dst-test-sys-{}", std::process::id())).unwrap();
    let mut target = connector(port, 20);
    let mut sibling = connector(port, 20);
    cg.add_pid(target.0.id()).unwrap();
    cg.add_pid(sibling.0.id()).unwrap();

    let mut engine = SysEngine::load().expect("dst-sys loads");
    engine.attach_sock(cg.path()).unwrap();
    engine.observe_class(SyscallClass::Connect).unwrap();
    let tpid = target.0.id();
    engine.add_pid(tpid, false).unwrap();
    let fault = SysFault {
        target: Target::Pid {
            pid: tpid,
            children: false,
        },
        class: SyscallClass::Connect,
        errno: parse_errno("ECONNREFUSED").unwrap(),
        trigger: Trigger::default(),
        path: None,
        duration: None,
    };
    let slots = engine.apply(&[fault.to_rule(0, 0).unwrap()]).unwrap();

    let (t_out, t_err) = go_and_collect(&mut target);
    let (s_out, _) = go_and_collect(&mut sibling);
    let t_fail = t_out.iter().filter(|l| *l == "fail").count() as u64;
    let s_ok = s_out.iter().filter(|l| *l == "ok").count();
    let c = engine.counters(slots[0]).unwrap();
    let seen = engine
        .received(
            Some(tpid),
            SyscallClass::Connect,
            -i64::from(libc::ECONNREFUSED),
        )
        .unwrap();
    eprintln!(
        "target log: {t_fail} fail; sibling: {s_ok} ok; counters {c:?}; observer saw {seen} \
         ECONNREFUSED for pid {tpid}; listener accepted {}",
        accepted.load(Ordering::SeqCst)
    );
    assert_eq!(t_fail, 20, "target log: {t_out:?}");
    assert!(
        t_err.contains("Connection refused"),
        "target saw another error: {t_err}"
    );
    assert_eq!(s_ok, 20, "blast radius: sibling log {s_out:?}");
    assert_eq!(c.matched, 20);
    assert_eq!(c.injected, t_fail, "injected vs the target's own log");
    assert_observed(
        seen,
        t_fail,
        engine.observer_misses().unwrap(),
        "observer vs the target's own log",
    );
    let observed_other = engine
        .observations()
        .unwrap()
        .iter()
        .any(|o| o.pid == sibling.0.id());
    assert!(
        !observed_other,
        "the untargeted sibling must not be observed"
    );
}

fn exec_fault(class: SyscallClass, errno: &str, nth: Option<u64>, path: Option<&str>) -> SysFault {
    SysFault {
        target: Target::Pid {
            pid: 0,
            children: true,
        },
        class,
        errno: parse_errno(errno).unwrap(),
        trigger: Trigger {
            nth,
            ..Trigger::default()
        },
        path: path.map(Into::into),
        duration: None,
    }
}

/// A scratch directory removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("dst-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ran(report: &LaunchReport) -> String {
    serde_json::to_string_pretty(report).unwrap()
}

/// Must show: `dst exec --syscall write --errno EIO --path X --nth 3`: exactly the third write
/// to X fails; writes to another file and to stdout, and an unlaunched process writing to X,
/// are untouched (seccomp backend on a kernel without BPF LSM).
#[test]
fn exec_write_nth_3_fails_exactly_once() {
    if skip_without(&["seccomp_user_notif", "tracepoint"]) {
        return;
    }
    let dir = TempDir::new("nth");
    let x = dir.0.join("x");
    let y = dir.0.join("y");
    let script = format!(
        "exec 3>{x} 4>{y}; for i in 1 2 3 4 5 6; do \
           echo line$i >&3 || echo \"x write $i failed\"; echo line$i >&4; echo out$i; \
         done",
        x = x.display(),
        y = y.display()
    );
    let mut cmd = Command::new("bash");
    cmd.args(["-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let fault = exec_fault(
        SyscallClass::Write,
        "EIO",
        Some(3),
        Some(x.to_str().unwrap()),
    );
    let mut run = launch(cmd, std::slice::from_ref(&fault)).expect("launch");
    // An unlaunched process writing to the same file meanwhile.
    let bystander = Command::new("bash")
        .args([
            "-c",
            &format!(
                "for i in 1 2 3 4 5 6; do echo b$i >> {}.b; done",
                x.display()
            ),
        ])
        .status()
        .unwrap();
    assert!(bystander.success());
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut run.child_mut().stdout.take().unwrap(), &mut stdout)
        .unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut run.child_mut().stderr.take().unwrap(), &mut stderr)
        .unwrap();
    let pid = run.pid();
    let report = run.wait().unwrap();
    eprintln!("{}\nstdout:\n{stdout}\nstderr:\n{stderr}", ran(&report));
    let xs = std::fs::read_to_string(&x).unwrap();
    assert_eq!(
        xs, "line1\nline2\nline4\nline5\nline6\n",
        "x: exactly the 3rd write fails"
    );
    assert_eq!(
        std::fs::read_to_string(&y).unwrap(),
        "line1\nline2\nline3\nline4\nline5\nline6\n",
        "another file is untouched"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{}.b", x.display()))
            .unwrap()
            .lines()
            .count(),
        6,
        "an unlaunched process is untouched"
    );
    assert!(
        stdout.contains("x write 3 failed") && stdout.contains("out6"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("failed").count(), 1);
    assert!(stderr.contains("Input/output error"), "{stderr}");
    let f = &report.faults[0];
    assert_eq!(f.backend, dst::probe::Backend::Seccomp);
    assert_eq!(
        (f.counters.matched, f.counters.injected, f.counters.passed),
        (6, 1, 5)
    );
    let eio: u64 = f
        .received
        .iter()
        .filter(|o| o.pid == pid && o.result == "EIO")
        .map(|o| o.count)
        .sum();
    assert_observed(
        eio,
        1,
        f.observer_missed,
        "the observer saw the EIO the process received",
    );
    assert_eq!(report.exit_code, Some(0));
}

/// Must show: fsync fails with EIO for a launched database (the sqlite3 shell, which syncs its
/// journal and database with fdatasync/fsync), the database reports the I/O error, and the
/// evidence shows the calls and what the process received; the same command without the
/// fault succeeds.
#[test]
fn exec_fsync_eio_fails_a_database_commit() {
    if skip_without(&["seccomp_user_notif", "tracepoint"]) {
        return;
    }
    if Command::new("sqlite3").arg("-version").output().is_err() {
        eprintln!("SKIP: sqlite3 is not installed (apt-get install sqlite3)");
        return;
    }
    let dir = TempDir::new("fsync");
    let sql = "PRAGMA synchronous=FULL; CREATE TABLE t(x); INSERT INTO t VALUES (1);";
    let faulted_db = dir.0.join("faulted.db");
    let mut cmd = Command::new("sqlite3");
    cmd.arg(&faulted_db)
        .arg(sql)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let fault = exec_fault(
        SyscallClass::Fsync,
        "EIO",
        None,
        Some(dir.0.to_str().unwrap()),
    );
    let mut run = launch(cmd, std::slice::from_ref(&fault)).expect("launch");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut run.child_mut().stderr.take().unwrap(), &mut stderr)
        .unwrap();
    let pid = run.pid();
    let report = run.wait().unwrap();
    eprintln!("{}\nstderr: {stderr}", ran(&report));
    let f = &report.faults[0];
    assert_eq!(f.backend, dst::probe::Backend::Seccomp);
    assert!(f.landed && f.counters.injected >= 1, "{:?}", f.counters);
    assert!(
        stderr.contains("disk I/O error"),
        "sqlite must report the EIO: {stderr}"
    );
    assert_ne!(report.exit_code, Some(0), "the commit must fail");
    let eio: u64 = f
        .received
        .iter()
        .filter(|o| o.pid == pid && o.result == "EIO")
        .map(|o| o.count)
        .sum();
    assert_observed(
        eio,
        f.counters.injected,
        f.observer_missed,
        "observer EIO count vs injected",
    );
    // Control: the same commit without dst succeeds.
    let ok = Command::new("sqlite3")
        .arg(dir.0.join("control.db"))
        .arg(sql)
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Must show: a killed process is reported with its signal by the kernel's exit observer.
#[test]
fn kill_is_reported_with_its_signal() {
    if skip_without(&["tracepoint", "ringbuf"]) {
        return;
    }
    let mut child = Reaped(Command::new("sleep").arg("30").spawn().unwrap());
    let pid = child.0.id();
    let mut engine = SysEngine::load().unwrap();
    let ev = process::inject(&mut engine, &[pid], ProcessAction::Kill).unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&ev).unwrap());
    let status = child.0.wait().unwrap();
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(status.signal(), Some(9));
    assert!(ev.landed);
    let killed = ev.events.iter().any(|e| {
        matches!(e, ProcessEvent::Exit { pid: p, killed_by: Some(s), exit_code: None, .. }
            if *p == pid && s == "SIGKILL")
    });
    assert!(killed, "exit with SIGKILL in the evidence: {:?}", ev.events);
}

/// Must show: a paused process makes no progress for the duration (measured by its own
/// counter, which it appends to a file) and resumes; the evidence has the kernel's
/// SIGSTOP and SIGCONT times.
#[test]
fn pause_stops_progress_then_resumes() {
    if skip_without(&["tracepoint", "ringbuf"]) {
        return;
    }
    let dir = TempDir::new("pause");
    let counter = dir.0.join("counter");
    let read_counter = || -> Option<u64> {
        // Last complete line of the append-only log.
        let s = std::fs::read_to_string(&counter).ok()?;
        s.strip_suffix('\n')?.lines().last()?.parse().ok()
    };
    let script = format!(
        "i=0; while :; do i=$((i+1)); if ((i % 100 == 0)); then echo $i >> {}; fi; done",
        counter.display()
    );
    let child = Reaped(Command::new("bash").args(["-c", &script]).spawn().unwrap());
    let pid = child.0.id();
    let start = Instant::now();
    while read_counter().is_none() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let pause = Duration::from_millis(600);
    let injector = std::thread::spawn(move || {
        let mut engine = SysEngine::load().unwrap();
        process::inject(&mut engine, &[pid], ProcessAction::Pause(pause)).unwrap()
    });
    // Sample the process's own counter while it is stopped.
    let start = Instant::now();
    while process::state(pid) != Some('T') && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let v1 = read_counter();
    std::thread::sleep(Duration::from_millis(300));
    let v2 = read_counter();
    let still_stopped = process::state(pid) == Some('T');
    let ev = injector.join().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let v3 = read_counter();
    let sig_times: Vec<(String, u64)> = ev
        .events
        .iter()
        .filter_map(|e| match e {
            ProcessEvent::Signal {
                name,
                time_ns,
                pid: p,
                ..
            } if *p == pid => Some((name.clone(), *time_ns)),
            _ => None,
        })
        .collect();
    let stopped_ms = (ev.resumed_at_ns.unwrap() - ev.stopped_at_ns.unwrap()) as f64 / 1e6;
    eprintln!(
        "counter while stopped: {v1:?} then {v2:?} 300 ms later (still stopped: {still_stopped}); \
         after resume {v3:?}; stopped {stopped_ms:.1} ms as dst saw it; kernel signals: {sig_times:?}"
    );
    assert!(ev.landed);
    assert!(
        still_stopped,
        "the second sample must fall inside the pause"
    );
    assert!(
        v1.is_some() && v1 == v2,
        "no progress while paused: {v1:?} → {v2:?}"
    );
    assert!(v3 > v2, "progress after resuming: {v2:?} → {v3:?}");
    let names: Vec<&str> = sig_times.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["SIGSTOP", "SIGCONT"],
        "kernel evidence of stop and resume"
    );
    assert!(sig_times[1].1 - sig_times[0].1 >= pause.as_nanos() as u64);
    drop(child);
}

/// The CLI: bad input is refused with exit 64 and a reason, a class no backend can carry for a
/// running process with exit 6; a connect fault on a running pid for a duration prints
/// evidence whose injected count equals the failures the target logged.
#[test]
fn cli_inject_syscall_refuses_bad_input_and_reports_evidence() {
    if skip_without(&["cgroup_sock_addr", "tracepoint"]) {
        return;
    }
    let dst = env!("CARGO_BIN_EXE_dst");
    let me = std::process::id().to_string();
    for (args, code) in [
        (
            vec![
                "--pid",
                "999999999",
                "--syscall",
                "connect",
                "--errno",
                "EIO",
            ],
            64,
        ),
        (
            vec!["--pid", &me, "--syscall", "frobnicate", "--errno", "EIO"],
            64,
        ),
        (
            vec!["--pid", &me, "--syscall", "connect", "--errno", "EWHATEVER"],
            64,
        ),
        (
            vec!["--cgroup", "/tmp", "--syscall", "connect", "--errno", "EIO"],
            64,
        ),
        (
            // No kernel backend can fail fsync of a running process on any kernel (BPF LSM
            // has no fsync hook); `write` would be carried by LSM where it exists and never end.
            vec!["--pid", &me, "--syscall", "fsync", "--errno", "EIO"],
            6,
        ),
    ] {
        let out = Command::new(dst)
            .args(["inject", "syscall"])
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(!err.trim().is_empty(), "{args:?} must say why");
    }

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || for _ in listener.incoming() {});
    let mut target = connector(port, 10);
    let tpid = target.0.id().to_string();
    let mut inject = Reaped(
        Command::new(dst)
            .args(["--json", "inject", "syscall", "--pid", &tpid])
            .args([
                "--syscall",
                "connect",
                "--errno",
                "ECONNREFUSED",
                "--duration",
                "10s",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Start the target only once dst says the fault is installed.
    let mut err = BufReader::new(inject.0.stderr.take().unwrap());
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 && !line.contains("installed") {
        line.clear();
    }
    assert!(line.contains("installed"), "dst never installed the fault");
    let (out, _) = go_and_collect(&mut target);
    let fails = out.iter().filter(|l| *l == "fail").count() as u64;
    // SIGINT ends the wait early; dst still prints the evidence.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(inject.0.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let mut json = String::new();
    std::io::Read::read_to_string(&mut inject.0.stdout.take().unwrap(), &mut json).unwrap();
    assert!(inject.0.wait().unwrap().success());
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    eprintln!("{json}");
    assert_eq!(fails, 10, "{out:?}");
    assert_eq!(v["counters"]["injected"].as_u64(), Some(fails));
    assert_eq!(v["backend"], "cgroup_sock");
    let seen: u64 = v["received"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["result"] == "ECONNREFUSED")
        .map(|o| o["count"].as_u64().unwrap())
        .sum();
    let missed = v["observer_missed"]
        .as_u64()
        .expect("observer_missed in the evidence");
    assert_observed(seen, fails, missed, "observer vs the target's own log");
}

/// In-kernel trigger: the kernel kills the process the first time it enters `write`
/// (`bpf_send_signal` from a `sys_enter` tracepoint), so it gets no further than that call.
#[test]
fn kill_at_chosen_syscall_from_the_kernel() {
    if skip_without(&["tracepoint", "bpf_send_signal", "ringbuf"]) {
        return;
    }
    let mut child = Reaped(
        Command::new("bash")
            .args(["-c", "read go; echo one; echo two; echo three"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id();
    let mut stdin = child.0.stdin.take().unwrap();
    let mut engine = SysEngine::load().unwrap();
    // The process starts writing only once the kernel program is armed.
    let ev = process::inject_at_syscall(
        &mut engine,
        pid,
        ProcessAction::Kill,
        SyscallClass::Write,
        Duration::from_secs(10),
        &mut || stdin.write_all(b"go\n").unwrap(),
    )
    .unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.0.stdout.take().unwrap(), &mut out).unwrap();
    use std::os::unix::process::ExitStatusExt as _;
    let status = child.0.wait().unwrap();
    eprintln!(
        "{}\nstdout: {out:?}",
        serde_json::to_string_pretty(&ev).unwrap()
    );
    assert_eq!(status.signal(), Some(9));
    assert!(ev.kernel_signal_ns.is_some() && ev.landed);
    assert!(
        !out.contains("two"),
        "the process ran past the first write: {out:?}"
    );
    assert!(ev.events.iter().any(|e| matches!(e,
        ProcessEvent::Exit { pid: p, killed_by: Some(s), .. } if *p == pid && s == "SIGKILL")));
}

/// A comm target: connect fails for every process with that command name and no other, with
/// the hooks on the cgroup root (so processes anywhere are covered).
#[test]
fn connect_refused_by_comm() {
    if skip_without(&["cgroup_sock_addr", "tracepoint"]) {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || for _ in listener.incoming() {});
    let dir = TempDir::new("comm");
    let name = format!("dstc{}", std::process::id() % 100_000);
    let link = dir.0.join(&name);
    std::os::unix::fs::symlink("/bin/bash", &link).unwrap();
    let script = format!(
        "read go; for i in 1 2 3 4 5; do \
           if : 3<>/dev/tcp/127.0.0.1/{port}; then echo ok; else echo fail; fi; done"
    );
    let spawn = |prog: &std::path::Path| {
        Reaped(
            Command::new(prog)
                .args(["-c", &script])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        )
    };
    let mut target = spawn(&link);
    let mut other = spawn(std::path::Path::new("/bin/bash"));
    let fault = SysFault {
        target: Target::Comm(name.clone()),
        class: SyscallClass::Connect,
        errno: libc::ECONNREFUSED,
        trigger: Trigger::default(),
        path: None,
        duration: Some(Duration::from_secs(30)),
    };
    let mut inj =
        dst::sys::inject::inject_running(&fault, &dst::sys::select::SysFacts::all()).unwrap();
    let (t_out, _) = go_and_collect(&mut target);
    let (o_out, _) = go_and_collect(&mut other);
    let report = inj.report().unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&report).unwrap());
    assert_eq!(t_out, vec!["fail"; 5], "target named {name}");
    assert_eq!(o_out, vec!["ok"; 5], "blast radius: another bash");
    assert_eq!(report.evidence.counters.injected, 5);
    let seen: u64 = report
        .evidence
        .received
        .iter()
        .filter(|o| o.result == "ECONNREFUSED")
        .map(|o| o.count)
        .sum();
    assert_observed(
        seen,
        5,
        report.evidence.observer_missed,
        "observer == injected",
    );
}

/// A bash pinned to CPU 0 (so its cached answer stays on one CPU) that answers each line on stdin with ten `echo x >/dev/null` (one
/// write each, no fork) and a `done` line (one more write); `exec` makes it exec `as_` (a
/// symlink to bash with another name) running the same loop.
fn pinned_writer(as_: &std::path::Path) -> Reaped {
    let body = "while read cmd; do \
                  if [ \"$cmd\" = exec ]; then exec \"$AS\" -c \"$BODY\"; fi; \
                  for i in 1 2 3 4 5 6 7 8 9 10; do echo x >/dev/null; done; echo done; \
                done";
    let mut cmd = Command::new("bash");
    cmd.args(["-c", body])
        .env("AS", as_)
        .env("BODY", body)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // SAFETY: only sched_setaffinity(2) between fork and exec (no allocation, no locks); the
    // VM tier's guests have no taskset.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(0, &mut set);
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Reaped(cmd.spawn().expect("bash starts pinned to CPU 0"))
}

/// Sends `cmd` and waits for the writer's `done` line.
fn step(w: &mut Reaped, cmd: &str, out: &mut impl std::io::BufRead) {
    writeln!(w.0.stdin.as_mut().unwrap(), "{cmd}").unwrap();
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "done", "writer answered {line:?}");
}

/// The exit observer caches "untargeted" per CPU; a process that becomes a target afterwards
/// — by pid, by moving into a targeted cgroup, by exec'ing under a targeted name — must be
/// observed from its next call on. Each writer runs pinned to one CPU and first writes while
/// untargeted (so its "untargeted" answer is cached there), then becomes a target by one of
/// the three routes and writes again: exactly its 11 writes of that step are observed. The
/// cgroup writer then leaves the cgroup with its "targeted" answer cached: nothing after that
/// is observed.
#[test]
fn observer_sees_processes_that_become_targets_later() {
    if skip_without(&["tracepoint"]) {
        return;
    }
    let dir = TempDir::new("obs-cache");
    let name = format!("dstw{}", std::process::id() % 100_000);
    let link = dir.0.join(&name);
    std::os::unix::fs::symlink("/bin/bash", &link).unwrap();
    let cg = Cgroup::create(&format!("dst-test-obs-{}", std::process::id())).unwrap();
    let mut by_pid = pinned_writer(&link);
    let mut by_cgroup = pinned_writer(&link);
    let mut by_comm = pinned_writer(&link);
    let mut outs: Vec<BufReader<std::process::ChildStdout>> =
        [&mut by_pid, &mut by_cgroup, &mut by_comm]
            .into_iter()
            .map(|w| BufReader::new(w.0.stdout.take().unwrap()))
            .collect();
    let mut engine = SysEngine::load().expect("dst-sys loads");
    engine.observe_class(SyscallClass::Write).unwrap();
    engine.observe_processes().unwrap();
    let seen = |e: &SysEngine, pid: u32| e.received(Some(pid), SyscallClass::Write, 0).unwrap();

    // The targets that will match are known to the kernel before the processes match them,
    // so only the kernel-side invalidation (cgroup move, rename) can make them observed.
    engine.add_cgroup(cg.id().unwrap()).unwrap();
    let mut comm = [0u8; 16];
    comm[..name.len()].copy_from_slice(name.as_bytes());
    engine.add_comm(comm).unwrap();
    let pids = [by_pid.0.id(), by_cgroup.0.id(), by_comm.0.id()];
    for (w, out) in [&mut by_pid, &mut by_cgroup, &mut by_comm]
        .into_iter()
        .zip(outs.iter_mut())
    {
        step(w, "w", out);
        step(w, "w", out);
    }
    let before: Vec<u64> = pids.iter().map(|p| seen(&engine, *p)).collect();

    // One route at a time, each writer caching its answer again right before its change (any
    // bump invalidates every slot, so the routes must not help each other).
    cg.add_pid(pids[1]).unwrap();
    step(&mut by_cgroup, "w", &mut outs[1]);
    step(&mut by_comm, "w", &mut outs[2]);
    // The old image reads `exec`, the new one (same pid) reads `w` from the same pipe.
    step(&mut by_comm, "exec\nw", &mut outs[2]);
    step(&mut by_pid, "w", &mut outs[0]);
    engine.add_pid(pids[0], false).unwrap();
    step(&mut by_pid, "w", &mut outs[0]);
    let after: Vec<u64> = pids.iter().map(|p| seen(&engine, *p)).collect();

    // The way back: the cgroup writer's "targeted" answer is cached too, right before it
    // moves out of the targeted cgroup; its writes after the move must not be observed.
    step(&mut by_cgroup, "w", &mut outs[1]);
    let in_cgroup = seen(&engine, pids[1]);
    Cgroup::open(&dst::cgroup::cgroup2_mount().unwrap())
        .unwrap()
        .add_pid(pids[1])
        .unwrap();
    step(&mut by_cgroup, "w", &mut outs[1]);
    let left = seen(&engine, pids[1]) - in_cgroup;
    let missed = engine.observer_misses().unwrap();
    eprintln!(
        "writes observed before targeting {before:?}, after {after:?} (pid, cgroup move, exec \
         as {name}); after moving out of the cgroup {left}; observer runs skipped {missed}"
    );
    assert_eq!(
        left, 0,
        "moved out of the targeted cgroup after its answer was cached"
    );
    assert_eq!(before, [0, 0, 0], "untargeted writers are not observed");
    assert!(
        missed < 11,
        "the kernel skipped the observer {missed} times: too many to tell a stale cache apart"
    );
    assert_observed(
        after[0],
        11,
        missed,
        "targeted by pid after its answer was cached",
    );
    assert_observed(
        after[1],
        11,
        missed,
        "moved into a targeted cgroup after its answer was cached",
    );
    // After exec the new image's own start-up may write too; at least the step's 11.
    assert!(after[2] >= 11, "exec'd under a targeted name: {}", after[2]);
}

/// A forked child pinned to CPU 0 that waits for the pipe `start` to close, makes `n` one-byte writes
/// to /dev/null and exits 0 if all of them succeeded. Reaped (killed first) on drop.
struct BusyWriter(libc::pid_t);

impl BusyWriter {
    fn spawn(start: [libc::c_int; 2], n: u32) -> Self {
        // SAFETY: the child makes only raw system calls (no allocation, no locks) and leaves
        // with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            // SAFETY: as above; the buffers are on the stack or static.
            unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(0, &mut set);
                libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
                libc::close(start[1]);
                let mut b = [0u8; 1];
                libc::read(start[0], b.as_mut_ptr().cast(), 1);
                let fd = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
                let mut failed = 0;
                for _ in 0..n {
                    if libc::write(fd, b"x".as_ptr().cast(), 1) != 1 {
                        failed = 1;
                    }
                }
                libc::_exit(failed);
            }
        }
        Self(pid)
    }

    /// Waits for the child; whether every write succeeded.
    fn wait(mut self) -> bool {
        let mut status = 0;
        // SAFETY: our own child.
        unsafe { libc::waitpid(self.0, &mut status, 0) };
        self.0 = 0;
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
    }
}

impl Drop for BusyWriter {
    fn drop(&mut self) {
        if self.0 > 0 {
            // SAFETY: our own child.
            unsafe {
                libc::kill(self.0, libc::SIGKILL);
                libc::waitpid(self.0, std::ptr::null_mut(), 0);
            }
        }
    }
}

/// Three processes share one CPU, two targeted and one not, each making 20,000 writes. Where
/// the kernel runs syscall tracepoint programs preemptibly (7.x), a writer preempted inside
/// the exit observer makes the observer skip the others' calls; the twin program (forced on
/// here, so every kernel checks how the two combine) is skipped separately. Every call must
/// be counted, or the shortfall must be within the kernel-counted bound the evidence reports.
#[test]
fn observer_counts_every_call_on_a_shared_cpu() {
    if skip_without(&["tracepoint"]) {
        return;
    }
    // The last round counts through the shared hash maps only (every per-CPU entry taken), the
    // path a key takes when another key owns its entry.
    for (twin_on, shared_only) in [(false, false), (true, false), (false, true)] {
        shared_cpu_round(twin_on, shared_only);
    }
}

/// One round of [`observer_counts_every_call_on_a_shared_cpu`], with or without the twin, and
/// with the per-CPU count tables or only the shared maps.
fn shared_cpu_round(twin_on: bool, shared_only: bool) {
    const WRITES: u32 = 20_000;
    let mut fds = [0; 2];
    // SAFETY: a plain pipe.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    let writers: Vec<BusyWriter> = (0..3).map(|_| BusyWriter::spawn(fds, WRITES)).collect();
    let mut engine = SysEngine::load().expect("dst-sys loads");
    engine.force_observer_twin(twin_on);
    if shared_only {
        engine.force_shared_counts().unwrap();
    }
    for w in &writers[..2] {
        engine.add_pid(w.0 as u32, false).unwrap();
    }
    engine.observe_class(SyscallClass::Write).unwrap();
    assert_eq!(engine.observer_twin(), twin_on, "the twin as forced");
    let pids: Vec<u32> = writers.iter().map(|w| w.0 as u32).collect();
    // SAFETY: closing both ends releases the writers (read returns 0).
    unsafe {
        libc::close(fds[1]);
        libc::close(fds[0]);
    }
    let ok: Vec<bool> = writers.into_iter().map(BusyWriter::wait).collect();
    assert_eq!(ok, [true, true, true], "every write to /dev/null succeeds");
    let seen: Vec<u64> = pids
        .iter()
        .map(|p| engine.received(Some(*p), SyscallClass::Write, 0).unwrap())
        .collect();
    let (primary, twin) = engine.observer_skips().unwrap();
    let bound = engine.observer_misses().unwrap();
    eprintln!(
        "twin {twin_on}, shared maps only {shared_only}: observed {seen:?} of {WRITES} writes \
         each (untargeted last); skipped \
         runs: observer {primary}, twin {twin:?}; at most {bound} calls missed; this kernel \
         runs syscall programs preemptibly: {}",
        dst::sys::twin::syscall_programs_preemptible()
    );
    assert_eq!(seen[2], 0, "the untargeted writer is not observed");
    let per_cpu = engine.counted_per_cpu().unwrap();
    if shared_only {
        assert_eq!(
            per_cpu, 0,
            "every per-CPU entry is taken: all counts are shared"
        );
    } else {
        assert!(per_cpu > 0, "the per-CPU tables count the common case");
    }
    for (i, s) in seen[..2].iter().enumerate() {
        assert!(*s <= u64::from(WRITES), "writer {i} counted twice: {s}");
        assert!(
            u64::from(WRITES) - s <= bound,
            "writer {i}: {s} of {WRITES} observed, but the evidence bounds the misses at {bound}"
        );
    }
    if !dst::sys::twin::syscall_programs_preemptible() {
        assert_eq!(
            (primary, twin.unwrap_or(0)),
            (0, 0),
            "a kernel that runs the observer with preemption off never skips it here"
        );
    }
}
