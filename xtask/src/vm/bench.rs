//! `cargo xtask bench net --vm`: dst's delay side by side with `tc qdisc netem` in a guest of
//! each selected kernel (one vCPU, so latency is not bimodal), same traffic, one boot; the
//! guest body is dst-userspace's `bench_vm_delay` example. Writes the "Network delay in the
//! VM tier (netem comparison)" section of BENCHMARKS.md.

use std::time::{Duration, Instant};

use anyhow::bail;

use super::{Dirs, apt::Apt, build, initramfs, kernels, kernels::Series, qemu};

/// Datagrams per configuration.
const PROBES: u32 = 1000;

/// Runs the comparison on `kernel` (6.1, 6.12, 7.3 or all) and writes the section.
pub fn run(kernel: &str) -> anyhow::Result<()> {
    let series = Series::parse(kernel)?;
    let dirs = Dirs::new()?;
    let bins = build::build(
        &dirs.workspace,
        &dirs.out.join("build"),
        &dirs.out.join("stage"),
        &["bench_vm_delay"],
    )?;
    let apt = Apt::new(&dirs.cache.join("apt"))?;
    apt.update()?;
    let mut body = format!(
        "Command: `cargo xtask bench net --vm --kernel {kernel}` (QEMU TCG, `-smp 1`, 1 GiB; the \
         guest CPU is emulated, about 4x slower than the host, so compare the rows of one \
         kernel with each other, not with the host figures). dst's delay uses whichever backend \
         dst picks on that kernel (named in the evidence JSON, column 2); netem is configured \
         with `tc` in the same namespace on the same veth, same traffic. The guest binaries \
         are debug builds. `send()` is the sender's syscall time: without a queueing qdisc \
         (base, and the delay line's TCX redirect to its TAP) it includes delivery to the \
         receiver, while netem returns after enqueueing and delivers from its timer, so it \
         is not netem's whole cost. dst CPU is the dst process's CPU time per datagram (the \
         userspace delay line's cost; a kernel-only backend has none). Reordered counts \
         arrivals after a higher sequence number (jitter larger than the 2 ms spacing \
         reorders, by design, in both).\n"
    );
    for s in series {
        let k = kernels::prepare(&apt, s, &dirs.cache)?;
        let initrd = dirs.out.join(format!("initrd-bench-{}.gz", s.label()));
        let plan = initramfs::Plan {
            kernel: &k,
            bins: &bins,
            tests: &[],
            env: Vec::new(),
            bench: None,
            extra_tools: &["tc"],
            no_retry: Vec::new(),
        };
        let cmd = format!(
            "/dstvm/bench_vm_delay {} /usr/sbin/tc {PROBES}",
            initramfs::dst_path(&plan)
        );
        initramfs::write(
            &initramfs::Plan {
                bench: Some(cmd),
                ..plan
            },
            &initrd,
        )?;
        let boot = qemu::Boot {
            kernel: &k.vmlinuz,
            initrd: &initrd,
            log: dirs.out.join(format!("bench-{}.log", s.label())),
            cpus: 1,
            timeout: Duration::from_secs(600),
        };
        eprintln!(
            "xtask: vm bench: booting {} (-smp 1), console in {}",
            k.release,
            boot.log.display()
        );
        let t = Instant::now();
        let mut inside = false;
        let mut table = String::new();
        let mut ended = None;
        qemu::boot(&boot, |line| {
            if line.contains(initramfs::BENCH_BEGIN) {
                inside = true;
            } else if let Some(i) = line.find(initramfs::BENCH_END) {
                inside = false;
                ended = Some(line[i..].contains("rc=0"));
            } else if inside && line.starts_with('|') {
                table.push_str(line);
                table.push('\n');
            } else if inside && line.starts_with("Kernel:") {
                // A blank line first, or Markdown reads it as one more table row.
                table.push('\n');
                table.push_str(line);
                table.push('\n');
            }
        })?;
        if ended != Some(true) || table.is_empty() {
            bail!(
                "the bench did not complete on {} (see {})",
                s.label(),
                boot.log.display()
            );
        }
        eprintln!(
            "xtask: vm bench: {} took {:.0} s",
            s.label(),
            t.elapsed().as_secs_f64()
        );
        print!("{table}");
        body.push_str(&format!("\n### Kernel {}\n\n{table}", s.label()));
    }
    crate::bench::write_section("Network delay in the VM tier (netem comparison)", &body)
}
