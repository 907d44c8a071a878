//! Static builds of what the guest runs: the privileged test binary and `dst` (crt-static,
//! explicit host target so build scripts, proc-macros and the nested eBPF build keep their
//! flags), in a target directory of their own, stripped copies staged for the initramfs.

use std::{
    fs,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

use crate::run::{cargo, run};

const TARGET: &str = "x86_64-unknown-linux-gnu";

/// The binaries a guest needs, at the paths the test binary has baked in.
#[derive(Debug)]
pub struct Binaries {
    /// Stripped test binary (host path of the staged copy).
    pub tests: PathBuf,
    /// (absolute path the tests expect, stripped staged copy) for `dst` and friends.
    pub placed: Vec<(PathBuf, PathBuf)>,
    /// Stripped examples of dst-userspace (guest programs such as the VM bench), in /dstvm.
    pub extra: Vec<PathBuf>,
}

/// Builds statically into `target_dir` (with the named dst-userspace `examples`) and stages
/// stripped copies in `stage`.
pub fn build(
    workspace: &Path,
    target_dir: &Path,
    stage: &Path,
    examples: &[&str],
) -> anyhow::Result<Binaries> {
    let static_env = |cmd: &mut Command| {
        cmd.current_dir(workspace)
            .env(
                "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS",
                "-C target-feature=+crt-static",
            )
            .args(["--target", TARGET, "--target-dir"])
            .arg(target_dir);
    };
    let mut cmd = cargo();
    cmd.args(["build", "-p", "dst-userspace", "--bin", "dst"]);
    for e in examples {
        cmd.args(["--example", e]);
    }
    static_env(&mut cmd);
    run(&mut cmd)?;
    let mut cmd = cargo();
    cmd.args([
        "test",
        "--no-run",
        "-p",
        "dst-userspace",
        "--features",
        "privileged-tests",
        "--test",
        "privileged",
        "--message-format=json-render-diagnostics",
    ]);
    static_env(&mut cmd);
    let tests = test_executable(&mut cmd)?;
    let dst = target_dir.join(TARGET).join("debug/dst");
    fs::create_dir_all(stage)?;
    let staged_tests = strip(&tests, &stage.join("privileged"))?;
    let staged_dst = strip(&dst, &stage.join("dst"))?;
    let mut extra = Vec::new();
    for e in examples {
        let built = target_dir.join(TARGET).join("debug/examples").join(e);
        extra.push(strip(&built, &stage.join(e))?);
    }
    Ok(Binaries {
        tests: staged_tests,
        placed: vec![(absolute(&dst)?, staged_dst)],
        extra,
    })
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    fs::canonicalize(p).with_context(|| format!("{} was not built", p.display()))
}

/// Runs `cargo test --no-run --message-format=json…` and returns the test executable.
fn test_executable(cmd: &mut Command) -> anyhow::Result<PathBuf> {
    eprintln!("xtask: $ cargo test --no-run (static, --target {TARGET})");
    let mut child = cmd.stdout(Stdio::piped()).spawn()?;
    let mut exe = None;
    for line in BufReader::new(child.stdout.take().context("no stdout")?).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line?) else {
            continue;
        };
        if v["reason"] == "compiler-artifact"
            && v["target"]["name"] == "privileged"
            && let Some(p) = v["executable"].as_str()
        {
            exe = Some(PathBuf::from(p));
        }
    }
    if !child.wait()?.success() {
        bail!("building the static privileged test binary failed (see the compiler output above)");
    }
    exe.context("cargo reported no executable for the privileged test target")
}

/// Copies `src` to `dst` without symbols (the guest only needs the code).
fn strip(src: &Path, dst: &Path) -> anyhow::Result<PathBuf> {
    let fresh = match (fs::metadata(src), fs::metadata(dst)) {
        (Ok(s), Ok(d)) => d.modified()? >= s.modified()?,
        _ => false,
    };
    if !fresh {
        run(Command::new("strip")
            .arg("--strip-all")
            .arg("-o")
            .arg(dst)
            .arg(src))
        .context("strip failed: apt-get install binutils")?;
    }
    Ok(dst.to_path_buf())
}
