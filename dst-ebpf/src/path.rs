//! Path prefixes in the kernel without `bpf_d_path` (which LSM `file_permission` may not call):
//! climb from a `struct file` through its dentries and mounts, the way `d_path` does, and find
//! the rule's prefix directory (by device and inode) among the ancestors; then compare the name
//! of the component below it with the rule's name prefix. Structure offsets come from the
//! running kernel's BTF through `KOFFS` (aya-ebpf has no CO-RE), so every read is a
//! `bpf_probe_read_kernel`.

use aya_ebpf::{
    EbpfContext,
    helpers::{bpf_probe_read_kernel, bpf_probe_read_kernel_str_bytes},
    macros::map,
    maps::{Array, PerCpuArray},
};
use dst_common::{
    MAX_SYS_RULES,
    lsm::{KernelOffsets, OFFSETS_VALID, PATH_DEPTH, PATH_NAME_MAX, PathRule, name_matches},
    sys::SYS_RULE_PATH,
};

use crate::sys::RULES;

/// Path prefix of each rule slot (read when the rule has `SYS_RULE_PATH`).
#[map(name = "DST_SYS_PATHS")]
pub static PATHS: Array<PathRule> = Array::with_max_entries(MAX_SYS_RULES, 0);

/// Slot 0: kernel structure offsets, filled by userspace from BTF before any rule has a path.
#[map(name = "DST_SYS_KOFFS")]
pub static KOFFS: Array<KernelOffsets> = Array::with_max_entries(1, 0);

/// One ancestor of a file: its (device, inode) and the dentry of the component just below it
/// (0 for the file itself).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Ancestor {
    dev: u32,
    _pad: u32,
    ino: u64,
    below: u64,
}

/// The ancestors of one file, nearest first, and the scratch the matching uses. It lives in
/// a per-CPU map: the verifier does not track map memory, so the match mask kept here does
/// not split its exploration into one state per combination of matched rules.
///
/// A CPU has [`CHAIN_SLOTS`] of them, each claimed for one walk (`busy`): LSM and fmod_ret
/// programs run with migration, not preemption, disabled, so a task preempted halfway through
/// a walk would otherwise find its chain rewritten by the next task's walk on that CPU (LSM
/// programs have no recursion guard, and different fmod_ret programs share this scratch).
#[repr(C)]
pub struct Chain {
    busy: u64,
    len: u32,
    _pad: u32,
    mask: u64,
    name: [u8; PATH_NAME_MAX],
    items: [Ancestor; PATH_DEPTH as usize],
}

/// Chains per CPU: how many walks may be preempted at once on one CPU before a further walk
/// finds no free chain.
const CHAIN_SLOTS: u32 = 4;

/// Scratch space for the chain (too big for the 512-byte BPF stack).
#[map(name = "DST_SYS_CHAIN")]
static CHAIN: PerCpuArray<Chain> = PerCpuArray::with_max_entries(CHAIN_SLOTS, 0);

/// Slot 0: walks that found every chain of their CPU claimed (the file's path was not
/// matched, so a path rule missed that call); userspace reports it with the injectors' skips.
#[map(name = "DST_SYS_CHAIN_BUSY")]
pub static CHAIN_BUSY: Array<u64> = Array::with_max_entries(1, 0);

/// Atomically sets `*flag` to 1 and returns its previous value.
#[inline(always)]
fn test_and_set(flag: *mut u64) -> u64 {
    let mut v: u64 = 1;
    // SAFETY: `flag` is a valid, aligned map value for the program's duration.
    unsafe {
        core::arch::asm!(
            "{v} = xchg_64({flag} + 0, {v})",
            flag = in(reg) flag,
            v = inout(reg) v,
        );
    }
    v
}

/// Claims a free chain of this CPU, or counts the walk in [`CHAIN_BUSY`].
#[inline(always)]
fn claim_chain() -> Option<&'static mut Chain> {
    for i in 0..CHAIN_SLOTS {
        let Some(c) = CHAIN.get_ptr_mut(i) else { break };
        // SAFETY: per-CPU map value; `busy` is only changed atomically or by its owner.
        if test_and_set(unsafe { &raw mut (*c).busy }) == 0 {
            // SAFETY: claimed: no other run uses it until it is released.
            return Some(unsafe { &mut *c });
        }
    }
    if let Some(n) = CHAIN_BUSY.get_ptr_mut(0) {
        crate::net::fetch_add(n, 1);
    }
    None
}

/// S_IFMT / S_IFDIR of `i_mode`.
const S_IFMT: u16 = 0o170000;
const S_IFDIR: u16 = 0o040000;

#[inline(always)]
fn rd<T: Copy>(base: u64, off: u32) -> Option<T> {
    if base == 0 {
        return None;
    }
    // SAFETY: bpf_probe_read_kernel copes with any address (it returns an error instead of
    // faulting); the result is a plain copy.
    unsafe { bpf_probe_read_kernel((base + u64::from(off)) as *const T).ok() }
}

/// Argument `n` of a BTF-typed program (LSM, fentry/fmod_ret) as a plain number: read through
/// `bpf_probe_read_kernel` so the verifier treats it as a scalar we may add offsets to.
#[inline(always)]
pub fn arg_u64<C: EbpfContext>(ctx: &C, n: u32) -> u64 {
    rd::<u64>(ctx.as_ptr() as u64, n * 8).unwrap_or(0)
}

