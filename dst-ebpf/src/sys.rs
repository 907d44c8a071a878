//! The syscall fault engine in the kernel: rule maps, target matching (tgid and followed
//! children, cgroup, comm), the shared trigger (nth / after / max / seeded probability) and the
//! per-rule counters. Used by the cgroup sock hooks, the BPF LSM and the fmod_ret programs of
//! the `dst-sys` object.

use aya_ebpf::{
    helpers::{bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_ktime_get_ns},
    macros::map,
    maps::{Array, HashMap},
};
use dst_common::{
    MAX_SYS_RULES,
    sys::{
        CONFIG_HAS_PATH, SYS_RULE_ACTIVE, SYS_RULE_CHILDREN, SYS_RULE_PATH, SysConfig, SysCounters,
        SysRule, TARGET_CGROUP, TARGET_COMM, TARGET_TGID, trigger,
    },
};

use crate::{net::fetch_add, path::path_mask};

/// The rules, one per slot; userspace writes a whole slot at once.
#[map(name = "DST_SYS_RULES")]
pub static RULES: Array<SysRule> = Array::with_max_entries(MAX_SYS_RULES, 0);

/// Per-rule counters (one global copy, atomic updates).
#[map(name = "DST_SYS_COUNTERS")]
pub static COUNTERS: Array<SysCounters> = Array::with_max_entries(MAX_SYS_RULES, 0);

/// Slot 0: rule-loop bound and flags.
#[map(name = "DST_SYS_CONFIG")]
pub static CONFIG: Array<SysConfig> = Array::with_max_entries(1, 0);

/// Targeted processes: tgid → `root | FOLLOW_BIT`, where `root` is the tgid a rule names and
/// `FOLLOW_BIT` says the root's future children are added here by the fork tracker.
#[map(name = "DST_SYS_TGIDS")]
pub static TGIDS: HashMap<u32, u64> = HashMap::with_max_entries(8192, 0);

/// Observed cgroups (cgroup v2 id → 1).
#[map(name = "DST_SYS_CGROUPS")]
pub static CGROUPS: HashMap<u64, u32> = HashMap::with_max_entries(64, 0);

/// Observed command names (NUL-padded comm → 1).
#[map(name = "DST_SYS_COMMS")]
pub static COMMS: HashMap<[u8; 16], u32> = HashMap::with_max_entries(16, 0);

/// Bit of a `TGIDS` value: follow this root's children.
pub const FOLLOW_BIT: u64 = 1 << 32;

/// The root tgid `tgid` belongs to, if it is targeted.
#[inline(always)]
pub fn root_of(tgid: u32) -> Option<u64> {
    // SAFETY: plain value read of a u64 map value.
    unsafe { TGIDS.get(tgid).copied() }
}

/// The current command name, read once per program run (`read` says whether it was).
struct Comm {
    read: u32,
    name: [u8; 16],
}

#[inline(always)]
fn targeted(rule: &SysRule, tgid: u32, cgroup: &mut u64, comm: &mut Comm) -> bool {
    match rule.target {
        TARGET_TGID => {
            tgid == rule.tgid
                || (rule.flags & SYS_RULE_CHILDREN != 0
                    && root_of(tgid).is_some_and(|r| r as u32 == rule.tgid))
        }
        TARGET_CGROUP => {
            if *cgroup == 0 {
                // SAFETY: helper without preconditions.
                *cgroup = unsafe { bpf_get_current_cgroup_id() };
            }
            *cgroup == rule.cgroup_id
        }
        TARGET_COMM => {
            if comm.read == 0 {
                comm.read = 1;
                comm.name = bpf_get_current_comm().unwrap_or([0; 16]);
            }
            comm.name[0] != 0 && comm.name == rule.comm
        }
        _ => false,
    }
}

/// Runs a call of `class` by process `tgid` through the live rules; returns the errno to fail
/// it with, or `None` to let it run.
#[inline(always)]
pub fn evaluate(class: u32, tgid: u32) -> Option<u32> {
    evaluate_file(class, tgid, 0)
}

/// [`evaluate`] for a call on the kernel `struct file *` at address `file` (0 = none): rules
/// with a path prefix match only files under it (and never a call without a file).
#[inline(always)]
pub fn evaluate_file(class: u32, tgid: u32, file: u64) -> Option<u32> {
    evaluate_file_marked(class, tgid, file, None)
}

/// [`evaluate_file`] that, with `mark` = `(pid_tgid, now)`, marks the thread in
/// [`crate::sys_lsm::FMOD_SEEN`] once a rule's counters were updated (the evaluation had side
/// effects: a second evaluation of the same call would count it twice). The mark is a map
/// write, not a flag the verifier would have to track through the rule loop.
#[inline(always)]
pub fn evaluate_file_marked(
    class: u32,
    tgid: u32,
    file: u64,
    mark: Option<(u64, u64)>,
) -> Option<u32> {
    let config = CONFIG.get(0)?;
    let limit = config.limit;
    // Path prefixes are matched for every rule at once, before the rule loop, so the verifier
    // walks the path code once instead of once per rule and branch.
    let paths = if file != 0 && config.flags & CONFIG_HAS_PATH != 0 {
        path_mask(file)
    } else {
        0
    };
    let mut cgroup = 0u64;
    let mut comm = Comm {
        read: 0,
        name: [0; 16],
    };
    for i in 0..MAX_SYS_RULES {
        if i >= limit {
            break;
        }
        let Some(rule) = RULES.get(i) else { break };
        if rule.flags & SYS_RULE_ACTIVE == 0 || rule.classes & class == 0 {
            continue;
        }
        if !targeted(rule, tgid, &mut cgroup, &mut comm) {
            continue;
        }
        if rule.flags & SYS_RULE_PATH != 0 && paths & (1u64 << i) == 0 {
            continue;
        }
        // SAFETY: helper without preconditions.
        let now = unsafe { bpf_ktime_get_ns() };
        if now < rule.not_before_ns {
            continue;
        }
        let Some(c) = COUNTERS.get_ptr_mut(i) else {
            continue;
        };
        if let Some((pid_tgid, at)) = mark {
            let _ = crate::sys_lsm::FMOD_SEEN.insert(&pid_tgid, &at, 0);
        }
        // SAFETY: `c` is a valid, aligned map value for the program's duration; every field
        // is updated with an atomic add.
        unsafe {
            if rule.expires_ns != 0 && now >= rule.expires_ns {
                fetch_add(&raw mut (*c).expired, 1);
                continue;
            }
            let n = fetch_add(&raw mut (*c).matched, 1);
            if !trigger(rule, n) {
                fetch_add(&raw mut (*c).passed, 1);
                continue;
            }
            if rule.max != 0 && fetch_add(&raw mut (*c).budget, 1) >= rule.max {
                fetch_add(&raw mut (*c).passed, 1);
                continue;
            }
            fetch_add(&raw mut (*c).injected, 1);
            if (*c).first_injected_ns == 0 {
                (*c).first_injected_ns = now;
            }
            (*c).last_injected_ns = now;
        }
        return Some(rule.errno);
    }
    None
}
