//! Loads the `dst-net` object, attaches its programs (TCX first, tc clsact on kernels without
//! TCX, cgroup_skb for per-cgroup faults), writes rules into the rule map atomically and reads
//! the per-rule counters back as landing evidence.
//!
//! TCX and cgroup links are owned by this process: when it exits, for any reason, the kernel
//! detaches them. clsact filters are not; a dead-man lease ([`super::lease`]) makes them inert,
//! the engine removes its own when dropped (in the namespace they were attached in), and the
//! next dst on the device removes a dead one's ([`super::sweep`]).

use std::os::fd::AsFd as _;

use aya::{
    Ebpf,
    maps::{Array, HashMap, Map, MapData, PerCpuArray},
    programs::{
        CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, LinkOrder, SchedClassifier, TcAttachType,
        tc::{NlOptions, SchedClassifierLinkId, TcAttachOptions},
    },
};
use dst_common::{
    MAX_NET_RULES,
    net::{
        DelayTaps, EDT_HIST_BUCKETS, NetCounters, NetRule, PREFILTER_MAX_PORTS, RuleSeq, TapReturn,
    },
};
use serde::Serialize;

use super::{
    delayline::{self, DelayLine, Histogram, SharedRules},
    spec::{Direction, NetFault, SpecError},
    tap::Tap,
};
use crate::{cgroup::Cgroup, ebpf, netns::NetNs};

/// Errors of the network engine.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A program's run statistics could not be read.
    #[error("reading the run statistics of {prog}: {source}; run dst as root")]
    Stats {
        /// The program.
        prog: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The embedded object could not be loaded (maps or BTF refused).
    #[error(
        "loading the dst-net eBPF object failed: {0}; run `dst probe` to see what this kernel allows"
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
    #[error("all {MAX_NET_RULES} network fault slots are in use; clear some faults first")]
    Full,
    /// The fault spec is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The slot does not hold a fault.
    #[error("no network fault in slot {0}")]
    NoSuchSlot(u32),
    /// The delay line's TAP device could not be created.
    #[error(
        "creating delay-line TAP {name}: {source}; the delay line needs /dev/net/tun (modprobe tun) and CAP_NET_ADMIN"
    )]
    Tap {
        /// TAP name.
        name: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The dead-man lease that guards clsact filters could not be started.
    #[error(transparent)]
    Lease(#[from] super::lease::LeaseError),
    /// An interface name did not resolve in the namespace.
    #[error("interface {0:?} not found in this network namespace; list them with `ip link`")]
    NoSuchInterface(String),
    /// The attaching thread's network namespace could not be opened (kept to detach clsact
    /// filters there later).
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
}

fn map_err(map: &'static str) -> impl FnOnce(aya::maps::MapError) -> NetError {
    move |source| NetError::Map { map, source }
}

/// Which mechanism carries the programs on an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TcMechanism {
    /// TCX link (kernel 6.6+).
    Tcx,
    /// Classic clsact qdisc + cls_bpf filter in direct-action mode.
    Clsact,
}

/// Counters of one rule summed over CPUs: the landing evidence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RuleEvidence {
    /// Packets that matched while the rule was live.
    pub matched: u64,
    /// Matched packets that received the action.
    pub applied: u64,
    /// Matched packets let through by the probability draw.
    pub passed: u64,
    /// Delayed packets.
    pub delayed: u64,
    /// Reordered packets.
    pub reordered: u64,
    /// Duplicated packets.
    pub duplicated: u64,
    /// Corrupted packets.
    pub corrupted: u64,
    /// Bytes of applied packets.
    pub bytes: u64,
    /// Packets that matched after expiry (let through).
    pub expired: u64,
    /// EDT: packets dropped because their departure was beyond the horizon.
    pub edt_dropped: u64,
    /// CLOCK_MONOTONIC ns of the first applied packet.
    pub first_applied_ns: Option<u64>,
    /// CLOCK_MONOTONIC ns of the last applied packet.
    pub last_applied_ns: Option<u64>,
    /// Decisions drawn so far (the ordinal fed to the seeded PRNG).
    pub decisions: u64,
}

