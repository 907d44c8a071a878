//! Per-entry detection: which kinds of test scaffolding one file or directory is.

use std::path::Path;

use super::{Finding, Kind, targets, walk::Entry};

/// Files larger than this are classified by name only.
const MAX_READ: u64 = 512 * 1024;

/// Script contents that mark fault injection, with what to say about them.
const CHAOS_MARKERS: &[(&str, &str)] = &[
    ("netem", "uses tc netem"),
    ("tc qdisc", "changes qdiscs (tc)"),
    ("iptables", "uses iptables"),
    ("toxiproxy", "uses toxiproxy"),
    ("pumba", "uses pumba"),
    ("blockade", "uses blockade"),
    ("kill -9", "kills processes (kill -9)"),
    ("kill -STOP", "pauses processes (SIGSTOP)"),
    ("chaos-mesh", "uses Chaos Mesh"),
    ("litmus", "uses LitmusChaos"),
];

/// File-name fragments that mark fault-injection tooling.
const CHAOS_NAMES: &[&str] = &[
    "chaos",
    "fault",
    "nemesis",
    "partition",
    "toxiproxy",
    "blockade",
    "pumba",
    "netem",
];

const SCRIPT_EXTS: &[&str] = &["sh", "bash", "py", "go", "rs", "js", "ts", "rb", "pl"];

fn rel(root: &Path, path: &Path, is_dir: bool) -> String {
    let r = path.strip_prefix(root).unwrap_or(path);
    let mut s = r
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/");
    if is_dir {
        s.push('/');
    }
    s
}

fn read(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.len() > MAX_READ {
        return None;
    }
    std::fs::read_to_string(path).ok()
}

fn finding(path: &str, kind: Kind, detail: impl Into<String>) -> Finding {
    Finding {
        path: path.to_owned(),
        kind,
        detail: detail.into(),
    }
}

/// Every finding for one entry.
pub fn detect(root: &Path, entry: &Entry) -> Vec<Finding> {
    let path = rel(root, &entry.path, entry.is_dir);
    let name = entry
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lower = name.to_ascii_lowercase();
    if entry.is_dir {
        return directory(&entry.path, &path, &lower);
    }
    let ext = lower.rsplit_once('.').map_or("", |(_, e)| e);
    let mut out = Vec::new();
    let text = || read(&entry.path);
    if lower.contains("runbook") {
        let title = text()
            .and_then(|t| t.lines().find(|l| l.starts_with('#')).map(str::to_owned))
            .unwrap_or_default();
        out.push(finding(&path, Kind::Runbook, {
            let title = title.trim_start_matches('#').trim();
            if title.is_empty() {
                "runbook".to_owned()
            } else {
                title.to_owned()
            }
        }));
    }
    if let Some(detail) = ci(&path, &lower) {
        out.push(finding(&path, Kind::Ci, detail));
        return out;
    }
    let compose = is_compose(&lower);
    if compose {
        let services = text().map(|t| compose_services(&t)).unwrap_or_default();
        out.push(finding(
            &path,
            Kind::Compose,
            format!(
                "services: {} (docker compose -f {path} up)",
                services.join(", ")
            ),
        ));
    }
    if matches!(ext, "yml" | "yaml")
        && !compose
        && let Some(t) = text()
    {
        out.extend(kubernetes(&path, &t));
    }
    if matches!(lower.as_str(), "makefile" | "gnumakefile") || ext == "mk" {
        let t = text().unwrap_or_default();
        out.push(targets_finding(
            &path,
            Kind::MakeTargets,
            &targets::make_targets(&t),
            "make",
        ));
    }
    if matches!(lower.as_str(), "justfile" | ".justfile") {
        let t = text().unwrap_or_default();
        out.push(targets_finding(
            &path,
            Kind::JustRecipes,
            &targets::just_recipes(&t),
            "just",
        ));
    }
    if lower == "project.clj" {
        let t = text().unwrap_or_default();
        if t.contains("jepsen") {
            out.push(finding(
                &path,
                Kind::Jepsen,
                "Leiningen project depending on jepsen (lein run test)",
            ));
        }
        if t.contains("maelstrom") {
            out.push(finding(
                &path,
                Kind::Maelstrom,
                "Leiningen project using maelstrom",
            ));
        }
    }
    if lower.contains("maelstrom") && lower != "project.clj" {
        out.push(finding(
            &path,
            Kind::Maelstrom,
            "Maelstrom workload or runner",
        ));
    }
    if (SCRIPT_EXTS.contains(&ext) || matches!(ext, "yml" | "yaml" | "toml" | "json"))
        && let Some(f) = chaos(&path, &lower, ext, text)
    {
        out.push(f);
    }
    if let Some(detail) = test_framework(&lower, || read(&entry.path)) {
        out.push(finding(&path, Kind::TestFramework, detail));
    }
    out
}

fn directory(abs: &Path, path: &str, lower: &str) -> Vec<Finding> {
    match lower {
        "jepsen" => {
            let clj = abs.join("project.clj").exists();
            vec![finding(
                path,
                Kind::Jepsen,
                if clj {
                    format!("Jepsen test directory with project.clj (cd {path} && lein run test)")
                } else {
                    "Jepsen test directory".to_owned()
                },
            )]
        }
        "maelstrom" => vec![finding(path, Kind::Maelstrom, "Maelstrom directory")],
        "chaos" | "faults" | "fault-injection" | "nemesis" => {
            vec![finding(
                path,
                Kind::ChaosScript,
                "fault-injection directory",
            )]
        }
        "runbooks" => vec![finding(path, Kind::Runbook, "runbook directory")],
        _ => Vec::new(),
    }
}

