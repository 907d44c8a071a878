//! A self-contained HTML timeline of a checked history: one lane per process, one bar per
//! operation, witness operations highlighted, nemesis fault windows shaded, and the faults'
//! landing counts over time (sampled `landing` events). Pure: returns a `String`, writes nothing.

use crate::cli::{CheckReport, render_witness};
use crate::history::{History, Operation, Status};
use std::collections::{BTreeSet, HashSet};
use std::fmt::Write;

/// At most this many history events are drawn (a window around the witness).
const MAX_EVENTS: usize = 4000;
const LANE: f64 = 22.0;
const LEFT: f64 = 80.0;
const WIDTH: f64 = 1400.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Height of the landing-curve band.
const BAND: f64 = 70.0;

/// The landing curves: per nemesis, its kernel `applied` counter over time, on the timeline's
/// x axis (empty when the history has no `landing` samples).
fn landing_svg(history: &History, x: &dyn Fn(usize) -> f64) -> String {
    let series = history.landing_series();
    let max = series
        .values()
        .flat_map(|s| s.iter().map(|p| p.1))
        .max()
        .unwrap_or(0);
    if series.is_empty() || max == 0 {
        return String::new();
    }
    const COLORS: [&str; 4] = ["#b91c1c", "#1d4ed8", "#047857", "#7c3aed"];
    let y = |n: u64| 10.0 + (BAND - 20.0) * (1.0 - n as f64 / max as f64);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{BAND}"><text class="lane" x="4" y="14">landed</text><text class="lane" x="4" y="{:.1}">max {max}</text>"#,
        BAND - 6.0
    );
    for (k, (id, points)) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let pts: Vec<String> = points
            .iter()
            .map(|&(pos, n)| format!("{:.1},{:.1}", x(pos), y(n)))
            .collect();
        let last = points.last().map_or(0, |p| p.1);
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"><title>{}: applied {last}</title></polyline><text class="flabel" x="{:.1}" y="{:.1}" style="fill:{color}">{} {last}</text>"#,
            pts.join(" "),
            esc(id),
            points.last().map_or(LEFT, |p| x(p.0)) + 3.0,
            y(last) + 3.0,
            esc(id)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Renders the page.