impl RuleEvidence {
    fn sum(per_cpu: &[NetCounters], decisions: u64) -> Self {
        let mut e = Self {
            decisions,
            ..Self::default()
        };
        for c in per_cpu {
            e.matched += c.matched;
            e.applied += c.applied;
            e.passed += c.passed;
            e.delayed += c.delayed;
            e.reordered += c.reordered;
            e.duplicated += c.duplicated;
            e.corrupted += c.corrupted;
            e.bytes += c.bytes;
            e.expired += c.expired;
            e.edt_dropped += c.edt_dropped;
            if c.first_applied_ns != 0 {
                e.first_applied_ns = Some(
                    e.first_applied_ns
                        .map_or(c.first_applied_ns, |f| f.min(c.first_applied_ns)),
                );
            }
            if c.last_applied_ns != 0 {
                e.last_applied_ns = Some(
                    e.last_applied_ns
                        .map_or(c.last_applied_ns, |l| l.max(c.last_applied_ns)),
                );
            }
        }
        e
    }
}

/// The loaded network programs and the rule slots they read.
pub struct NetEngine {
    bpf: Ebpf,
    used: [bool; MAX_NET_RULES as usize],
    limit: u32,
    delay_lines: Vec<SharedRules>,
    /// Possible CPUs (size of per-CPU values), read once at load.
    ncpu: usize,
    /// Mirror of DST_NET_WILDCARD.
    wildcard: u64,
    /// Mirror of the non-zero DST_NET_PORTMASK entries.
    port_masks: std::collections::BTreeMap<u16, u64>,
    /// EDT histogram scale of each slot's rule (kept after the rule is cleared).
    hist_shift: [u8; MAX_NET_RULES as usize],
    /// Slots whose counters, decision ordinal, pacing and histogram are all zero (fresh maps,
    /// or [`NetEngine::recycle`]d): activating a fault there writes only its index and rule.
    clean: [bool; MAX_NET_RULES as usize],
    /// Slots whose EDT histogram an EDT rule may have written since it was last zeroed.
    hist_dirty: [bool; MAX_NET_RULES as usize],
    /// clsact filters this engine attached, with the namespace they live in: netlink detaches
    /// by interface index, which only means that device inside that namespace.
    clsact_links: Vec<(NetNs, &'static str, SchedClassifierLinkId)>,
    /// Renewal of DST_NET_LEASE, running once a clsact filter (not owned by an fd) is attached.
    lease: Option<super::lease::Lease>,
    /// The landed/expired ring buffer until [`NetEngine::take_events`].
    events: Option<super::events::NetEvents>,
}

const PROG_TC_INGRESS: &str = "dst_tc_ingress";
const PROG_TC_EGRESS: &str = "dst_tc_egress";
const PROG_CG_INGRESS: &str = "dst_cg_ingress";
const PROG_CG_EGRESS: &str = "dst_cg_egress";
const PROG_TAP_RETURN: &str = "dst_tap_return";

impl NetEngine {
    /// Loads the object and its maps. Programs are verified and loaded on first attach (the
    /// rule loop costs the verifier a few hundred ms per program, so only what is used is
    /// loaded).
    pub fn load() -> Result<Self, NetError> {
        let mut bpf = Ebpf::load(ebpf::NET_OBJ).map_err(NetError::Load)?;
        let events = bpf
            .take_map("DST_NET_EVENTS")
            .map(aya::maps::RingBuf::try_from)
            .transpose()
            .map_err(map_err("DST_NET_EVENTS"))?
            .map(super::events::NetEvents);
        let ncpu = aya::util::nr_cpus().map_err(|(_, e)| NetError::Map {
            map: "DST_NET_COUNTERS",
            source: aya::maps::MapError::IoError(e),
        })?;
        Ok(Self {
            ncpu,
            bpf,
            used: [false; MAX_NET_RULES as usize],
            limit: 0,
            delay_lines: Vec::new(),
            wildcard: 0,
            port_masks: std::collections::BTreeMap::new(),
            hist_shift: [0; MAX_NET_RULES as usize],
            clean: [true; MAX_NET_RULES as usize],
            hist_dirty: [false; MAX_NET_RULES as usize],
            clsact_links: Vec::new(),
            lease: None,
            events,
        })
    }

