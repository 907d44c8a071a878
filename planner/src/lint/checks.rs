//! The reference, coverage, scenario-shape and nemesis rules.

use std::collections::BTreeSet;

use super::{LintFinding, Rule, finding, naming};
use crate::{
    catalog, duration, nemesis,
    plan::{NemesisStep, Plan, Scenario},
};

fn dup<'a>(kind: &str, items: impl Iterator<Item = (&'a str, usize)>, out: &mut Vec<LintFinding>) {
    let mut seen = BTreeSet::new();
    for (id, line) in items {
        if !seen.insert(id) {
            out.push(finding(
                line,
                Rule::DuplicateId,
                format!("{kind} id `{id}` is used twice: give each {kind} its own id"),
            ));
        }
    }
}

pub(super) fn duplicates(plan: &Plan, out: &mut Vec<LintFinding>) {
    dup(
        "claim",
        plan.claims.iter().map(|c| (c.id.as_str(), c.line)),
        out,
    );
    dup(
        "hypothesis",
        plan.hypotheses.iter().map(|h| (h.id.as_str(), h.line)),
        out,
    );
    dup(
        "scenario",
        plan.scenarios.iter().map(|s| (s.id.as_str(), s.line)),
        out,
    );
}

pub(super) fn claims(plan: &Plan, out: &mut Vec<LintFinding>) {
    for c in &plan.claims {
        if !plan.scenarios.iter().any(|s| s.claim == c.id) {
            out.push(finding(
                c.line,
                Rule::ClaimUncovered,
                format!(
                    "no scenario targets claim `{}`: add a [[scenario]] with claim = \"{}\" (or drop the claim and say why under ## Residual uncertainties)",
                    c.id, c.id
                ),
            ));
        }
    }
}

pub(super) fn hypotheses(plan: &Plan, out: &mut Vec<LintFinding>) {
    for h in &plan.hypotheses {
        if h.claims.is_empty() {
            out.push(finding(
                h.line,
                Rule::HypothesisWithoutClaim,
                format!(
                    "hypothesis `{}` names no claim: set claims = [\"...\"] to the claims it would break",
                    h.id
                ),
            ));
        }
        for c in h.claims.iter().filter(|c| plan.claim(c).is_none()) {
            out.push(finding(
                h.line,
                Rule::HypothesisWithoutClaim,
                format!(
                    "hypothesis `{}` names unknown claim `{c}`: use the id of a [[claim]]",
                    h.id
                ),
            ));
        }
    }
}

pub(super) fn scenario(plan: &Plan, s: &Scenario, out: &mut Vec<LintFinding>) {
    references(plan, s, out);
    let claim = plan.claim(&s.claim);
    let named = match claim {
        Some(c) => naming::named_after_claim(&s.id, &c.id, &c.statement),
        None => plan
            .claims
            .iter()
            .any(|c| naming::named_after_claim(&s.id, &c.id, &c.statement)),
    };
    if !named {
        out.push(finding(
            s.line,
            Rule::ScenarioNamedAfterSetup,
            format!(
                "scenario `{}` is named after its setup: name it after the claim it falsifies, e.g. `{}_under_...`",
                s.id, s.claim
            ),
        ));
    }
    if catalog::find(&s.technique).is_none() {
        let ids: Vec<&str> = catalog::TECHNIQUES.iter().map(|t| t.id).collect();
        out.push(finding(
            s.line,
            Rule::TechniqueUnknown,
            format!(
                "technique `{}` is not in the catalog: use one of {} (see dst plan techniques)",
                s.technique,
                ids.join(", ")
            ),
        ));
    }
    if s.checker
        .as_ref()
        .is_none_or(|c| c.model.trim().is_empty() || c.checker.trim().is_empty())
    {
        out.push(finding(
            s.line,
            Rule::ScenarioWithoutChecker,
            format!(
                "scenario `{}` has no checker: add checker = {{ model = \"...\", checker = \"...\" }} that decides the claim",
                s.id
            ),
        ));
    }
    landing(s, out);
    for (i, step) in s.nemesis.iter().enumerate() {
        nemesis_step(plan, s, i, step, out);
    }
    let ids: Vec<(String, usize)> = s
        .nemesis
        .iter()
        .enumerate()
        .map(|(i, n)| (n.effective_id(i), s.line))
        .collect();
    let mut seen = BTreeSet::new();
    for (id, line) in &ids {
        if !seen.insert(id) {
            out.push(finding(
                *line,
                Rule::NemesisInvalid,
                format!(
                    "scenario `{}` has two nemesis steps with id `{id}`: set a distinct id = \"...\" on each so their evidence can be told apart",
                    s.id
                ),
            ));
        }
    }
    if let Some(v) = s
        .duration
        .as_deref()
        .filter(|v| duration::parse_ms(v).is_none())
    {
        out.push(finding(
            s.line,
            Rule::NemesisInvalid,
            format!(
                "scenario `{}`: duration = \"{v}\" is not a duration: write it like 30s, 500ms, 2m",
                s.id
            ),
        ));
    }
}