pub fn render(history: &History, report: &CheckReport) -> String {
    let ops = history.operations().unwrap_or_default();
    let hot: HashSet<usize> = report.witness_ops().into_iter().collect();
    // Window of events to draw.
    let n = history.len().max(1);
    let (lo, hi) = if n <= MAX_EVENTS {
        (0, n)
    } else {
        let center = ops
            .iter()
            .filter(|o| hot.contains(&o.id))
            .map(|o| o.invoke)
            .min()
            .unwrap_or(0);
        let lo = center.saturating_sub(MAX_EVENTS / 2).min(n - MAX_EVENTS);
        (lo, lo + MAX_EVENTS)
    };
    let shown: Vec<&Operation> = ops
        .iter()
        .filter(|o| o.invoke < hi && o.complete.unwrap_or(n) >= lo)
        .collect();
    let procs: Vec<String> = shown
        .iter()
        .map(|o| o.process.to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let lane = |p: &str| procs.iter().position(|q| q == p).unwrap_or(0) as f64;
    let x = |pos: usize| {
        LEFT + (pos.clamp(lo, hi) - lo) as f64 / (hi - lo).max(1) as f64 * (WIDTH - LEFT - 10.0)
    };
    let height = 30.0 + LANE * procs.len() as f64;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}">"#
    );
    for w in history.fault_windows() {
        let (a, b) = (x(w.start), x(w.end.unwrap_or(n)));
        let _ = write!(
            svg,
            r#"<rect class="fault" x="{a:.1}" y="0" width="{:.1}" height="{height}"><title>fault: {}</title></rect><text class="flabel" x="{:.1}" y="10">{}</text>"#,
            (b - a).max(2.0),
            esc(&w.label),
            a + 2.0,
            esc(&w.label)
        );
    }
    for (i, p) in procs.iter().enumerate() {
        let y = 20.0 + LANE * i as f64;
        let _ = write!(
            svg,
            r#"<text class="lane" x="4" y="{:.1}">p{}</text><line class="laneline" x1="{LEFT}" x2="{WIDTH}" y1="{:.1}" y2="{:.1}"/>"#,
            y + 14.0,
            esc(p),
            y + LANE - 2.0,
            y + LANE - 2.0
        );
    }
    for o in &shown {
        let y = 22.0 + LANE * lane(&o.process.to_string());
        let end = o.complete.unwrap_or(n);
        let (a, b) = (x(o.invoke), x(end));
        let class = match (hot.contains(&o.id), o.status) {
            (true, _) => "op hot",
            (_, Status::Ok) => "op ok",
            (_, Status::Fail) => "op fail",
            (_, Status::Pending) => "op info",
        };
        let key = o
            .key
            .as_ref()
            .map(|k| format!(" key={k}"))
            .unwrap_or_default();
        let _ = write!(
            svg,
            r#"<rect class="{class}" x="{a:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" rx="3"><title>#{} p{} {}{} {} -> {} ({:?}, events {}..{})</title></rect>"#,
            (b - a).max(3.0),
            LANE - 6.0,
            o.id,
            esc(&o.process.to_string()),
            esc(&o.f),
            esc(&key),
            esc(&o.input.to_string()),
            esc(&o.output.to_string()),
            o.status,
            o.invoke,
            o.complete.map_or("…".to_string(), |c| c.to_string())
        );
    }
    svg.push_str("</svg>");
    let landing = landing_svg(history, &x);

    let detail = match &report.result {
        crate::CheckResult::Illegal { witness } => render_witness(witness),
        crate::CheckResult::Unknown { reason } => format!("could not decide: {reason}"),
        crate::CheckResult::Ok => "no violation found".to_string(),
    };
    let window = if (lo, hi) == (0, n) {
        String::new()
    } else {
        format!(" (events {lo}..{hi} of {n} shown)")
    };
    format!(
        r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>dst check: {verdict:?}</title>
<style>
body {{ font-family: sans-serif; margin: 1em; }}
.verdict {{ font-size: 1.4em; font-weight: bold; }}
.Ok {{ color: #17803d; }} .Illegal {{ color: #b91c1c; }} .Unknown {{ color: #b45309; }}
.timeline {{ overflow-x: auto; border: 1px solid #ddd; }}
.op.ok {{ fill: #86c99a; }} .op.fail {{ fill: #c8c8c8; }} .op.info {{ fill: #f6c177; fill-opacity: .6; stroke: #b45309; stroke-dasharray: 3 2; }}
.op.hot {{ fill: #ef4444; stroke: #7f1d1d; stroke-width: 1.5; }}
.fault {{ fill: #fecaca; fill-opacity: .45; }} .flabel {{ font-size: 9px; fill: #991b1b; }}
.lane {{ font-size: 11px; fill: #333; }} .laneline {{ stroke: #eee; }}
pre {{ background: #f7f7f7; padding: .8em; white-space: pre-wrap; }}
.legend span {{ display: inline-block; padding: 0 .5em; margin-right: .5em; border-radius: 3px; }}
</style></head><body>
<div class="verdict {verdict:?}">{verdict:?}: {checker}</div>
<p>{ops} operations ({pending} pending), {events} events{window}; checked in {ms:.1} ms.</p>
<p class="legend"><span style="background:#86c99a">ok</span><span style="background:#c8c8c8">fail</span><span style="background:#f6c177">info / pending</span><span style="background:#ef4444;color:#fff">witness</span><span style="background:#fecaca">fault window</span></p>
<div class="timeline">{svg}{landing}</div>
<h3>Details</h3><pre>{detail}</pre>
</body></html>
"#,
        verdict = report.verdict,
        checker = esc(&report.checker),
        ops = report.operations,
        pending = report.pending,
        events = report.events,
        ms = report.elapsed_ms,
        detail = esc(&detail),
    )
}
