//! The self-test fault: two namespaces, a seeded 30% UDP drop on one port, a known packet
//! sequence, and the proof that the kernel's `applied` counter equals the receiver's losses.

use std::time::Instant;

use serde::Serialize;

use crate::{
    net::{Action, Direction, NetEngine, NetFault, PortRange, RuleEvidence, spec},
    testing::{Topology, udp_sequence},
};

/// Errors of the self-test.
#[derive(Debug, thiserror::Error)]
pub enum SelfTestError {
    /// The topology could not be built.
    #[error("building the test namespaces: {0}")]
    Topology(#[from] crate::testing::TopologyError),
    /// The engine failed.
    #[error(transparent)]
    Net(#[from] crate::net::NetError),
    /// A namespace operation failed.
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
}

/// What the self-test measured.
#[derive(Debug, Serialize)]
pub struct SelfTestReport {
    /// Datagrams sent on the faulted port.
    pub sent: u32,
    /// Datagrams the receiver did not get on the faulted port.
    pub lost: u32,
    /// Datagrams sent to the control port (not targeted).
    pub control_sent: u32,
    /// Control datagrams lost (must be 0: blast radius).
    pub control_lost: u32,
    /// Kernel counters of the fault.
    pub evidence: RuleEvidence,
    /// The fault as applied.
    pub fault: NetFault,
    /// applied == lost and control_lost == 0.
    pub landed_exactly: bool,
    /// Wall time of the whole self-test.
    pub elapsed_ms: u64,
}

/// Runs the self-test in namespaces named `{prefix}1`, `{prefix}2` (removed afterwards).
pub fn run(
    prefix: &str,
    packets: u32,
    probability: f64,
    seed: u64,
) -> Result<SelfTestReport, SelfTestError> {
    let start = Instant::now();
    let topo = Topology::new(prefix, 2, 233)?;
    let (a, b) = (&topo.hosts[0], &topo.hosts[1]);
    let mut engine = NetEngine::load()?;
    a.ns.run(|| engine.attach_tc("eth0", Direction::Egress))??;
    let mut fault = NetFault::new(Action::Drop { probability });
    fault.proto = 17;
    fault.dport = PortRange { lo: 9000, hi: 9000 };
    fault.seed = seed;
    let expires = spec::expiry_after(std::time::Duration::from_secs(60));
    let slot = engine.apply(&[(fault.clone(), 0, expires)])?[0];
    let got = udp_sequence(a, b, 9000, packets)?;
    let control = udp_sequence(a, b, 9001, packets / 10)?;
    let evidence = engine.evidence(slot)?;
    engine.clear(slot)?;
    let lost = got.iter().filter(|g| !**g).count() as u32;
    let control_lost = control.iter().filter(|g| !**g).count() as u32;
    Ok(SelfTestReport {
        sent: packets,
        lost,
        control_sent: packets / 10,
        control_lost,
        landed_exactly: evidence.applied == u64::from(lost)
            && control_lost == 0
            && evidence.applied > 0,
        evidence,
        fault,
        elapsed_ms: start.elapsed().as_millis() as u64,
    })
}
