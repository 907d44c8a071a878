//! `dst plan init SYSTEM`: a skeleton plan with every section and commented templates. It lints
//! with exactly one finding, `empty-plan`, until the first claim is written.

/// The skeleton plan for `system`.
pub fn init(system: &str) -> String {
    let techniques: Vec<&str> = crate::catalog::TECHNIQUES.iter().map(|t| t.id).collect();
    let mechanisms: Vec<&str> = crate::mechanism::Mechanism::ALL
        .iter()
        .map(|m| m.name())
        .collect();
    format!(
        r#"+++
system = "{system}"
sources = []   # code and docs the claims come from: "README.md#replication", "src/raft.rs"

# How dst run starts the system under test on each host; placeholders {{id}} {{addr}} {{port}}
# {{peers}} {{dir}} {{bin}}. Health check = TCP connect to port.
# [sut]
# hosts = 3
# start = "{{bin}}/my-node --id {{id}} --listen {{addr}}:{{port}} --peers {{peers}}"
# port = 7000

[defaults]
duration = "15s"   # workload length; every nemesis window must end inside it
seed = 1
min_ops = 100
min_ops_per_window = 10
+++

# Test plan: {system}

Every scenario below exists to falsify one claim. See planner/PLAN_FORMAT.md.

## Claims

What the system promises, in its own words, with where it says so.

```toml
# [[claim]]
# id = "acked_write_durable"
# statement = "Every write acknowledged to a client survives the isolation of any minority of nodes."
# source = "README.md#durability"
# criticality = "critical"   # critical | high | medium | low
```

## Hypotheses

How each claim could break. mechanism: {mechanisms}.

```toml
# [[hypothesis]]
# id = "h_isolated_leader_acks"
# claims = ["acked_write_durable"]
# mechanism = "partition"
# description = "A leader cut off from its followers keeps acknowledging writes it cannot replicate."
```

## Coverage matrix

Run `dst plan render PLAN.md`: it is derived from the hypotheses' claims and the scenarios.

## Scenarios

Named after the claim they falsify, never after their setup. technique: {techniques}.

```toml
# [[scenario]]
# id = "acked_write_durable_when_leader_isolated"
# claim = "acked_write_durable"
# hypothesis = "h_isolated_leader_acks"
# technique = "jepsen-elle"
# checker = {{ model = "set", checker = "linearizable", invariants = ["no-lost-writes"] }}
# workload = {{ client = "kv-set", clients = 4, rate = 100, read_share = 0.2 }}
#
# [[scenario.nemesis]]
# name = "isolate-node"
# targets = ["n1"]
# start = "3s"
# duration = "6s"
# min_applied = 10
```

## Adequacy

Why these scenarios are enough for every critical claim (name each critical claim id).

## Residual uncertainties

What this plan cannot show, and why that risk is accepted.
"#,
        mechanisms = mechanisms.join(", "),
        techniques = techniques.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::{Rule, lint_source};

    #[test]
    fn skeleton_parses_and_lints_with_only_empty_plan() {
        let text = init("replicated-kv");
        let findings = lint_source(&text);
        let rules: Vec<Rule> = findings.iter().map(|f| f.rule).collect();
        assert_eq!(rules, [Rule::EmptyPlan], "{findings:?}");
        let plan = crate::plan::parse(&text).unwrap();
        assert_eq!(plan.front.system, "replicated-kv");
        assert!(plan.adequacy.is_some() && plan.residual.is_some());
    }
}
