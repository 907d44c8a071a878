//! Makefile targets and justfile recipes, and which of them look like test or fault tooling.

/// Target-name fragments that mark testing or fault-injection targets.
const TESTING: &[&str] = &[
    "chaos",
    "fault",
    "jepsen",
    "nemesis",
    "partition",
    "maelstrom",
    "test",
    "e2e",
    "integration",
    "fuzz",
    "soak",
    "stress",
    "bench",
];

/// True when a target name looks like testing or fault injection.
pub fn is_testing_target(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    TESTING.iter().any(|t| lower.contains(t))
}

fn ident(name: &str, extra: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

/// Splits `head: rest` of a rule line; `None` for indented, comment, special (`.PHONY`) and
/// variable lines (`:=`, `?=`, and `=` before the colon unless parameter defaults are allowed).
fn rule_head(line: &str, defaults_allowed: bool) -> Option<&str> {
    if line.starts_with(['\t', ' ', '#', '.', '[']) || line.contains(":=") || line.contains("?=") {
        return None;
    }
    let colon = line.find(':')?;
    if !defaults_allowed && line[..colon].contains('=') {
        return None;
    }
    Some(&line[..colon])
}

fn push_unique(out: &mut Vec<String>, name: &str) {
    if !out.iter().any(|o| o == name) {
        out.push(name.to_owned());
    }
}

/// Targets of a Makefile (`name:` at the start of a line; not variables, not `.PHONY`, not
/// pattern rules), in order, each once. `a b: deps` yields both.
pub fn make_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for head in text.lines().filter_map(|l| rule_head(l, false)) {
        for name in head.split_whitespace() {
            if ident(name, "_-./") {
                push_unique(&mut out, name);
            }
        }
    }
    out
}

/// Recipes of a justfile (`name args...:` at the start of a line, `@` allowed; not variables
/// or settings), in order.
pub fn just_recipes(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.strip_prefix('@').unwrap_or(line);
        let Some(head) = rule_head(line, true) else {
            continue;
        };
        if let Some(name) = head.split_whitespace().next().filter(|n| ident(n, "_-")) {
            push_unique(&mut out, name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_targets_skip_variables_and_specials() {
        let mk = "CC := gcc\nX = a:b\n.PHONY: all chaos\nall: build\n\t@echo hi\nchaos jepsen-test: all\n%.o: %.c\nbuild:\n# note: x\n";
        assert_eq!(make_targets(mk), ["all", "chaos", "jepsen-test", "build"]);
    }

    #[test]
    fn just_recipes_with_arguments() {
        let just = "set shell := [\"bash\"]\nversion := \"1\"\ntest:\n    cargo test\nchaos target='n1': build\n    ./chaos.sh\n@quiet:\n";
        assert_eq!(just_recipes(just), ["test", "chaos", "quiet"]);
    }

    #[test]
    fn testing_targets() {
        let cases = [
            ("chaos", true),
            ("jepsen-test", true),
            ("e2e", true),
            ("build", false),
            ("fmt", false),
        ];
        for (name, want) in cases {
            assert_eq!(is_testing_target(name), want, "{name}");
        }
    }
}
