//! `cargo xtask dist [--image]`: a static `dst` binary (static glibc: `+crt-static` for
//! x86_64-unknown-linux-gnu; this toolchain has no musl target) in target/dist/, checked to
//! have no ELF interpreter; with --image, an OCI image `localhost/dst:<version>` built from
//! deploy/Containerfile by Debian's podman (runc, cgroupfs, capped ulimits via
//! deploy/podman/containers.conf), which must start and answer `dst --json probe`.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::run::{cargo, run};

const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Arguments of `cargo xtask dist`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also build the OCI image with podman and check it starts.
    #[arg(long)]
    image: bool,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}

/// Whether an ELF file has a PT_INTERP program header (i.e. is dynamically linked).
fn has_interpreter(elf: &[u8]) -> anyhow::Result<bool> {
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" || elf[4] != 2 {
        bail!("not a 64-bit ELF file");
    }
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[32..40].try_into()?) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        let kind = u32::from_le_bytes(elf.get(o..o + 4).context("truncated ELF")?.try_into()?);
        if kind == 3 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The podman command with dst's containers.conf.
pub fn podman() -> Command {
    let mut c = Command::new("podman");
    c.env(
        "CONTAINERS_CONF",
        root().join("deploy/podman/containers.conf"),
    );
    c
}

pub fn dist(args: &Args) -> anyhow::Result<()> {
    let root = root();
    run(cargo()
        .current_dir(&root)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .args([
            "build",
            "--release",
            "-p",
            "dst-userspace",
            "--bin",
            "dst",
            "--target",
            TARGET,
        ]))?;
    let built = root.join(format!("target/{TARGET}/release/dst"));
    let bytes = std::fs::read(&built).with_context(|| format!("reading {}", built.display()))?;
    if has_interpreter(&bytes)? {
        bail!(
            "{} is dynamically linked (has an ELF interpreter)",
            built.display()
        );
    }
    let dist = root.join("target/dist");
    std::fs::create_dir_all(&dist)?;
    let out = dist.join("dst");
    std::fs::copy(&built, &out)?;
    eprintln!(
        "xtask: {} static, {:.1} MiB",
        out.display(),
        bytes.len() as f64 / (1 << 20) as f64
    );
    if !args.image {
        return Ok(());
    }
    let version = env!("CARGO_PKG_VERSION");
    let tag = format!("localhost/dst:{version}");
    run(podman()
        .args(["build", "--format", "oci", "-t", &tag, "-f"])
        .arg(root.join("deploy/Containerfile"))
        .arg(&dist))?;
    let size = String::from_utf8_lossy(
        &podman()
            .args(["image", "inspect", "--format", "{{.Size}}", &tag])
            .output()?
            .stdout,
    )
    .trim()
    .to_string();
    // The image must start and answer the probe, run as the DaemonSet runs it: host network,
    // PIDs and cgroups (the host cgroupfs mounted in).
    let probe = podman()
        .args([
            "run",
            "--rm",
            "--privileged",
            "--network",
            "host",
            "--pid",
            "host",
        ])
        .args([
            "--cgroupns",
            "host",
            "-v",
            "/sys/fs/cgroup:/sys/fs/cgroup",
            &tag,
        ])
        .args(["--json", "probe"])
        .output()?;
    let v: serde_json::Value = serde_json::from_slice(&probe.stdout).with_context(|| {
        format!(
            "`podman run {tag} --json probe` gave no JSON: {}",
            String::from_utf8_lossy(&probe.stderr)
        )
    })?;
    let works: Vec<&str> = v
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, c)| c["available"] == true)
                .map(|(k, _)| k.as_str())
                .collect()
        })
        .unwrap_or_default();
    if works.is_empty() {
        bail!("`dst --json probe` in the image found no working mechanism: {v}");
    }
    eprintln!(
        "xtask: image {tag}: {size} bytes; `dst --json probe` inside it: {} mechanisms \
         available ({})",
        works.len(),
        works.join(", ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn elf_interpreter_detection() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        // Test binaries are linked dynamically by default.
        assert!(super::has_interpreter(&me).unwrap());
        assert!(super::has_interpreter(b"nope").is_err());
    }
}
