//! `/metrics`: Prometheus text exposition of per-fault counters and recorder throughput.

use std::{fmt::Write as _, sync::atomic::Ordering};

use super::faults::{FaultState, FaultView, kind_label};
use crate::history::Stats;

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders the exposition text for `faults` (active and recently ended) and the recorder.
pub fn render(faults: &[FaultView], history: Option<&Stats>) -> String {
    let mut out = String::new();
    type Get = fn(&FaultView) -> u64;
    let counters: [(&str, &str, Get); 6] = [
        (
            "matched",
            "Packets that matched the fault while it was live.",
            |v| v.evidence.matched,
        ),
        (
            "applied",
            "Matched packets that received the fault's action.",
            |v| v.evidence.applied,
        ),
        (
            "passed",
            "Matched packets let through by the probability draw.",
            |v| v.evidence.passed,
        ),
        (
            "bytes",
            "Bytes of packets the action was applied to.",
            |v| v.evidence.bytes,
        ),
        (
            "expired",
            "Packets that matched after the fault's expiry.",
            |v| v.evidence.expired,
        ),
        ("decisions", "Seeded decisions drawn.", |v| {
            v.evidence.decisions
        }),
    ];
    for (name, help, get) in counters {
        let _ = writeln!(out, "# HELP dst_fault_{name}_total {help}");
        let _ = writeln!(out, "# TYPE dst_fault_{name}_total counter");
        for v in faults {
            let _ = writeln!(
                out,
                "dst_fault_{name}_total{{id=\"{}\",kind=\"{}\",backend=\"{}\"}} {}",
                escape(&v.id),
                kind_label(v),
                v.backend,
                get(v)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP dst_fault_landed Whether the fault acted on at least one packet."
    );
    let _ = writeln!(out, "# TYPE dst_fault_landed gauge");
    for v in faults {
        let _ = writeln!(
            out,
            "dst_fault_landed{{id=\"{}\"}} {}",
            escape(&v.id),
            u8::from(v.landed)
        );
    }
    let active = faults
        .iter()
        .filter(|v| v.state == FaultState::Active)
        .count();
    let _ = writeln!(out, "# HELP dst_faults_active Faults currently installed.");
    let _ = writeln!(out, "# TYPE dst_faults_active gauge");
    let _ = writeln!(out, "dst_faults_active {active}");
    if let Some(s) = history {
        let _ = writeln!(
            out,
            "# HELP dst_history_ops_total Operations durably appended since start."
        );
        let _ = writeln!(out, "# TYPE dst_history_ops_total counter");
        let _ = writeln!(
            out,
            "dst_history_ops_total {}",
            s.ops.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP dst_history_syncs_total Group commits (one fdatasync each)."
        );
        let _ = writeln!(out, "# TYPE dst_history_syncs_total counter");
        let _ = writeln!(
            out,
            "dst_history_syncs_total {}",
            s.batches.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP dst_history_next_index Index the next operation gets."
        );
        let _ = writeln!(out, "# TYPE dst_history_next_index gauge");
        let _ = writeln!(
            out,
            "dst_history_next_index {}",
            s.next_index.load(Ordering::Relaxed)
        );
    }
    out
}
