//! Syscall faults through the daemon: apply on a running process → injected counts equal the
//! failures the process saw → clear freezes them; `fault_landed` and `process_exited` come over
//! the event stream; SIGKILL of the daemon frees the process's syscalls within a second.

use std::{
    io::{BufRead as _, BufReader},
    net::TcpListener,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use dst::{cgroup::Cgroup, probe};
use hyper::Method;
use serde_json::json;

use super::daemon::{Daemon, Scratch, call, read_events_until, subscribe};

/// A bash loop connecting to `port` every 20 ms, logging `ok`/`fail` lines with the time they
/// were read; killed and reaped on drop.
struct Connector {
    child: Child,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Connector {
    fn start(port: u16) -> Self {
        let script = format!(
            "while :; do if : 3<>/dev/tcp/127.0.0.1/{port}; then echo ok; else echo fail; fi; \
             sleep 0.02; done"
        );
        let mut child = Command::new("bash")
            .args(["-c", &script])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("bash starts");
        let out = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                l.lock().unwrap().push((Instant::now(), line));
            }
        });
        Self { child, lines }
    }

    fn fails(&self) -> u64 {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, l)| l == "fail")
            .count() as u64
    }

    /// Waits until `n` more `ok` lines arrive after `since`.
    fn wait_ok_after(&self, since: Instant, n: usize) -> Option<Instant> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let oks: Vec<Instant> = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .filter(|(t, l)| *t > since && l == "ok")
                .map(|(t, _)| *t)
                .collect();
            if oks.len() >= n {
                return Some(oks[0]);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Connector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listener() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || for _ in l.incoming() {});
    port
}

fn skip_without_sock_hooks() -> bool {
    let report = probe::run();
    for m in ["cgroup_sock_addr", "tracepoint", "ringbuf"] {
        if !report.has(m) {
            eprintln!(
                "SKIP: probe says {m} is missing: {:?}",
                report.mechanisms.get(m)
            );
            return true;
        }
    }
    false
}

#[test]
fn daemon_syscall_fault_evidence_events_and_dead_man() {
    if skip_without_sock_hooks() {
        return;
    }
    let port = listener();
    let cg = Cgroup::create(&format!("dst-test-dsys-{}", std::process::id())).unwrap();
    let target = Connector::start(port);
    cg.add_pid(target.child.id()).unwrap();
    let pid = target.child.id();
    let dir = Scratch::new("sys");
    let mut d = Daemon::start(&dir, &[]);
    let sock = dir.socket();

    // Apply: the fault lands (event) and counts exactly what the process saw.
    let events = subscribe(&sock);
    let r = call(
        &sock,
        Method::POST,
        "/v1/faults",
        Some(
            json!({"sys": [{"id": "s1", "target": {"pid": pid}, "syscall": "connect",
            "errno": "ECONNREFUSED", "seed": 3, "schedule": {"duration": "60s"}}]}),
        ),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let applied = r.json()["faults"][0].clone();
    assert_eq!(applied["kind"], "sys");
    assert_eq!(applied["state"], "active");
    let text = read_events_until(events, &["event: fault_landed"]);
    assert!(
        text.contains("event: fault_landed") && text.contains("\"id\":\"s1\""),
        "no landing event: {text}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let cleared_at = Instant::now();
    let r = call(&sock, Method::DELETE, "/v1/faults/s1", None);
    assert_eq!(r.status, 200, "{}", r.text());
    let frozen = r.json();
    assert!(
        target.wait_ok_after(cleared_at, 3).is_some(),
        "connects did not recover after clear"
    );
    let injected = frozen["evidence"]["injected"].as_u64().unwrap();
    let seen = target.fails();
    assert!(injected > 0, "nothing injected: {frozen}");
    assert_eq!(
        injected, seen,
        "injected vs ECONNREFUSED the process logged"
    );
    let received: u64 = frozen["received"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["pid"] == pid && o["result"] == "ECONNREFUSED")
        .map(|o| o["count"].as_u64().unwrap())
        .sum();
    assert_eq!(received, injected, "observer vs injected: {frozen}");
    std::thread::sleep(Duration::from_millis(200));
    let later = call(&sock, Method::GET, "/v1/faults/s1", None).json();
    assert_eq!(
        later["evidence"], frozen["evidence"],
        "counters moved after clear"
    );
    let metrics = call(&sock, Method::GET, "/metrics", None).text();
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with(
                "dst_sys_fault_injected_total{id=\"s1\",syscall=\"connect\",errno=\"ECONNREFUSED\"",
            )
        })
        .unwrap_or_else(|| panic!("no injected metric for s1: {metrics}"));
    assert!(line.ends_with(&format!(" {injected}")), "{line}");
    eprintln!(
        "daemon sys fault: injected {injected} = {seen} failures logged = {received} observed; backend {}",
        frozen["backend"]
    );

    // A targeted process that exits is reported from the kernel's ring buffer.
    // Exits (status 0) when the test closes its stdin, after the fault is installed.
    let mut sleeper = Command::new("sh")
        .args(["-c", "read x; exit 0"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let spid = sleeper.id();
    let events = subscribe(&sock);
    let r = call(
        &sock,
        Method::POST,
        "/v1/faults",
        Some(
            json!({"sys": [{"id": "s2", "target": {"pid": spid}, "syscall": "connect",
            "errno": "EPERM"}]}),
        ),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    drop(sleeper.stdin.take());
    let want = format!("\"pid\":{spid}");
    let text = read_events_until(events, &["event: process_exited", &want]);
    let _ = sleeper.wait();
    assert!(
        text.lines().any(|l| l.contains("process_exited")
            && l.contains(&want)
            && l.contains("\"exit_code\":0")),
        "no exit event for {spid}: {text}"
    );

    // Dead man: SIGKILL the daemon while a fault holds; the target connects again within 1 s.
    let r = call(
        &sock,
        Method::POST,
        "/v1/faults",
        Some(
            json!({"sys": [{"id": "s3", "target": {"pid": pid}, "syscall": "connect",
            "errno": "ECONNREFUSED"}]}),
        ),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    std::thread::sleep(Duration::from_millis(200));
    let before = target.fails();
    assert!(before > seen, "second fault did not act");
    let killed = Instant::now();
    let _ = d.signal_and_wait(nix::sys::signal::Signal::SIGKILL);
    let first_ok = target
        .wait_ok_after(killed, 1)
        .expect("connects still failing 5 s after the daemon died");
    let after = first_ok.duration_since(killed);
    eprintln!("dead man: first successful connect {after:?} after SIGKILL of the daemon");
    assert!(
        after < Duration::from_secs(1),
        "syscalls freed only after {after:?}"
    );
}
