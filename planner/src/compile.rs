//! `dst plan compile`: one runnable scenario file per scenario the dst runner can carry, and the
//! rest listed as manual with the reason. Compile does not lint; run [`crate::lint`] first.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::{
    catalog, duration, nemesis,
    plan::{NemesisStep, Plan, Scenario},
    runner,
    scenario::{
        CheckerSpec, ClaimRef, NemesisSpec, RunSpec, ScenarioFile, SutSpec, Topology, WorkloadSpec,
    },
};

/// File listing the manual scenarios, written next to the scenario files.
pub const MANUAL_FILE: &str = "MANUAL.md";

/// Why compiled scenarios could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The output directory or a file in it could not be written.
    #[error("cannot write {path}: {source} (check that the --out directory is writable)")]
    Write {
        /// File or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// What compile made of one scenario.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Compiled {
    /// A runnable scenario.
    Scenario {
        /// Scenario id (file stem).
        id: String,
        /// The scenario file.
        file: Box<ScenarioFile>,
        /// The file's text: a provenance comment header, then the TOML.
        toml: String,
    },
    /// A scenario dst cannot carry.
    Manual {
        /// Scenario id.
        id: String,
        /// Why, and what carries it instead.
        why: String,
    },
}

impl Compiled {
    /// The scenario id.
    pub fn id(&self) -> &str {
        match self {
            Self::Scenario { id, .. } | Self::Manual { id, .. } => id,
        }
    }
}

fn ms(text: &str) -> Option<u64> {
    duration::parse_ms(text)
}

/// The partition the runner schedules for one step, or why it cannot.
fn nemesis_spec(
    step: &NemesisStep,
    index: usize,
    hosts: usize,
    run_ms: u64,
) -> Result<NemesisSpec, String> {
    if step.faults.is_some() {
        return Err(format!(
            "nemesis[{index}] is a fault set: the runner schedules named partition shapes only; apply it with dst fault apply and keep the evidence"
        ));
    }
    let name = step.name.as_deref().unwrap_or_default();
    let named = nemesis::find(name).ok_or(format!("nemesis[{index}]: unknown nemesis `{name}`"))?;
    let shape = named
        .shape
        .ok_or_else(|| format!("nemesis `{name}`: {}", named.why_not))?;
    let node = match (shape, step.targets.first()) {
        ("isolate", Some(t)) => {
            let n = nemesis::host_number(t)
                .filter(|&n| n <= hosts)
                .ok_or(format!(
                    "nemesis[{index}]: target `{t}` is not one of n1..n{hosts}"
                ))?;
            Some(n)
        }
        ("isolate", None) => Some(0),
        _ => None,
    };
    let start = step.start.clone().unwrap_or_else(|| "0s".to_owned());
    let start_ms = ms(&start).ok_or(format!("nemesis[{index}]: bad start `{start}`"))?;
    let duration = match &step.duration {
        Some(d) => d.clone(),
        None => format!("{}ms", run_ms.saturating_sub(start_ms)),
    };
    let end =
        start_ms + ms(&duration).ok_or(format!("nemesis[{index}]: bad duration `{duration}`"))?;
    if end > run_ms || end == start_ms {
        return Err(format!(
            "nemesis[{index}]: the window {start}+{duration} does not fit inside the {run_ms}ms workload"
        ));
    }
    Ok(NemesisSpec {
        id: step.effective_id(index),
        shape: shape.to_owned(),
        node,
        one_way: step.one_way,
        start,
        duration,
        min_applied: step.min_applied.unwrap_or(1),
    })
}

