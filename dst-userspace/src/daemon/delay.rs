//! The delay machinery the daemon runs for delay, reorder and rate faults, per device: EDT's
//! `fq` (egress) and `ifb` with fq (ingress) where the probe says they work, else the TAP delay
//! line. Each part is created with the first fault that needs it and released with the last one
//! (fq removed so the device's previous root qdisc returns, TAPs and ifb deleted).

use std::collections::HashMap;

use serde::Serialize;

use crate::{
    net::{
        Direction, NetEngine, NetFault,
        backend::{self, BackendChoice, NetBackend, NetFacts},
        delayline::{DelayLine, DelayStats},
        evidence::EdtStats,
        fq::{FqGuard, FqReport},
        ifb::IfbGuard,
    },
    netns::NetNs,
};

/// A device: (named netns or `/proc/PID/ns/net`, None = the daemon's), interface name.
pub type DevKey = (Option<String>, String);

/// The parts of one device's delay machinery a fault relies on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DelayUse {
    /// The device.
    pub key: DevKey,
    /// The backend carrying the fault.
    pub backend: NetBackend,
    /// Uses the delay line.
    pub line: bool,
    /// Uses fq on the device (EDT egress).
    pub fq: bool,
    /// Uses the ifb (EDT ingress).
    pub ifb: bool,
}

/// What the delay machinery did for one fault, as the API reports it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DelayEvidence {
    /// `edt-fq` or `delay-line`.
    pub backend: NetBackend,
    /// The delay line's own measurements (delay-line faults).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_line: Option<DelayStats>,
    /// The kernel's departure-delay histogram and the qdiscs used (EDT faults).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edt: Option<EdtStats>,
}

#[derive(Default)]
struct Parts {
    line: Option<DelayLine>,
    fq: Option<FqGuard>,
    ifb: Option<IfbGuard>,
}

/// The delay machinery of every device, and the probe facts that choose between backends.
#[derive(Default)]
pub struct DelayDevices {
    facts: Option<NetFacts>,
    devs: HashMap<DevKey, Parts>,
}

fn in_ns<T: Send>(
    netns: &Option<String>,
    f: impl FnOnce() -> T + Send,
) -> Result<T, crate::netns::NetnsError> {
    match netns {
        Some(ns) => NetNs::open(ns)?.run(f),
        None => Ok(f()),
    }
}

impl DelayDevices {
    /// The backend for a fault (probing the kernel once, on the first delay fault).
    pub fn choose(
        &mut self,
        fault: &NetFault,
        dir: Direction,
    ) -> Result<NetBackend, backend::BackendError> {
        let facts = *self.facts.get_or_insert_with(crate::probe::net_facts);
        backend::select(&fault.action, dir, BackendChoice::Auto, &facts)
    }

    /// Creates what `backend` needs on the device (if not there yet) and points `fault` at it.
    /// Call before the rule is installed; on error nothing new stays (see
    /// [`DelayDevices::release_unused`]).
    pub fn ensure(
        &mut self,
        engine: &mut NetEngine,
        key: &DevKey,
        dir: Direction,
        backend: NetBackend,
        fault: &mut NetFault,
    ) -> Result<DelayUse, String> {
        let parts = self.devs.entry(key.clone()).or_default();
        let (netns, dev) = key;
        let mut used = DelayUse {
            key: key.clone(),
            backend,
            line: false,
            fq: false,
            ifb: false,
        };
        match backend {
            NetBackend::Classifier => {}
            NetBackend::DelayLine => {
                if parts.line.is_none() {
                    // Both directions at once: the kernel's TAP table has one entry per device.
                    let line = in_ns(netns, || engine.attach_delay_line(dev, Direction::Both))
                        .map_err(|e| e.to_string())?
                        .map_err(|e| format!("starting the delay line on {dev}: {e}"))?;
                    parts.line = Some(line);
                }
                used.line = true;
            }
            NetBackend::EdtFq => {
                if dir != Direction::Ingress {
                    if parts.fq.is_none() {
                        let fq = in_ns(netns, || FqGuard::install(dev, fault.ifindex))
                            .map_err(|e| e.to_string())?
                            .map_err(|e| e.to_string())?;
                        parts.fq = Some(fq);
                    }
                    used.fq = true;
                }
                if dir != Direction::Egress {
                    if parts.ifb.is_none() {
                        let name = format!("dstifb{}", fault.ifindex);
                        let ifb = in_ns(netns, || IfbGuard::create(&name))
                            .map_err(|e| e.to_string())?
                            .map_err(|e| e.to_string())?;
                        parts.ifb = Some(ifb);
                    }
                    used.ifb = true;
                }
                fault.edt = true;
                fault.edt_ifb = parts
                    .ifb
                    .as_ref()
                    .filter(|_| used.ifb)
                    .map_or(0, |i| i.ifindex);
            }
        }
        Ok(used)
    }

    /// What the machinery did for the fault in `slot` so far.
    pub fn evidence(&self, engine: &NetEngine, u: &DelayUse, slot: u32) -> DelayEvidence {
        let parts = self.devs.get(&u.key);
        let delay_line = parts
            .and_then(|p| p.line.as_ref())
            .filter(|_| u.line)
            .and_then(|l| l.stats(slot));
        let edt = (u.backend == NetBackend::EdtFq).then(|| EdtStats {
            delay: engine.edt_histogram(slot).ok().flatten(),
            fq: parts
                .map(|p| {
                    let live = p.fq.as_ref().filter(|_| u.fq).map(FqGuard::report);
                    let ifb = p
                        .ifb
                        .as_ref()
                        .filter(|_| u.ifb)
                        .and_then(IfbGuard::fq_report);
                    live.into_iter().chain(ifb).cloned().collect()
                })
                .unwrap_or_default(),
            ifb: parts
                .and_then(|p| p.ifb.as_ref())
                .filter(|_| u.ifb)
                .map(|i| i.name.clone()),
        });
        DelayEvidence {
            backend: u.backend,
            delay_line,
            edt,
        }
    }

    /// Releases every part no use in `active` relies on: the delay line is detached and
    /// stopped (held frames released), fq removed, the ifb deleted. Returns the fq reports of
    /// what was restored.
    pub fn release_unused<'a>(
        &mut self,
        engine: &mut NetEngine,
        active: impl Iterator<Item = &'a DelayUse> + Clone,
    ) -> Vec<FqReport> {
        let mut restored = Vec::new();
        for (key, parts) in &mut self.devs {
            let mine = active.clone().filter(|u| &u.key == key);
            if parts.line.is_some() && !mine.clone().any(|u| u.line) {
                let mut line = parts.line.take().expect("checked");
                if let Err(e) = engine.detach_delay_line(&line) {
                    tracing::warn!("detaching the delay line of {}: {e}", key.1);
                }
                line.stop();
            }
            if parts.fq.is_some() && !mine.clone().any(|u| u.fq) {
                restored.push(parts.fq.take().expect("checked").restore());
            }
            if parts.ifb.is_some() && !mine.clone().any(|u| u.ifb) {
                drop(parts.ifb.take());
            }
        }
        self.devs
            .retain(|_, p| p.line.is_some() || p.fq.is_some() || p.ifb.is_some());
        restored
    }
}
