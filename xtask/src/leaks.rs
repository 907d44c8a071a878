//! Snapshot of what tests could leave behind on the host: network namespaces, BPF links, dst
//! cgroups and qdiscs in the root namespace. Compared before and after the privileged tier.

use std::{collections::BTreeSet, process::Command};

use crate::run::output;

/// What exists on the host at one moment.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    netns: BTreeSet<String>,
    links: BTreeSet<String>,
    cgroups: BTreeSet<String>,
    qdiscs: BTreeSet<String>,
}

impl Snapshot {
    /// Reads the current state with `ip` and `bpftool` (test tooling, not the product).
    pub fn take() -> Self {
        let netns = output(Command::new("ip").args(["netns", "list"]))
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect();
        let links = output(Command::new("bpftool").args(["link", "list"]))
            .lines()
            .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_digit()))
            .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
            .collect();
        let root = std::fs::read_to_string("/proc/self/mountinfo")
            .ok()
            .and_then(|m| {
                m.lines().find_map(|l| {
                    let (pre, post) = l.split_once(" - ")?;
                    (post.starts_with("cgroup2 "))
                        .then(|| pre.split_whitespace().nth(4).map(str::to_string))?
                })
            })
            .unwrap_or_else(|| "/sys/fs/cgroup".into());
        let cgroups = std::fs::read_dir(&root)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("dst"))
                    .collect()
            })
            .unwrap_or_default();
        let qdiscs = output(Command::new("tc").args(["qdisc", "show"]))
            .lines()
            .map(str::to_string)
            .collect();
        Self {
            netns,
            links,
            cgroups,
            qdiscs,
        }
    }

    /// Human description of what `after` has that `self` did not.
    pub fn leaked(&self, after: &Self) -> Vec<String> {
        let mut out = Vec::new();
        for (what, a, b) in [
            ("network namespace", &self.netns, &after.netns),
            ("BPF link", &self.links, &after.links),
            ("cgroup", &self.cgroups, &after.cgroups),
            ("qdisc", &self.qdiscs, &after.qdiscs),
        ] {
            for x in b.difference(a) {
                out.push(format!("{what}: {x}"));
            }
        }
        out
    }

    /// One-line summary for the log.
    pub fn summary(&self) -> String {
        format!(
            "{} netns, {} BPF links, {} dst cgroups, {} qdiscs",
            self.netns.len(),
            self.links.len(),
            self.cgroups.len(),
            self.qdiscs.len()
        )
    }
}
