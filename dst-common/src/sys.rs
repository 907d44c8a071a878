//! Syscall and process fault rules as the kernel programs (and the seccomp supervisor) read
//! them, their per-fault counters, the observer's keys and the process-exit ring-buffer event.

/// The rule slot is in use. A slot without this flag is skipped.
pub const SYS_RULE_ACTIVE: u32 = 1 << 0;
/// The target is `tgid` and every process it forks afterwards (tracked in the target map).
pub const SYS_RULE_CHILDREN: u32 = 1 << 1;
/// File rules only: the slot's `lsm::PathRule` restricts the rule to a path prefix (kernel
/// LSM/fmod_ret programs; the seccomp supervisor keeps its own copy of the prefix).
pub const SYS_RULE_PATH: u32 = 1 << 2;

/// Target kind: the process `tgid`.
pub const TARGET_TGID: u32 = 1;
/// Target kind: every process in cgroup `cgroup_id` (and its descendant cgroups).
pub const TARGET_CGROUP: u32 = 2;
/// Target kind: every process whose `comm` equals `comm`.
pub const TARGET_COMM: u32 = 3;

/// Syscall classes, one bit each so a rule can name several.
pub const CLASS_CONNECT: u32 = 1 << 0;
/// accept / accept4.
pub const CLASS_ACCEPT: u32 = 1 << 1;
/// bind.
pub const CLASS_BIND: u32 = 1 << 2;
/// sendmsg / sendto (and write on sockets under seccomp).
pub const CLASS_SEND: u32 = 1 << 3;
/// recvmsg / recvfrom.
pub const CLASS_RECV: u32 = 1 << 4;
/// socket.
pub const CLASS_SOCKET: u32 = 1 << 5;
/// open / openat / openat2 / creat.
pub const CLASS_OPEN: u32 = 1 << 6;
/// read / pread64 / readv.
pub const CLASS_READ: u32 = 1 << 7;
/// write / pwrite64 / writev.
pub const CLASS_WRITE: u32 = 1 << 8;
/// fsync / fdatasync.
pub const CLASS_FSYNC: u32 = 1 << 9;
/// mmap.
pub const CLASS_MMAP: u32 = 1 << 10;
/// fork / vfork / clone / clone3.
pub const CLASS_FORK: u32 = 1 << 11;
/// getppid: no fault makes sense, used by benchmarks as a class outside every fault.
pub const CLASS_GETPPID: u32 = 1 << 12;

/// `SysConfig::flags`: the comm target map is non-empty (the observer compares comm).
pub const CONFIG_HAS_COMM: u32 = 1 << 0;
/// `SysConfig::flags`: this kernel's `sched_process_exit` has no `group_dead` field (before
/// 6.16): a process's end is reported when its thread-group leader exits.
pub const CONFIG_EXIT_BY_LEADER: u32 = 1 << 4;
/// `SysConfig::flags`: some rule has a path prefix (the LSM programs walk the file's path).
pub const CONFIG_HAS_PATH: u32 = 1 << 1;

/// One syscall fault as stored in the rule array map (and evaluated by the seccomp supervisor
/// for the classes the kernel cannot fail here). Trigger fields that are 0 are not used; the
/// rule injects on matched call number `n` (0-based) when every used trigger agrees.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SysRule {
    /// `SYS_RULE_*` flags.
    pub flags: u32,
    /// `CLASS_*` bits this rule fails.
    pub classes: u32,
    /// One of `TARGET_*`.
    pub target: u32,
    /// Target process (TARGET_TGID).
    pub tgid: u32,
    /// Target cgroup v2 id (TARGET_CGROUP).
    pub cgroup_id: u64,
    /// Target command name, NUL-padded (TARGET_COMM).
    pub comm: [u8; 16],
    /// Positive errno the call fails with.
    pub errno: u32,
    /// Chance that a matched call fails, scaled to `0..=u32::MAX` (`PROB_ALWAYS` = always).
    pub probability: u32,
    /// Fail only the Nth matched call (1-based); 0 = unused.
    pub nth: u64,
    /// Fail only calls after the first N matched ones; 0 = unused.
    pub after: u64,
    /// Fail at most M calls; 0 = unlimited.
    pub max: u64,
    /// Seed of the decision stream: decision n = draw(seed, n).
    pub seed: u64,
    /// CLOCK_MONOTONIC ns before which the rule does nothing (0 = at once).
    pub not_before_ns: u64,
    /// CLOCK_MONOTONIC ns after which the rule is ignored (0 = never; enforced where evaluated).
    pub expires_ns: u64,
}
const _: () = assert!(core::mem::size_of::<SysRule>() == 96);

