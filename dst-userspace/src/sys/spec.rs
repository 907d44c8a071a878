//! A syscall fault as users write it (syscall class, errno, trigger, target) and its
//! translation to the shared kernel/supervisor rule; syscall and errno names both ways.

use std::{path::PathBuf, time::Duration};

use dst_common::{
    net::probability_to_threshold,
    sys::{
        CLASS_ACCEPT, CLASS_BIND, CLASS_CONNECT, CLASS_FORK, CLASS_FSYNC, CLASS_GETPPID,
        CLASS_MMAP, CLASS_OPEN, CLASS_READ, CLASS_RECV, CLASS_SEND, CLASS_SOCKET, CLASS_WRITE,
        SYS_RULE_ACTIVE, SYS_RULE_CHILDREN, SysRule, TARGET_CGROUP, TARGET_COMM, TARGET_TGID,
    },
};
use serde::Serialize;

/// Invalid syscall fault; each variant names what to fix.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SysSpecError {
    /// The syscall name is not one dst can fail.
    #[error(
        "unknown syscall {0:?}: use one of connect, accept, bind, sendmsg, sendto, recvmsg, \
         socket, open, openat, read, write, fsync, fdatasync, mmap, fork, clone"
    )]
    UnknownSyscall(String),
    /// The errno is neither a known name nor a number in 1..=4095.
    #[error("unknown errno {0:?}: use a name like EIO, ENOSPC, ECONNREFUSED or a number 1..4095")]
    UnknownErrno(String),
    /// A probability outside 0..=1.
    #[error("--prob {0} is outside 0..1")]
    Probability(f64),
    /// A trigger count of zero.
    #[error("--{0} must be at least 1")]
    ZeroCount(&'static str),
    /// The command name does not fit the kernel's 15-byte comm.
    #[error("--comm {0:?} is longer than 15 bytes; the kernel truncates comm to 15 bytes")]
    CommTooLong(String),
    /// A path prefix on a class that has no path.
    #[error("--path applies only to open, read, write and fsync, not to {0}")]
    PathNotApplicable(&'static str),
}

/// Syscall classes dst can fail, each a set of x86_64 syscalls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum SyscallClass {
    /// connect.
    Connect,
    /// accept, accept4.
    Accept,
    /// bind.
    Bind,
    /// sendmsg, sendto, sendmmsg.
    Send,
    /// recvmsg, recvfrom, recvmmsg.
    Recv,
    /// socket.
    Socket,
    /// open, openat, openat2, creat.
    Open,
    /// read, pread64, readv, preadv, preadv2.
    Read,
    /// write, pwrite64, writev, pwritev, pwritev2.
    Write,
    /// fsync, fdatasync.
    Fsync,
    /// mmap.
    Mmap,
    /// fork, vfork, clone, clone3.
    Fork,
    /// getppid (benchmarks: a class outside every fault).
    Getppid,
}

impl SyscallClass {
    /// All classes.
    pub const ALL: &[SyscallClass] = &[
        Self::Connect,
        Self::Accept,
        Self::Bind,
        Self::Send,
        Self::Recv,
        Self::Socket,
        Self::Open,
        Self::Read,
        Self::Write,
        Self::Fsync,
        Self::Mmap,
        Self::Fork,
        Self::Getppid,
    ];

    /// Parses a syscall name (any member of a class, or the class name).
    pub fn parse(name: &str) -> Result<Self, SysSpecError> {
        let n = name.trim().to_ascii_lowercase();
        Self::ALL
            .iter()
            .copied()
            .find(|c| c.name() == n || c.syscalls().iter().any(|(s, _)| *s == n))
            .ok_or_else(|| SysSpecError::UnknownSyscall(name.to_string()))
    }

