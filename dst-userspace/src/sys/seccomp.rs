//! The seccomp user-notification backend for processes dst launches: the classic-BPF filter
//! (installed between fork and exec, inherited by every child), the hand-over of the listener
//! fd to dst, and the supervisor that decides each notified call from the same rules and
//! triggers as the kernel programs and answers with the errno or lets the call run.
//!
//! Path prefixes: `open*` paths are read from the target's memory (`process_vm_readv`) and made
//! absolute against its cwd or dirfd; `read`/`write`/`fsync` resolve `/proc/PID/fd/N`. The
//! answer is only sent after `SECCOMP_IOCTL_NOTIF_ID_VALID` confirms the call is still pending,
//! but a multithreaded target can still change the path memory between our read and the
//! kernel's (TOCTOU): the path filter decides *whether to inject*, it is not a security boundary.
//! Prefixes compare as strings (`/tmp/x` also matches `/tmp/xy`); paths are not normalised.

use std::{
    io,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd},
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
};

use dst_common::sys::{SysCounters, SysRule, trigger};

use super::{engine::monotonic_ns, spec::SyscallClass};

/// Errors of the seccomp backend.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// A system call of the supervisor failed.
    #[error("seccomp supervisor: {op}: {source}")]
    Sys {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The launched process never handed over its listener.
    #[error(
        "the launched process did not hand over its seccomp listener (it failed before exec; \
         is seccomp user notification available? see `dst probe`)"
    )]
    NoListener,
}

const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const RET_K: u16 = 0x06;
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARG0: u32 = 16;

/// A classic-BPF seccomp filter: each `(nr, action)` returns its action
/// (`SECCOMP_RET_USER_NOTIF` to ask dst, or `SECCOMP_RET_ERRNO | errno` to fail the call in the
/// kernel without a round trip); everything else is allowed, and so is `sendmsg` on
/// `handover_fd` (the socket that carries the listener to dst).
pub fn build_filter(calls: &[(i64, u32)], handover_fd: RawFd) -> Vec<libc::sock_filter> {
    let ins = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let mut p = vec![
        ins(LD_W_ABS, 0, 0, OFF_ARCH),
        // Other ABIs: allow (jump target patched below).
        ins(JEQ_K, 0, 0, AUDIT_ARCH_X86_64),
        ins(LD_W_ABS, 0, 0, OFF_NR),
        ins(JEQ_K, 0, 3, libc::SYS_sendmsg as u32),
        ins(LD_W_ABS, 0, 0, OFF_ARG0),
        // sendmsg on the hand-over socket: allow (patched below).
        ins(JEQ_K, 0, 0, handover_fd as u32),
        ins(LD_W_ABS, 0, 0, OFF_NR),
    ];
    let mut actions: Vec<u32> = calls.iter().map(|(_, a)| *a).collect();
    actions.sort_unstable();
    actions.dedup();
    let first_cmp = p.len();
    // Layout after the comparisons: [allow, one return per distinct action].
    let allow = first_cmp + calls.len();
    for (i, (nr, action)) in calls.iter().enumerate() {
        let at = first_cmp + i;
        let ret = allow + 1 + actions.binary_search(action).unwrap_or(0);
        p.push(ins(JEQ_K, (ret - at - 1) as u8, 0, *nr as u32));
    }
    p.push(ins(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW));
    for a in &actions {
        p.push(ins(RET_K, 0, 0, *a));
    }
    p[1].jf = (allow - 1 - 1) as u8;
    p[5].jt = (allow - 5 - 1) as u8;
    p
}

/// Runs in the child between fork and exec: only async-signal-safe calls. Sets
/// no_new_privs, installs `filter` with a new listener and sends the listener over `sock`.
///
/// # Safety
/// Must be called in a freshly forked child (inside `CommandExt::pre_exec`).
pub unsafe fn install_in_child(filter: &[libc::sock_filter], sock: RawFd) -> io::Result<()> {
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: plain syscalls on valid arguments in the child.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &prog as *const libc::sock_fprog,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = fd as RawFd;
        let mut byte = [0u8; 1];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let mut cbuf = [0u64; 4];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(size_of::<RawFd>() as u32) as usize;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<RawFd>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        let sent = libc::sendmsg(sock, &msg, 0);
        libc::close(fd);
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Receives the listener fd the child sent with [`install_in_child`].
pub fn receive_listener(sock: &OwnedFd) -> Result<OwnedFd, SeccompError> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut cbuf = [0u64; 4];
    // SAFETY: msghdr/cmsg handling on buffers owned by this frame.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = size_of_val(&cbuf);
        let n = libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n <= 0 {
            return Err(SeccompError::NoListener);
        }
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null()
            || (*cmsg).cmsg_level != libc::SOL_SOCKET
            || (*cmsg).cmsg_type != libc::SCM_RIGHTS
        {
            return Err(SeccompError::NoListener);
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (Linux 6.6+, not in the libc crate).
const USER_NOTIF_FD_SYNC_WAKE_UP: u64 = 1;

/// Asks the kernel to hand the CPU straight from a notifying target to the supervisor and back
/// (the target always waits for the answer, so nothing runs in parallel anyway): a round trip
/// costs two direct switches instead of two wake-ups through the scheduler. Older kernels
/// refuse the flag; notifications then work as before, only slower.
fn sync_wake_up(listener: &OwnedFd) {
    // SAFETY: SET_FLAGS ioctl on the listener with a flag value.
    let r = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS,
            USER_NOTIF_FD_SYNC_WAKE_UP,
        )
    };
    if r != 0 {
        tracing::debug!(
            "seccomp listener without synchronous wake-ups: {}",
            io::Error::last_os_error()
        );
    }
}

