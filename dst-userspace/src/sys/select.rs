//! Which backend carries a syscall fault, best first (DESIGN.md's table), from what `dst probe`
//! found: cgroup sock hooks for the socket calls they see, BPF LSM, fmod_ret on `security_*`,
//! then (only for processes dst launches) the seccomp supervisor; otherwise the reason none can.

use super::{
    SyscallClass,
    lsm::{fmod_hooks, lsm_hooks},
};
use crate::probe::{Backend, ProbeReport};

/// The probe facts backend selection needs: each mechanism is usable, or the probe's reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SysFacts {
    /// cgroup sock_addr + sock_create hooks.
    pub cgroup_sock: Result<(), String>,
    /// BPF LSM programs load and attach.
    pub lsm: Result<(), String>,
    /// fmod_ret programs load and attach.
    pub fmod_ret: Result<(), String>,
    /// seccomp user notification.
    pub seccomp: Result<(), String>,
}

fn fact(r: &ProbeReport, names: &[&str]) -> Result<(), String> {
    for n in names {
        if !r.has(n) {
            return Err(r
                .mechanisms
                .get(*n)
                .and_then(|c| c.reason.clone())
                .map_or_else(
                    || format!("{n}: not probed"),
                    |reason| format!("{n}: {reason}"),
                ));
        }
    }
    Ok(())
}

impl SysFacts {
    /// The facts from a probe run.
    pub fn from_probe(r: &ProbeReport) -> Self {
        Self {
            cgroup_sock: fact(r, &["cgroup_sock_addr", "cgroup_sock_create"]),
            lsm: fact(r, &["lsm"]),
            fmod_ret: fact(r, &["fmod_ret"]),
            seccomp: fact(r, &["seccomp_user_notif"]),
        }
    }

    /// Every mechanism available (for tests and callers that already know).
    pub fn all() -> Self {
        Self {
            cgroup_sock: Ok(()),
            lsm: Ok(()),
            fmod_ret: Ok(()),
            seccomp: Ok(()),
        }
    }
}

/// Where the fault runs: an already running process, or one dst launches (`dst exec`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// `dst inject syscall` on a running process, cgroup or comm.
    Running,
    /// `dst exec`: dst starts the process and can install a seccomp filter first.
    Launched,
}

/// Whether the cgroup sock hooks see every call of `class` (sendmsg only for unconnected UDP).
fn sock_hooks_cover(class: SyscallClass) -> bool {
    matches!(
        class,
        SyscallClass::Connect | SyscallClass::Bind | SyscallClass::Socket
    )
}

