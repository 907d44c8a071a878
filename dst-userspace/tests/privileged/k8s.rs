//! Pod and container targeting on the real cgroupfs: fixture trees laid out like kubelet's
//! systemd and cgroupfs drivers (and podman's), a real process in a pod's container cgroup
//! targeted by pod UID with a connect errno; the TCP API's hardening (TLS + token, 413 on an
//! oversized body, 403 on a foreign netns or cgroup).

use std::{
    io::{BufRead as _, BufReader, Write as _},
    net::TcpListener,
    process::{Child, Command, Stdio},
};

use dst::{cgroup::Cgroup, remote::Remote};
use hyper::Method;
use serde_json::{Value, json};

use super::{
    support::{Daemon, Scratch, free_port, skip_without},
    unique,
};

/// Kills and reaps a child on drop.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A bash process that waits for a line on stdin, then tries `n` TCP connects to `port` on
/// loopback and logs `ok` or `fail` each.
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
            .stderr(Stdio::null())
            .spawn()
            .expect("bash starts"),
    )
}

fn go_and_collect(c: &mut Reaped) -> Vec<String> {
    c.0.stdin.take().unwrap().write_all(b"go\n").unwrap();
    BufReader::new(c.0.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .collect()
}

/// A cgroup path created level by level under the real cgroup2 mount; every level is removed
/// (leaf first, processes killed) on drop.
struct Tree(Vec<Cgroup>);

impl Tree {
    fn new(rel: &str) -> Self {
        let mut levels = Vec::new();
        let mut acc = String::new();
        for part in rel.split('/') {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(part);
            levels.push(Cgroup::create(&acc).expect("creating a fixture cgroup"));
        }
        levels.reverse();
        Self(levels)
    }

    fn leaf(&self) -> &Cgroup {
        &self.0[0]
    }
}

/// A pod UID unique to this test process.
fn pod_uid(n: u8) -> String {
    format!(
        "d5700000-0000-4000-8000-{:06}{n:06}",
        std::process::id() % 1_000_000
    )
}

fn container_id(c: char) -> String {
    format!("{:08}{}", std::process::id(), c.to_string().repeat(56))
}

/// Must show: fixture trees laid out like kubelet's systemd and cgroupfs drivers and podman's
/// under the real cgroupfs; `dst target` resolves each by pod UID and container id to the
/// right directory, id and process; a real process in the systemd-layout pod is targeted by
/// pod UID and every one of its connects fails with ECONNREFUSED (injected == failures the
/// process saw), while a process in the cgroupfs-layout pod connects fine.
#[test]
fn pod_uid_and_container_id_resolve_and_target_a_real_process() {
    if skip_without(&["cgroup_sock_addr", "tracepoint"]) {
        return;
    }
    let base = format!("{}k8s.slice", unique("dst"));
    let (u1, u2) = (pod_uid(1), pod_uid(2));
    let (c1, c2, c3) = (container_id('a'), container_id('b'), container_id('c'));
    let sd = Tree::new(&format!(
        "{base}/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{c1}.scope",
        u1.replace('-', "_")
    ));
    let fs = Tree::new(&format!("{base}/kubepods/besteffort/pod{u2}/{c2}"));
    let pm = Tree::new(&format!("{base}/libpod_parent/libpod-{c3}"));

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || for _ in listener.incoming() {});
    let mut target = connector(port, 10);
    let mut control = connector(port, 10);
    sd.leaf().add_pid(target.0.id()).unwrap();
    fs.leaf().add_pid(control.0.id()).unwrap();

    let dst = env!("CARGO_BIN_EXE_dst");
    let resolve = |args: &[&str]| -> Value {
        let out = Command::new(dst)
            .args(["--json", "target"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let mut resolved = 0;
    for (args, tree, pid, layout) in [
        (
            vec!["--pod", u1.as_str()],
            &sd,
            target.0.id(),
            "kubelet_systemd",
        ),
        (
            vec!["--container", c1.as_str()],
            &sd,
            target.0.id(),
            "kubelet_systemd",
        ),
        (
            vec!["--pod", u2.as_str()],
            &fs,
            control.0.id(),
            "kubelet_cgroupfs",
        ),
        (
            vec!["--container", &c2[..12]],
            &fs,
            control.0.id(),
            "kubelet_cgroupfs",
        ),
    ] {
        let v = resolve(&args);
        let want = if args[0] == "--pod" {
            tree.0[1].path()
        } else {
            tree.leaf().path()
        };
        assert_eq!(v["cgroup"].as_str(), want.to_str(), "{args:?}: {v}");
        assert_eq!(v["layout"], layout, "{args:?}");
        assert_eq!(v["pids"], json!([pid]), "{args:?}");
        assert_eq!(v["netns"], format!("/proc/{pid}/ns/net"), "{args:?}");
        resolved += 1;
    }
    let v = resolve(&["--container", &c3]);
    assert_eq!(v["layout"], "podman");
    assert_eq!(v["cgroup"].as_str(), pm.leaf().path().to_str());
    assert_eq!(v["cgroup_id"], pm.leaf().id().unwrap());
    resolved += 1;
    // A pod UID that is not on this node: exit 6 with the reason.
    let out = Command::new(dst)
        .args(["target", "--pod", &pod_uid(9)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no cgroup for pod"));
    eprintln!("resolved {resolved} references against 3 fixture layouts under the real cgroupfs");

    let mut inject = Reaped(
        Command::new(dst)
            .args(["--json", "inject", "syscall", "--pod", &u1])
            .args([
                "--syscall",
                "connect",
                "--errno",
                "ECONNREFUSED",
                "--duration",
                "20s",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut err = BufReader::new(inject.0.stderr.take().unwrap());
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 && !line.contains("installed") {
        line.clear();
    }
    assert!(
        line.contains("installed"),
        "dst never installed the fault: {line}"
    );
    let t_out = go_and_collect(&mut target);
    let c_out = go_and_collect(&mut control);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(inject.0.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let mut js = String::new();
    std::io::Read::read_to_string(&mut inject.0.stdout.take().unwrap(), &mut js).unwrap();
    assert!(inject.0.wait().unwrap().success());
    let v: Value = serde_json::from_str(&js).unwrap();
    let fails = t_out.iter().filter(|l| *l == "fail").count() as u64;
    let control_ok = c_out.iter().filter(|l| *l == "ok").count();
    eprintln!(
        "pod {u1}: target {fails}/10 connects failed, control {control_ok}/10 ok, injected {}",
        v["counters"]["injected"]
    );
    assert_eq!(fails, 10, "{t_out:?}");
    assert_eq!(control_ok, 10, "the other pod was touched: {c_out:?}");
    assert_eq!(v["counters"]["injected"].as_u64(), Some(fails));
    assert_eq!(v["backend"], "cgroup_sock");
    assert_eq!(v["landed"], true);
}

/// The TCP API over TLS: the handshake with the daemon's certificate and the token work, no
/// token is 401, plain HTTP to the TLS port gets no answer; a body over --body-limit is 413; a
/// target in a network namespace that is not the daemon's (another "node") or a cgroup outside
/// --cgroup-root is refused with 403 and the field, and nothing is applied.
#[test]
fn tcp_api_tls_token_body_limit_and_confinement() {
    let dir = Scratch::new("tls");
    let (token_file, token) = dir.token("d");
    let (cert, key) = dir.cert("IP:127.0.0.1");
    let addr = format!("127.0.0.1:{}", free_port());
    let root = format!("{}allowed", unique("dstk"));
    let allowed = Cgroup::create(&root).unwrap();
    let _d = Daemon::start(
        &dir.0,
        "d",
        None,
        &[
            "--listen",
            &addr,
            "--token-file",
            token_file.to_str().unwrap(),
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--body-limit",
            "4096",
            "--cgroup-root",
            allowed.path().to_str().unwrap(),
        ],
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut remote = Remote::new(addr.clone(), Some(token.clone()));
    remote.tls = Some(dst::tls::client_config(&cert).unwrap());
    let health = rt
        .block_on(remote.request(Method::GET, "/v1/health", None))
        .unwrap();
    assert_eq!(health.status, 200, "{:?}", health.json());
    assert_eq!(health.json()["status"], "ok");

    let mut anon = remote.clone();
    anon.token = None;
    assert_eq!(
        rt.block_on(anon.request(Method::GET, "/v1/health", None))
            .unwrap()
            .status,
        401
    );
    // The readiness route needs no token (and says nothing but ok).
    let ready = rt
        .block_on(anon.request(Method::GET, "/healthz", None))
        .unwrap();
    assert_eq!((ready.status, &ready.body[..]), (200, &b"ok\n"[..]));
    let mut plain = remote.clone();
    plain.tls = None;
    plain.timeout = std::time::Duration::from_secs(2);
    let r = rt.block_on(plain.request(Method::GET, "/v1/health", None));
    assert!(
        !matches!(&r, Ok(x) if x.status == 200),
        "plain HTTP must not be served on the TLS port: {r:?}"
    );

    // Oversized body: 413 before parsing.
    let big = json!({"net": [{"id": "x".repeat(8000), "target": {"dev": "lo"},
        "action": {"kind": "drop", "probability": 1.0}}]});
    let r = rt
        .block_on(remote.request(
            Method::POST,
            "/v1/faults",
            Some(big.to_string().into_bytes()),
        ))
        .unwrap();
    assert_eq!(r.status, 413, "{:?}", String::from_utf8_lossy(&r.body));

    // A namespace that is not this daemon's node: 403 naming the field.
    let foreign = dst::netns::NetNs::create(&format!("{}f", unique("dstk"))).unwrap();
    let body = json!({"net": [{"target": {"netns": foreign.name(), "dev": "lo"},
        "action": {"kind": "drop", "probability": 1.0}}]});
    let r = rt
        .block_on(remote.request(
            Method::POST,
            "/v1/faults",
            Some(body.to_string().into_bytes()),
        ))
        .unwrap();
    assert_eq!(r.status, 403, "{:?}", r.json());
    assert_eq!(r.json()["field"], "net[0].target.netns");
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("not this node's")
    );
    // The same through prepare (the coordinator's path).
    let r = rt
        .block_on(remote.request(
            Method::POST,
            "/v1/txn/t1",
            Some(body.to_string().into_bytes()),
        ))
        .unwrap();
    assert_eq!(r.status, 403, "{:?}", r.json());
    // A cgroup outside --cgroup-root.
    let outside = Cgroup::create(&format!("{}outside", unique("dstk"))).unwrap();
    let body = json!({"net": [{"target": {"cgroup": outside.path()},
        "action": {"kind": "drop", "probability": 1.0}}]});
    let r = rt
        .block_on(remote.request(
            Method::POST,
            "/v1/faults",
            Some(body.to_string().into_bytes()),
        ))
        .unwrap();
    assert_eq!(r.status, 403, "{:?}", r.json());
    assert_eq!(r.json()["field"], "net[0].target.cgroup");
    let list = rt
        .block_on(remote.request(Method::GET, "/v1/faults?all=true", None))
        .unwrap();
    assert_eq!(list.json()["faults"], json!([]));
    assert_eq!(
        rt.block_on(remote.request(Method::GET, "/v1/txn", None))
            .unwrap()
            .json()["pending"],
        json!([])
    );
}

/// The Kubernetes API client against a fake API server over TLS: the service-account token is
/// sent as a bearer token, the CA is checked, a pod by name and pods by label selector come
/// back with UID and container ids, and a 403 says which RBAC to grant.
#[test]
fn kubernetes_api_client_over_tls() {
    use axum::{Router, extract::Query, http::HeaderMap, routing::get};
    use dst::k8s::api::KubeApi;
    let dir = Scratch::new("kapi");
    let (cert, key) = dir.cert("IP:127.0.0.1");
    let (token_file, token) = dir.token("sa");
    let uid = pod_uid(7);
    let pod = json!({"metadata": {"name": "etcd-0", "namespace": "db", "uid": uid},
        "spec": {"nodeName": "node-1"},
        "status": {"containerStatuses": [{"containerID": format!("containerd://{}", container_id('e'))}]}});
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let want = format!("Bearer {token}");
    let (p1, p2) = (pod.clone(), pod.clone());
    let auth_ok = move |h: &HeaderMap| h.get("authorization").is_some_and(|v| v == want.as_str());
    let (a1, a2) = (auth_ok.clone(), auth_ok);
    let app = Router::new()
        .route(
            "/api/v1/namespaces/db/pods/etcd-0",
            get(move |h: HeaderMap| async move {
                if a1(&h) { (axum::http::StatusCode::OK, axum::Json(p1)) } else {
                    (axum::http::StatusCode::UNAUTHORIZED, axum::Json(json!({"message": "no"})))
                }
            }),
        )
        .route(
            "/api/v1/namespaces/db/pods",
            get(move |h: HeaderMap, Query(q): Query<std::collections::HashMap<String, String>>| async move {
                assert_eq!(q.get("labelSelector").map(String::as_str), Some("app=etcd"));
                if a2(&h) { axum::Json(json!({"items": [p2]})) } else { axum::Json(json!({"items": []})) }
            }),
        )
        .route(
            "/api/v1/namespaces/secret/pods/x",
            get(|| async {
                (axum::http::StatusCode::FORBIDDEN, axum::Json(json!({"message": "pods \"x\" is forbidden"})))
            }),
        );
    let cfg = dst::tls::server_config(&cert, &key).unwrap();
    let port = rt.block_on(async {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = tcp.local_addr().unwrap().port();
        let l = dst::daemon::listener::TlsListener::new(tcp, cfg).unwrap();
        tokio::spawn(async move { axum::serve(l, app.into_make_service()).await });
        port
    });
    let api = KubeApi::new("127.0.0.1", &port.to_string(), &token_file, &cert).unwrap();
    let p = rt.block_on(api.pod("db", "etcd-0")).unwrap();
    assert_eq!(
        (p.uid.as_str(), p.node.as_deref()),
        (uid.as_str(), Some("node-1"))
    );
    assert_eq!(p.container_ids, vec![container_id('e')]);
    let sel = rt.block_on(api.select("db", "app=etcd")).unwrap();
    assert_eq!(sel.len(), 1);
    let e = rt.block_on(api.pod("secret", "x")).unwrap_err().to_string();
    assert!(e.contains("403") && e.contains("rbac"), "{e}");
    // A CA that did not sign the server's certificate: the handshake fails.
    let other = Scratch::new("kapi2");
    let (other_ca, _) = other.cert("IP:127.0.0.1");
    let bad = KubeApi::new("127.0.0.1", &port.to_string(), &token_file, &other_ca).unwrap();
    let e = rt
        .block_on(bad.pod("db", "etcd-0"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("TLS handshake"), "{e}");
}
