//! Builds the eBPF objects of `dst-ebpf` (nightly, bpfel target, bpf-linker) through aya-build
//! and leaves them in OUT_DIR for `include_bytes_aligned!`.
use anyhow::Context as _;

fn main() -> anyhow::Result<()> {
    let manifest = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest
        .parent()
        .context("dst-userspace has no parent directory")?;
    let ebpf = root.join("dst-ebpf");
    let common = root.join("dst-common");
    // aya-build re-runs on changes under the eBPF crate; the shared types live elsewhere.
    println!("cargo:rerun-if-changed={}", common.display());
    let ebpf_dir = ebpf.to_str().context("non-UTF-8 path to dst-ebpf")?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "dst-ebpf",
            root_dir: ebpf_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::Nightly,
    )
    .context(
        "building the eBPF programs failed; run `scripts/setup` (nightly with rust-src, \
         bpf-linker 0.13.0 built against LLVM 22) and try again",
    )
}