fn references(plan: &Plan, s: &Scenario, out: &mut Vec<LintFinding>) {
    let mut problem = |msg: String| out.push(finding(s.line, Rule::ScenarioUnknownReference, msg));
    if plan.claim(&s.claim).is_none() {
        problem(format!(
            "scenario `{}` targets unknown claim `{}`: use the id of a [[claim]]",
            s.id, s.claim
        ));
    }
    match plan.hypothesis(&s.hypothesis) {
        None => problem(format!(
            "scenario `{}` tests unknown hypothesis `{}`: use the id of a [[hypothesis]]",
            s.id, s.hypothesis
        )),
        Some(h) if !h.claims.contains(&s.claim) && plan.claim(&s.claim).is_some() => {
            problem(format!(
                "scenario `{}` targets claim `{}` but hypothesis `{}` does not name it: add it to the hypothesis' claims or pick another hypothesis",
                s.id, s.claim, h.id
            ))
        }
        Some(_) => {}
    }
}

fn landing(s: &Scenario, out: &mut Vec<LintFinding>) {
    let message = if s.manual.is_some() {
        s.evidence
            .as_deref()
            .is_none_or(|e| e.trim().is_empty())
            .then(|| {
                format!(
                    "manual scenario `{}` has no landing requirement: set evidence = \"...\" to the artifact that proves it ran",
                    s.id
                )
            })
    } else if s.nemesis.is_empty() {
        Some(format!(
            "scenario `{}` has no nemesis, so nothing can land: add [[scenario.nemesis]] with min_applied = N",
            s.id
        ))
    } else if s
        .nemesis
        .iter()
        .any(|n| n.min_applied.is_none_or(|m| m == 0))
    {
        Some(format!(
            "scenario `{}` has a nemesis step without a landing requirement: set min_applied = N (N >= 1) on every [[scenario.nemesis]]",
            s.id
        ))
    } else {
        None
    };
    if let Some(m) = message {
        out.push(finding(s.line, Rule::ScenarioWithoutLanding, m));
    }
}

fn nemesis_step(
    plan: &Plan,
    s: &Scenario,
    i: usize,
    step: &NemesisStep,
    out: &mut Vec<LintFinding>,
) {
    let mut bad = |m: String| {
        out.push(finding(
            s.line,
            Rule::NemesisInvalid,
            format!("scenario `{}` nemesis[{i}]: {m}", s.id),
        ))
    };
    match (&step.name, &step.faults) {
        (None, None) => bad(
            "set name = \"...\" (a named nemesis) or faults = { net = [...] } (a fault set)"
                .to_owned(),
        ),
        (Some(_), Some(_)) => bad("set either name or faults, not both".to_owned()),
        (Some(name), None) => match nemesis::find(name) {
            None => {
                let names: Vec<&str> = nemesis::NAMED_NEMESES.iter().map(|n| n.name).collect();
                bad(format!(
                    "unknown named nemesis `{name}`: use one of {} or write a fault set",
                    names.join(", ")
                ))
            }
            Some(n) if !(n.targets.0..=n.targets.1).contains(&step.targets.len()) => bad(format!(
                "nemesis `{name}` takes {} to {} targets, got {}: set targets = [\"n1\", ...] accordingly",
                n.targets.0,
                n.targets.1,
                step.targets.len()
            )),
            Some(_) => {
                let hosts = s
                    .hosts
                    .or(plan.front.sut.as_ref().map(|sut| sut.hosts))
                    .unwrap_or(usize::MAX);
                for t in &step.targets {
                    match nemesis::host_number(t) {
                        Some(n) if n <= hosts => {}
                        Some(_) => bad(format!(
                            "target `{t}` is beyond the {hosts} hosts: use n1..n{hosts}"
                        )),
                        None => bad(format!(
                            "target `{t}` is not a host name: hosts are n1, n2, ..."
                        )),
                    }
                }
            }
        },
        (None, Some(f)) if !f.contains_key("net") => {
            bad("a fault set needs a net = [...] list in the dst fault-file shape".to_owned())
        }
        (None, Some(_)) => {}
    }
    let run = s
        .duration
        .as_deref()
        .unwrap_or(&plan.front.defaults.duration);
    if let (Some(run_ms), Some(start), Some(len)) = (
        duration::parse_ms(run),
        duration::parse_ms(step.start.as_deref().unwrap_or("0s")),
        step.duration.as_deref().and_then(duration::parse_ms),
    ) && start + len > run_ms
    {
        bad(format!(
            "the window ends at {}ms, after the {run} workload: schedule it inside the run",
            start + len
        ));
    }
    for (field, value) in [("start", &step.start), ("duration", &step.duration)] {
        if let Some(v) = value.as_deref().filter(|v| duration::parse_ms(v).is_none()) {
            bad(format!(
                "{field} = \"{v}\" is not a duration: write it like 5s, 500ms, 2m"
            ));
        }
    }
}
