//! What Elle-style checking reports: [`Anomaly`] (named, with ops and a readable
//! explanation) and the [`ConsistencyModel`] each anomaly rules out.

use serde::Serialize;

/// Consistency models, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsistencyModel {
    /// Read committed (ruled out by G0, G1a, G1b, G1c, internal and order anomalies).
    ReadCommitted,
    /// Snapshot isolation (ruled out by G-single and lost update).
    SnapshotIsolation,
    /// Serializability (ruled out by G2-item).
    Serializable,
    /// Strict serializability (ruled out by cycles that need process or real-time order).
    StrictSerializable,
}

impl ConsistencyModel {
    /// Every model, weakest first.
    pub const ALL: [ConsistencyModel; 4] = [
        ConsistencyModel::ReadCommitted,
        ConsistencyModel::SnapshotIsolation,
        ConsistencyModel::Serializable,
        ConsistencyModel::StrictSerializable,
    ];

    /// Kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            ConsistencyModel::ReadCommitted => "read-committed",
            ConsistencyModel::SnapshotIsolation => "snapshot-isolation",
            ConsistencyModel::Serializable => "serializable",
            ConsistencyModel::StrictSerializable => "strict-serializable",
        }
    }
}

/// One anomaly found in a transactional history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anomaly {
    /// `G0`, `G1a`, `G1b`, `G1c`, `G-single`, `G2-item` (cycles may end in `-process` or
    /// `-realtime`), `internal`, `lost-update`, `duplicate-elements`, `incompatible-order`.
    pub name: String,
    /// The weakest model this anomaly rules out.
    pub violates: ConsistencyModel,
    /// Operation ids involved (for cycles: in cycle order).
    pub ops: Vec<usize>,
    /// Human-readable explanation.
    pub explanation: String,
}

/// The weakest model an anomaly name rules out.
pub fn violated_by(name: &str) -> ConsistencyModel {
    if name.ends_with("-process") || name.ends_with("-realtime") {
        return ConsistencyModel::StrictSerializable;
    }
    match name {
        "G-single" | "lost-update" => ConsistencyModel::SnapshotIsolation,
        "G2-item" => ConsistencyModel::Serializable,
        _ => ConsistencyModel::ReadCommitted,
    }
}

impl Anomaly {
    /// Builds an anomaly; its violated model follows from its name.
    pub fn new(name: &str, ops: Vec<usize>, explanation: String) -> Anomaly {
        Anomaly {
            name: name.to_string(),
            violates: violated_by(name),
            ops,
            explanation,
        }
    }
}