    /// The kernel's landed/expired events (once: the caller owns the ring buffer from then on).
    pub fn take_events(&mut self) -> Option<super::events::NetEvents> {
        self.events.take()
    }

    /// Run statistics of the egress classifier (`run_time_ns` and `run_cnt` advance only while
    /// BPF statistics are on, e.g. under `aya::sys::enable_stats`): what a benchmark reads to
    /// attribute CPU time to the program itself.
    pub fn egress_stats(&mut self) -> Result<crate::bpf_sys::ProgStats, NetError> {
        let p: &mut SchedClassifier = prog(&mut self.bpf, PROG_TC_EGRESS)?;
        let fd = p.fd().map_err(|source| NetError::Program {
            what: format!("the file descriptor of {PROG_TC_EGRESS}"),
            source,
        })?;
        crate::bpf_sys::prog_stats(fd.as_fd()).map_err(|source| NetError::Stats {
            prog: PROG_TC_EGRESS,
            source,
        })
    }

    /// Attaches the classifiers to `iface` (in the calling thread's network namespace) for the
    /// given direction(s). Uses TCX where the kernel has it, else a clsact qdisc (created if
    /// missing; an existing one is shared, never replaced).
    pub fn attach_tc(&mut self, iface: &str, dir: Direction) -> Result<TcMechanism, NetError> {
        let mut mech = TcMechanism::Tcx;
        for (name, ty, wanted) in [
            (
                PROG_TC_INGRESS,
                TcAttachType::Ingress,
                dir != Direction::Egress,
            ),
            (
                PROG_TC_EGRESS,
                TcAttachType::Egress,
                dir != Direction::Ingress,
            ),
        ] {
            if !wanted {
                continue;
            }
            let p: &mut SchedClassifier = prog(&mut self.bpf, name)?;
            let tcx =
                p.attach_with_options(iface, ty, TcAttachOptions::TcxOrder(LinkOrder::default()));
            if let Err(tcx_err) = tcx {
                // Kernels before 6.6 have no TCX: fall back to clsact + cls_bpf.
                let _ = aya::programs::tc::qdisc_add_clsact(iface);
                sweep_stale(iface, ty == TcAttachType::Ingress);
                let ns = NetNs::current()?;
                let link = p
                    .attach_with_options(iface, ty, TcAttachOptions::Netlink(NlOptions::default()))
                    .map_err(|source| NetError::Program {
                        what: format!("attaching {name} to {iface} (TCX failed with: {tcx_err})"),
                        source,
                    })?;
                self.clsact_links.push((ns, name, link));
                mech = TcMechanism::Clsact;
                self.hold_lease()?;
            }
        }
        Ok(mech)
    }

    /// Starts renewing the dead-man lease (once): clsact filters survive a SIGKILLed dst, the
    /// lease makes them inert within a second of its death.
    fn hold_lease(&mut self) -> Result<(), NetError> {
        if self.lease.is_none() {
            let id = self.map_id(super::lease::LEASE_MAP)?;
            self.lease = Some(super::lease::Lease::start(id)?);
        }
        Ok(())
    }

    /// The dead-man lease while one is held (CLOCK_MONOTONIC ns it is valid until).
    pub fn lease_until(&self) -> Option<u64> {
        self.lease.as_ref().and_then(|l| l.until().ok())
    }

