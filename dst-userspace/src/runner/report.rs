//! The findings a run leaves in its `--out` directory: `report.md` (claim, verdict and why,
//! evidence per fault, checker result and witness, history statistics, residual uncertainties,
//! the command to reproduce), `verdict.json`, `evidence.json`, `history.jsonl`, `report.html`.

use std::{fmt::Write as _, path::Path};

use serde::Serialize;

use super::{check::CheckReport, nemesis::Scheduled, scenario::Scenario};
use crate::{
    net::RuleEvidence,
    verdict::{CheckerOutcome, Decision, Landing},
};

/// Evidence of one nemesis, as written to evidence.json.
#[derive(Debug, Serialize)]
pub struct NemesisEvidence {
    /// What was scheduled.
    #[serde(flatten)]
    pub scheduled: Scheduled,
    /// Summed kernel counters of its rules.
    pub counters: RuleEvidence,
    /// applied ≥ min_applied inside its window.
    pub landed: bool,
    /// Cluster runs: the coordinator's apply and heal, and every node's rules with counters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<super::cluster::ClusterWindow>,
}

/// Everything a report is made of.
pub struct Findings<'a> {
    /// The scenario run.
    pub scenario: &'a Scenario,
    /// Path of the scenario file (for the reproduce command).
    pub scenario_path: &'a str,
    /// Scenario id (file stem).
    pub scenario_id: &'a str,
    /// Extra arguments the run was given (e.g. a seed override).
    pub reproduce: String,
    /// The verdict and its reasons.
    pub decision: &'a Decision,
    /// The checker's outcome.
    pub checker: Option<&'a CheckerOutcome>,
    /// The checker's per-check results.
    pub check_report: Option<&'a CheckReport>,
    /// Evidence per nemesis.
    pub evidence: &'a [NemesisEvidence],
    /// Landing facts.
    pub landings: &'a [Landing],
    /// Client operations invoked.
    pub invoked_ops: u64,
    /// Wall time of the run.
    pub elapsed_s: f64,
    /// Where the hosts were, when not local namespaces (cluster runs).
    pub hosts_note: Option<&'a str>,
}

