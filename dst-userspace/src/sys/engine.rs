//! Loads the `dst-sys` object: attaches the cgroup sock hooks that fail socket calls in the
//! kernel, the BPF LSM or fmod_ret programs for the classes they carry (loaded only when a
//! fault needs them, so kernels without trampolines still load the object), the per-syscall
//! exit observers (only for the classes under fault), the process
//! observers (signals, exits, forks); writes targets and rules into the maps; reads back the
//! counters, what the targets received, and process events from the ring buffer.
//!
//! Links are owned by this process: when it exits, for any reason, the kernel detaches them,
//! and every rule also carries a kernel-enforced expiry.

use std::{
    collections::{BTreeMap, BTreeSet},
    os::fd::AsFd as _,
    path::{Path, PathBuf},
};

use aya::{
    Btf, Ebpf,
    maps::{Array, HashMap, MapData, PerCpuArray, PerCpuValues, RingBuf},
    programs::{CgroupAttachMode, CgroupSock, CgroupSockAddr, Lsm, TracePoint},
};
use dst_common::{
    MAX_SYS_RULES,
    lsm::{KernelOffsets, PathRule},
    sys::{
        CONFIG_EXIT_BY_LEADER, CONFIG_HAS_COMM, CONFIG_HAS_PATH, EVENT_EXIT, EVENT_SIGNAL,
        GEN_USER_STEP, OBS_COUNT_SLOTS, ObsCount, ObsKey, ProcEvent, SYS_RULE_PATH, SignalRule,
        SysConfig, SysCounters, SysRule,
    },
};
use serde::Serialize;

use super::{
    btf::{BtfError, KernelBtf},
    fmod::{self, FmodError, FmodLink},
    lsm::{fmod_hooks, kernel_offsets, lsm_hooks},
    observed,
    spec::{SyscallClass, errno_to_name},
    twin,
};
use crate::ebpf;

/// Errors of the syscall engine.
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    /// The embedded object could not be loaded.
    #[error(
        "loading the dst-sys eBPF object failed: {0}; run `dst probe` to see what this kernel allows"
    )]
    Load(#[source] aya::EbpfError),
    /// A program failed to load or attach.
    #[error("{what}: {source}; run `dst probe` to see which hooks this kernel allows")]
    Program {
        /// What was being done.
        what: String,
        /// aya's error.
        #[source]
        source: aya::programs::ProgramError,
    },
    /// A BPF map operation failed.
    #[error("BPF map {map}: {source}")]
    Map {
        /// Map name.
        map: &'static str,
        /// aya's error.
        #[source]
        source: aya::maps::MapError,
    },
    /// Too many faults at once.
    #[error("all {MAX_SYS_RULES} syscall fault slots are in use; clear some faults first")]
    Full,
    /// The slot does not hold a fault.
    #[error("no syscall fault in slot {0}")]
    NoSuchSlot(u32),
    /// The kernel's BTF could not be read (LSM and fmod_ret programs are typed by it).
    #[error(transparent)]
    Btf(#[from] BtfError),
    /// aya could not parse the kernel's BTF.
    #[error("kernel BTF: {0}; the LSM and fmod_ret backends need CONFIG_DEBUG_INFO_BTF")]
    AyaBtf(#[source] aya::BtfError),
    /// An fmod_ret program failed.
    #[error(transparent)]
    Fmod(#[from] FmodError),
    /// The backend has no hook for the class.
    #[error("{backend} has no hook for {class} calls; see `dst probe` for the backend table")]
    NoHook {
        /// The syscall class.
        class: &'static str,
        /// The backend.
        backend: &'static str,
    },
    /// The observer's run statistics could not be read.
    #[error("reading the run statistics of the syscall-exit observer: {0}; run dst as root")]
    Stats(#[source] std::io::Error),
    /// A cgroup directory could not be opened for attaching.
    #[error("opening cgroup {path} to attach the socket hooks: {source}")]
    Cgroup {
        /// The cgroup.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn map_err(map: &'static str) -> impl FnOnce(aya::maps::MapError) -> SysError {
    move |source| SysError::Map { map, source }
}

fn prog_err(what: String) -> impl FnOnce(aya::programs::ProgramError) -> SysError {
    move |source| SysError::Program { what, source }
}

/// Counters of one syscall fault: the landing evidence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SysEvidenceCounters {
    /// Calls of the class by the target while the fault was live.
    pub matched: u64,
    /// Calls failed with the errno.
    pub injected: u64,
    /// Matched calls the trigger let through.
    pub passed: u64,
    /// Matched calls after expiry.
    pub expired: u64,
    /// CLOCK_MONOTONIC ns of the first injection.
    pub first_injected_ns: Option<u64>,
    /// CLOCK_MONOTONIC ns of the last injection.
    pub last_injected_ns: Option<u64>,
}

impl From<SysCounters> for SysEvidenceCounters {
    fn from(c: SysCounters) -> Self {
        Self {
            matched: c.matched,
            injected: c.injected,
            passed: c.passed,
            expired: c.expired,
            first_injected_ns: (c.first_injected_ns != 0).then_some(c.first_injected_ns),
            last_injected_ns: (c.last_injected_ns != 0).then_some(c.last_injected_ns),
        }
    }
}

/// What a targeted process received from a syscall, as the kernel observed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Observation {
    /// The process.
    pub pid: u32,
    /// Syscall name.
    pub syscall: String,
    /// `ok` or the errno name.
    pub result: String,
    /// Negative errno, or 0 for success.
    pub ret: i64,
    /// How many times.
    pub count: u64,
}

/// A process event from the kernel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ProcessEvent {
    /// A signal was generated for the process.
    Signal {
        /// The process.
        pid: u32,
        /// Signal number.
        signal: i32,
        /// Signal name.
        name: String,
        /// CLOCK_MONOTONIC ns.
        time_ns: u64,
    },
    /// The process ended.
    Exit {
        /// The process.
        pid: u32,
        /// Its command name.
        comm: String,
        /// Status passed to exit_group, if it called it.
        exit_code: Option<i32>,
        /// The signal that ended it (when it did not call exit_group).
        killed_by: Option<String>,
        /// CLOCK_MONOTONIC ns.
        time_ns: u64,
    },
}

/// Whether this kernel's `sched:sched_process_exit` tracepoint carries `group_dead` (6.16+),
/// read from its tracefs format; without it the programs report a process's end when its
/// thread-group leader exits.
pub fn exit_has_group_dead() -> bool {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .find_map(|root| {
            std::fs::read_to_string(format!("{root}/events/sched/sched_process_exit/format")).ok()
        })
        .is_some_and(|f| f.contains(" group_dead;"))
}

/// Name of a signal number.
pub fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig).map_or_else(|_| format!("SIG{sig}"), |s| s.to_string())
}

