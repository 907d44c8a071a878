//! `dst inject process`: kill or pause running processes, with kernel evidence.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use dst::sys::{
    SysEngine, SyscallClass,
    process::{ProcessAction, ProcessError, inject, inject_at_syscall, resolve_pids},
};

use super::syscall::parse_duration;
use crate::cli::{EXIT_ENVIRONMENT, EXIT_USAGE};

/// Arguments of `dst inject process`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["pid", "cgroup"])))]
#[command(group(clap::ArgGroup::new("action").required(true).args(["kill", "pause"])))]
pub struct Args {
    /// Target process id.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Every process of this cgroup v2 directory.
    #[arg(long)]
    pub cgroup: Option<PathBuf>,
    /// SIGKILL the processes (crash-recovery testing).
    #[arg(long)]
    pub kill: bool,
    /// SIGSTOP the processes for this long (e.g. 5s), then SIGCONT.
    #[arg(long, value_parser = parse_duration)]
    pub pause: Option<Duration>,
    /// With --pid: let the kernel send the signal the first time the process enters this
    /// syscall (bpf_send_signal), e.g. `--at-syscall fsync`.
    #[arg(long, requires = "pid", value_parser = parse_class)]
    pub at_syscall: Option<SyscallClass>,
    /// With --at-syscall: how long to wait for the call.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub within: Duration,
}

fn parse_class(s: &str) -> Result<SyscallClass, String> {
    SyscallClass::parse(s).map_err(|e| e.to_string())
}

pub fn run(args: Args, json: bool) -> anyhow::Result<ExitCode> {
    let pids = match resolve_pids(args.pid, args.cgroup.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("dst inject process: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let action = match args.pause {
        Some(d) => ProcessAction::Pause(d),
        None => ProcessAction::Kill,
    };
    let mut engine = match SysEngine::load() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("dst inject process: {e}");
            return Ok(ExitCode::from(EXIT_ENVIRONMENT));
        }
    };
    let result = match args.at_syscall {
        Some(class) => {
            inject_at_syscall(&mut engine, pids[0], action, class, args.within, &mut || {})
        }
        None => inject(&mut engine, &pids, action),
    };
    let ev = match result {
        Ok(ev) => ev,
        Err(e @ ProcessError::NoSuchProcess(_)) => {
            eprintln!("dst inject process: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
        Err(e @ ProcessError::NotTriggered { .. }) => {
            eprintln!("dst inject process: {e}");
            return Ok(ExitCode::from(EXIT_ENVIRONMENT));
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&ev)?);
    } else {
        println!("{action:?} of {:?}: landed {}", ev.pids, ev.landed);
        if let (Some(s), Some(r)) = (ev.stopped_at_ns, ev.resumed_at_ns) {
            println!("  stopped for {:.1} ms", (r - s) as f64 / 1e6);
        }
        for e in &ev.events {
            println!("  {}", serde_json::to_string(e)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
