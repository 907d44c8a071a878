//! Multi-node coordinator (`dst cluster`): an inventory of node daemons, cluster-level faults
//! (partition node groups, isolate a node, delay between groups) planned as per-node rules,
//! applied on every daemon atomically (prepare on all, then commit; any refusal or unreachable
//! node rolls everything back), healed, and the evidence of every node gathered into one report.

pub mod coordinator;
pub mod inventory;
pub mod plan;
pub mod report;

pub use coordinator::{ApplyReport, Coordinator, NodeStep, Prepared};
pub use inventory::{Inventory, Node};
pub use plan::ClusterFault;

/// Errors of the coordinator's inputs (the outcome of an apply is an [`ApplyReport`]).
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The inventory file could not be read.
    #[error("inventory {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The inventory does not parse.
    #[error("inventory {path}: {message}")]
    Parse {
        /// The file.
        path: std::path::PathBuf,
        /// The parser's message (line and field).
        message: String,
    },
    /// The inventory or the fault names something wrong.
    #[error("{field}: {problem}")]
    Invalid {
        /// The field (`node[2].address`, `groups`).
        field: String,
        /// What is wrong and what to do.
        problem: String,
    },
    /// A node's token or CA could not be loaded.
    #[error("node {node}: {problem}")]
    Credentials {
        /// The node.
        node: String,
        /// What is wrong.
        problem: String,
    },
    /// The async runtime could not start.
    #[error("starting the coordinator runtime: {0}")]
    Runtime(#[source] std::io::Error),
}
