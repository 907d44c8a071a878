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

fn skip_without(mechanisms: &[&str]) -> bool {
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
        .received(Some(tpid), SyscallClass::Connect, -i64::from(libc::ECONNREFUSED))
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
    assert_eq!(seen, t_fail, "observer vs the target's own log");
    let observed_other = engine
        .observations()
        .unwrap()
        .iter()
        .any(|o| o.pid == sibling.0.id());
    assert!(!observed_other, "the untargeted sibling must not be observed");
}
