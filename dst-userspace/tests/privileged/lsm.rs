//! Syscall faults through BPF LSM and fmod_ret on running processes: file writes/reads/opens
//! under a path prefix, mmap, fork, connect and accept fail for the target only, the counters equal
//! what the target saw and what the exit observer counted, and nth/after/max hold. These need
//! a kernel with BPF LSM (the VM tier); elsewhere they skip on the probe's word.
//!
//! Targets are thread-free children forked from the test that make raw libc calls only and
//! report each result (0 or the errno) through a shared anonymous mapping, so reporting adds
//! no syscall the faults could touch.

use std::{
    ffi::CString,
    os::unix::ffi::OsStrExt as _,
    path::{Path, PathBuf},
    sync::atomic::{AtomicI32, AtomicU32, Ordering},
    time::Duration,
};

use dst::{
    probe::Backend,
    sys::{
        SysEngine, SysFault, SyscallClass, Target, Trigger, inject::inject_running, lsm::path_rule,
        select::SysFacts,
    },
};

use crate::{
    support::{assert_injected, assert_observed},
    sys::skip_without,
};

const MAX_RESULTS: usize = 128;

/// Memory shared by the test and a forked child.
struct Shared {
    go: AtomicU32,
    /// Set by a body once it is ready for the test (e.g. listening).
    ready: AtomicU32,
    n: AtomicU32,
    res: [AtomicI32; MAX_RESULTS],
}

/// A forked child that waits for `go`, runs its body (raw libc calls only) and exits.
struct Forked {
    pid: libc::pid_t,
    sh: &'static Shared,
    reaped: bool,
}

/// Records one result: 0 for success, else the errno.
fn record(sh: &Shared, ret: i64) {
    let v = if ret < 0 {
        // SAFETY: errno of this thread.
        unsafe { *libc::__errno_location() }
    } else {
        0
    };
    let i = sh.n.fetch_add(1, Ordering::SeqCst) as usize;
    if let Some(slot) = sh.res.get(i) {
        slot.store(v, Ordering::SeqCst);
    }
}

impl Forked {
    fn spawn(body: impl FnOnce(&Shared)) -> Self {
        // SAFETY: a fresh shared anonymous mapping, never unmapped (leaked on purpose: a few
        // pages per test).
        let sh = unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                size_of::<Shared>(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(p, libc::MAP_FAILED, "shared mapping");
            &*(p as *const Shared)
        };
        // SAFETY: the child only makes raw system calls (no allocation, no locks) and exits
        // with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            while sh.go.load(Ordering::SeqCst) == 0 {
                // SAFETY: plain sleep.
                unsafe { libc::usleep(1000) };
            }
            body(sh);
            // SAFETY: leave without running the parent's atexit handlers or destructors.
            unsafe { libc::_exit(0) };
        }
        Self {
            pid,
            sh,
            reaped: false,
        }
    }

    fn pid(&self) -> u32 {
        self.pid as u32
    }

    fn go(&self) {
        self.sh.go.store(1, Ordering::SeqCst);
    }

    /// Waits for the child and returns what it recorded.
    fn results(&mut self) -> Vec<i32> {
        let mut status = 0;
        // SAFETY: our own child.
        unsafe { libc::waitpid(self.pid, &mut status, 0) };
        self.reaped = true;
        let n = (self.sh.n.load(Ordering::SeqCst) as usize).min(MAX_RESULTS);
        self.sh.res[..n]
            .iter()
            .map(|r| r.load(Ordering::SeqCst))
            .collect()
    }
}

