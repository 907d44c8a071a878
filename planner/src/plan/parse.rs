//! Reading a plan document: front matter and TOML blocks into the plan model, with lines.

use serde::Deserialize;

use super::{
    Claim, FrontMatter, Hypothesis, Plan, PlanError, Scenario, Section,
    markdown::{self, Block, Unclosed},
};

/// What one TOML block may hold.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBlock {
    #[serde(default)]
    claim: Vec<Claim>,
    #[serde(default)]
    hypothesis: Vec<Hypothesis>,
    #[serde(default)]
    scenario: Vec<Scenario>,
}

fn toml_error(block: &Block, e: &toml::de::Error) -> PlanError {
    let offset = e.span().map_or(0, |s| s.start);
    let line = block.first_line
        + block.text[..offset.min(block.text.len())]
            .matches('\n')
            .count();
    PlanError::Toml {
        line,
        message: e.message().trim().to_owned(),
    }
}

/// Lines of the `[[header]]` tables in a block, in order (fallback: the block's first line).
fn header_lines(block: &Block, header: &str) -> impl Fn(usize) -> usize {
    let lines: Vec<usize> = block
        .text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with(header))
        .map(|(i, _)| block.first_line + i)
        .collect();
    let first = block.first_line;
    move |n| lines.get(n).copied().unwrap_or(first)
}

/// Parses a plan document. Every claim, hypothesis and scenario keeps its header line.
pub fn parse(text: &str) -> Result<Plan, PlanError> {
    let doc = markdown::split(text).map_err(|Unclosed(line)| PlanError::UnclosedFence { line })?;
    let front_block = doc.front.as_ref().ok_or(PlanError::NoFrontMatter)?;
    let mut front: FrontMatter =
        toml::from_str(&front_block.text).map_err(|e| toml_error(front_block, &e))?;
    front.line = front_block.first_line;

    let mut plan = Plan {
        front,
        claims_line: doc
            .headings
            .iter()
            .find(|h| h.level == 2 && h.title.to_lowercase().starts_with("claims"))
            .map_or(1, |h| h.line),
        ..Plan::default()
    };
    for block in doc.blocks.iter().filter(|b| b.lang == "toml") {
        let raw: RawBlock = toml::from_str(&block.text).map_err(|e| toml_error(block, &e))?;
        let at = header_lines(block, "[[claim]]");
        plan.claims
            .extend(raw.claim.into_iter().enumerate().map(|(n, mut c)| {
                c.line = at(n);
                c
            }));
        let at = header_lines(block, "[[hypothesis]]");
        plan.hypotheses
            .extend(raw.hypothesis.into_iter().enumerate().map(|(n, mut h)| {
                h.line = at(n);
                h
            }));
        let at = header_lines(block, "[[scenario]]");
        plan.scenarios
            .extend(raw.scenario.into_iter().enumerate().map(|(n, mut s)| {
                s.line = at(n);
                s
            }));
    }
    let section = |prefix| {
        doc.section(prefix)
            .map(|(line, text)| Section { line, text })
    };
    plan.adequacy = section("adequacy");
    plan.residual = section("residual");
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = r#"+++
system = "kv"
+++
## Claims
```toml
[[claim]]
id = "c1"
statement = "acked writes survive"
source = "README"
criticality = "critical"

[[claim]]
id = "c2"
statement = "reads are fresh"
source = "README"
criticality = "low"
```
## Hypotheses
```toml
[[hypothesis]]
id = "h1"
claims = ["c1"]
mechanism = "crash"
description = "leader dies after ack"
```
## Scenarios
```toml
[[scenario]]
id = "c1_survives_crash"
claim = "c1"
hypothesis = "h1"
technique = "crash-recovery"
checker = { model = "kv", checker = "linearizable" }

[[scenario.nemesis]]
name = "kill-node"
targets = ["n1"]
min_applied = 1
```
## Adequacy
c1 is covered.
"#;

    #[test]
    fn parses_items_with_their_header_lines() {
        let plan = parse(PLAN).unwrap();
        assert_eq!(plan.front.system, "kv");
        assert_eq!(plan.front.line, 2);
        let lines: Vec<(&str, usize)> = plan
            .claims
            .iter()
            .map(|c| (c.id.as_str(), c.line))
            .chain(plan.hypotheses.iter().map(|h| (h.id.as_str(), h.line)))
            .chain(plan.scenarios.iter().map(|s| (s.id.as_str(), s.line)))
            .collect();
        assert_eq!(
            lines,
            [("c1", 6), ("c2", 12), ("h1", 20), ("c1_survives_crash", 28)]
        );
        assert_eq!(plan.scenarios[0].nemesis[0].min_applied, Some(1));
        assert_eq!(plan.adequacy.as_ref().unwrap().line, 40);
        assert!(plan.residual.is_none());
        assert_eq!(plan.claims_line, 4);
    }

    #[test]
    fn errors_point_at_lines() {
        let cases = [
            (
                PLAN.replace("mechanism = \"crash\"", "mechanism = \"gremlins\""),
                23,
            ),
            (
                PLAN.replace(
                    "source = \"README\"\ncriticality = \"low\"",
                    "source = \"README\"\ncriticality = \"low\"\ncolour = 1",
                ),
                17,
            ),
            ("no front matter\n".to_owned(), 1),
            (PLAN.replace("system = \"kv\"", "system = "), 2),
        ];
        for (text, line) in cases {
            let e = parse(&text).unwrap_err();
            let got = match &e {
                PlanError::Toml { line, .. } => *line,
                PlanError::NoFrontMatter => 1,
                PlanError::UnclosedFence { line } => *line,
            };
            assert_eq!(got, line, "{e}");
            assert!(e.to_string().starts_with(&format!("line {line}:")), "{e}");
        }
    }
}