/// The runner scenario file, or why dst cannot carry this scenario.
fn scenario_file(plan: &Plan, s: &Scenario) -> Result<ScenarioFile, String> {
    if let Some(why) = &s.manual {
        return Err(why.clone());
    }
    let t = catalog::find(&s.technique)
        .ok_or(format!("technique `{}` is not in the catalog", s.technique))?;
    if !t.carried_by_dst {
        return Err(format!(
            "technique `{}` is carried by external tools ({}), not by dst run",
            t.id,
            t.external_tools.join(", ")
        ));
    }
    let sut = plan.front.sut.as_ref().ok_or(
        "the front matter has no [sut] with start and port: dst run cannot start the system",
    )?;
    let claim = plan
        .claim(&s.claim)
        .ok_or(format!("claim `{}` is not in the plan", s.claim))?;
    let w = s
        .workload
        .as_ref()
        .ok_or("no workload: dst run needs a client")?;
    if !runner::CLIENTS.contains(&w.client.as_str()) {
        return Err(format!(
            "client `{}` is not built into the runner (it has {}): run this workload with your own harness",
            w.client,
            runner::CLIENTS.join(", ")
        ));
    }
    let c = s
        .checker
        .as_ref()
        .ok_or("no checker: dst run needs a model")?;
    if !runner::MODELS.contains(&c.model.as_str()) {
        return Err(format!(
            "model `{}`: the runner's clients record {} histories only",
            c.model,
            runner::MODELS.join(", ")
        ));
    }
    if !runner::CHECKERS.contains(&c.checker.as_str()) {
        return Err(format!(
            "checker `{}` is not carried by the runner (it has {}): check the history with that tool",
            c.checker,
            runner::CHECKERS.join(", ")
        ));
    }
    if let Some(i) = c
        .invariants
        .iter()
        .find(|i| !runner::INVARIANTS.contains(&i.as_str()))
    {
        return Err(format!("invariant `{i}` is not in the checker library"));
    }
    if c.checker == "invariants" && c.invariants.is_empty() {
        return Err("checker = \"invariants\" with no invariants decides nothing".to_owned());
    }
    if s.nemesis.is_empty() {
        return Err("no nemesis: nothing for dst to inject".to_owned());
    }
    let hosts = s.hosts.unwrap_or(sut.hosts);
    if !runner::HOSTS.contains(&hosts) {
        return Err(format!("{hosts} hosts: the runner takes 2..=16"));
    }
    let d = &plan.front.defaults;
    let run_duration = s.duration.clone().unwrap_or_else(|| d.duration.clone());
    let run_ms = ms(&run_duration).ok_or(format!("bad duration `{run_duration}`"))?;
    let nemesis = s
        .nemesis
        .iter()
        .enumerate()
        .map(|(i, n)| nemesis_spec(n, i, hosts, run_ms))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ScenarioFile {
        claim: ClaimRef {
            id: claim.id.clone(),
            statement: claim.statement.clone(),
        },
        topology: Topology {
            hosts,
            subnet: sut.subnet,
        },
        sut: SutSpec {
            start: sut.start.clone(),
            port: sut.port,
            health_timeout: sut.health_timeout.clone(),
        },
        workload: WorkloadSpec {
            client: w.client.clone(),
            clients: w.clients,
            rate: w.rate,
            duration: run_duration,
            read_share: w.read_share,
            keys: w.keys,
            op_timeout: w.op_timeout.clone(),
            settle: w.settle.clone(),
        },
        nemesis,
        checker: CheckerSpec {
            model: c.model.clone(),
            linearizable: c.checker == "linearizable",
            invariants: c.invariants.clone(),
            timeout: c.timeout.clone(),
        },
        run: RunSpec {
            seed: s.seed.unwrap_or(d.seed),
            min_ops: d.min_ops,
            min_ops_per_window: d.min_ops_per_window,
        },
    })
}

/// Why dst cannot carry this scenario (`None` when `dst run` can).
pub fn manual_reason(plan: &Plan, s: &Scenario) -> Option<String> {
    scenario_file(plan, s).err()
}

fn header(plan: &Plan, s: &Scenario) -> String {
    format!(
        "# Compiled by `dst plan compile` from the {} plan: edit the plan, not this file.\n# scenario: {}\n# hypothesis: {}\n# technique: {}\n\n",
        plan.front.system, s.id, s.hypothesis, s.technique
    )
}

/// Compiles every scenario of a plan, in plan order.
pub fn compile(plan: &Plan) -> Vec<Compiled> {
    plan.scenarios
        .iter()
        .map(|s| {
            let id = s.id.clone();
            match scenario_file(plan, s) {
                Err(why) => Compiled::Manual { id, why },
                Ok(file) => match file.to_toml() {
                    Ok(body) => Compiled::Scenario {
                        id,
                        toml: format!("{}{body}", header(plan, s)),
                        file: Box::new(file),
                    },
                    Err(e) => Compiled::Manual {
                        id,
                        why: format!(
                            "cannot be written as TOML ({e}): check for NaN or infinite numbers"
                        ),
                    },
                },
            }
        })
        .collect()
}

/// The manual scenarios as a Markdown list (what compile prints and writes to `MANUAL.md`).
pub fn render_manual(compiled: &[Compiled]) -> String {
    let mut out = String::from("# Manual scenarios (dst run cannot carry these)\n\n");
    for c in compiled {
        if let Compiled::Manual { id, why } = c {
            out.push_str(&format!("- `{id}`: {why}\n"));
        }
    }
    out
}

