//! Clean-up of clsact filters a dead dst left behind: cls_bpf filters are not owned by a file
//! descriptor, so a SIGKILLed dst leaves them attached (inert once its dead-man lease lapsed,
//! see [`super::lease`]). Before attaching its own, dst removes those whose lease has lapsed
//! for longer than a term; filters of a live dst (lease renewed) or of one still starting
//! (lease 0) are left alone.

use aya::maps::{Array, Map, MapData, MapInfo};

use super::{
    lease::{LEASE_MAP, LEASE_TERM},
    spec::monotonic_ns,
};
use crate::netlink::{BpfFilter, Netlink, NetlinkError};

/// Why a sweep could not look at the filters.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// Listing or deleting filters failed.
    #[error("sweeping stale dst filters: {0}")]
    Netlink(#[from] NetlinkError),
}

/// Removes the dst filters on the clsact hook (`ingress` or egress) of interface `index` in
/// the calling thread's network namespace whose owner's lease lapsed more than a term ago;
/// returns the removed programs' names.
pub fn sweep_lapsed(index: u32, ingress: bool) -> Result<Vec<String>, SweepError> {
    let nl = Netlink::new()?;
    // No clsact qdisc yet: nothing to sweep (the dump fails).
    let Ok(filters) = nl.bpf_filters(index, ingress) else {
        return Ok(Vec::new());
    };
    let now = monotonic_ns();
    let mut removed = Vec::new();
    for f in filters.iter().filter(|f| f.name.starts_with("dst_tc_")) {
        if lapsed_lease(f).is_some_and(|until| until + as_ns(LEASE_TERM) < now) {
            nl.del_bpf_filter(index, f)?;
            removed.push(f.name.clone());
        }
    }
    Ok(removed)
}

fn as_ns(d: std::time::Duration) -> u64 {
    d.as_nanos() as u64
}

/// The lease of the filter's program (CLOCK_MONOTONIC ns it was valid until), when it has one
/// in use (non-zero); None when the program or its lease map cannot be read.
fn lapsed_lease(f: &BpfFilter) -> Option<u64> {
    let info = aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .find(|p| p.id() == f.prog_id)?;
    let map_ids = info.map_ids().ok()??;
    let lease = map_ids
        .into_iter()
        .find(|id| MapInfo::from_id(*id).is_ok_and(|m| m.name_as_str() == Some(LEASE_MAP)))?;
    let map: Array<MapData, u64> =
        Array::try_from(Map::Array(MapData::from_id(lease).ok()?)).ok()?;
    map.get(&0, 0).ok().filter(|&until| until != 0)
}
