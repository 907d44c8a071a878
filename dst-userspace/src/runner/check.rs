//! Runs the scenario's checker binding over the recorded history: linearizability against the
//! model and the listed invariants, within the budget; the result in the verdict engine's terms
//! with a witness a reviewer can read.

use std::time::Duration;

use checkers::{
    Budget, CheckResult, History, Witness,
    history::Op,
    invariants::{self, Invariant},
    linearizable,
    model::{CasRegister, Model, Set},
};
use serde::Serialize;

use super::scenario::CheckerBinding;
use crate::verdict::CheckerOutcome;

/// What each check said, for the report.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    /// Linearizability result, if it ran.
    pub linearizable: Option<CheckResult>,
    /// Invariant results by name.
    pub invariants: Vec<(String, CheckResult)>,
    /// Completed client operations (ok or fail) the checker saw.
    pub completed_ops: u64,
    /// Client operations left indeterminate (info).
    pub indeterminate_ops: u64,
}

/// At most `n` characters of `s`, with an ellipsis when cut.
fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// Human-readable witness.
pub fn describe(w: &Witness) -> String {
    match w {
        Witness::Invariant { violations } => {
            const SHOWN: usize = 3;
            let mut s = violations
                .iter()
                .take(SHOWN)
                .map(|v| format!("{}: {}", v.invariant.name(), v.message))
                .collect::<Vec<_>>()
                .join("; ");
            if violations.len() > SHOWN {
                s.push_str(&format!(
                    "; and {} more (see report.md)",
                    violations.len() - SHOWN
                ));
            }
            s
        }
        Witness::Linearizability(l) => {
            let unplaced: Vec<String> = l
                .unplaced
                .iter()
                .map(|u| {
                    format!(
                        "process {} {} (history #{})",
                        u.op.process,
                        clip(&u.op.description, 160),
                        u.op.invoke
                    )
                })
                .collect();
            format!(
                "not linearizable ({} model{}): after a linearizable prefix of {} operations the state is {}, and none of these can come next: {}",
                l.model,
                l.partition
                    .as_ref()
                    .map(|p| format!(", key {p}"))
                    .unwrap_or_default(),
                l.prefix_len,
                clip(&l.state, 160),
                unplaced.join("; ")
            )
        }
        Witness::Transactional(t) => {
            // One line per anomaly kind: its name, what it rules out, and the first cycle's
            // transactions (long reads clipped); the full explanation is in report.md.
            let first = t.anomalies.first().map_or(String::new(), |a| {
                format!(
                    "; e.g. {} over ops {:?}: {}",
                    a.name,
                    a.ops,
                    clip(&a.explanation.replace('\n', " "), 400)
                )
            });
            format!(
                "transactional anomalies {} (the history is not {}){first}",
                t.anomaly_types.join(", "),
                serde_json::to_value(t.weakest_violated)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
            )
        }
    }
}

/// Checks each key's operations on its own (registers are independent per key); the first
/// non-Ok result decides.
fn check_per_key<M: Model>(
    model: &M,
    ops: &[checkers::history::Operation],
    budget: &Budget,
) -> Result<CheckResult, checkers::model::ModelError> {
    let mut keys: Vec<Option<&serde_json::Value>> = ops.iter().map(|o| o.key.as_ref()).collect();
    keys.sort_by_key(|k| k.map(|v| v.to_string()));
    keys.dedup();
    for k in keys {
        let part: Vec<_> = ops
            .iter()
            .filter(|o| o.key.as_ref() == k)
            .cloned()
            .collect();
        let r = linearizable::check(model, &part, budget)?;
        if !r.is_ok() {
            return Ok(r);
        }
    }
    Ok(CheckResult::Ok)
}

/// Writes the self-contained HTML timeline (operations per process, fault windows, the first
/// invariant's witness highlighted — or the model's when no invariant is bound). Best effort:
/// a timeline that cannot be drawn leaves the text report unaffected.
pub fn write_timeline(binding: &CheckerBinding, ops: &[Op], path: &std::path::Path) {
    let name = binding.invariants.first().unwrap_or(&binding.model);
    let Ok(checker) = name.parse::<checkers::cli::Checker>() else {
        return;
    };
    let history = History::new(ops.to_vec());
    let budget = Budget::with_timeout(Duration::from_secs(10));
    if let Ok(report) =
        checkers::cli::check_history(&history, checkers::format::Format::Jsonl, checker, budget)
    {
        let _ = std::fs::write(path, checkers::html::render(&history, &report));
    }
}

/// Checks the history; errors (malformed history, unknown model) become `CheckerOutcome::Error`.
pub fn run(binding: &CheckerBinding, ops: Vec<Op>) -> (CheckerOutcome, Option<CheckReport>) {
    let history = History::new(ops);
    let paired = match history.operations() {
        Ok(p) => p,
        Err(e) => {
            return (
                CheckerOutcome::Error {
                    message: e.to_string(),
                },
                None,
            );
        }
    };
    let client: Vec<_> = paired
        .into_iter()
        .filter(|o| !o.process.is_nemesis())
        .collect();
    let completed = client
        .iter()
        .filter(|o| {
            matches!(
                o.status,
                checkers::history::Status::Ok | checkers::history::Status::Fail
            )
        })
        .count() as u64;
    let indeterminate = client.len() as u64 - completed;
    let mut report = CheckReport {
        linearizable: None,
        invariants: Vec::new(),
        completed_ops: completed,
        indeterminate_ops: indeterminate,
    };
    let mut outcome = CheckerOutcome::Ok;
    for name in &binding.invariants {
        let Some(inv) = Invariant::from_name(name) else {
            return (
                CheckerOutcome::Error {
                    message: format!("unknown invariant {name}"),
                },
                Some(report),
            );
        };
        let r = invariants::check(inv, &client);
        if let CheckResult::Illegal { witness } = &r {
            outcome = CheckerOutcome::Illegal {
                witness: describe(witness),
            };
        }
        report.invariants.push((name.clone(), r));
    }
    if binding.linearizable {
        let budget = Budget::with_timeout(if binding.timeout.is_zero() {
            Duration::from_secs(30)
        } else {
            binding.timeout
        });
        let result: Result<CheckResult, String> = match binding.model.as_str() {
            "cas-register" => {
                check_per_key(&CasRegister, &client, &budget).map_err(|e| e.to_string())
            }
            "set" => linearizable::check(&Set, &client, &budget).map_err(|e| e.to_string()),
            // Any other checker (exec client): the checkers crate's own dispatch by name.
            other => match other.parse::<checkers::cli::Checker>() {
                Ok(c) => checkers::cli::check_history(
                    &history,
                    checkers::format::Format::Jsonl,
                    c,
                    budget,
                )
                .map(|r| r.result)
                .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
        };
        match result {
            Ok(r) => {
                match (&r, &outcome) {
                    (CheckResult::Illegal { witness }, CheckerOutcome::Ok) => {
                        outcome = CheckerOutcome::Illegal {
                            witness: describe(witness),
                        };
                    }
                    (CheckResult::Unknown { reason }, CheckerOutcome::Ok) => {
                        outcome = CheckerOutcome::Unknown {
                            reason: reason.to_string(),
                        };
                    }
                    _ => {}
                }
                report.linearizable = Some(r);
            }
            Err(message) => {
                return (CheckerOutcome::Error { message }, Some(report));
            }
        }
    }
    (outcome, Some(report))
}
