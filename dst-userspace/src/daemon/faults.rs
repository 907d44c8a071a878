//! The fault table: owns the network engine and the syscall injections behind one lock,
//! resolves targets, attaches programs once per (namespace, device, direction) or
//! cgroup, applies fault sets (network and syscall faults together) atomically and keeps every
//! fault's record and evidence.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    path::PathBuf,
    sync::{Arc, Mutex},
};

use serde::Serialize;

use super::{
    delay::{DelayDevices, DelayEvidence, DelayUse},
    events::{Bus, Event},
    sysfaults::{SysFaultView, SysTable},
};
use crate::{
    cgroup::Cgroup,
    fault::{FaultFileError, FaultSet, NetFaultSpec, net::kind_name},
    net::{
        Direction, NetEngine, NetFault, RuleEvidence,
        backend::NetBackend,
        engine::TcMechanism,
        events::{KernelNetEvent, NetEventKind, NetEvents},
        spec::monotonic_ns,
    },
    netns::NetNs,
};

/// Why a fault operation was refused; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// The body is not a valid fault set (HTTP 400).
    #[error(transparent)]
    Invalid(#[from] FaultFileError),
    /// The set is valid but this host cannot carry it (HTTP 422).
    #[error("{field}: {problem}")]
    Refused {
        /// Field the refusal is about (`net[0].target.dev`, `net[0].action.kind`, or `net`).
        field: String,
        /// Why, and what to do.
        problem: String,
    },
    /// The target lies outside this daemon's node (HTTP 403).
    #[error("{field}: {problem}")]
    Forbidden {
        /// Field of the target.
        field: String,
        /// Why, and what to do.
        problem: String,
    },
    /// A fault with this id is already active (HTTP 409).
    #[error("{field}: a fault with id {id:?} is already active; clear it or choose another id")]
    Conflict {
        /// The id field.
        field: String,
        /// The id.
        id: String,
    },
    /// No such fault (HTTP 404).
    #[error("no fault with id {0:?}; `dst fault list` shows the faults")]
    NotFound(String),
    /// The eBPF programs could not be loaded at start (HTTP 503).
    #[error(
        "the network engine is not available: {0}; the daemon needs root and a kernel \
         `dst probe` accepts"
    )]
    Unavailable(String),
    /// A call on the fault table panicked and left it unusable (HTTP 503).
    #[error("the fault engine stopped after an internal error; restart the daemon")]
    Stopped,
}

/// Lifecycle of a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultState {
    /// Installed in the kernel.
    Active,
    /// Cleared by a client or at shutdown.
    Cleared,
    /// Past its kernel-enforced expiry.
    Expired,
}

/// Any fault as the API reports it: a network or a syscall fault (see their `kind`).
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum AnyView {
    /// A network fault.
    Net(FaultView),
    /// A syscall fault.
    Sys(SysFaultView),
}

/// A network fault as the API reports it.
#[derive(Clone, Debug, Serialize)]
pub struct FaultView {
    /// Id.
    pub id: String,
    /// Always `net` (syscall faults say `sys`).
    pub kind: &'static str,
    /// State.
    pub state: FaultState,
    /// The spec as applied.
    pub spec: NetFaultSpec,
    /// Seed actually used (recorded even when the spec left it out).
    pub seed: u64,
    /// Mechanism carrying it: `tcx`, `clsact`, `cgroup_skb`.
    pub backend: &'static str,
    /// Engine slot.
    pub slot: u32,
    /// CLOCK_MONOTONIC ns of application.
    pub applied_at: u64,
    /// Live from (0 = immediately).
    pub not_before: u64,
    /// Kernel-enforced expiry.
    pub expires: u64,
    /// When it was cleared or noticed expired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<u64>,
    /// Counters (live while the slot is not reused, frozen afterwards).
    pub evidence: RuleEvidence,
    /// `applied > 0`: the fault really happened.
    pub landed: bool,
    /// Delay, reorder and rate faults: the mechanism holding the packets (`edt-fq` or
    /// `delay-line`) and the delays it really gave them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<Box<DelayEvidence>>,
}