impl ProcessEvent {
    fn from_raw(e: &ProcEvent) -> Option<Self> {
        match e.kind {
            EVENT_SIGNAL => Some(Self::Signal {
                pid: e.tgid,
                signal: e.signal,
                name: signal_name(e.signal),
                time_ns: e.time_ns,
            }),
            EVENT_EXIT => {
                let end = e.comm.iter().position(|&b| b == 0).unwrap_or(16);
                let exited = e.exit_code >= 0;
                Some(Self::Exit {
                    pid: e.tgid,
                    comm: String::from_utf8_lossy(&e.comm[..end]).into_owned(),
                    exit_code: exited.then_some(e.exit_code),
                    killed_by: (!exited && e.signal > 0).then(|| signal_name(e.signal)),
                    time_ns: e.time_ns,
                })
            }
            _ => None,
        }
    }
}

const SOCK_ADDR_PROGS: &[&str] = &[
    "dst_connect4",
    "dst_connect6",
    "dst_bind4",
    "dst_bind6",
    "dst_sendmsg4",
    "dst_sendmsg6",
];
const SOCK_PROG: &str = "dst_sock_create";
const TP_PROGS: &[&str] = &[
    "dst_sys_exit",
    "dst_sys_exit_twin",
    "dst_exit_group",
    "dst_signal",
    "dst_process_exit",
    "dst_fork",
    "dst_signal_at",
    "dst_invalidate",
];

