//! The durable history recorder: JSONL operations (DESIGN.md schema) appended with group commit,
//! acknowledged only once on disk, with torn-tail recovery and an index that survives restarts.
//!
//! Usable without the daemon: [`Recorder::open`] then [`Recorder::append`] (blocking) or
//! [`Recorder::append_async`].

mod op;
mod recorder;
mod recover;

use std::path::PathBuf;

pub use op::{OP_TYPES, normalize_op, parse_ops};
pub use recorder::{Appended, Recorder, Stats};
pub use recover::{Recovery, recover};

/// Errors of the history recorder.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// A file operation failed.
    #[error(
        "history file {path}: {op} failed: {source}; check the path, its permissions and free space"
    )]
    Io {
        /// What was being done.
        op: &'static str,
        /// The history file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An operation does not follow the history schema.
    #[error("{field}: {problem}")]
    Invalid {
        /// Path of the offending field, e.g. `[3].type`.
        field: String,
        /// What is wrong and what is allowed.
        problem: String,
    },
    /// A line before the end of the file is not JSON: not a torn tail, so nothing is truncated.
    #[error(
        "history file {path}: line {line} is not valid JSON ({problem}) but later lines are; \
         the file was changed by something else; repair or move it, dst will not truncate it"
    )]
    Corrupt {
        /// The history file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// The parser's message.
        problem: String,
    },
    /// An earlier write or sync failed, so durability can no longer be promised.
    #[error(
        "the history recorder stopped after a failed write or sync ({0}); restart it, the file \
         is recovered to its last durable operation on open"
    )]
    Failed(String),
    /// The recorder is shutting down.
    #[error("the history recorder is closed")]
    Closed,
}
