//! Scenario files (TOML): the claim a run tries to falsify, the topology, how to start and
//! health-check the system under test, the workload, the nemesis schedule, the checker binding,
//! landing requirements, seed and thresholds. Unknown fields and impossible schedules are
//! refused before anything starts, naming the line and field.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Errors in a scenario file.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ScenarioError {
    /// TOML syntax, a wrong type, a missing or an unknown field (the message names line and field).
    #[error("scenario file: {0}")]
    Parse(String),
    /// A field whose value is impossible.
    #[error("scenario file: {field}: {problem}")]
    Invalid {
        /// Dotted path of the field, e.g. `nemesis[0].duration`.
        field: String,
        /// What is wrong.
        problem: String,
    },
}

/// The claim under test.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// Identifier, named after the promise (e.g. `acknowledged_adds_survive_partition`).
    pub id: String,
    /// The promise in one sentence.
    pub statement: String,
}

/// Hosts as network namespaces on a bridge, `10.{subnet}.0.{i}`/24.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Number of hosts (2..=16).
    pub hosts: usize,
    /// Second octet of the host addresses (picked so runs do not collide).
    #[serde(default = "default_subnet")]
    pub subnet: u8,
    /// Attach to existing hosts instead of creating namespaces: one entry per host, in order.
    /// dst then neither creates nor deletes namespaces, and starts the system under test only
    /// when `sut.start` is given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attach: Vec<AttachHost>,
}

/// An existing host: a named network namespace (`ip netns` name) with the address the system
/// under test listens on, optionally the cgroup of its processes (for syscall nemeses).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachHost {
    /// The network namespace.
    pub netns: String,
    /// The host's address inside it.
    pub addr: std::net::Ipv4Addr,
    /// The interface carrying the host's traffic (default `eth0`).
    #[serde(default = "default_dev")]
    pub dev: String,
    /// cgroup v2 directory of the system under test's processes on this host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<std::path::PathBuf>,
}

fn default_dev() -> String {
    "eth0".into()
}

fn default_subnet() -> u8 {
    240
}

/// How to run the system under test on each host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sut {
    /// Command run through `sh -c` inside each host's namespace (not run with `--inventory`:
    /// the system already runs on the nodes). Placeholders: `{id}` (1-based),
    /// `{addr}` (host address), `{peers}` (comma-separated `addr:port` of all hosts, needs
    /// `port`), `{port}`, `{dir}` (a per-host data directory), `{bin}` (directory of the dst binary),
    /// `{addrN}` (host N's address). Empty with `topology.attach`: the system is already
    /// running and dst only health-checks it.
    #[serde(default)]
    pub start: String,
    /// Wait this long after every host accepts connections (e.g. for a leader election).
    #[serde(default, with = "humantime_serde")]
    pub warmup: Duration,
    /// Port the service listens on; health check = TCP connect to it.
    pub port: u16,
    /// How long to wait for every host to accept connections.
    #[serde(default = "default_health_timeout", with = "humantime_serde")]
    pub health_timeout: Duration,
}

fn default_health_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Built-in clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Client {
    /// The example service's line protocol (`ADD key elem`, `READ key`), set semantics.
    KvSet,
    /// etcd's v3 JSON gateway: read / write / compare-and-set of small integers per key.
    EtcdRegister,
    /// Redis: SADD to the primary (host 1), SMEMBERS from the client's own host.
    RedisSet,
    /// Redis: SET/APPEND to the primary, GET from the client's own host (model `kv`).
    RedisKv,
    /// Redis: INCR on the primary, GET from the client's own host (model `counter`).
    RedisCounter,
    /// Redis: MULTI/EXEC transactions of RPUSH/LRANGE (model `list-append`).
    RedisListAppend,
    /// Any system: a user command per operation (see [`ExecClient`]).
    Exec,
}

