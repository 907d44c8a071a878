//! The few bpf(2) requests aya 0.14 has no API for: the raw call itself (fmod_ret loading, the
//! probe's trampoline attach) and a program's run statistics, whose `recursion_misses` aya's
//! `ProgramInfo` does not expose.

use std::{
    io, mem,
    os::fd::{AsRawFd as _, BorrowedFd},
};

use aya_obj::generated::{bpf_attr, bpf_cmd, bpf_prog_info};

/// Issues bpf(2) with `attr`; returns the kernel's result (negative with errno set on error).
///
/// # Safety
/// `attr` must be a valid request for `cmd`.
pub(crate) unsafe fn sys_bpf(cmd: bpf_cmd, attr: &mut bpf_attr) -> i64 {
    // SAFETY: forwarded to the caller.
    unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as i32,
            std::ptr::from_mut(attr),
            mem::size_of::<bpf_attr>(),
        )
    }
}

/// Run statistics of a loaded program.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProgStats {
    /// Runs the kernel skipped because a BPF program was already active on the CPU (for
    /// tracepoint programs: any kprobe/tracepoint program, or a map operation of a preempted
    /// task). Counted since 6.7 for tracepoints; older kernels report 0.
    pub recursion_misses: u64,
    /// Runs counted while `kernel.bpf_stats_enabled` (or a BPF_ENABLE_STATS fd) was on.
    pub run_cnt: u64,
    /// Time spent in the program while statistics were on, in ns.
    pub run_time_ns: u64,
}

/// Reads the run statistics of the program behind `fd` (`BPF_OBJ_GET_INFO_BY_FD`).
pub fn prog_stats(fd: BorrowedFd<'_>) -> io::Result<ProgStats> {
    // SAFETY: plain C struct of integers; all-zero is its valid empty state.
    let mut info: bpf_prog_info = unsafe { mem::zeroed() };
    // SAFETY: as above.
    let mut attr: bpf_attr = unsafe { mem::zeroed() };
    attr.info.bpf_fd = fd.as_raw_fd() as u32;
    attr.info.info_len = mem::size_of::<bpf_prog_info>() as u32;
    attr.info.info = std::ptr::from_mut(&mut info) as u64;
    // SAFETY: a valid OBJ_GET_INFO_BY_FD request whose buffer outlives the call.
    if unsafe { sys_bpf(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut attr) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ProgStats {
        recursion_misses: info.recursion_misses,
        run_cnt: info.run_cnt,
        run_time_ns: info.run_time_ns,
    })
}