struct Record {
    view: FaultView,
    /// Counters snapshotted before the slot could be reused.
    frozen: Option<RuleEvidence>,
    landed_reported: bool,
    /// The delay machinery the fault relies on (delay, reorder, rate).
    delay: Option<DelayUse>,
    /// Its delay evidence, snapshotted when the fault ended.
    frozen_delay: Option<DelayEvidence>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Hook {
    Tc(Option<String>, String, bool),
    Cgroup(PathBuf, bool),
}

/// Most ended faults kept for `GET /v1/faults?all=true`.
const KEEP_ENDED: usize = 1024;

/// The state owned by the engine thread.
pub struct FaultTable {
    engine: Result<NetEngine, String>,
    hooks: HashMap<Hook, &'static str>,
    /// Interface index of every device carrying the tc programs → (netns, dev). Kernel rules
    /// match on ifindex alone, so two devices with one index in different namespaces must
    /// never both carry the programs.
    tc_devices: HashMap<u32, (Option<String>, String)>,
    faults: BTreeMap<String, Record>,
    /// Which fault's counters each slot holds.
    slot_owner: HashMap<u32, String>,
    next_id: u64,
    bus: Bus,
    /// Syscall faults.
    sys: SysTable,
    /// Cross-node transactions by id.
    txns: HashMap<String, Txn>,
    /// fq / ifb / delay lines of the devices carrying delay, reorder and rate faults.
    delay: DelayDevices,
}

/// A transaction of the two-phase apply.
struct Txn {
    /// The prepared set, until committed.
    set: Option<FaultSet>,
    /// Ids installed by the commit.
    committed: Vec<String>,
    /// CLOCK_MONOTONIC ns after which it is forgotten (prepared: never committed).
    deadline: u64,
}

fn dirs(d: Direction) -> &'static [bool] {
    // `true` = ingress.
    match d {
        Direction::Ingress => &[true],
        Direction::Egress => &[false],
        Direction::Both => &[true, false],
    }
}

fn refused(field: String, problem: impl std::fmt::Display) -> FaultError {
    FaultError::Refused {
        field,
        problem: problem.to_string(),
    }
}

impl FaultTable {
    /// A table over `engine` (or the reason it could not be loaded).
    pub fn new(engine: Result<NetEngine, String>, bus: Bus) -> Self {
        Self {
            engine,
            hooks: HashMap::new(),
            tc_devices: HashMap::new(),
            faults: BTreeMap::new(),
            slot_owner: HashMap::new(),
            next_id: 1,
            bus,
            sys: SysTable::default(),
            txns: HashMap::new(),
            delay: DelayDevices::default(),
        }
    }

    /// Whether the engine loaded, or why not.
    pub fn engine_status(&self) -> Result<(), String> {
        self.engine.as_ref().map(|_| ()).map_err(Clone::clone)
    }

    fn engine(&mut self) -> Result<&mut NetEngine, FaultError> {
        self.engine
            .as_mut()
            .map_err(|e| FaultError::Unavailable(e.clone()))
    }

