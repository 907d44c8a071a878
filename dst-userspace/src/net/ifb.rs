//! The `ifb` device that carries ingress EDT delay: matched ingress packets get their departure
//! time and are redirected to it; its `fq` holds them until then and the ifb hands them back to
//! the original device's receive path. Created in the target namespace, deleted on drop.

use super::fq::{FqError, FqGuard, FqReport};
use crate::netlink::{Netlink, NetlinkError};

/// Why the ifb could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum IfbError {
    /// Creating or raising the device failed.
    #[error("creating ifb device {name}: {source}; the kernel needs the ifb module (modprobe ifb)")]
    Create {
        /// Device name.
        name: String,
        /// The failed request.
        #[source]
        source: NetlinkError,
    },
    /// fq could not be installed on it.
    #[error(transparent)]
    Fq(#[from] FqError),
}

/// An ifb device with fq, alive as long as this value (netlink socket bound to its namespace).
pub struct IfbGuard {
    nl: Netlink,
    /// Device name.
    pub name: String,
    /// Its ifindex.
    pub ifindex: u32,
    fq: Option<FqGuard>,
}

impl IfbGuard {
    /// Creates `name` in the calling thread's namespace, sets it up and installs fq on it.
    pub fn create(name: &str) -> Result<Self, IfbError> {
        let err = |source| IfbError::Create {
            name: name.to_string(),
            source,
        };
        let nl = Netlink::new().map_err(err)?;
        nl.add_ifb(name).map_err(err)?;
        let ifindex = match nl.link_index(name) {
            Ok(i) => i,
            Err(e) => return Err(err(e)),
        };
        // From here on, drop deletes the device.
        let mut guard = Self {
            nl,
            name: name.to_string(),
            ifindex,
            fq: None,
        };
        guard.nl.link_up(ifindex).map_err(err)?;
        guard.fq = Some(FqGuard::install(name, ifindex)?);
        Ok(guard)
    }

    /// What was done with the ifb's root qdisc.
    pub fn fq_report(&self) -> Option<&FqReport> {
        self.fq.as_ref().map(FqGuard::report)
    }
}

impl Drop for IfbGuard {
    fn drop(&mut self) {
        // Deleting the device removes its fq with it.
        if let Some(mut fq) = self.fq.take() {
            fq.device_deleted();
        }
        if let Err(e) = self.nl.del_link(self.ifindex) {
            tracing::warn!("deleting ifb {}: {e}", self.name);
        }
    }
}
