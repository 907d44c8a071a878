//! A minimal newc (SVR4, no CRC) cpio writer: directories, files and symlinks, enough for an
//! initramfs the kernel unpacks.

use std::{collections::BTreeSet, io::Write};

/// Builds an archive in memory; parent directories are added on demand.
#[derive(Default)]
pub struct Cpio {
    buf: Vec<u8>,
    dirs: BTreeSet<String>,
    ino: u32,
}

impl Cpio {
    /// Adds a directory (and its parents).
    pub fn dir(&mut self, path: &str) {
        let path = path.trim_matches('/');
        if path.is_empty() || self.dirs.contains(path) {
            return;
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        self.dirs.insert(path.to_owned());
        self.entry(path, 0o040755, b"");
    }

    /// Adds a regular file with `mode` (permission bits).
    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) {
        let path = path.trim_start_matches('/');
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        self.entry(path, 0o100000 | mode, data);
    }

    /// Adds a symlink at `path` pointing to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) {
        let path = path.trim_start_matches('/');
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        self.entry(path, 0o120777, target.as_bytes());
    }

    /// The finished archive (with the trailer).
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, b"");
        self.buf
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.ino += 1;
        let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
        let fields = [
            self.ino,
            mode,
            0,
            0,
            nlink,
            0,
            data.len() as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        let _ = write!(self.buf, "070701");
        for f in fields {
            let _ = write!(self.buf, "{f:08x}");
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad();
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_aligned_and_parents_come_first() {
        let mut c = Cpio::default();
        c.file("a/b/c", 0o755, b"xyz");
        let out = c.finish();
        assert_eq!(out.len() % 4, 0);
        let s = String::from_utf8_lossy(&out);
        let (a, b, f) = (
            s.find("a\0").unwrap(),
            s.find("a/b\0").unwrap(),
            s.find("a/b/c\0").unwrap(),
        );
        assert!(a < b && b < f);
        assert!(s.contains("TRAILER!!!"));
        assert!(s.starts_with("070701"));
    }
}
