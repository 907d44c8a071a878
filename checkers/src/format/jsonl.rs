//! JSONL import/export: one [`Op`] per line, blank lines ignored.

use super::FormatError;
use crate::history::{History, Op};

/// Parses a JSONL history; ops are renumbered by position.
pub fn parse(text: &str) -> Result<History, FormatError> {
    let mut ops = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let op: Op = serde_json::from_str(line).map_err(|e| FormatError::Json {
            line: i + 1,
            message: e.to_string(),
        })?;
        ops.push(op);
    }
    Ok(History::new(ops))
}

/// Writes a history as JSONL (one op per line, trailing newline).
pub fn export(history: &History) -> String {
    let mut out = String::new();
    for (i, op) in history.ops.iter().enumerate() {
        let mut op = op.clone();
        op.index.get_or_insert(i as u64);
        out.push_str(&serde_json::to_string(&op).expect("ops always serialise"));
        out.push('\n');
    }
    out
}
