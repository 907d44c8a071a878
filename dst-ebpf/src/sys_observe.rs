//! Observation that closes the loop: what targeted processes actually received from their
//! syscalls (per tgid, syscall and return value), which signals they were sent, how they ended
//! (ring buffer), and which children they forked (so targets follow them).
//!
//! Every program filters by target first (a hash lookup on the tgid, then the cgroup id, then
//! the comm only when a comm target exists) and returns at once for everything else. The
//! syscall-exit observer, which every process passes through for the observed classes, first
//! asks a per-CPU cache of processes already found targeted or untargeted under the current
//! target generation, so a process pays two array reads instead of the lookups.
//!
//! Kernels from 7.x run syscall tracepoint programs preemptibly, with a per-program guard: while
//! a task is preempted inside the observer, the same program is skipped for every other task on
//! that CPU. There userspace also attaches a twin of the observer with its own maps; a call is
//! lost only when both skipped it, and userspace reads the larger count of the two per key.

use aya_ebpf::{
    EbpfContext as _,
    bindings::BPF_NOEXIST,
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_ns,
    },
    macros::map,
    maps::{Array, HashMap, PerCpuArray, RingBuf},
    programs::TracePointContext,
};
use dst_common::sys::{
    CONFIG_EXIT_BY_LEADER, CONFIG_HAS_COMM, EVENT_EXIT, EVENT_SIGNAL, OBS_CACHE_SLOTS,
    OBS_COUNT_SLOTS, ObsCacheSlot, ObsCount, ObsKey, ProcEvent, ProcState, SignalRule,
    obs_count_slot,
};

use crate::{
    net::fetch_add,
    sys::{CGROUPS, COMMS, CONFIG, FOLLOW_BIT, TGIDS, root_of},
};

/// What targeted processes received: (tgid, syscall, return value) → count.
#[map(name = "DST_SYS_OBS")]
pub static OBS: HashMap<ObsKey, u64> = HashMap::with_max_entries(8192, 0);

/// Exit status and last signal of targeted processes until they end.
#[map(name = "DST_SYS_PROCS")]
pub static PROCS: HashMap<u32, ProcState> = HashMap::with_max_entries(8192, 0);

/// Process events (exits, signals) for userspace.
#[map(name = "DST_SYS_EVENTS")]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(256 * 1024, 0);

/// Slot 0: the target generation. Anything that could turn an untargeted process into a
/// targeted one bumps it (userspace by `GEN_USER_STEP` after a target map write, these programs
/// by 1), which invalidates every slot of [`OBS_CACHE`].
#[map(name = "DST_SYS_GEN")]
pub static GENERATION: Array<u64> = Array::with_max_entries(1, 0);

/// Per CPU, direct-mapped by tgid: whether the exit observer found a process targeted, and the
/// generation it was checked under.
#[map(name = "DST_SYS_OBS_CACHE")]
pub static OBS_CACHE: PerCpuArray<ObsCacheSlot> = PerCpuArray::with_max_entries(OBS_CACHE_SLOTS, 0);

/// Per CPU: the observer's counts of the keys that own an entry (see [`ObsCount`]); [`OBS`]
/// holds the rest.
#[map(name = "DST_SYS_OBS_PCPU")]
pub static OBS_PCPU: PerCpuArray<ObsCount> = PerCpuArray::with_max_entries(OBS_COUNT_SLOTS, 0);

/// The twin observer's per-CPU counts.
#[map(name = "DST_SYS_OBS_PCPU_TWIN")]
pub static OBS_PCPU_TWIN: PerCpuArray<ObsCount> = PerCpuArray::with_max_entries(OBS_COUNT_SLOTS, 0);

/// The twin observer's counts (same keys as [`OBS`]).
#[map(name = "DST_SYS_OBS_TWIN")]
pub static OBS_TWIN: HashMap<ObsKey, u64> = HashMap::with_max_entries(8192, 0);