/// The loaded syscall programs and the rule slots they read.
pub struct SysEngine {
    bpf: Ebpf,
    used: [bool; MAX_SYS_RULES as usize],
    config: SysConfig,
    observed: BTreeSet<SyscallClass>,
    sock_cgroups: BTreeSet<PathBuf>,
    process_observer: bool,
    events: Option<RingBuf<aya::maps::MapData>>,
    lsm_attached: BTreeSet<&'static str>,
    fmod_links: Vec<(&'static str, FmodLink)>,
    offsets_written: bool,
    /// Whether the exit observer's twin runs beside it (decided at the first observed class).
    twin: Option<bool>,
}

impl SysEngine {
    /// Loads the object and its programs (nothing is attached yet).
    pub fn load() -> Result<Self, SysError> {
        crate::ebpf::ensure_pseudo_filesystems();
        let mut bpf = Ebpf::load(ebpf::SYS_OBJ).map_err(SysError::Load)?;
        for name in SOCK_ADDR_PROGS {
            let p: &mut CgroupSockAddr = prog(&mut bpf, name)?;
            p.load().map_err(prog_err(format!("loading {name}")))?;
        }
        let p: &mut CgroupSock = prog(&mut bpf, SOCK_PROG)?;
        p.load().map_err(prog_err(format!("loading {SOCK_PROG}")))?;
        for name in TP_PROGS {
            let p: &mut TracePoint = prog(&mut bpf, name)?;
            p.load().map_err(prog_err(format!("loading {name}")))?;
        }
        let events = bpf
            .take_map("DST_SYS_EVENTS")
            .map(RingBuf::try_from)
            .transpose()
            .map_err(map_err("DST_SYS_EVENTS"))?;
        Ok(Self {
            bpf,
            used: [false; MAX_SYS_RULES as usize],
            config: SysConfig::default(),
            observed: BTreeSet::new(),
            sock_cgroups: BTreeSet::new(),
            process_observer: false,
            events,
            lsm_attached: BTreeSet::new(),
            fmod_links: Vec::new(),
            offsets_written: false,
            twin: None,
        })
    }

    /// Writes the kernel structure offsets the path walk needs (once).
    fn ensure_offsets(&mut self) -> Result<(), SysError> {
        if self.offsets_written {
            return Ok(());
        }
        let offsets = kernel_offsets(&KernelBtf::from_sys_fs()?)?;
        let mut m: Array<&mut MapData, KernelOffsets> =
            Array::try_from(self.bpf.map_mut("DST_SYS_KOFFS").expect("map in object"))
                .map_err(map_err("DST_SYS_KOFFS"))?;
        m.set(0, offsets, 0).map_err(map_err("DST_SYS_KOFFS"))?;
        self.offsets_written = true;
        Ok(())
    }

    /// Loads and attaches the BPF LSM programs that carry `class` (each once). They act only
    /// on calls a rule targets; the links go when the engine is dropped.
    pub fn attach_lsm(&mut self, class: SyscallClass) -> Result<(), SysError> {
        let hooks = lsm_hooks(class);
        if hooks.is_empty() {
            return Err(SysError::NoHook {
                class: class.name(),
                backend: "BPF LSM",
            });
        }
        self.ensure_offsets()?;
        let btf = Btf::from_sys_fs().map_err(SysError::AyaBtf)?;
        for (name, hook) in hooks {
            if self.lsm_attached.contains(name) {
                continue;
            }
            let p: &mut Lsm = prog(&mut self.bpf, name)?;
            p.load(hook, &btf)
                .map_err(prog_err(format!("loading {name} (lsm/{hook})")))?;
            p.attach()
                .map_err(prog_err(format!("attaching {name} (lsm/{hook})")))?;
            self.lsm_attached.insert(name);
        }
        Ok(())
    }

    /// Loads and attaches the fmod_ret programs on the `security_*` functions that carry
    /// `class` (each once), sharing this engine's rules, targets and counters.
    pub fn attach_fmod_ret(&mut self, class: SyscallClass) -> Result<(), SysError> {
        let hooks = fmod_hooks(class);
        if hooks.is_empty() {
            return Err(SysError::NoHook {
                class: class.name(),
                backend: "fmod_ret",
            });
        }
        self.ensure_offsets()?;
        let btf = Btf::from_sys_fs().map_err(SysError::AyaBtf)?;
        for (name, func) in hooks {
            if self.fmod_links.iter().any(|(n, _)| n == name) {
                continue;
            }
            // Two copies of each program: the kernel skips a tracing program on a CPU while a
            // task is preempted inside it, and the other copy then evaluates the call (the
            // programs mark calls they evaluated so the pair counts each call once).
            for _ in 0..2 {
                let link = fmod::load_and_attach(ebpf::SYS_OBJ, &self.bpf, name, func, &btf)?;
                self.fmod_links.push((name, link));
            }
        }
        Ok(())
    }