    fn attach(
        &mut self,
        at: &str,
        spec: &NetFaultSpec,
        ifindex: Option<u32>,
    ) -> Result<&'static str, FaultError> {
        let t = &spec.target;
        let mut backend = "cgroup_skb";
        if let Some(dev) = &t.dev {
            for &ingress in dirs(spec.direction) {
                let key = Hook::Tc(t.netns.clone(), dev.clone(), ingress);
                if let Some(b) = self.hooks.get(&key) {
                    backend = b;
                    continue;
                }
                let dir = if ingress {
                    Direction::Ingress
                } else {
                    Direction::Egress
                };
                let engine = self.engine()?;
                let mech = match &t.netns {
                    Some(ns) => {
                        let ns = NetNs::open(ns)
                            .map_err(|e| refused(format!("{at}.target.netns"), e))?;
                        ns.run(|| engine.attach_tc(dev, dir))
                            .map_err(|e| refused(format!("{at}.target.netns"), e))?
                    }
                    None => engine.attach_tc(dev, dir),
                }
                .map_err(|e| refused(format!("{at}.target.dev"), e))?;
                let name = match mech {
                    TcMechanism::Tcx => "tcx",
                    TcMechanism::Clsact => "clsact",
                };
                self.hooks.insert(key, name);
                if let Some(index) = ifindex {
                    self.tc_devices
                        .insert(index, (t.netns.clone(), dev.clone()));
                }
                backend = name;
            }
        }
        if let Some(cg) = &t.cgroup {
            let cgroup = Cgroup::open(cg).map_err(|e| refused(format!("{at}.target.cgroup"), e))?;
            for &ingress in dirs(spec.direction) {
                let key = Hook::Cgroup(cgroup.path().to_path_buf(), ingress);
                if self.hooks.contains_key(&key) {
                    continue;
                }
                let dir = if ingress {
                    Direction::Ingress
                } else {
                    Direction::Egress
                };
                self.engine()?
                    .attach_cgroup(&cgroup, dir)
                    .map_err(|e| refused(format!("{at}.target.cgroup"), e))?;
                self.hooks.insert(key, "cgroup_skb");
            }
        }
        Ok(backend)
    }

    fn resolve(&self, at: &str, spec: &NetFaultSpec, f: &mut NetFault) -> Result<(), FaultError> {
        let t = &spec.target;
        if let Some(dev) = &t.dev {
            // A device already carrying the programs keeps its index while they stay attached
            // (its links die with it): no namespace hop on the activation path.
            let key = (t.netns.clone(), dev.clone());
            f.ifindex = match self.tc_devices.iter().find(|(_, v)| **v == key) {
                Some((&index, _)) => index,
                None => lookup_ifindex(at, t.netns.as_deref(), dev)?,
            };
        }
        if let Some(cg) = &t.cgroup {
            // The programs attached to the cgroup see only its sockets, and today's dst-net
            // passes no cgroup id to the rule match: the rule stays `cgroup_id = 0` and
            // `check_blast_radius` keeps one cgroup per daemon so that is exact.
            Cgroup::open(cg).map_err(|e| refused(format!("{at}.target.cgroup"), e))?;
        }
        Ok(())
    }

    /// Refuses what the kernel rules could not keep to its target: a device whose ifindex
    /// another namespace's device already uses, and mixing cgroup-only faults (which match on
    /// every device carrying the tc programs) with device faults.
    fn check_blast_radius(
        &self,
        at: &str,
        spec: &NetFaultSpec,
        fault: &NetFault,
        prepared: &[Prepared],
    ) -> Result<(), FaultError> {
        let t = &spec.target;
        if t.dev.is_some() && t.cgroup.is_some() {
            return Err(refused(
                format!("{at}.target"),
                "a device and a cgroup together are not carried by this build (the tc program \
                 cannot tell the cgroup's packets apart): give either dev or cgroup",
            ));
        }
        if let Some(cg) = &t.cgroup {
            let path = Cgroup::open(cg)
                .map_err(|e| refused(format!("{at}.target.cgroup"), e))?
                .path()
                .to_path_buf();
            let other = self
                .hooks
                .keys()
                .filter_map(|h| match h {
                    Hook::Cgroup(p, _) if *p != path => Some(p.clone()),
                    _ => None,
                })
                .chain(
                    prepared
                        .iter()
                        .filter_map(|p| p.cgroup.clone())
                        .filter(|p| *p != path),
                )
                .next();
            if let Some(other) = other {
                return Err(refused(
                    format!("{at}.target.cgroup"),
                    format!(
                        "this daemon already carries cgroup faults for {}; one cgroup per daemon \
                         (rules do not match by cgroup id in this build)",
                        other.display()
                    ),
                ));
            }
        }
        let cgroup_only_active = self
            .faults
            .values()
            .any(|r| r.view.state == FaultState::Active && r.view.spec.target.dev.is_none())
            || prepared.iter().any(|p| p.fault.ifindex == 0);
        let devices_pending = prepared.iter().any(|p| p.fault.ifindex != 0);
        match &t.dev {
            Some(dev) => {
                if let Some((ns, other)) = self.tc_devices.get(&fault.ifindex)
                    && (ns != &t.netns || other != dev)
                {
                    return Err(refused(
                        format!("{at}.target.dev"),
                        format!(
                            "{dev} has ifindex {} like {other} in netns {}, which already carries                              dst's programs; kernel rules match by ifindex, so the fault could                              act on both: use a daemon per namespace or renumber the device",
                            fault.ifindex,
                            ns.as_deref().unwrap_or("(the daemon's)")
                        ),
                    ));
                }
                if cgroup_only_active {
                    return Err(refused(
                        format!("{at}.target.dev"),
                        "a cgroup-only fault is active and would also act on this device;                          clear it first or give that fault a dev",
                    ));
                }
            }
            None if !self.tc_devices.is_empty() || devices_pending => {
                return Err(refused(
                    format!("{at}.target"),
                    "a cgroup-only fault would also act on every device that carries dst's tc                      programs in this daemon; give target.dev too",
                ));
            }
            None => {}
        }
        Ok(())
    }

    fn fresh_id(&mut self) -> String {
        loop {
            let id = format!("f{}", self.next_id);
            self.next_id += 1;
            if !self.faults.contains_key(&id) && !self.sys.contains(&id) {
                return id;
            }
        }
    }

    /// The id of the fault at `at`, refused when it is active or repeated within the set.
    fn claim_id(
        &mut self,
        at: &str,
        given: Option<&String>,
        ids: &mut HashSet<String>,
    ) -> Result<String, FaultError> {
        let id = match given {
            Some(id) => id.clone(),
            None => self.fresh_id(),
        };
        let active = self
            .faults
            .get(&id)
            .is_some_and(|r| r.view.state == FaultState::Active)
            || self.sys.is_active(&id);
        if active || !ids.insert(id.clone()) {
            return Err(FaultError::Conflict {
                field: format!("{at}.id"),
                id,
            });
        }
        Ok(id)
    }

    /// Checks and resolves the network faults of `set` against this host and the active
    /// faults, without touching the kernel; claims their ids.
    fn plan_net(
        &mut self,
        set: &FaultSet,
        now: u64,
        ids: &mut HashSet<String>,
    ) -> Result<Vec<Prepared>, FaultError> {
        let mut prepared: Vec<Prepared> = Vec::new();
        for (i, spec) in set.net.iter().enumerate() {
            let at = format!("net[{i}]");
            let id = self.claim_id(&at, spec.id.as_ref(), ids)?;
            let seed = spec.seed.unwrap_or_else(random_seed);
            let mut fault = spec.to_engine_fault(&at, seed).map_err(|e| match e {
                FaultFileError::Invalid { field, problem } => {
                    FaultError::Refused { field, problem }
                }
                other => FaultError::Invalid(other),
            })?;
            let delay = if fault.action.needs_delay_line() {
                Some(
                    self.delay
                        .choose(&fault, spec.direction)
                        .map_err(|e| refused(format!("{at}.action.kind"), e))?,
                )
            } else {
                None
            };
            self.resolve(&at, spec, &mut fault)?;
            self.check_blast_radius(&at, spec, &fault, &prepared)?;
            let (not_before, expires) = spec.schedule.window(now);
            let cgroup = match &spec.target.cgroup {
                Some(cg) => Some(
                    Cgroup::open(cg)
                        .map_err(|e| refused(format!("{at}.target.cgroup"), e))?
                        .path()
                        .to_path_buf(),
                ),
                None => None,
            };
            prepared.push(Prepared {
                at,
                id,
                seed,
                fault,
                not_before,
                expires,
                cgroup,
                delay,
            });
        }
        Ok(prepared)
    }

    /// First phase of a cross-node apply: validates `set`, resolves its targets, loads and
    /// attaches the network programs and checks the syscall faults, but installs no rule. The
    /// set waits under `txn` until [`FaultTable::commit`], [`FaultTable::abort`] or `ttl`.
    pub fn prepare(
        &mut self,
        txn: String,
        mut set: FaultSet,
        ttl: std::time::Duration,
    ) -> Result<Vec<String>, FaultError> {
        if self.txns.contains_key(&txn) {
            return Err(FaultError::Conflict {
                field: "txn".into(),
                id: txn,
            });
        }
        set.validate()?;
        if !set.net.is_empty() {
            self.engine()?;
        }
        let now = monotonic_ns();
        let mut ids = HashSet::new();
        let prepared = self.plan_net(&set, now, &mut ids)?;
        let mut sys_ids = Vec::new();
        for (i, spec) in set.sys.iter().enumerate() {
            let at = format!("sys[{i}]");
            let id = self.claim_id(&at, spec.id.as_ref(), &mut ids)?;
            let seed = spec.seed.unwrap_or_else(random_seed);
            // Loaded and checked, then dropped: the commit prepares them again.
            drop(self.sys.prepare(at, id.clone(), spec, seed, now)?);
            sys_ids.push(id);
        }
        for (i, p) in prepared.iter().enumerate() {
            let ifindex = (p.fault.ifindex != 0).then_some(p.fault.ifindex);
            self.attach(&p.at, &set.net[i], ifindex)?;
        }
        let net_ids: Vec<String> = prepared.iter().map(|p| p.id.clone()).collect();
        for (spec, id) in set.net.iter_mut().zip(&net_ids) {
            spec.id = Some(id.clone());
        }
        for (spec, id) in set.sys.iter_mut().zip(&sys_ids) {
            spec.id = Some(id.clone());
        }
        let deadline = now.saturating_add(ttl.as_nanos() as u64);
        self.txns.insert(
            txn,
            Txn {
                set: Some(set),
                committed: Vec::new(),
                deadline,
            },
        );
        Ok(net_ids.into_iter().chain(sys_ids).collect())
    }

    /// Second phase: installs the prepared set atomically.
    pub fn commit(&mut self, txn: &str) -> Result<Vec<AnyView>, FaultError> {
        let set = match self.txns.get_mut(txn) {
            Some(t) => t.set.take().ok_or_else(|| FaultError::Conflict {
                field: "txn".into(),
                id: txn.to_string(),
            })?,
            None => return Err(FaultError::NotFound(format!("transaction {txn}"))),
        };
        let views = self.apply(set);
        match (&views, self.txns.get_mut(txn)) {
            (Ok(v), Some(t)) => {
                t.committed = v
                    .iter()
                    .map(|v| match v {
                        AnyView::Net(n) => n.id.clone(),
                        AnyView::Sys(s) => s.id.clone(),
                    })
                    .collect();
                // Kept (for abort = rollback) at most as long as the daemon's longest expiry.
                t.deadline = monotonic_ns()
                    .saturating_add(crate::fault::net::DEFAULT_EXPIRY.as_nanos() as u64);
            }
            _ => {
                self.txns.remove(txn);
            }
        }
        views
    }

    /// Drops a prepared transaction, or clears the faults a committed one installed (the
    /// coordinator's rollback when another node failed). Unknown transactions are fine: the
    /// answer lists what was cleared.
    pub fn abort(&mut self, txn: &str) -> Vec<AnyView> {
        let Some(t) = self.txns.remove(txn) else {
            return Vec::new();
        };
        t.committed
            .iter()
            .filter_map(|id| self.clear(id).ok())
            .collect()
    }

    /// Transactions still waiting for commit or abort, with their fault ids.
    pub fn pending(&self) -> Vec<(String, Vec<String>)> {
        self.txns
            .iter()
            .filter_map(|(k, t)| {
                t.set.as_ref().map(|s| {
                    let net = s.net.iter().filter_map(|f| f.id.clone());
                    (
                        k.clone(),
                        net.chain(s.sys.iter().filter_map(|f| f.id.clone()))
                            .collect(),
                    )
                })
            })
            .collect()
    }

    /// Whether applying `set` is only map updates: network faults on devices that already
    /// carry the programs in every direction they need, no delay machinery, no syscall faults.
    pub fn apply_is_quick(&self, set: &FaultSet) -> bool {
        set.sys.is_empty()
            && set.net.iter().all(|spec| {
                let t = &spec.target;
                let needs_delay = spec.action.holds_packets();
                match (&t.dev, &t.cgroup, &t.pod, &t.container) {
                    (Some(dev), None, None, None) if !needs_delay => {
                        dirs(spec.direction).iter().all(|&ingress| {
                            self.hooks.contains_key(&Hook::Tc(
                                t.netns.clone(),
                                dev.clone(),
                                ingress,
                            ))
                        })
                    }
                    _ => false,
                }
            })
    }

    /// Whether clearing `id` is only map updates (an active network fault without delay
    /// machinery to release).
    pub fn clear_is_quick(&self, id: &str) -> bool {
        self.faults
            .get(id)
            .is_some_and(|r| r.view.state == FaultState::Active && r.delay.is_none())
    }

    /// Applies every fault of `set` (network and syscall) or none.
    pub fn apply(&mut self, set: FaultSet) -> Result<Vec<AnyView>, FaultError> {
        set.validate()?;
        if !set.net.is_empty() {
            self.engine()?;
        }
        let now = monotonic_ns();
        let mut ids = HashSet::new();
        let mut prepared = self.plan_net(&set, now, &mut ids)?;
        let mut sys_prepared = Vec::new();
        for (i, spec) in set.sys.iter().enumerate() {
            let at = format!("sys[{i}]");
            let id = self.claim_id(&at, spec.id.as_ref(), &mut ids)?;
            let seed = spec.seed.unwrap_or_else(random_seed);
            sys_prepared.push(self.sys.prepare(at, id, spec, seed, now)?);
        }
        if prepared.is_empty() {
            let installed = self.sys.install(sys_prepared)?;
            return Ok(self
                .sys
                .commit(installed, now, &self.bus)
                .into_iter()
                .map(AnyView::Sys)
                .collect());
        }
        // Programs first (harmless without rules), then the syscall faults (each its own
        // programs; dropped again if the network rules are refused), then every network rule
        // in one atomic step.
        let mut backends = Vec::new();
        for (i, p) in prepared.iter().enumerate() {
            let ifindex = (p.fault.ifindex != 0).then_some(p.fault.ifindex);
            backends.push(self.attach(&p.at, &set.net[i], ifindex)?);
        }
        // Delay machinery next (fq, ifb, delay line): released again on any refusal below.
        let mut uses = Vec::new();
        for (i, p) in prepared.iter_mut().enumerate() {
            let u = match p.delay {
                Some(backend) => match self.ensure_delay(&p.at, &set.net[i], backend, &mut p.fault)
                {
                    Ok(u) => Some(u),
                    Err(e) => {
                        self.release_delay();
                        return Err(e);
                    }
                },
                None => None,
            };
            uses.push(u);
        }
        let result = self.install(set, prepared, sys_prepared, backends, uses, now);
        if result.is_err() {
            self.release_delay();
        }
        result
    }

    /// Creates the delay machinery `backend` needs for the fault at `at`.
    fn ensure_delay(
        &mut self,
        at: &str,
        spec: &NetFaultSpec,
        backend: NetBackend,
        fault: &mut NetFault,
    ) -> Result<DelayUse, FaultError> {
        let dev = spec.target.dev.clone().ok_or_else(|| {
            refused(
                format!("{at}.target.dev"),
                "delay, reorder and rate need a device to hold packets on",
            )
        })?;
        let key = (spec.target.netns.clone(), dev);
        let engine = self
            .engine
            .as_mut()
            .map_err(|e| FaultError::Unavailable(e.clone()))?;
        self.delay
            .ensure(engine, &key, spec.direction, backend, fault)
            .map_err(|e| refused(format!("{at}.target.dev"), e))
    }

    /// Releases the delay machinery no active fault relies on.
    fn release_delay(&mut self) {
        let Ok(engine) = self.engine.as_mut() else {
            return;
        };
        let active: Vec<DelayUse> = self
            .faults
            .values()
            .filter(|r| r.view.state == FaultState::Active)
            .filter_map(|r| r.delay.clone())
            .collect();
        for r in self.delay.release_unused(engine, active.iter()) {
            tracing::info!(
                "fq removed from {}: root qdisc {}",
                r.dev,
                r.restored.as_deref().unwrap_or("unknown")
            );
        }
    }

    /// The kernel half of [`FaultTable::apply`]: syscall faults, then every network rule in
    /// one step.
    fn install(
        &mut self,
        set: FaultSet,
        prepared: Vec<Prepared>,
        sys_prepared: Vec<super::sysfaults::Prepared>,
        backends: Vec<&'static str>,
        uses: Vec<Option<DelayUse>>,
        now: u64,
    ) -> Result<Vec<AnyView>, FaultError> {
        // Freeze counters of ended faults whose slots the engine may now reuse (`end` froze
        // them already unless reading failed then; active faults keep their slots).
        let owners: Vec<(u32, String)> = self
            .slot_owner
            .iter()
            .filter(|(_, id)| {
                self.faults
                    .get(*id)
                    .is_some_and(|r| r.view.state != FaultState::Active && r.frozen.is_none())
            })
            .map(|(s, id)| (*s, id.clone()))
            .collect();
        for (slot, id) in owners {
            if let Ok(ev) = self.engine()?.evidence(slot)
                && let Some(r) = self.faults.get_mut(&id)
            {
                r.frozen = Some(ev);
            }
        }
        let rules: Vec<_> = prepared
            .iter()
            .map(|p| (p.fault.clone(), p.not_before, p.expires))
            .collect();
        let installed = self.sys.install(sys_prepared)?;
        let slots = self
            .engine()?
            .apply(&rules)
            .map_err(|e| refused("net".into(), e))?;
        let sys_views = self.sys.commit(installed, now, &self.bus);
        let mut views = Vec::new();
        for (((p, slot), (spec, backend)), delay) in prepared
            .into_iter()
            .zip(slots)
            .zip(set.net.into_iter().zip(backends))
            .zip(uses)
        {
            let id = p.id;
            let view = FaultView {
                id: id.clone(),
                kind: "net",
                state: FaultState::Active,
                spec,
                seed: p.seed,
                backend,
                slot,
                applied_at: now,
                not_before: p.not_before,
                expires: p.expires,
                ended_at: None,
                evidence: RuleEvidence::default(),
                landed: false,
                delay: None,
            };
            self.slot_owner.insert(slot, id.clone());
            self.faults.insert(
                id.clone(),
                Record {
                    view: view.clone(),
                    frozen: None,
                    landed_reported: false,
                    delay,
                    frozen_delay: None,
                },
            );
            // With live delay evidence (names the backend holding the packets).
            views.push(AnyView::Net(self.net_view(&id).unwrap_or(view)));
            self.bus.publish(Event::FaultApplied { id, time: now });
        }
        views.extend(sys_views.into_iter().map(AnyView::Sys));
        self.prune();
        Ok(views)
    }

    fn prune(&mut self) {
        let n = self
            .faults
            .values()
            .filter(|r| r.view.state != FaultState::Active)
            .count();
        if n <= KEEP_ENDED {
            return;
        }
        let ended: Vec<String> = self
            .faults
            .iter()
            .filter(|(_, r)| r.view.state != FaultState::Active)
            .map(|(id, _)| id.clone())
            .collect();
        if ended.len() > KEEP_ENDED {
            for id in &ended[..ended.len() - KEEP_ENDED] {
                self.faults.remove(id);
            }
        }
    }

    fn evidence_of(&self, id: &str, r: &Record) -> RuleEvidence {
        // An ended fault's counters were frozen when it ended (its slot may be zeroed since).
        let live = self.slot_owner.get(&r.view.slot).is_some_and(|o| o == id)
            && (r.view.state == FaultState::Active || r.frozen.is_none());
        match (&self.engine, live) {
            (Ok(engine), true) => engine
                .evidence(r.view.slot)
                .unwrap_or_else(|_| r.frozen.unwrap_or_default()),
            _ => r.frozen.unwrap_or_default(),
        }
    }

    fn view(&self, id: &str, r: &Record) -> FaultView {
        let mut v = r.view.clone();
        v.evidence = self.evidence_of(id, r);
        v.landed = v.evidence.applied > 0;
        v.delay = match (&r.frozen_delay, &r.delay, &self.engine) {
            (Some(frozen), ..) => Some(Box::new(frozen.clone())),
            (None, Some(u), Ok(engine)) => {
                Some(Box::new(self.delay.evidence(engine, u, r.view.slot)))
            }
            _ => None,
        };
        v
    }

    /// Every fault (active only unless `all`), with live evidence: network faults, then
    /// syscall faults.
    pub fn list(&self, all: bool) -> Vec<AnyView> {
        self.faults
            .iter()
            .filter(|(_, r)| all || r.view.state == FaultState::Active)
            .map(|(id, r)| AnyView::Net(self.view(id, r)))
            .chain(self.sys.list(all).into_iter().map(AnyView::Sys))
            .collect()
    }

    /// One fault with live evidence.
    pub fn get(&self, id: &str) -> Result<AnyView, FaultError> {
        if let Some(v) = self.sys.get(id) {
            return Ok(AnyView::Sys(v));
        }
        self.net_view(id).map(AnyView::Net)
    }

    fn net_view(&self, id: &str) -> Result<FaultView, FaultError> {
        let r = self
            .faults
            .get(id)
            .ok_or_else(|| FaultError::NotFound(id.to_string()))?;
        Ok(self.view(id, r))
    }

    fn end(&mut self, id: &str, state: FaultState) -> Result<AnyView, FaultError> {
        if self.sys.contains(id) {
            return self.sys.end(id, state, &self.bus).map(AnyView::Sys);
        }
        let slot = match self.faults.get(id) {
            Some(r) if r.view.state == FaultState::Active => r.view.slot,
            Some(_) => return self.get(id),
            None => return Err(FaultError::NotFound(id.to_string())),
        };
        let engine = self.engine()?;
        engine.clear(slot).map_err(|e| refused("id".into(), e))?;
        let ev = engine.evidence(slot).ok();
        let now = monotonic_ns();
        let delay = match (
            self.faults.get(id).and_then(|r| r.delay.as_ref()),
            &self.engine,
        ) {
            (Some(u), Ok(engine)) => Some(self.delay.evidence(engine, u, slot)),
            _ => None,
        };
        if let Some(r) = self.faults.get_mut(id) {
            r.view.state = state;
            r.view.ended_at = Some(now);
            r.frozen = ev.or(r.frozen);
            r.frozen_delay = delay;
        }
        if ev.is_some() {
            // Evidence frozen: zero the slot now, off the next activation's path.
            if let Ok(engine) = self.engine.as_mut()
                && let Err(e) = engine.recycle(slot)
            {
                tracing::warn!("slot {slot} not recycled ({e}); the next fault there zeroes it");
            }
        }
        if self.faults.get(id).is_some_and(|r| r.delay.is_some()) {
            self.release_delay();
        }
        let view = self.net_view(id)?;
        self.bus.publish(match state {
            FaultState::Expired => Event::FaultExpired {
                id: id.to_string(),
                time: now,
            },
            _ => Event::FaultCleared {
                id: id.to_string(),
                time: now,
                evidence: serde_json::to_value(view.evidence).unwrap_or_default(),
            },
        });
        Ok(AnyView::Net(view))
    }

    /// Clears one fault; its counters stay readable (and stop moving).
    pub fn clear(&mut self, id: &str) -> Result<AnyView, FaultError> {
        self.end(id, FaultState::Cleared)
    }

    /// Clears every active fault; returns their final views.
    pub fn clear_all(&mut self) -> Vec<AnyView> {
        let active: Vec<String> = self
            .faults
            .iter()
            .filter(|(_, r)| r.view.state == FaultState::Active)
            .map(|(id, _)| id.clone())
            .chain(self.sys.active_ids())
            .collect();
        active
            .iter()
            .filter_map(|id| match self.clear(id) {
                Ok(v) => Some(v),
                Err(e) => {
                    self.bus.publish(Event::BackendError {
                        message: format!("clearing {id}: {e}"),
                        time: monotonic_ns(),
                    });
                    None
                }
            })
            .collect()
    }

    /// Publishes `fault_landed` for faults that acted for the first time, forwards process
    /// events of syscall-fault targets and retires faults past their expiry. Called periodically.
    pub fn poll(&mut self) {
        self.sys.poll(&self.bus);
        let now = monotonic_ns();
        self.txns.retain(|_, t| now < t.deadline);
        let ids: Vec<String> = self
            .faults
            .iter()
            .filter(|(_, r)| r.view.state == FaultState::Active)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            let Some(r) = self.faults.get(&id) else {
                continue;
            };
            let ev = self.evidence_of(&id, r);
            let (expires, reported) = (r.view.expires, r.landed_reported);
            if !reported && ev.applied > 0 {
                if let Some(r) = self.faults.get_mut(&id) {
                    r.landed_reported = true;
                }
                self.bus.publish(Event::FaultLanded {
                    id: id.clone(),
                    time: ev.first_applied_ns.unwrap_or(now),
                    via: "counters",
                });
            }
            if expires != 0 && now >= expires {
                let _ = self.end(&id, FaultState::Expired);
            }
        }
    }
}

