//! Landing evidence of one network fault (the DESIGN.md contract): the spec, the backend that
//! carried it, the kernel counters, the delay line's measurements, the applied window and
//! whether the fault landed (applied > 0 inside its window).

use serde::Serialize;

use super::{
    delayline::{DelayStats, Histogram},
    engine::RuleEvidence,
    fq::FqReport,
};

/// What the EDT backend did for one fault.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EdtStats {
    /// Distribution of the departure delays the kernel program set (bucketed in the kernel).
    pub delay: Option<Histogram>,
    /// The root qdiscs dst installed fq on (or found fq on), and what it restored.
    pub fq: Vec<FqReport>,
    /// The ifb device that carried ingress delay, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ifb: Option<String>,
}

/// The window a fault was live in, CLOCK_MONOTONIC ns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Window {
    /// When dst wrote the rule.
    pub applied_ns: u64,
    /// The rule's start (0 = at once).
    pub not_before_ns: u64,
    /// The kernel-enforced expiry.
    pub expires_ns: u64,
    /// When dst removed the rule (None while live).
    pub cleared_ns: Option<u64>,
}

impl Window {
    /// The end of the window: cleared or expired, whichever came first.
    pub fn end_ns(&self) -> u64 {
        self.cleared_ns
            .map_or(self.expires_ns, |c| c.min(self.expires_ns))
    }
}

/// Evidence of one fault.
#[derive(Clone, Debug, Serialize)]
pub struct Evidence {
    /// The fault's id.
    pub id: String,
    /// The fault as the user asked for it.
    pub spec: serde_json::Value,
    /// The backend that carried it (`tcx`, `tc clsact`, `cgroup_skb`, `delay-line via tcx`, `edt-fq via tcx` ...).
    pub backend: String,
    /// Where the programs were attached, e.g. `n1/eth0 egress (tcx)`.
    pub attached: Vec<String>,
    /// Seed of the decision stream (replay with `--seed`).
    pub seed: u64,
    /// Kernel counters summed over CPUs.
    pub counters: RuleEvidence,
    /// What the delay line did (delay, reorder, rate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_line: Option<DelayStats>,
    /// What EDT did (delay, reorder, rate with fq).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edt: Option<EdtStats>,
    /// The live window.
    pub window: Window,
    /// First applied packet, ms after the fault was applied.
    pub first_applied_ms: Option<f64>,
    /// Last applied packet, ms after the fault was applied.
    pub last_applied_ms: Option<f64>,
    /// applied > 0 with the first applied packet inside the window.
    pub landed: bool,
}

/// Whether counters show the fault acting inside its window.
pub fn landed(c: &RuleEvidence, w: &Window) -> bool {
    c.applied > 0
        && c.first_applied_ns
            .is_some_and(|f| f >= w.not_before_ns.max(w.applied_ns) && f <= w.end_ns())
}

impl Evidence {
    /// Assembles the evidence (computes the relative times and `landed`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        spec: serde_json::Value,
        backend: String,
        attached: Vec<String>,
        seed: u64,
        counters: RuleEvidence,
        delay_line: Option<DelayStats>,
        window: Window,
    ) -> Self {
        let rel = |t: Option<u64>| t.map(|t| t.saturating_sub(window.applied_ns) as f64 / 1e6);
        Self {
            landed: landed(&counters, &window),
            first_applied_ms: rel(counters.first_applied_ns),
            last_applied_ms: rel(counters.last_applied_ns),
            id,
            spec,
            backend,
            attached,
            seed,
            counters,
            delay_line,
            edt: None,
            window,
        }
    }

    /// Adds what the EDT backend did.
    pub fn with_edt(mut self, edt: EdtStats) -> Self {
        self.edt = Some(edt);
        self
    }

    /// Human-readable report.
    pub fn render(&self) -> String {
        let c = &self.counters;
        let mut out = format!(
            "fault {} via {} on {}\n",
            self.id,
            self.backend,
            self.attached.join(", ")
        );
        out.push_str(&format!("  seed        {}\n", self.seed));
        out.push_str(&format!(
            "  counters    matched={} applied={} passed={} bytes={} expired={}\n",
            c.matched, c.applied, c.passed, c.bytes, c.expired
        ));
        if c.delayed + c.reordered + c.duplicated + c.corrupted > 0 {
            out.push_str(&format!(
                "              delayed={} reordered={} duplicated={} corrupted={}\n",
                c.delayed, c.reordered, c.duplicated, c.corrupted
            ));
        }
        if let Some(d) = &self.delay_line {
            out.push_str(&format!(
                "  delay line  received={} released={} overtaken={} hold_timeouts={} rate_dropped={}\n",
                d.received, d.released, d.overtaken, d.hold_timeouts, d.rate_dropped
            ));
            if let Some(h) = &d.delay {
                out.push_str(&format!(
                    "  held (ms)   n={} min={:.2} p10={:.2} p50={:.2} p90={:.2} max={:.2} mean={:.2}\n",
                    h.count, h.min_ms, h.p10_ms, h.p50_ms, h.p90_ms, h.max_ms, h.mean_ms
                ));
            }
        }
        if let Some(e) = &self.edt {
            if c.edt_dropped > 0 {
                out.push_str(&format!(
                    "  edt         dropped beyond the horizon={}\n",
                    c.edt_dropped
                ));
            }
            for q in &e.fq {
                out.push_str(&format!(
                    "  fq          {}: previous root {}, {}{}\n",
                    q.dev,
                    q.previous,
                    if q.installed {
                        "fq installed by dst"
                    } else {
                        "existing fq used"
                    },
                    q.restored
                        .as_ref()
                        .map_or(String::new(), |r| format!(", restored to {r}"))
                ));
            }
            if let Some(h) = &e.delay {
                out.push_str(&format!(
                    "  edt (ms)    n={} min={:.2} p10={:.2} p50={:.2} p90={:.2} max={:.2} mean={:.2}\n",
                    h.count, h.min_ms, h.p10_ms, h.p50_ms, h.p90_ms, h.max_ms, h.mean_ms
                ));
            }
        }
        let ms = |t: Option<f64>| t.map_or("-".to_string(), |t| format!("{t:.1} ms"));
        out.push_str(&format!(
            "  applied     first {} / last {} after apply\n",
            ms(self.first_applied_ms),
            ms(self.last_applied_ms)
        ));
        out.push_str(&format!(
            "  landed      {}\n",
            if self.landed {
                "yes"
            } else {
                "NO (no packet received the action inside the window)"
            }
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landed_needs_an_applied_packet_inside_the_window() {
        let w = Window {
            applied_ns: 100,
            not_before_ns: 0,
            expires_ns: 1_000,
            cleared_ns: Some(500),
        };
        let mut c = RuleEvidence::default();
        assert!(!landed(&c, &w));
        c.applied = 1;
        c.first_applied_ns = Some(200);
        assert!(landed(&c, &w));
        c.first_applied_ns = Some(600);
        assert!(!landed(&c, &w), "after clear");
        c.first_applied_ns = Some(50);
        assert!(!landed(&c, &w), "before apply");
    }
}