    /// Attaches the cgroup_skb programs to `cgroup` so faults can follow its processes.
    /// Attached as a bpf_link (5.7+), which is always multi-attach: programs others attached to
    /// the cgroup keep running (flags must be 0 for links, hence `Single`).
    pub fn attach_cgroup(&mut self, cgroup: &Cgroup, dir: Direction) -> Result<(), NetError> {
        let file = std::fs::File::open(cgroup.path()).map_err(|e| NetError::Program {
            what: format!("opening cgroup {}", cgroup.path().display()),
            source: aya::programs::ProgramError::IOError(e),
        })?;
        for (name, ty, wanted) in [
            (
                PROG_CG_INGRESS,
                CgroupSkbAttachType::Ingress,
                dir != Direction::Egress,
            ),
            (
                PROG_CG_EGRESS,
                CgroupSkbAttachType::Egress,
                dir != Direction::Ingress,
            ),
        ] {
            if !wanted {
                continue;
            }
            let p: &mut CgroupSkb = prog(&mut self.bpf, name)?;
            p.attach(file.as_fd(), ty, CgroupAttachMode::Single)
                .map_err(|source| NetError::Program {
                    what: format!("attaching {name} to {}", cgroup.path().display()),
                    source,
                })?;
        }
        Ok(())
    }

    /// Creates the delay line for `iface` (in the calling thread's network namespace): one TAP
    /// per direction, the return program on each TAP's ingress, and the map entries that make
    /// the classifiers redirect delay/reorder/rate packets there. Attach the classifiers with
    /// [`NetEngine::attach_tc`] as well. The returned line stops (releasing what it holds) and
    /// the TAPs vanish when it is dropped; call [`NetEngine::detach_delay_line`] first.
    pub fn attach_delay_line(
        &mut self,
        iface: &str,
        dir: Direction,
    ) -> Result<DelayLine, NetError> {
        let ifindex = nix::net::if_::if_nametoindex(iface)
            .map_err(|_| NetError::NoSuchInterface(iface.to_string()))?;
        let mut taps = Vec::new();
        let mut entry = DelayTaps::default();
        for (ingress, wanted) in [
            (true, dir != Direction::Egress),
            (false, dir != Direction::Ingress),
        ] {
            if !wanted {
                continue;
            }
            let name = format!("dstd{ifindex}{}", if ingress { 'i' } else { 'e' });
            let tap = Tap::create(&name).map_err(|source| NetError::Tap {
                name: name.clone(),
                source,
            })?;
            crate::netlink::Netlink::new()
                .and_then(|nl| nl.link_up(tap.ifindex))
                .map_err(|e| NetError::Tap {
                    name: name.clone(),
                    source: std::io::Error::other(e.to_string()),
                })?;
            let p: &mut SchedClassifier = prog(&mut self.bpf, PROG_TAP_RETURN)?;
            p.attach_with_options(
                &name,
                TcAttachType::Ingress,
                TcAttachOptions::TcxOrder(LinkOrder::default()),
            )
            .or_else(|_| {
                let _ = aya::programs::tc::qdisc_add_clsact(&name);
                p.attach_with_options(
                    &name,
                    TcAttachType::Ingress,
                    TcAttachOptions::Netlink(NlOptions::default()),
                )
            })
            .map_err(|source| NetError::Program {
                what: format!("attaching {PROG_TAP_RETURN} to {name}"),
                source,
            })?;
            let mut ret: HashMap<&mut MapData, u32, TapReturn> = HashMap::try_from(
                self.bpf
                    .map_mut("DST_NET_TAP_RETURN")
                    .expect("map in object"),
            )
            .map_err(map_err("DST_NET_TAP_RETURN"))?;
            ret.insert(
                tap.ifindex,
                TapReturn {
                    ifindex,
                    ingress: u32::from(ingress),
                },
                0,
            )
            .map_err(map_err("DST_NET_TAP_RETURN"))?;
            if ingress {
                entry.ingress_tap = tap.ifindex;
            } else {
                entry.egress_tap = tap.ifindex;
            }
            taps.push((tap, delayline::dir_flag(ingress)));
        }
        let shared = SharedRules::default();
        {
            // Faults already live are served by the new line too.
            let rules: Array<&MapData, NetRule> =
                Array::try_from(self.bpf.map("DST_NET_RULES").expect("map in object"))
                    .map_err(map_err("DST_NET_RULES"))?;
            for slot in (0..MAX_NET_RULES).filter(|&i| self.used[i as usize]) {
                if let Ok(r) = rules.get(&slot, 0) {
                    delayline::register(&shared, slot, r);
                }
            }
        }
        let line = DelayLine::start(
            taps,
            shared.clone(),
            self.map_id("DST_NET_SEQ")?,
            self.map_id("DST_NET_COUNTERS")?,
        )
        .map_err(map_err("delay line"))?;
        let mut t: HashMap<&mut MapData, u32, DelayTaps> =
            HashMap::try_from(self.bpf.map_mut("DST_NET_TAPS").expect("map in object"))
                .map_err(map_err("DST_NET_TAPS"))?;
        t.insert(ifindex, entry, 0)
            .map_err(map_err("DST_NET_TAPS"))?;
        self.delay_lines.push(shared);
        Ok(line)
    }

