//! Every `dst ...` line quoted in the two SKILL.md files names a known command
//! (`planner::skills::KNOWN_COMMANDS`), and each skill quotes the commands its procedure needs.

use std::path::PathBuf;

use planner::skills::{command_lines, verb_path};

fn skill(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../skills")
        .join(name)
        .join("SKILL.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_quoted_command_is_known() {
    for name in ["design-distributed-tests", "execute-distributed-tests"] {
        let text = skill(name);
        let lines = command_lines(&text);
        assert!(lines.len() >= 4, "{name}: too few commands quoted");
        for l in lines {
            assert!(
                verb_path(&l.text).is_some(),
                "{name}/SKILL.md line {}: `{}` is not a known dst command",
                l.line,
                l.text
            );
        }
    }
}

#[test]
fn skills_have_front_matter_and_quote_their_required_commands() {
    let cases: [(&str, &[&[&str]]); 2] = [
        (
            "design-distributed-tests",
            &[
                &["toolbox"],
                &["plan", "init"],
                &["plan", "techniques"],
                &["plan", "lint"],
                &["plan", "render"],
            ],
        ),
        (
            "execute-distributed-tests",
            &[
                &["toolbox"],
                &["probe"],
                &["plan", "lint"],
                &["plan", "compile"],
                &["run"],
                &["report"],
                &["plan", "coverage"],
            ],
        ),
    ];
    for (name, required) in cases {
        let text = skill(name);
        assert!(
            text.starts_with("---\nname: "),
            "{name}: YAML front matter with name"
        );
        assert!(text.contains(&format!("name: {name}\n")), "{name}");
        assert!(text.contains("\ndescription: "), "{name}: description");
        let used: Vec<&[&str]> = command_lines(&text)
            .iter()
            .filter_map(|l| verb_path(&l.text))
            .collect();
        for r in required {
            assert!(used.contains(r), "{name} must quote dst {}", r.join(" "));
        }
    }
}
