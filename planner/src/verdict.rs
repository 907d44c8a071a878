//! The nine run verdicts of DESIGN.md, as the runner writes them in `verdict.json`.

use serde::{Deserialize, Serialize};

/// Outcome of one scenario run (exit code of `dst run` in the docs of each variant).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// (0) Claim held, every fault landed, history sufficient, checker decided.
    Pass,
    /// (1) The checker found a violation; a witness is attached.
    Fail,
    /// (2) The checker passed but a required fault shows no evidence.
    NotLanded,
    /// (3) The checker could not decide in its budget.
    Inconclusive,
    /// (4) Too few completed operations, overall or inside fault windows.
    InsufficientHistory,
    /// (5) Test-side failure: client crash, malformed history, checker error.
    HarnessError,
    /// (6) Kernel lacks a hook, permission, or the system under test would not start.
    EnvironmentError,
    /// (7) A failure that a re-run with the same seed did not reproduce.
    Flaky,
    /// (8) Skipped or blocked by a precondition.
    NotRun,
}

impl Verdict {
    /// True when the checker reached a decision about the claim (PASS or FAIL).
    pub fn decided(self) -> bool {
        matches!(self, Self::Pass | Self::Fail)
    }

    /// The spelling used in `verdict.json` and reports (`NOT_LANDED`).
    /// Process exit code (DESIGN.md): PASS 0 … NOT_RUN 8.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Pass => 0,
            Self::Fail => 1,
            Self::NotLanded => 2,
            Self::Inconclusive => 3,
            Self::InsufficientHistory => 4,
            Self::HarnessError => 5,
            Self::EnvironmentError => 6,
            Self::Flaky => 7,
            Self::NotRun => 8,
        }
    }

    /// The verdict's name as printed (same spelling as serde).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Fail => "FAIL",
            Self::NotLanded => "NOT_LANDED",
            Self::Inconclusive => "INCONCLUSIVE",
            Self::InsufficientHistory => "INSUFFICIENT_HISTORY",
            Self::HarnessError => "HARNESS_ERROR",
            Self::EnvironmentError => "ENVIRONMENT_ERROR",
            Self::Flaky => "FLAKY",
            Self::NotRun => "NOT_RUN",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pass_and_fail_are_decided_and_spellings_match_serde() {
        let all = [
            (Verdict::Pass, true),
            (Verdict::Fail, true),
            (Verdict::NotLanded, false),
            (Verdict::Inconclusive, false),
            (Verdict::InsufficientHistory, false),
            (Verdict::HarnessError, false),
            (Verdict::EnvironmentError, false),
            (Verdict::Flaky, false),
            (Verdict::NotRun, false),
        ];
        for (v, decided) in all {
            assert_eq!(v.decided(), decided, "{v:?}");
            assert_eq!(
                serde_json::to_string(&v).unwrap(),
                format!("\"{}\"", v.as_str())
            );
        }
    }
}