/// The twin observer's own cache: one program's run can be preempted halfway through a slot
/// write, and only the same program is kept off the CPU meanwhile.
#[map(name = "DST_SYS_OBS_CACHE_TWIN")]
pub static OBS_CACHE_TWIN: PerCpuArray<ObsCacheSlot> =
    PerCpuArray::with_max_entries(OBS_CACHE_SLOTS, 0);

/// Slot 0: the in-kernel process fault (signal at a chosen syscall).
#[map(name = "DST_SYS_SIGNAL")]
pub static SIGNAL: aya_ebpf::maps::Array<SignalRule> =
    aya_ebpf::maps::Array::with_max_entries(1, 0);

/// `syscalls:sys_enter_*`: the armed process entered the chosen syscall; send the signal once.
#[inline(always)]
pub fn try_signal_at() -> u32 {
    let Some(r) = SIGNAL.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: valid, aligned map value; `fired` is only updated atomically.
    unsafe {
        if (*r).tgid == 0 || (*r).tgid != current_tgid() {
            return 0;
        }
        if fetch_add(&raw mut (*r).fired, 1) == 0 {
            (*r).fired_ns = bpf_ktime_get_ns();
            let (tgid, sig) = ((*r).tgid, (*r).signal as i32);
            aya_ebpf::helpers::generated::bpf_send_signal(sig as u32);
            // The signal_generate observer cannot run inside this program (BPF programs do
            // not nest on a CPU), so record the signal here.
            let mut st = PROCS.get_ptr(tgid).map_or(
                ProcState {
                    exit_code: -1,
                    signal: 0,
                },
                |p| *p,
            );
            st.signal = sig;
            let _ = PROCS.insert(tgid, st, 0);
            emit(EVENT_SIGNAL, tgid, -1, sig, [0; 16]);
        }
    }
    0
}

/// Whether the current process is observed (targeted by tgid, cgroup or comm).
#[inline(always)]
fn observed(tgid: u32) -> bool {
    if root_of(tgid).is_some() {
        return true;
    }
    // SAFETY: helper without preconditions.
    let cg = unsafe { bpf_get_current_cgroup_id() };
    if CGROUPS.get_ptr(cg).is_some() {
        return true;
    }
    let has_comm = CONFIG
        .get(0)
        .is_some_and(|c| c.flags & CONFIG_HAS_COMM != 0);
    has_comm && bpf_get_current_comm().is_ok_and(|c| COMMS.get_ptr(c).is_some())
}

/// The current target generation.
#[inline(always)]
fn generation() -> u64 {
    // SAFETY: valid, aligned map value; a volatile read so the value is taken before the
    // target lookups that follow it.
    GENERATION
        .get_ptr(0)
        .map_or(0, |g| unsafe { core::ptr::read_volatile(g) })
}

/// Invalidates every cached "untargeted" answer (on every CPU).
#[inline(always)]
pub fn bump_generation() {
    if let Some(g) = GENERATION.get_ptr_mut(0) {
        fetch_add(g, 1);
    }
}

/// [`observed`] behind the per-CPU cache. The generation is read before the lookups, so an
/// answer computed while a target changed is stored under the old generation and never trusted
/// after the bump.
#[inline(always)]
fn observed_cached(cache: &PerCpuArray<ObsCacheSlot>, tgid: u32) -> bool {
    let generation = generation();
    let slot = cache.get_ptr_mut(tgid & (OBS_CACHE_SLOTS - 1));
    if let Some(s) = slot {
        // SAFETY: this CPU's copy of the slot. Only this program touches the map, and the
        // kernel never runs a program twice at once on a CPU (with preemption off, or, on
        // kernels that run it preemptibly, by skipping the second run).
        unsafe {
            if (*s).tgid == tgid && (*s).generation == generation {
                return (*s).observed != 0;
            }
        }
    }
    let answer = observed(tgid);
    if let Some(s) = slot {
        // SAFETY: as above.
        unsafe {
            (*s).tgid = tgid;
            (*s).observed = u32::from(answer);
            (*s).generation = generation;
        }
    }
    answer
}

#[inline(always)]
fn current_tgid() -> u32 {
    (bpf_get_current_pid_tgid() >> 32) as u32
}