impl FaultTable {
    /// Acts on the kernel's ring-buffer events: `fault_landed` the moment a fault first acts
    /// (the earliest CPU's report wins; later CPUs' reports are duplicates), and a fault whose
    /// expiry the kernel enforced on a packet is retired at once.
    pub fn on_kernel_events(&mut self, events: &[KernelNetEvent]) {
        for e in events {
            let Some(id) = self.slot_owner.get(&e.slot).cloned() else {
                continue;
            };
            let Some(r) = self.faults.get_mut(&id) else {
                continue;
            };
            // The slot's current fault, not an earlier one whose event was still queued.
            if r.view.state != FaultState::Active
                || r.view.seed != e.seed
                || e.time_ns < r.view.applied_at
            {
                continue;
            }
            match e.kind {
                NetEventKind::Landed if !r.landed_reported => {
                    r.landed_reported = true;
                    self.bus.publish(Event::FaultLanded {
                        id,
                        time: e.time_ns,
                        via: "ring_buffer",
                    });
                }
                NetEventKind::Landed => {}
                NetEventKind::Expired => {
                    let _ = self.end(&id, FaultState::Expired);
                }
            }
        }
    }
}

/// Waits on the kernel's ring buffer and hands each batch of events to the table; ends when
/// the table is gone.
fn read_kernel_events(mut events: NetEvents, table: std::sync::Weak<Mutex<FaultTable>>) {
    loop {
        let batch = events.wait(std::time::Duration::from_secs(1));
        let Some(table) = table.upgrade() else { return };
        if batch.is_empty() {
            continue;
        }
        let Ok(mut t) = table.lock() else { return };
        t.on_kernel_events(&batch);
    }
}

