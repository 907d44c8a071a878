//! A private apt configuration (own sources list, lists, cache and status under the VM cache
//! directory) so kernel packages are fetched without touching the system's apt sources.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, SystemTime},
};

use anyhow::{Context as _, bail};

use crate::run::{output, run};

/// Debian suites searched for kernels: 6.1 (bookworm), 6.12 (bookworm-security/backports),
/// 7.x (trixie-backports).
const SOURCES: &str = "\
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-backports main
";

/// Package lists older than this are refreshed.
const LISTS_MAX_AGE: Duration = Duration::from_secs(12 * 3600);

/// apt-get / apt-cache with every directory redirected under `root`.
pub struct Apt {
    root: PathBuf,
}

impl Apt {
    /// Creates the private tree under `root` (idempotent).
    pub fn new(root: &Path) -> anyhow::Result<Self> {
        for d in ["lists/partial", "cache/archives/partial", "preferences.d"] {
            fs::create_dir_all(root.join(d)).with_context(|| format!("creating {d}"))?;
        }
        fs::write(root.join("sources.list"), SOURCES)?;
        let status = root.join("status");
        if !status.exists() {
            fs::write(&status, "")?;
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    fn options(&self, cmd: &mut Command) {
        let r = |p: &str| self.root.join(p).display().to_string();
        for (k, v) in [
            ("Dir::Etc::SourceList", r("sources.list")),
            ("Dir::Etc::SourceParts", r("no-sources.d")),
            ("Dir::Etc::Preferences", r("preferences")),
            ("Dir::Etc::PreferencesParts", r("preferences.d")),
            ("Dir::State", r("")),
            ("Dir::State::Lists", r("lists")),
            ("Dir::State::status", r("status")),
            ("Dir::Cache", r("cache")),
            ("Debug::NoLocking", "1".into()),
            ("APT::Architecture", "amd64".into()),
            ("APT::Sandbox::User", "root".into()),
        ] {
            cmd.arg("-o").arg(format!("{k}={v}"));
        }
    }

    /// Refreshes the package lists when they are missing or stale; a failed refresh with
    /// lists present only warns (offline re-runs use the cache).
    pub fn update(&self) -> anyhow::Result<()> {
        let stamp = self.root.join("lists/.updated");
        let fresh = fs::metadata(&stamp)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age < LISTS_MAX_AGE);
        if fresh {
            return Ok(());
        }
        let mut cmd = Command::new("apt-get");
        self.options(&mut cmd);
        cmd.args(["-qq", "update"]);
        match run(&mut cmd) {
            Ok(()) => {
                fs::write(&stamp, "")?;
                Ok(())
            }
            Err(e) if stamp.exists() => {
                eprintln!("xtask: vm: apt-get update failed ({e:#}); using the lists from the last run");
                Ok(())
            }
            Err(e) => Err(e.context(
                "apt-get update of the private kernel sources failed: check access to deb.debian.org",
            )),
        }
    }

    /// Names of the packages that start with `prefix`.
    pub fn pkgnames(&self, prefix: &str) -> Vec<String> {
        let mut cmd = Command::new("apt-cache");
        self.options(&mut cmd);
        cmd.args(["pkgnames", prefix]);
        output(&mut cmd).lines().map(str::to_owned).collect()
    }

    /// Downloads `package` into `dir` unless a `.deb` of it is already there; returns its path.
    pub fn download(&self, package: &str, dir: &Path) -> anyhow::Result<PathBuf> {
        fs::create_dir_all(dir)?;
        if let Some(p) = find_deb(dir, package)? {
            return Ok(p);
        }
        let mut cmd = Command::new("apt-get");
        self.options(&mut cmd);
        cmd.args(["-qq", "download", package]).current_dir(dir);
        run(&mut cmd)?;
        match find_deb(dir, package)? {
            Some(p) => Ok(p),
            None => bail!(
                "apt-get download {package} left no .deb in {}",
                dir.display()
            ),
        }
    }
}

fn find_deb(dir: &Path, package: &str) -> anyhow::Result<Option<PathBuf>> {
    let prefix = format!("{package}_");
    for e in fs::read_dir(dir)? {
        let p = e?.path();
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(".deb") {
            return Ok(Some(p));
        }
    }
    Ok(None)
}
