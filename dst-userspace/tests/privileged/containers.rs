//! Real containers (Debian's podman with runc, deploy/podman/containers.conf): two busybox
//! containers on a podman bridge network; given only a container id, dst fails that
//! container's `connect` and drops its traffic towards the other, with evidence, while the
//! other container and the host are untouched. The sidecar pattern: dst's binary in an image of
//! its own, run with `--network container:<target>`, faults exactly the target's traffic.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::Duration,
};

use serde_json::Value;

use super::{support::skip_without, unique};

fn podman() -> Command {
    let mut c = Command::new("podman");
    c.env(
        "CONTAINERS_CONF",
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/podman/containers.conf"),
    );
    c
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Something podman made, removed on drop (`podman <kind> rm -f NAME`).
struct Made(&'static str, String);

impl Drop for Made {
    fn drop(&mut self) {
        let _ = podman()
            .args([self.0, "rm", "-f"])
            .args(if self.0 == "container" {
                &["-t", "0"][..]
            } else {
                &[][..]
            })
            .arg(&self.1)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// An image imported from a rootfs holding `files` (host path → path in the image), with
/// busybox applets linked in /bin.
fn image(name: &str, files: &[(PathBuf, &str)]) -> Made {
    let dir = std::env::temp_dir().join(format!("{name}-rootfs"));
    let _ = std::fs::remove_dir_all(&dir);
    for (src, dst) in files {
        let to = dir.join(dst.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(src, &to).unwrap();
    }
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    for a in [
        "sh", "sleep", "httpd", "nc", "printf", "grep", "mkdir", "echo", "seq",
    ] {
        let _ = std::os::unix::fs::symlink("busybox", dir.join("bin").join(a));
    }
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let tag = format!("localhost/{name}:test");
    ok(
        podman()
            .args(["import", "-", &tag])
            .stdin(tar.stdout.take().unwrap())
            .output()
            .unwrap(),
        "podman import",
    );
    assert!(tar.wait().unwrap().success(), "tar of the rootfs failed");
    let _ = std::fs::remove_dir_all(&dir);
    Made("image", tag)
}

/// A container serving HTTP on 8080 (busybox httpd, `/` answers `hi`).
fn server(net: &str, name: &str, image: &str) -> (Made, String, String) {
    let id = ok(
        podman()
            .args(["run", "-d", "--name", name, "--network", net, image])
            .args([
                "/bin/sh",
                "-c",
                "mkdir -p /www && echo hi > /www/index.html && exec httpd -f -p 8080 -h /www",
            ])
            .output()
            .unwrap(),
        "podman run",
    );
    let ip = ok(
        podman()
            .args([
                "inspect",
                "-f",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                name,
            ])
            .output()
            .unwrap(),
        "podman inspect",
    );
    (Made("container", name.to_string()), id, ip)
}

/// `n` HTTP GETs of ip:8080 from inside `container` (podman exec joins its cgroup and
/// netns); how many got the server's answer.
fn connects_from(container: &str, ip: &str, n: u32) -> usize {
    let script = format!(
        "for i in $(seq {n}); do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip} 8080 | grep -q hi && echo ok || echo fail; done"
    );
    let out = podman()
        .args(["exec", container, "/bin/sh", "-c", &script])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| *l == "ok")
        .count()
}

/// `n` TCP connects from the host to ip:8080.
fn connects_from_host(ip: &str, n: u32) -> usize {
    (0..n)
        .filter(|_| {
            std::net::TcpStream::connect_timeout(
                &format!("{ip}:8080").parse().unwrap(),
                Duration::from_secs(1),
            )
            .is_ok_and(|mut s| {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = std::io::Write::write_all(&mut s, b"GET / HTTP/1.0\r\n\r\n");
                let mut b = [0u8; 4];
                std::io::Read::read_exact(&mut s, &mut b).is_ok() && &b == b"HTTP"
            })
        })
        .count()
}

/// Runs `dst` with args for a while in the background, waits for its "installed"/"live" line.
fn dst_bg(args: &[&str]) -> std::process::Child {
    use std::io::BufRead as _;
    let mut c = Command::new(env!("CARGO_BIN_EXE_dst"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(c.stderr.take().unwrap());
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0
        && !(line.contains("installed") || line.contains("live"))
    {
        line.clear();
    }
    assert!(
        line.contains("installed") || line.contains("live"),
        "dst {args:?} never armed: {line}"
    );
    c
}

fn finish(mut c: std::process::Child) -> Value {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let mut s = String::new();
    std::io::Read::read_to_string(&mut c.stdout.take().unwrap(), &mut s).unwrap();
    assert!(c.wait().unwrap().success());
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[test]
fn podman_containers_by_id_connect_errno_drop_and_sidecar() {
    if skip_without(&["cgroup_sock_addr", "cgroup_skb", "tcx", "tracepoint"]) {
        return;
    }
    let tag = unique("dstp");
    let img = image(
        &format!("{tag}bb"),
        &[(PathBuf::from("/bin/busybox"), "/bin/busybox")],
    );
    let net = format!("{tag}net");
    ok(
        podman().args(["network", "create", &net]).output().unwrap(),
        "network create",
    );
    let _net = Made("network", net.clone());
    let (_a, a_id, a_ip) = server(&net, &format!("{tag}a"), &img.1);
    let (_b, _b_id, b_ip) = server(&net, &format!("{tag}b"), &img.1);
    let a = format!("{tag}a");
    let b = format!("{tag}b");
    assert_eq!(
        connects_from(&a, &b_ip, 3),
        3,
        "containers must reach each other first"
    );

    // 1. connect fails with ECONNREFUSED for container a, given only its id.
    let inj = dst_bg(&[
        "--json",
        "inject",
        "syscall",
        "--container",
        &a_id[..12],
        "--syscall",
        "connect",
        "--errno",
        "ECONNREFUSED",
        "--duration",
        "30s",
    ]);
    let a_ok = connects_from(&a, &b_ip, 5);
    let b_ok = connects_from(&b, &a_ip, 5);
    let host_ok = connects_from_host(&a_ip, 3);
    let v = finish(inj);
    eprintln!(
        "connect errno on {}: a→b {a_ok}/5 ok, b→a {b_ok}/5, host→a {host_ok}/3; injected {}",
        &a_id[..12],
        v["counters"]["injected"]
    );
    assert_eq!(a_ok, 0);
    assert_eq!(
        (b_ok, host_ok),
        (5, 3),
        "the other container or the host was touched"
    );
    assert!(v["counters"]["injected"].as_u64().unwrap() >= 5, "{v}");
    assert_eq!(v["landed"], true);

    // 2. a's traffic towards b dropped (cgroup_skb on a's container cgroup).
    let inj = dst_bg(&[
        "--json",
        "inject",
        "net",
        "--container",
        &a_id,
        "--dst",
        &format!("{b_ip}/32"),
        "--drop",
        "1",
        "--duration",
        "30s",
    ]);
    let a_ok = connects_from(&a, &b_ip, 3);
    let host_a = connects_from_host(&a_ip, 3);
    let host_b = connects_from_host(&b_ip, 3);
    let v = finish(inj);
    eprintln!(
        "drop a→b: a→b {a_ok}/3, host→a {host_a}/3, host→b {host_b}/3; applied {}",
        v["counters"]["applied"]
    );
    assert_eq!(a_ok, 0);
    assert_eq!((host_a, host_b), (3, 3));
    assert!(v["counters"]["applied"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(
        connects_from(&a, &b_ip, 3),
        3,
        "traffic must flow again after the fault"
    );

    // 3. Sidecar: dst's binary in its own image, sharing a's network namespace, drops a's
    // traffic to b on a's eth0 — exactly a's.
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_dst"));
    let mut files = vec![
        (bin, "/dst"),
        (PathBuf::from("/bin/busybox"), "/bin/busybox"),
    ];
    let ldd = String::from_utf8_lossy(
        &Command::new("ldd")
            .arg(env!("CARGO_BIN_EXE_dst"))
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    let libs: Vec<PathBuf> = ldd
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with('/'))
                .map(PathBuf::from)
        })
        .collect();
    let lib_paths: Vec<String> = libs.iter().map(|l| l.display().to_string()).collect();
    for (l, p) in libs.iter().zip(&lib_paths) {
        files.push((l.clone(), p.as_str()));
    }
    let dimg = image(&format!("{tag}dst"), &files);
    let side = format!("{tag}side");
    let mut sidecar = podman()
        .args(["run", "--rm", "--name", &side, "--privileged", "--network"])
        .arg(format!("container:{a}"))
        .args([
            &dimg.1, "/dst", "--json", "inject", "net", "--dev", "eth0", "--dst",
        ])
        .arg(format!("{b_ip}/32"))
        .args(["--drop", "1", "--duration", "6s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _side = Made("container", side);
    {
        use std::io::BufRead as _;
        let mut err = std::io::BufReader::new(sidecar.stderr.take().unwrap());
        let mut line = String::new();
        while err.read_line(&mut line).unwrap() > 0 && !line.contains("live") {
            line.clear();
        }
        assert!(line.contains("live"), "sidecar never armed: {line}");
    }
    let a_ok = connects_from(&a, &b_ip, 2);
    let host_b = connects_from_host(&b_ip, 2);
    let mut s = String::new();
    std::io::Read::read_to_string(&mut sidecar.stdout.take().unwrap(), &mut s).unwrap();
    assert!(sidecar.wait().unwrap().success());
    let v: Value = serde_json::from_str(&s).unwrap_or_else(|e| panic!("{e}: {s}"));
    eprintln!(
        "sidecar on a's eth0: a→b {a_ok}/2, host→b {host_b}/2; applied {}",
        v["counters"]["applied"]
    );
    assert_eq!((a_ok, host_b), (0, 2));
    assert!(v["counters"]["applied"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(connects_from(&a, &b_ip, 2), 2);
}