    /// The class name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Accept => "accept",
            Self::Bind => "bind",
            Self::Send => "send",
            Self::Recv => "recv",
            Self::Socket => "socket",
            Self::Open => "open",
            Self::Read => "read",
            Self::Write => "write",
            Self::Fsync => "fsync",
            Self::Mmap => "mmap",
            Self::Fork => "fork",
            Self::Getppid => "getppid",
        }
    }

    /// The kernel bit of this class.
    pub fn bit(self) -> u32 {
        match self {
            Self::Connect => CLASS_CONNECT,
            Self::Accept => CLASS_ACCEPT,
            Self::Bind => CLASS_BIND,
            Self::Send => CLASS_SEND,
            Self::Recv => CLASS_RECV,
            Self::Socket => CLASS_SOCKET,
            Self::Open => CLASS_OPEN,
            Self::Read => CLASS_READ,
            Self::Write => CLASS_WRITE,
            Self::Fsync => CLASS_FSYNC,
            Self::Mmap => CLASS_MMAP,
            Self::Fork => CLASS_FORK,
            Self::Getppid => CLASS_GETPPID,
        }
    }

    /// The syscalls of the class with their x86_64 numbers.
    pub fn syscalls(self) -> &'static [(&'static str, i64)] {
        use libc::*;
        match self {
            Self::Connect => &[("connect", SYS_connect)],
            Self::Accept => &[("accept", SYS_accept), ("accept4", SYS_accept4)],
            Self::Bind => &[("bind", SYS_bind)],
            Self::Send => &[
                ("sendmsg", SYS_sendmsg),
                ("sendto", SYS_sendto),
                ("sendmmsg", SYS_sendmmsg),
            ],
            Self::Recv => &[
                ("recvmsg", SYS_recvmsg),
                ("recvfrom", SYS_recvfrom),
                ("recvmmsg", SYS_recvmmsg),
            ],
            Self::Socket => &[("socket", SYS_socket)],
            Self::Open => &[
                ("open", SYS_open),
                ("openat", SYS_openat),
                ("openat2", SYS_openat2),
                ("creat", SYS_creat),
            ],
            Self::Read => &[
                ("read", SYS_read),
                ("pread64", SYS_pread64),
                ("readv", SYS_readv),
                ("preadv", SYS_preadv),
                ("preadv2", SYS_preadv2),
            ],
            Self::Write => &[
                ("write", SYS_write),
                ("pwrite64", SYS_pwrite64),
                ("writev", SYS_writev),
                ("pwritev", SYS_pwritev),
                ("pwritev2", SYS_pwritev2),
            ],
            Self::Fsync => &[("fsync", SYS_fsync), ("fdatasync", SYS_fdatasync)],
            Self::Mmap => &[("mmap", SYS_mmap)],
            Self::Fork => &[
                ("fork", SYS_fork),
                ("vfork", SYS_vfork),
                ("clone", SYS_clone),
                ("clone3", SYS_clone3),
            ],
            Self::Getppid => &[("getppid", SYS_getppid)],
        }
    }

    /// The class a syscall number belongs to.
    pub fn of_nr(nr: i64) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|c| c.syscalls().iter().any(|(_, n)| *n == nr))
    }

    /// The syscall name of a number in any class.
    pub fn name_of_nr(nr: i64) -> Option<&'static str> {
        Self::of_nr(nr).and_then(|c| c.syscalls().iter().find(|(_, n)| *n == nr).map(|(s, _)| *s))
    }

    /// Whether a path prefix can restrict this class (file syscalls).
    pub fn has_path(self) -> bool {
        matches!(self, Self::Open | Self::Read | Self::Write | Self::Fsync)
    }

    /// Whether a cgroup sock hook can fail this class in the kernel (`bpf_set_retval`).
    /// `Send` is only unconnected UDP `sendto`/`sendmsg` with an address there.
    pub fn cgroup_sock(self) -> bool {
        matches!(self, Self::Connect | Self::Bind | Self::Socket | Self::Send)
    }
}

