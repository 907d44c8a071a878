//! The system under test: one process per host, started through `sh -c` inside the host's
//! network namespace and a per-run cgroup (so a stop kills it and every child), health-checked
//! by TCP connect from inside the namespace, output captured per host.

use std::{
    fs::File,
    net::{Ipv4Addr, SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::endpoint::Endpoint;
use super::scenario::Sut;
use crate::{cgroup::Cgroup, testing::Host};

/// Errors starting the system under test.
#[derive(Debug, thiserror::Error)]
pub enum SutError {
    /// The command could not be started.
    #[error("starting the system under test on host {host} ({cmd}): {source}")]
    Spawn {
        /// Host number.
        host: usize,
        /// The command line.
        cmd: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A host did not accept connections in time.
    #[error(
        "host {host} did not accept connections on {addr} within {timeout:?}; its output is in {log}"
    )]
    Unhealthy {
        /// Host number.
        host: usize,
        /// Address probed.
        addr: SocketAddr,
        /// How long we waited.
        timeout: Duration,
        /// Where its output went.
        log: String,
    },
    /// A namespace, cgroup or file operation failed.
    #[error("preparing host {host}: {message}")]
    Setup {
        /// Host number.
        host: usize,
        /// What failed.
        message: String,
    },
}

/// The running system: processes, their cgroups (one per host, under one per run) and log
/// files. Killed on drop.
pub struct RunningSut {
    children: Vec<Child>,
    /// Per-host cgroups (dropped before the run's parent cgroup). Attached hosts' cgroups are
    /// opened, not owned: dropping them leaves them alone.
    host_cgroups: Vec<Cgroup>,
    /// The run's cgroup; `None` when attached to a running system.
    _cgroup: Option<Cgroup>,
    /// Per-host log files.
    pub logs: Vec<PathBuf>,
}

/// Expands the placeholders of `start` for host `id` (1-based).
pub fn command_line(
    sut: &Sut,
    id: usize,
    addr: Ipv4Addr,
    all: &[Ipv4Addr],
    dir: &Path,
    bin: &Path,
) -> String {
    let peers = all
        .iter()
        .map(|a| format!("{a}:{}", sut.port))
        .collect::<Vec<_>>()
        .join(",");
    let line = sut
        .start
        .replace("{id}", &id.to_string())
        .replace("{addr}", &addr.to_string())
        .replace("{peers}", &peers)
        .replace("{port}", &sut.port.to_string())
        .replace("{dir}", &dir.display().to_string())
        .replace("{bin}", &bin.display().to_string());
    expand_addrs(&line, all)
}

/// Replaces `{addrN}` with host N's address (highest N first, so `{addr1}` never eats `{addr10}`).
pub fn expand_addrs(line: &str, all: &[Ipv4Addr]) -> String {
    let mut line = line.to_string();
    for (i, a) in all.iter().enumerate().rev() {
        line = line.replace(&format!("{{addr{}}}", i + 1), &a.to_string());
    }
    line
}

impl RunningSut {
    /// Starts the service on every host and waits until all accept connections.
    pub fn start(
        sut: &Sut,
        hosts: &[Host],
        out: &Path,
        cgroup_name: &str,
    ) -> Result<Self, SutError> {
        let cgroup = Cgroup::create(cgroup_name).map_err(|e| SutError::Setup {
            host: 0,
            message: e.to_string(),
        })?;
        // `{bin}`: the directory of the running dst binary; from a test binary in
        // target/<profile>/deps, its parent (where cargo puts the workspace's binaries).
        let mut bin = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));
        if bin.ends_with("deps") {
            bin.pop();
        }
        let addrs: Vec<Ipv4Addr> = hosts.iter().map(|h| h.addr).collect();
        let mut running = Self {
            children: Vec::new(),
            host_cgroups: Vec::new(),
            _cgroup: Some(cgroup),
            logs: Vec::new(),
        };
        for (i, h) in hosts.iter().enumerate() {
            let id = i + 1;
            let dir = out.join(format!("sut-n{id}"));
            std::fs::create_dir_all(&dir).map_err(|e| SutError::Setup {
                host: id,
                message: e.to_string(),
            })?;
            let log_path = out.join(format!("sut-n{id}.log"));
            let log = File::create(&log_path).map_err(|e| SutError::Setup {
                host: id,
                message: e.to_string(),
            })?;
            let err = log.try_clone().map_err(|e| SutError::Setup {
                host: id,
                message: e.to_string(),
            })?;
            let cmd = command_line(sut, id, h.addr, &addrs, &dir, &bin);
            let host_cg =
                Cgroup::create(&format!("{cgroup_name}/n{id}")).map_err(|e| SutError::Setup {
                    host: id,
                    message: e.to_string(),
                })?;
            let cg = host_cg.path().join("cgroup.procs");
            running.host_cgroups.push(host_cg);
            // The shell joins the run's cgroup before running the command (so every descendant
            // follows; any shell syntax works in `start`), and
            // inherits the namespace of the thread that forks it.
            let script = format!("echo $$ > {}\n{}\n", cg.display(), cmd);
            let child =
                h.ns.run(|| {
                    Command::new("sh")
                        .arg("-c")
                        .arg(&script)
                        .stdin(Stdio::null())
                        .stdout(log)
                        .stderr(err)
                        .spawn()
                })
                .map_err(|e| SutError::Setup {
                    host: id,
                    message: e.to_string(),
                })?
                .map_err(|source| SutError::Spawn {
                    host: id,
                    cmd: cmd.clone(),
                    source,
                })?;
            running.children.push(child);
            running.logs.push(log_path);
        }
        running.wait_hosts(sut, hosts)?;
        Ok(running)
    }

    /// A system that is already running on attached hosts: nothing is started (or stopped
    /// later); every host must accept connections within the health timeout.
    pub fn attached(
        sut: &Sut,
        hosts: &[Host],
        attach: &[crate::runner::scenario::AttachHost],
    ) -> Result<Self, SutError> {
        let mut running = Self {
            children: Vec::new(),
            host_cgroups: Vec::new(),
            _cgroup: None,
            logs: Vec::new(),
        };
        for (i, a) in attach.iter().enumerate() {
            running.logs.push(PathBuf::from(format!(
                "(attached host {}: {})",
                i + 1,
                a.netns
            )));
            if let Some(path) = &a.cgroup {
                let cg = Cgroup::open(path).map_err(|e| SutError::Setup {
                    host: i + 1,
                    message: e.to_string(),
                })?;
                running.host_cgroups.push(cg);
            }
        }
        if running.host_cgroups.len() != attach.len() {
            // Syscall nemeses need every host's cgroup (the scenario checks the ones it uses);
            // with gaps none is kept, so a lookup by host number never lands on another host.
            running.host_cgroups.clear();
        }
        running.wait_hosts(sut, hosts)?;
        Ok(running)
    }

    fn wait_hosts(&self, sut: &Sut, hosts: &[Host]) -> Result<(), SutError> {
        let logs: Vec<String> = self.logs.iter().map(|l| l.display().to_string()).collect();
        wait_healthy(sut, &super::endpoint::of_hosts(hosts), &logs)
    }

    /// The cgroup of host `host`'s processes (1-based).
    pub fn host_cgroup(&self, host: usize) -> Option<&Cgroup> {
        self.host_cgroups.get(host.checked_sub(1)?)
    }

    /// Kills every process of the system under test (SIGKILL through the cgroups).
    pub fn stop(&mut self) {
        let Some(run) = &self._cgroup else {
            // Attached to a running system: not ours to stop.
            return;
        };
        let kill = run.path().join("cgroup.kill");
        if kill.exists() {
            let _ = std::fs::write(kill, "1");
        }
        for c in &self.host_cgroups {
            let _ = c.remove();
        }
        let _ = run.remove();
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RunningSut {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until every host accepts TCP connections on the service port (connecting from where
/// its clients will), then for the warmup. `logs[i]` names where host i's output is.
pub fn wait_healthy(sut: &Sut, hosts: &[Endpoint<'_>], logs: &[String]) -> Result<(), SutError> {
    for (i, h) in hosts.iter().enumerate() {
        let addr = SocketAddr::from((h.addr, sut.port));
        let deadline = Instant::now() + sut.health_timeout;
        loop {
            let ok = h
                .run(|| TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok())
                .unwrap_or(false);
            if ok {
                break;
            }
            if Instant::now() > deadline {
                return Err(SutError::Unhealthy {
                    host: i + 1,
                    addr,
                    timeout: sut.health_timeout,
                    log: logs.get(i).cloned().unwrap_or_default(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    std::thread::sleep(sut.warmup);
    Ok(())
}
