//! The adequacy rule: the argument must exist and mention every critical claim by id.

use super::{LintFinding, Rule, finding};
use crate::plan::{Criticality, Plan};

/// True when `id` occurs in `text` as a whole identifier (not inside a longer one).
pub(crate) fn mentions(text: &str, id: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    text.match_indices(id).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + id.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

pub(super) fn check(plan: &Plan, out: &mut Vec<LintFinding>) {
    let Some(section) = &plan.adequacy else {
        out.push(finding(
            plan.claims_line,
            Rule::AdequacyIncomplete,
            "no ## Adequacy section: add one arguing why the scenarios are enough for each critical claim",
        ));
        return;
    };
    for c in plan
        .claims
        .iter()
        .filter(|c| c.criticality == Criticality::Critical)
    {
        if !mentions(&section.text, &c.id) {
            out.push(finding(
                section.line,
                Rule::AdequacyIncomplete,
                format!(
                    "the adequacy argument does not mention critical claim `{}`: say which scenarios cover it and why they are enough",
                    c.id
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::mentions;

    #[test]
    fn mentions_whole_ids_only() {
        let cases = [
            ("`acked_write` holds", "acked_write", true),
            ("acked_write_durable holds", "acked_write", false),
            ("see acked_write.", "acked_write", true),
            ("xacked_write", "acked_write", false),
            ("nothing", "acked_write", false),
        ];
        for (text, id, want) in cases {
            assert_eq!(mentions(text, id), want, "{text:?} {id}");
        }
    }
}
