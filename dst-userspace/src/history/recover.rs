//! Opening a history file after a crash: a torn last line (no newline, or trailing lines that
//! are not JSON) is truncated away, a bad line followed by good ones is refused, and the next
//! index continues after the last durable operation.

use std::{
    fs::OpenOptions,
    path::{Path, PathBuf},
};

use serde_json::Value;

use super::HistoryError;

/// What [`recover`] found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Recovery {
    /// Complete operations in the file.
    pub ops: u64,
    /// Index the next operation gets.
    pub next_index: u64,
    /// Bytes removed from the end (a torn write); 0 when the file was clean.
    pub truncated_bytes: u64,
    /// Length of the file after recovery.
    pub len: u64,
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> HistoryError + use<> {
    let path = PathBuf::from(path);
    move |source| HistoryError::Io { op, path, source }
}

/// Checks `path` (creating it if missing), truncates a torn tail and syncs the result.
pub fn recover(path: &Path) -> Result<Recovery, HistoryError> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io("reading", path)(e)),
    };
    let mut good_end = 0usize; // byte offset after the last good line
    let mut ops = 0u64;
    let mut last_index: Option<u64> = None;
    let mut first_bad: Option<(u64, String)> = None; // (line number, problem)
    let mut line_no = 0u64;
    let mut start = 0usize;
    while let Some(nl) = data[start..].iter().position(|&b| b == b'\n') {
        let line = &data[start..start + nl];
        line_no += 1;
        let end = start + nl + 1;
        start = end;
        if line.iter().all(u8::is_ascii_whitespace) {
            if first_bad.is_none() {
                good_end = end;
            }
            continue;
        }
        match serde_json::from_slice::<Value>(line) {
            Ok(v) => {
                if let Some((bad_line, problem)) = first_bad.take() {
                    return Err(HistoryError::Corrupt {
                        path: path.to_path_buf(),
                        line: bad_line,
                        problem,
                    });
                }
                ops += 1;
                last_index = v.get("index").and_then(Value::as_u64).or(last_index);
                good_end = end;
            }
            Err(e) => {
                if first_bad.is_none() {
                    first_bad = Some((line_no, e.to_string()));
                }
            }
        }
    }
    let next_index = last_index.map_or(ops, |i| (i + 1).max(ops));
    let truncated = (data.len() - good_end) as u64;
    if truncated > 0 {
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io("opening", path))?;
        f.set_len(good_end as u64).map_err(io("truncating", path))?;
        f.sync_all().map_err(io("syncing", path))?;
    }
    Ok(Recovery {
        ops,
        next_index,
        truncated_bytes: truncated,
        len: good_end as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(content: &[u8]) -> (tempdir::Dir, PathBuf) {
        let d = tempdir::Dir::new();
        let p = d.0.join("h.jsonl");
        std::fs::write(&p, content).unwrap();
        (d, p)
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Self {
                static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let p =
                    std::env::temp_dir().join(format!("dst-recover-{}-{n}", std::process::id()));
                std::fs::create_dir_all(&p).unwrap();
                Self(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn torn_tail_is_truncated() {
        let good = b"{\"index\":0}\n{\"index\":1}\n";
        let (_d, p) = file(&[&good[..], b"{\"index\":2,\"ti"].concat());
        let r = recover(&p).unwrap();
        assert_eq!((r.ops, r.next_index, r.truncated_bytes), (2, 2, 14));
        assert_eq!(std::fs::read(&p).unwrap(), good);
    }

    #[test]
    fn trailing_garbage_lines_are_a_torn_tail() {
        let (_d, p) = file(b"{\"index\":4}\n\0\0\0\0\n\0\0");
        let r = recover(&p).unwrap();
        assert_eq!((r.ops, r.next_index, r.len), (1, 5, 12));
    }

    #[test]
    fn bad_line_in_the_middle_is_refused_untouched() {
        let content = b"{\"index\":0}\nxx\n{\"index\":2}\n";
        let (_d, p) = file(content);
        assert!(matches!(
            recover(&p),
            Err(HistoryError::Corrupt { line: 2, .. })
        ));
        assert_eq!(std::fs::read(&p).unwrap(), content);
    }

    #[test]
    fn missing_file_is_empty() {
        let d = tempdir::Dir::new();
        let r = recover(&d.0.join("none.jsonl")).unwrap();
        assert_eq!(r, Recovery::default());
    }
}