impl Drop for Forked {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: our own child.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

/// A directory of this test, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("dst-lsm-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(p.join("data-sub")).unwrap();
        Self(p)
    }

    /// `(inside_a, inside_nested, outside)`: two files under the prefix `DIR/data`, one not.
    fn files(&self) -> (CString, CString, CString) {
        let c = |p: PathBuf| {
            std::fs::write(&p, b"0123456789").unwrap();
            CString::new(p.as_os_str().as_bytes()).unwrap()
        };
        (
            c(self.0.join("data-a.log")),
            c(self.0.join("data-sub/x.log")),
            c(self.0.join("other.log")),
        )
    }

    fn prefix(&self) -> PathBuf {
        self.0.join("data")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// open + one write(2) + close on each path, `rounds` times; records only the write results.
fn writer(paths: [CString; 3], rounds: usize) -> impl Fn(&Shared) + Clone {
    move |sh| {
        for _ in 0..rounds {
            for p in &paths {
                // SAFETY: raw calls on a NUL-terminated path and a static buffer.
                unsafe {
                    let fd = libc::open(p.as_ptr(), libc::O_WRONLY | libc::O_APPEND);
                    let r = libc::write(fd, b"x".as_ptr().cast(), 1);
                    record(sh, r as i64);
                    libc::close(fd);
                }
            }
        }
    }
}

fn errno_count(r: &[i32], errno: i32) -> u64 {
    r.iter().filter(|&&e| e == errno).count() as u64
}

fn fault(pid: u32, class: SyscallClass, errno: i32, path: Option<&Path>) -> SysFault {
    SysFault {
        target: Target::Pid {
            pid,
            children: false,
        },
        class,
        errno,
        trigger: Trigger::default(),
        path: path.map(Path::to_path_buf),
        duration: Some(Duration::from_secs(60)),
    }
}

/// Must show (#9): `write` to files under a path prefix returns EIO for the targeted pid only,
/// through `dst inject syscall`'s code path on a running process with the LSM backend. Another
/// process writing to the same files succeeds, the target writing outside the prefix
/// succeeds, and injected == EIO the target saw == EIO the sys_exit observer counted.
#[test]
fn lsm_write_under_prefix_fails_with_eio_for_target_only() {
    if skip_without(&["lsm", "tracepoint"]) {
        return;
    }
    let dir = Dir::new("write");
    let (a, nested, outside) = dir.files();
    let rounds = 10;
    let mut target = Forked::spawn(writer([a.clone(), nested.clone(), outside.clone()], rounds));
    let mut other = Forked::spawn(writer([a, nested, outside], rounds));
    let facts = SysFacts::from_probe(&dst::probe::run());
    let f = fault(
        target.pid(),
        SyscallClass::Write,
        libc::EIO,
        Some(&dir.prefix()),
    );
    let mut inj = inject_running(&f, &facts).expect("LSM write fault installs");
    target.go();
    other.go();
    let t = target.results();
    let o = other.results();
    let report = inj.report().unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&report).unwrap());
    let c = report.evidence.counters;
    let seen: u64 = report
        .evidence
        .received
        .iter()
        .filter(|r| r.pid == target.pid() && r.result == "EIO")
        .map(|r| r.count)
        .sum();
    eprintln!(
        "target saw {} EIO of {} writes; other saw {} errors; counters {c:?}; observer {seen}",
        errno_count(&t, libc::EIO),
        t.len(),
        o.iter().filter(|&&e| e != 0).count()
    );
    assert_eq!(report.evidence.backend, Backend::Lsm);
    let missed = report.evidence.injector_missed;
    // Every third write is outside the prefix.
    let want = [libc::EIO, libc::EIO, 0].repeat(rounds);
    assert_injected(&t, &want, missed, "target writes");
    assert_eq!(o, vec![0; 3 * rounds], "blast radius: another process");
    assert_eq!(
        c.injected,
        errno_count(&t, libc::EIO),
        "injected == target saw"
    );
    assert_eq!(
        c.matched, c.injected,
        "every matched write failed; outside-prefix writes do not match"
    );
    assert_observed(
        seen,
        c.injected,
        report.evidence.observer_missed,
        "the exit observer saw every EIO",
    );
}

/// Installs one fault on `target` with the LSM (or fmod_ret) programs directly.
fn engine_with(backend: Backend, f: &SysFault, extra_pids: &[u32]) -> (SysEngine, u32) {
    let mut engine = SysEngine::load().unwrap();
    let Target::Pid { pid, .. } = f.target else {
        unreachable!()
    };
    engine.add_pid(pid, false).unwrap();
    for p in extra_pids {
        engine.add_pid(*p, false).unwrap();
    }
    match backend {
        Backend::Lsm => engine.attach_lsm(f.class).unwrap(),
        Backend::FmodRet => engine.attach_fmod_ret(f.class).unwrap(),
        other => panic!("not a hook backend: {other}"),
    }
    engine.observe_class(f.class).unwrap();
    let path = f.path.as_deref().map(|p| path_rule(p).unwrap());
    let slot = engine
        .apply_with_paths(&[(f.to_rule(0, 0).unwrap(), path)])
        .unwrap()[0];
    (engine, slot)
}