/// Counts one call of `key` in this CPU's entry of `table` when the key owns it or it is empty.
/// No atomics: only this program writes this CPU's copy, and the kernel never runs it twice at
/// once on a CPU. A new owner's key is stored before its count, and userspace's copy loads the
/// count first (it leads the entry), so a reader that sees a count sees its key (x86 keeps
/// both stores and loads in order).
#[inline(always)]
fn count_per_cpu(table: &PerCpuArray<ObsCount>, key: ObsKey) -> bool {
    let Some(e) = table.get_ptr_mut(obs_count_slot(&key)) else {
        return false;
    };
    // SAFETY: this CPU's copy of the entry, written only by this program (see above).
    unsafe {
        let count = core::ptr::read_volatile(&raw const (*e).count);
        if count == 0 {
            core::ptr::write_volatile(&raw mut (*e).key, key);
        } else if (*e).key != key {
            return false;
        }
        core::ptr::write_volatile(&raw mut (*e).count, count + 1);
    }
    true
}

/// `syscalls:sys_exit_*`: count the return value a targeted process received, in `per_cpu`
/// or else `shared`, behind `cache` ([`OBS_PCPU`], [`OBS`] and [`OBS_CACHE`] for the observer;
/// the `*_TWIN` maps for its twin).
#[inline(always)]
pub fn try_sys_exit(
    ctx: &TracePointContext,
    per_cpu: &PerCpuArray<ObsCount>,
    shared: &HashMap<ObsKey, u64>,
    cache: &PerCpuArray<ObsCacheSlot>,
) -> u32 {
    let tgid = current_tgid();
    if !observed_cached(cache, tgid) {
        return 0;
    }
    // SAFETY: sys_exit_* layout: __syscall_nr (int) at 8, ret (long) at 16. The verifier lets
    // tracepoint programs load aligned words of their record directly (no probe-read helper).
    let (nr, ret) = unsafe {
        let rec = ctx.as_ptr().cast::<u8>();
        (
            core::ptr::read(rec.add(8).cast::<i32>()),
            core::ptr::read(rec.add(16).cast::<i64>()),
        )
    };
    let key = ObsKey {
        tgid,
        nr: nr as u32,
        ret: if ret < 0 { ret } else { 0 },
    };
    if count_per_cpu(per_cpu, key) {
        return 0;
    }
    if let Some(v) = shared.get_ptr_mut(key) {
        fetch_add(v, 1);
    } else if shared.insert(key, 1, BPF_NOEXIST as u64).is_err() {
        // Another CPU inserted it first.
        if let Some(v) = shared.get_ptr_mut(key) {
            fetch_add(v, 1);
        }
    }
    0
}

/// `syscalls:sys_enter_exit_group`: remember the status a targeted process exits with.
#[inline(always)]
pub fn try_exit_group(ctx: &TracePointContext) -> u32 {
    let tgid = current_tgid();
    if !observed(tgid) {
        return 0;
    }
    // SAFETY: sys_enter_exit_group layout: error_code (long slot) at 16.
    let code = unsafe { ctx.read_at::<i64>(16).unwrap_or(-1) } as i32;
    let mut st = PROCS.get_ptr(tgid).map_or(
        ProcState {
            exit_code: -1,
            signal: 0,
        },
        // SAFETY: plain copy of a map value.
        |p| unsafe { *p },
    );
    st.exit_code = code;
    let _ = PROCS.insert(tgid, st, 0);
    0
}

