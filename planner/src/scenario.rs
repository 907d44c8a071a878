//! The runnable scenario file (`dst run SCENARIO.toml`) that `dst plan compile` emits, field for
//! field the runner's format (`dst-userspace/src/runner/scenario.rs`, which refuses unknown
//! fields). Documented in `planner/SCENARIO_FORMAT.md`. Durations are strings (`5s`).

use serde::{Deserialize, Serialize};

/// One runnable scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// The claim this run tries to falsify.
    pub claim: ClaimRef,
    /// Hosts to create.
    pub topology: Topology,
    /// How to run the system under test on each host.
    pub sut: SutSpec,
    /// Client workload.
    pub workload: WorkloadSpec,
    /// Fault windows, each with its landing requirement (`min_applied`).
    pub nemesis: Vec<NemesisSpec>,
    /// Model, checker and invariants.
    pub checker: CheckerSpec,
    /// Seed and history sufficiency thresholds.
    pub run: RunSpec,
}

/// The claim under test.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRef {
    /// Claim id.
    pub id: String,
    /// The claim sentence, copied into reports.
    pub statement: String,
}

/// Hosts as network namespaces on a bridge, `10.{subnet}.0.{i}`/24.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Number of hosts (2..=16).
    pub hosts: usize,
    /// Second octet of the host addresses.
    pub subnet: u8,
}

/// How the runner starts the system under test (placeholders: see [`crate::plan::Sut`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SutSpec {
    /// Command per host.
    pub start: String,
    /// Port; health check = TCP connect to it.
    pub port: u16,
    /// How long to wait for every host (`10s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_timeout: Option<String>,
}

/// Client workload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Built-in client (`kv-set`).
    pub client: String,
    /// Concurrent clients.
    pub clients: usize,
    /// Total ops per second.
    pub rate: u32,
    /// How long clients issue operations (`15s`).
    pub duration: String,
    /// Share of reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_share: Option<f64>,
    /// Number of keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<u32>,
    /// Per-op timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_timeout: Option<String>,
    /// Wait before the final reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle: Option<String>,
}

/// One scheduled partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NemesisSpec {
    /// Id used in the history and the evidence (coverage matches landing evidence on it).
    pub id: String,
    /// Partition shape: `isolate`, `halves`, `majorities-ring`, `bridge`.
    pub shape: String,
    /// For `isolate`: 1-based host, 0 = chosen by the seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<usize>,
    /// Only one direction of each cut pair.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub one_way: bool,
    /// Window start from the start of the workload.
    pub start: String,
    /// Window length.
    pub duration: String,
    /// Landing requirement: packets the fault must act on inside its window.
    pub min_applied: u64,
}

/// Which model and checks decide the claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckerSpec {
    /// Model (`set`).
    pub model: String,
    /// Run the linearizability search.
    pub linearizable: bool,
    /// Invariants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invariants: Vec<String>,
    /// Checker budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// Seed and thresholds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// Seed of every random choice.
    pub seed: u64,
    /// Minimum completed operations overall.
    pub min_ops: u64,
    /// Minimum completed operations overlapping each nemesis window.
    pub min_ops_per_window: u64,
}

impl ScenarioFile {
    /// Renders the file as TOML.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }

    /// Reads a scenario file.
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }
}
