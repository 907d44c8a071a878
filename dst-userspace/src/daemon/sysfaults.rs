//! The daemon's syscall faults: each one a kernel injection on running processes (cgroup sock
//! hooks, or BPF LSM where the kernel has it) with its own programs and links, so dropping the
//! record — or the daemon dying — removes it. Records keep their final evidence after clearing.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{
    events::{Bus, Event},
    faults::{FaultError, FaultState},
};
use crate::{
    fault::{FaultFileError, SysFaultSpec},
    sys::{
        SysFault,
        engine::{Observation, ProcessEvent, SysEvidenceCounters, monotonic_ns},
        inject::{InjectError, Injection, inject_running_window, resolve_target},
        select::SysFacts,
    },
};

/// A syscall fault as the API reports it.
#[derive(Clone, Debug, Serialize)]
pub struct SysFaultView {
    /// Id.
    pub id: String,
    /// Always `sys` (network faults say `net`).
    pub kind: &'static str,
    /// State.
    pub state: FaultState,
    /// The spec as applied.
    pub spec: SysFaultSpec,
    /// Seed actually used.
    pub seed: u64,
    /// Mechanism carrying it (`cgroup sock hooks`, `BPF LSM`, …).
    pub backend: String,
    /// CLOCK_MONOTONIC ns of application.
    pub applied_at: u64,
    /// Live from (0 = immediately).
    pub not_before: u64,
    /// Kernel-enforced expiry.
    pub expires: u64,
    /// When it was cleared or noticed expired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<u64>,
    /// Counters: matched, injected, passed, expired.
    pub evidence: SysEvidenceCounters,
    /// What the targeted processes received from the class's syscalls, per pid and result.
    pub received: Vec<Observation>,
    /// At most how many calls the syscall-exit observer missed (see
    /// [`crate::sys::SysEngine::observer_misses`]): `received` may undercount by up to this
    /// many (0 before kernel 6.7).
    pub observer_missed: u64,
    /// At most how many calls the LSM or fmod_ret programs did not evaluate (see
    /// [`crate::sys::SysEngine::injector_misses`]).
    pub injector_missed: u64,
    /// `injected > 0`.
    pub landed: bool,
}

struct Record {
    view: SysFaultView,
    /// The live injection; `None` once ended (its links are gone).
    injection: Option<Injection>,
    landed_reported: bool,
}

/// A syscall fault checked and resolved, ready to install.
pub struct Prepared {
    at: String,
    id: String,
    seed: u64,
    spec: SysFaultSpec,
    fault: SysFault,
    not_before: u64,
    expires: u64,
}

/// A syscall fault installed in the kernel but not yet recorded (see [`SysTable::commit`]).
pub struct Installed(Prepared, Injection);

/// Every syscall fault the daemon holds.
#[derive(Default)]
pub struct SysTable {
    faults: BTreeMap<String, Record>,
    /// What the kernel can carry (asked from the probe once).
    facts: Option<SysFacts>,
}

fn refused(field: String, e: impl std::fmt::Display) -> FaultError {
    FaultError::Refused {
        field,
        problem: e.to_string(),
    }
}

impl SysTable {
    /// Whether `id` names an active syscall fault.
    pub fn is_active(&self, id: &str) -> bool {
        self.faults
            .get(id)
            .is_some_and(|r| r.view.state == FaultState::Active)
    }

    /// Whether `id` names any syscall fault, active or ended.
    pub fn contains(&self, id: &str) -> bool {
        self.faults.contains_key(id)
    }

    /// Resolves the target of `spec` (the process or cgroup must exist) without installing.
    pub fn prepare(
        &self,
        at: String,
        id: String,
        spec: &SysFaultSpec,
        seed: u64,
        now: u64,
    ) -> Result<Prepared, FaultError> {
        let class = spec.class(&at).map_err(FaultError::Invalid)?;
        let t = &spec.target;
        let target = resolve_target(t.pid, t.children, t.cgroup.as_deref(), t.comm.as_deref())
            .map_err(|e| {
                let which = if t.pid.is_some() {
                    "pid"
                } else if t.cgroup.is_some() {
                    "cgroup"
                } else {
                    "comm"
                };
                refused(format!("{at}.target.{which}"), e)
            })?;
        let (not_before, expires) = spec.schedule.window(now);
        let fault = spec.to_fault(target, class, seed, spec.schedule.duration);
        fault.validate().map_err(|e| {
            FaultError::Invalid(FaultFileError::Invalid {
                field: at.clone(),
                problem: e.to_string(),
            })
        })?;
        Ok(Prepared {
            at,
            id,
            seed,
            spec: spec.clone(),
            fault,
            not_before,
            expires,
        })
    }

    fn facts(&mut self) -> SysFacts {
        self.facts
            .get_or_insert_with(|| SysFacts::from_probe(&crate::probe::run()))
            .clone()
    }

