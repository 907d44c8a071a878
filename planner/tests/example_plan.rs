//! The example plan `examples/plans/replicated-kv.md`: lints clean, has the required size,
//! renders, compiles to runner scenario files that read back, and coverage fills from runs.

use std::path::PathBuf;

use planner::{
    Compiled, RunResult, ScenarioFile, Verdict, compile,
    coverage::{NemesisLanding, Status},
    lint, parse,
    plan::NemesisStep,
    render_json, render_markdown, write_compiled,
};

fn example() -> planner::Plan {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/plans/replicated-kv.md");
    parse(&std::fs::read_to_string(path).unwrap()).unwrap()
}

const ISOLATED: &str = "acked_adds_durable_when_primary_isolated";

#[test]
fn lints_clean_with_enough_claims_hypotheses_and_scenarios() {
    let plan = example();
    let findings = lint(&plan);
    assert!(findings.is_empty(), "{findings:#?}");
    assert!(plan.claims.len() >= 4);
    assert!(plan.hypotheses.len() >= 6);
    assert!(plan.scenarios.len() >= 6);
    assert!(plan.residual.is_some());
}

#[test]
fn renders_the_matrix_as_markdown_and_json() {
    let plan = example();
    let md = render_markdown(&plan);
    assert!(md.contains("| acked_adds_durable (critical) |"), "{md}");
    assert!(md.contains(ISOLATED), "{md}");
    assert!(!md.contains("GAP"), "{md}");
    let json: serde_json::Value = serde_json::from_str(&render_json(&plan)).unwrap();
    assert_eq!(json["claims"].as_array().unwrap().len(), plan.claims.len());
    assert_eq!(json["hypotheses"][0]["mechanism"], "partition");
}