/// Writes `<id>.toml` per runnable scenario and `MANUAL.md` into `dir` (created if needed);
/// returns the paths written, scenario files first.
pub fn write_compiled(dir: &Path, compiled: &[Compiled]) -> Result<Vec<PathBuf>, CompileError> {
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CompileError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(write_err(dir))?;
    let mut written = Vec::new();
    for c in compiled {
        if let Compiled::Scenario { id, toml, .. } = c {
            let path = dir.join(format!("{id}.toml"));
            std::fs::write(&path, toml).map_err(write_err(&path))?;
            written.push(path);
        }
    }
    let path = dir.join(MANUAL_FILE);
    std::fs::write(&path, render_manual(compiled)).map_err(write_err(&path))?;
    written.push(path);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::parse;

    const PLAN: &str = r#"+++
system = "mini"
[sut]
start = "{bin}/node --id {id}"
port = 7000
[defaults]
duration = "10s"
+++
## Claims
```toml
[[claim]]
id = "acked_adds_durable"
statement = "Acknowledged adds survive."
source = "README"
criticality = "critical"

[[hypothesis]]
id = "h1"
claims = ["acked_adds_durable"]
mechanism = "partition"
description = "isolated primary acks"

[[scenario]]
id = "acked_adds_durable_when_isolated"
claim = "acked_adds_durable"
hypothesis = "h1"
technique = "jepsen-elle"
checker = { model = "set", checker = "linearizable" }
workload = { client = "kv-set" }

[[scenario.nemesis]]
name = "isolate-node"
targets = ["n2"]
start = "2s"
duration = "5s"
min_applied = 3
```
"#;

    #[test]
    fn runnable_scenarios_map_onto_the_runner_format() {
        let plan = parse(PLAN).unwrap();
        let compiled = compile(&plan);
        let [Compiled::Scenario { file, toml, .. }] = compiled.as_slice() else {
            panic!("one runnable scenario expected")
        };
        assert_eq!((file.topology.hosts, file.topology.subnet), (3, 240));
        assert_eq!(file.workload.duration, "10s");
        let n = &file.nemesis[0];
        assert_eq!(
            (n.id.as_str(), n.shape.as_str(), n.node),
            ("isolate-node", "isolate", Some(2))
        );
        assert!(toml.contains("# hypothesis: h1"), "{toml}");
        assert_eq!(ScenarioFile::from_toml(toml).unwrap(), **file);
    }

    #[test]
    fn what_the_runner_cannot_carry_becomes_manual_with_the_reason() {
        let cases = [
            (
                "name = \"isolate-node\"\ntargets = [\"n2\"]",
                "faults = { net = [] }",
                "fault set",
            ),
            (
                "name = \"isolate-node\"",
                "name = \"kill-node\"",
                "process faults",
            ),
            (
                "targets = [\"n2\"]",
                "targets = [\"n7\"]",
                "not one of n1..n3",
            ),
            ("duration = \"5s\"", "duration = \"9s\"", "does not fit"),
            (
                "client = \"kv-set\"",
                "client = \"my-client\"",
                "not built into the runner",
            ),
            ("model = \"set\"", "model = \"kv\"", "set histories only"),
            (
                "checker = \"linearizable\"",
                "checker = \"invariants\"",
                "no invariants",
            ),
            (
                "checker = \"linearizable\"",
                "checker = \"tlc\"",
                "not carried by the runner",
            ),
            (
                "technique = \"jepsen-elle\"",
                "technique = \"formal-methods-tla\"",
                "external tools",
            ),
            ("port = 7000", "port = 7000\nhosts = 17", "2..=16"),
            (
                "[sut]\nstart = \"{bin}/node --id {id}\"\nport = 7000\n",
                "",
                "no [sut]",
            ),
            (
                "hypothesis = \"h1\"\n",
                "hypothesis = \"h1\"\nmanual = \"needs TLA+\"\n",
                "needs TLA+",
            ),
        ];
        for (from, to, why_part) in cases {
            let text = PLAN.replacen(from, to, 1);
            assert_ne!(text, PLAN, "{from}");
            let plan = parse(&text).unwrap();
            match compile(&plan).as_slice() {
                [Compiled::Manual { why, .. }] => assert!(why.contains(why_part), "{to}: {why}"),
                other => panic!("{to}: expected manual, got {other:?}"),
            }
        }
    }
}
