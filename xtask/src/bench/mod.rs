//! `cargo xtask bench <area>`: benchmarks measured side by side with the alternative a user
//! would pick, in one run, written to BENCHMARKS.md (one `## Section` per area).

mod net;

use std::path::Path;

use anyhow::Context as _;
use clap::Subcommand;

/// The benchmark areas.
#[derive(Debug, Subcommand)]
pub enum Bench {
    /// Network engine: per-packet cost (UDP send, TCP throughput) and fault activation latency
    /// against tc / nft / iptables (root).
    Net,
}

/// Runs one benchmark area.
pub fn run(b: &Bench) -> anyhow::Result<()> {
    match b {
        Bench::Net => net::run(),
    }
}

/// Replaces (or appends) the section that starts with `heading` in BENCHMARKS.md.
pub fn write_section(heading: &str, body: &str) -> anyhow::Result<()> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../BENCHMARKS.md");
    let old = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        "# Benchmarks\n\nEach section is written by `cargo xtask bench <area>`.\n".into()
    });
    let new = splice(&old, heading, body);
    std::fs::write(&path, new).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("xtask: wrote {heading} in {}", path.display());
    Ok(())
}

fn splice(doc: &str, heading: &str, body: &str) -> String {
    let body = body.trim_end();
    let Some(start) = doc.find(&format!("{heading}\n")) else {
        return format!("{}\n\n{body}\n", doc.trim_end());
    };
    let rest = &doc[start + heading.len()..];
    let end = rest
        .find("\n## ")
        .map_or(doc.len(), |i| start + heading.len() + i + 1);
    format!("{}{body}\n\n{}", &doc[..start], &doc[end..])
        .trim_end()
        .to_string()
        + "\n"
}

#[cfg(test)]
mod tests {
    use super::splice;

    #[test]
    fn splice_replaces_only_its_section() {
        let doc = "# B\n\n## Network\nold\n\n## Syscall\nkeep\n";
        let out = splice(doc, "## Network", "## Network\nnew");
        assert_eq!(out, "# B\n\n## Network\nnew\n\n## Syscall\nkeep\n");
        let appended = splice("# B\n", "## Network", "## Network\nx");
        assert_eq!(appended, "# B\n\n## Network\nx\n");
    }
}
