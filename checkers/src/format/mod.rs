//! History file formats: JSONL (native), Jepsen EDN, Porcupine's etcd log; detection by name/content.

pub mod edn;
pub mod jsonl;
pub mod porcupine;

use crate::history::History;
use std::str::FromStr;

/// A supported history encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// DESIGN.md JSONL, one op per line.
    Jsonl,
    /// Jepsen EDN: op maps, one per line or inside one vector.
    Edn,
    /// Porcupine's Jepsen etcd log (`INFO  jepsen.util - P\t:type\t:f\tvalue`).
    PorcupineEtcd,
}

/// Errors reading or writing a history format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// A JSONL line is not a valid op.
    #[error("line {line}: invalid JSONL op: {message}")]
    Json {
        /// 1-based line number.
        line: usize,
        /// serde_json's explanation.
        message: String,
    },
    /// EDN text could not be parsed.
    #[error("line {line}: EDN syntax error: {message}")]
    EdnSyntax {
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        message: String,
    },
    /// An EDN form is not an op map or lacks a required field.
    #[error("line {line}: EDN op {message}")]
    EdnOp {
        /// 1-based line number where the form starts.
        line: usize,
        /// What was wrong.
        message: String,
    },
    /// A Porcupine etcd log line could not be understood.
    #[error("line {line}: unrecognised etcd log line: {text}")]
    EtcdLine {
        /// 1-based line number.
        line: usize,
        /// The offending text.
        text: String,
    },
    /// The format name is not one of `jsonl`, `edn`, `porcupine-etcd`.
    #[error("unknown format {0:?} (expected jsonl, edn or porcupine-etcd)")]
    UnknownFormat(String),
}

impl FromStr for Format {
    type Err = FormatError;
    fn from_str(s: &str) -> Result<Format, FormatError> {
        match s.to_ascii_lowercase().as_str() {
            "jsonl" | "json" | "ndjson" => Ok(Format::Jsonl),
            "edn" | "jepsen" => Ok(Format::Edn),
            "porcupine-etcd" | "porcupine" | "etcd" | "etcd-log" => Ok(Format::PorcupineEtcd),
            _ => Err(FormatError::UnknownFormat(s.to_string())),
        }
    }
}

impl Format {
    /// All names accepted by [`Format::from_str`] as canonical spellings.
    pub const NAMES: [&'static str; 3] = ["jsonl", "edn", "porcupine-etcd"];

    /// Guesses the format from the file name and the first non-blank character(s).
    pub fn detect(file_name: &str, content: &str) -> Format {
        let lower = file_name.to_ascii_lowercase();
        if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") || lower.ends_with(".json") {
            return Format::Jsonl;
        }
        if lower.ends_with(".edn") {
            return Format::Edn;
        }
        let first = content
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("");
        if first.starts_with('{') && first.contains("\"process\"") {
            Format::Jsonl
        } else if first.starts_with('{') || first.starts_with('[') {
            Format::Edn
        } else if first.contains("jepsen.util") || lower.ends_with(".log") {
            Format::PorcupineEtcd
        } else {
            Format::Jsonl
        }
    }

    /// Parses text in this format.
    pub fn parse(self, text: &str) -> Result<History, FormatError> {
        match self {
            Format::Jsonl => jsonl::parse(text),
            Format::Edn => edn::parse(text),
            Format::PorcupineEtcd => porcupine::parse_etcd(text),
        }
    }
}