/// The best backend for `class` on `subject`, or every reason the candidates were out.
pub fn choose(class: SyscallClass, subject: Subject, facts: &SysFacts) -> Result<Backend, String> {
    let mut why = Vec::new();
    if sock_hooks_cover(class) {
        match &facts.cgroup_sock {
            Ok(()) => return Ok(Backend::CgroupSock),
            Err(e) => why.push(format!("cgroup sock hooks: {e}")),
        }
    }
    if lsm_hooks(class).is_empty() {
        why.push(format!("BPF LSM: no hook for {}", class.name()));
    } else {
        match &facts.lsm {
            Ok(()) => return Ok(Backend::Lsm),
            Err(e) => why.push(format!("BPF LSM: {e}")),
        }
    }
    if fmod_hooks(class).is_empty() {
        why.push(format!(
            "fmod_ret: no security_* function for {}",
            class.name()
        ));
    } else {
        match &facts.fmod_ret {
            Ok(()) => return Ok(Backend::FmodRet),
            Err(e) => why.push(format!("fmod_ret: {e}")),
        }
    }
    match subject {
        Subject::Launched => match &facts.seccomp {
            Ok(()) => return Ok(Backend::Seccomp),
            Err(e) => why.push(format!("seccomp: {e}")),
        },
        Subject::Running => {
            // Unconnected UDP sendto/sendmsg is all the sock hooks see of `send`; better than
            // nothing for a running process, and the evidence names the backend.
            if class == SyscallClass::Send && facts.cgroup_sock.is_ok() {
                return Ok(Backend::CgroupSock);
            }
            why.push("seccomp: only for processes dst launches (dst exec)".into());
        }
    }
    Err(why.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This project's CI kernel: cgroup hooks and seccomp, LSM and trampolines refused.
    fn ci() -> SysFacts {
        SysFacts {
            lsm: Err("lsm: EPERM".into()),
            fmod_ret: Err("fmod_ret: EPERM".into()),
            ..SysFacts::all()
        }
    }

    #[test]
    fn ci_kernel_refuses_file_faults_on_running_processes_with_the_reasons() {
        let e = choose(SyscallClass::Write, Subject::Running, &ci()).unwrap_err();
        assert!(
            e.contains("BPF LSM: lsm: EPERM") && e.contains("fmod_ret: EPERM"),
            "{e}"
        );
        assert!(e.contains("dst exec"), "{e}");
        assert_eq!(
            choose(SyscallClass::Write, Subject::Launched, &ci()),
            Ok(Backend::Seccomp)
        );
        assert_eq!(
            choose(SyscallClass::Connect, Subject::Running, &ci()),
            Ok(Backend::CgroupSock)
        );
        assert_eq!(
            choose(SyscallClass::Send, Subject::Running, &ci()),
            Ok(Backend::CgroupSock)
        );
        assert_eq!(
            choose(SyscallClass::Send, Subject::Launched, &ci()),
            Ok(Backend::Seccomp)
        );
    }

    #[test]
    fn lsm_kernel_carries_file_faults_of_running_processes() {
        let vm = SysFacts::all();
        for c in [
            SyscallClass::Open,
            SyscallClass::Read,
            SyscallClass::Write,
            SyscallClass::Mmap,
            SyscallClass::Fork,
            SyscallClass::Accept,
            SyscallClass::Recv,
            SyscallClass::Send,
        ] {
            assert_eq!(choose(c, Subject::Running, &vm), Ok(Backend::Lsm), "{c:?}");
            assert_eq!(choose(c, Subject::Launched, &vm), Ok(Backend::Lsm), "{c:?}");
        }
        // The cgroup hooks still come first where they see every call.
        assert_eq!(
            choose(SyscallClass::Connect, Subject::Running, &vm),
            Ok(Backend::CgroupSock)
        );
        // No LSM hook for fsync: seccomp for launched processes, refused otherwise.
        assert_eq!(
            choose(SyscallClass::Fsync, Subject::Launched, &vm),
            Ok(Backend::Seccomp)
        );
        let e = choose(SyscallClass::Fsync, Subject::Running, &vm).unwrap_err();
        assert!(e.contains("no hook for fsync"), "{e}");
    }

    #[test]
    fn fmod_ret_is_the_second_choice() {
        let f = SysFacts {
            lsm: Err("lsm: not in the LSM list".into()),
            ..SysFacts::all()
        };
        assert_eq!(
            choose(SyscallClass::Open, Subject::Running, &f),
            Ok(Backend::FmodRet)
        );
        // No fmod_ret program for accept: seccomp for a launched process.
        assert_eq!(
            choose(SyscallClass::Accept, Subject::Launched, &f),
            Ok(Backend::Seccomp)
        );
        let none = SysFacts {
            cgroup_sock: Err("cgroup_sock_addr: EPERM".into()),
            fmod_ret: Err("fmod_ret: EPERM".into()),
            seccomp: Err("seccomp_user_notif: ENOSYS".into()),
            ..f
        };
        let e = choose(SyscallClass::Connect, Subject::Launched, &none).unwrap_err();
        assert!(
            e.contains("cgroup sock hooks") && e.contains("ENOSYS"),
            "{e}"
        );
    }
}