    /// Stops redirecting to `line`'s TAPs (call before dropping the line).
    pub fn detach_delay_line(&mut self, line: &DelayLine) -> Result<(), NetError> {
        let shared = line.shared();
        self.delay_lines
            .retain(|s| !std::sync::Arc::ptr_eq(s, &shared));
        let mut t: HashMap<&mut MapData, u32, DelayTaps> =
            HashMap::try_from(self.bpf.map_mut("DST_NET_TAPS").expect("map in object"))
                .map_err(map_err("DST_NET_TAPS"))?;
        let keys: Vec<u32> = t.keys().filter_map(Result::ok).collect();
        for k in keys {
            if let Ok(v) = t.get(&k, 0)
                && line
                    .taps
                    .iter()
                    .any(|(_, idx, _)| *idx == v.ingress_tap || *idx == v.egress_tap)
            {
                let _ = t.remove(&k);
            }
        }
        Ok(())
    }

    fn map_id(&self, name: &'static str) -> Result<u32, NetError> {
        let data = match self.bpf.map(name).expect("map in object") {
            Map::Array(d) | Map::PerCpuArray(d) | Map::HashMap(d) => d,
            _ => {
                return Err(NetError::Map {
                    map: name,
                    source: aya::maps::MapError::InvalidName { name: name.into() },
                });
            }
        };
        data.info().map(|i| i.id()).map_err(map_err(name))
    }

    /// Installs a set of faults atomically: either every fault gets a slot and is live, or none
    /// is written. Returns the slots in order.
    pub fn apply(&mut self, faults: &[(NetFault, u64, u64)]) -> Result<Vec<u32>, NetError> {
        let rules = faults
            .iter()
            .map(|(f, not_before, expires)| f.to_rule(*not_before, *expires))
            .collect::<Result<Vec<_>, _>>()?;
        let free: Vec<u32> = (0..MAX_NET_RULES)
            .filter(|&i| !self.used[i as usize])
            .take(rules.len())
            .collect();
        if free.len() < rules.len() {
            return Err(NetError::Full);
        }
        for (slot, rule) in free.iter().zip(&rules) {
            for line in &self.delay_lines {
                delayline::register(line, *slot, *rule);
            }
        }
        let mut written = Vec::new();
        for (slot, rule) in free.iter().zip(&rules) {
            if let Err(e) = self.write_slot(*slot, rule) {
                for s in written {
                    let _ = self.write_rule(s, &NetRule::default());
                    self.used[s as usize] = false;
                }
                return Err(e);
            }
            self.used[*slot as usize] = true;
            written.push(*slot);
        }
        let limit = (0..MAX_NET_RULES)
            .rev()
            .find(|&i| self.used[i as usize])
            .map_or(0, |i| i + 1);
        self.set_limit(limit.max(self.limit))?;
        Ok(free)
    }

