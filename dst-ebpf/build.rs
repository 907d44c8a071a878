//! Rebuild the eBPF objects whenever the bpf-linker binary changes (an undeclared dependency).
fn main() {
    if let Ok(linker) = which::which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
}
