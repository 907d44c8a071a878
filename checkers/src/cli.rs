//! Everything the `dst check` verb needs: the registry of checkers by name, loading a
//! history file (format by flag, extension or content), running the check, and the
//! human / JSON report with its exit code.

use crate::elle::{self, ElleError};
use crate::format::{Format, FormatError};
use crate::history::{History, HistoryError};
use crate::invariants::{self, Invariant};
use crate::linearizable;
use crate::model::{self, Model, ModelError};
use crate::result::{Budget, CheckResult, Verdict, Witness};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// A checker selectable by `--model NAME`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Checker {
    /// Linearizable read/write register.
    Register,
    /// Linearizable compare-and-set register (nil initial value).
    CasRegister,
    /// Linearizable key-value store, checked per key.
    Kv,
    /// Linearizable grow-only set.
    Set,
    /// Linearizable FIFO queue.
    Queue,
    /// Linearizable counter.
    Counter,
    /// Linearizable append-only log.
    Log,
    /// Elle list-append transactions.
    ListAppend,
    /// Elle rw-register transactions.
    RwRegister,
    /// One invariant.
    Invariant(Invariant),
    /// Every invariant.
    Invariants,
}

impl Checker {
    /// Every accepted `--model` name.
    pub const NAMES: [&'static str; 15] = [
        "register",
        "cas-register",
        "kv",
        "set",
        "queue",
        "counter",
        "log",
        "list-append",
        "rw-register",
        "no-lost-writes",
        "no-duplicates",
        "idempotent-retries",
        "monotonic-reads",
        "counter-bounds",
        "invariants",
    ];

    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Checker::Register => "register",
            Checker::CasRegister => "cas-register",
            Checker::Kv => "kv",
            Checker::Set => "set",
            Checker::Queue => "queue",
            Checker::Counter => "counter",
            Checker::Log => "log",
            Checker::ListAppend => "list-append",
            Checker::RwRegister => "rw-register",
            Checker::Invariant(i) => i.name(),
            Checker::Invariants => "invariants",
        }
    }
}

impl FromStr for Checker {
    type Err = CheckError;
    fn from_str(s: &str) -> Result<Checker, CheckError> {
        Ok(match s {
            "register" => Checker::Register,
            "cas-register" | "cas" | "etcd" => Checker::CasRegister,
            "kv" | "key-value" => Checker::Kv,
            "set" => Checker::Set,
            "queue" | "fifo" => Checker::Queue,
            "counter" => Checker::Counter,
            "log" | "append-log" => Checker::Log,
            "list-append" | "elle" => Checker::ListAppend,
            "rw-register" => Checker::RwRegister,
            "invariants" => Checker::Invariants,
            other => Checker::Invariant(
                Invariant::from_name(other)
                    .ok_or_else(|| CheckError::UnknownChecker(other.to_string()))?,
            ),
        })
    }
}

/// Why `dst check` could not produce a verdict.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The history file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid in its format.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// Events do not pair up into operations.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// Operations do not fit the chosen model.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Transactions are malformed.
    #[error(transparent)]
    Elle(#[from] ElleError),
    /// `--model` names no checker.
    #[error("unknown model {0:?}; expected one of: {names}", names = Checker::NAMES.join(", "))]
    UnknownChecker(String),
    /// `--timeout` is not a duration like `50ms`, `10s`, `2m`.
    #[error("invalid duration {0:?} (expected e.g. 500ms, 10s, 2m)")]
    BadDuration(String),
}

impl CheckError {
    /// Exit code per DESIGN.md: usage errors 64, otherwise HARNESS_ERROR (5).
    pub fn exit_code(&self) -> i32 {
        match self {
            CheckError::UnknownChecker(_) | CheckError::BadDuration(_) => 64,
            CheckError::Format(FormatError::UnknownFormat(_)) => 64,
            _ => 5,
        }
    }
}

/// Parses `50ms`, `10s`, `2m`, `1h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, CheckError> {
    let bad = || CheckError::BadDuration(s.to_string());
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit.trim() {
        "ms" => n / 1e3,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "us" | "µs" => n / 1e6,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| bad())
}

/// The outcome of `dst check`, printable as text or JSON.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Checker name.
    pub checker: String,
    /// History format read.
    pub format: Format,
    /// Events in the history.
    pub events: usize,
    /// Operations (invocation + completion pairs).
    pub operations: usize,
    /// Operations with unknown outcome.
    pub pending: usize,
    /// Ok / Illegal / Unknown.
    pub verdict: Verdict,
    /// Process exit code for this verdict (0, 1, 3).
    pub exit_code: i32,
    /// Checking time, milliseconds (parsing excluded).
    pub elapsed_ms: f64,
    /// The full result with witness or reason.
    pub result: CheckResult,
}