/// `signal:signal_generate`: record signals sent to targeted processes (SIGKILL, SIGSTOP,
/// SIGCONT …) with the kernel's time, and remember the last one.
#[inline(always)]
pub fn try_signal(ctx: &TracePointContext) -> u32 {
    // SAFETY: signal_generate layout: sig at 8, pid at 36, result at 44.
    let (sig, pid, result) = unsafe {
        (
            ctx.read_at::<i32>(8).unwrap_or(0),
            ctx.read_at::<i32>(36).unwrap_or(0),
            ctx.read_at::<i32>(44).unwrap_or(-1),
        )
    };
    // result 0 = TRACE_SIGNAL_DELIVERED (queued); 1 = ignored, which is how a default SIGCONT
    // is reported after it has woken the process; other results did nothing.
    const SIGCONT: i32 = 18;
    let woke = result == 1 && sig == SIGCONT;
    if (result != 0 && !woke) || pid <= 0 || root_of(pid as u32).is_none() {
        return 0;
    }
    let tgid = pid as u32;
    if result == 0 {
        let mut st = PROCS.get_ptr(tgid).map_or(
            ProcState {
                exit_code: -1,
                signal: 0,
            },
            // SAFETY: plain copy of a map value.
            |p| unsafe { *p },
        );
        st.signal = sig;
        let _ = PROCS.insert(tgid, st, 0);
    }
    emit(EVENT_SIGNAL, tgid, -1, sig, [0; 16]);
    0
}

/// `sched:sched_process_exit`: when the last thread of a targeted process ends, send its exit
/// status and last signal to userspace and forget it.
#[inline(always)]
pub fn try_process_exit(ctx: &TracePointContext) -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let (tid, tgid) = (pid_tgid as u32, (pid_tgid >> 32) as u32);
    if tid != tgid && root_of(tid).is_some() {
        // A thread of a followed process was recorded by the fork tracker; forget it.
        let _ = TGIDS.remove(tid);
    }
    let by_leader = CONFIG
        .get(0)
        .is_some_and(|c| c.flags & CONFIG_EXIT_BY_LEADER != 0);
    let group_dead = if by_leader {
        // Kernels before 6.16 have no group_dead: the leader's exit stands for the process's.
        u8::from(tid == tgid)
    } else {
        // SAFETY: sched_process_exit layout since 6.16: group_dead (bool) at 32.
        unsafe { ctx.read_at::<u8>(32).unwrap_or(0) }
    };
    if group_dead == 0 {
        return 0;
    }
    // The tgid is free for reuse by a process that may be targeted (forked inside a target
    // cgroup): forget cached answers about it.
    bump_generation();
    if !observed(tgid) {
        return 0;
    }
    let st = PROCS.get_ptr(tgid).map_or(
        ProcState {
            exit_code: -1,
            signal: 0,
        },
        // SAFETY: plain copy of a map value.
        |p| unsafe { *p },
    );
    let comm = bpf_get_current_comm().unwrap_or([0; 16]);
    emit(EVENT_EXIT, tgid, st.exit_code, st.signal, comm);
    let _ = PROCS.remove(tgid);
    if root_of(tgid).is_some_and(|r| r as u32 != tgid) {
        // A followed child: drop it so the map only holds live processes (roots stay, the
        // rules name them).
        let _ = TGIDS.remove(tgid);
    }
    0
}

/// `sched:sched_process_fork`: a followed target forked; target the child too.
#[inline(always)]
pub fn try_fork(ctx: &TracePointContext) -> u32 {
    let tgid = current_tgid();
    let Some(root) = root_of(tgid) else { return 0 };
    if root & FOLLOW_BIT == 0 {
        return 0;
    }
    // SAFETY: sched_process_fork layout: child_pid at 20.
    let child = unsafe { ctx.read_at::<i32>(20).unwrap_or(0) };
    if child > 0 {
        let _ = TGIDS.insert(child as u32, root, 0);
        bump_generation();
    }
    0
}

/// `cgroup:cgroup_attach_task` and `task:task_rename`: a process changed cgroup or name, so it
/// may now be targeted by cgroup or comm; forget cached answers.
#[inline(always)]
pub fn try_invalidate() -> u32 {
    bump_generation();
    0
}

#[inline(always)]
fn emit(kind: u32, tgid: u32, exit_code: i32, signal: i32, comm: [u8; 16]) {
    if let Some(mut e) = EVENTS.reserve::<ProcEvent>(0) {
        e.write(ProcEvent {
            kind,
            tgid,
            exit_code,
            signal,
            // SAFETY: helper without preconditions.
            time_ns: unsafe { bpf_ktime_get_ns() },
            comm,
        });
        e.submit(0);
    }
}