/// The `exec` client: `command` runs through `sh -c` inside the client's host namespace, once
/// per operation, with placeholders `{f}`, `{key}`, `{value}`, `{addr}` (the client's host),
/// `{addrN}`, `{port}` and the same values in `DST_F`, `DST_KEY`, `DST_VALUE`, `DST_ADDR`.
/// Exit 0 = `ok` (stdout, parsed as JSON when it is, is the result; empty = the argument),
/// exit 1 = `fail` (certainly not applied), any other exit or the timeout = `info`; a command
/// killed by a signal is a client crash (HARNESS_ERROR).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecClient {
    /// The command per operation.
    pub command: String,
    /// `f` of write operations (their values are unique integers).
    #[serde(default = "default_write_f")]
    pub write: String,
    /// `f` of read operations (no argument).
    #[serde(default = "default_read_f")]
    pub read: String,
}

fn default_write_f() -> String {
    "add".into()
}
fn default_read_f() -> String {
    "read".into()
}

/// Operations the clients issue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Which client.
    pub client: Client,
    /// Concurrent client processes (spread over the hosts round-robin).
    pub clients: usize,
    /// Total operations per second over all clients.
    pub rate: u32,
    /// How long clients issue operations.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Share of reads (the rest are writes), 0..=1.
    #[serde(default = "default_read_share")]
    pub read_share: f64,
    /// Number of keys.
    #[serde(default = "default_keys")]
    pub keys: u32,
    /// Per-operation timeout: no answer in time is recorded as `info` (indeterminate).
    #[serde(default = "default_op_timeout", with = "humantime_serde")]
    pub op_timeout: Duration,
    /// After the workload and every nemesis end: wait this long, then each client reads every key.
    #[serde(default = "default_settle", with = "humantime_serde")]
    pub settle: Duration,
    /// For `client = "exec"`: the command and the operation names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecClient>,
}

fn default_read_share() -> f64 {
    0.2
}
fn default_keys() -> u32 {
    1
}
fn default_op_timeout() -> Duration {
    Duration::from_secs(1)
}
fn default_settle() -> Duration {
    Duration::from_secs(2)
}

/// A partition shape (Jepsen's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// Cut one host (`node`, or one chosen by the seed) off from all others.
    Isolate,
    /// Two halves (random split from the seed).
    Halves,
    /// Each host sees a majority, no two the same (Jepsen's majorities ring).
    MajoritiesRing,
    /// Two halves joined by one host that sees both.
    Bridge,
}

/// One scheduled fault: a partition (`shape`) or a syscall fault (`syscall` + `errno`) on
/// the processes of one host's system under test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nemesis {
    /// Identifier used in the history and the evidence.
    pub id: String,
    /// Partition shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<Shape>,
    /// Syscall fault instead of a partition: the syscall (its class) that fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscall: Option<String>,
    /// With `syscall`: the errno it fails with (name or number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<String>,
    /// With `syscall`: chance per matched call (seeded); omitted = every call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// With `syscall` on a file class: only paths starting with this prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<std::path::PathBuf>,
    /// For `isolate` and syscall faults: the host (1-based); 0 or omitted = chosen by the seed.
    #[serde(default)]
    pub node: usize,
    /// Only one direction of each cut pair (asymmetric partition).
    #[serde(default)]
    pub one_way: bool,
    /// Cut only traffic to and from this port (omitted = all traffic between the hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// When it starts, from the start of the workload.
    #[serde(with = "humantime_serde")]
    pub start: Duration,
    /// How long it lasts.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Landing requirement: packets (partitions) or failed calls (syscall faults) the fault
    /// must act on inside its window (each window, when repeated).
    #[serde(default = "default_min_applied")]
    pub min_applied: u64,
    /// How many windows (1 = once). Each repetition draws its own random choices from the seed.
    #[serde(default = "default_repeat")]
    pub repeat: u32,
    /// Start-to-start distance of repeated windows (default: twice the duration).
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub every: Option<Duration>,
}

fn default_min_applied() -> u64 {
    1
}

fn default_repeat() -> u32 {
    1
}