const ERRNOS: &[(&str, i32)] = &[
    ("EPERM", libc::EPERM),
    ("ENOENT", libc::ENOENT),
    ("EINTR", libc::EINTR),
    ("EIO", libc::EIO),
    ("ENXIO", libc::ENXIO),
    ("EBADF", libc::EBADF),
    ("EAGAIN", libc::EAGAIN),
    ("ENOMEM", libc::ENOMEM),
    ("EACCES", libc::EACCES),
    ("EFAULT", libc::EFAULT),
    ("EBUSY", libc::EBUSY),
    ("EEXIST", libc::EEXIST),
    ("EINVAL", libc::EINVAL),
    ("ENFILE", libc::ENFILE),
    ("EMFILE", libc::EMFILE),
    ("EFBIG", libc::EFBIG),
    ("ENOSPC", libc::ENOSPC),
    ("EROFS", libc::EROFS),
    ("EPIPE", libc::EPIPE),
    ("EDQUOT", libc::EDQUOT),
    ("ENOSYS", libc::ENOSYS),
    ("EMSGSIZE", libc::EMSGSIZE),
    ("EADDRINUSE", libc::EADDRINUSE),
    ("EADDRNOTAVAIL", libc::EADDRNOTAVAIL),
    ("ENETDOWN", libc::ENETDOWN),
    ("ENETUNREACH", libc::ENETUNREACH),
    ("ECONNABORTED", libc::ECONNABORTED),
    ("ECONNRESET", libc::ECONNRESET),
    ("ENOBUFS", libc::ENOBUFS),
    ("ETIMEDOUT", libc::ETIMEDOUT),
    ("ECONNREFUSED", libc::ECONNREFUSED),
    ("EHOSTUNREACH", libc::EHOSTUNREACH),
    ("EALREADY", libc::EALREADY),
    ("EINPROGRESS", libc::EINPROGRESS),
];

/// Parses an errno name (case-insensitive) or number.
pub fn parse_errno(s: &str) -> Result<i32, SysSpecError> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        return if (1..=4095).contains(&n) {
            Ok(n)
        } else {
            Err(SysSpecError::UnknownErrno(s.to_string()))
        };
    }
    ERRNOS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(t))
        .map(|(_, v)| *v)
        .ok_or_else(|| SysSpecError::UnknownErrno(s.to_string()))
}

/// The name of an errno ("E123" when dst has no name for it).
pub fn errno_to_name(e: i32) -> String {
    ERRNOS
        .iter()
        .find(|(_, v)| *v == e)
        .map_or_else(|| format!("E{e}"), |(n, _)| (*n).to_string())
}

/// Whose syscalls a fault fails.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// A process, optionally with every child it forks afterwards.
    Pid {
        /// The process id (tgid).
        pid: u32,
        /// Follow its future children.
        children: bool,
    },
    /// Every process of a cgroup v2 directory (absolute path).
    Cgroup {
        /// The cgroup directory.
        path: PathBuf,
        /// Its id (inode number).
        id: u64,
    },
    /// Every process with this command name.
    Comm(String),
}

/// When a matched call fails. All given triggers must agree.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Trigger {
    /// Chance per matched call (seeded); `None` = always.
    pub probability: Option<f64>,
    /// Only the Nth matched call (1-based).
    pub nth: Option<u64>,
    /// Only calls after the first N.
    pub after: Option<u64>,
    /// At most M failures.
    pub max: Option<u64>,
    /// Seed of the probability stream.
    pub seed: u64,
}

/// One syscall fault.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SysFault {
    /// Whose calls.
    pub target: Target,
    /// Which calls.
    pub class: SyscallClass,
    /// The errno they fail with.
    pub errno: i32,
    /// When.
    pub trigger: Trigger,
    /// File calls only: the path must start with this.
    pub path: Option<PathBuf>,
    /// How long the fault lives (enforced where it is evaluated); `None` = until cleared.
    #[serde(with = "humantime_serde")]
    pub duration: Option<Duration>,
}

impl SysFault {
    /// Checks the fault without touching the system.
    pub fn validate(&self) -> Result<(), SysSpecError> {
        if let Some(p) = self.trigger.probability
            && !(0.0..=1.0).contains(&p)
        {
            return Err(SysSpecError::Probability(p));
        }
        for (name, v) in [
            ("nth", self.trigger.nth),
            ("after", self.trigger.after),
            ("max", self.trigger.max),
        ] {
            if v == Some(0) && name != "after" {
                return Err(SysSpecError::ZeroCount(name));
            }
        }
        if let Target::Comm(c) = &self.target
            && c.len() > 15
        {
            return Err(SysSpecError::CommTooLong(c.clone()));
        }
        if self.path.is_some() && !self.class.has_path() {
            return Err(SysSpecError::PathNotApplicable(self.class.name()));
        }
        Ok(())
    }