/// One rule the supervisor evaluates, with its counters.
#[derive(Debug)]
pub struct SupervisedRule {
    /// The shared rule (classes, errno, trigger, window).
    pub rule: SysRule,
    /// File calls only: the path must start with this.
    pub path: Option<PathBuf>,
    /// Counters, same meaning as the kernel's.
    pub counters: Mutex<SysCounters>,
}

impl SupervisedRule {
    /// A rule with zeroed counters.
    pub fn new(rule: SysRule, path: Option<PathBuf>) -> Self {
        Self {
            rule,
            path,
            counters: Mutex::new(SysCounters::default()),
        }
    }
}

/// The running supervisor thread.
pub struct Supervisor {
    rules: Arc<Vec<SupervisedRule>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<u64, SeccompError>>>,
}

impl Supervisor {
    /// Starts the thread: it waits for the listener on `sock`, then answers notifications
    /// until every process using the filter is gone or [`Supervisor::stop`] is called.
    pub fn start(sock: OwnedFd, rules: Vec<SupervisedRule>) -> Self {
        let rules = Arc::new(rules);
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (rules.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("dst-seccomp".into())
            .spawn(move || {
                let listener = receive_listener(&sock)?;
                drop(sock);
                sync_wake_up(&listener);
                serve(&listener, &r, &s)
            })
            .expect("spawning a thread");
        Self {
            rules,
            stop,
            thread: Some(thread),
        }
    }

    /// Counters of rule `i`.
    pub fn counters(&self, i: usize) -> SysCounters {
        self.rules
            .get(i)
            .map(|r| *r.counters.lock().expect("counter lock"))
            .unwrap_or_default()
    }

    /// Stops the thread and returns how many notifications it answered.
    pub fn stop(&mut self) -> Result<u64, SeccompError> {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.take() {
            Some(t) => t.join().unwrap_or(Ok(0)),
            None => Ok(0),
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn serve(
    listener: &OwnedFd,
    rules: &[SupervisedRule],
    stop: &AtomicBool,
) -> Result<u64, SeccompError> {
    let fd = listener.as_raw_fd();
    let mut answered = 0u64;
    loop {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, 50) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(SeccompError::Sys {
                op: "poll",
                source: e,
            });
        }
        if r == 0 {
            if stop.load(Ordering::SeqCst) {
                return Ok(answered);
            }
            continue;
        }
        if pfd.revents & libc::POLLIN == 0 {
            // POLLHUP: no process uses the filter any more.
            return Ok(answered);
        }
        // SAFETY: zeroed seccomp_notif as the kernel requires, then the RECV ioctl.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        if unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) } != 0 {
            // ENOENT: the caller died before we received it; retry.
            continue;
        }
        let errno = decide(rules, &req, fd);
        let mut resp: libc::seccomp_notif_resp = unsafe { std::mem::zeroed() };
        resp.id = req.id;
        match errno {
            Some(e) => resp.error = -(e as i32),
            None => resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
        }
        // SAFETY: SEND ioctl with a filled response; ENOENT means the caller is gone.
        unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) };
        answered += 1;
    }
}

/// The errno to fail this notified call with, or `None` to let it run.
fn decide(rules: &[SupervisedRule], req: &libc::seccomp_notif, listener: RawFd) -> Option<u32> {
    let class = SyscallClass::of_nr(i64::from(req.data.nr))?;
    let mut path: Option<Option<String>> = None;
    for r in rules {
        if r.rule.classes & class.bit() == 0 {
            continue;
        }
        if let Some(prefix) = &r.path {
            let p = path.get_or_insert_with(|| call_path(class, req));
            // The reads above raced with the target: only trust them if the call is still
            // pending (the pid was not reused meanwhile).
            // SAFETY: ID_VALID ioctl with a valid id pointer.
            let valid =
                unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id) };
            if valid != 0 {
                return None;
            }
            match p {
                Some(p) if p.starts_with(prefix.to_string_lossy().as_ref()) => {}
                _ => continue,
            }
        }
        let now = monotonic_ns();
        if now < r.rule.not_before_ns {
            continue;
        }
        let mut c = r.counters.lock().expect("counter lock");
        if r.rule.expires_ns != 0 && now >= r.rule.expires_ns {
            c.expired += 1;
            continue;
        }
        let n = c.matched;
        c.matched += 1;
        if !trigger(&r.rule, n) {
            c.passed += 1;
            continue;
        }
        if r.rule.max != 0 {
            c.budget += 1;
            if c.budget > r.rule.max {
                c.passed += 1;
                continue;
            }
        }
        c.injected += 1;
        if c.first_injected_ns == 0 {
            c.first_injected_ns = now;
        }
        c.last_injected_ns = now;
        return Some(r.rule.errno);
    }
    None
}