    /// Attaches the exit observer to `syscalls:sys_exit_<name>` for every syscall of `class`
    /// (once per class; syscalls this kernel has no tracepoint for are skipped).
    pub fn observe_class(&mut self, class: SyscallClass) -> Result<Vec<&'static str>, SysError> {
        if self.observed.contains(&class) {
            return Ok(Vec::new());
        }
        if self.observed.is_empty() {
            // The observer caches "untargeted" per CPU; a cgroup move or a new name can make a
            // process targeted, so both invalidate the cache.
            let p: &mut TracePoint = prog(&mut self.bpf, "dst_invalidate")?;
            for (cat, tp) in [("cgroup", "cgroup_attach_task"), ("task", "task_rename")] {
                p.attach(cat, tp)
                    .map_err(prog_err(format!("attaching dst_invalidate to {cat}:{tp}")))?;
            }
        }
        let twin = *self
            .twin
            .get_or_insert_with(twin::syscall_programs_preemptible);
        let mut attached = Vec::new();
        for (name, _) in class.syscalls() {
            let tp = format!("sys_exit_{name}");
            if !Path::new("/sys/kernel/tracing/events/syscalls")
                .join(&tp)
                .exists()
            {
                continue;
            }
            for program in ["dst_sys_exit", "dst_sys_exit_twin"]
                .into_iter()
                .take(if twin { 2 } else { 1 })
            {
                let p: &mut TracePoint = prog(&mut self.bpf, program)?;
                p.attach("syscalls", &tp)
                    .map_err(prog_err(format!("attaching {program} to syscalls:{tp}")))?;
            }
            attached.push(*name);
        }
        self.observed.insert(class);
        Ok(attached)
    }

    /// Runs the exit observer's twin beside it (`true`) or not, instead of deciding by the
    /// kernel (see [`twin`]); only before the first [`SysEngine::observe_class`].
    pub fn force_observer_twin(&mut self, on: bool) {
        if self.observed.is_empty() {
            self.twin = Some(on);
        }
    }

    /// Makes the exit observers count every call in their shared hash maps, as they do for a
    /// key whose per-CPU entry another key owns: every entry of both per-CPU count tables is
    /// given to an owner no process has (tgid 0, which `observations` skips). For tests of
    /// that path; the tables stay full for this engine's lifetime.
    pub fn force_shared_counts(&mut self) -> Result<(), SysError> {
        let ncpu = aya::util::nr_cpus().map_err(|(_, e)| SysError::Map {
            map: "DST_SYS_OBS_PCPU",
            source: aya::maps::MapError::IoError(e),
        })?;
        let owner = ObsCount {
            count: 1,
            key: ObsKey {
                tgid: 0,
                nr: u32::MAX,
                ret: 0,
            },
        };
        for name in ["DST_SYS_OBS_PCPU", "DST_SYS_OBS_PCPU_TWIN"] {
            let mut table: PerCpuArray<&mut MapData, ObsCount> =
                PerCpuArray::try_from(self.bpf.map_mut(name).expect("map in object"))
                    .map_err(map_err(name))?;
            for i in 0..OBS_COUNT_SLOTS {
                let all = PerCpuValues::try_from(vec![owner; ncpu])
                    .map_err(|e| map_err(name)(aya::maps::MapError::IoError(e)))?;
                table.set(i, all, 0).map_err(map_err(name))?;
            }
        }
        Ok(())
    }

    /// Whether the exit observer's twin is attached.
    pub fn observer_twin(&self) -> bool {
        self.twin == Some(true) && !self.observed.is_empty()
    }

    /// Attaches the process observers: exit_group status, signals, exits (ring buffer) and
    /// forks (so followed targets take their children along).
    pub fn observe_processes(&mut self) -> Result<(), SysError> {
        if self.process_observer {
            return Ok(());
        }
        if !exit_has_group_dead() {
            self.config.flags |= CONFIG_EXIT_BY_LEADER;
            self.write_config()?;
        }
        for (name, cat, tp) in [
            ("dst_exit_group", "syscalls", "sys_enter_exit_group"),
            ("dst_signal", "signal", "signal_generate"),
            ("dst_process_exit", "sched", "sched_process_exit"),
            ("dst_fork", "sched", "sched_process_fork"),
        ] {
            let p: &mut TracePoint = prog(&mut self.bpf, name)?;
            p.attach(cat, tp)
                .map_err(prog_err(format!("attaching {name} to {cat}:{tp}")))?;
        }
        self.process_observer = true;
        Ok(())
    }

