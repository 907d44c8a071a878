//! Run results as the runner writes them (`verdict.json`, `evidence.json` in a run directory),
//! read tolerantly so small additions by the runner do not break coverage.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::verdict::Verdict;

/// Landing evidence of one nemesis step in one run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NemesisLanding {
    /// Nemesis step id (the `id` in the scenario file).
    pub id: String,
    /// True when the fault applied inside its window.
    pub landed: bool,
    /// How many times it applied, when the runner reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<u64>,
}

/// What coverage needs from one run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunResult {
    /// Scenario id.
    pub scenario: String,
    /// The run's verdict.
    pub verdict: Verdict,
    /// Per-nemesis landing evidence.
    #[serde(default)]
    pub nemeses: Vec<NemesisLanding>,
    /// Run directory, for the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
}

/// Why a run directory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CoverageError {
    /// A file is missing or unreadable.
    #[error("cannot read {path}: {source} (pass run directories written by dst run)")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not JSON.
    #[error("{path} is not valid JSON: {message} (was the run interrupted? re-run it)")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A required field is missing or has the wrong type.
    #[error("{path}: field `{field}` is missing or invalid (expected {expected})")]
    Field {
        /// The file.
        path: PathBuf,
        /// The field.
        field: &'static str,
        /// What it should hold.
        expected: &'static str,
    },
}

fn read_json(path: &Path) -> Result<Value, CoverageError> {
    let text = std::fs::read_to_string(path).map_err(|source| CoverageError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| CoverageError::Json {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Parses a `verdict.json` value: `scenario` (string or `{ "id": ... }`) and `verdict`.
pub fn parse_verdict(v: &Value) -> Option<(String, Verdict)> {
    let scenario = v
        .get("scenario")
        .and_then(|s| s.as_str().or_else(|| s.get("id").and_then(Value::as_str)))?;
    let verdict: Verdict = serde_json::from_value(v.get("verdict")?.clone()).ok()?;
    Some((scenario.to_owned(), verdict))
}

/// Parses an `evidence.json` value: a list, or an object with `nemeses` or `faults`; each entry
/// has `id` (or `nemesis`), `landed`, and `applied` (or `counters.applied`).
pub fn parse_evidence(v: &Value) -> Vec<NemesisLanding> {
    let list = v
        .as_array()
        .or_else(|| v.get("nemeses").and_then(Value::as_array))
        .or_else(|| v.get("faults").and_then(Value::as_array));
    list.into_iter()
        .flatten()
        .filter_map(|e| {
            let id = e
                .get("id")
                .or_else(|| e.get("nemesis"))
                .and_then(Value::as_str)?;
            Some(NemesisLanding {
                id: id.to_owned(),
                landed: e.get("landed").and_then(Value::as_bool).unwrap_or(false),
                applied: e
                    .get("applied")
                    .or_else(|| e.get("counters").and_then(|c| c.get("applied")))
                    .and_then(Value::as_u64),
            })
        })
        .collect()
}

/// Reads `DIR/verdict.json` (required) and `DIR/evidence.json` (absent = nothing landed).
pub fn read_run_dir(dir: &Path) -> Result<RunResult, CoverageError> {
    let vpath = dir.join("verdict.json");
    let (scenario, verdict) = parse_verdict(&read_json(&vpath)?).ok_or(CoverageError::Field {
        path: vpath,
        field: "scenario/verdict",
        expected: "\"scenario\": \"ID\" and \"verdict\": one of the nine verdicts",
    })?;
    let epath = dir.join("evidence.json");
    let nemeses = if epath.exists() {
        parse_evidence(&read_json(&epath)?)
    } else {
        Vec::new()
    };
    Ok(RunResult {
        scenario,
        verdict,
        nemeses,
        dir: Some(dir.display().to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_shapes_are_all_accepted() {
        let cases = [
            r#"[{"id":"a","landed":true,"applied":3}]"#,
            r#"{"nemeses":[{"id":"a","landed":true,"applied":3}]}"#,
            r#"{"faults":[{"nemesis":"a","landed":true,"counters":{"applied":3}}]}"#,
        ];
        for doc in cases {
            let v: Value = serde_json::from_str(doc).unwrap();
            assert_eq!(
                parse_evidence(&v),
                [NemesisLanding {
                    id: "a".into(),
                    landed: true,
                    applied: Some(3)
                }],
                "{doc}"
            );
        }
    }

    #[test]
    fn verdict_shapes() {
        let cases = [
            (
                r#"{"scenario":"s","verdict":"NOT_LANDED"}"#,
                Some(("s", Verdict::NotLanded)),
            ),
            (
                r#"{"scenario":{"id":"s"},"verdict":"PASS","exit":0}"#,
                Some(("s", Verdict::Pass)),
            ),
            (r#"{"scenario":"s","verdict":"MAYBE"}"#, None),
            (r#"{"verdict":"PASS"}"#, None),
        ];
        for (doc, want) in cases {
            let v: Value = serde_json::from_str(doc).unwrap();
            assert_eq!(
                parse_verdict(&v),
                want.map(|(s, v)| (s.to_owned(), v)),
                "{doc}"
            );
        }
    }
}