/// The path a file call operates on, as the target sees it.
fn call_path(class: SyscallClass, req: &libc::seccomp_notif) -> Option<String> {
    let pid = req.pid;
    let a = req.data.args;
    let link = |p: String| {
        std::fs::read_link(p)
            .ok()
            .map(|l| l.to_string_lossy().into_owned())
    };
    match class {
        SyscallClass::Open => {
            let nr = i64::from(req.data.nr);
            let (dirfd, addr) = if nr == libc::SYS_open || nr == libc::SYS_creat {
                (libc::AT_FDCWD, a[0])
            } else {
                (a[0] as i32, a[1])
            };
            let p = read_string(pid, addr)?;
            if p.starts_with('/') {
                return Some(p);
            }
            let base = if dirfd == libc::AT_FDCWD {
                link(format!("/proc/{pid}/cwd"))?
            } else {
                link(format!("/proc/{pid}/fd/{dirfd}"))?
            };
            Some(format!("{}/{}", base.trim_end_matches('/'), p))
        }
        SyscallClass::Read | SyscallClass::Write | SyscallClass::Fsync => {
            link(format!("/proc/{pid}/fd/{}", a[0] as i32))
        }
        _ => None,
    }
}

/// Reads a NUL-terminated string (at most 4 KiB) from the target's memory, page by page so a
/// string ending near an unmapped page still reads.
fn read_string(pid: u32, addr: u64) -> Option<String> {
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < 4096 {
        let page_left = 4096 - (at % 4096) as usize;
        let mut buf = vec![0u8; page_left];
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let remote = libc::iovec {
            iov_base: at as *mut libc::c_void,
            iov_len: buf.len(),
        };
        // SAFETY: process_vm_readv into our own buffer; the remote range is only read.
        let n = unsafe { libc::process_vm_readv(pid as i32, &local, 1, &remote, 1, 0) };
        if n <= 0 {
            return None;
        }
        let got = &buf[..n as usize];
        if let Some(end) = got.iter().position(|&b| b == 0) {
            out.extend_from_slice(&got[..end]);
            return Some(String::from_utf8_lossy(&out).into_owned());
        }
        out.extend_from_slice(got);
        at += n as u64;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the classic-BPF program on (arch, nr, arg0) the way the kernel would.
    fn run(p: &[libc::sock_filter], arch: u32, nr: u32, arg0: u32) -> u32 {
        let mut pc = 0usize;
        let mut acc = 0u32;
        loop {
            let i = p[pc];
            match i.code {
                LD_W_ABS => {
                    acc = match i.k {
                        OFF_NR => nr,
                        OFF_ARCH => arch,
                        OFF_ARG0 => arg0,
                        _ => panic!("unexpected load"),
                    };
                    pc += 1;
                }
                JEQ_K => {
                    pc += 1 + if acc == i.k { i.jt } else { i.jf } as usize;
                }
                RET_K => return i.k,
                c => panic!("unexpected opcode {c}"),
            }
        }
    }

    #[test]
    fn filter_notifies_only_listed_syscalls() {
        let notify = libc::SECCOMP_RET_USER_NOTIF;
        let eio = libc::SECCOMP_RET_ERRNO | libc::EIO as u32;
        let p = build_filter(
            &[
                (libc::SYS_write, notify),
                (libc::SYS_fsync, notify),
                (libc::SYS_fdatasync, eio),
            ],
            5,
        );
        let x86 = AUDIT_ARCH_X86_64;
        let allow = libc::SECCOMP_RET_ALLOW;
        assert_eq!(run(&p, x86, libc::SYS_write as u32, 1), notify);
        assert_eq!(run(&p, x86, libc::SYS_fsync as u32, 3), notify);
        assert_eq!(run(&p, x86, libc::SYS_fdatasync as u32, 3), eio);
        assert_eq!(run(&p, x86, libc::SYS_read as u32, 3), allow);
        assert_eq!(run(&p, x86, libc::SYS_getppid as u32, 0), allow);
        assert_eq!(run(&p, 0x4000_0003, libc::SYS_write as u32, 1), allow);
        // The hand-over sendmsg is never notified; other sendmsg only when listed.
        assert_eq!(run(&p, x86, libc::SYS_sendmsg as u32, 5), allow);
        assert_eq!(run(&p, x86, libc::SYS_sendmsg as u32, 6), allow);
        let p = build_filter(&[(libc::SYS_sendmsg, notify)], 5);
        assert_eq!(run(&p, x86, libc::SYS_sendmsg as u32, 5), allow);
        assert_eq!(run(&p, x86, libc::SYS_sendmsg as u32, 6), notify);
    }
}
