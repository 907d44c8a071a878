//! `dst toolbox [PATH]`: what a repository already has for testing distributed behaviour
//! (runbooks, compose and Kubernetes manifests, make/just targets, chaos scripts, Jepsen and
//! Maelstrom, test frameworks, CI), so an agent reuses scaffolding instead of reinventing it.
//! The only module of the crate that walks the file system.

mod detect;
mod targets;
mod walk;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::table::markdown_table;

pub use targets::{is_testing_target, just_recipes, make_targets};

/// What kind of scaffolding a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// An operational runbook.
    Runbook,
    /// A docker-compose file.
    Compose,
    /// A Kubernetes manifest (YAML with apiVersion and kind).
    Kubernetes,
    /// A Makefile and its targets.
    MakeTargets,
    /// A justfile and its recipes.
    JustRecipes,
    /// A fault-injection or chaos script.
    ChaosScript,
    /// A Jepsen test (project.clj with jepsen, or a jepsen/ directory).
    Jepsen,
    /// A Maelstrom test.
    Maelstrom,
    /// A test framework in use.
    TestFramework,
    /// A CI configuration.
    Ci,
}

impl Kind {
    /// The kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Runbook => "runbook",
            Self::Compose => "compose",
            Self::Kubernetes => "kubernetes",
            Self::MakeTargets => "make-targets",
            Self::JustRecipes => "just-recipes",
            Self::ChaosScript => "chaos-script",
            Self::Jepsen => "jepsen",
            Self::Maelstrom => "maelstrom",
            Self::TestFramework => "test-framework",
            Self::Ci => "ci",
        }
    }
}

/// One piece of scaffolding.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    /// Path relative to the scanned root (`/` separated; directories end in `/`).
    pub path: String,
    /// What it is.
    pub kind: Kind,
    /// What is inside (services, targets, the command to run it).
    pub detail: String,
}

/// Why a directory could not be scanned.
#[derive(Debug, thiserror::Error)]
pub enum ToolboxError {
    /// The root is missing or not a readable directory.
    #[error("cannot scan {path}: {source} (pass the repository's root directory)")]
    Root {
        /// The root given.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Scans `root` (skipping `.git`, `target`, `node_modules`, vendored and hidden directories
/// other than CI ones); findings sorted by path then kind.
pub fn discover(root: &Path) -> Result<Vec<Finding>, ToolboxError> {
    let entries = walk::walk(root).map_err(|source| ToolboxError::Root {
        path: root.to_path_buf(),
        source,
    })?;
    let mut out: Vec<Finding> = entries
        .iter()
        .flat_map(|e| detect::detect(root, e))
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Findings as a Markdown table.
pub fn render_markdown(findings: &[Finding]) -> String {
    let rows: Vec<Vec<String>> = findings
        .iter()
        .map(|f| vec![f.kind.name().to_owned(), f.path.clone(), f.detail.clone()])
        .collect();
    markdown_table(&["kind", "path", "detail"], &rows)
}

/// Findings as pretty JSON.
pub fn render_json(findings: &[Finding]) -> String {
    serde_json::to_string_pretty(findings).unwrap_or_else(|_| "[]".to_owned())
}