    /// Attaches the socket hooks (connect, bind, sendmsg, socket) to `cgroup`; they act only on
    /// calls a rule targets, and the cgroup's other programs keep running (multi-attach links).
    pub fn attach_sock(&mut self, cgroup: &Path) -> Result<(), SysError> {
        if self.sock_cgroups.contains(cgroup) {
            return Ok(());
        }
        let file = std::fs::File::open(cgroup).map_err(|source| SysError::Cgroup {
            path: cgroup.to_path_buf(),
            source,
        })?;
        let where_ = cgroup.display().to_string();
        for name in SOCK_ADDR_PROGS {
            let p: &mut CgroupSockAddr = prog(&mut self.bpf, name)?;
            p.attach(file.as_fd(), CgroupAttachMode::Single)
                .map_err(prog_err(format!("attaching {name} to {where_}")))?;
        }
        let p: &mut CgroupSock = prog(&mut self.bpf, SOCK_PROG)?;
        p.attach(file.as_fd(), CgroupAttachMode::Single)
            .map_err(prog_err(format!("attaching {SOCK_PROG} to {where_}")))?;
        self.sock_cgroups.insert(cgroup.to_path_buf());
        Ok(())
    }

    /// Arms the in-kernel process fault: the first time `pid` enters a syscall of `class`, the
    /// kernel sends it `signal` (`bpf_send_signal`, delivered on return to user space).
    pub fn arm_signal(
        &mut self,
        pid: u32,
        signal: i32,
        class: SyscallClass,
    ) -> Result<(), SysError> {
        let p: &mut TracePoint = prog(&mut self.bpf, "dst_signal_at")?;
        for (name, _) in class.syscalls() {
            let tp = format!("sys_enter_{name}");
            if Path::new("/sys/kernel/tracing/events/syscalls")
                .join(&tp)
                .exists()
            {
                p.attach("syscalls", &tp).map_err(prog_err(format!(
                    "attaching dst_signal_at to syscalls:{tp}"
                )))?;
            }
        }
        let mut m: Array<&mut MapData, SignalRule> =
            Array::try_from(self.bpf.map_mut("DST_SYS_SIGNAL").expect("map in object"))
                .map_err(map_err("DST_SYS_SIGNAL"))?;
        let rule = SignalRule {
            tgid: pid,
            signal: signal as u32,
            ..Default::default()
        };
        m.set(0, rule, 0).map_err(map_err("DST_SYS_SIGNAL"))
    }

    /// CLOCK_MONOTONIC ns at which the armed signal was sent, if it was.
    pub fn signal_fired(&self) -> Result<Option<u64>, SysError> {
        let m: Array<&MapData, SignalRule> =
            Array::try_from(self.bpf.map("DST_SYS_SIGNAL").expect("map in object"))
                .map_err(map_err("DST_SYS_SIGNAL"))?;
        let r = m.get(&0, 0).map_err(map_err("DST_SYS_SIGNAL"))?;
        Ok((r.fired > 0).then_some(r.fired_ns))
    }

    /// Targets (and observes) process `pid`; with `follow`, also the children it forks from now on.
    pub fn add_pid(&mut self, pid: u32, follow: bool) -> Result<(), SysError> {
        let mut m: HashMap<&mut MapData, u32, u64> =
            HashMap::try_from(self.bpf.map_mut("DST_SYS_TGIDS").expect("map in object"))
                .map_err(map_err("DST_SYS_TGIDS"))?;
        let v = u64::from(pid) | if follow { 1 << 32 } else { 0 };
        m.insert(pid, v, 0).map_err(map_err("DST_SYS_TGIDS"))?;
        self.bump_generation()
    }

    /// Tells the exit observer that targets changed: its per-CPU "untargeted" cache is stale.
    /// Called after the target map write, so a program that read the old generation stores
    /// its answer under it and never trusts it again.
    fn bump_generation(&mut self) -> Result<(), SysError> {
        let mut m: Array<&mut MapData, u64> =
            Array::try_from(self.bpf.map_mut("DST_SYS_GEN").expect("map in object"))
                .map_err(map_err("DST_SYS_GEN"))?;
        let g = m.get(&0, 0).map_err(map_err("DST_SYS_GEN"))?;
        m.set(0, g.wrapping_add(GEN_USER_STEP), 0)
            .map_err(map_err("DST_SYS_GEN"))
    }

    /// Observes every process of the cgroup with id `id`.
    pub fn add_cgroup(&mut self, id: u64) -> Result<(), SysError> {
        let mut m: HashMap<&mut MapData, u64, u32> =
            HashMap::try_from(self.bpf.map_mut("DST_SYS_CGROUPS").expect("map in object"))
                .map_err(map_err("DST_SYS_CGROUPS"))?;
        m.insert(id, 1, 0).map_err(map_err("DST_SYS_CGROUPS"))?;
        self.bump_generation()
    }

