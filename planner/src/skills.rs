//! The `dst` command lines the agent skills may quote, and their extraction from SKILL.md.

/// Every verb path a skill may use (`dst plan lint` is `["plan", "lint"]`).
pub const KNOWN_COMMANDS: &[&[&str]] = &[
    &["probe"],
    &["toolbox"],
    &["plan", "init"],
    &["plan", "lint"],
    &["plan", "render"],
    &["plan", "techniques"],
    &["plan", "compile"],
    &["plan", "coverage"],
    &["run"],
    &["report"],
    &["check"],
    &["inject", "net"],
    &["fault", "apply"],
    &["demo"],
];

/// A `dst ...` line found in a Markdown shell block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandLine {
    /// 1-based line in the document.
    pub line: usize,
    /// The command, starting with `dst` (prompt `$ ` and `sudo ` removed).
    pub text: String,
}

/// Every line starting with `dst` (after an optional `$ ` prompt and `sudo `) inside ```sh,
/// ```bash, ```shell or ```console blocks.
pub fn command_lines(markdown: &str) -> Vec<CommandLine> {
    let mut out = Vec::new();
    let mut in_shell = None::<bool>;
    for (i, raw) in markdown.lines().enumerate() {
        let t = raw.trim();
        if let Some(info) = t.strip_prefix("```") {
            in_shell = match in_shell {
                Some(_) => None,
                None => Some(matches!(info.trim(), "sh" | "bash" | "shell" | "console")),
            };
            continue;
        }
        if in_shell != Some(true) {
            continue;
        }
        let t = t.strip_prefix("$ ").unwrap_or(t);
        let t = t.strip_prefix("sudo ").unwrap_or(t).trim_start();
        if t == "dst" || t.starts_with("dst ") {
            out.push(CommandLine {
                line: i + 1,
                text: t.to_owned(),
            });
        }
    }
    out
}

/// The known verb path a command line uses (longest match), or `None` if it names no known
/// command.
pub fn verb_path(command: &str) -> Option<&'static [&'static str]> {
    let mut words = command.split_whitespace();
    if words.next() != Some("dst") {
        return None;
    }
    let words: Vec<&str> = words.collect();
    KNOWN_COMMANDS
        .iter()
        .filter(|k| k.len() <= words.len() && k.iter().zip(&words).all(|(a, b)| a == b))
        .max_by_key(|k| k.len())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verb_paths() {
        let cases: [(&str, Option<&[&str]>); 6] = [
            ("dst plan lint plan.md", Some(&["plan", "lint"])),
            ("dst probe --json", Some(&["probe"])),
            ("dst inject net --dev eth0", Some(&["inject", "net"])),
            ("dst plan", None),
            ("dst frobnicate", None),
            ("cargo run", None),
        ];
        for (cmd, want) in cases {
            assert_eq!(verb_path(cmd), want, "{cmd}");
        }
    }

    #[test]
    fn extracts_only_shell_block_lines() {
        let md = "dst run outside\n```sh\n$ dst probe\nsudo dst run a.toml --out r\necho dst\n```\n```toml\ndst = 1\n```\n";
        let got = command_lines(md);
        assert_eq!(
            got,
            [
                CommandLine {
                    line: 3,
                    text: "dst probe".into()
                },
                CommandLine {
                    line: 4,
                    text: "dst run a.toml --out r".into()
                }
            ]
        );
    }
}
