//! `dst plan coverage`: the coverage matrix filled from real runs. A cell is covered only where
//! a run's verdict was decided (PASS or FAIL) and every required nemesis landed.

mod run;

use serde::Serialize;

use crate::{
    plan::{Plan, Scenario},
    render::{MatrixClaim, MatrixHypothesis, plan_matrix},
    table::markdown_table,
    verdict::Verdict,
};

pub use run::{CoverageError, NemesisLanding, RunResult, read_run_dir};

/// State of one scenario, or of a cell (the best of its scenarios).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The hypothesis names the claim but no scenario tests it.
    NoScenario,
    /// Only manual scenarios: dst has no evidence about them.
    Manual,
    /// No run of the scenario was given.
    NotRun,
    /// Runs exist but none was decided with every nemesis landed.
    Attempted,
    /// A decided PASS with every nemesis landed.
    Covered,
    /// A decided FAIL with every nemesis landed: covered, and the claim is falsified.
    Falsified,
}

impl Status {
    /// True for covered and falsified.
    pub fn is_covered(self) -> bool {
        matches!(self, Self::Covered | Self::Falsified)
    }

    fn label(self) -> &'static str {
        match self {
            Self::NoScenario => "GAP",
            Self::Manual => "manual",
            Self::NotRun => "not run",
            Self::Attempted => "not covered",
            Self::Covered => "covered (PASS)",
            Self::Falsified => "covered (FAIL: claim falsified)",
        }
    }
}

/// What the runs say about one scenario.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScenarioOutcome {
    /// Scenario id.
    pub scenario: String,
    /// Its status.
    pub status: Status,
    /// Verdict of the run that decided the status, if any.
    pub verdict: Option<Verdict>,
    /// Why it is (not) covered.
    pub reason: String,
    /// Run directory of that run, if known.
    pub run: Option<String>,
}

/// One cell of the filled matrix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CoverageCell {
    /// Claim id.
    pub claim: String,
    /// Hypothesis id.
    pub hypothesis: String,
    /// Best status of its scenarios.
    pub status: Status,
    /// Per-scenario outcomes.
    pub scenarios: Vec<ScenarioOutcome>,
}

/// Per-claim summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClaimCoverage {
    /// Claim id.
    pub claim: String,
    /// Best status over its cells (`no-scenario` when it has none).
    pub status: Status,
}

/// The coverage matrix filled from runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CoverageMatrix {
    /// System under test.
    pub system: String,
    /// Rows.
    pub claims: Vec<MatrixClaim>,
    /// Columns.
    pub hypotheses: Vec<MatrixHypothesis>,
    /// Cells where a hypothesis names a claim.
    pub cells: Vec<CoverageCell>,
    /// Per-claim summary.
    pub summary: Vec<ClaimCoverage>,
    /// Runs whose scenario id is not in the plan.
    pub unmatched_runs: Vec<String>,
}

/// Judges one run against the scenario's landing requirements.
fn judge(s: &Scenario, r: &RunResult) -> ScenarioOutcome {
    let missing: Vec<String> = s
        .nemesis
        .iter()
        .enumerate()
        .filter_map(|(i, step)| {
            let id = step.effective_id(i);
            let need = step.min_applied.unwrap_or(1);
            let ok = r
                .nemeses
                .iter()
                .any(|n| n.id == id && n.landed && n.applied.is_none_or(|a| a >= need));
            (!ok).then_some(id)
        })
        .collect();
    let (status, reason) = if !r.verdict.decided() {
        (
            Status::Attempted,
            format!("verdict {} is not decided", r.verdict.as_str()),
        )
    } else if !missing.is_empty() {
        (
            Status::Attempted,
            format!("no landing evidence for nemesis {}", missing.join(", ")),
        )
    } else if r.verdict == Verdict::Fail {
        (
            Status::Falsified,
            "checker found a violation with every nemesis landed".to_owned(),
        )
    } else {
        (
            Status::Covered,
            "checker decided PASS with every nemesis landed".to_owned(),
        )
    };
    ScenarioOutcome {
        scenario: s.id.clone(),
        status,
        verdict: Some(r.verdict),
        reason,
        run: r.dir.clone(),
    }
}