    /// Makes `slot` a candidate for the packets `rule` can match (before the rule goes live) or
    /// removes it (after the rule is gone). A stale candidate bit only costs a comparison.
    fn index(&mut self, slot: u32, rule: &NetRule, on: bool) -> Result<(), NetError> {
        let bit = 1u64 << slot;
        let set = |m: u64| if on { m | bit } else { m & !bit };
        let span = u32::from(rule.dport_hi) - u32::from(rule.dport_lo) + 1;
        if span > PREFILTER_MAX_PORTS {
            self.wildcard = set(self.wildcard);
            let mut w: Array<&mut MapData, u64> =
                Array::try_from(self.bpf.map_mut("DST_NET_WILDCARD").expect("map in object"))
                    .map_err(map_err("DST_NET_WILDCARD"))?;
            return w
                .set(0, self.wildcard, 0)
                .map_err(map_err("DST_NET_WILDCARD"));
        }
        for port in rule.dport_lo..=rule.dport_hi {
            let m = set(self.port_masks.get(&port).copied().unwrap_or(0));
            if m == 0 {
                self.port_masks.remove(&port);
            } else {
                self.port_masks.insert(port, m);
            }
            let mut pm: Array<&mut MapData, u64> =
                Array::try_from(self.bpf.map_mut("DST_NET_PORTMASK").expect("map in object"))
                    .map_err(map_err("DST_NET_PORTMASK"))?;
            pm.set(u32::from(port), m, 0)
                .map_err(map_err("DST_NET_PORTMASK"))?;
        }
        Ok(())
    }

    fn write_slot(&mut self, slot: u32, rule: &NetRule) -> Result<(), NetError> {
        self.index(slot, rule, true)?;
        // Fresh counters and decision stream for the new fault, then the rule itself (last, so
        // the kernel never sees a live rule with stale counters). A recycled slot is already
        // zero: the activation is then two map updates.
        if !self.clean[slot as usize] {
            self.zero_slot(slot)?;
        }
        self.clean[slot as usize] = false;
        if rule.flags & dst_common::net::RULE_EDT != 0 {
            self.hist_dirty[slot as usize] = true;
        }
        self.hist_shift[slot as usize] = rule.hist_shift;
        self.write_rule(slot, rule)
    }

    /// Zeroes the counters, decision ordinal, EDT pacing and EDT histogram of `slot`.
    fn zero_slot(&mut self, slot: u32) -> Result<(), NetError> {
        let ncpu = self.ncpu;
        let per_cpu_err = |map: &'static str| {
            move |e: std::io::Error| NetError::Map {
                map,
                source: aya::maps::MapError::IoError(e),
            }
        };
        let mut counters: PerCpuArray<&mut MapData, NetCounters> =
            PerCpuArray::try_from(self.bpf.map_mut("DST_NET_COUNTERS").expect("map in object"))
                .map_err(map_err("DST_NET_COUNTERS"))?;
        counters
            .set(
                slot,
                aya::maps::PerCpuValues::try_from(vec![NetCounters::default(); ncpu])
                    .map_err(per_cpu_err("DST_NET_COUNTERS"))?,
                0,
            )
            .map_err(map_err("DST_NET_COUNTERS"))?;
        let mut seq: Array<&mut MapData, RuleSeq> =
            Array::try_from(self.bpf.map_mut("DST_NET_SEQ").expect("map in object"))
                .map_err(map_err("DST_NET_SEQ"))?;
        seq.set(slot, RuleSeq::default(), 0)
            .map_err(map_err("DST_NET_SEQ"))?;
        let mut pace: Array<&mut MapData, u64> =
            Array::try_from(self.bpf.map_mut("DST_NET_EDT_PACE").expect("map in object"))
                .map_err(map_err("DST_NET_EDT_PACE"))?;
        pace.set(slot, 0, 0).map_err(map_err("DST_NET_EDT_PACE"))?;
        if self.hist_dirty[slot as usize] {
            let mut hist: PerCpuArray<&mut MapData, u64> =
                PerCpuArray::try_from(self.bpf.map_mut("DST_NET_EDT_HIST").expect("map in object"))
                    .map_err(map_err("DST_NET_EDT_HIST"))?;
            for b in 0..EDT_HIST_BUCKETS {
                let zero = aya::maps::PerCpuValues::try_from(vec![0u64; ncpu])
                    .map_err(per_cpu_err("DST_NET_EDT_HIST"))?;
                hist.set(slot * EDT_HIST_BUCKETS + b, zero, 0)
                    .map_err(map_err("DST_NET_EDT_HIST"))?;
            }
            self.hist_dirty[slot as usize] = false;
        }
        Ok(())
    }