impl Nemesis {
    /// Checks that the nemesis is exactly one of a partition or a syscall fault, with the
    /// fields of its kind only.
    pub fn validate_kind(&self, at: &str) -> Result<(), ScenarioError> {
        match (&self.shape, &self.syscall) {
            (Some(_), None) => {
                for (name, given) in [
                    ("errno", self.errno.is_some()),
                    ("probability", self.probability.is_some()),
                    ("path", self.path.is_some()),
                ] {
                    if given {
                        return Err(invalid(
                            format!("{at}.{name}"),
                            "only applies to a syscall nemesis (give `syscall`, not `shape`)",
                        ));
                    }
                }
                Ok(())
            }
            (None, Some(name)) => {
                let class = crate::sys::SyscallClass::parse(name)
                    .map_err(|e| invalid(format!("{at}.syscall"), e.to_string()))?;
                let errno = self.errno.as_deref().ok_or_else(|| {
                    invalid(format!("{at}.errno"), "a syscall nemesis needs an errno")
                })?;
                crate::sys::spec::parse_errno(errno)
                    .map_err(|e| invalid(format!("{at}.errno"), e.to_string()))?;
                if self.probability.is_some_and(|p| !(0.0..=1.0).contains(&p)) {
                    return Err(invalid(format!("{at}.probability"), "must be within 0..=1"));
                }
                if self.path.is_some() && !class.has_path() {
                    return Err(invalid(
                        format!("{at}.path"),
                        format!("{} calls have no path", class.name()),
                    ));
                }
                if self.one_way || self.port.is_some() {
                    return Err(invalid(
                        format!("{at}.{}", if self.one_way { "one_way" } else { "port" }),
                        "only applies to a partition (`shape`)",
                    ));
                }
                Ok(())
            }
            _ => Err(invalid(
                at.to_string(),
                "give exactly one of `shape` (a partition) or `syscall` (a syscall fault)",
            )),
        }
    }

    /// Start-to-start distance of repeated windows.
    pub fn period(&self) -> Duration {
        self.every.unwrap_or(self.duration * 2)
    }

    /// End of the last window, from the start of the workload.
    pub fn last_end(&self) -> Duration {
        self.start + self.period() * self.repeat.max(1).saturating_sub(1) + self.duration
    }
}

/// Which model and checks decide the claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckerBinding {
    /// Model for the linearizability check (e.g. `set`).
    pub model: String,
    /// Run the linearizability search.
    #[serde(default = "yes")]
    pub linearizable: bool,
    /// Invariants (e.g. `no-lost-writes`).
    #[serde(default)]
    pub invariants: Vec<String>,
    /// Checker budget.
    #[serde(default = "default_budget", with = "humantime_serde")]
    pub timeout: Duration,
}

fn yes() -> bool {
    true
}
fn default_budget() -> Duration {
    Duration::from_secs(30)
}

/// Seed and sufficiency thresholds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSettings {
    /// Seed of every random choice (op mix, values, nemesis choices, fault decisions).
    pub seed: u64,
    /// Minimum completed (ok/fail) operations overall.
    #[serde(default)]
    pub min_ops: u64,
    /// Minimum completed operations overlapping each nemesis window.
    #[serde(default)]
    pub min_ops_per_window: u64,
    /// Programs that must be on PATH; a missing one makes the verdict NOT_RUN (nothing starts).
    #[serde(default)]
    pub requires: Vec<String>,
}

/// A whole scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The claim it tries to falsify.
    pub claim: Claim,
    /// Hosts.
    pub topology: Topology,
    /// System under test.
    pub sut: Sut,
    /// Clients.
    pub workload: Workload,
    /// Fault schedule.
    #[serde(default)]
    pub nemesis: Vec<Nemesis>,
    /// Checker binding.
    pub checker: CheckerBinding,
    /// Seed and thresholds.
    pub run: RunSettings,
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

impl Scenario {
    /// Parses and validates a scenario file.
    pub fn parse(text: &str) -> Result<Self, ScenarioError> {
        let s: Self = toml::from_str(text).map_err(|e| ScenarioError::Parse(e.to_string()))?;
        s.validate()?;
        Ok(s)
    }

    /// Checks what a local run (hosts as namespaces dst creates) needs beyond
    /// [`Scenario::validate`]: the command that starts the system under test, unless the hosts
    /// are attached. Runs against an inventory (`dst run --inventory`) need none: the system
    /// already runs on the nodes.
    pub fn validate_local(&self) -> Result<(), ScenarioError> {
        if self.topology.attach.is_empty() && self.sut.start.trim().is_empty() {
            return Err(invalid(
                "sut.start",
                "empty: give the command that starts the system on each host (only attached \
                 hosts in topology.attach, or a run with --inventory, may go without one)",
            ));
        }
        Ok(())
    }