fn outcome(plan: &Plan, s: &Scenario, runs: &[RunResult]) -> ScenarioOutcome {
    let none = |status, reason: &str| ScenarioOutcome {
        scenario: s.id.clone(),
        status,
        verdict: None,
        reason: reason.to_owned(),
        run: None,
    };
    if let Some(why) = crate::compile::manual_reason(plan, s) {
        return none(Status::Manual, &format!("manual: {why}"));
    }
    runs.iter()
        .filter(|r| r.scenario == s.id)
        .map(|r| judge(s, r))
        .max_by_key(|o| o.status)
        .unwrap_or_else(|| none(Status::NotRun, "no run given for this scenario"))
}

/// Fills the plan's matrix from run results.
pub fn coverage(plan: &Plan, runs: &[RunResult]) -> CoverageMatrix {
    let planned = plan_matrix(plan);
    let cells: Vec<CoverageCell> = planned
        .cells
        .iter()
        .map(|cell| {
            let scenarios: Vec<ScenarioOutcome> = plan
                .scenarios
                .iter()
                .filter(|s| cell.scenarios.contains(&s.id))
                .map(|s| outcome(plan, s, runs))
                .collect();
            CoverageCell {
                claim: cell.claim.clone(),
                hypothesis: cell.hypothesis.clone(),
                status: scenarios
                    .iter()
                    .map(|o| o.status)
                    .max()
                    .unwrap_or(Status::NoScenario),
                scenarios,
            }
        })
        .collect();
    let summary = planned
        .claims
        .iter()
        .map(|c| ClaimCoverage {
            claim: c.id.clone(),
            status: cells
                .iter()
                .filter(|cell| cell.claim == c.id)
                .map(|cell| cell.status)
                .max()
                .unwrap_or(Status::NoScenario),
        })
        .collect();
    let unmatched_runs = runs
        .iter()
        .filter(|r| !plan.scenarios.iter().any(|s| s.id == r.scenario))
        .map(|r| r.scenario.clone())
        .collect();
    CoverageMatrix {
        system: planned.system,
        claims: planned.claims,
        hypotheses: planned.hypotheses,
        cells,
        summary,
        unmatched_runs,
    }
}

impl CoverageMatrix {
    /// The cell for (claim, hypothesis).
    pub fn cell(&self, claim: &str, hypothesis: &str) -> Option<&CoverageCell> {
        self.cells
            .iter()
            .find(|c| c.claim == claim && c.hypothesis == hypothesis)
    }

    /// Markdown: the matrix, the per-claim summary and every scenario's reason.
    pub fn render_markdown(&self) -> String {
        let mut headers = vec!["claim".to_owned()];
        headers.extend(self.hypotheses.iter().map(|h| h.id.clone()));
        let rows: Vec<Vec<String>> = self
            .claims
            .iter()
            .map(|c| {
                let mut row = vec![c.id.clone()];
                row.extend(self.hypotheses.iter().map(|h| {
                    self.cell(&c.id, &h.id)
                        .map_or("·".to_owned(), |cell| cell.status.label().to_owned())
                }));
                row
            })
            .collect();
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        let mut out = format!(
            "# Coverage from runs: {}\n\n{}\n## Claims\n\n",
            self.system,
            markdown_table(&headers, &rows)
        );
        let summary: Vec<Vec<String>> = self
            .summary
            .iter()
            .map(|s| vec![s.claim.clone(), s.status.label().to_owned()])
            .collect();
        out.push_str(&markdown_table(&["claim", "status"], &summary));
        out.push_str("\n## Scenarios\n\n");
        let mut seen = Vec::new();
        let rows: Vec<Vec<String>> = self
            .cells
            .iter()
            .flat_map(|c| c.scenarios.iter())
            .filter(|o| {
                let new = !seen.contains(&o.scenario);
                seen.push(o.scenario.clone());
                new
            })
            .map(|o| {
                vec![
                    o.scenario.clone(),
                    o.status.label().to_owned(),
                    o.verdict.map_or("-".to_owned(), |v| v.as_str().to_owned()),
                    o.reason.clone(),
                    o.run.clone().unwrap_or_else(|| "-".to_owned()),
                ]
            })
            .collect();
        out.push_str(&markdown_table(
            &["scenario", "status", "verdict", "reason", "run"],
            &rows,
        ));
        if !self.unmatched_runs.is_empty() {
            out.push_str(&format!(
                "\nRuns of scenarios not in the plan: {}\n",
                self.unmatched_runs.join(", ")
            ));
        }
        out
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".to_owned())
    }
}
