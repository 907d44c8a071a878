//! Plan lint: the rules a plan must satisfy before it is compiled, each finding with its line.
//! The rules are listed (with their fix) in `planner/PLAN_FORMAT.md`.

mod adequacy;
mod checks;
pub mod naming;

use std::fmt;

use serde::Serialize;

use crate::plan::{self, Plan, PlanError};

/// A lint rule. The kebab-case name is what findings print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// The document does not parse (fence, front matter or TOML error).
    Parse,
    /// The plan has no claims at all (what `dst plan init` produces).
    EmptyPlan,
    /// Two claims, hypotheses or scenarios share an id.
    DuplicateId,
    /// A claim that no scenario targets.
    ClaimUncovered,
    /// A hypothesis that names no claim, or names a claim the plan does not have.
    HypothesisWithoutClaim,
    /// A scenario naming an unknown claim or hypothesis, or a claim its hypothesis does not name.
    ScenarioUnknownReference,
    /// A scenario without `checker = { model, checker }`.
    ScenarioWithoutChecker,
    /// A scenario without a landing requirement (`min_applied` per nemesis, or `evidence` if manual).
    ScenarioWithoutLanding,
    /// A scenario id made of setup words instead of words of the claim it targets.
    ScenarioNamedAfterSetup,
    /// A technique id that is not in the catalog.
    TechniqueUnknown,
    /// A nemesis step that is neither a known named nemesis nor a fault set, or has a bad field.
    NemesisInvalid,
    /// The adequacy section is missing or does not mention every critical claim id.
    AdequacyIncomplete,
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 12] = [
        Self::Parse,
        Self::EmptyPlan,
        Self::DuplicateId,
        Self::ClaimUncovered,
        Self::HypothesisWithoutClaim,
        Self::ScenarioUnknownReference,
        Self::ScenarioWithoutChecker,
        Self::ScenarioWithoutLanding,
        Self::ScenarioNamedAfterSetup,
        Self::TechniqueUnknown,
        Self::NemesisInvalid,
        Self::AdequacyIncomplete,
    ];

    /// The kebab-case name (`claim-uncovered`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Parse => "parse",
            Self::EmptyPlan => "empty-plan",
            Self::DuplicateId => "duplicate-id",
            Self::ClaimUncovered => "claim-uncovered",
            Self::HypothesisWithoutClaim => "hypothesis-without-claim",
            Self::ScenarioUnknownReference => "scenario-unknown-reference",
            Self::ScenarioWithoutChecker => "scenario-without-checker",
            Self::ScenarioWithoutLanding => "scenario-without-landing",
            Self::ScenarioNamedAfterSetup => "scenario-named-after-setup",
            Self::TechniqueUnknown => "technique-unknown",
            Self::NemesisInvalid => "nemesis-invalid",
            Self::AdequacyIncomplete => "adequacy-incomplete",
        }
    }
}

/// One problem in a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LintFinding {
    /// 1-based line in the plan.
    pub line: usize,
    /// Which rule.
    pub rule: Rule,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for LintFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: [{}] {}",
            self.line,
            self.rule.name(),
            self.message
        )
    }
}

pub(crate) fn finding(line: usize, rule: Rule, message: impl Into<String>) -> LintFinding {
    LintFinding {
        line,
        rule,
        message: message.into(),
    }
}

/// Lints a parsed plan. Findings are sorted by line; an empty list means the plan is clean.
pub fn lint(plan: &Plan) -> Vec<LintFinding> {
    let mut out = Vec::new();
    if plan.claims.is_empty() {
        out.push(finding(
            plan.claims_line,
            Rule::EmptyPlan,
            "the plan has no claims yet: add [[claim]] entries under ## Claims, then hypotheses and scenarios",
        ));
    }
    checks::duplicates(plan, &mut out);
    checks::claims(plan, &mut out);
    checks::hypotheses(plan, &mut out);
    for s in &plan.scenarios {
        checks::scenario(plan, s, &mut out);
    }
    adequacy::check(plan, &mut out);
    out.sort_by(|a, b| a.line.cmp(&b.line).then(a.rule.cmp(&b.rule)));
    out
}

/// Parses and lints a plan document; a parse error becomes a single `parse` finding.
pub fn lint_source(text: &str) -> Vec<LintFinding> {
    match plan::parse(text) {
        Ok(plan) => lint(&plan),
        Err(e) => {
            let line = match &e {
                PlanError::UnclosedFence { line } | PlanError::Toml { line, .. } => *line,
                PlanError::NoFrontMatter => 1,
            };
            let message = e.to_string();
            let message = message
                .strip_prefix(&format!("line {line}: "))
                .unwrap_or(&message)
                .to_owned();
            vec![finding(line, Rule::Parse, message)]
        }
    }
}
