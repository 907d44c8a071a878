//! The Debian kernels of the VM tier: which packages make each series, picking the newest,
//! fetching (cached), extracting vmlinuz and the modules the tests need with their dependencies.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use super::apt::Apt;
use crate::run::run;

/// Modules the privileged tests need; their dependencies come along. Ones built into a
/// kernel are skipped.
pub const MODULES: &[&str] = &[
    "veth",
    "bridge",
    "tun",
    "ifb",
    "sch_ingress",
    "cls_bpf",
    "act_bpf",
    "sch_fq",
    "sch_netem",
    "sch_tbf",
    "sch_htb",
];

/// One kernel series the tier boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Series {
    /// Debian bookworm's 6.1 (no TCX: clsact + cls_bpf).
    V6_1,
    /// 6.12 from bookworm-security / bookworm-backports.
    V6_12,
    /// 7.3 from trixie-backports (image split in binary + modules packages).
    V7_3,
}

impl Series {
    pub const ALL: [Series; 3] = [Series::V6_1, Series::V6_12, Series::V7_3];

    pub fn label(self) -> &'static str {
        match self {
            Series::V6_1 => "6.1",
            Series::V6_12 => "6.12",
            Series::V7_3 => "7.3",
        }
    }

    pub fn parse(s: &str) -> anyhow::Result<Vec<Series>> {
        match s {
            "all" => Ok(Self::ALL.to_vec()),
            _ => match Self::ALL.iter().find(|k| k.label() == s) {
                Some(k) => Ok(vec![*k]),
                None => bail!("unknown kernel {s:?}: use 6.1, 6.12, 7.3 or all"),
            },
        }
    }

    /// Picks the newest packages of this series among `names` (apt-cache pkgnames output).
    fn pick(self, apt: &Apt) -> anyhow::Result<Vec<String>> {
        let (prefix, suffix) = match self {
            Series::V6_1 => ("linux-image-6.1.0-", "-amd64-unsigned"),
            Series::V6_12 => ("linux-image-6.12.", "-amd64-unsigned"),
            Series::V7_3 => ("linux-binary-unsigned-7.3.", "-amd64"),
        };
        let best = newest(&apt.pkgnames(prefix), prefix, suffix).with_context(|| {
            format!(
                "no {prefix}*{suffix} package in the private apt lists for kernel {}",
                self.label()
            )
        })?;
        let mut pkgs = vec![best.clone()];
        if self == Series::V7_3 {
            // linux-binary-unsigned-7.3.4+deb13-amd64 → linux-modules-7.3.4+deb13-amd64
            pkgs.push(best.replace("linux-binary-unsigned-", "linux-modules-"));
        }
        Ok(pkgs)
    }
}

/// The name with the largest numeric version between `prefix` and `suffix`; flavours such as
/// `-cloud-amd64` do not match because the middle may only hold digits, letters, `.` and `+`.
fn newest(names: &[String], prefix: &str, suffix: &str) -> Option<String> {
    names
        .iter()
        .filter_map(|n| {
            let mid = n.strip_prefix(prefix)?.strip_suffix(suffix)?;
            let ok = mid.chars().next()?.is_ascii_digit()
                && mid
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '+');
            ok.then(|| (numbers(mid), n.clone()))
        })
        .max()
        .map(|(_, n)| n)
}

fn numbers(s: &str) -> Vec<u64> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// A kernel ready to boot: its image and the modules in load order.
#[derive(Debug)]
pub struct Prepared {
    /// Full release, e.g. `6.12.117+deb12-amd64`.
    pub release: String,
    pub vmlinuz: PathBuf,
    /// Uncompressed `.ko` files, dependencies first.
    pub modules: Vec<PathBuf>,
}