/// The index of `dev` in `netns` (one ioctl, no netlink connection).
fn lookup_ifindex(at: &str, netns: Option<&str>, dev: &str) -> Result<u32, FaultError> {
    let lookup = || nix::net::if_::if_nametoindex(dev);
    match netns {
        Some(ns) => NetNs::open(ns)
            .map_err(|e| refused(format!("{at}.target.netns"), e))?
            .run(lookup)
            .map_err(|e| refused(format!("{at}.target.netns"), e))?,
        None => lookup(),
    }
    .map_err(|_| {
        refused(
            format!("{at}.target.dev"),
            format!(
                "no interface {dev:?} in network namespace {}; list them with `ip link`",
                netns.unwrap_or("(the daemon's)")
            ),
        )
    })
}

fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    // One getrandom(2) call (the kernel's CSPRNG, never blocks once booted).
    // SAFETY: writes at most `b.len()` bytes into `b`.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        return monotonic_ns();
    }
    u64::from_ne_bytes(b)
}

/// A network fault checked and resolved, waiting for the atomic apply.
struct Prepared {
    /// Field path (`net[2]`).
    at: String,
    id: String,
    seed: u64,
    fault: NetFault,
    not_before: u64,
    expires: u64,
    /// Canonical cgroup path of a cgroup target.
    cgroup: Option<PathBuf>,
    /// The delay backend chosen for a delay, reorder or rate fault.
    delay: Option<NetBackend>,
}

