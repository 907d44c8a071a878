//! The planned coverage matrix (claims × hypotheses, cells = scenarios), as Markdown and JSON.

use serde::Serialize;

use crate::{
    mechanism::Mechanism,
    plan::{Criticality, Plan},
    table::markdown_table,
};

/// A claim row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MatrixClaim {
    /// Claim id.
    pub id: String,
    /// Its criticality.
    pub criticality: Criticality,
    /// Its statement.
    pub statement: String,
}

/// A hypothesis column.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MatrixHypothesis {
    /// Hypothesis id.
    pub id: String,
    /// Mechanism tag.
    pub mechanism: Mechanism,
}

/// A cell where the hypothesis names the claim: the scenarios planned for it (empty = a gap).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlanCell {
    /// Claim id.
    pub claim: String,
    /// Hypothesis id.
    pub hypothesis: String,
    /// Scenarios with this claim and hypothesis.
    pub scenarios: Vec<String>,
}

/// The planned coverage matrix. Cells exist only where a hypothesis names a claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlanMatrix {
    /// System under test.
    pub system: String,
    /// Rows.
    pub claims: Vec<MatrixClaim>,
    /// Columns.
    pub hypotheses: Vec<MatrixHypothesis>,
    /// Cells.
    pub cells: Vec<PlanCell>,
}

impl PlanMatrix {
    /// The cell for (claim, hypothesis), if the hypothesis names the claim.
    pub fn cell(&self, claim: &str, hypothesis: &str) -> Option<&PlanCell> {
        self.cells
            .iter()
            .find(|c| c.claim == claim && c.hypothesis == hypothesis)
    }
}

/// Builds the planned matrix from a plan.
pub fn plan_matrix(plan: &Plan) -> PlanMatrix {
    let cells = plan
        .claims
        .iter()
        .flat_map(|c| {
            plan.hypotheses
                .iter()
                .filter(|h| h.claims.contains(&c.id))
                .map(|h| PlanCell {
                    claim: c.id.clone(),
                    hypothesis: h.id.clone(),
                    scenarios: plan
                        .scenarios
                        .iter()
                        .filter(|s| s.claim == c.id && s.hypothesis == h.id)
                        .map(|s| s.id.clone())
                        .collect(),
                })
        })
        .collect();
    PlanMatrix {
        system: plan.front.system.clone(),
        claims: plan
            .claims
            .iter()
            .map(|c| MatrixClaim {
                id: c.id.clone(),
                criticality: c.criticality,
                statement: c.statement.clone(),
            })
            .collect(),
        hypotheses: plan
            .hypotheses
            .iter()
            .map(|h| MatrixHypothesis {
                id: h.id.clone(),
                mechanism: h.mechanism,
            })
            .collect(),
        cells,
    }
}

/// The matrix as a Markdown table: `·` = hypothesis does not concern the claim, `GAP` = it
/// does but no scenario tests it, otherwise the scenario ids.
pub fn render_markdown(plan: &Plan) -> String {
    let m = plan_matrix(plan);
    let mut headers = vec!["claim".to_owned()];
    headers.extend(
        m.hypotheses
            .iter()
            .map(|h| format!("{} ({})", h.id, h.mechanism.name())),
    );
    let rows: Vec<Vec<String>> = m
        .claims
        .iter()
        .map(|c| {
            let crit = format!("{:?}", c.criticality).to_lowercase();
            let mut row = vec![format!("{} ({crit})", c.id)];
            row.extend(m.hypotheses.iter().map(|h| match m.cell(&c.id, &h.id) {
                None => "·".to_owned(),
                Some(cell) if cell.scenarios.is_empty() => "GAP".to_owned(),
                Some(cell) => cell.scenarios.join("<br>"),
            }));
            row
        })
        .collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    format!(
        "# Coverage matrix: {}\n\n{}",
        m.system,
        markdown_table(&headers, &rows)
    )
}

/// The matrix as pretty JSON.
pub fn render_json(plan: &Plan) -> String {
    serde_json::to_string_pretty(&plan_matrix(plan)).unwrap_or_else(|_| "{}".to_owned())
}