/// Fetches (or reuses) the packages of `series` under `cache` and extracts what a boot needs.
pub fn prepare(apt: &Apt, series: Series, cache: &Path) -> anyhow::Result<Prepared> {
    let pkgs = series.pick(apt)?;
    let dir = cache.join(series.label());
    let debs = dir.join("debs");
    // Drop .debs of older versions, then extract the current ones once.
    let key = pkgs.join(" ");
    let root = dir.join("root");
    let stamp = dir.join("extracted");
    if fs::read_to_string(&stamp).ok().as_deref() != Some(key.as_str()) {
        let _ = fs::remove_dir_all(&root);
        if debs.exists() {
            for e in fs::read_dir(&debs)? {
                let p = e?.path();
                let name = p
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                if !pkgs.iter().any(|k| name.starts_with(&format!("{k}_"))) {
                    fs::remove_file(&p)?;
                }
            }
        }
        fs::create_dir_all(&root)?;
        for p in &pkgs {
            let deb = apt.download(p, &debs)?;
            run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root))?;
        }
        fs::write(&stamp, &key)?;
    } else {
        eprintln!("xtask: vm: kernel {} cached ({key})", series.label());
    }
    let moddir = ["lib/modules", "usr/lib/modules"]
        .iter()
        .map(|d| root.join(d))
        .find(|d| d.is_dir())
        .context("the kernel package has no lib/modules directory")?;
    let release = fs::read_dir(&moddir)?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .context("lib/modules is empty")?;
    let mods = moddir.join(&release);
    let vmlinuz = [
        root.join(format!("boot/vmlinuz-{release}")),
        mods.join("vmlinuz"),
        mods.join("vmlinuz.unsigned"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .context("no vmlinuz in the kernel package")?;
    let modules = resolve_modules(&mods, &dir.join("ko"))?;
    Ok(Prepared {
        release,
        vmlinuz,
        modules,
    })
}

/// Finds [`MODULES`] and their `depends=` under `mods/kernel`, decompresses them into `out`
/// and returns them in load order.
fn resolve_modules(mods: &Path, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut index = BTreeMap::new();
    index_modules(&mods.join("kernel"), &mut index)?;
    let builtin = fs::read_to_string(mods.join("modules.builtin")).unwrap_or_default();
    let builtin: BTreeSet<String> = builtin
        .lines()
        .filter_map(|l| l.rsplit('/').next())
        .map(|f| norm(f.trim_end_matches(".ko")))
        .collect();
    fs::create_dir_all(out)?;
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    for m in MODULES {
        visit(&norm(m), &index, &builtin, out, &mut seen, &mut order)?;
    }
    Ok(order)
}

fn visit(
    name: &str,
    index: &BTreeMap<String, PathBuf>,
    builtin: &BTreeSet<String>,
    out: &Path,
    seen: &mut BTreeSet<String>,
    order: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    if !seen.insert(name.to_owned()) {
        return Ok(());
    }
    let Some(src) = index.get(name) else {
        if !builtin.contains(name) {
            eprintln!("xtask: vm: module {name} is neither a module nor built in; not loaded");
        }
        return Ok(());
    };
    let ko = out.join(format!("{name}.ko"));
    if !ko.exists() {
        let bytes = decompress(src)?;
        fs::write(&ko, &bytes)?;
    }
    let bytes = fs::read(&ko)?;
    for dep in depends(&bytes) {
        visit(&norm(&dep), index, builtin, out, seen, order)?;
    }
    order.push(ko);
    Ok(())
}

fn norm(name: &str) -> String {
    name.replace('-', "_")
}

fn index_modules(dir: &Path, index: &mut BTreeMap<String, PathBuf>) -> anyhow::Result<()> {
    for e in fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            index_modules(&p, index)?;
        } else if let Some(f) = p.file_name().and_then(|f| f.to_str()) {
            for ext in [".ko", ".ko.xz", ".ko.zst"] {
                if let Some(stem) = f.strip_suffix(ext) {
                    index.insert(norm(stem), p.clone());
                }
            }
        }
    }
    Ok(())
}

fn decompress(src: &Path) -> anyhow::Result<Vec<u8>> {
    let name = src.to_string_lossy();
    let tool = if name.ends_with(".xz") {
        "xz"
    } else if name.ends_with(".zst") {
        "zstd"
    } else {
        return Ok(fs::read(src)?);
    };
    let out = Command::new(tool)
        .arg("-dc")
        .arg(src)
        .output()
        .with_context(|| format!("running {tool} (apt-get install xz-utils zstd)"))?;
    if !out.status.success() {
        bail!("{tool} -dc {} failed", src.display());
    }
    Ok(out.stdout)
}

/// The `depends=` entry of a module's `.modinfo` strings (NUL-separated `key=value`).
fn depends(ko: &[u8]) -> Vec<String> {
    const KEY: &[u8] = b"\0depends=";
    ko.windows(KEY.len())
        .position(|w| w == KEY)
        .map(|at| {
            let rest = &ko[at + KEY.len()..];
            let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            String::from_utf8_lossy(&rest[..end])
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_compares_numbers_and_ignores_flavours() {
        let names: Vec<String> = [
            "linux-image-6.1.0-9-amd64-unsigned",
            "linux-image-6.1.0-56-amd64-unsigned",
            "linux-image-6.1.0-56-cloud-amd64-unsigned",
            "linux-image-6.1.0-56-rt-amd64-unsigned",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            newest(&names, "linux-image-6.1.0-", "-amd64-unsigned").as_deref(),
            Some("linux-image-6.1.0-56-amd64-unsigned")
        );
        let names: Vec<String> = [
            "linux-image-6.12.38+deb12-amd64-unsigned",
            "linux-image-6.12.117+deb12-amd64-unsigned",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            newest(&names, "linux-image-6.12.", "-amd64-unsigned").as_deref(),
            Some("linux-image-6.12.117+deb12-amd64-unsigned")
        );
    }

    #[test]
    fn depends_reads_the_modinfo_string() {
        let ko = b"junk\0license=GPL\0depends=stp,llc\0intree=Y\0";
        assert_eq!(depends(ko), vec!["stp", "llc"]);
        assert!(depends(b"\0depends=\0").is_empty());
    }
}
