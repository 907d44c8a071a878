//! Bounded directory walk: regular files and directories under a root, noise directories skipped.

use std::{
    io,
    path::{Path, PathBuf},
};

/// Directories never entered.
const SKIP: &[&str] = &[
    ".git",
    "target",
    "node_modules",
    "vendor",
    ".venv",
    "venv",
    "__pycache__",
    "dist",
    ".tox",
    ".cargo",
];

/// Hidden directories that are entered (CI configuration lives there).
const HIDDEN_OK: &[&str] = &[".github", ".gitlab", ".circleci", ".buildkite", ".ci"];

/// Deepest directory level entered.
const MAX_DEPTH: usize = 8;

/// Most entries collected.
const MAX_ENTRIES: usize = 50_000;

/// One walked entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Absolute (or root-joined) path.
    pub path: PathBuf,
    /// True for directories.
    pub is_dir: bool,
}

/// Walks `root`; fails only if `root` itself cannot be read. Unreadable subdirectories and
/// symlinks are skipped.
pub fn walk(root: &Path) -> io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    let mut first = true;
    while let Some((dir, depth)) = stack.pop() {
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if first => return Err(e),
            Err(_) => continue,
        };
        first = false;
        let mut children: Vec<_> = rd.filter_map(Result::ok).collect();
        children.sort_by_key(|c| c.file_name());
        for child in children {
            let Ok(ft) = child.file_type() else { continue };
            let name = child.file_name().to_string_lossy().into_owned();
            if ft.is_dir() {
                let hidden = name.starts_with('.') && !HIDDEN_OK.contains(&name.as_str());
                if SKIP.contains(&name.as_str()) || hidden {
                    continue;
                }
                out.push(Entry {
                    path: child.path(),
                    is_dir: true,
                });
                if depth + 1 < MAX_DEPTH {
                    stack.push((child.path(), depth + 1));
                }
            } else if ft.is_file() {
                out.push(Entry {
                    path: child.path(),
                    is_dir: false,
                });
            }
            if out.len() >= MAX_ENTRIES {
                return Ok(out);
            }
        }
    }
    Ok(out)
}
