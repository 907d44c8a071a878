//! Claim-driven test plans: the structure a plan must have and the checks that keep it honest.
//!
//! Flow: [`plan::parse`] a Markdown plan → [`lint::lint`] it → [`render::render_markdown`] the
//! coverage matrix → [`compile::compile`] it to runner scenario files → after runs,
//! [`coverage::coverage`] fills the matrix from verdicts and landing evidence.
//! [`catalog`] holds the technique catalog, [`toolbox`] discovers existing test scaffolding in a
//! repository, [`skills`] knows which `dst` command lines the agent skills may quote.

pub mod catalog;
pub mod compile;
pub mod coverage;
pub mod duration;
pub mod init;
pub mod lint;
pub mod mechanism;
pub mod nemesis;
pub mod plan;
pub mod render;
pub mod runner;
pub mod scenario;
pub mod skills;
pub mod table;
pub mod toolbox;
pub mod verdict;

pub use catalog::{TECHNIQUES, Technique, render_techniques, suggest, techniques_json};
pub use compile::{Compiled, compile, write_compiled};
pub use coverage::{CoverageMatrix, RunResult, coverage, read_run_dir};
pub use init::init;
pub use lint::{LintFinding, Rule, lint, lint_source};
pub use mechanism::Mechanism;
pub use plan::{Plan, PlanError, parse};
pub use render::{PlanMatrix, plan_matrix, render_json, render_markdown};
pub use scenario::ScenarioFile;
pub use verdict::Verdict;
