//! `dst inject syscall`: fail a syscall class of running processes (pid, cgroup or comm) with
//! an errno, for a duration or until interrupted, then print the evidence.

use std::{
    path::PathBuf,
    process::ExitCode,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use dst::sys::{
    SysFault, SyscallClass, Trigger,
    inject::{InjectError, inject_running, resolve_target},
    spec::parse_errno,
};

use crate::cli::{EXIT_ENVIRONMENT, EXIT_USAGE};

/// Which syscalls fail, with which errno and when (shared with `dst exec`).
#[derive(Debug, Clone, clap::Args)]
pub struct FaultArgs {
    /// Syscall to fail: connect, accept, bind, sendmsg, sendto, recvmsg, socket, open, openat,
    /// read, write, fsync, fdatasync, mmap, fork, clone (a name selects its whole class).
    #[arg(long, value_parser = parse_class)]
    pub syscall: Option<SyscallClass>,
    /// Errno by name (EIO, ENOSPC, ECONNREFUSED …) or number.
    #[arg(long, value_parser = parse_errno_arg, requires = "syscall")]
    pub errno: Option<i32>,
    /// Probability that a matched call fails (seeded), 0..1.
    #[arg(long)]
    pub prob: Option<f64>,
    /// Fail only the Nth matched call (1-based).
    #[arg(long)]
    pub nth: Option<u64>,
    /// Fail only calls after the first N matched ones.
    #[arg(long)]
    pub after: Option<u64>,
    /// Fail at most N calls.
    #[arg(long)]
    pub max: Option<u64>,
    /// File syscalls only: fail only calls on paths starting with this prefix.
    #[arg(long)]
    pub path: Option<PathBuf>,
    /// Seed of the probability stream.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// How long the fault lives, e.g. 10s (enforced by the kernel / supervisor).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
}

fn parse_class(s: &str) -> Result<SyscallClass, String> {
    SyscallClass::parse(s).map_err(|e| e.to_string())
}

fn parse_errno_arg(s: &str) -> Result<i32, String> {
    parse_errno(s).map_err(|e| e.to_string())
}

/// Parses `50ms`, `10s`, `2m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime_serde::re::humantime::parse_duration(s).map_err(|e| e.to_string())
}

impl FaultArgs {
    /// The fault for `target`, or `None` without `--syscall`. Errors are usage errors.
    pub fn fault(&self, target: dst::sys::Target) -> Result<Option<SysFault>, String> {
        let Some(class) = self.syscall else {
            return Ok(None);
        };
        let errno = self
            .errno
            .ok_or_else(|| "--errno is required with --syscall".to_string())?;
        let f = SysFault {
            target,
            class,
            errno,
            trigger: Trigger {
                probability: self.prob,
                nth: self.nth,
                after: self.after,
                max: self.max,
                seed: self.seed,
            },
            path: self.path.clone(),
            duration: self.duration,
        };
        f.validate().map_err(|e| e.to_string())?;
        Ok(Some(f))
    }
}

/// Arguments of `dst inject syscall`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true)
    .args(["pid", "cgroup", "comm", "pod", "container"])))]
pub struct Args {
    /// Target process id.
    #[arg(long)]
    pub pid: Option<u32>,
    /// With --pid: also the children it forks from now on.
    #[arg(long, requires = "pid")]
    pub children: bool,
    /// Target cgroup v2 directory (absolute, or relative to the cgroup2 mount).
    #[arg(long)]
    pub cgroup: Option<PathBuf>,
    /// Target command name (comm, at most 15 bytes).
    #[arg(long)]
    pub comm: Option<String>,
    /// Target Kubernetes pod (UID, NAMESPACE/NAME or NAMESPACE/LABEL=VALUE): its cgroup.
    #[arg(long)]
    pub pod: Option<String>,
    /// Target container id (containerd, CRI-O, docker, podman): its cgroup.
    #[arg(long)]
    pub container: Option<String>,
    #[command(flatten)]
    pub fault: FaultArgs,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Ends the wait on SIGINT/SIGTERM so the evidence still prints.
pub fn stop_on_interrupt() -> &'static AtomicBool {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let act = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for s in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic.
        let _ = unsafe { sigaction(s, &act) };
    }
    &STOP
}

