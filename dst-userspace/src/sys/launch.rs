//! `dst exec`: launch a command in a fresh cgroup with syscall faults that follow it and its
//! children. Each fault goes to the best backend that can carry it for a launched process
//! (`select::choose`): the cgroup sock hooks in the kernel for connect/bind/socket, BPF LSM,
//! fmod_ret, else the seccomp supervisor. The kernel observers watch the cgroup, so the
//! evidence says what the process received.

use std::{
    io::Write as _,
    os::{
        fd::{AsRawFd as _, OwnedFd},
        unix::process::CommandExt as _,
    },
    process::{Child, Command, ExitStatus},
    time::Duration,
};

use dst_common::sys::TARGET_CGROUP;
use serde::Serialize;

use super::{
    SysEngine, SysError, SysEvidenceCounters, SysFault, SyscallClass,
    engine::{Observation, ProcessEvent, monotonic_ns},
    lsm::{LsmPathError, path_rule},
    seccomp::{self, SupervisedRule, Supervisor},
    select::{Subject, SysFacts, choose},
    spec::{SysSpecError, Target},
};
use crate::{cgroup::Cgroup, probe::Backend};

/// Errors of launching a faulted command.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// A fault is invalid.
    #[error(transparent)]
    Spec(#[from] SysSpecError),
    /// The kernel engine failed.
    #[error(transparent)]
    Engine(#[from] SysError),
    /// cgroup handling failed.
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::CgroupError),
    /// The seccomp supervisor failed.
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    /// The command could not be started.
    #[error("starting {cmd}: {source}")]
    Spawn {
        /// The program.
        cmd: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Creating the hand-over socket pair failed.
    #[error("creating the seccomp hand-over socket: {0}")]
    Socket(#[source] std::io::Error),
    /// No backend can carry a fault.
    #[error("no backend can fail {class} calls of a launched process here: {reason}")]
    NoBackend {
        /// The class.
        class: &'static str,
        /// Why each candidate is out.
        reason: String,
    },
    /// A path prefix cannot be matched in the kernel.
    #[error(transparent)]
    Path(#[from] LsmPathError),
}

/// Evidence of one fault.
#[derive(Clone, Debug, Serialize)]
pub struct FaultEvidence {
    /// The fault as given.
    pub fault: SysFault,
    /// The backend that carried it.
    pub backend: Backend,
    /// Decided in the kernel (cgroup sock hook, or a seccomp filter returning the errno
    /// itself for an unconditional fault) rather than by the user-notification supervisor.
    pub in_kernel: bool,
    /// Its counters.
    pub counters: SysEvidenceCounters,
    /// What the launched processes received from this fault's syscalls, per pid and result.
    pub received: Vec<Observation>,
    /// At most how many calls the syscall-exit observer missed (see
    /// [`super::SysEngine::observer_misses`]): `received` may undercount by up to this many.
    /// 0 on kernels before 6.7, which do not count skips.
    pub observer_missed: u64,
    /// At most how many calls the LSM or fmod_ret programs did not evaluate (see
    /// [`super::SysEngine::injector_misses`]): up to this many calls the fault should have
    /// matched ran untouched and uncounted. 0 for the other backends.
    pub injector_missed: u64,
    /// `injected > 0`.
    pub landed: bool,
}

/// The outcome of a launched command.
#[derive(Debug, Serialize)]
pub struct LaunchReport {
    /// The launched process.
    pub pid: u32,
    /// Its exit code, if it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// Per-fault evidence, in the order given.
    pub faults: Vec<FaultEvidence>,
    /// Exits and signals of the launched processes, from the kernel.
    pub events: Vec<ProcessEvent>,
}

enum Carrier {
    /// A kernel rule slot (cgroup sock hooks, BPF LSM or fmod_ret).
    Kernel(u32, Backend),
    /// A rule of the user-notification supervisor.
    Seccomp(usize),
    /// Unconditional: the filter itself answers `SECCOMP_RET_ERRNO` in the kernel.
    SeccompErrno,
}

/// Whether a fault fails every matched call, so the seccomp filter can fail it in the kernel
/// with `SECCOMP_RET_ERRNO` instead of asking the supervisor (no trigger, path or expiry).
pub fn unconditional(f: &SysFault) -> bool {
    f.trigger.probability.is_none_or(|p| p >= 1.0)
        && f.trigger.nth.is_none()
        && f.trigger.after.is_none()
        && f.trigger.max.is_none()
        && f.path.is_none()
        && f.duration.is_none()
}

/// A command running under faults.
pub struct Launched {
    child: Child,
    cgroup: Cgroup,
    engine: SysEngine,
    supervisor: Option<Supervisor>,
    faults: Vec<(SysFault, Carrier)>,
    events: Vec<ProcessEvent>,
}

/// The backend that carries `class` for a process dst launches, given what the kernel allows.
/// `send` never goes to the cgroup hooks: they only see unconnected UDP, seccomp sees every
/// send call.
pub fn backend_for_launched(class: SyscallClass, facts: &SysFacts) -> Result<Backend, LaunchError> {
    choose(class, Subject::Launched, facts).map_err(|reason| LaunchError::NoBackend {
        class: class.name(),
        reason,
    })
}

/// What `launch` assumes without a probe: the cgroup sock hooks and seccomp, no LSM or
/// trampolines (the CI kernel's shape). `dst exec` passes the probed facts instead.
pub fn facts_without_probe() -> SysFacts {
    SysFacts {
        lsm: Err("lsm: not probed".into()),
        fmod_ret: Err("fmod_ret: not probed".into()),
        ..SysFacts::all()
    }
}

/// Starts `cmd` in a fresh cgroup under `faults` with the backends of
/// [`facts_without_probe`]; see [`launch_with`].
pub fn launch(cmd: Command, faults: &[SysFault]) -> Result<Launched, LaunchError> {
    launch_with(cmd, faults, &facts_without_probe())
}

/// Starts `cmd` in a fresh cgroup under `faults` (their targets are replaced by the launched
/// process and its children), each on the best backend `facts` allow. Nothing runs if any
/// fault is invalid or has no backend.
pub fn launch_with(
    mut cmd: Command,
    faults: &[SysFault],
    facts: &SysFacts,
) -> Result<Launched, LaunchError> {
    let mut backends = Vec::new();
    for f in faults {
        f.validate()?;
        backends.push(backend_for_launched(f.class, facts)?);
    }
    let cgroup = Cgroup::create(&format!(
        "dst-exec-{}-{}",
        std::process::id(),
        monotonic_ns() % 1_000_000_000
    ))?;
    let cg_id = cgroup.id()?;
    let mut engine = SysEngine::load()?;
    engine.add_cgroup(cg_id)?;
    engine.observe_processes()?;
    let mut kernel_rules = Vec::new();
    let mut supervised = Vec::new();
    // Seccomp filter entries: (syscall nr, action), first fault wins for a syscall.
    let mut calls: Vec<(i64, u32)> = Vec::new();
    let mut carriers = Vec::new();
    let mut resolved = Vec::new();
    for (f, backend) in faults.iter().zip(backends) {
        engine.observe_class(f.class)?;
        let expires = f
            .duration
            .map_or(0, |d| monotonic_ns() + d.as_nanos() as u64);
        let mut fault = f.clone();
        fault.target = Target::Cgroup {
            path: cgroup.path().to_path_buf(),
            id: cg_id,
        };
        let mut rule = fault.to_rule(0, expires)?;
        rule.target = TARGET_CGROUP;
        match backend {
            Backend::CgroupSock | Backend::Lsm | Backend::FmodRet => {
                let path = match (&f.path, backend) {
                    (Some(p), Backend::Lsm | Backend::FmodRet) => Some(path_rule(p)?),
                    _ => None,
                };
                match backend {
                    Backend::Lsm => engine.attach_lsm(f.class)?,
                    Backend::FmodRet => engine.attach_fmod_ret(f.class)?,
                    _ => engine.attach_sock(cgroup.path())?,
                }
                carriers.push(Some((kernel_rules.len(), backend)));
                kernel_rules.push((rule, path));
            }
            _ => {
                let action = if unconditional(f) {
                    carriers.push(Some((usize::MAX, Backend::Seccomp)));
                    libc::SECCOMP_RET_ERRNO | (f.errno as u32 & libc::SECCOMP_RET_DATA)
                } else {
                    carriers.push(None);
                    supervised.push(SupervisedRule::new(rule, f.path.clone()));
                    libc::SECCOMP_RET_USER_NOTIF
                };
                for (_, nr) in f.class.syscalls() {
                    if !calls.iter().any(|(n, _)| n == nr) {
                        calls.push((*nr, action));
                    }
                }
            }
        }
        resolved.push(fault);
    }
    let slots = engine.apply_with_paths(&kernel_rules)?;
    let mut seccomp_i = 0;
    let faults: Vec<(SysFault, Carrier)> = resolved
        .iter()
        .zip(carriers)
        .map(|(f, c)| {
            let carrier = match c {
                Some((usize::MAX, _)) => Carrier::SeccompErrno,
                Some((k, backend)) => Carrier::Kernel(slots[k], backend),
                None => {
                    seccomp_i += 1;
                    Carrier::Seccomp(seccomp_i - 1)
                }
            };
            (f.clone(), carrier)
        })
        .collect();

    let procs = std::fs::OpenOptions::new()
        .write(true)
        .open(cgroup.path().join("cgroup.procs"))
        .map_err(|source| LaunchError::Spawn {
            cmd: "opening cgroup.procs".into(),
            source,
        })?;
    let procs_fd = procs.as_raw_fd();
    let mut supervisor = None;
    let mut child_sock: Option<OwnedFd> = None;
    let mut filter = Vec::new();
    if !calls.is_empty() {
        let (parent, child) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| LaunchError::Socket(e.into()))?;
        filter = seccomp::build_filter(&calls, child.as_raw_fd());
        child_sock = Some(child);
        supervisor = Some(Supervisor::start(parent, supervised));
    }
    let sock_fd = child_sock.as_ref().map(|s| s.as_raw_fd());
    // SAFETY: the closure only makes async-signal-safe system calls (prctl, write, seccomp,
    // sendmsg, close) on memory prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            // The command dies with dst: a seccomp filter whose supervisor is gone would fail
            // every notified call with ENOSYS, and nothing may outlive its owner.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::write(procs_fd, b"0".as_ptr().cast(), 1) != 1 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(sock) = sock_fd {
                seccomp::install_in_child(&filter, sock)?;
            }
            Ok(())
        });
    }
    let program = cmd.get_program().to_string_lossy().into_owned();
    let child = cmd.spawn().map_err(|source| LaunchError::Spawn {
        cmd: program,
        source,
    })?;
    drop(child_sock);
    drop(procs);
    engine.add_pid(child.id(), true)?;
    Ok(Launched {
        child,
        cgroup,
        engine,
        supervisor,
        faults,
        events: Vec::new(),
    })
}