/// Rewrites the verdict of an already written run (after a re-run changed it).
pub fn update_verdict(out: &Path, d: &Decision) -> std::io::Result<()> {
    let path = out.join("verdict.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    v["verdict"] = serde_json::to_value(d.verdict)?;
    v["exit_code"] = d.verdict.exit_code().into();
    v["reasons"] = serde_json::to_value(&d.reasons)?;
    std::fs::write(&path, serde_json::to_string_pretty(&v)? + "\n")?;
    let md_path = out.join("report.md");
    let md = std::fs::read_to_string(&md_path)?;
    let note = format!(
        "> **Verdict changed to {}** after a re-run with the same seed: {}\n\n",
        d.verdict.as_str(),
        d.reasons.last().cloned().unwrap_or_default()
    );
    let (title, rest) = md.split_once("\n\n").unwrap_or((&md, ""));
    std::fs::write(md_path, format!("{title}\n\n{note}{rest}"))
}

/// Writes report.md, verdict.json and evidence.json into `out`.
pub fn write(out: &Path, f: &Findings<'_>) -> std::io::Result<()> {
    let verdict = serde_json::json!({
        "scenario": f.scenario_id,
        "scenario_file": f.scenario_path,
        "claim": f.scenario.claim,
        "verdict": f.decision.verdict,
        "exit_code": f.decision.verdict.exit_code(),
        "reasons": f.decision.reasons,
        "checker": f.checker,
        "landings": f.landings,
        "seed": f.scenario.run.seed,
        "reproduce": f.reproduce,
    });
    std::fs::write(
        out.join("verdict.json"),
        serde_json::to_string_pretty(&verdict)? + "\n",
    )?;
    std::fs::write(
        out.join("evidence.json"),
        serde_json::to_string_pretty(&f.evidence)? + "\n",
    )?;
    std::fs::write(out.join("report.md"), markdown(f))?;
    Ok(())
}

/// Cluster runs: per window, what the coordinator did and which node's daemon carried which
/// rule with its counters.
fn cluster_rules(md: &mut String, evidence: &[NemesisEvidence]) {
    let windows: Vec<_> = evidence
        .iter()
        .filter_map(|e| e.cluster.as_ref().map(|c| (&e.scheduled.id, c)))
        .collect();
    if windows.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n## Rules per node (cluster daemons)\n");
    for (id, c) in windows {
        let _ = writeln!(
            md,
            "**{id}** — `{}`, transaction `{}`: {} (prepare {:.1} ms, commit {:.1} ms, \
             rollback {:.1} ms, heal {:.1} ms).\n",
            c.fault,
            if c.txn.is_empty() { "-" } else { &c.txn },
            if c.committed {
                "committed on every node"
            } else {
                "**not committed, rolled back on every node**"
            },
            c.prepare_ms,
            c.commit_ms,
            c.rollback_ms,
            c.heal_ms
        );
        for r in &c.refusals {
            let _ = writeln!(md, "- refused: {r}");
        }
        for h in &c.heal_errors {
            let _ = writeln!(
                md,
                "- not cleared: {h} (the rule's kernel expiry still ends it with the window)"
            );
        }
        if c.committed {
            md.push_str(&crate::cluster::report::table(
                &serde_json::json!({ "nodes": c.nodes }),
            ));
        }
        md.push('\n');
    }
}

fn ms(ns: Option<u64>, t0: u64) -> String {
    ns.map_or("-".into(), |n| {
        format!("{:.0} ms", n.saturating_sub(t0) as f64 / 1e6)
    })
}

/// The Markdown report.
pub fn markdown(f: &Findings<'_>) -> String {
    let s = f.scenario;
    let mut md = String::new();
    let _ = writeln!(md, "# {} — {}\n", s.claim.id, f.decision.verdict.as_str());
    let _ = writeln!(md, "**Claim.** {}\n", s.claim.statement);
    let _ = writeln!(
        md,
        "**Verdict: {}** (exit code {}). Why:\n",
        f.decision.verdict.as_str(),
        f.decision.verdict.exit_code()
    );
    for r in &f.decision.reasons {
        let _ = writeln!(md, "- {r}");
    }
    let _ = writeln!(md, "\n## Fault evidence (kernel counters)\n");
    let _ = writeln!(
        md,
        "| nemesis | cuts (from→to) or syscall fault | window | backend | matched | applied | first applied | last applied | required | landed |"
    );
    let _ = writeln!(md, "|---|---|---|---|---:|---:|---|---|---:|---|");
    for e in f.evidence {
        let sc = &e.scheduled;
        let cuts = sc.what("→", " ");
        let _ = writeln!(
            md,
            "| {} | {} | {:.1} s from workload start + {:.1} s | {} | {} | {} | {} | {} | {} | {} |",
            sc.id,
            cuts,
            (sc.end_ns - sc.start_ns) as f64 / 1e9,
            sc.start_offset_ms as f64 / 1e3,
            sc.backend,
            e.counters.matched,
            e.counters.applied,
            ms(e.counters.first_applied_ns, sc.start_ns),
            ms(e.counters.last_applied_ns, sc.start_ns),
            sc.min_applied,
            if e.landed { "yes" } else { "**no**" }
        );
    }
    let _ = writeln!(
        md,
        "\nApplied counts packets dropped (partitions) or calls failed (syscall faults). \
         First/last applied are relative to the window start; the kernel enforces each window itself."
    );
    if let Some(note) = f.hosts_note {
        let _ = writeln!(md, "\n{note}");
    }
    cluster_rules(&mut md, f.evidence);
    let _ = writeln!(md, "\n## Checker\n");
    match f.checker {
        Some(CheckerOutcome::Ok) => {
            let _ = writeln!(md, "No violation found.");
        }
        Some(CheckerOutcome::Illegal { witness }) => {
            let _ = writeln!(md, "**Violation.** Witness:\n\n> {witness}");
        }
        Some(CheckerOutcome::Unknown { reason }) => {
            let _ = writeln!(md, "Could not decide: {reason}");
        }
        Some(CheckerOutcome::Error { message }) => {
            let _ = writeln!(md, "Checker error: {message}");
        }
        None => {
            let _ = writeln!(md, "The checker did not run.");
        }
    }
    if let Some(c) = f.check_report {
        let _ = writeln!(
            md,
            "\nChecks: model `{}` linearizability: {}; invariants: {}.",
            s.checker.model,
            c.linearizable
                .as_ref()
                .map_or("not run".into(), |r| format!("{:?}", r.verdict())),
            if c.invariants.is_empty() {
                "none".into()
            } else {
                c.invariants
                    .iter()
                    .map(|(n, r)| format!("{n} {:?}", r.verdict()))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        if let Some(checkers::result::CheckResult::Illegal {
            witness: checkers::result::Witness::Transactional(t),
        }) = &c.linearizable
        {
            let _ = writeln!(md, "\n### Transactional anomalies\n");
            for an in &t.anomalies {
                let text: String = an.explanation.chars().take(6000).collect();
                let _ = writeln!(
                    md,
                    "**{}** (rules out {:?}), ops {:?}:\n\n```text\n{}\n```\n",
                    an.name, an.violates, an.ops, text
                );
            }
        }
        let _ = writeln!(md, "\n## History\n");
        let _ = writeln!(md, "- client operations invoked: {}", f.invoked_ops);
        let _ = writeln!(
            md,
            "- completed (ok or fail): {} (minimum {})",
            c.completed_ops, s.run.min_ops
        );
        let _ = writeln!(
            md,
            "- indeterminate (info / timed out): {}",
            c.indeterminate_ops
        );
    }
    for l in f.landings {
        let _ = writeln!(
            md,
            "- completed operations overlapping the window of {}: {} (minimum {})",
            l.nemesis, l.ops_in_window, s.run.min_ops_per_window
        );
    }
    let _ = writeln!(md, "\n## Residual uncertainties\n");
    let _ = writeln!(
        md,
        "- One seed, one schedule: a PASS says this schedule found no violation, not that none exists."
    );
    let _ = writeln!(
        md,
        "- Partitions are drops at the hosts' egress; the service saw silence, not resets or delays."
    );
    let _ = writeln!(
        md,
        "- Indeterminate operations may or may not have taken effect; the checker tried both."
    );
    let _ = writeln!(
        md,
        "\n## Reproduce\n\n```sh\n{}\n```\n\nRun took {:.1} s. Files: history.jsonl, evidence.json, verdict.json, report.html, sut-n*.log.",
        f.reproduce, f.elapsed_s
    );
    md
}
