//! Scenario files stay runnable: the shipped scenarios and everything `dst plan compile` emits
//! from the example plan must parse and validate with the runner's own parser.

use dst::runner::scenario::Scenario;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn shipped_scenarios_parse() {
    let dir = root().join("examples/scenarios");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let text = std::fs::read_to_string(&p).unwrap();
            Scenario::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            n += 1;
        }
    }
    assert!(n >= 1, "no scenario in {}", dir.display());
}

#[test]
fn compiled_example_plan_parses_with_the_runner() {
    let text = std::fs::read_to_string(root().join("examples/plans/replicated-kv.md")).unwrap();
    let plan = planner::parse(&text).unwrap();
    assert!(
        planner::lint(&plan).is_empty(),
        "the example plan must lint clean"
    );
    let compiled = planner::compile(&plan);
    let mut runnable = 0;
    for c in &compiled {
        if let planner::Compiled::Scenario { id, toml, .. } = c {
            Scenario::parse(toml)
                .unwrap_or_else(|e| panic!("compiled scenario {id} does not parse: {e}\n{toml}"));
            runnable += 1;
        }
    }
    assert!(runnable >= 6, "only {runnable} runnable scenarios compiled");
}
