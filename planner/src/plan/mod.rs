//! The plan model: front matter, claims, hypotheses, scenarios and the prose sections, each item
//! with the line it was written on. The format is documented in `planner/PLAN_FORMAT.md`.

pub mod markdown;
mod parse;

use serde::{Deserialize, Serialize};

use crate::mechanism::Mechanism;

pub use parse::parse;

/// Why a plan could not be read. Lint findings are for plans that parse; these stop parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A code fence or the `+++` front matter is never closed.
    #[error("line {line}: this fence is never closed: add the closing ``` (or +++)")]
    UnclosedFence {
        /// Line of the opening fence.
        line: usize,
    },
    /// The plan has no front matter.
    #[error(
        "line 1: no front matter: start the plan with a +++ block (or a ```toml block before the first ## heading) holding system = \"NAME\""
    )]
    NoFrontMatter,
    /// A TOML block (or the front matter) does not parse or has an unknown field.
    #[error("line {line}: {message} (see planner/PLAN_FORMAT.md for the fields)")]
    Toml {
        /// Line in the plan where the parser stopped.
        line: usize,
        /// The TOML parser's message.
        message: String,
    },
}

/// How much a claim matters; every critical claim must appear in the adequacy argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Criticality {
    /// Breaking it loses or corrupts data or safety.
    Critical,
    /// Breaking it is a serious outage or wrong answer.
    High,
    /// Degraded service.
    Medium,
    /// Cosmetic or operational.
    Low,
}

/// Plan-wide facts from the front matter.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrontMatter {
    /// Name of the system under test.
    pub system: String,
    /// Code and documents the claims were taken from.
    #[serde(default)]
    pub sources: Vec<String>,
    /// How to run the system under test; needed to compile runnable scenarios.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sut: Option<Sut>,
    /// Run defaults every compiled scenario inherits.
    #[serde(default)]
    pub defaults: Defaults,
    /// Line of the front matter's first line.
    #[serde(skip)]
    pub line: usize,
}

/// The system under test as the dst runner starts it: one process per host, health-checked by
/// TCP connect to `port`. `start` placeholders (filled by the runner): `{id}` (1-based host
/// number), `{addr}`, `{port}`, `{peers}` (comma-separated `addr:port` of all hosts), `{dir}`
/// (per-host data directory), `{bin}` (directory of the dst binary).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sut {
    /// Number of hosts (network namespaces), 2..=16.
    #[serde(default = "default_hosts")]
    pub hosts: usize,
    /// Second octet of the host addresses (`10.{subnet}.0.{id}`).
    #[serde(default = "default_subnet")]
    pub subnet: u8,
    /// Command starting one node (run through `sh -c` inside the host's namespace).
    pub start: String,
    /// Port every node listens on.
    pub port: u16,
    /// How long to wait for every node to accept connections (`10s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_timeout: Option<String>,
}

fn default_hosts() -> usize {
    3
}

fn default_subnet() -> u8 {
    240
}

/// Run defaults (a scenario may override `duration`, `seed` and `hosts`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// How long clients issue operations (`15s`); every nemesis window must end inside it.
    #[serde(default = "default_duration")]
    pub duration: String,
    /// Seed for workload and fault decisions.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Fewer completed ops overall gives INSUFFICIENT_HISTORY.
    #[serde(default = "default_min_ops")]
    pub min_ops: u64,
    /// Fewer completed ops overlapping any fault window gives INSUFFICIENT_HISTORY.
    #[serde(default = "default_min_ops_per_window")]
    pub min_ops_per_window: u64,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            duration: default_duration(),
            seed: default_seed(),
            min_ops: default_min_ops(),
            min_ops_per_window: default_min_ops_per_window(),
        }
    }
}

fn default_duration() -> String {
    "15s".to_owned()
}
fn default_seed() -> u64 {
    1
}
fn default_min_ops() -> u64 {
    100
}
fn default_min_ops_per_window() -> u64 {
    10
}

/// A product claim the plan tries to falsify.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// Stable id (`acked_write_durable`).
    pub id: String,
    /// The claim as one sentence.
    pub statement: String,
    /// Where the claim is made (doc section, code path, ticket).
    pub source: String,
    /// How much it matters.
    pub criticality: Criticality,
    /// Line of its `[[claim]]` header.
    #[serde(skip)]
    pub line: usize,
}

/// A failure-mode hypothesis: how one or more claims could break.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hypothesis {
    /// Stable id (`h_leader_acks_while_isolated`).
    pub id: String,
    /// Ids of the claims it would break.
    #[serde(default)]
    pub claims: Vec<String>,
    /// Mechanism tag.
    pub mechanism: Mechanism,
    /// The mechanism in prose: what happens, step by step.
    pub description: String,
    /// Line of its `[[hypothesis]]` header.
    #[serde(skip)]
    pub line: usize,
}