fn ci(path: &str, lower: &str) -> Option<String> {
    let detail = if path.starts_with(".github/workflows/") {
        "GitHub Actions workflow"
    } else if lower == ".gitlab-ci.yml" {
        "GitLab CI pipeline"
    } else if path.starts_with(".circleci/") {
        "CircleCI configuration"
    } else if lower == "jenkinsfile" {
        "Jenkins pipeline"
    } else if lower == ".travis.yml" {
        "Travis CI configuration"
    } else if lower == "azure-pipelines.yml" {
        "Azure Pipelines configuration"
    } else if lower == "bitbucket-pipelines.yml" {
        "Bitbucket Pipelines configuration"
    } else if path.starts_with(".buildkite/") {
        "Buildkite pipeline"
    } else if path.starts_with(".ci/") {
        "CI script"
    } else {
        return None;
    };
    Some(detail.to_owned())
}

fn is_compose(lower: &str) -> bool {
    let yaml = lower.ends_with(".yml") || lower.ends_with(".yaml");
    yaml && (lower.starts_with("docker-compose") || lower.starts_with("compose."))
}

/// Service names: keys indented one level under a top-level `services:`.
pub fn compose_services(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    let mut indent = None;
    for line in text.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let depth = line.len() - line.trim_start().len();
        if depth == 0 {
            inside = line.trim_end() == "services:";
            continue;
        }
        if !inside {
            continue;
        }
        let level = *indent.get_or_insert(depth);
        if depth == level
            && let Some(key) = line.trim().strip_suffix(':')
        {
            out.push(key.trim_matches(['"', '\'']).to_owned());
        }
    }
    out
}

fn kubernetes(path: &str, text: &str) -> Vec<Finding> {
    let api: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("apiVersion:"))
        .map(str::trim)
        .collect();
    let kinds: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("kind:"))
        .map(str::trim)
        .collect();
    if api.is_empty() || kinds.is_empty() {
        return Vec::new();
    }
    let mut out = vec![finding(
        path,
        Kind::Kubernetes,
        format!("kinds: {} (kubectl apply -f {path})", kinds.join(", ")),
    )];
    if api
        .iter()
        .any(|a| a.contains("chaos-mesh.org") || a.contains("litmuschaos.io"))
    {
        out.push(finding(
            path,
            Kind::ChaosScript,
            format!("chaos experiment: {}", kinds.join(", ")),
        ));
    }
    out
}

fn chaos(path: &str, lower: &str, ext: &str, text: impl Fn() -> Option<String>) -> Option<Finding> {
    let stem = lower.rsplit_once('.').map_or(lower, |(s, _)| s);
    let by_name = matches!(
        ext,
        "sh" | "bash" | "py" | "rb" | "pl" | "yml" | "yaml" | "toml" | "json"
    );
    if let Some(n) = CHAOS_NAMES.iter().find(|n| by_name && stem.contains(*n)) {
        return Some(finding(
            path,
            Kind::ChaosScript,
            format!("named like fault injection ({n})"),
        ));
    }
    if !matches!(ext, "sh" | "bash" | "py") {
        return None;
    }
    let t = text()?;
    let hits: Vec<&str> = CHAOS_MARKERS
        .iter()
        .filter(|(m, _)| t.contains(m))
        .map(|(_, what)| *what)
        .collect();
    (!hits.is_empty()).then(|| finding(path, Kind::ChaosScript, hits.join(", ")))
}

fn test_framework(lower: &str, text: impl Fn() -> Option<String>) -> Option<String> {
    let has = |needle: &str| text().is_some_and(|t| t.contains(needle));
    let detail = match lower {
        "cargo.toml" => "Rust: cargo test".to_owned(),
        "go.mod" => "Go: go test ./...".to_owned(),
        "pytest.ini" | "conftest.py" => "Python: pytest".to_owned(),
        "pyproject.toml" | "setup.cfg" | "tox.ini" if has("pytest") => "Python: pytest".to_owned(),
        "package.json" if has("\"test\"") => {
            let fw = ["jest", "mocha", "vitest", "ava", "tap"]
                .into_iter()
                .find(|f| has(f))
                .unwrap_or("npm");
            format!("JavaScript: npm test ({fw})")
        }
        "pom.xml" => "Java: mvn test".to_owned(),
        "build.gradle" | "build.gradle.kts" => "JVM: gradle test".to_owned(),
        "cmakelists.txt" if has("enable_testing") || has("add_test") => "C/C++: ctest".to_owned(),
        "mix.exs" => "Elixir: mix test".to_owned(),
        "gemfile" if has("rspec") => "Ruby: rspec".to_owned(),
        _ => return None,
    };
    Some(detail)
}

fn targets_finding(path: &str, kind: Kind, names: &[String], tool: &str) -> Finding {
    let testing: Vec<&str> = names
        .iter()
        .filter(|n| targets::is_testing_target(n))
        .map(String::as_str)
        .collect();
    let mut detail = format!("targets: {}", names.join(", "));
    if !testing.is_empty() {
        detail.push_str(&format!(
            "; testing/fault targets: {} ({tool} {})",
            testing.join(", "),
            testing[0]
        ));
    }
    finding(path, kind, detail)
}
