//! Syscall faults on processes that are already running (`dst inject syscall`): resolve the
//! target (pid, cgroup, comm), pick the backend that can carry the syscall class for a running
//! process (cgroup sock hooks, BPF LSM, fmod_ret) or refuse with the reason, install the rule
//! and read its evidence.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{
    SysEngine, SysError, SysFault, SyscallClass,
    engine::{ProcessEvent, monotonic_ns},
    launch::FaultEvidence,
    lsm::{LsmPathError, path_rule},
    select::{Subject, SysFacts, choose},
    spec::{SysSpecError, Target, comm_bytes},
};
use crate::{
    cgroup::{Cgroup, CgroupError, cgroup2_mount},
    probe::Backend,
};

/// Errors of injecting into running processes.
#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    /// The fault is invalid.
    #[error(transparent)]
    Spec(#[from] SysSpecError),
    /// The pid does not exist.
    #[error("process {0} does not exist; check the pid with `ps -p {0}`")]
    NoSuchProcess(u32),
    /// The cgroup is not usable.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// No backend can carry this class for a running process here.
    #[error(
        "no backend can fail {class} calls of a running process on this kernel: {reason}; \
         for a process dst launches use `dst exec --syscall {class} ... -- CMD` (seccomp supervisor)"
    )]
    NoBackend {
        /// The class.
        class: &'static str,
        /// Why the kernel backends are out.
        reason: String,
    },
    /// The kernel engine failed.
    #[error(transparent)]
    Engine(#[from] SysError),
    /// The path prefix cannot be matched in the kernel.
    #[error(transparent)]
    Path(#[from] LsmPathError),
}

/// Builds a target from CLI-style options, checking that it exists.
pub fn resolve_target(
    pid: Option<u32>,
    children: bool,
    cgroup: Option<&Path>,
    comm: Option<&str>,
) -> Result<Target, InjectError> {
    if let Some(p) = pid {
        if !Path::new(&format!("/proc/{p}")).exists() {
            return Err(InjectError::NoSuchProcess(p));
        }
        return Ok(Target::Pid { pid: p, children });
    }
    if let Some(c) = cgroup {
        let cg = Cgroup::open(c)?;
        return Ok(Target::Cgroup {
            id: cg.id()?,
            path: cg.path().to_path_buf(),
        });
    }
    let c = comm.unwrap_or_default();
    if c.len() > 15 {
        return Err(SysSpecError::CommTooLong(c.to_string()).into());
    }
    Ok(Target::Comm(c.to_string()))
}

/// The cgroup v2 directory of a running process (`0::/path` in /proc/PID/cgroup).
pub fn cgroup_of(pid: u32) -> Result<PathBuf, InjectError> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map_err(|_| InjectError::NoSuchProcess(pid))?;
    let rel = s
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/")
        .trim_start_matches('/');
    Ok(cgroup2_mount()?.join(rel))
}

/// The backend that carries `class` for a running process, or why none can.
pub fn backend_for_running(class: SyscallClass, facts: &SysFacts) -> Result<Backend, InjectError> {
    choose(class, Subject::Running, facts).map_err(|reason| InjectError::NoBackend {
        class: class.name(),
        reason,
    })
}

/// A live syscall fault on running processes.
pub struct Injection {
    engine: SysEngine,
    slot: u32,
    fault: SysFault,
    backend: Backend,
}

/// Installs `fault` on its (running) target with the kernel backend. Nothing stays installed
/// if any step fails.
pub fn inject_running(fault: &SysFault, facts: &SysFacts) -> Result<Injection, InjectError> {
    let expires = fault
        .duration
        .map_or(0, |d| monotonic_ns() + d.as_nanos() as u64);
    inject_running_window(fault, facts, 0, expires)
}

