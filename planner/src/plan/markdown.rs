//! Splitting a Markdown plan into front matter, fenced TOML blocks and headed prose sections,
//! keeping the 1-based line number of everything.

/// A fenced code block (or `+++` front matter): its language and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// Line of the block's first body line (1-based).
    pub first_line: usize,
    /// Info string after the opening fence (`toml`), empty for `+++` front matter.
    pub lang: String,
    /// Body without the fences.
    pub text: String,
}

/// A Markdown heading outside code blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heading {
    /// Line of the heading (1-based).
    pub line: usize,
    /// Number of `#`.
    pub level: usize,
    /// Text after the `#`s, with any trailing HTML comment removed.
    pub title: String,
}

/// The parts of a plan document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Doc {
    /// `+++` front matter, or the first ```toml block before the first level-2 heading.
    pub front: Option<Block>,
    /// Every other fenced block, in order.
    pub blocks: Vec<Block>,
    /// Every heading, in order.
    pub headings: Vec<Heading>,
    /// All lines, for section text.
    pub lines: Vec<String>,
}

/// A fence was opened and never closed (1-based line of the opening fence).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unclosed(pub usize);

fn fence(line: &str) -> Option<&str> {
    let t = line.trim_start();
    t.strip_prefix("```").or_else(|| t.strip_prefix("~~~"))
}

/// Splits a document.
pub fn split(text: &str) -> Result<Doc, Unclosed> {
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut doc = Doc::default();
    let mut i = 0;
    if lines.first().map(|l| l.trim()) == Some("+++") {
        let end = lines[1..]
            .iter()
            .position(|l| l.trim() == "+++")
            .ok_or(Unclosed(1))?;
        doc.front = Some(Block {
            first_line: 2,
            lang: String::new(),
            text: lines[1..=end].join("\n"),
        });
        i = end + 2;
    }
    let mut seen_section = false;
    while i < lines.len() {
        let line = &lines[i];
        if let Some(info) = fence(line) {
            let open = i;
            let close = lines[i + 1..]
                .iter()
                .position(|l| fence(l).is_some_and(|rest| rest.trim().is_empty()))
                .map(|p| p + i + 1)
                .ok_or(Unclosed(open + 1))?;
            let block = Block {
                first_line: open + 2,
                lang: info.trim().to_owned(),
                text: lines[open + 1..close].join("\n"),
            };
            if doc.front.is_none() && !seen_section && block.lang == "toml" {
                doc.front = Some(block);
            } else {
                doc.blocks.push(block);
            }
            i = close + 1;
            continue;
        }
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if hashes > 0 && line[hashes..].starts_with(' ') {
            let mut title = line[hashes..].trim();
            if let Some(c) = title.find("<!--") {
                title = title[..c].trim();
            }
            if hashes <= 2 && hashes > 1 {
                seen_section = true;
            }
            doc.headings.push(Heading {
                line: i + 1,
                level: hashes,
                title: title.to_owned(),
            });
        }
        i += 1;
    }
    doc.lines = lines;
    Ok(doc)
}

impl Doc {
    /// The first level-2 heading whose title starts with `prefix` (case-insensitive), and the
    /// prose under it up to the next heading of level 1 or 2 (code blocks included as text).
    pub fn section(&self, prefix: &str) -> Option<(usize, String)> {
        let prefix = prefix.to_lowercase();
        let idx = self
            .headings
            .iter()
            .position(|h| h.level == 2 && h.title.to_lowercase().starts_with(&prefix))?;
        let start = self.headings[idx].line;
        let end = self.headings[idx + 1..]
            .iter()
            .find(|h| h.level <= 2)
            .map_or(self.lines.len(), |h| h.line - 1);
        Some((start, self.lines[start..end].join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_blocks_and_sections_keep_line_numbers() {
        let cases = [
            (
                "+++\nsystem = \"a\"\n+++\n## Claims\n```toml\nx = 1\n```\n",
                2,
                6,
            ),
            (
                "# T\n\n```toml\nsystem = \"a\"\n```\n## Claims\n```toml\nx = 1\n```\n",
                4,
                8,
            ),
        ];
        for (text, front_line, block_line) in cases {
            let doc = split(text).unwrap();
            assert_eq!(doc.front.as_ref().unwrap().first_line, front_line, "{text}");
            assert_eq!(doc.front.as_ref().unwrap().text, "system = \"a\"");
            assert_eq!(doc.blocks.len(), 1);
            assert_eq!(doc.blocks[0].first_line, block_line);
            assert_eq!(doc.blocks[0].text, "x = 1");
        }
    }

    #[test]
    fn sections_end_at_the_next_level_two_heading_and_ignore_fenced_hashes() {
        let text = "## Adequacy <!-- note -->\nwe cover a\n### detail\nand b\n```sh\n## not a heading\n```\n## Residual uncertainties\nclocks\n";
        let doc = split(text).unwrap();
        let (line, body) = doc.section("adequacy").unwrap();
        assert_eq!(line, 1);
        assert!(body.contains("and b") && !body.contains("clocks"), "{body}");
        assert_eq!(doc.section("residual").unwrap().1, "clocks");
        assert_eq!(doc.headings.len(), 3);
        assert!(doc.section("scenarios").is_none());
    }

    #[test]
    fn unclosed_fences_name_their_line() {
        let cases = [("+++\nsystem = 1\n", 1), ("## A\n\n```toml\nx = 1\n", 3)];
        for (text, line) in cases {
            assert_eq!(split(text).unwrap_err(), Unclosed(line), "{text}");
        }
    }
}