/// Runs `body` in a target and an untargeted sibling under `f` (its target pid is replaced),
/// returns both result lists and how many runs of the hook programs the kernel skipped, and
/// checks the counters against the target's own record and the exit observer.
fn target_only(
    backend: Backend,
    mut f: SysFault,
    body: impl Fn(&Shared) + Clone,
) -> (Vec<i32>, Vec<i32>, u64) {
    let mut target = Forked::spawn(body.clone());
    let mut other = Forked::spawn(body);
    f.target = Target::Pid {
        pid: target.pid(),
        children: false,
    };
    let (engine, slot) = engine_with(backend, &f, &[other.pid()]);
    target.go();
    other.go();
    let t = target.results();
    let o = other.results();
    let c = engine.counters(slot).unwrap();
    let seen_t = engine
        .received(Some(target.pid()), f.class, -i64::from(f.errno))
        .unwrap();
    let seen_o = engine
        .received(Some(other.pid()), f.class, -i64::from(f.errno))
        .unwrap();
    let name = dst::sys::spec::errno_to_name(f.errno);
    let skipped = engine.injector_misses().unwrap();
    eprintln!(
        "{} via {backend}: target {t:?}; other {o:?}; counters {c:?}; observer: target got \
         {name} {seen_t}x, other {seen_o}x; hook programs skipped {skipped}x",
        f.class.name()
    );
    if skipped == 0 {
        assert!(c.injected > 0, "the fault landed");
    } else {
        eprintln!(
            "NOTE: the kernel skipped the hook programs {skipped} times; {} injected",
            c.injected
        );
    }
    assert_eq!(
        c.injected,
        errno_count(&t, f.errno),
        "injected == target saw"
    );
    assert_observed(
        seen_t,
        c.injected,
        engine.observer_misses().unwrap(),
        "observer == injected",
    );
    assert_eq!(seen_o, 0, "blast radius: the sibling received no {name}");
    assert!(o.iter().all(|&e| e == 0), "blast radius: sibling {o:?}");
    (t, o, skipped)
}

/// open under the prefix → EACCES for the target; opens outside the prefix succeed.
#[test]
fn lsm_open_under_prefix_fails_with_eacces() {
    if skip_without(&["lsm", "tracepoint"]) {
        return;
    }
    let dir = Dir::new("open");
    let (a, nested, outside) = dir.files();
    let f = fault(0, SyscallClass::Open, libc::EACCES, Some(&dir.prefix()));
    let (t, _, missed) = target_only(Backend::Lsm, f, move |sh| {
        for _ in 0..5 {
            for p in [&a, &nested, &outside] {
                // SAFETY: raw open/close on a NUL-terminated path.
                unsafe {
                    let fd = libc::open(p.as_ptr(), libc::O_RDONLY);
                    record(sh, i64::from(fd));
                    if fd >= 0 {
                        libc::close(fd);
                    }
                }
            }
        }
    });
    assert_injected(
        &t,
        &[libc::EACCES, libc::EACCES, 0].repeat(5),
        missed,
        "target calls",
    );
}

/// read under the prefix → EIO for the target.
#[test]
fn lsm_read_under_prefix_fails_with_eio() {
    if skip_without(&["lsm", "tracepoint"]) {
        return;
    }
    let dir = Dir::new("read");
    let (a, _, outside) = dir.files();
    let f = fault(0, SyscallClass::Read, libc::EIO, Some(&dir.prefix()));
    let (t, _, missed) = target_only(Backend::Lsm, f, move |sh| {
        // SAFETY: raw calls on NUL-terminated paths and a stack buffer.
        unsafe {
            let fa = libc::open(a.as_ptr(), libc::O_RDONLY);
            let fo = libc::open(outside.as_ptr(), libc::O_RDONLY);
            let mut buf = [0u8; 4];
            for _ in 0..6 {
                record(sh, libc::pread(fa, buf.as_mut_ptr().cast(), 4, 0) as i64);
                record(sh, libc::pread(fo, buf.as_mut_ptr().cast(), 4, 0) as i64);
            }
        }
    });
    assert_injected(&t, &[libc::EIO, 0].repeat(6), missed, "target calls");
}