/// The offsets, if userspace filled them.
#[inline(always)]
fn offsets() -> Option<&'static KernelOffsets> {
    KOFFS.get(0).filter(|o| o.valid == OFFSETS_VALID)
}

/// Whether `file` is a directory (its reads are getdents, not `read`).
#[inline(always)]
pub fn is_dir(file: u64) -> bool {
    let Some(o) = offsets() else { return false };
    let inode = rd::<u64>(file, o.file_f_path + o.path_dentry)
        .and_then(|d| rd::<u64>(d, o.dentry_d_inode))
        .unwrap_or(0);
    rd::<u16>(inode, o.inode_i_mode).is_some_and(|m| m & S_IFMT == S_IFDIR)
}

/// Fills `chain` with the ancestors of `file`.
#[inline(always)]
fn chain_of(o: &KernelOffsets, file: u64, chain: &mut Chain) -> Option<()> {
    chain.len = 0;
    chain.mask = 0;
    for a in chain.items.iter_mut() {
        a.ino = 0;
    }
    let mut d: u64 = rd(file, o.file_f_path + o.path_dentry)?;
    let mut mnt: u64 = rd(file, o.file_f_path + o.path_mnt)?;
    let mut below = 0u64;
    let mut n = 0u32;
    for _ in 0..PATH_DEPTH {
        if d == 0 {
            break;
        }
        let inode: u64 = rd(d, o.dentry_d_inode).unwrap_or(0);
        let ino: u64 = rd(inode, o.inode_i_ino).unwrap_or(0);
        let dev: u32 = rd::<u64>(inode, o.inode_i_sb)
            .and_then(|sb| rd(sb, o.sb_s_dev))
            .unwrap_or(0);
        if let Some(slot) = chain.items.get_mut(n as usize) {
            *slot = Ancestor {
                dev,
                _pad: 0,
                ino,
                below,
            };
            n += 1;
            chain.len = n;
        } else {
            break;
        }
        let parent: u64 = rd(d, o.dentry_d_parent).unwrap_or(0);
        let mnt_root: u64 = rd(mnt, o.vfsmount_mnt_root).unwrap_or(0);
        if d == mnt_root || parent == d || parent == 0 {
            // The root of this mount: continue at its mount point in the parent mount. The
            // component below stays the same (the mount point shows the mount's root).
            let m = mnt.wrapping_sub(u64::from(o.mount_mnt));
            let up: u64 = rd(m, o.mount_mnt_parent).unwrap_or(0);
            if up == 0 || up == m {
                break;
            }
            d = rd(m, o.mount_mnt_mountpoint).unwrap_or(0);
            mnt = up + u64::from(o.mount_mnt);
            continue;
        }
        below = d;
        d = parent;
    }
    Some(())
}

/// Bit `i` set: rule slot `i` has a path prefix and `file` lies under it.
///
/// Both loops run their full, constant length (unused ancestors are zeroed, unused rule slots
/// are inactive): an exit that depends on a value kept in a register would give the verifier
/// one state per exit point to carry through the rest of the program.
#[inline(always)]
pub fn path_mask(file: u64) -> u64 {
    let Some(o) = offsets() else { return 0 };
    let Some(chain) = claim_chain() else {
        return 0;
    };
    let mask = if chain_of(o, file, chain).is_some() {
        match_rules(o, chain)
    } else {
        0
    };
    // Release: the walk is done with the chain.
    // SAFETY: our claimed chain; a plain store suffices (only its owner writes 0).
    unsafe { core::ptr::write_volatile(&raw mut chain.busy, 0) };
    mask
}

/// The mask of rules whose prefix `chain` lies under (see [`path_mask`]).
#[inline(always)]
fn match_rules(o: &KernelOffsets, chain: &mut Chain) -> u64 {
    for i in 0..MAX_SYS_RULES {
        let Some(rule) = RULES.get(i) else { break };
        if rule.flags & SYS_RULE_PATH == 0 {
            continue;
        }
        let Some(p) = PATHS.get(i) else { break };
        for k in 0..PATH_DEPTH {
            let Some(a) = chain.items.get(k as usize) else {
                break;
            };
            if a.ino == 0 || a.dev != p.dev || a.ino != p.ino {
                continue;
            }
            if p.name_len == 0 || name_below_matches(o, a.below, p, &mut chain.name) {
                chain.mask |= 1u64 << i;
            }
            break;
        }
    }
    chain.mask
}

/// Whether the name of dentry `below` starts with the rule's name prefix.
#[inline(always)]
fn name_below_matches(
    o: &KernelOffsets,
    below: u64,
    p: &PathRule,
    buf: &mut [u8; PATH_NAME_MAX],
) -> bool {
    let Some(name_ptr) = rd::<u64>(below, o.dentry_d_name_name) else {
        return false;
    };
    // SAFETY: reads at most PATH_NAME_MAX bytes of a kernel string into the scratch buffer.
    if unsafe { bpf_probe_read_kernel_str_bytes(name_ptr as *const u8, buf) }.is_err() {
        return false;
    }
    name_matches(p, buf)
}
