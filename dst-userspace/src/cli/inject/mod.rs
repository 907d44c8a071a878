//! `dst inject`: apply a fault in the foreground until its duration ends, Ctrl-C or SIGTERM,
//! then remove it and print its landing evidence. One subcommand per fault family.

mod net;
mod partition;
pub mod process;
pub mod syscall;
mod target;

use std::{process::ExitCode, time::Duration};

use clap::Subcommand;
use nix::sys::signal::{SigSet, Signal};

/// Arguments of `dst inject`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

/// The fault families `dst inject` can apply.
#[derive(Debug, Subcommand)]
pub enum What {
    /// A network fault on an interface (in a netns) or a cgroup: drop, delay, reorder, duplicate,
    /// corrupt or rate.
    Net(Box<net::Args>),
    /// A network partition between groups of hosts (netns names or CIDRs), or a Jepsen shape.
    Partition(partition::Args),
    /// Fail a syscall class of running processes with an errno.
    Syscall(syscall::Args),
    /// Kill or pause running processes.
    Process(process::Args),
}

pub fn run(args: Args, json: bool) -> anyhow::Result<ExitCode> {
    match args.what {
        What::Net(a) => net::run(*a, json),
        What::Partition(a) => partition::run(a, json),
        What::Syscall(a) => syscall::run(a, json),
        What::Process(a) => process::run(a, json),
    }
}

/// Blocks SIGINT and SIGTERM in this thread (and so in every thread started after), so that
/// they end the wait below instead of killing dst before it cleans up.
pub(crate) fn block_stop_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    let _ = set.thread_block();
    set
}

/// How the foreground wait ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The duration passed.
    Duration,
    /// SIGINT or SIGTERM arrived.
    Signal(i32),
}

/// Waits for `duration` (forever when None) or one of the blocked stop signals.
pub(crate) fn wait(set: &SigSet, duration: Option<Duration>) -> Ended {
    let deadline = duration.map(|d| std::time::Instant::now() + d);
    loop {
        let left = match deadline {
            Some(d) => match d.checked_duration_since(std::time::Instant::now()) {
                Some(l) if !l.is_zero() => l,
                _ => return Ended::Duration,
            },
            None => Duration::from_secs(3600),
        };
        let ts = libc::timespec {
            tv_sec: left.as_secs() as libc::time_t,
            tv_nsec: left.subsec_nanos() as libc::c_long,
        };
        // SAFETY: valid sigset and timespec pointers; no siginfo wanted.
        let sig = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &ts) };
        if sig > 0 {
            return Ended::Signal(sig);
        }
    }
}

/// A usage error: one line on stderr, exit 64, nothing changed.
pub(crate) fn usage(verb: &str, msg: impl std::fmt::Display) -> anyhow::Result<ExitCode> {
    eprintln!("dst inject {verb}: {msg}");
    Ok(ExitCode::from(super::EXIT_USAGE))
}

/// An environment error: one line on stderr, exit 6 (ENVIRONMENT_ERROR), nothing changed.
pub(crate) fn environment(verb: &str, msg: impl std::fmt::Display) -> anyhow::Result<ExitCode> {
    eprintln!("dst inject {verb}: {msg}");
    Ok(ExitCode::from(super::EXIT_ENVIRONMENT))
}

/// Parses `50ms`, `10s`, `1m`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime_serde::re::humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e}"))
}

/// Parses a rate: `8000`, `500kbit`, `10mbit`, `1gbit` (bits per second).
pub(crate) fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mul) = [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)]
        .iter()
        .find_map(|(suf, m)| t.strip_suffix(suf).map(|n| (n.to_string(), *m)))
        .unwrap_or((t.clone(), 1.0));
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a rate like 10mbit, 500kbit or 8000"))?;
    if !(v > 0.0 && v.is_finite()) {
        return Err(format!("{s:?} must be positive"));
    }
    Ok((v * mul) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_durations() {
        assert_eq!(parse_rate("10mbit"), Ok(10_000_000));
        assert_eq!(parse_rate("500kbit"), Ok(500_000));
        assert_eq!(parse_rate("8000"), Ok(8000));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("-1mbit").is_err());
        assert_eq!(parse_duration("50ms"), Ok(Duration::from_millis(50)));
        assert!(parse_duration("soon").is_err());
    }
}
