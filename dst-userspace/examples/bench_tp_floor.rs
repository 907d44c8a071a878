//! `cargo xtask bench syscall` helper (root): holds an *empty* BPF program on a syscall-exit
//! hook until its stdin closes, so the benchmark can measure the mechanism's own floor beside
//! dst's observer in the same run. `perf-write`: the trivial tracepoint program on
//! `syscalls:sys_exit_{write,pwrite64,writev,pwritev,pwritev2}` (the hooks dst's observer uses
//! for a write fault); `raw-exit`: the trivial raw tracepoint program on `sys_exit` (the
//! catch-all alternative). Prints `ready` once attached.

use std::io::Read as _;

use anyhow::Context as _;
use aya::{
    Ebpf,
    programs::{RawTracePoint, TracePoint},
};

fn main() -> anyhow::Result<()> {
    let mode = std::env::args().nth(1).unwrap_or_default();
    dst::ebpf::ensure_pseudo_filesystems();
    let mut bpf = Ebpf::load(dst::ebpf::PROBE_OBJ).context("loading the dst-probe object")?;
    match mode.as_str() {
        "perf-write" => {
            let p: &mut TracePoint = bpf
                .program_mut("probe_tracepoint")
                .context("probe_tracepoint in the object")?
                .try_into()?;
            p.load()?;
            for name in ["write", "pwrite64", "writev", "pwritev", "pwritev2"] {
                let tp = format!("sys_exit_{name}");
                if std::path::Path::new("/sys/kernel/tracing/events/syscalls")
                    .join(&tp)
                    .exists()
                {
                    p.attach("syscalls", &tp)
                        .with_context(|| format!("attaching to syscalls:{tp}"))?;
                }
            }
        }
        "raw-exit" => {
            let p: &mut RawTracePoint = bpf
                .program_mut("probe_raw_tp")
                .context("probe_raw_tp in the object")?
                .try_into()?;
            p.load()?;
            p.attach("sys_exit").context("attaching to raw sys_exit")?;
        }
        other => anyhow::bail!("unknown mode {other:?}: perf-write or raw-exit"),
    }
    println!("ready");
    // Hold the links until the benchmark closes our stdin (or kills us: the links go too).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    Ok(())
}