/// Shared handle to the [`FaultTable`]; clone freely.
///
/// Calls run on the caller's thread under a mutex: a fault activation is a handful of map
/// updates (tens of µs), and handing it to another thread and back cost two cross-CPU wake-ups
/// that took longer than the work (POST /v1/faults 211 µs median idle, 370-415 µs under the
/// bench's load, against ~20 µs of map updates).
#[derive(Clone)]
pub struct Faults {
    table: Arc<Mutex<FaultTable>>,
}

impl Faults {
    /// Loads the engine and starts the kernel event reader.
    pub fn start(bus: Bus) -> Self {
        let mut engine = NetEngine::load().map_err(|e| e.to_string());
        let events = engine.as_mut().ok().and_then(NetEngine::take_events);
        if let Err(e) = &engine {
            tracing::warn!("network engine unavailable: {e}");
            bus.publish(Event::BackendError {
                message: e.clone(),
                time: monotonic_ns(),
            });
        }
        let table = Arc::new(Mutex::new(FaultTable::new(engine, bus)));
        if let Some(events) = events {
            let weak = Arc::downgrade(&table);
            let spawned = std::thread::Builder::new()
                .name("dst-net-events".into())
                .spawn(move || read_kernel_events(events, weak));
            if let Err(e) = spawned {
                tracing::warn!("no kernel event reader ({e}); landing polled only");
            }
        }
        Self { table }
    }

