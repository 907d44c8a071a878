//! Markdown table rendering shared by every human-readable output.

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Renders a Markdown table; `|` in cells is escaped and newlines become spaces.
pub fn markdown_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!(
        "| {} |\n",
        headers
            .iter()
            .map(|h| cell(h))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    out.push_str(&format!("|{}\n", "---|".repeat(headers.len())));
    for row in rows {
        out.push_str(&format!(
            "| {} |\n",
            row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_pipes_and_newlines() {
        let t = markdown_table(&["a", "b"], &[vec!["x|y".into(), "1\n2".into()]]);
        assert_eq!(t, "| a | b |\n|---|---|\n| x\\|y | 1 2 |\n");
    }
}
