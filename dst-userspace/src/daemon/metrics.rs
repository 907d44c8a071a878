//! `/metrics`: Prometheus text exposition of per-fault counters (packets for network faults,
//! calls for syscall faults) and recorder throughput.

use std::{fmt::Write as _, sync::atomic::Ordering};

use super::{
    faults::{AnyView, FaultState, FaultView, kind_label},
    sysfaults::SysFaultView,
};
use crate::history::Stats;

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders the exposition text for `all` faults (active and recently ended) and the recorder.
pub fn render(all: &[AnyView], history: Option<&Stats>) -> String {
    let faults: Vec<&FaultView> = all
        .iter()
        .filter_map(|v| match v {
            AnyView::Net(v) => Some(v),
            AnyView::Sys(_) => None,
        })
        .collect();
    let sys: Vec<&SysFaultView> = all
        .iter()
        .filter_map(|v| match v {
            AnyView::Sys(v) => Some(v),
            AnyView::Net(_) => None,
        })
        .collect();
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
        for v in &faults {
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
    type GetSys = fn(&SysFaultView) -> u64;
    let sys_counters: [(&str, &str, GetSys); 4] = [
        (
            "matched",
            "Calls of the class by the target while the fault was live.",
            |v| v.evidence.matched,
        ),
        ("injected", "Calls failed with the fault's errno.", |v| {
            v.evidence.injected
        }),
        ("passed", "Matched calls the trigger let through.", |v| {
            v.evidence.passed
        }),
        ("expired", "Matched calls after the fault's expiry.", |v| {
            v.evidence.expired
        }),
    ];
    for (name, help, get) in sys_counters {
        let _ = writeln!(out, "# HELP dst_sys_fault_{name}_total {help}");
        let _ = writeln!(out, "# TYPE dst_sys_fault_{name}_total counter");
        for v in &sys {
            let _ = writeln!(
                out,
                "dst_sys_fault_{name}_total{{id=\"{}\",syscall=\"{}\",errno=\"{}\",backend=\"{}\"}} {}",
                escape(&v.id),
                escape(&v.spec.syscall),
                escape(&v.spec.errno),
                escape(&v.backend),
                get(v)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP dst_fault_landed Whether the fault acted on at least one packet or call."
    );
    let _ = writeln!(out, "# TYPE dst_fault_landed gauge");
    for (id, landed) in faults
        .iter()
        .map(|v| (&v.id, v.landed))
        .chain(sys.iter().map(|v| (&v.id, v.landed)))
    {
        let _ = writeln!(
            out,
            "dst_fault_landed{{id=\"{}\"}} {}",
            escape(id),
            u8::from(landed)
        );
    }
    let active = faults
        .iter()
        .map(|v| v.state)
        .chain(sys.iter().map(|v| v.state))
        .filter(|s| *s == FaultState::Active)
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
