//! Daemon events streamed to clients (`GET /v1/events`, server-sent events): faults applied,
//! landed, cleared and expired, process exits and signals of syscall-fault targets (from the
//! kernel's ring buffer), and backend errors. The enum is tagged by `type` and non-exhaustive.

use serde::Serialize;
use tokio::sync::broadcast;

/// One event, stamped with CLOCK_MONOTONIC ns (the clock of evidence and history).
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A fault was installed.
    FaultApplied {
        /// Fault id.
        id: String,
        /// When.
        time: u64,
    },
    /// The kernel applied the fault to a first packet.
    FaultLanded {
        /// Fault id.
        id: String,
        /// When the first packet was acted on.
        time: u64,
        /// `ring_buffer`: pushed by the kernel program as it acted; `counters`: noticed by the
        /// daemon's 200 ms poll of the counters (the backstop when the ring was full).
        via: &'static str,
    },
    /// A fault was cleared (by a client or at shutdown), with its final counters.
    FaultCleared {
        /// Fault id.
        id: String,
        /// When.
        time: u64,
        /// Counters at the moment of clearing (the fault kind's evidence object).
        evidence: serde_json::Value,
    },
    /// A fault reached its kernel-enforced expiry.
    FaultExpired {
        /// Fault id.
        id: String,
        /// When dst noticed.
        time: u64,
    },
    /// A process targeted by a syscall fault ended (`sched_process_exit`).
    ProcessExited {
        /// The fault whose target it was.
        fault: String,
        /// Its pid (tgid).
        pid: u32,
        /// Its command name.
        comm: String,
        /// Status passed to exit_group, if it called it.
        exit_code: Option<i32>,
        /// The signal that ended it, otherwise.
        killed_by: Option<String>,
        /// When (kernel time).
        time: u64,
    },
    /// A signal was generated for a process targeted by a syscall fault.
    ProcessSignaled {
        /// The fault whose target it is.
        fault: String,
        /// Its pid (tgid).
        pid: u32,
        /// Signal name.
        signal: String,
        /// When (kernel time).
        time: u64,
    },
    /// A backend failed (load, attach, map access).
    BackendError {
        /// What went wrong.
        message: String,
        /// When.
        time: u64,
    },
}

/// Fan-out of events to every connected client; slow clients skip what they missed.
#[derive(Clone, Debug)]
pub struct Bus(broadcast::Sender<Event>);

impl Default for Bus {
    fn default() -> Self {
        Self(broadcast::channel(1024).0)
    }
}

impl Bus {
    /// Publishes an event (dropped when nobody listens).
    pub fn publish(&self, e: Event) {
        let _ = self.0.send(e);
    }

    /// A new subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.0.subscribe()
    }
}