pub fn run(mut args: Args, json: bool) -> anyhow::Result<ExitCode> {
    if args.fault.syscall.is_none() {
        eprintln!("dst inject syscall: --syscall is required");
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    if args.pod.is_some() || args.container.is_some() {
        let resolved = dst::k8s::Resolver::host()
            .map_err(dst::k8s::LookupError::from)
            .and_then(|r| {
                dst::k8s::lookup_blocking(&r, args.pod.as_deref(), args.container.as_deref())
            });
        // Syscall rules match one cgroup exactly: a pod means its workload container.
        let resolved = resolved.and_then(|r| Ok((r.workload_cgroup()?, r)));
        match resolved {
            Ok((cgroup, r)) => {
                eprintln!(
                    "dst: {} resolved to cgroup {} ({:?}, {} processes)",
                    args.pod
                        .as_deref()
                        .or(args.container.as_deref())
                        .unwrap_or(""),
                    cgroup.display(),
                    r.layout,
                    r.pids.len()
                );
                args.cgroup = Some(cgroup);
            }
            Err(e) => {
                eprintln!("dst inject syscall: {e}");
                return Ok(ExitCode::from(EXIT_ENVIRONMENT));
            }
        }
    }
    let target = match resolve_target(
        args.pid,
        args.children,
        args.cgroup.as_deref(),
        args.comm.as_deref(),
    ) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("dst inject syscall: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let fault = match args.fault.fault(target) {
        Ok(Some(f)) => f,
        Ok(None) => return Ok(ExitCode::from(EXIT_USAGE)),
        Err(e) => {
            eprintln!("dst inject syscall: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let facts = dst::sys::select::SysFacts::from_probe(&dst::probe::run());
    let mut inj = match inject_running(&fault, &facts) {
        Ok(i) => i,
        Err(e @ (InjectError::NoBackend { .. } | InjectError::Engine(_))) => {
            eprintln!("dst inject syscall: {e}");
            return Ok(ExitCode::from(EXIT_ENVIRONMENT));
        }
        Err(e) => {
            eprintln!("dst inject syscall: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let stop = stop_on_interrupt();
    {
        // Always on stderr, also with --json: callers wait for this line before starting load.
        eprintln!(
            "dst: installed: {} of {:?} fail with errno {} ({}); {}",
            fault.class.name(),
            fault.target,
            fault.errno,
            dst::sys::spec::errno_to_name(fault.errno),
            fault
                .duration
                .map_or("until Ctrl-C".to_string(), |d| format!("for {d:?}"))
        );
    }
    let start = Instant::now();
    while !stop.load(Ordering::SeqCst) && fault.duration.is_none_or(|d| start.elapsed() < d) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let report = inj.report()?;
    inj.clear()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let c = &report.evidence.counters;
        println!(
            "backend {}: matched {} injected {} passed {} expired {} landed {}",
            report.evidence.backend,
            c.matched,
            c.injected,
            c.passed,
            c.expired,
            report.evidence.landed
        );
        for o in &report.evidence.received {
            println!(
                "  pid {} received {} from {} {} times",
                o.pid, o.result, o.syscall, o.count
            );
        }
        if report.evidence.observer_missed > 0 {
            println!(
                "  the exit observer may have missed up to {} calls (the kernel skips it while \
                 it is already running on a CPU, e.g. preempted on 7.x kernels): what was \
                 received may be undercounted by that many",
                report.evidence.observer_missed
            );
        }
        if report.evidence.injector_missed > 0 {
            println!(
                "  the kernel skipped the fault's hook programs {} times (a task was preempted \
                 inside them on that CPU): up to that many calls ran without being matched or \
                 failed",
                report.evidence.injector_missed
            );
        }
        for e in &report.events {
            println!("  {}", serde_json::to_string(e)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