    /// Zeroes the counters of a cleared `slot` now, so that the next fault placed there
    /// activates with two map updates instead of five or more. The slot's evidence is gone
    /// afterwards: read it first ([`NetEngine::evidence`], [`NetEngine::edt_histogram`]).
    pub fn recycle(&mut self, slot: u32) -> Result<(), NetError> {
        let i = slot as usize;
        if i >= self.used.len() || self.used[i] {
            return Err(NetError::NoSuchSlot(slot));
        }
        if !self.clean[i] {
            self.zero_slot(slot)?;
            self.clean[i] = true;
        }
        Ok(())
    }

    fn write_rule(&mut self, slot: u32, rule: &NetRule) -> Result<(), NetError> {
        let mut rules: Array<&mut MapData, NetRule> =
            Array::try_from(self.bpf.map_mut("DST_NET_RULES").expect("map in object"))
                .map_err(map_err("DST_NET_RULES"))?;
        rules.set(slot, rule, 0).map_err(map_err("DST_NET_RULES"))
    }

    fn set_limit(&mut self, limit: u32) -> Result<(), NetError> {
        if limit == self.limit {
            return Ok(());
        }
        let mut cfg: Array<&mut MapData, u32> =
            Array::try_from(self.bpf.map_mut("DST_NET_CONFIG").expect("map in object"))
                .map_err(map_err("DST_NET_CONFIG"))?;
        cfg.set(0, limit, 0).map_err(map_err("DST_NET_CONFIG"))?;
        self.limit = limit;
        Ok(())
    }

    /// Deactivates the fault in `slot`; its counters stay readable until the slot is reused.
    pub fn clear(&mut self, slot: u32) -> Result<(), NetError> {
        if !self.used.get(slot as usize).copied().unwrap_or(false) {
            return Err(NetError::NoSuchSlot(slot));
        }
        let old = self.rule(slot)?;
        self.write_rule(slot, &NetRule::default())?;
        self.used[slot as usize] = false;
        self.index(slot, &old, false)?;
        for line in &self.delay_lines {
            delayline::retire(line, slot);
        }
        Ok(())
    }

    /// The rule currently stored in `slot`.
    pub fn rule(&self, slot: u32) -> Result<NetRule, NetError> {
        let rules: Array<&MapData, NetRule> =
            Array::try_from(self.bpf.map("DST_NET_RULES").expect("map in object"))
                .map_err(map_err("DST_NET_RULES"))?;
        rules.get(&slot, 0).map_err(map_err("DST_NET_RULES"))
    }

    /// The delays EDT gave the packets of `slot` (None when it delayed none).
    pub fn edt_histogram(&self, slot: u32) -> Result<Option<Histogram>, NetError> {
        let hist: PerCpuArray<&MapData, u64> =
            PerCpuArray::try_from(self.bpf.map("DST_NET_EDT_HIST").expect("map in object"))
                .map_err(map_err("DST_NET_EDT_HIST"))?;
        let mut counts = vec![0u64; EDT_HIST_BUCKETS as usize];
        for (b, c) in counts.iter_mut().enumerate() {
            let v = hist
                .get(&(slot * EDT_HIST_BUCKETS + b as u32), 0)
                .map_err(map_err("DST_NET_EDT_HIST"))?;
            *c = v.iter().sum();
        }
        let width = 1u64 << self.hist_shift.get(slot as usize).copied().unwrap_or(0);
        Ok(Histogram::from_buckets(&counts, width))
    }