    /// Installs every prepared fault, or none: on the first refusal the ones already installed
    /// are dropped (their links close) and the refusal is returned.
    pub fn install(&mut self, prepared: Vec<Prepared>) -> Result<Vec<Installed>, FaultError> {
        if prepared.is_empty() {
            // Without this, a network-only set paid for the syscall probe (~230 ms) on its first
            // apply.
            return Ok(Vec::new());
        }
        let facts = self.facts();
        let mut out = Vec::with_capacity(prepared.len());
        for p in prepared {
            match inject_running_window(&p.fault, &facts, p.not_before, p.expires) {
                Ok(inj) => out.push(Installed(p, inj)),
                Err(e) => {
                    let field = match &e {
                        InjectError::NoBackend { .. } => format!("{}.syscall", p.at),
                        InjectError::NoSuchProcess(_) => format!("{}.target.pid", p.at),
                        InjectError::Cgroup(_) => format!("{}.target.cgroup", p.at),
                        _ => p.at.clone(),
                    };
                    return Err(refused(field, e));
                }
            }
        }
        Ok(out)
    }

    /// Records installed faults as active and announces them.
    pub fn commit(&mut self, installed: Vec<Installed>, now: u64, bus: &Bus) -> Vec<SysFaultView> {
        let mut views = Vec::new();
        for Installed(p, inj) in installed {
            let view = SysFaultView {
                id: p.id.clone(),
                kind: "sys",
                state: FaultState::Active,
                spec: p.spec,
                seed: p.seed,
                backend: inj.backend().to_string(),
                applied_at: now,
                not_before: p.not_before,
                expires: p.expires,
                ended_at: None,
                evidence: SysEvidenceCounters::default(),
                received: Vec::new(),
                observer_missed: 0,
                injector_missed: 0,
                landed: false,
            };
            self.faults.insert(
                p.id.clone(),
                Record {
                    view: view.clone(),
                    injection: Some(inj),
                    landed_reported: false,
                },
            );
            bus.publish(Event::FaultApplied {
                id: p.id,
                time: now,
            });
            views.push(view);
        }
        views
    }

    fn view(r: &Record) -> SysFaultView {
        let mut v = r.view.clone();
        if let Some(ev) = r.injection.as_ref().and_then(|i| i.evidence().ok()) {
            v.evidence = ev.counters;
            v.received = ev.received;
            v.observer_missed = ev.observer_missed;
            v.injector_missed = ev.injector_missed;
        }
        v.landed = v.evidence.injected > 0;
        v
    }

    /// Every fault (active only unless `all`) with live evidence.
    pub fn list(&self, all: bool) -> Vec<SysFaultView> {
        self.faults
            .values()
            .filter(|r| all || r.view.state == FaultState::Active)
            .map(Self::view)
            .collect()
    }

    /// One fault, if this table has it.
    pub fn get(&self, id: &str) -> Option<SysFaultView> {
        self.faults.get(id).map(Self::view)
    }

    /// Ends a fault: removes it from the kernel and freezes its evidence.
    pub fn end(
        &mut self,
        id: &str,
        state: FaultState,
        bus: &Bus,
    ) -> Result<SysFaultView, FaultError> {
        let r = self
            .faults
            .get_mut(id)
            .ok_or_else(|| FaultError::NotFound(id.to_string()))?;
        let Some(mut inj) = r.injection.take() else {
            return Ok(Self::view(r));
        };
        let _ = inj.clear();
        let now = monotonic_ns();
        if let Ok(ev) = inj.evidence() {
            r.view.evidence = ev.counters;
            r.view.received = ev.received;
            r.view.observer_missed = ev.observer_missed;
            r.view.injector_missed = ev.injector_missed;
        }
        publish_process_events(bus, id, inj.drain_events());
        drop(inj);
        r.view.state = state;
        r.view.ended_at = Some(now);
        let view = Self::view(r);
        bus.publish(match state {
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
        Ok(view)
    }

    /// Ids of the active faults.
    pub fn active_ids(&self) -> Vec<String> {
        self.faults
            .iter()
            .filter(|(_, r)| r.view.state == FaultState::Active)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Forwards process exits and signals from the kernel's ring buffer, announces first
    /// landings and retires faults past their expiry.
    pub fn poll(&mut self, bus: &Bus) {
        let now = monotonic_ns();
        for id in self.active_ids() {
            let Some(r) = self.faults.get_mut(&id) else {
                continue;
            };
            let Some(inj) = r.injection.as_mut() else {
                continue;
            };
            publish_process_events(bus, &id, inj.drain_events());
            let first = inj
                .evidence()
                .ok()
                .and_then(|e| e.counters.first_injected_ns);
            if !r.landed_reported
                && let Some(t) = first
            {
                r.landed_reported = true;
                bus.publish(Event::FaultLanded {
                    id: id.clone(),
                    time: t,
                    via: "counters",
                });
            }
            if r.view.expires != 0 && now >= r.view.expires {
                let _ = self.end(&id, FaultState::Expired, bus);
            }
        }
    }
}

fn publish_process_events(bus: &Bus, fault: &str, events: Vec<ProcessEvent>) {
    for e in events {
        bus.publish(match e {
            ProcessEvent::Exit {
                pid,
                comm,
                exit_code,
                killed_by,
                time_ns,
            } => Event::ProcessExited {
                fault: fault.to_string(),
                pid,
                comm,
                exit_code,
                killed_by,
                time: time_ns,
            },
            ProcessEvent::Signal {
                pid, name, time_ns, ..
            } => Event::ProcessSignaled {
                fault: fault.to_string(),
                pid,
                signal: name,
                time: time_ns,
            },
        });
    }
}