/// mmap → ENOMEM for the target.
#[test]
fn lsm_mmap_fails_with_enomem() {
    if skip_without(&["lsm", "tracepoint"]) {
        return;
    }
    let f = fault(0, SyscallClass::Mmap, libc::ENOMEM, None);
    let (t, _, missed) = target_only(Backend::Lsm, f, |sh| {
        for _ in 0..4 {
            // SAFETY: an anonymous private mapping, unmapped if it was made.
            unsafe {
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                record(sh, if p == libc::MAP_FAILED { -1 } else { 0 });
                if p != libc::MAP_FAILED {
                    libc::munmap(p, 4096);
                }
            }
        }
    });
    assert_injected(&t, &[libc::ENOMEM; 4], missed, "target calls");
}

/// fork (task_alloc) → EAGAIN for the target.
#[test]
fn lsm_fork_fails_with_eagain() {
    if skip_without(&["lsm", "tracepoint"]) {
        return;
    }
    let f = fault(0, SyscallClass::Fork, libc::EAGAIN, None);
    let (t, _, missed) = target_only(Backend::Lsm, f, |sh| {
        for _ in 0..3 {
            // SAFETY: a grandchild that exits at once, reaped here.
            unsafe {
                let pid = libc::fork();
                if pid == 0 {
                    libc::_exit(0);
                }
                record(sh, i64::from(pid));
                if pid > 0 {
                    libc::waitpid(pid, std::ptr::null_mut(), 0);
                }
            }
        }
    });
    assert_injected(&t, &[libc::EAGAIN; 3], missed, "target calls");
}

/// connect through `lsm/socket_connect` → ECONNREFUSED for the target (a Unix socket, which
/// the cgroup sock hooks never see).
#[test]
fn lsm_connect_fails_for_target_only() {
    if skip_without(&["lsm", "tracepoint"]) {
        return;
    }
    let dir = Dir::new("connect");
    let sock = dir.0.join("s");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    std::thread::spawn(move || for _ in listener.incoming() {});
    let path = sock.as_os_str().as_bytes().to_vec();
    let f = fault(0, SyscallClass::Connect, libc::ECONNREFUSED, None);
    let (t, _, missed) = target_only(Backend::Lsm, f, move |sh| {
        for _ in 0..4 {
            // SAFETY: raw socket calls with a sockaddr_un built on the stack.
            unsafe {
                let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
                let mut addr: libc::sockaddr_un = std::mem::zeroed();
                addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
                for (d, s) in addr.sun_path.iter_mut().zip(path.iter()) {
                    *d = *s as libc::c_char;
                }
                let r = libc::connect(
                    fd,
                    (&raw const addr).cast(),
                    size_of::<libc::sockaddr_un>() as u32,
                );
                record(sh, i64::from(r));
                libc::close(fd);
            }
        }
    });
    assert_injected(&t, &[libc::ECONNREFUSED; 4], missed, "target calls");
}