    /// Observes every process named `comm`.
    pub fn add_comm(&mut self, comm: [u8; 16]) -> Result<(), SysError> {
        let mut m: HashMap<&mut MapData, [u8; 16], u32> =
            HashMap::try_from(self.bpf.map_mut("DST_SYS_COMMS").expect("map in object"))
                .map_err(map_err("DST_SYS_COMMS"))?;
        m.insert(comm, 1, 0).map_err(map_err("DST_SYS_COMMS"))?;
        self.config.flags |= CONFIG_HAS_COMM;
        self.write_config()?;
        self.bump_generation()
    }

    /// Installs rules atomically: every rule gets a slot and is live, or none is written.
    pub fn apply(&mut self, rules: &[SysRule]) -> Result<Vec<u32>, SysError> {
        let rules: Vec<(SysRule, Option<PathRule>)> = rules.iter().map(|r| (*r, None)).collect();
        self.apply_with_paths(&rules)
    }

    /// [`apply`](Self::apply) for rules that may carry a path prefix (LSM/fmod_ret file rules;
    /// the rule gets `SYS_RULE_PATH` and the prefix is written before the rule goes live).
    pub fn apply_with_paths(
        &mut self,
        rules: &[(SysRule, Option<PathRule>)],
    ) -> Result<Vec<u32>, SysError> {
        if rules.iter().any(|(_, p)| p.is_some()) {
            self.ensure_offsets()?;
            self.config.flags |= CONFIG_HAS_PATH;
        }
        let free: Vec<u32> = (0..MAX_SYS_RULES)
            .filter(|&i| !self.used[i as usize])
            .take(rules.len())
            .collect();
        if free.len() < rules.len() {
            return Err(SysError::Full);
        }
        let mut written = Vec::new();
        for (slot, (rule, path)) in free.iter().zip(rules) {
            if let Err(e) = self.write_slot(*slot, rule, path.as_ref()) {
                for s in written {
                    let _ = self.write_rule(s, &SysRule::default());
                    self.used[s as usize] = false;
                }
                return Err(e);
            }
            self.used[*slot as usize] = true;
            written.push(*slot);
        }
        let limit = (0..MAX_SYS_RULES)
            .rev()
            .find(|&i| self.used[i as usize])
            .map_or(0, |i| i + 1);
        self.config.limit = limit.max(self.config.limit);
        self.write_config()?;
        Ok(free)
    }

    fn write_slot(
        &mut self,
        slot: u32,
        rule: &SysRule,
        path: Option<&PathRule>,
    ) -> Result<(), SysError> {
        let mut rule = *rule;
        if let Some(p) = path {
            let mut m: Array<&mut MapData, PathRule> =
                Array::try_from(self.bpf.map_mut("DST_SYS_PATHS").expect("map in object"))
                    .map_err(map_err("DST_SYS_PATHS"))?;
            m.set(slot, p, 0).map_err(map_err("DST_SYS_PATHS"))?;
            rule.flags |= SYS_RULE_PATH;
        }
        // Fresh counters first, then the rule (the kernel never sees a live rule with stale
        // counters).
        let mut c: Array<&mut MapData, SysCounters> =
            Array::try_from(self.bpf.map_mut("DST_SYS_COUNTERS").expect("map in object"))
                .map_err(map_err("DST_SYS_COUNTERS"))?;
        c.set(slot, SysCounters::default(), 0)
            .map_err(map_err("DST_SYS_COUNTERS"))?;
        self.write_rule(slot, &rule)
    }

    fn write_rule(&mut self, slot: u32, rule: &SysRule) -> Result<(), SysError> {
        let mut rules: Array<&mut MapData, SysRule> =
            Array::try_from(self.bpf.map_mut("DST_SYS_RULES").expect("map in object"))
                .map_err(map_err("DST_SYS_RULES"))?;
        rules.set(slot, rule, 0).map_err(map_err("DST_SYS_RULES"))
    }

    fn write_config(&mut self) -> Result<(), SysError> {
        let mut cfg: Array<&mut MapData, SysConfig> =
            Array::try_from(self.bpf.map_mut("DST_SYS_CONFIG").expect("map in object"))
                .map_err(map_err("DST_SYS_CONFIG"))?;
        cfg.set(0, self.config, 0)
            .map_err(map_err("DST_SYS_CONFIG"))
    }

