//! The cluster evidence report: every node's rules of a transaction with their counters, as
//! JSON (what `Coordinator::evidence` returns) and Markdown.

use std::fmt::Write as _;

use serde_json::Value;

/// Totals over a report: (rules, rules that landed, packets applied, unreachable nodes).
pub fn totals(evidence: &Value) -> (usize, usize, u64, usize) {
    let mut out = (0, 0, 0, 0);
    for n in evidence["nodes"].as_array().into_iter().flatten() {
        if n["reachable"] == false || n.get("error").is_some() {
            out.3 += 1;
        }
        for f in n["faults"].as_array().into_iter().flatten() {
            out.0 += 1;
            out.1 += usize::from(f["landed"] == true);
            out.2 += f["evidence"]["applied"].as_u64().unwrap_or(0);
        }
    }
    out
}

/// Markdown rendering: one table row per rule, grouped by node.
pub fn markdown(evidence: &Value) -> String {
    let mut s = String::new();
    let (rules, landed, applied, down) = totals(evidence);
    let _ = writeln!(
        s,
        "# Cluster evidence{}\n\n{rules} rules on {} nodes, {landed} landed, {applied} packets \
         acted on; {down} nodes unreachable or failing.\n",
        evidence["txn"]
            .as_str()
            .map(|t| format!(" — {t}"))
            .unwrap_or_default(),
        evidence["nodes"].as_array().map_or(0, Vec::len),
    );
    s.push_str(&table(evidence));
    s
}

/// The table of [`markdown`]: one row per rule, grouped by node; a node that could not be read
/// gets one row with its error.
pub fn table(evidence: &Value) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| node | rule | action | dst | state | backend | matched | applied | passed | landed |\n\
         |---|---|---|---|---|---|---:|---:|---:|---|"
    );
    for n in evidence["nodes"].as_array().into_iter().flatten() {
        let node = n["node"].as_str().unwrap_or("?");
        if let Some(e) = n.get("error") {
            let _ = writeln!(
                s,
                "| {node} | — | — | — | {} | | | | | |",
                e.as_str().unwrap_or("")
            );
            continue;
        }
        for f in n["faults"].as_array().into_iter().flatten() {
            let ev = &f["evidence"];
            let _ = writeln!(
                s,
                "| {node} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                f["id"].as_str().unwrap_or("?"),
                f["spec"]["action"]["kind"].as_str().unwrap_or("?"),
                f["spec"]["dst"].as_str().unwrap_or("any"),
                f["state"].as_str().unwrap_or("?"),
                f["backend"].as_str().unwrap_or("?"),
                ev["matched"],
                ev["applied"],
                ev["passed"],
                f["landed"],
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_node_and_counts() {
        let v = serde_json::json!({"txn": "dstc-1", "nodes": [
            {"node": "n1", "reachable": true, "faults": [{"id": "dstc-1.n1-n3", "state": "active",
              "backend": "tcx", "spec": {"action": {"kind": "drop"}, "dst": "10.0.0.3/32"},
              "evidence": {"matched": 5, "applied": 5, "passed": 0}, "landed": true}]},
            {"node": "n3", "reachable": false, "error": "cannot connect"}]});
        assert_eq!(totals(&v), (1, 1, 5, 1));
        let md = markdown(&v);
        assert!(
            md.contains(
                "| n1 | dstc-1.n1-n3 | drop | 10.0.0.3/32 | active | tcx | 5 | 5 | 0 | true |"
            ),
            "{md}"
        );
        assert!(md.contains("| n3 | — |"), "{md}");
    }
}