/// accept → ECONNABORTED for the target only: each child listens on its own unix socket, the
/// test queues 4 connections to each, the target's 4 accepts fail (the LSM hook runs before
/// the accept waits) while the sibling accepts all 4; counters == what the target saw == the
/// exit observer's count.
#[test]
fn lsm_accept_fails_for_target_only() {
    if skip_without(&["lsm", "tracepoint"]) {
        return;
    }
    let dir = Dir::new("accept");
    let base = CString::new(dir.0.join("acc-").as_os_str().as_bytes()).unwrap();
    let body = move |sh: &Shared| {
        // SAFETY: raw socket calls; the path is built on the stack from the base and the pid.
        unsafe {
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            let mut addr: libc::sockaddr_un = std::mem::zeroed();
            addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
            let b = base.as_bytes();
            for (d, c) in addr.sun_path.iter_mut().zip(b.iter()) {
                *d = *c as libc::c_char;
            }
            let mut pid = libc::getpid() as u32;
            let mut digits = [0u8; 10];
            let mut n = 0;
            while pid > 0 || n == 0 {
                digits[n] = b'0' + (pid % 10) as u8;
                pid /= 10;
                n += 1;
            }
            for k in 0..n {
                addr.sun_path[b.len() + k] = digits[n - 1 - k] as libc::c_char;
            }
            let len = size_of::<libc::sockaddr_un>() as u32;
            libc::bind(fd, (&raw const addr).cast(), len);
            libc::listen(fd, 16);
            sh.ready.store(1, Ordering::SeqCst);
            // Wait for the test to queue its connections.
            while sh.ready.load(Ordering::SeqCst) != 2 {
                libc::usleep(1000);
            }
            for _ in 0..4 {
                let c = libc::accept(fd, std::ptr::null_mut(), std::ptr::null_mut());
                record(sh, i64::from(c));
                if c >= 0 {
                    libc::close(c);
                }
            }
            libc::close(fd);
        }
    };
    let mut target = Forked::spawn(body.clone());
    let mut other = Forked::spawn(body);
    let f = fault(target.pid(), SyscallClass::Accept, libc::ECONNABORTED, None);
    let (engine, slot) = engine_with(Backend::Lsm, &f, &[other.pid()]);
    target.go();
    other.go();
    let mut conns = Vec::new();
    for child in [&target, &other] {
        while child.sh.ready.load(Ordering::SeqCst) != 1 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let path = dir.0.join(format!("acc-{}", child.pid()));
        for _ in 0..4 {
            conns.push(std::os::unix::net::UnixStream::connect(&path).unwrap());
        }
        child.sh.ready.store(2, Ordering::SeqCst);
    }
    let t = target.results();
    let o = other.results();
    let c = engine.counters(slot).unwrap();
    let seen_t = engine
        .received(Some(target.pid()), f.class, -i64::from(f.errno))
        .unwrap();
    let seen_o = engine
        .received(Some(other.pid()), f.class, -i64::from(f.errno))
        .unwrap();
    eprintln!(
        "accept via lsm: target {t:?}; other {o:?}; counters {c:?}; observer: target got \
         ECONNABORTED {seen_t}x, other {seen_o}x"
    );
    let missed = engine.injector_misses().unwrap();
    assert_injected(&t, &[libc::ECONNABORTED; 4], missed, "target calls");
    assert_eq!(o, vec![0; 4], "the sibling accepts every connection");
    assert_eq!(c.injected, errno_count(&t, libc::ECONNABORTED));
    assert_observed(
        seen_t,
        c.injected,
        engine.observer_misses().unwrap(),
        "observer == injected",
    );
    assert_eq!(seen_o, 0, "blast radius");
}

/// The fmod_ret backend (`security_file_permission`): write under the prefix → EIO for the
/// target only.
#[test]
fn fmod_ret_write_under_prefix_fails_with_eio() {
    if skip_without(&["fmod_ret", "tracepoint"]) {
        return;
    }
    let dir = Dir::new("fmod");
    let (a, nested, outside) = dir.files();
    let f = fault(0, SyscallClass::Write, libc::EIO, Some(&dir.prefix()));
    let (t, _, missed) = target_only(Backend::FmodRet, f, writer([a, nested, outside], 4));
    assert_injected(
        &t,
        &[libc::EIO, libc::EIO, 0].repeat(4),
        missed,
        "target writes",
    );
}

