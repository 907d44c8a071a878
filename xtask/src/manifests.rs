//! `cargo xtask manifests`: validates deploy/k8s/*.yaml offline against the Kubernetes OpenAPI
//! schemas with PyPI's `kubernetes-validate` (pinned), installed once into a venv under
//! target/ (later runs reuse it and need no network).

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::run::run;

/// Pinned validator release.
const VALIDATOR: &str = "kubernetes-validate==1.34.1";
/// Kubernetes version whose schemas the manifests must satisfy.
const K8S_VERSION: &str = "1.34.0";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}

pub fn manifests() -> anyhow::Result<()> {
    let root = root();
    let venv = root.join("target/k8s-validate-venv");
    let bin = venv.join("bin/kubernetes-validate");
    if !bin.exists() {
        run(std::process::Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv))
        .context("creating the venv (Debian: apt-get install python3-venv)")?;
        run(std::process::Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", VALIDATOR]))?;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("deploy/k8s"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    run(std::process::Command::new(&bin)
        .args(["--strict", "--kubernetes-version", K8S_VERSION])
        .args(&files))
    .context("a manifest in deploy/k8s does not validate")?;
    eprintln!(
        "xtask: {} manifests valid against Kubernetes {K8S_VERSION}",
        files.len()
    );
    Ok(())
}