    /// Current counters of `slot`, summed over CPUs.
    pub fn evidence(&self, slot: u32) -> Result<RuleEvidence, NetError> {
        let counters: PerCpuArray<&MapData, NetCounters> =
            PerCpuArray::try_from(self.bpf.map("DST_NET_COUNTERS").expect("map in object"))
                .map_err(map_err("DST_NET_COUNTERS"))?;
        let values = counters
            .get(&slot, 0)
            .map_err(map_err("DST_NET_COUNTERS"))?;
        let seq: Array<&MapData, RuleSeq> =
            Array::try_from(self.bpf.map("DST_NET_SEQ").expect("map in object"))
                .map_err(map_err("DST_NET_SEQ"))?;
        let decisions = seq.get(&slot, 0).map_err(map_err("DST_NET_SEQ"))?.next;
        Ok(RuleEvidence::sum(&values, decisions))
    }
}

impl Drop for NetEngine {
    /// Detaches this engine's clsact filters inside the namespace each was attached in (aya
    /// would detach them by interface index in whatever namespace drops the engine).
    fn drop(&mut self) {
        for (ns, name, link) in std::mem::take(&mut self.clsact_links) {
            let Ok(p) = prog::<SchedClassifier>(&mut self.bpf, name) else {
                continue;
            };
            match ns.run(|| p.detach(link)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("detaching {name}: {e}"),
                Err(e) => tracing::warn!("detaching {name}: {e}"),
            }
        }
    }
}

/// Removes the clsact filters a dead dst left on `iface` (best effort: a failure is logged,
/// the attach goes on; the leftovers are inert anyway).
fn sweep_stale(iface: &str, ingress: bool) {
    let Ok(index) = nix::net::if_::if_nametoindex(iface) else {
        return;
    };
    match super::sweep::sweep_lapsed(index, ingress) {
        Ok(removed) if !removed.is_empty() => {
            tracing::info!("{iface}: removed clsact filters of a dead dst: {removed:?}")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("{iface}: {e}; filters of a dead dst may stay (inert)"),
    }
}

/// Program types that load without extra arguments.
trait Loadable {
    fn load_once(&mut self) -> Result<(), aya::programs::ProgramError>;
}

impl Loadable for SchedClassifier {
    fn load_once(&mut self) -> Result<(), aya::programs::ProgramError> {
        if self.fd().is_ok() {
            return Ok(());
        }
        self.load()
    }
}

impl Loadable for CgroupSkb {
    fn load_once(&mut self) -> Result<(), aya::programs::ProgramError> {
        if self.fd().is_ok() {
            return Ok(());
        }
        self.load()
    }
}

/// The named program, loaded into the kernel (verified on first use).
fn prog<'a, T: Loadable>(bpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, NetError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    let p: &mut T = prog_unloaded(bpf, name)?;
    p.load_once().map_err(|source| NetError::Program {
        what: format!("loading {name}"),
        source,
    })?;
    Ok(p)
}

fn prog_unloaded<'a, T>(bpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, NetError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    let p = bpf.program_mut(name).ok_or_else(|| NetError::Program {
        what: format!("program {name} missing from the dst-net object (rebuild dst)"),
        source: aya::programs::ProgramError::NotLoaded,
    })?;
    p.try_into().map_err(|source| NetError::Program {
        what: format!("program {name} has the wrong type"),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_sums_cpus_and_takes_extreme_times() {
        let a = NetCounters {
            matched: 3,
            applied: 2,
            passed: 1,
            first_applied_ns: 50,
            last_applied_ns: 70,
            ..Default::default()
        };
        let b = NetCounters {
            matched: 4,
            applied: 4,
            first_applied_ns: 40,
            last_applied_ns: 60,
            ..Default::default()
        };
        let idle = NetCounters::default();
        let e = RuleEvidence::sum(&[a, idle, b], 7);
        assert_eq!((e.matched, e.applied, e.passed, e.decisions), (7, 6, 1, 7));
        assert_eq!(
            (e.first_applied_ns, e.last_applied_ns),
            (Some(40), Some(70))
        );
        assert_eq!(RuleEvidence::sum(&[idle], 0).first_applied_ns, None);
    }
}