/// Counters of one syscall rule (one global copy, updated atomically so `max` and `nth` hold
/// across CPUs).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SysCounters {
    /// Calls of the rule's classes by its target while it was live (also the decision ordinal).
    pub matched: u64,
    /// Calls failed with the rule's errno.
    pub injected: u64,
    /// Matched calls the trigger let through.
    pub passed: u64,
    /// Calls the trigger chose while `max` was counted (bounds `injected` by `max`).
    pub budget: u64,
    /// Matched calls after expiry (let through).
    pub expired: u64,
    /// CLOCK_MONOTONIC ns of the first injection (0 = none).
    pub first_injected_ns: u64,
    /// CLOCK_MONOTONIC ns of the last injection.
    pub last_injected_ns: u64,
}
const _: () = assert!(core::mem::size_of::<SysCounters>() == 56);

/// Key of the observer map: what process `tgid` received from syscall `nr`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObsKey {
    /// The process.
    pub tgid: u32,
    /// Syscall number (x86_64).
    pub nr: u32,
    /// The return value as the process saw it, with every success (>= 0) folded to 0.
    pub ret: i64,
}
const _: () = assert!(core::mem::size_of::<ObsKey>() == 16);

/// Global configuration of the syscall programs (slot 0 of the config array).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SysConfig {
    /// One past the highest used rule slot (bounds the rule loop).
    pub limit: u32,
    /// `CONFIG_*` flags.
    pub flags: u32,
}
const _: () = assert!(core::mem::size_of::<SysConfig>() == 8);

/// Slots of the exit observer's per-CPU cache of processes found untargeted (a power of two:
/// a tgid's slot is `tgid & (OBS_CACHE_SLOTS - 1)`).
pub const OBS_CACHE_SLOTS: u32 = 64;

/// What userspace adds to the target generation (`DST_SYS_GEN`) after it changes a target map;
/// kernel programs add 1 (fork tracker, exits, cgroup moves, renames). Userspace's
/// read-then-write can race a kernel increment, and the large step makes sure the value it
/// writes is still one no cache slot has seen.
pub const GEN_USER_STEP: u64 = 1 << 32;

/// One slot of the exit observer's per-CPU cache: `tgid` was found targeted (`observed` 1) or
/// untargeted (0) while the target generation was `generation`. A slot is trusted only while the
/// generation is unchanged, so every change that could make a process targeted or untargeted (a
/// target map write, a followed fork, an exit that frees a tgid for reuse, a cgroup move, a
/// comm change) bumps the generation.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ObsCacheSlot {
    /// The process (0 = empty: tgid 0 makes no syscalls).
    pub tgid: u32,
    /// 1 if it was targeted, 0 if not.
    pub observed: u32,
    /// The target generation it was checked under.
    pub generation: u64,
}
const _: () = assert!(core::mem::size_of::<ObsCacheSlot>() == 16);

/// Entries per CPU of the exit observer's count table (a power of two).
pub const OBS_COUNT_SLOTS: u32 = 256;

/// One entry of the exit observer's per-CPU count table: `count` calls of `key` seen on this
/// CPU. An entry is empty while `count` is 0; the first key counted into it owns it for the
/// observer's lifetime (entries are never evicted, so a count never moves while userspace reads
/// it), and a key whose entry another key owns is counted in the shared hash map instead.
/// Userspace adds every CPU's entries to the hash map's counts.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ObsCount {
    /// How many times (0 = empty entry). First, so that a reader copying the entry in address
    /// order loads it before the key: the program stores a new owner's key before its count.
    pub count: u64,
    /// What was counted.
    pub key: ObsKey,
}
const _: () = assert!(core::mem::size_of::<ObsCount>() == 24);

/// The count-table entry of `key` (multiplicative hashing of its three fields).
#[inline(always)]
pub fn obs_count_slot(key: &ObsKey) -> u32 {
    let mixed = key
        .tgid
        .wrapping_mul(0x9E37_79B1)
        .wrapping_add(key.nr.wrapping_mul(0x85EB_CA6B))
        .wrapping_add((key.ret as u32).wrapping_mul(0xC2B2_AE35));
    mixed.wrapping_mul(0x27D4_EB2F) >> (32 - OBS_COUNT_SLOTS.trailing_zeros())
}

/// Ring-buffer event kind: a targeted process ended.
pub const EVENT_EXIT: u32 = 1;
/// Ring-buffer event kind: a signal was generated for a targeted process.
pub const EVENT_SIGNAL: u32 = 2;