/// One fault window of a scenario: a named nemesis or a fault set in the dst fault-file shape.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NemesisStep {
    /// Id used to match landing evidence; defaults to the name, or `nemesis-N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A named nemesis (`partition-halves`, see `planner::nemesis`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Host names the named nemesis acts on (`n1`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Cut only one direction of each pair (asymmetric partition), for partition nemeses.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub one_way: bool,
    /// A fault set in the dst fault-file shape (`{ net = [ ... ] }`), instead of a name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<toml::Table>,
    /// When the window opens, from the start of the workload (`5s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// How long it stays open (`10s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Landing requirement: the fault must have applied at least this many times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_applied: Option<u64>,
}

impl NemesisStep {
    /// The id evidence is matched on: `id`, else `name`, else `nemesis-{index}`.
    pub fn effective_id(&self, index: usize) -> String {
        self.id
            .clone()
            .or_else(|| self.name.clone())
            .unwrap_or_else(|| format!("nemesis-{index}"))
    }
}

/// The client side of a scenario (field names as in the runner's scenario file).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Client (`kv-set`, the runner's built-in client for the example service).
    pub client: String,
    /// Concurrent client processes.
    #[serde(default = "default_clients")]
    pub clients: usize,
    /// Total operations per second over all clients.
    #[serde(default = "default_rate")]
    pub rate: u32,
    /// Share of reads (the rest are writes), 0..=1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_share: Option<f64>,
    /// Number of keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<u32>,
    /// Per-operation timeout (`1s`); no answer in time is recorded as indeterminate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_timeout: Option<String>,
    /// Wait after the workload and faults end before the final reads (`2s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle: Option<String>,
}

fn default_clients() -> usize {
    4
}

fn default_rate() -> u32 {
    100
}

/// Which model and checker decide the claim.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckerBinding {
    /// Model (`set`, `register`, `cas-register`, `kv`, `queue`, `counter`, `log`, or an external one).
    pub model: String,
    /// Checker: `linearizable` (search, plus any invariants), `invariants` (invariants only), or
    /// an external one (`tlc`, `elle-list-append`, ...) which makes the scenario manual.
    pub checker: String,
    /// Invariants checked too (`no-lost-writes`, `monotonic-reads`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invariants: Vec<String>,
    /// Checker budget (`30s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// A scenario: one attempt to falsify one claim through one hypothesis.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Named after the claim it targets (`linearizable_append_under_partition`).
    pub id: String,
    /// Id of the claim it tries to falsify.
    pub claim: String,
    /// Id of the hypothesis it tests.
    pub hypothesis: String,
    /// Technique id from the catalog.
    pub technique: String,
    /// Fault windows (`[[scenario.nemesis]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nemesis: Vec<NemesisStep>,
    /// Client workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<Workload>,
    /// Model and checker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checker: Option<CheckerBinding>,
    /// Set when dst cannot carry the scenario: why, and who runs it instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<String>,
    /// For manual scenarios: the artifact that proves it ran (landing evidence outside dst).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// Overrides the default workload duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Overrides the default seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Overrides the number of hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<usize>,
    /// Line of its `[[scenario]]` header.
    #[serde(skip)]
    pub line: usize,
}

/// A prose section (`## Adequacy`, `## Residual uncertainties`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Section {
    /// Line of the heading.
    pub line: usize,
    /// Text under the heading.
    pub text: String,
}

/// A parsed plan.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Plan {
    /// Front matter.
    pub front: FrontMatter,
    /// Claims in document order.
    pub claims: Vec<Claim>,
    /// Hypotheses in document order.
    pub hypotheses: Vec<Hypothesis>,
    /// Scenarios in document order.
    pub scenarios: Vec<Scenario>,
    /// The adequacy argument.
    pub adequacy: Option<Section>,
    /// Residual uncertainties.
    pub residual: Option<Section>,
    /// Line of the `## Claims` heading (or 1), where plan-wide findings point.
    pub claims_line: usize,
}

impl Plan {
    /// Finds a claim by id.
    pub fn claim(&self, id: &str) -> Option<&Claim> {
        self.claims.iter().find(|c| c.id == id)
    }

    /// Finds a hypothesis by id.
    pub fn hypothesis(&self, id: &str) -> Option<&Hypothesis> {
        self.hypotheses.iter().find(|h| h.id == id)
    }
}
