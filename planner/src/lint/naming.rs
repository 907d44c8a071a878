//! The naming heuristic: a scenario must be named after the claim it targets, not its setup.
//!
//! Rule: split the scenario id into words (on `_`, `-` and other non-alphanumerics). Drop
//! *filler* words (`under`, `with`, `during`, ...) and *setup* words ([`SETUP_WORDS`], plus
//! numbers and node tokens like `3node`, `n1`). The id passes when at least one remaining word
//! matches a word of the targeted claim's id or statement; two words match when they are equal
//! or share their first five letters (`linearizable` ~ `linearizability`). An id made only of
//! setup and filler words (`partition_test_3node`) always fails.

/// Words that describe how a test is set up rather than what it proves.
pub const SETUP_WORDS: &[&str] = &[
    "partition",
    "partitions",
    "partitioned",
    "split",
    "isolate",
    "isolated",
    "isolation",
    "kill",
    "killed",
    "crash",
    "crashed",
    "restart",
    "delay",
    "delayed",
    "latency",
    "jitter",
    "loss",
    "lossy",
    "drop",
    "dropped",
    "duplicate",
    "duplicated",
    "reorder",
    "corrupt",
    "nemesis",
    "fault",
    "faults",
    "inject",
    "injection",
    "chaos",
    "test",
    "tests",
    "testing",
    "setup",
    "scenario",
    "case",
    "run",
    "basic",
    "simple",
    "smoke",
    "node",
    "nodes",
    "cluster",
    "network",
    "net",
    "slow",
    "pause",
    "paused",
    "clock",
    "skew",
    "disk",
    "fsync",
    "eio",
    "tc",
    "netem",
    "iptables",
];

/// Words that carry no meaning either way.
const FILLER: &[&str] = &[
    "a", "an", "the", "under", "with", "during", "after", "before", "on", "while", "and", "or",
    "of", "in", "when", "despite", "across", "through", "to", "from", "by", "for", "at", "is",
    "are", "be", "it", "its", "every", "all", "any", "each",
];

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
}

fn is_setup(word: &str) -> bool {
    let digits_then = |suffix: &str| {
        word.strip_suffix(suffix)
            .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
    };
    SETUP_WORDS.contains(&word)
        || word.chars().all(|c| c.is_ascii_digit())
        || digits_then("node")
        || digits_then("nodes")
        || word
            .strip_prefix('n')
            .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
}

fn stem(word: &str) -> &str {
    &word[..word.len().min(5)]
}

/// True when `scenario_id` contains a non-setup word found in the claim id or statement.
pub fn named_after_claim(scenario_id: &str, claim_id: &str, statement: &str) -> bool {
    let claim_words: Vec<String> = words(claim_id)
        .chain(words(statement))
        .filter(|w| !FILLER.contains(&w.as_str()))
        .collect();
    words(scenario_id)
        .filter(|w| !FILLER.contains(&w.as_str()) && !is_setup(w))
        .any(|w| claim_words.iter().any(|c| stem(c) == stem(&w)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_words_pass_setup_words_fail() {
        let claim = ("linearizable_append", "Appends are linearizable");
        let cases = [
            ("linearizable_append_under_partition", true),
            ("linearizability_holds_when_leader_isolated", true),
            ("appends_survive_3node_split", true),
            ("partition_test_3node", false),
            ("kill_n1_during_load", false),
            ("nemesis-partition-setup", false),
            ("leader_isolated_test", false),
            ("the_basic_case", false),
        ];
        for (id, want) in cases {
            assert_eq!(named_after_claim(id, claim.0, claim.1), want, "{id}");
        }
    }
}