    /// Runs `f` on the table and returns its result. On a multi-threaded runtime `f` runs on
    /// this worker after its other tasks moved to another one (`block_in_place`: an attach
    /// can spend most of a second in the verifier); elsewhere on the blocking pool.
    pub async fn call<R, F>(&self, f: F) -> Result<R, FaultError>
    where
        R: Send + 'static,
        F: FnOnce(&mut FaultTable) -> R + Send + 'static,
    {
        self.call_quick(false, f).await
    }

    /// Reads the table on this thread when it is free (a check, no kernel work); None while
    /// a call holds it.
    pub fn peek<R>(&self, f: impl FnOnce(&FaultTable) -> R) -> Option<R> {
        self.table.try_lock().ok().map(|t| f(&t))
    }

    /// Like [`Faults::call`], but with `quick` (the table can do it with a few map operations:
    /// programs attached, no delay machinery to build or tear down, see
    /// [`FaultTable::apply_is_quick`]) `f` runs right here: moving the worker's other tasks
    /// away wakes another thread, which on this 2-CPU machine costs more than the call.
    pub async fn call_quick<R, F>(&self, quick: bool, f: F) -> Result<R, FaultError>
    where
        R: Send + 'static,
        F: FnOnce(&mut FaultTable) -> R + Send + 'static,
    {
        if quick {
            match self.table.try_lock() {
                Ok(mut t) => return Ok(f(&mut t)),
                Err(std::sync::TryLockError::Poisoned(_)) => return Err(FaultError::Stopped),
                // Another call holds the table (maybe a slow one): wait the blocking way.
                Err(std::sync::TryLockError::WouldBlock) => {}
            }
        }
        let table = self.table.clone();
        let run = move || -> Result<R, FaultError> {
            let mut t = table.lock().map_err(|_| FaultError::Stopped)?;
            Ok(f(&mut t))
        };
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(run),
            Ok(_) => tokio::task::spawn_blocking(run)
                .await
                .map_err(|_| FaultError::Stopped)?,
            Err(_) => run(),
        }
    }
}

/// The label of a network fault's action for metrics.
pub fn kind_label(v: &FaultView) -> &'static str {
    kind_name(&v.spec.action)
}