#[test]
fn compiles_six_runnable_scenarios_and_lists_the_manual_ones_with_why() {
    let plan = example();
    let compiled = compile(&plan);
    assert_eq!(compiled.len(), plan.scenarios.len());
    let manual: Vec<(&str, &str)> = compiled
        .iter()
        .filter_map(|c| match c {
            Compiled::Manual { id, why } => Some((id.as_str(), why.as_str())),
            Compiled::Scenario { .. } => None,
        })
        .collect();
    let want = [
        (
            "majority_available_while_primary_isolated",
            "checker `availability`",
        ),
        (
            "acked_adds_durable_despite_slow_replication",
            "nemesis `slow-network`",
        ),
        (
            "acked_adds_durable_across_majority_crash",
            "nemesis `kill-node`",
        ),
        ("single_primary_per_epoch_in_tla_model", "model checker"),
    ];
    assert_eq!(manual.len(), want.len(), "{manual:#?}");
    for ((id, why), (want_id, want_why)) in manual.iter().zip(want) {
        assert_eq!(*id, want_id);
        assert!(why.contains(want_why), "{id}: {why}");
    }
    let runnable: Vec<&Compiled> = compiled
        .iter()
        .filter(|c| matches!(c, Compiled::Scenario { .. }))
        .collect();
    assert_eq!(runnable.len(), 6);
    for c in runnable {
        let Compiled::Scenario { id, file, toml } = c else {
            unreachable!()
        };
        assert!(
            toml.starts_with("# Compiled by `dst plan compile`"),
            "{toml}"
        );
        let back = ScenarioFile::from_toml(toml).unwrap();
        assert_eq!(&back, file.as_ref(), "{id}");
        assert!([3, 5].contains(&back.topology.hosts), "{id}");
        assert_eq!(back.topology.subnet, 241);
        assert_eq!(back.workload.client, "kv-set");
        assert_eq!(back.checker.model, "set");
        assert!(back.nemesis.iter().all(|n| n.min_applied >= 10), "{id}");
        assert!(!back.claim.statement.is_empty());
    }
    let Some(Compiled::Scenario { file, .. }) = compiled.first() else {
        panic!("first scenario is runnable")
    };
    assert_eq!(file.nemesis[0].shape, "isolate");
    assert_eq!(file.nemesis[0].node, Some(1));
    assert_eq!(file.nemesis[0].id, "isolate-primary");
    // The durability claim is decided by the no-lost-writes invariant, without a search.
    assert!(!file.checker.linearizable);
    assert_eq!(file.checker.invariants, vec!["no-lost-writes".to_string()]);

    let dir = std::env::temp_dir().join(format!("planner-compile-{}", std::process::id()));
    let written = write_compiled(&dir, &compiled).unwrap();
    assert_eq!(written.len(), 7); // six scenario files + MANUAL.md
    let manual_md = std::fs::read_to_string(dir.join("MANUAL.md")).unwrap();
    assert!(
        manual_md.contains("single_primary_per_epoch_in_tla_model"),
        "{manual_md}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn run(scenario: &str, verdict: Verdict, landed: &[(&str, bool, u64)]) -> RunResult {
    RunResult {
        scenario: scenario.to_owned(),
        verdict,
        nemeses: landed
            .iter()
            .map(|(id, landed, applied)| NemesisLanding {
                id: (*id).to_owned(),
                landed: *landed,
                applied: Some(*applied),
            })
            .collect(),
        dir: None,
    }
}

#[test]
fn coverage_counts_only_decided_runs_whose_nemeses_all_landed() {
    let mut plan = example();
    // A second required window on the isolated-primary scenario: both must land.
    let two = plan
        .scenarios
        .iter_mut()
        .find(|s| s.id == "reads_monotonic_across_primary_stepdown")
        .unwrap();
    two.nemesis.push(NemesisStep {
        id: Some("halves-again".into()),
        name: Some("partition-halves".into()),
        start: Some("9s".into()),
        duration: Some("2s".into()),
        min_applied: Some(5),
        ..NemesisStep::default()
    });
    let (claim, hyp) = ("acked_adds_durable", "h_isolated_primary_acks");
    let (mono, mono_hyp) = ("reads_monotonic", "h_stepdown_discards_state");
    let mono_id = "reads_monotonic_across_primary_stepdown";
    // (runs, claim, hypothesis, expected cell status)
    let cases: Vec<(Vec<RunResult>, &str, &str, Status)> = vec![
        (vec![], claim, hyp, Status::NotRun),
        (
            vec![run(
                ISOLATED,
                Verdict::Pass,
                &[("isolate-primary", true, 40)],
            )],
            claim,
            hyp,
            Status::Covered,
        ),
        (
            vec![run(
                ISOLATED,
                Verdict::Fail,
                &[("isolate-primary", true, 40)],
            )],
            claim,
            hyp,
            Status::Falsified,
        ),
        (
            vec![run(
                ISOLATED,
                Verdict::Pass,
                &[("isolate-primary", false, 0)],
            )],
            claim,
            hyp,
            Status::Attempted,
        ),
        (
            // landed, but below min_applied = 10
            vec![run(
                ISOLATED,
                Verdict::Pass,
                &[("isolate-primary", true, 4)],
            )],
            claim,
            hyp,
            Status::Attempted,
        ),
        (
            vec![run(
                ISOLATED,
                Verdict::Inconclusive,
                &[("isolate-primary", true, 40)],
            )],
            claim,
            hyp,
            Status::Attempted,
        ),
        (
            vec![run(ISOLATED, Verdict::NotLanded, &[])],
            claim,
            hyp,
            Status::Attempted,
        ),
        (
            // a flaky run and a later decided one: the decided one counts
            vec![
                run(ISOLATED, Verdict::Flaky, &[("isolate-primary", true, 40)]),
                run(ISOLATED, Verdict::Pass, &[("isolate-primary", true, 40)]),
            ],
            claim,
            hyp,
            Status::Covered,
        ),
        (
            // one of two required nemeses landed: not covered
            vec![run(mono_id, Verdict::Pass, &[("halves", true, 30)])],
            mono,
            mono_hyp,
            Status::Attempted,
        ),
        (
            vec![run(
                mono_id,
                Verdict::Pass,
                &[("halves", true, 30), ("halves-again", true, 6)],
            )],
            mono,
            mono_hyp,
            Status::Covered,
        ),
        (
            vec![],
            "single_primary_per_epoch",
            "h_concurrent_promotions",
            Status::Manual,
        ),
        (
            // runs of a scenario dst cannot carry do not make it covered
            vec![run(
                "majority_available_while_primary_isolated",
                Verdict::Pass,
                &[("isolate-primary", true, 40)],
            )],
            "majority_available",
            "h_majority_cannot_promote",
            Status::Manual,
        ),
    ];
    for (runs, claim, hyp, want) in cases {
        let m = planner::coverage(&plan, &runs);
        let cell = m.cell(claim, hyp).unwrap();
        assert_eq!(
            cell.status, want,
            "{claim} x {hyp} with {runs:?}: {cell:#?}"
        );
    }
}

#[test]
fn coverage_reads_run_dirs_and_renders_summary() {
    let plan = example();
    let dir = std::env::temp_dir().join(format!("planner-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("verdict.json"),
        format!(r#"{{"scenario":"{ISOLATED}","verdict":"PASS"}}"#),
    )
    .unwrap();
    std::fs::write(
        dir.join("evidence.json"),
        r#"{"nemeses":[{"id":"isolate-primary","landed":true,"applied":57}]}"#,
    )
    .unwrap();
    let r = planner::read_run_dir(&dir).unwrap();
    let other = run("not_in_plan", Verdict::Pass, &[]);
    let m = planner::coverage(&plan, &[r, other]);
    std::fs::remove_dir_all(&dir).unwrap();
    let summary = m
        .summary
        .iter()
        .find(|s| s.claim == "acked_adds_durable")
        .unwrap();
    assert_eq!(summary.status, Status::Covered);
    assert_eq!(m.unmatched_runs, ["not_in_plan"]);
    let md = m.render_markdown();
    assert!(
        md.contains("covered (PASS)") && md.contains("not_in_plan"),
        "{md}"
    );
    let json: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
    assert!(json["cells"].as_array().unwrap().len() >= plan.hypotheses.len());
    assert!(planner::read_run_dir(&dir).is_err());
}