    /// The shared rule (kernel map slot or supervisor rule) with the given live window.
    pub fn to_rule(&self, not_before_ns: u64, expires_ns: u64) -> Result<SysRule, SysSpecError> {
        self.validate()?;
        let mut r = SysRule {
            flags: SYS_RULE_ACTIVE,
            classes: self.class.bit(),
            errno: self.errno as u32,
            probability: probability_to_threshold(self.trigger.probability.unwrap_or(1.0)),
            nth: self.trigger.nth.unwrap_or(0),
            after: self.trigger.after.unwrap_or(0),
            max: self.trigger.max.unwrap_or(0),
            seed: self.trigger.seed,
            not_before_ns,
            expires_ns,
            ..Default::default()
        };
        match &self.target {
            Target::Pid { pid, children } => {
                r.target = TARGET_TGID;
                r.tgid = *pid;
                if *children {
                    r.flags |= SYS_RULE_CHILDREN;
                }
            }
            Target::Cgroup { id, .. } => {
                r.target = TARGET_CGROUP;
                r.cgroup_id = *id;
            }
            Target::Comm(c) => {
                r.target = TARGET_COMM;
                r.comm = comm_bytes(c);
            }
        }
        Ok(r)
    }
}

/// A command name as the kernel stores it (NUL-padded, at most 15 bytes).
pub fn comm_bytes(c: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, b) in out.iter_mut().zip(c.as_bytes().iter().take(15)) {
        *o = *b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(class: SyscallClass) -> SysFault {
        SysFault {
            target: Target::Pid {
                pid: 1,
                children: false,
            },
            class,
            errno: libc::EIO,
            trigger: Trigger::default(),
            path: None,
            duration: None,
        }
    }

    #[test]
    fn names_parse_both_ways() {
        assert_eq!(SyscallClass::parse("openat"), Ok(SyscallClass::Open));
        assert_eq!(SyscallClass::parse("sendto"), Ok(SyscallClass::Send));
        assert_eq!(SyscallClass::parse("FSYNC"), Ok(SyscallClass::Fsync));
        assert_eq!(SyscallClass::parse("fdatasync"), Ok(SyscallClass::Fsync));
        assert!(matches!(
            SyscallClass::parse("frobnicate"),
            Err(SysSpecError::UnknownSyscall(_))
        ));
        assert_eq!(parse_errno("econnrefused"), Ok(libc::ECONNREFUSED));
        assert_eq!(parse_errno("28"), Ok(libc::ENOSPC));
        assert!(parse_errno("EWHAT").is_err());
        assert!(parse_errno("0").is_err());
        assert_eq!(errno_to_name(libc::EIO), "EIO");
        assert_eq!(
            SyscallClass::name_of_nr(libc::SYS_fdatasync),
            Some("fdatasync")
        );
    }

    #[test]
    fn invalid_faults_are_refused() {
        let mut f = fault(SyscallClass::Connect);
        f.path = Some("/tmp".into());
        assert_eq!(
            f.validate(),
            Err(SysSpecError::PathNotApplicable("connect"))
        );
        let mut f = fault(SyscallClass::Write);
        f.trigger.probability = Some(1.5);
        assert!(f.validate().is_err());
        f.trigger.probability = None;
        f.trigger.nth = Some(0);
        assert_eq!(f.validate(), Err(SysSpecError::ZeroCount("nth")));
        let mut f = fault(SyscallClass::Write);
        f.target = Target::Comm("a-very-long-command-name".into());
        assert!(f.validate().is_err());
    }

    #[test]
    fn rule_carries_target_and_trigger() {
        let mut f = fault(SyscallClass::Write);
        f.target = Target::Pid {
            pid: 42,
            children: true,
        };
        f.trigger.nth = Some(3);
        let r = f.to_rule(0, 0).unwrap();
        assert_eq!((r.tgid, r.nth, r.errno), (42, 3, libc::EIO as u32));
        assert_ne!(r.flags & SYS_RULE_CHILDREN, 0);
        assert_eq!(r.classes, CLASS_WRITE);
    }
}