    /// Deactivates the fault in `slot`; its counters stay readable until the slot is reused.
    pub fn clear(&mut self, slot: u32) -> Result<(), SysError> {
        if !self.used.get(slot as usize).copied().unwrap_or(false) {
            return Err(SysError::NoSuchSlot(slot));
        }
        self.write_rule(slot, &SysRule::default())?;
        self.used[slot as usize] = false;
        Ok(())
    }

    /// Current counters of `slot`.
    pub fn counters(&self, slot: u32) -> Result<SysEvidenceCounters, SysError> {
        let c: Array<&MapData, SysCounters> =
            Array::try_from(self.bpf.map("DST_SYS_COUNTERS").expect("map in object"))
                .map_err(map_err("DST_SYS_COUNTERS"))?;
        Ok(c.get(&slot, 0).map_err(map_err("DST_SYS_COUNTERS"))?.into())
    }

    /// Runs the kernel skipped, per exit-observer program (the programs' `recursion_misses`):
    /// the observer's, and its twin's when attached. Kernels before 6.7 do not count skips of
    /// tracepoint programs and report 0.
    pub fn observer_skips(&self) -> Result<(u64, Option<u64>), SysError> {
        let skips = |name: &str| self.recursion_misses(name);
        let primary = skips("dst_sys_exit")?;
        let twin = if self.observer_twin() {
            Some(skips("dst_sys_exit_twin")?)
        } else {
            None
        };
        Ok((primary, twin))
    }

    /// At most how many calls (of any process, targeted or not) the exit observers missed:
    /// when non-zero, what the evidence says the targets received may undercount by up to this
    /// many. A call is missed only when every attached observer program skipped it (see
    /// [`twin`]).
    pub fn observer_misses(&self) -> Result<u64, SysError> {
        let (primary, twin) = self.observer_skips()?;
        Ok(twin::missed_bound(primary, twin))
    }

    /// How many runs the kernel skipped of program `name` of this engine's object (its
    /// recursion guard; 0 on kernels before 6.7, which do not count skips).
    fn recursion_misses(&self, name: &str) -> Result<u64, SysError> {
        let p = self.bpf.program(name).ok_or_else(|| SysError::Program {
            what: format!("program {name} missing from the dst-sys object (rebuild dst)"),
            source: aya::programs::ProgramError::NotLoaded,
        })?;
        let fd = p.fd().map_err(prog_err(format!("program {name}")))?;
        crate::bpf_sys::prog_stats(fd.as_fd())
            .map(|s| s.recursion_misses)
            .map_err(SysError::Stats)
    }

    /// How many calls this engine's LSM and fmod_ret programs could not evaluate: trampoline
    /// programs run with migration, not preemption, disabled. While a task is preempted inside
    /// an fmod_ret program the kernel skips that program for every other call on the CPU (its
    /// recursion guard; LSM programs have none), and a path walk that finds every per-CPU
    /// scratch chain held by preempted walks gives up. Either way the call runs as if no fault
    /// existed (neither matched nor injected); when non-zero, up to this many calls of any
    /// process on those hooks were missed. Socket hooks and seccomp never miss.
    pub fn injector_misses(&self) -> Result<u64, SysError> {
        let busy: Array<&MapData, u64> =
            Array::try_from(self.bpf.map("DST_SYS_CHAIN_BUSY").expect("map in object"))
                .map_err(map_err("DST_SYS_CHAIN_BUSY"))?;
        let mut total = busy.get(&0, 0).map_err(map_err("DST_SYS_CHAIN_BUSY"))?;
        for name in &self.lsm_attached {
            total += self.recursion_misses(name)?;
        }
        for (_, link) in &self.fmod_links {
            total += crate::bpf_sys::prog_stats(link.prog_fd())
                .map_err(SysError::Stats)?
                .recursion_misses;
        }
        Ok(total)
    }

    /// Everything the observers saw, sorted by pid, syscall and result.
    pub fn observations(&self) -> Result<Vec<Observation>, SysError> {
        // One observer's counts: its shared map plus every CPU's count table.
        let read = |shared: &'static str,
                    per_cpu: &'static str|
         -> Result<BTreeMap<ObsKey, u64>, SysError> {
            let m: HashMap<&MapData, ObsKey, u64> =
                HashMap::try_from(self.bpf.map(shared).expect("map in object"))
                    .map_err(map_err(shared))?;
            Ok(observed::sum_counts(
                m.iter().filter_map(Result::ok),
                self.count_table(per_cpu)?,
            ))
        };
        let twin = if self.observer_twin() {
            read("DST_SYS_OBS_TWIN", "DST_SYS_OBS_PCPU_TWIN")?
        } else {
            BTreeMap::new()
        };
        let primary = read("DST_SYS_OBS", "DST_SYS_OBS_PCPU")?;
        let mut out: Vec<Observation> = twin::merge_max(primary, twin)
            .into_iter()
            .map(|(k, count)| Observation {
                pid: k.tgid,
                syscall: SyscallClass::name_of_nr(i64::from(k.nr))
                    .map_or_else(|| format!("nr{}", k.nr), str::to_string),
                result: if k.ret == 0 {
                    "ok".into()
                } else {
                    errno_to_name((-k.ret) as i32)
                },
                ret: k.ret,
                count,
            })
            .collect();
        out.sort_by(|a, b| (a.pid, &a.syscall, a.ret).cmp(&(b.pid, &b.syscall, b.ret)));
        Ok(out)
    }