/// One ring-buffer event about a targeted process.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcEvent {
    /// `EVENT_*`.
    pub kind: u32,
    /// The process.
    pub tgid: u32,
    /// EVENT_EXIT: the status passed to exit_group (-1 if it never called it).
    pub exit_code: i32,
    /// EVENT_EXIT: the last signal generated for it before it ended (0 = none);
    /// EVENT_SIGNAL: the signal.
    pub signal: i32,
    /// CLOCK_MONOTONIC ns.
    pub time_ns: u64,
    /// The process's command name.
    pub comm: [u8; 16],
}
const _: () = assert!(core::mem::size_of::<ProcEvent>() == 40);

/// What the kernel remembers about a targeted process until it ends.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcState {
    /// Status passed to exit_group, or -1.
    pub exit_code: i32,
    /// Last signal generated for the process (0 = none).
    pub signal: i32,
}
const _: () = assert!(core::mem::size_of::<ProcState>() == 8);

/// A process fault the kernel fires itself: the first time `tgid` enters one of the syscalls
/// the program is attached to, `bpf_send_signal(signal)` (SIGSTOP lands on return to user).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalRule {
    /// The process (0 = disarmed).
    pub tgid: u32,
    /// The signal to send.
    pub signal: u32,
    /// How many times the program matched (the signal is sent on the first only).
    pub fired: u64,
    /// CLOCK_MONOTONIC ns when the signal was sent.
    pub fired_ns: u64,
}
const _: () = assert!(core::mem::size_of::<SignalRule>() == 24);

/// The trigger decision for matched call number `n` (0-based), ignoring `max` (which needs a
/// shared counter): nth, after and the seeded probability must all agree.
#[inline(always)]
pub fn trigger(rule: &SysRule, n: u64) -> bool {
    if rule.nth != 0 && n + 1 != rule.nth {
        return false;
    }
    if rule.after != 0 && n < rule.after {
        return false;
    }
    crate::net::decide(rule.probability, crate::net::draw(rule.seed, n))
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: #[repr(C)], Copy, integers and byte arrays only, explicit padding.
    unsafe impl aya::Pod for super::SysRule {}
    unsafe impl aya::Pod for super::SysCounters {}
    unsafe impl aya::Pod for super::ObsKey {}
    unsafe impl aya::Pod for super::SysConfig {}
    unsafe impl aya::Pod for super::ProcState {}
    unsafe impl aya::Pod for super::SignalRule {}
    unsafe impl aya::Pod for super::ObsCacheSlot {}
    unsafe impl aya::Pod for super::ObsCount {}
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::net::{PROB_ALWAYS, probability_to_threshold};

    #[test]
    fn count_slots_stay_in_range_and_spread_a_process_keys() {
        let mut used = std::collections::HashSet::new();
        for tgid in [1u32, 4242, 65_535, 4_194_303] {
            for nr in [0u32, 1, 3, 17, 74, 110, 257] {
                for ret in [0i64, -5, -11, -28, -111] {
                    let s = obs_count_slot(&ObsKey { tgid, nr, ret });
                    assert!(s < OBS_COUNT_SLOTS);
                    used.insert(s);
                }
            }
        }
        // 140 keys: a constant or badly mixed slot function would reuse a handful of entries.
        assert!(used.len() > 100, "only {} distinct entries", used.len());
        // The keys one process typically produces (a class, success and one errno) do not
        // collide with each other.
        let one: std::collections::HashSet<u32> = [(1u32, 0i64), (1, -5), (18, 0), (18, -5)]
            .iter()
            .map(|&(nr, ret)| {
                obs_count_slot(&ObsKey {
                    tgid: 4242,
                    nr,
                    ret,
                })
            })
            .collect();
        assert_eq!(one.len(), 4);
    }

    fn rule() -> SysRule {
        SysRule {
            probability: PROB_ALWAYS,
            ..Default::default()
        }
    }

    #[test]
    fn nth_fires_exactly_once() {
        let r = SysRule { nth: 3, ..rule() };
        let hits: [bool; 6] = core::array::from_fn(|n| trigger(&r, n as u64));
        assert_eq!(hits, [false, false, true, false, false, false]);
    }

    #[test]
    fn after_skips_the_first_n() {
        let r = SysRule { after: 2, ..rule() };
        let hits: [bool; 4] = core::array::from_fn(|n| trigger(&r, n as u64));
        assert_eq!(hits, [false, false, true, true]);
    }

    #[test]
    fn probability_is_seeded() {
        let r = SysRule {
            probability: probability_to_threshold(0.5),
            seed: 9,
            ..rule()
        };
        let a = (0..1000).filter(|&n| trigger(&r, n)).count();
        let b = (0..1000).filter(|&n| trigger(&r, n)).count();
        assert_eq!(a, b);
        assert!((400..600).contains(&a), "{a}");
        let never = SysRule {
            probability: 0,
            ..rule()
        };
        assert!(!(0..100).any(|n| trigger(&never, n)));
    }
}
