//! Syscall faults at LSM hooks: the bodies of the BPF LSM programs (`lsm/file_open`,
//! `lsm/file_permission`, `lsm/mmap_file`, `lsm/task_alloc`, `lsm/socket_*`) and of the fmod_ret
//! programs on the matching `security_*` functions. Both see the hook's arguments followed by
//! the return value of the programs before them, and fail the call by returning `-errno`.

use aya_ebpf::{
    EbpfContext,
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    macros::map,
    maps::LruHashMap,
};
use dst_common::sys::{
    CLASS_ACCEPT, CLASS_CONNECT, CLASS_FORK, CLASS_MMAP, CLASS_OPEN, CLASS_READ, CLASS_RECV,
    CLASS_SEND, CLASS_WRITE,
};

use crate::{
    path::{arg_u64, is_dir},
    sys::evaluate_file_marked,
};

/// fmod_ret only: thread (pid_tgid) → when one of the two copies of a hook's program evaluated
/// one of its calls and counted it, letting it run. Userspace attaches every fmod_ret program
/// twice: the kernel skips a tracing program on a CPU while a task is preempted inside it, and
/// a call is then evaluated by the other copy, unless that copy finds this mark (then the call
/// was already evaluated, and only the first copy may count it). A call the first copy fails
/// never reaches the second (the trampoline stops at the first non-zero return).
#[map(name = "DST_SYS_FMOD_SEEN")]
pub static FMOD_SEEN: LruHashMap<u64, u64> = LruHashMap::with_max_entries(16384, 0);

/// How long a mark stands for "this call": the two copies run back to back in one call, and a
/// mark left by a call whose second copy was skipped must not be taken for the next call's.
const SEEN_WINDOW_NS: u64 = 1_000_000;

/// Which program runs the hook body.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// A BPF LSM program: no recursion guard, one copy per hook.
    Lsm,
    /// One of the two copies of an fmod_ret program (see [`FMOD_SEEN`]).
    FmodRet,
}

/// `MAY_WRITE` / `MAY_READ` of the `mask` argument of `file_permission`.
const MAY_WRITE: u64 = 2;
const MAY_READ: u64 = 4;

/// The hook a program is attached to, with its argument count (the previous programs' return
/// value follows the arguments).
#[derive(Clone, Copy)]
pub enum Hook {
    /// `file_open(file)`: open/openat/creat.
    FileOpen,
    /// `file_permission(file, mask)`: read/write and their vector/positional forms.
    FilePermission,
    /// `mmap_file(file, reqprot, prot, flags)`; `security_mmap_file(file, prot, flags)` for
    /// fmod_ret.
    MmapFile {
        /// Arguments of the attach point (4 for the LSM hook, 3 for the security function).
        nargs: u32,
    },
    /// `task_alloc(task, clone_flags)`: fork/vfork/clone/clone3.
    TaskAlloc,
    /// `socket_connect(sock, address, addrlen)`.
    SocketConnect,
    /// `socket_sendmsg(sock, msg, size)`.
    SocketSendmsg,
    /// `socket_recvmsg(sock, msg, size, flags)`.
    SocketRecvmsg,
    /// `socket_accept(sock, newsock)`.
    SocketAccept,
}

impl Hook {
    #[inline(always)]
    fn nargs(self) -> u32 {
        match self {
            Self::FileOpen => 1,
            Self::FilePermission | Self::TaskAlloc | Self::SocketAccept => 2,
            Self::SocketConnect | Self::SocketSendmsg => 3,
            Self::SocketRecvmsg => 4,
            Self::MmapFile { nargs } => nargs,
        }
    }
}

/// `-(errno & 0xfff)`, computed so the verifier can see the result lies in [-4095, 0] (the
/// range LSM programs must return in): a mask, then a subtraction from zero written as
/// assembly so LLVM cannot turn it into a negation the verifier does not bound.
#[inline(always)]
fn neg_errno(errno: u64) -> i32 {
    let e = errno & 0xfff;
    let r: i64;
    // SAFETY: register arithmetic only.
    unsafe {
        core::arch::asm!("{r} = 0", "{r} -= {e}", r = out(reg) r, e = in(reg) e);
    }
    r as i32
}

/// 0 lets the call run; `-errno` fails it. A refusal by an earlier program stands.
#[inline(always)]
pub fn try_hook<C: EbpfContext>(ctx: &C, hook: Hook, runner: Runner) -> i32 {
    let prev = arg_u64(ctx, hook.nargs()) as i32;
    if prev != 0 {
        return neg_errno(i64::from(prev).wrapping_neg() as u64);
    }
    let (class, file) = match hook {
        Hook::FileOpen => (CLASS_OPEN, arg_u64(ctx, 0)),
        Hook::FilePermission => {
            let file = arg_u64(ctx, 0);
            let mask = arg_u64(ctx, 1);
            let class = if mask & MAY_WRITE != 0 {
                CLASS_WRITE
            } else if mask & MAY_READ != 0 {
                CLASS_READ
            } else {
                return 0;
            };
            // getdents asks for MAY_READ on the directory: that is not a `read`.
            if class == CLASS_READ && is_dir(file) {
                return 0;
            }
            (class, file)
        }
        Hook::MmapFile { .. } => (CLASS_MMAP, arg_u64(ctx, 0)),
        Hook::TaskAlloc => (CLASS_FORK, 0),
        Hook::SocketConnect => (CLASS_CONNECT, 0),
        Hook::SocketSendmsg => (CLASS_SEND, 0),
        Hook::SocketRecvmsg => (CLASS_RECV, 0),
        Hook::SocketAccept => (CLASS_ACCEPT, 0),
    };
    let pid_tgid = bpf_get_current_pid_tgid();
    // Only the fmod_ret copies need the clock and the mark: LSM calls skip both.
    let mark = if runner == Runner::FmodRet {
        // SAFETY: helper without preconditions.
        let now = unsafe { bpf_ktime_get_ns() };
        // SAFETY: plain copy of a map value.
        if let Some(at) = unsafe { FMOD_SEEN.get(&pid_tgid) }.copied() {
            let _ = FMOD_SEEN.remove(&pid_tgid);
            if now.wrapping_sub(at) < SEEN_WINDOW_NS {
                // The other copy evaluated this call and let it run.
                return 0;
            }
        }
        Some((pid_tgid, now))
    } else {
        None
    };
    match evaluate_file_marked(class, (pid_tgid >> 32) as u32, file, mark) {
        None => 0,
        Some(errno) => {
            if mark.is_some() {
                // The call fails here: the trampoline runs no further fmod_ret program for
                // it, so nothing will consume the mark.
                let _ = FMOD_SEEN.remove(&pid_tgid);
            }
            neg_errno(u64::from(errno))
        }
    }
}
