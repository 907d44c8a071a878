//! Checker outcomes: [`CheckResult`] (`Ok | Illegal{witness} | Unknown{reason}`), [`Verdict`]
//! and exit codes, and the [`Budget`] a search may spend.

use crate::elle::ElleWitness;
use crate::invariants::Violation;
use crate::linearizable::LinWitness;
use serde::Serialize;
use std::fmt;
use std::time::{Duration, Instant};

/// What a checker decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum CheckResult {
    /// The claim holds for this history.
    Ok,
    /// A violation, with the evidence.
    Illegal {
        /// Why.
        witness: Witness,
    },
    /// The checker could not decide (never a guess).
    Unknown {
        /// What stopped it.
        reason: UnknownReason,
    },
}

/// Evidence for an `Illegal` result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Witness {
    /// No linearization exists.
    Linearizability(LinWitness),
    /// Transactional anomalies found.
    Transactional(ElleWitness),
    /// Invariant violations.
    Invariant {
        /// Each violation found (capped).
        violations: Vec<Violation>,
    },
}

/// Why a check ended without a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "why", rename_all = "kebab-case")]
pub enum UnknownReason {
    /// The deadline passed.
    Timeout {
        /// Milliseconds spent.
        elapsed_ms: u64,
    },
    /// The step budget ran out.
    StepBudget {
        /// Steps taken.
        steps: u64,
    },
}

impl fmt::Display for UnknownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnknownReason::Timeout { elapsed_ms } => write!(f, "timeout after {elapsed_ms} ms"),
            UnknownReason::StepBudget { steps } => {
                write!(f, "step budget of {steps} steps exhausted")
            }
        }
    }
}

/// The three-way verdict of a checker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Claim held.
    Ok,
    /// Violation found.
    Illegal,
    /// Undecided.
    Unknown,
}

impl Verdict {
    /// Process exit code per DESIGN.md verdict codes: Ok 0 (PASS), Illegal 1 (FAIL), Unknown 3 (INCONCLUSIVE).
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Ok => 0,
            Verdict::Illegal => 1,
            Verdict::Unknown => 3,
        }
    }
}

impl CheckResult {
    /// The verdict of this result.
    pub fn verdict(&self) -> Verdict {
        match self {
            CheckResult::Ok => Verdict::Ok,
            CheckResult::Illegal { .. } => Verdict::Illegal,
            CheckResult::Unknown { .. } => Verdict::Unknown,
        }
    }

    /// True for `Ok`.
    pub fn is_ok(&self) -> bool {
        matches!(self, CheckResult::Ok)
    }

    /// True for `Illegal`.
    pub fn is_illegal(&self) -> bool {
        matches!(self, CheckResult::Illegal { .. })
    }
}

/// Limits on a search. `Default` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budget {
    /// Stop with `Unknown` after this instant.
    pub deadline: Option<Instant>,
    /// Stop with `Unknown` after this many model steps (per partition).
    pub max_steps: Option<u64>,
}

impl Budget {
    /// No limits.
    pub fn unlimited() -> Budget {
        Budget::default()
    }

    /// A deadline `timeout` from now.
    pub fn with_timeout(timeout: Duration) -> Budget {
        Budget {
            deadline: Some(Instant::now() + timeout),
            max_steps: None,
        }
    }

    /// At most `steps` model steps per partition.
    pub fn with_max_steps(steps: u64) -> Budget {
        Budget {
            deadline: None,
            max_steps: Some(steps),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_design_verdicts() {
        assert_eq!(CheckResult::Ok.verdict().exit_code(), 0);
        let u = CheckResult::Unknown {
            reason: UnknownReason::StepBudget { steps: 5 },
        };
        assert_eq!(u.verdict().exit_code(), 3);
        assert_eq!(
            serde_json::to_value(&u).unwrap()["reason"]["why"],
            "step-budget"
        );
        assert_eq!(Verdict::Illegal.exit_code(), 1);
    }
}