/// Like [`inject_running`], live from `not_before_ns` (0 = now) until `expires_ns` (0 = until
/// cleared), both CLOCK_MONOTONIC and enforced in the kernel.
pub fn inject_running_window(
    fault: &SysFault,
    facts: &SysFacts,
    not_before_ns: u64,
    expires_ns: u64,
) -> Result<Injection, InjectError> {
    fault.validate()?;
    let backend = backend_for_running(fault.class, facts)?;
    let path = match (&fault.path, backend) {
        (Some(p), Backend::Lsm | Backend::FmodRet) => Some(path_rule(p)?),
        (Some(_), _) => {
            return Err(InjectError::NoBackend {
                class: fault.class.name(),
                reason: format!("{backend} cannot match --path"),
            });
        }
        (None, _) => None,
    };
    let mut engine = SysEngine::load()?;
    let sock_hooks = backend == Backend::CgroupSock;
    let hook_cgroup = match &fault.target {
        Target::Pid { pid, children } => {
            engine.add_pid(*pid, *children)?;
            sock_hooks.then(|| cgroup_of(*pid)).transpose()?
        }
        Target::Cgroup { path, id } => {
            engine.add_cgroup(*id)?;
            Some(path.clone())
        }
        Target::Comm(c) => {
            engine.add_comm(comm_bytes(c))?;
            sock_hooks.then(cgroup2_mount).transpose()?
        }
    };
    match (backend, hook_cgroup) {
        (Backend::Lsm, _) => engine.attach_lsm(fault.class)?,
        (Backend::FmodRet, _) => engine.attach_fmod_ret(fault.class)?,
        (_, Some(cg)) => engine.attach_sock(&cg)?,
        (_, None) => {}
    }
    engine.observe_class(fault.class)?;
    engine.observe_processes()?;
    let slot = engine.apply_with_paths(&[(fault.to_rule(not_before_ns, expires_ns)?, path)])?[0];
    Ok(Injection {
        engine,
        slot,
        fault: fault.clone(),
        backend,
    })
}

/// Evidence of a running injection plus the process events seen so far.
#[derive(Debug, Serialize)]
pub struct InjectionReport {
    /// The fault's evidence.
    #[serde(flatten)]
    pub evidence: FaultEvidence,
    /// Exits and signals of the targeted processes.
    pub events: Vec<ProcessEvent>,
}

impl Injection {
    /// The backend carrying the fault.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Current evidence plus the process events seen since the last call.
    pub fn report(&mut self) -> Result<InjectionReport, InjectError> {
        Ok(InjectionReport {
            evidence: self.evidence()?,
            events: self.engine.drain_events(),
        })
    }

    /// Process exits and signals of the targets since the last call (from the ring buffer).
    pub fn drain_events(&mut self) -> Vec<ProcessEvent> {
        self.engine.drain_events()
    }

    /// Current evidence (counters and what the targets received), leaving events queued.
    pub fn evidence(&self) -> Result<FaultEvidence, InjectError> {
        let counters = self.engine.counters(self.slot)?;
        let names: Vec<&str> = self
            .fault
            .class
            .syscalls()
            .iter()
            .map(|(n, _)| *n)
            .collect();
        let received = self
            .engine
            .observations()?
            .into_iter()
            .filter(|o| names.contains(&o.syscall.as_str()))
            .collect();
        Ok(FaultEvidence {
            fault: self.fault.clone(),
            backend: self.backend,
            in_kernel: true,
            landed: counters.injected > 0,
            counters,
            received,
            observer_missed: self.engine.observer_misses()?,
            injector_missed: self.engine.injector_misses()?,
        })
    }

    /// Removes the fault (the links go when the injection is dropped).
    pub fn clear(&mut self) -> Result<(), InjectError> {
        Ok(self.engine.clear(self.slot)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_classes_of_running_processes_are_refused_with_a_reason() {
        let facts = SysFacts {
            lsm: Err("lsm: EPERM at load".into()),
            fmod_ret: Err("fmod_ret: EPERM at load".into()),
            ..SysFacts::all()
        };
        let e = backend_for_running(SyscallClass::Write, &facts).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("dst exec") && msg.contains("EPERM"), "{msg}");
        assert_eq!(
            backend_for_running(SyscallClass::Connect, &facts).unwrap(),
            Backend::CgroupSock
        );
        assert_eq!(
            backend_for_running(SyscallClass::Write, &SysFacts::all()).unwrap(),
            Backend::Lsm
        );
    }

    #[test]
    fn missing_pids_are_refused() {
        assert!(matches!(
            resolve_target(Some(u32::MAX - 1), false, None, None),
            Err(InjectError::NoSuchProcess(_))
        ));
    }
}
