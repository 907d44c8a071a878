//! Process faults: kill (SIGKILL, for crash-recovery tests) and pause (SIGSTOP, then SIGCONT
//! after a duration), with evidence from the kernel: the signals as generated (with their
//! kernel timestamps) and how the process ended (ring buffer).
//!
//! A pause must not outlive dst: before stopping anything, a forked "resumer" process waits on
//! a pipe from dst with the pause's deadline; if dst dies (the pipe closes) or the deadline
//! passes first, the resumer sends SIGCONT itself.

use std::{
    os::fd::{AsRawFd as _, OwnedFd},
    path::Path,
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use serde::Serialize;

use super::{
    SysEngine, SysError,
    engine::{ProcessEvent, monotonic_ns},
};
use crate::cgroup::{Cgroup, CgroupError};

/// Errors of process faults.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The pid does not exist.
    #[error("process {0} does not exist; check the pid with `ps -p {0}`")]
    NoSuchProcess(u32),
    /// The cgroup has no processes.
    #[error("cgroup {0} has no processes to act on")]
    EmptyCgroup(String),
    /// The cgroup could not be read.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// The kernel engine failed.
    #[error(transparent)]
    Engine(#[from] SysError),
    /// A signal could not be sent.
    #[error("sending {signal} to {pid}: {source}")]
    Signal {
        /// The signal.
        signal: Signal,
        /// The process.
        pid: u32,
        /// The error.
        #[source]
        source: nix::Error,
    },
    /// The armed syscall never came.
    #[error("process {pid} did not call {class} within {within:?}; nothing was done")]
    NotTriggered {
        /// The process.
        pid: u32,
        /// The syscall class.
        class: &'static str,
        /// How long dst waited.
        within: Duration,
    },
    /// The resumer safety process could not be started.
    #[error("starting the resumer that guarantees SIGCONT if dst dies: {0}")]
    Resumer(#[source] nix::Error),
}

/// What to do to the processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessAction {
    /// SIGKILL.
    Kill,
    /// SIGSTOP, then SIGCONT after the duration.
    Pause(#[serde(with = "humantime_serde")] Duration),
}

/// Evidence of a process fault.
#[derive(Clone, Debug, Serialize)]
pub struct ProcessEvidence {
    /// The action.
    pub action: ProcessAction,
    /// The processes acted on.
    pub pids: Vec<u32>,
    /// In-kernel trigger: the syscall class at whose entry the kernel sent the signal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_syscall: Option<&'static str>,
    /// In-kernel trigger: CLOCK_MONOTONIC ns when the kernel sent the signal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_signal_ns: Option<u64>,
    /// CLOCK_MONOTONIC ns when every process was seen stopped (`/proc` state `T`).
    pub stopped_at_ns: Option<u64>,
    /// CLOCK_MONOTONIC ns when every process was seen running again.
    pub resumed_at_ns: Option<u64>,
    /// Kernel events: signals generated for the processes and their exits.
    pub events: Vec<ProcessEvent>,
    /// Every process was seen stopped (pause) or its exit was observed (kill).
    pub landed: bool,
}

/// The processes a target names: one pid (checked to exist) or every process of a cgroup.
pub fn resolve_pids(pid: Option<u32>, cgroup: Option<&Path>) -> Result<Vec<u32>, ProcessError> {
    if let Some(p) = pid {
        if !Path::new(&format!("/proc/{p}")).exists() {
            return Err(ProcessError::NoSuchProcess(p));
        }
        return Ok(vec![p]);
    }
    if let Some(c) = cgroup {
        let cg = Cgroup::open(c)?;
        let pids = cg.pids()?;
        if pids.is_empty() {
            return Err(ProcessError::EmptyCgroup(c.display().to_string()));
        }
        return Ok(pids);
    }
    Ok(Vec::new())
}

/// The scheduler state letter of a process (`R`, `S`, `T` …), `None` once it is gone.
pub fn state(pid: u32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The comm field is in parentheses and may contain spaces: the state follows the last ')'.
    s.rsplit_once(')')?.1.trim_start().chars().next()
}

fn wait_until(deadline: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    ok()
}

fn signal_all(pids: &[u32], signal: Signal) -> Result<(), ProcessError> {
    for &pid in pids {
        kill(Pid::from_raw(pid as i32), signal).map_err(|source| ProcessError::Signal {
            signal,
            pid,
            source,
        })?;
    }
    Ok(())
}

/// Applies `action` to `pids`, with `engine` observing them; blocks for a pause's duration.
pub fn inject(
    engine: &mut SysEngine,
    pids: &[u32],
    action: ProcessAction,
) -> Result<ProcessEvidence, ProcessError> {
    engine.observe_processes()?;
    for &p in pids {
        engine.add_pid(p, false)?;
    }
    let mut ev = ProcessEvidence {
        action,
        pids: pids.to_vec(),
        at_syscall: None,
        kernel_signal_ns: None,
        stopped_at_ns: None,
        resumed_at_ns: None,
        events: Vec::new(),
        landed: false,
    };
    match action {
        ProcessAction::Kill => {
            signal_all(pids, Signal::SIGKILL)?;
            let mut exited = Vec::new();
            wait_until(Duration::from_secs(2), || {
                for e in engine.drain_events() {
                    if let ProcessEvent::Exit { pid, .. } = &e {
                        exited.push(*pid);
                    }
                    ev.events.push(e);
                }
                pids.iter().all(|p| exited.contains(p))
            });
            ev.landed = pids.iter().all(|p| exited.contains(p));
        }
        ProcessAction::Pause(d) => {
            let resumer = Resumer::start(pids, d + Duration::from_secs(1))?;
            signal_all(pids, Signal::SIGSTOP)?;
            let stopped = wait_until(Duration::from_secs(1), || {
                pids.iter().all(|&p| matches!(state(p), Some('T') | None))
            });
            let t0 = monotonic_ns();
            ev.stopped_at_ns = stopped.then_some(t0);
            std::thread::sleep(d);
            signal_all(pids, Signal::SIGCONT)?;
            resumer.done();
            let resumed = wait_until(Duration::from_secs(1), || {
                pids.iter().all(|&p| state(p) != Some('T'))
            });
            ev.resumed_at_ns = resumed.then(monotonic_ns);
            std::thread::sleep(Duration::from_millis(10));
            ev.events.extend(engine.drain_events());
            ev.landed = stopped && resumed;
        }
    }
    Ok(ev)
}

/// Like [`inject`] for one process, but the kernel sends the signal itself the first time the
/// process enters a syscall of `class` (`bpf_send_signal`), waiting up to `within` for it.
/// For a pause, dst then holds the process stopped for the duration and resumes it.
/// `on_armed` runs once the kernel program is armed (tests use it to start the workload).
pub fn inject_at_syscall(
    engine: &mut SysEngine,
    pid: u32,
    action: ProcessAction,
    class: super::SyscallClass,
    within: Duration,
    on_armed: &mut dyn FnMut(),
) -> Result<ProcessEvidence, ProcessError> {
    engine.observe_processes()?;
    engine.add_pid(pid, false)?;
    let (signal, resumer) = match action {
        ProcessAction::Kill => (libc::SIGKILL, None),
        ProcessAction::Pause(d) => (
            libc::SIGSTOP,
            Some(Resumer::start(&[pid], within + d + Duration::from_secs(1))?),
        ),
    };
    engine.arm_signal(pid, signal, class)?;
    on_armed();
    let mut fired = None;
    wait_until(within, || {
        fired = engine.signal_fired().ok().flatten();
        fired.is_some()
    });
    let Some(fired_ns) = fired else {
        engine.arm_signal(0, 0, class)?;
        return Err(ProcessError::NotTriggered {
            pid,
            class: class.name(),
            within,
        });
    };
    let mut ev = ProcessEvidence {
        action,
        pids: vec![pid],
        at_syscall: Some(class.name()),
        kernel_signal_ns: Some(fired_ns),
        stopped_at_ns: None,
        resumed_at_ns: None,
        events: Vec::new(),
        landed: false,
    };
    match action {
        ProcessAction::Kill => {
            let mut exited = false;
            wait_until(Duration::from_secs(2), || {
                for e in engine.drain_events() {
                    exited |= matches!(&e, ProcessEvent::Exit { pid: p, .. } if *p == pid);
                    ev.events.push(e);
                }
                exited
            });
            ev.landed = exited;
        }
        ProcessAction::Pause(d) => {
            let stopped = wait_until(Duration::from_secs(1), || {
                matches!(state(pid), Some('T') | None)
            });
            ev.stopped_at_ns = stopped.then(monotonic_ns);
            std::thread::sleep(d);
            signal_all(&[pid], Signal::SIGCONT)?;
            if let Some(r) = resumer {
                r.done();
            }
            let resumed = wait_until(Duration::from_secs(1), || state(pid) != Some('T'));
            ev.resumed_at_ns = resumed.then(monotonic_ns);
            std::thread::sleep(Duration::from_millis(10));
            ev.events.extend(engine.drain_events());
            ev.landed = stopped && resumed;
        }
    }
    Ok(ev)
}

/// A forked process that sends SIGCONT to the paused processes if dst dies or the deadline
/// passes before dst says the pause ended.
struct Resumer {
    write_end: Option<OwnedFd>,
    pid: Pid,
}

impl Resumer {
    fn start(pids: &[u32], deadline: Duration) -> Result<Self, ProcessError> {
        let (r, w) = nix::unistd::pipe().map_err(ProcessError::Resumer)?;
        let targets: Vec<i32> = pids.iter().map(|&p| p as i32).collect();
        let timeout_ms = deadline.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: the child only calls async-signal-safe functions (close, poll, read, kill,
        // _exit) on memory prepared before the fork.
        match unsafe { nix::unistd::fork() }.map_err(ProcessError::Resumer)? {
            nix::unistd::ForkResult::Child => unsafe {
                libc::close(w.as_raw_fd());
                let mut pfd = libc::pollfd {
                    fd: r.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                let n = libc::poll(&mut pfd, 1, timeout_ms);
                let mut b = 0u8;
                let said_done =
                    n == 1 && libc::read(r.as_raw_fd(), (&raw mut b).cast(), 1) == 1 && b == b'd';
                if !said_done {
                    for &t in &targets {
                        libc::kill(t, libc::SIGCONT);
                    }
                }
                libc::_exit(0);
            },
            nix::unistd::ForkResult::Parent { child } => {
                drop(r);
                Ok(Self {
                    write_end: Some(w),
                    pid: child,
                })
            }
        }
    }

    fn done(mut self) {
        if let Some(w) = self.write_end.take() {
            let _ = nix::unistd::write(&w, b"d");
        }
    }
}

impl Drop for Resumer {
    fn drop(&mut self) {
        // Closing the pipe without "done" makes the resumer send SIGCONT (error paths).
        self.write_end.take();
        let _ = nix::sys::wait::waitpid(self.pid, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_state_and_refuses_missing_pids() {
        assert!(matches!(state(std::process::id()), Some('R' | 'S')));
        assert!(matches!(
            resolve_pids(Some(u32::MAX - 1), None),
            Err(ProcessError::NoSuchProcess(_))
        ));
    }
}