impl Launched {
    /// The launched process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child (for its stdio pipes).
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// The cgroup the command runs in.
    pub fn cgroup(&self) -> &Cgroup {
        &self.cgroup
    }

    /// Waits for the command to end, then collects the evidence. The cgroup (and anything
    /// left in it) is removed when the report has been built.
    pub fn wait(mut self) -> Result<LaunchReport, LaunchError> {
        let status = self.child.wait().map_err(|source| LaunchError::Spawn {
            cmd: "waiting for the command".into(),
            source,
        })?;
        self.report(status)
    }

    fn report(&mut self, status: ExitStatus) -> Result<LaunchReport, LaunchError> {
        use std::os::unix::process::ExitStatusExt as _;
        // Give the exit tracepoint's ring-buffer record a moment to become visible.
        std::thread::sleep(Duration::from_millis(20));
        self.events.extend(self.engine.drain_events());
        if let Some(s) = self.supervisor.as_mut() {
            s.stop()?;
        }
        let observations = self.engine.observations()?;
        let observer_missed = self.engine.observer_misses()?;
        let injector_missed = self.engine.injector_misses()?;
        let mut out = Vec::new();
        for (f, carrier) in &self.faults {
            let names: Vec<&str> = f.class.syscalls().iter().map(|(n, _)| *n).collect();
            let received: Vec<Observation> = observations
                .iter()
                .filter(|o| names.contains(&o.syscall.as_str()))
                .cloned()
                .collect();
            let (backend, counters) = match carrier {
                Carrier::Kernel(slot, backend) => (*backend, self.engine.counters(*slot)?),
                Carrier::Seccomp(i) => (
                    Backend::Seccomp,
                    self.supervisor
                        .as_ref()
                        .map(|s| s.counters(*i).into())
                        .unwrap_or_default(),
                ),
                Carrier::SeccompErrno => {
                    // The filter fails every call of the class after exec, so every call is
                    // an injection; the exit observer counted them. (Successful calls it saw
                    // were made before the filter was installed, e.g. the cgroup move.)
                    let injected: u64 = received
                        .iter()
                        .filter(|o| o.ret == -i64::from(f.errno))
                        .map(|o| o.count)
                        .sum();
                    (
                        Backend::Seccomp,
                        SysEvidenceCounters {
                            matched: injected,
                            injected,
                            ..Default::default()
                        },
                    )
                }
            };
            out.push(FaultEvidence {
                fault: f.clone(),
                backend,
                in_kernel: !matches!(carrier, Carrier::Seccomp(_)),
                landed: counters.injected > 0,
                counters,
                received,
                observer_missed,
                injector_missed,
            });
        }
        let _ = std::io::stdout().flush();
        Ok(LaunchReport {
            pid: self.child.id(),
            exit_code: status.code(),
            signal: status.signal(),
            faults: out,
            events: std::mem::take(&mut self.events),
        })
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
