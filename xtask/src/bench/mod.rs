//! `cargo xtask bench <area>`: measurements side by side with the baseline a user would pick,
//! measured in the same run, written into a section of BENCHMARKS.md with the command.

mod check;
mod history;
mod net;
mod syscall;

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Which benchmark to run.
#[derive(Debug, clap::Subcommand)]
pub enum Bench {
    /// Checkers on the Porcupine corpus and Elle list-append (vs Porcupine's published cost).
    Check(check::Args),
    /// Acknowledged history appends per second through the daemon vs a plain file + fsync.
    History(history::Args),
    /// Network engine: per-packet cost (UDP send, TCP throughput) and fault activation latency
    /// against tc / nft / iptables (root); with `--vm`, dst's delay against netem in QEMU guests.
    Net(net::Args),
    /// Syscall faults: cost to untargeted and targeted processes vs no dst and vs strace.
    Syscall(syscall::Args),
    /// (internal) The measured loop of the syscall bench: `loop getppid|write N`.
    #[command(hide = true, name = "loop")]
    Loop {
        /// getppid or write.
        kind: String,
        /// Iterations.
        n: u64,
    },
}

/// Runs the chosen benchmark.
pub fn run(b: Bench) -> anyhow::Result<()> {
    match b {
        Bench::Check(a) => check::run(&a),
        Bench::History(a) => history::run(&a),
        Bench::Net(a) => net::run(&a),
        Bench::Syscall(a) => syscall::run(&a),
        Bench::Loop { kind, n } => syscall::measured_loop(&kind, n),
    }
}

/// The workspace root (parent of xtask/).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Replaces (or appends) the `## {heading}` section of BENCHMARKS.md with `body`.
pub fn write_section(heading: &str, body: &str) -> anyhow::Result<()> {
    let path = workspace_root().join("BENCHMARKS.md");
    let old = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        "# Benchmarks\n\nEvery figure here was measured by the command shown under its section, \
         side by side with its baseline in the same run, on the project's 2-core CI machine kind.\n"
            .to_string()
    });
    let new = replace_section(&old, heading, body);
    std::fs::write(&path, new).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("xtask: updated section '{heading}' of {}", path.display());
    Ok(())
}

fn replace_section(doc: &str, heading: &str, body: &str) -> String {
    // Split into a preamble and `## ` sections, swap or append ours, and join with one blank line.
    let mut parts: Vec<String> = Vec::new();
    for line in doc.lines() {
        if line.starts_with("## ") || parts.is_empty() {
            parts.push(String::new());
        }
        let cur = parts.last_mut().expect("pushed above");
        cur.push_str(line);
        cur.push('\n');
    }
    // A body that repeats the heading (a bench printing its whole section) must not nest a
    // second, empty `## {heading}` — each run would then leave one more copy behind.
    let title = format!("## {heading}");
    let body = body.trim();
    let body = body.strip_prefix(title.as_str()).unwrap_or(body).trim();
    let ours = format!("{title}\n\n{body}\n");
    let is_ours = |p: &String| p.lines().next() == Some(title.as_str());
    match parts.iter().position(is_ours) {
        Some(i) => {
            parts[i] = ours;
            // Copies left by earlier runs go.
            let mut seen = false;
            parts.retain(|p| !is_ours(p) || !std::mem::replace(&mut seen, true));
        }
        None => parts.push(ours),
    }
    let mut out: Vec<String> = parts.iter().map(|p| p.trim_end().to_string()).collect();
    out.retain(|p| !p.is_empty());
    out.join("\n\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::replace_section;

    #[test]
    fn sections_are_replaced_in_place_or_appended() {
        let doc = "# B\n\n## A\n\nold a\n\n## C\n\nc\n";
        let r = replace_section(doc, "A", "new a");
        assert_eq!(r, "# B\n\n## A\n\nnew a\n\n## C\n\nc\n");
        let r = replace_section(doc, "C", "new c");
        assert_eq!(r, "# B\n\n## A\n\nold a\n\n## C\n\nnew c\n");
        let r = replace_section(doc, "D", "d");
        assert!(r.ends_with("## C\n\nc\n\n## D\n\nd\n"), "{r}");
    }

    #[test]
    fn a_body_with_its_heading_and_stale_copies_leave_one_section() {
        let doc = "# B\n\n## A\n\n## A\n\nold 1\n\n## C\n\nc\n\n## A\n\nold 2\n";
        let r = replace_section(doc, "A", "## A\n\nnew a\n");
        assert_eq!(r, "# B\n\n## A\n\nnew a\n\n## C\n\nc\n");
        assert_eq!(
            replace_section(&r, "A", "## A\n\nnewer\n")
                .matches("## A")
                .count(),
            1
        );
    }
}