    /// Checks values that parse but cannot run (anywhere).
    pub fn validate(&self) -> Result<(), ScenarioError> {
        if self.claim.id.trim().is_empty() || self.claim.statement.trim().is_empty() {
            return Err(invalid(
                "claim",
                "needs an id and a statement: a run exists to falsify a named claim",
            ));
        }
        if !(2..=16).contains(&self.topology.hosts) {
            return Err(invalid(
                "topology.hosts",
                format!("{} is outside 2..=16", self.topology.hosts),
            ));
        }
        if self.workload.clients == 0 || self.workload.rate == 0 {
            return Err(invalid("workload", "clients and rate must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.workload.read_share) {
            return Err(invalid("workload.read_share", "must be within 0..=1"));
        }
        if self.workload.keys == 0 {
            return Err(invalid("workload.keys", "must be at least 1"));
        }
        let attach = &self.topology.attach;
        if !attach.is_empty() && attach.len() != self.topology.hosts {
            return Err(invalid(
                "topology.attach",
                format!(
                    "{} entries for {} hosts: give one per host",
                    attach.len(),
                    self.topology.hosts
                ),
            ));
        }
        for (i, n) in self.nemesis.iter().enumerate() {
            n.validate_kind(&format!("nemesis[{i}]"))?;
            if n.syscall.is_some() && !attach.is_empty() {
                let hosts: Vec<usize> = if n.node == 0 {
                    (1..=attach.len()).collect()
                } else {
                    vec![n.node]
                };
                if let Some(h) = hosts
                    .iter()
                    .find(|&&h| attach.get(h - 1).is_some_and(|a| a.cgroup.is_none()))
                {
                    return Err(invalid(
                        format!("topology.attach[{}].cgroup", h - 1),
                        format!(
                            "nemesis {} fails syscalls on host {h}'s processes: give that host's cgroup",
                            n.id
                        ),
                    ));
                }
            }
            let end = n.last_end();
            if n.repeat > 1 && n.period() < n.duration {
                return Err(invalid(
                    format!("nemesis[{i}].every"),
                    "repeated windows would overlap: `every` must be at least `duration`",
                ));
            }
            if n.duration.is_zero() {
                return Err(invalid(
                    format!("nemesis[{i}].duration"),
                    "must be greater than 0",
                ));
            }
            if end > self.workload.duration {
                return Err(invalid(
                    format!("nemesis[{i}].duration"),
                    format!(
                        "the window ends at {:?}, after the workload's {:?}: schedule it inside the workload",
                        end, self.workload.duration
                    ),
                ));
            }
            if n.node > self.topology.hosts {
                return Err(invalid(
                    format!("nemesis[{i}].node"),
                    format!("{} > {} hosts", n.node, self.topology.hosts),
                ));
            }
        }
        let model = match self.workload.client {
            Client::KvSet | Client::RedisSet => Some("set"),
            Client::RedisKv => Some("kv"),
            Client::RedisCounter => Some("counter"),
            Client::RedisListAppend => Some("list-append"),
            Client::EtcdRegister => Some("cas-register"),
            Client::Exec => None,
        };
        match model {
            Some(model) if self.checker.model != model => {
                return Err(invalid(
                    "checker.model",
                    format!(
                        "{:?}: the {:?} client records {model} histories; use \"{model}\"",
                        self.checker.model, self.workload.client
                    ),
                ));
            }
            None if self
                .checker
                .model
                .parse::<checkers::cli::Checker>()
                .is_err() =>
            {
                return Err(invalid(
                    "checker.model",
                    format!(
                        "{:?} is not a checker; one of {}",
                        self.checker.model,
                        checkers::cli::Checker::NAMES.join(", ")
                    ),
                ));
            }
            _ => {}
        }
        if (self.workload.client == Client::Exec) != self.workload.exec.is_some() {
            return Err(invalid(
                "workload.exec",
                "give [workload.exec] exactly when client = \"exec\"",
            ));
        }
        for (i, inv) in self.checker.invariants.iter().enumerate() {
            if checkers::invariants::Invariant::from_name(inv).is_none() {
                return Err(invalid(
                    format!("checker.invariants[{i}]"),
                    format!("unknown invariant {inv:?}"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = include_str!("../../../examples/scenarios/replicated-kv-partition.toml");

    #[test]
    fn the_demo_scenario_parses() {
        let s = Scenario::parse(DEMO).unwrap();
        assert_eq!(s.topology.hosts, 3);
        assert_eq!(s.nemesis.len(), 1);
    }

    #[test]
    fn bad_files_are_refused_naming_line_and_field() {
        let unknown = DEMO.replace("[workload]", "[workload]\nthreads = 4");
        let e = Scenario::parse(&unknown).unwrap_err().to_string();
        assert!(e.contains("threads") && e.contains("line"), "{e}");
        let no_claim: String = DEMO
            .lines()
            .filter(|l| !l.starts_with("statement"))
            .collect::<Vec<_>>()
            .join("\n");
        let e = Scenario::parse(&no_claim).unwrap_err().to_string();
        assert!(e.contains("statement"), "{e}");
        let overlapping = DEMO.replace(
            "min_applied = 10",
            "min_applied = 10\nrepeat = 2\nevery = \"1s\"",
        );
        match Scenario::parse(&overlapping) {
            Err(ScenarioError::Invalid { field, .. }) => assert_eq!(field, "nemesis[0].every"),
            other => panic!("{other:?}"),
        }
        let too_many = DEMO.replace("min_applied = 10", "min_applied = 10\nrepeat = 3");
        assert!(
            Scenario::parse(&too_many).is_err(),
            "3 windows of 5 s every 10 s end after 12 s"
        );
        let late = DEMO.replace("duration = \"5s\"", "duration = \"60s\"");
        match Scenario::parse(&late) {
            Err(ScenarioError::Invalid { field, .. }) => assert_eq!(field, "nemesis[0].duration"),
            other => panic!("{other:?}"),
        }
    }
    #[test]
    fn a_nemesis_is_a_partition_or_a_syscall_fault() {
        let shape = "shape = \"isolate\"";
        assert!(DEMO.contains(shape));
        let cases = [
            (
                DEMO.replace(shape, "shape = \"isolate\"\nsyscall = \"connect\""),
                "nemesis[0]",
            ),
            (DEMO.replace(shape, ""), "nemesis[0]"),
            (
                DEMO.replace(shape, "syscall = \"connect\""),
                "nemesis[0].errno",
            ),
            (
                DEMO.replace(shape, "syscall = \"conect\"\nerrno = \"EIO\""),
                "nemesis[0].syscall",
            ),
            (
                DEMO.replace(shape, "shape = \"isolate\"\nerrno = \"EIO\""),
                "nemesis[0].errno",
            ),
            (
                DEMO.replace(
                    shape,
                    "syscall = \"connect\"\nerrno = \"EIO\"\npath = \"/tmp\"",
                ),
                "nemesis[0].path",
            ),
            (
                DEMO.replace(
                    shape,
                    "syscall = \"connect\"\nerrno = \"EIO\"\nprobability = 1.5",
                ),
                "nemesis[0].probability",
            ),
        ];
        for (doc, want) in cases {
            match Scenario::parse(&doc) {
                Err(ScenarioError::Invalid { field, .. }) => assert_eq!(field, want),
                other => panic!("{want}: {other:?}"),
            }
        }
        let ok = DEMO.replace(
            shape,
            "syscall = \"write\"\nerrno = \"EIO\"\npath = \"/var\"",
        );
        let s = Scenario::parse(&ok).unwrap();
        assert_eq!(s.nemesis[0].syscall.as_deref(), Some("write"));
    }

    #[test]
    fn only_local_runs_need_a_start_command() {
        let s = Scenario::parse(&DEMO.replace(
            "start = \"{bin}/dst-example-kv --id {id} --listen {addr}:{port} --peers {peers}\"",
            "",
        ))
        .unwrap();
        assert!(s.sut.start.is_empty());
        match s.validate_local() {
            Err(ScenarioError::Invalid { field, .. }) => assert_eq!(field, "sut.start"),
            other => panic!("{other:?}"),
        }
        Scenario::parse(DEMO).unwrap().validate_local().unwrap();
    }
}