/// nth, after and max in the LSM programs: three targets, one rule each, 8 writes under the
/// prefix each.
#[test]
fn lsm_triggers_nth_after_max() {
    if skip_without(&["lsm", "tracepoint"]) {
        return;
    }
    let dir = Dir::new("trig");
    let (a, _, _) = dir.files();
    let body = move |sh: &Shared| {
        for _ in 0..8 {
            // SAFETY: raw calls on a NUL-terminated path and a static buffer.
            unsafe {
                let fd = libc::open(a.as_ptr(), libc::O_WRONLY | libc::O_APPEND);
                record(sh, libc::write(fd, b"x".as_ptr().cast(), 1) as i64);
                libc::close(fd);
            }
        }
    };
    let mut kids: Vec<Forked> = (0..3).map(|_| Forked::spawn(body.clone())).collect();
    let mut engine = SysEngine::load().unwrap();
    engine.attach_lsm(SyscallClass::Write).unwrap();
    engine.observe_class(SyscallClass::Write).unwrap();
    let path = path_rule(&dir.prefix()).unwrap();
    let triggers = [
        Trigger {
            nth: Some(3),
            ..Default::default()
        },
        Trigger {
            after: Some(5),
            ..Default::default()
        },
        Trigger {
            max: Some(2),
            ..Default::default()
        },
    ];
    let mut rules = Vec::new();
    for (k, trigger) in kids.iter().zip(&triggers) {
        engine.add_pid(k.pid(), false).unwrap();
        let mut f = fault(k.pid(), SyscallClass::Write, libc::EIO, Some(&dir.prefix()));
        f.trigger = trigger.clone();
        rules.push((f.to_rule(0, 0).unwrap(), Some(path)));
    }
    let slots = engine.apply_with_paths(&rules).unwrap();
    for k in &kids {
        k.go();
    }
    let results: Vec<Vec<i32>> = kids.iter_mut().map(Forked::results).collect();
    let e = libc::EIO;
    let expected = [
        vec![0, 0, e, 0, 0, 0, 0, 0],
        vec![0, 0, 0, 0, 0, e, e, e],
        vec![e, e, 0, 0, 0, 0, 0, 0],
    ];
    for ((k, (r, want)), slot) in kids.iter().zip(results.iter().zip(&expected)).zip(&slots) {
        let c = engine.counters(*slot).unwrap();
        let seen = engine
            .received(Some(k.pid()), SyscallClass::Write, -i64::from(e))
            .unwrap();
        let missed = engine.observer_misses().unwrap();
        eprintln!(
            "pid {}: {r:?}; counters {c:?}; observer {seen} EIO, {missed} observer runs skipped",
            k.pid()
        );
        assert_eq!(r, want);
        assert_eq!(c.matched, 8);
        assert_eq!(c.injected, errno_count(r, e));
        assert_eq!(c.passed, 8 - c.injected);
        assert_observed(seen, c.injected, missed, "observer == injected");
    }
}

/// Sends on a fresh Unix socket pair, `n` times; records the send results.
fn sender(n: usize) -> impl Fn(&Shared) + Clone {
    move |sh| {
        // SAFETY: raw socket calls on fds this child owns and a static buffer.
        unsafe {
            let mut fds = [0i32; 2];
            libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr());
            for _ in 0..n {
                let r = libc::send(fds[0], b"x".as_ptr().cast(), 1, 0);
                record(sh, r as i64);
            }
        }
    }
}

/// send through `lsm/socket_sendmsg` (a stream socket, which the cgroup sendmsg hooks never
/// see) → EPIPE for the target only.
#[test]
fn lsm_send_fails_for_target_only() {
    if skip_without(&["lsm", "tracepoint"]) {
        return;
    }
    let f = fault(0, SyscallClass::Send, libc::EPIPE, None);
    let (t, _, missed) = target_only(Backend::Lsm, f, sender(4));
    assert_injected(&t, &[libc::EPIPE; 4], missed, "target calls");
}

/// recv through `lsm/socket_recvmsg` → ECONNRESET for the target; the data was there (the
/// sibling reads it).
#[test]
fn lsm_recv_fails_for_target_only() {
    if skip_without(&["lsm", "tracepoint"]) {
        return;
    }
    let f = fault(0, SyscallClass::Recv, libc::ECONNRESET, None);
    let (t, _, missed) = target_only(Backend::Lsm, f, |sh| {
        // SAFETY: raw socket calls on fds this child owns and stack buffers.
        unsafe {
            let mut fds = [0i32; 2];
            libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr());
            let mut buf = [0u8; 1];
            for _ in 0..4 {
                libc::send(fds[0], b"x".as_ptr().cast(), 1, 0);
                let r = libc::recv(fds[1], buf.as_mut_ptr().cast(), 1, libc::MSG_DONTWAIT);
                record(sh, r as i64);
            }
        }
    });
    assert_injected(&t, &[libc::ECONNRESET; 4], missed, "target calls");
}
