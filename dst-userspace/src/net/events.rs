//! Kernel events of network faults read from the `DST_NET_EVENTS` ring buffer: a rule applied
//! to its first packet (on a CPU) and a packet matching a rule after its kernel-enforced
//! expiry. Push, not poll: the fd becomes readable when the kernel writes.

use std::os::fd::{AsFd, BorrowedFd};

use aya::maps::{MapData, RingBuf};
use dst_common::net::{NET_EVENT_EXPIRED, NET_EVENT_LANDED, NetEvent};

/// What the kernel reported about the rule in a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetEventKind {
    /// First packet the rule acted on (on one CPU).
    Landed,
    /// First packet matching the rule after its expiry (on one CPU).
    Expired,
}

/// One event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelNetEvent {
    /// What happened.
    pub kind: NetEventKind,
    /// Rule slot.
    pub slot: u32,
    /// CLOCK_MONOTONIC ns of the packet.
    pub time_ns: u64,
    /// Seed of the rule (a slot's successive faults differ in seed or in time).
    pub seed: u64,
}

impl KernelNetEvent {
    /// Decodes the kernel's record (None for unknown kinds).
    pub fn from_raw(raw: &NetEvent) -> Option<Self> {
        let kind = match raw.kind {
            NET_EVENT_LANDED => NetEventKind::Landed,
            NET_EVENT_EXPIRED => NetEventKind::Expired,
            _ => return None,
        };
        Some(Self {
            kind,
            slot: raw.slot,
            time_ns: raw.time_ns,
            seed: raw.seed,
        })
    }
}

/// The ring buffer, taken out of the engine so a reader thread can wait on it.
pub struct NetEvents(pub(crate) RingBuf<MapData>);

impl NetEvents {
    /// Every event queued now.
    pub fn drain(&mut self) -> Vec<KernelNetEvent> {
        let mut out = Vec::new();
        while let Some(item) = self.0.next() {
            if item.len() >= size_of::<NetEvent>() {
                // SAFETY: the kernel wrote a whole NetEvent (repr(C), integers only);
                // read_unaligned copes with the ring buffer's 8-byte alignment.
                let raw: NetEvent =
                    unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<NetEvent>()) };
                out.extend(KernelNetEvent::from_raw(&raw));
            }
        }
        out
    }

    /// Waits up to `timeout` for the kernel to write, then drains.
    pub fn wait(&mut self, timeout: std::time::Duration) -> Vec<KernelNetEvent> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(ms));
        self.drain()
    }
}

impl AsFd for NetEvents {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_decode_and_unknown_ones_are_skipped() {
        let raw = |kind| NetEvent {
            kind,
            slot: 3,
            time_ns: 42,
            seed: 7,
        };
        assert_eq!(
            KernelNetEvent::from_raw(&raw(NET_EVENT_LANDED)),
            Some(KernelNetEvent {
                kind: NetEventKind::Landed,
                slot: 3,
                time_ns: 42,
                seed: 7
            })
        );
        assert_eq!(
            KernelNetEvent::from_raw(&raw(NET_EVENT_EXPIRED)).map(|e| e.kind),
            Some(NetEventKind::Expired)
        );
        assert_eq!(KernelNetEvent::from_raw(&raw(99)), None);
    }
}
