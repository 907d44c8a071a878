//! dst's kernel-side code: packet parsing, the network and syscall fault engines used by the
//! program binaries in `src/bin/` (each binary is one ELF object that userspace embeds and loads).
#![no_std]
// The BPF target has no `AtomicU64::fetch_add`; `net::fetch_add` uses inline assembly.
#![cfg_attr(target_arch = "bpf", feature(asm_experimental_arch))]

pub mod net;
pub mod packet;
pub mod path;
pub mod sys;
pub mod sys_lsm;
pub mod sys_observe;

#[cfg(all(target_arch = "bpf", not(test)))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any reachable panic path, so this is never reached at run time.
    loop {}
}