    /// Every CPU's entries of one per-CPU count table.
    fn count_table(&self, name: &'static str) -> Result<Vec<ObsCount>, SysError> {
        let table: PerCpuArray<&MapData, ObsCount> =
            PerCpuArray::try_from(self.bpf.map(name).expect("map in object"))
                .map_err(map_err(name))?;
        let mut entries = Vec::new();
        for i in 0..OBS_COUNT_SLOTS {
            entries.extend(table.get(&i, 0).map_err(map_err(name))?.iter().copied());
        }
        Ok(entries)
    }

    /// How many calls the exit observer (not its twin) counted in its per-CPU table; the rest
    /// of what it saw is in its shared map.
    pub fn counted_per_cpu(&self) -> Result<u64, SysError> {
        Ok(self
            .count_table("DST_SYS_OBS_PCPU")?
            .iter()
            .filter(|e| e.key.tgid != 0)
            .map(|e| e.count)
            .sum())
    }

    /// How many times `pid` (or any observed process when `None`) received `ret` from a
    /// syscall of `class`.
    pub fn received(
        &self,
        pid: Option<u32>,
        class: SyscallClass,
        ret: i64,
    ) -> Result<u64, SysError> {
        let names: Vec<&str> = class.syscalls().iter().map(|(n, _)| *n).collect();
        Ok(self
            .observations()?
            .iter()
            .filter(|o| pid.is_none_or(|p| o.pid == p))
            .filter(|o| names.contains(&o.syscall.as_str()) && o.ret == ret)
            .map(|o| o.count)
            .sum())
    }

    /// Process events queued since the last call.
    pub fn drain_events(&mut self) -> Vec<ProcessEvent> {
        let mut out = Vec::new();
        if let Some(rb) = self.events.as_mut() {
            while let Some(item) = rb.next() {
                if item.len() >= size_of::<ProcEvent>() {
                    // SAFETY: the kernel wrote a whole ProcEvent (repr(C), integers only);
                    // read_unaligned copes with the ring buffer's 8-byte alignment.
                    let raw: ProcEvent =
                        unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<ProcEvent>()) };
                    out.extend(ProcessEvent::from_raw(&raw));
                }
            }
        }
        out
    }
}

fn prog<'a, T>(bpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, SysError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    let p = bpf.program_mut(name).ok_or_else(|| SysError::Program {
        what: format!("program {name} missing from the dst-sys object (rebuild dst)"),
        source: aya::programs::ProgramError::NotLoaded,
    })?;
    p.try_into().map_err(|source| SysError::Program {
        what: format!("program {name} has the wrong type"),
        source,
    })
}

/// CLOCK_MONOTONIC now in ns (the clock the kernel programs use).
pub fn monotonic_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_events_say_how_the_process_ended() {
        let mut comm = [0u8; 16];
        comm[..3].copy_from_slice(b"app");
        let killed = ProcEvent {
            kind: EVENT_EXIT,
            tgid: 7,
            exit_code: -1,
            signal: 9,
            time_ns: 1,
            comm,
        };
        match ProcessEvent::from_raw(&killed) {
            Some(ProcessEvent::Exit {
                killed_by,
                exit_code,
                comm,
                ..
            }) => {
                assert_eq!(killed_by.as_deref(), Some("SIGKILL"));
                assert_eq!(exit_code, None);
                assert_eq!(comm, "app");
            }
            other => panic!("{other:?}"),
        }
        let exited = ProcEvent {
            exit_code: 3,
            ..killed
        };
        assert!(matches!(
            ProcessEvent::from_raw(&exited),
            Some(ProcessEvent::Exit {
                exit_code: Some(3),
                killed_by: None,
                ..
            })
        ));
    }
}
