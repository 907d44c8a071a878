//! The dead-man lease of the network programs: while a [`Lease`] lives, a thread keeps
//! `DST_NET_LEASE` a little in the future; when the process dies (even by SIGKILL) renewals stop
//! and within [`LEASE_TERM`] the kernel programs let every packet through. It makes safety
//! invariant 2 hold for tc clsact filters, which, unlike TCX links, outlive their owner.

use std::{
    sync::mpsc::{self, RecvTimeoutError, Sender},
    thread::JoinHandle,
    time::Duration,
};

use aya::maps::{Array, Map, MapData};

use super::spec::monotonic_ns;

/// How long one renewal keeps the rules acting: the bound on how long a dead dst's filters
/// keep applying faults.
pub const LEASE_TERM: Duration = Duration::from_secs(1);
/// How often the lease is renewed (a quarter of the term, so three late renewals in a row are
/// needed before a live dst's faults lapse).
pub const RENEW_EVERY: Duration = Duration::from_millis(250);
/// Map name, as in the eBPF object.
pub const LEASE_MAP: &str = "DST_NET_LEASE";

/// Errors of the lease.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The lease map could not be opened or written.
    #[error("BPF map {LEASE_MAP}: {0}; run `dst probe` to see what this kernel allows")]
    Map(#[source] aya::maps::MapError),
    /// The renewal thread could not be started.
    #[error("starting the lease renewal thread: {0}; the process may be out of threads or memory")]
    Thread(#[source] std::io::Error),
}

/// A running renewal; dropping it stops renewals and lapses the lease at once.
pub struct Lease {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    map: std::sync::Arc<std::sync::Mutex<Array<MapData, u64>>>,
}

fn write(map: &mut Array<MapData, u64>, until: u64) -> Result<(), LeaseError> {
    map.set(0, until, 0).map_err(LeaseError::Map)
}

impl Lease {
    /// Takes the lease map by id (its own fd, so the engine's maps stay untouched), writes a
    /// first lease and starts renewing it.
    pub fn start(map_id: u32) -> Result<Self, LeaseError> {
        let data = MapData::from_id(map_id).map_err(LeaseError::Map)?;
        let mut map: Array<MapData, u64> =
            Array::try_from(Map::Array(data)).map_err(LeaseError::Map)?;
        write(&mut map, monotonic_ns() + LEASE_TERM.as_nanos() as u64)?;
        let map = std::sync::Arc::new(std::sync::Mutex::new(map));
        let (stop, rx) = mpsc::channel::<()>();
        let m = map.clone();
        let thread = std::thread::Builder::new()
            .name("dst-net-lease".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(RENEW_EVERY) {
                    let until = monotonic_ns() + LEASE_TERM.as_nanos() as u64;
                    let mut map = m.lock().unwrap_or_else(|p| p.into_inner());
                    if let Err(e) = write(&mut map, until) {
                        tracing::warn!("renewing the network lease failed: {e}");
                    }
                }
            })
            .map_err(LeaseError::Thread)?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
            map,
        })
    }

    /// The current lease (CLOCK_MONOTONIC ns; 0 = none in use).
    pub fn until(&self) -> Result<u64, LeaseError> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&0, 0).map_err(LeaseError::Map)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // Lapsed (1 ns after boot), not 0: 0 would mean "no lease" and let filters act again.
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let _ = write(&mut map, 1);
    }
}
