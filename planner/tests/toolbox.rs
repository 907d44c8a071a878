//! `dst toolbox` on the fixture repository finds the compose file, the Makefile's chaos target,
//! the Jepsen directory and the rest of the scaffolding.

use std::path::PathBuf;

use planner::toolbox::{Kind, discover, render_json, render_markdown};

#[test]
fn finds_compose_makefile_chaos_target_and_jepsen() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/toolbox");
    let findings = discover(&root).unwrap();
    let has = |kind: Kind, path: &str, detail: &str| {
        findings
            .iter()
            .any(|f| f.kind == kind && f.path == path && f.detail.contains(detail))
    };
    let cases = [
        (Kind::Compose, "docker-compose.yml", "kv1, kv2, kv3"),
        (
            Kind::MakeTargets,
            "Makefile",
            "testing/fault targets: test, chaos",
        ),
        (Kind::Jepsen, "jepsen/", "lein run test"),
        (Kind::Jepsen, "jepsen/project.clj", "jepsen"),
        (Kind::Runbook, "docs/runbook-failover.md", "Failover"),
        (Kind::Kubernetes, "deploy/statefulset.yaml", "StatefulSet"),
        (Kind::ChaosScript, "scripts/partition.sh", "fault injection"),
        (Kind::ChaosScript, "scripts/slow.sh", "netem"),
        (Kind::Ci, ".github/workflows/ci.yml", "GitHub Actions"),
        (Kind::TestFramework, "go.mod", "go test"),
        (Kind::JustRecipes, "justfile", "chaos"),
    ];
    for (kind, path, detail) in cases {
        assert!(
            has(kind, path, detail),
            "{kind:?} {path} {detail}: {findings:#?}"
        );
    }
    let md = render_markdown(&findings);
    assert!(md.starts_with("| kind | path | detail |"), "{md}");
    let json: serde_json::Value = serde_json::from_str(&render_json(&findings)).unwrap();
    assert_eq!(json.as_array().unwrap().len(), findings.len());
    assert_eq!(json[0]["kind"].as_str().map(str::is_empty), Some(false));
}

#[test]
fn a_missing_root_is_an_error_that_names_it() {
    let e = discover(&PathBuf::from("/nonexistent/planner-toolbox")).unwrap_err();
    assert!(
        e.to_string().contains("/nonexistent/planner-toolbox"),
        "{e}"
    );
}
