//! Every lint rule has a failing and a passing fixture under `tests/fixtures/lint/<rule>/`.
//! The failing fixture marks each line the rule must report with `lint: <rule>`; the passing
//! fixture must lint clean.

use std::path::PathBuf;

use planner::{Rule, lint_source};

fn fixture(rule: Rule, which: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lint")
        .join(rule.name())
        .join(which);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_rule_fails_its_failing_fixture_at_the_marked_lines() {
    for rule in Rule::ALL {
        let text = fixture(rule, "fail.md");
        let marker = format!("lint: {}", rule.name());
        let want: Vec<usize> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.contains(&marker))
            .map(|(i, _)| i + 1)
            .collect();
        assert!(!want.is_empty(), "{}: fail.md marks no line", rule.name());
        let findings = lint_source(&text);
        let got: Vec<usize> = findings
            .iter()
            .filter(|f| f.rule == rule)
            .map(|f| f.line)
            .collect();
        assert_eq!(got, want, "{}: {findings:#?}", rule.name());
        for f in findings.iter().filter(|f| f.rule == rule) {
            assert!(f.message.len() > 20, "message says what to do: {f}");
        }
    }
}

#[test]
fn every_rule_passes_its_passing_fixture() {
    for rule in Rule::ALL {
        let findings = lint_source(&fixture(rule, "pass.md"));
        assert!(findings.is_empty(), "{}: {findings:#?}", rule.name());
    }
}

#[test]
fn findings_print_line_rule_and_fix() {
    let findings = lint_source(&fixture(Rule::TechniqueUnknown, "fail.md"));
    let text = findings[0].to_string();
    assert!(
        text.starts_with(&format!("line {}: [technique-unknown] ", findings[0].line)),
        "{text}"
    );
    assert!(text.contains("dst plan techniques"), "{text}");
}
