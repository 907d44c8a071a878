//! The nine verdicts of DESIGN.md and the explicit rules that decide one from a run's facts:
//! preconditions, environment and harness errors, the checker's result, history sufficiency,
//! landing evidence, and a same-seed re-run.

use serde::{Deserialize, Serialize};

/// A run's verdict (one definition, shared with the planner that reads `verdict.json`); the
/// process exit code is [`Verdict::exit_code`].
pub use planner::verdict::Verdict;

/// What the checker said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CheckerOutcome {
    /// No violation.
    Ok,
    /// A violation, with a readable witness.
    Illegal {
        /// The witness (ops that could not be placed, the cycle, the lost write …).
        witness: String,
    },
    /// Budget or timeout reached.
    Unknown {
        /// Why it could not decide.
        reason: String,
    },
    /// The checker itself failed (malformed history, internal error).
    Error {
        /// What went wrong.
        message: String,
    },
}

/// Landing evidence of one required nemesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Landing {
    /// Nemesis id.
    pub nemesis: String,
    /// Packets/calls the scenario requires the fault to have acted on inside its window.
    pub required_applied: u64,
    /// What the kernel counters say it acted on inside its window.
    pub applied_in_window: u64,
    /// Completed (ok/fail) operations whose interval overlaps the window.
    pub ops_in_window: u64,
}

/// Everything the verdict depends on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// A precondition was not met, or the scenario was skipped: why.
    pub not_run: Option<String>,
    /// Environment failure: why (missing hook, permission, SUT did not start).
    pub environment_error: Option<String>,
    /// Harness failure: why (client crashed, history malformed).
    pub harness_error: Option<String>,
    /// The checker's result (None when it did not run).
    pub checker: Option<CheckerOutcome>,
    /// Completed operations (type ok or fail) in the history.
    pub completed_ops: u64,
    /// Minimum completed operations overall.
    pub min_ops: u64,
    /// Minimum completed operations inside each fault window.
    pub min_ops_per_window: u64,
    /// One entry per required nemesis.
    pub landings: Vec<Landing>,
    /// For a failure, whether a re-run with the same seed reproduced it (None = not re-run).
    pub rerun_reproduced: Option<bool>,
}

/// A verdict and the rule that produced it, in words a reviewer can check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The verdict.
    pub verdict: Verdict,
    /// Why, one line per rule that applied.
    pub reasons: Vec<String>,
}