impl CheckReport {
    /// Multi-line human output: verdict line, then the witness or reason.
    pub fn render_human(&self) -> String {
        let head = match self.verdict {
            Verdict::Ok => "OK",
            Verdict::Illegal => "ILLEGAL",
            Verdict::Unknown => "UNKNOWN",
        };
        let mut s = format!(
            "{head}: {} over {} operations ({} pending, {} events, {}) in {:.1} ms\n",
            self.checker,
            self.operations,
            self.pending,
            self.events,
            format_name(self.format),
            self.elapsed_ms
        );
        match &self.result {
            CheckResult::Ok => {}
            CheckResult::Unknown { reason } => s.push_str(&format!("could not decide: {reason}\n")),
            CheckResult::Illegal { witness } => s.push_str(&render_witness(witness)),
        }
        s
    }

    /// Operation ids the witness mentions.
    pub fn witness_ops(&self) -> Vec<usize> {
        match &self.result {
            CheckResult::Illegal {
                witness: Witness::Linearizability(w),
            } => w.op_ids(),
            CheckResult::Illegal {
                witness: Witness::Transactional(w),
            } => w.op_ids(),
            CheckResult::Illegal {
                witness: Witness::Invariant { violations },
            } => violations
                .iter()
                .flat_map(|v| v.ops.iter().copied())
                .collect(),
            _ => Vec::new(),
        }
    }
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Jsonl => "jsonl",
        Format::Edn => "edn",
        Format::PorcupineEtcd => "porcupine-etcd",
    }
}

/// Plain-text rendering of any witness.
pub fn render_witness(w: &Witness) -> String {
    match w {
        Witness::Linearizability(l) => l.render(),
        Witness::Transactional(e) => e.render(),
        Witness::Invariant { violations } => violations
            .iter()
            .map(|v| format!("{}: {}\n", v.invariant.name(), v.message))
            .collect(),
    }
}

/// Reads and parses a history file. `format: None` detects it from the name and content.
pub fn load_history(path: &Path, format: Option<Format>) -> Result<(History, Format), CheckError> {
    let text = std::fs::read_to_string(path).map_err(|source| CheckError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let format = format.unwrap_or_else(|| Format::detect(&name, &text));
    Ok((format.parse(&text)?, format))
}

fn lin<M: Model>(
    m: &M,
    ops: &[crate::history::Operation],
    budget: &Budget,
) -> Result<CheckResult, ModelError> {
    linearizable::check(m, ops, budget)
}

/// Runs `checker` over a parsed history.
pub fn check_history(
    history: &History,
    format: Format,
    checker: Checker,
    budget: Budget,
) -> Result<CheckReport, CheckError> {
    let ops = history.operations()?;
    let started = Instant::now();
    let result = match checker {
        Checker::Register => lin(&model::Register, &ops, &budget)?,
        Checker::CasRegister => lin(&model::CasRegister, &ops, &budget)?,
        Checker::Kv => lin(&model::Kv, &ops, &budget)?,
        Checker::Set => lin(&model::Set, &ops, &budget)?,
        Checker::Queue => lin(&model::Queue, &ops, &budget)?,
        Checker::Counter => lin(&model::Counter, &ops, &budget)?,
        Checker::Log => lin(&model::Log, &ops, &budget)?,
        Checker::ListAppend => elle::to_result(elle::list_append::check(&ops)?),
        Checker::RwRegister => elle::to_result(elle::rw_register::check(&ops)?),
        Checker::Invariant(i) => invariants::check(i, &ops),
        Checker::Invariants => invariants::check_all(&Invariant::ALL, &ops),
    };
    let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    let verdict = result.verdict();
    Ok(CheckReport {
        checker: checker.name().to_string(),
        format,
        events: history.len(),
        operations: ops.len(),
        pending: ops.iter().filter(|o| o.is_pending()).count(),
        verdict,
        exit_code: verdict.exit_code(),
        elapsed_ms,
        result,
    })
}

/// `dst check HISTORY --model NAME [--format F] [--timeout D]` in one call. Returns the
/// parsed history too (for `--html`).
pub fn check_file(
    path: &Path,
    model: &str,
    format: Option<&str>,
    timeout: Option<Duration>,
) -> Result<(History, CheckReport), CheckError> {
    let checker: Checker = model.parse()?;
    let format = format.map(Format::from_str).transpose()?;
    let (history, format) = load_history(path, format)?;
    let budget = timeout.map_or_else(Budget::unlimited, Budget::with_timeout);
    let report = check_history(&history, format, checker, budget)?;
    Ok((history, report))
}
