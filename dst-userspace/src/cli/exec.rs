//! `dst exec [fault flags] -- CMD ARGS`: run a command in a fresh cgroup with a syscall fault
//! that follows it and its children; print the evidence (on stderr, so the command's stdout
//! stays its own) and exit with the command's status.

use std::{
    ffi::OsString,
    process::ExitCode,
    sync::atomic::{AtomicI32, Ordering},
};

use dst::sys::{LaunchError, Target, launch::launch_with};

use super::inject::syscall::FaultArgs;
use crate::cli::{EXIT_ENVIRONMENT, EXIT_USAGE};

/// Arguments of `dst exec`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub fault: FaultArgs,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    pub command: Vec<OsString>,
}

static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// SIGINT/SIGTERM/SIGHUP go to the command, so dst still reports and cleans up after it ends.
fn forward_signals(pid: u32) {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    CHILD.store(pid as i32, Ordering::SeqCst);
    let act = SigAction::new(
        SigHandler::Handler(forward),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only calls kill on a pid stored in an atomic.
        let _ = unsafe { sigaction(s, &act) };
    }
}

pub fn run(args: Args, json: bool) -> anyhow::Result<ExitCode> {
    let placeholder = Target::Pid {
        pid: 0,
        children: true,
    };
    let faults = match args.fault.fault(placeholder) {
        Ok(f) => f.into_iter().collect::<Vec<_>>(),
        Err(e) => {
            eprintln!("dst exec: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let mut cmd = std::process::Command::new(&args.command[0]);
    cmd.args(&args.command[1..]);
    // The backends come from what this kernel really allows (LSM before seccomp).
    let facts = if faults.is_empty() {
        dst::sys::launch::facts_without_probe()
    } else {
        dst::sys::select::SysFacts::from_probe(&dst::probe::run())
    };
    let run = match launch_with(cmd, &faults, &facts) {
        Ok(r) => r,
        Err(e @ (LaunchError::Spec(_) | LaunchError::Path(_))) => {
            eprintln!("dst exec: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
        Err(e) => {
            eprintln!("dst exec: {e}");
            return Ok(ExitCode::from(EXIT_ENVIRONMENT));
        }
    };
    forward_signals(run.pid());
    let report = run.wait()?;
    if json {
        eprintln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for f in &report.faults {
            let c = &f.counters;
            eprintln!(
                "dst: {} {} via {}{}: matched {} injected {} passed {} landed {}",
                f.fault.class.name(),
                dst::sys::spec::errno_to_name(f.fault.errno),
                f.backend,
                match (f.backend, f.in_kernel) {
                    // The filter's own SECCOMP_RET_ERRNO: no notification, no supervisor.
                    (dst::probe::Backend::Seccomp, true) => " (errno in the filter)",
                    _ => "",
                },
                c.matched,
                c.injected,
                c.passed,
                f.landed
            );
            for o in f.received.iter().filter(|o| o.ret != 0) {
                eprintln!(
                    "dst:   pid {} received {} from {} {} times",
                    o.pid, o.result, o.syscall, o.count
                );
            }
            if f.observer_missed > 0 {
                eprintln!(
                    "dst:   the exit observer may have missed up to {} calls (the kernel skips \
                     it while it is already running on a CPU, e.g. preempted on 7.x kernels): \
                     what was received may be undercounted by that many",
                    f.observer_missed
                );
            }
            if f.injector_missed > 0 {
                eprintln!(
                    "dst:   the kernel skipped the fault's hook programs {} times (a task was \
                     preempted inside them on that CPU): up to that many calls ran without \
                     being matched or failed",
                    f.injector_missed
                );
            }
        }
        for e in &report.events {
            eprintln!("dst: {}", serde_json::to_string(e)?);
        }
    }
    let code = match (report.exit_code, report.signal) {
        (Some(c), _) => c as u8,
        (None, Some(s)) => 128u8.wrapping_add(s as u8),
        _ => 1,
    };
    Ok(ExitCode::from(code))
}