/// Applies the rules in order; the first that matches decides.
///
/// 1. NOT_RUN if skipped.
/// 2. ENVIRONMENT_ERROR.
/// 3. HARNESS_ERROR (also a checker error or a missing checker result).
/// 4. A violation: FAIL, or FLAKY when a same-seed re-run did not reproduce it. A violation is
///    reported even if the history is thin or a fault did not land: the witness stands alone.
/// 5. INSUFFICIENT_HISTORY when too few ops completed overall or in any fault window.
/// 6. INCONCLUSIVE when the checker could not decide.
/// 7. NOT_LANDED when a required fault applied fewer than required inside its window.
/// 8. PASS.
pub fn decide(f: &Facts) -> Decision {
    let d = |verdict, reasons: Vec<String>| Decision { verdict, reasons };
    if let Some(why) = &f.not_run {
        return d(Verdict::NotRun, vec![format!("not run: {why}")]);
    }
    if let Some(why) = &f.environment_error {
        return d(
            Verdict::EnvironmentError,
            vec![format!("environment: {why}")],
        );
    }
    if let Some(why) = &f.harness_error {
        return d(Verdict::HarnessError, vec![format!("harness: {why}")]);
    }
    let checker = match &f.checker {
        None => {
            return d(
                Verdict::HarnessError,
                vec!["harness: the checker did not run".into()],
            );
        }
        Some(CheckerOutcome::Error { message }) => {
            return d(
                Verdict::HarnessError,
                vec![format!("checker error: {message}")],
            );
        }
        Some(c) => c,
    };
    if let CheckerOutcome::Illegal { witness } = checker {
        return match f.rerun_reproduced {
            Some(false) => d(
                Verdict::Flaky,
                vec![format!(
                    "checker found a violation ({witness}) but a re-run with the same seed did not reproduce it"
                )],
            ),
            _ => d(
                Verdict::Fail,
                vec![format!("checker found a violation: {witness}")],
            ),
        };
    }
    let mut thin = Vec::new();
    if f.completed_ops < f.min_ops {
        thin.push(format!(
            "{} completed operations, the scenario needs {}",
            f.completed_ops, f.min_ops
        ));
    }
    for l in &f.landings {
        if l.ops_in_window < f.min_ops_per_window {
            thin.push(format!(
                "{} completed operations inside the window of {}, the scenario needs {}",
                l.ops_in_window, l.nemesis, f.min_ops_per_window
            ));
        }
    }
    if !thin.is_empty() {
        return d(Verdict::InsufficientHistory, thin);
    }
    if let CheckerOutcome::Unknown { reason } = checker {
        return d(
            Verdict::Inconclusive,
            vec![format!("checker could not decide: {reason}")],
        );
    }
    let missing: Vec<String> = f
        .landings
        .iter()
        .filter(|l| l.applied_in_window < l.required_applied.max(1))
        .map(|l| {
            format!(
                "{} applied {} inside its window, {} required",
                l.nemesis,
                l.applied_in_window,
                l.required_applied.max(1)
            )
        })
        .collect();
    if !missing.is_empty() {
        return d(Verdict::NotLanded, missing);
    }
    let mut reasons = vec!["checker found no violation".to_string()];
    reasons.extend(f.landings.iter().map(|l| {
        format!(
            "{} landed: {} applied in window",
            l.nemesis, l.applied_in_window
        )
    }));
    d(Verdict::Pass, reasons)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn landed(n: &str, applied: u64, ops: u64) -> Landing {
        Landing {
            nemesis: n.into(),
            required_applied: 10,
            applied_in_window: applied,
            ops_in_window: ops,
        }
    }

    fn good() -> Facts {
        Facts {
            checker: Some(CheckerOutcome::Ok),
            completed_ops: 500,
            min_ops: 100,
            min_ops_per_window: 10,
            landings: vec![landed("partition", 250, 80)],
            ..Facts::default()
        }
    }

    #[test]
    fn each_rule_in_order() {
        let illegal = Some(CheckerOutcome::Illegal {
            witness: "add 7 acknowledged, missing from final read".into(),
        });
        let cases: Vec<(&str, Facts, Verdict)> = vec![
            ("all good", good(), Verdict::Pass),
            (
                "skipped",
                Facts {
                    not_run: Some("etcd not installed".into()),
                    ..good()
                },
                Verdict::NotRun,
            ),
            (
                "no hook",
                Facts {
                    environment_error: Some("no LSM".into()),
                    ..good()
                },
                Verdict::EnvironmentError,
            ),
            (
                "client crash",
                Facts {
                    harness_error: Some("client 3 panicked".into()),
                    ..good()
                },
                Verdict::HarnessError,
            ),
            (
                "checker error",
                Facts {
                    checker: Some(CheckerOutcome::Error {
                        message: "bad line 3".into(),
                    }),
                    ..good()
                },
                Verdict::HarnessError,
            ),
            (
                "checker missing",
                Facts {
                    checker: None,
                    ..good()
                },
                Verdict::HarnessError,
            ),
            (
                "violation",
                Facts {
                    checker: illegal.clone(),
                    ..good()
                },
                Verdict::Fail,
            ),
            (
                "violation reproduced",
                Facts {
                    checker: illegal.clone(),
                    rerun_reproduced: Some(true),
                    ..good()
                },
                Verdict::Fail,
            ),
            (
                "violation not reproduced",
                Facts {
                    checker: illegal.clone(),
                    rerun_reproduced: Some(false),
                    ..good()
                },
                Verdict::Flaky,
            ),
            (
                "violation on a thin history still fails",
                Facts {
                    checker: illegal,
                    completed_ops: 3,
                    ..good()
                },
                Verdict::Fail,
            ),
            (
                "too few ops",
                Facts {
                    completed_ops: 20,
                    ..good()
                },
                Verdict::InsufficientHistory,
            ),
            (
                "too few ops in window",
                Facts {
                    landings: vec![landed("partition", 250, 2)],
                    ..good()
                },
                Verdict::InsufficientHistory,
            ),
            (
                "budget",
                Facts {
                    checker: Some(CheckerOutcome::Unknown {
                        reason: "1ms budget".into(),
                    }),
                    ..good()
                },
                Verdict::Inconclusive,
            ),
            (
                "not landed",
                Facts {
                    landings: vec![landed("partition", 0, 80)],
                    ..good()
                },
                Verdict::NotLanded,
            ),
            (
                "landed below requirement",
                Facts {
                    landings: vec![landed("partition", 9, 80)],
                    ..good()
                },
                Verdict::NotLanded,
            ),
        ];
        for (name, facts, want) in cases {
            let got = decide(&facts);
            assert_eq!(got.verdict, want, "{name}: {:?}", got.reasons);
            assert!(!got.reasons.is_empty(), "{name}: a verdict always says why");
        }
    }

    #[test]
    fn exit_codes_follow_design() {
        let all = [
            Verdict::Pass,
            Verdict::Fail,
            Verdict::NotLanded,
            Verdict::Inconclusive,
            Verdict::InsufficientHistory,
            Verdict::HarnessError,
            Verdict::EnvironmentError,
            Verdict::Flaky,
            Verdict::NotRun,
        ];
        for (i, v) in all.iter().enumerate() {
            assert_eq!(v.exit_code() as usize, i, "{}", v.as_str());
        }
        assert_eq!(
            serde_json::to_string(&Verdict::NotLanded).unwrap(),
            "\"NOT_LANDED\""
        );
    }
}
