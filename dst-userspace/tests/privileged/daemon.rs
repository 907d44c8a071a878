//! The daemon over its unix socket: apply → evidence rises under traffic → clear → counters
//! frozen; invalid bodies refused with the field named and nothing applied; TCP needs the
//! bearer token; one daemon per socket; SIGTERM writes final evidence; SIGKILL under 8
//! concurrent history writers loses no acknowledged op and frees traffic within a second.

use std::{
    io::{Read as _, Write as _},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use super::unique;
use dst::{
    client::{Client, Response},
    testing::{Topology, udp_sequence},
};
use hyper::Method;
use serde_json::{Value, json};

/// A scratch directory removed on drop.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    pub(crate) fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("{}{tag}", unique("dstd")));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    pub(crate) fn socket(&self) -> PathBuf {
        self.0.join("dst.sock")
    }
    pub(crate) fn history(&self) -> PathBuf {
        self.0.join("history.jsonl")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `dst daemon`, SIGKILLed and reaped on drop.
pub(crate) struct Daemon {
    child: Option<Child>,
}

impl Daemon {
    pub(crate) fn start(dir: &Scratch, extra: &[&str]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_dst"))
            .arg("daemon")
            .arg("--socket")
            .arg(dir.socket())
            .arg("--history")
            .arg(dir.history())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning dst daemon");
        let d = Self { child: Some(child) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(dir.socket()).is_err() {
            assert!(Instant::now() < deadline, "daemon did not open its socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    pub(crate) fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub(crate) fn signal_and_wait(
        &mut self,
        sig: nix::sys::signal::Signal,
    ) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), sig).unwrap();
        c.wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub(crate) fn call(socket: &Path, method: Method, path: &str, body: Option<Value>) -> Response {
    Client::new(socket)
        .request_blocking(method, path, body.map(|b| b.to_string().into_bytes()))
        .expect("daemon reachable")
}

/// A UDP egress fault on `eth0` of `ns` towards `dport` (seed 7, 60 s).
pub(crate) fn udp_fault(id: &str, ns: &str, dport: u16, action: Value) -> Value {
    json!({
        "id": id,
        "target": {"netns": ns, "dev": "eth0"},
        "direction": "egress",
        "proto": "udp",
        "dport": dport.to_string(),
        "action": action,
        "seed": 7,
        "schedule": {"duration": "60s"}
    })
}

fn drop_fault(id: &str, ns: &str, dport: u16, p: f64) -> Value {
    udp_fault(id, ns, dport, json!({"kind": "drop", "probability": p}))
}

fn lost(got: &[bool]) -> u64 {
    got.iter().filter(|&&g| !g).count() as u64
}

/// Opens `GET /v1/events` and returns once the response head arrived (the daemon subscribes
/// before answering, so no later event is missed).
pub(crate) fn subscribe(sock: &Path) -> UnixStream {
    let mut s = UnixStream::connect(sock).unwrap();
    s.write_all(b"GET /v1/events HTTP/1.1\r\nHost: dst\r\n\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "events stream closed");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

/// Reads the SSE stream until `want` appears (or 10 s pass); returns what was read.
pub(crate) fn read_events_until(mut s: UnixStream, want: &[&str]) -> String {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline && !want.iter().all(|w| text.contains(w)) {
        if let Ok(n) = s.read(&mut buf) {
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    text
}

#[test]
fn api_apply_evidence_clear_frozen() {
    let topo = Topology::new(&unique("dstda"), 2, 81).expect("topology");
    let (a, b) = (&topo.hosts[0], &topo.hosts[1]);
    let dir = Scratch::new("api");
    let _d = Daemon::start(&dir, &[]);
    let sock = dir.socket();

    let events = subscribe(&sock);

    let r = call(
        &sock,
        Method::POST,
        "/v1/faults",
        Some(json!({"net": [drop_fault("d1", a.ns.name(), 9000, 0.5)]})),
    );
    assert_eq!(r.status, 201, "{:?}", r.json());
    let applied = &r.json()["faults"][0];
    assert_eq!(applied["id"], "d1");
    let backend = applied["backend"].as_str().unwrap().to_string();
    assert!(backend == "tcx" || backend == "clsact", "{applied}");
    assert_eq!(applied["state"], "active");

    let got = udp_sequence(a, b, 9000, 2000).expect("traffic");
    let v = call(&sock, Method::GET, "/v1/faults/d1", None).json();
    let ev = &v["evidence"];
    assert_eq!(ev["matched"], 2000, "{v}");
    assert_eq!(
        ev["applied"],
        lost(&got),
        "kernel counter vs receiver losses: {v}"
    );
    assert!(ev["applied"].as_u64().unwrap() > 0);
    assert_eq!(v["landed"], true);
    // Blast radius: another port is untouched.
    let control = udp_sequence(a, b, 9001, 500).expect("control traffic");
    assert_eq!(lost(&control), 0, "untargeted port lost packets");

    // History ops are stamped on the clock of fault evidence: an op recorded now falls inside
    // the fault's window, after its first applied packet.
    let op = call(
        &sock,
        Method::POST,
        "/v1/history",
        Some(json!({"process": 0, "type": "info", "f": "probe"})),
    )
    .json();
    let t = op["time"].as_u64().unwrap();
    assert!(
        applied["applied_at"].as_u64().unwrap() <= t && t < applied["expires"].as_u64().unwrap()
    );
    assert!(
        ev["first_applied_ns"].as_u64().unwrap() <= t
            && ev["last_applied_ns"].as_u64().unwrap() <= t
    );

    let cleared = call(&sock, Method::DELETE, "/v1/faults/d1", None);
    assert_eq!(cleared.status, 200);
    let frozen = cleared.json()["evidence"].clone();
    assert_eq!(frozen["applied"], ev["applied"]);
    assert_eq!(cleared.json()["state"], "cleared");

    let after = udp_sequence(a, b, 9000, 1000).expect("traffic after clear");
    assert_eq!(lost(&after), 0, "a cleared fault still dropped packets");
    let v = call(&sock, Method::GET, "/v1/faults/d1", None).json();
    assert_eq!(v["evidence"], frozen, "counters moved after clear");

    // The next fault takes the freed slot (zeroed when d1 ended): its counters start at zero
    // and d1's frozen evidence does not follow the slot.
    let r = call(
        &sock,
        Method::POST,
        "/v1/faults",
        Some(json!({"net": [drop_fault("d2", a.ns.name(), 9000, 0.5)]})),
    );
    assert_eq!(r.status, 201, "{:?}", r.json());
    assert_eq!(
        r.json()["faults"][0]["slot"],
        applied["slot"],
        "{}",
        r.json()
    );
    let got = udp_sequence(a, b, 9000, 700).expect("traffic under d2");
    let cleared2 = call(&sock, Method::DELETE, "/v1/faults/d2", None).json();
    assert_eq!(cleared2["evidence"]["matched"], 700, "{cleared2}");
    assert_eq!(cleared2["evidence"]["applied"], lost(&got), "{cleared2}");
    assert_eq!(
        call(&sock, Method::GET, "/v1/faults/d1", None).json()["evidence"],
        frozen,
        "d1's evidence changed when d2 used its slot"
    );
    assert_eq!(
        call(&sock, Method::GET, "/v1/faults", None).json()["faults"],
        json!([])
    );

    let metrics =
        String::from_utf8_lossy(&call(&sock, Method::GET, "/metrics", None).body).into_owned();
    let line = format!(
        "dst_fault_applied_total{{id=\"d1\",kind=\"drop\",backend=\"{backend}\"}} {}",
        frozen["applied"]
    );
    assert!(metrics.contains(&line), "{line} missing from:\n{metrics}");

    let text = read_events_until(
        events,
        &[
            "event: fault_applied",
            "event: fault_landed",
            "event: fault_cleared",
        ],
    );
    for e in ["fault_applied", "fault_landed", "fault_cleared"] {
        assert!(
            text.contains(&format!("event: {e}")),
            "no {e} event in:\n{text}"
        );
    }
    // Landing is pushed by the kernel program (ring buffer), stamped with the first applied
    // packet's time, once.
    let landed: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|v| v["type"] == "fault_landed" && v["id"] == "d1")
        .collect();
    assert_eq!(landed.len(), 1, "{text}");
    assert_eq!(landed[0]["via"], "ring_buffer", "{text}");
    let t = landed[0]["time"].as_u64().unwrap();
    eprintln!(
        "fault_landed via ring buffer at {t}, first_applied_ns {}",
        ev["first_applied_ns"]
    );
    assert!(
        ev["first_applied_ns"].as_u64().unwrap() <= t
            && t <= ev["last_applied_ns"].as_u64().unwrap(),
        "{t} outside the applied window: {ev}"
    );
}

#[test]
fn api_invalid_body_names_the_field_and_applies_nothing() {
    let topo = Topology::new(&unique("dstdv"), 2, 82).expect("topology");
    let ns = topo.hosts[0].ns.name();
    let dir = Scratch::new("invalid");
    let _d = Daemon::start(&dir, &[]);
    let sock = dir.socket();

    let mut bad = drop_fault("bad", ns, 9000, 0.5);
    bad["action"]["probability"] = json!(1.5);
    let r = call(
        &sock,
        Method::POST,
        "/v1/faults",
        Some(json!({"net": [drop_fault("ok", ns, 9000, 0.5), bad]})),
    );
    assert_eq!(r.status, 400, "{:?}", r.json());
    assert_eq!(r.json()["field"], "net[1].action.probability");
    assert!(r.json()["error"].as_str().unwrap().contains("1.5"));

    // Valid schema but a target that does not exist: refused (422), the first fault not applied.
    let mut missing = drop_fault("missing", ns, 9000, 0.5);
    missing["target"]["netns"] = json!(format!("{}nope", unique("dstdv")));
    let r = call(
        &sock,
        Method::POST,
        "/v1/faults",
        Some(json!({"net": [drop_fault("ok", ns, 9000, 0.5), missing]})),
    );
    assert_eq!(r.status, 422, "{:?}", r.json());
    assert_eq!(r.json()["field"], "net[1].target.netns");

    // Not JSON at all, and an unknown field.
    let r = Client::new(&sock)
        .request_blocking(Method::POST, "/v1/faults", Some(b"{\"net\": [".to_vec()))
        .unwrap();
    assert_eq!(r.status, 400);
    let mut typo = drop_fault("typo", ns, 9000, 0.5);
    typo["actoin"] = json!(1);
    let r = call(
        &sock,
        Method::POST,
        "/v1/faults",
        Some(json!({"net": [typo]})),
    );
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("actoin"));

    let list = call(&sock, Method::GET, "/v1/faults?all=true", None).json();
    assert_eq!(list["faults"], json!([]), "something was applied: {list}");
    // And traffic is untouched.
    let got = udp_sequence(&topo.hosts[0], &topo.hosts[1], 9000, 300).unwrap();
    assert_eq!(lost(&got), 0);

    // Blast radius guards: `lo` is ifindex 1 in every namespace, and kernel rules match by
    // ifindex, so a second namespace's `lo` is refused once the first carries the programs.
    let ns2 = topo.hosts[1].ns.name();
    let mut lo1 = drop_fault("lo1", ns, 9999, 0.5);
    lo1["target"]["dev"] = json!("lo");
    let r = call(
        &sock,
        Method::POST,
        "/v1/faults",
        Some(json!({"net": [lo1]})),
    );
    assert_eq!(r.status, 201, "{:?}", r.json());
    let mut lo2 = drop_fault("lo2", ns2, 9999, 0.5);
    lo2["target"]["dev"] = json!("lo");
    let r = call(
        &sock,
        Method::POST,
        "/v1/faults",
        Some(json!({"net": [lo2]})),
    );
    assert_eq!(r.status, 422, "{:?}", r.json());
    assert_eq!(r.json()["field"], "net[0].target.dev");
    assert!(r.json()["error"].as_str().unwrap().contains("ifindex"));
    // A cgroup-only fault would act on every device carrying the tc programs: refused.
    let cgroup = dst::cgroup::Cgroup::create(&format!("{}cg", unique("dstdv"))).unwrap();
    let cg = json!({"id": "cg", "target": {"cgroup": cgroup.path()}, "dport": "9999", "action": {"kind": "drop", "probability": 1.0}});
    let r = call(
        &sock,
        Method::POST,
        "/v1/faults",
        Some(json!({"net": [cg]})),
    );
    assert_eq!(r.status, 422, "{:?}", r.json());
    assert_eq!(r.json()["field"], "net[0].target");
    let r = call(&sock, Method::DELETE, "/v1/faults", None);
    assert_eq!(r.json()["faults"][0]["id"], "lo1");
    assert_eq!(
        call(&sock, Method::GET, "/v1/faults", None).json()["faults"],
        json!([])
    );

    // History ops are checked the same way.
    let r = call(
        &sock,
        Method::POST,
        "/v1/history",
        Some(
            json!([{"process": 1, "type": "ok", "f": "r"}, {"process": 1, "type": "done", "f": "r"}]),
        ),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["field"], "[1].type");
    assert!(
        call(&sock, Method::GET, "/v1/history", None)
            .body
            .is_empty()
    );
}

fn tcp_get(addr: &str, auth: Option<&str>) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let auth = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET /v1/health HTTP/1.1\r\nHost: dst\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn tcp_needs_the_token_and_one_daemon_per_socket() {
    let dir = Scratch::new("tcp");
    // TCP without a token file is refused at start (usage error).
    let st = Command::new(env!("CARGO_BIN_EXE_dst"))
        .args(["daemon", "--listen", "127.0.0.1:1"])
        .arg("--socket")
        .arg(dir.socket())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(64));
    let token_file = dir.0.join("token");
    std::fs::write(&token_file, "s3cret-token-0123456789\n").unwrap();
    // Owner-only, as the daemon asks of a token file (it warns otherwise).
    std::fs::set_permissions(
        &token_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let d = Daemon::start(
        &dir,
        &[
            "--listen",
            &addr,
            "--token-file",
            token_file.to_str().unwrap(),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "TCP listener did not open");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(tcp_get(&addr, None).starts_with("HTTP/1.1 401"));
    assert!(tcp_get(&addr, Some("s3cret-token-0123456788")).starts_with("HTTP/1.1 401"));
    assert!(tcp_get(&addr, Some("s3cret-token-0123456789")).starts_with("HTTP/1.1 200"));

    // A second daemon on the same socket is refused with a clear error; the first keeps serving.
    let out = Command::new(env!("CARGO_BIN_EXE_dst"))
        .arg("daemon")
        .arg("--socket")
        .arg(dir.socket())
        .arg("--history")
        .arg(dir.0.join("other.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already serving") && err.contains(&d.pid().to_string()),
        "{err}"
    );
    assert_eq!(
        call(&dir.socket(), Method::GET, "/v1/health", None).status,
        200
    );
}

#[test]
fn sigterm_clears_faults_and_writes_final_evidence() {
    let topo = Topology::new(&unique("dstdt"), 2, 83).expect("topology");
    let (a, b) = (&topo.hosts[0], &topo.hosts[1]);
    let dir = Scratch::new("term");
    let evidence = dir.0.join("final.json");
    let mut d = Daemon::start(&dir, &["--evidence-out", evidence.to_str().unwrap()]);
    let r = call(
        &dir.socket(),
        Method::POST,
        "/v1/faults",
        Some(json!({"net": [drop_fault("t1", a.ns.name(), 9000, 1.0)]})),
    );
    assert_eq!(r.status, 201);
    let got = udp_sequence(a, b, 9000, 200).unwrap();
    assert_eq!(lost(&got), 200);
    let status = d.signal_and_wait(nix::sys::signal::Signal::SIGTERM);
    assert!(status.success(), "daemon exit on SIGTERM: {status}");
    let doc: Value = serde_json::from_slice(&std::fs::read(&evidence).unwrap()).unwrap();
    let f = &doc["faults"][0];
    assert_eq!(
        (f["id"].as_str(), f["state"].as_str()),
        (Some("t1"), Some("cleared"))
    );
    assert_eq!(f["evidence"]["applied"], 200);
    assert_eq!(f["landed"], true);
    assert!(!dir.socket().exists(), "socket left behind");
    let got = udp_sequence(a, b, 9000, 200).unwrap();
    assert_eq!(lost(&got), 0, "fault survived the daemon");
}

#[test]
fn sigkill_under_history_load_loses_no_acked_op_and_frees_traffic() {
    let topo = Topology::new(&unique("dstdk"), 2, 84).expect("topology");
    let (a, b) = (&topo.hosts[0], &topo.hosts[1]);
    let dir = Scratch::new("kill");
    let mut d = Daemon::start(&dir, &[]);
    let sock = dir.socket();
    let r = call(
        &sock,
        Method::POST,
        "/v1/faults",
        Some(json!({"net": [drop_fault("k1", a.ns.name(), 9000, 1.0)]})),
    );
    assert_eq!(r.status, 201);
    assert_eq!(
        lost(&udp_sequence(a, b, 9000, 100).unwrap()),
        100,
        "fault not active"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (stop, acked, sock) = (stop.clone(), acked.clone(), sock.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let mut c = Client::new(&sock);
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let value = format!("w{w}-{n}");
                        let body = json!([
                            {"process": w, "type": "invoke", "f": "write", "value": value},
                            {"process": w, "type": "ok", "f": "write", "value": value}
                        ]);
                        match c
                            .request(
                                Method::POST,
                                "/v1/history",
                                Some(body.to_string().into_bytes()),
                            )
                            .await
                        {
                            Ok(r) if r.status == 200 => acked.lock().unwrap().push(value),
                            _ => break, // the daemon died: this op was never acknowledged
                        }
                        n += 1;
                    }
                });
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let before_kill = acked.lock().unwrap().len();
    assert!(
        before_kill > 100,
        "writers made too little progress: {before_kill}"
    );
    let killed_at = Instant::now();
    let status = d.signal_and_wait(nix::sys::signal::Signal::SIGKILL);
    assert!(!status.success());
    // Traffic is free again within 1 s of the kill (the links died with the process).
    let sent_after = killed_at.elapsed();
    let got = udp_sequence(a, b, 9000, 200).unwrap();
    assert_eq!(lost(&got), 0, "fault outlived the SIGKILLed daemon");
    eprintln!("dead man: 200/200 datagrams delivered, sending began {sent_after:?} after SIGKILL");
    assert!(
        sent_after < Duration::from_secs(1),
        "the check began {sent_after:?} after the kill"
    );
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    // Restart on the same socket and history: accepted, recovered, nothing acknowledged lost.
    let _d2 = Daemon::start(&dir, &[]);
    let health = call(&sock, Method::GET, "/v1/health", None).json();
    assert_eq!(health["faults_active"], 0);
    let text = String::from_utf8(std::fs::read(dir.history()).unwrap()).unwrap();
    let mut present = std::collections::HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("line {i} does not parse ({e}): {line}"));
        assert_eq!(v["index"], i as u64, "indices dense after recovery");
        if v["type"] == "ok" {
            present.insert(v["value"].as_str().unwrap().to_string());
        }
    }
    let missing: Vec<_> = acked.iter().filter(|v| !present.contains(*v)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged ops lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    eprintln!(
        "kill -9: {} acknowledged appends (2 ops each) by 8 writers, all {} present after restart; recovery {}",
        acked.len(),
        acked.len(),
        health["history"]["recovered"]
    );
    // The restarted daemon continues the index.
    let r = call(
        &sock,
        Method::POST,
        "/v1/history",
        Some(json!({"process": 0, "type": "info", "f": "restart"})),
    );
    assert_eq!(r.json()["first_index"], text.lines().count() as u64);
}

pub(crate) fn dst(socket: &Path, args: &[&str], stdin: Option<&str>) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dst"));
    cmd.args(args)
        .env("DST_SOCKET", socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn cli_verbs_talk_to_the_daemon() {
    let topo = Topology::new(&unique("dstdc"), 2, 85).expect("topology");
    let (a, b) = (&topo.hosts[0], &topo.hosts[1]);
    let dir = Scratch::new("cli");
    let _d = Daemon::start(&dir, &[]);
    let sock = dir.socket();
    let file = dir.0.join("faults.toml");
    std::fs::write(
        &file,
        format!(
            "[[net]]\nid = \"c1\"\ntarget = {{ netns = \"{}\", dev = \"eth0\" }}\nproto = \"udp\"\n\
             dport = \"9000\"\naction = {{ kind = \"drop\", probability = 1.0 }}\nseed = 1\n",
            a.ns.name()
        ),
    )
    .unwrap();
    let (code, _) = dst(&sock, &["fault", "apply", file.to_str().unwrap()], None);
    assert_eq!(code, 0);
    assert_eq!(lost(&udp_sequence(a, b, 9000, 100).unwrap()), 100);
    let (code, out) = dst(&sock, &["--json", "fault", "evidence", "c1"], None);
    assert_eq!(code, 0);
    let ev: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (ev["evidence"]["applied"].as_u64(), ev["landed"].as_bool()),
        (Some(100), Some(true))
    );
    let (code, out) = dst(&sock, &["fault", "list"], None);
    assert_eq!(code, 0);
    assert!(out.contains("c1") && out.contains("applied=100"), "{out}");
    // Invalid file from stdin: usage error, field named, nothing applied.
    let (code, out) = dst(
        &sock,
        &["--json", "fault", "apply", "-"],
        Some(
            "[[net]]\ntarget = { dev = \"eth0\" }\naction = { kind = \"drop\", probability = 2 }\n",
        ),
    );
    assert_eq!(code, 64);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["field"],
        "net[0].action.probability"
    );
    let (code, _) = dst(&sock, &["fault", "clear", "--all"], None);
    assert_eq!(code, 0);
    assert_eq!(lost(&udp_sequence(a, b, 9000, 100).unwrap()), 0);
    let (code, _) = dst(&sock, &["fault", "show", "nope"], None);
    assert_eq!(code, 64);

    let ops = "{\"process\":1,\"type\":\"invoke\",\"f\":\"w\",\"value\":1}\n{\"process\":1,\"type\":\"ok\",\"f\":\"w\",\"value\":1}\n";
    let (code, out) = dst(&sock, &["--json", "history", "append", "-"], Some(ops));
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["count"], 2);
    let export = dir.0.join("export.jsonl");
    let (code, _) = dst(
        &sock,
        &[
            "history",
            "export",
            "--from",
            "1",
            "--out",
            export.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, 0);
    let text = std::fs::read_to_string(&export).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(
        (lines[0]["index"].as_u64(), lines[0]["type"].as_str()),
        (Some(1), Some("ok"))
    );
    // No daemon on the socket: an environment error.
    let (code, _) = dst(&dir.0.join("none.sock"), &["fault", "list"], None);
    assert_eq!(code, 6);
}

#[test]
fn expiry_is_enforced_by_the_kernel_and_reported() {
    let topo = Topology::new(&unique("dstde"), 2, 86).expect("topology");
    let (a, b) = (&topo.hosts[0], &topo.hosts[1]);
    let dir = Scratch::new("expiry");
    let _d = Daemon::start(&dir, &[]);
    let sock = dir.socket();
    let events = subscribe(&sock);
    let mut f = drop_fault("e1", a.ns.name(), 9000, 1.0);
    // Long enough that applying and sending 100 datagrams fit inside it on a loaded machine.
    f["schedule"] = json!({"duration": "3s"});
    let r = call(&sock, Method::POST, "/v1/faults", Some(json!({"net": [f]})));
    assert_eq!(r.status, 201, "{:?}", r.json());
    let expires = r.json()["faults"][0]["expires"].as_u64().unwrap();
    assert_eq!(lost(&udp_sequence(a, b, 9000, 100).unwrap()), 100);
    // Past the window the kernel program itself lets packets through.
    while dst::net::spec::monotonic_ns() < expires + 300_000_000 {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(lost(&udp_sequence(a, b, 9000, 100).unwrap()), 0);
    let text = read_events_until(events, &["event: fault_expired"]);
    assert!(text.contains("event: fault_expired"), "{text}");
    let v = call(&sock, Method::GET, "/v1/faults/e1", None).json();
    assert_eq!(v["state"], "expired", "{v}");
    assert_eq!(v["evidence"]["applied"], 100);
    assert!(v["ended_at"].as_u64().unwrap() >= expires);
}
