//! The `fq` root qdisc that enforces EDT departure times on one device: installed only where
//! dst may (no root qdisc, or the kernel's default one), never over a qdisc someone configured,
//! and removed on drop so the kernel's default comes back (DESIGN.md safety invariant 3).
//!
//! Ownership rule, explicitly: a root qdisc whose handle major is 0 was attached by the kernel
//! (`noqueue`, `pfifo_fast`, `mq`, the `default_qdisc` sysctl's) — nobody configured it, and
//! deleting a root qdisc makes the kernel attach that same default again, so dst replaces it and
//! restores it by deleting its `fq`. A root `fq` someone else installed is used as it is and
//! left in place. Any other configured root qdisc is refused with its kind and handle.

use dst_common::net::FQ_HORIZON_US;
use serde::Serialize;

use crate::netlink::{FqOptions, Netlink, NetlinkError, RootQdisc};

/// Why dst could not get an `fq` on a device.
#[derive(Debug, thiserror::Error)]
pub enum FqError {
    /// Someone configured a root qdisc that is not fq.
    #[error(
        "{dev} has a root qdisc {kind} (handle {handle}) that dst did not install; dst never replaces \
         a configured qdisc: remove it (tc qdisc del dev {dev} root) or use the delay line \
         (--backend delay-line)"
    )]
    Occupied {
        /// Device name or index.
        dev: String,
        /// Kind of the qdisc found.
        kind: String,
        /// Its handle, `major:`.
        handle: String,
    },
    /// A netlink request failed (sch_fq missing, no CAP_NET_ADMIN, ...).
    #[error("installing fq on {dev}: {source}; `dst probe` shows whether this kernel has sch_fq")]
    Netlink {
        /// Device name or index.
        dev: String,
        /// The failed request.
        #[source]
        source: NetlinkError,
    },
}

/// What dst did with the root qdisc of a device, for the evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FqReport {
    /// Device label.
    pub dev: String,
    /// Root qdisc before dst (kind), `none` when the kernel reported none.
    pub previous: String,
    /// True when dst installed fq (and removes it); false when an fq was already there.
    pub installed: bool,
    /// Root qdisc after dst removed its fq (filled on restore).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored: Option<String>,
}

/// fq settings dst installs: the horizon covers the largest departure the programs set
/// (`EDT_HORIZON_NS` < horizon), beyond it fq drops; queues deep enough for a second of
/// paced traffic per flow.
pub const FQ_OPTIONS: FqOptions = FqOptions {
    limit: 100_000,
    flow_limit: 10_000,
    horizon_us: FQ_HORIZON_US,
    horizon_drop: true,
    // EDT gives delayed packets their own flow hash (see dst-ebpf's `Verdict::Edt`): 64 Ki
    // hash flows keep them apart.
    orphan_mask: 0xffff,
};

/// Decides what to do with a device whose root qdisc is `root`: Ok(true) install fq,
/// Ok(false) use the fq already there, Err: refuse.
pub fn plan(dev: &str, root: Option<&RootQdisc>) -> Result<bool, FqError> {
    match root {
        None => Ok(true),
        Some(q) if q.kind == "fq" => Ok(false),
        Some(q) if q.handle.major == 0 => Ok(true),
        Some(q) => Err(FqError::Occupied {
            dev: dev.to_string(),
            kind: q.kind.clone(),
            handle: format!("{:x}:", q.handle.major),
        }),
    }
}

/// An fq on a device for as long as this value lives (netlink socket bound to the device's
/// namespace at creation, so it can be dropped from any thread).
pub struct FqGuard {
    nl: Netlink,
    ifindex: u32,
    report: FqReport,
}

impl FqGuard {
    /// Installs fq on `ifindex` (in the calling thread's namespace) where [`plan`] allows.
    pub fn install(dev: &str, ifindex: u32) -> Result<Self, FqError> {
        let err = |source| FqError::Netlink {
            dev: dev.to_string(),
            source,
        };
        let nl = Netlink::new().map_err(err)?;
        let root = nl.root_qdisc(ifindex).map_err(err)?;
        let install = plan(dev, root.as_ref())?;
        if install {
            nl.add_root_fq(ifindex, FQ_OPTIONS).map_err(err)?;
        }
        Ok(Self {
            nl,
            ifindex,
            report: FqReport {
                dev: dev.to_string(),
                previous: root.map_or_else(|| "none".to_string(), |q| q.kind),
                installed: install,
                restored: None,
            },
        })
    }

    /// Removes dst's fq (if dst installed it) and reports the root qdisc the kernel put back.
    pub fn restore(mut self) -> FqReport {
        self.remove();
        self.report.clone()
    }

    fn remove(&mut self) {
        if !self.report.installed || self.report.restored.is_some() {
            return;
        }
        if let Err(e) = self.nl.del_root_qdisc(self.ifindex) {
            tracing::warn!("removing dst's fq from {}: {e}", self.report.dev);
        }
        self.report.restored = Some(match self.nl.root_qdisc(self.ifindex) {
            Ok(Some(q)) => q.kind,
            Ok(None) => "none".into(),
            Err(e) => format!("unknown ({e})"),
        });
    }

    /// The device is about to be deleted (and its qdiscs with it): nothing left to restore.
    pub fn device_deleted(&mut self) {
        self.report.restored = Some("device deleted".into());
    }

    /// What was done so far.
    pub fn report(&self) -> &FqReport {
        &self.report
    }
}

impl Drop for FqGuard {
    fn drop(&mut self) {
        self.remove();
    }
}

#[cfg(test)]
mod tests {
    use netlink_packet_route::tc::TcHandle;

    use super::*;

    fn q(kind: &str, major: u16) -> RootQdisc {
        RootQdisc {
            kind: kind.into(),
            handle: TcHandle { major, minor: 0 },
        }
    }

    #[test]
    fn kernel_defaults_are_replaced_configured_qdiscs_refused() {
        assert!(plan("eth0", None).unwrap());
        for default in ["noqueue", "pfifo_fast", "mq", "fq_codel"] {
            assert!(plan("eth0", Some(&q(default, 0))).unwrap(), "{default}");
        }
        // Someone's fq is used as it is, not removed later.
        assert!(!plan("eth0", Some(&q("fq", 0x8001))).unwrap());
        let e = plan("eth0", Some(&q("htb", 1))).unwrap_err().to_string();
        assert!(
            e.contains("htb") && e.contains("1:") && e.contains("never replaces"),
            "{e}"
        );
        assert!(plan("eth0", Some(&q("netem", 0x8001))).is_err());
    }
}
