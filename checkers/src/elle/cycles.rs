//! Finding and classifying dependency cycles (G0, G1c, G-single, G2-item and their
//! `-process` / `-realtime` variants) inside strongly connected components.

use super::anomaly::Anomaly;
use super::graph::{ALL, Graph, PROCESS, REALTIME, RW, WR, WW, kind_name};
use super::scc::components;
use std::collections::BTreeSet;

/// Explains one edge of a cycle in workload terms.
pub(crate) trait Explain {
    /// Why `a` must precede `b` by an edge of `kind` (a single kind bit).
    fn why(&self, a: usize, b: usize, kind: u8) -> String;
    /// A short text of node `n`'s transaction.
    fn show(&self, n: usize) -> String;
    /// The operation id of node `n`.
    fn op_id(&self, n: usize) -> usize;
}

/// At most this many rw edges are tried per component when looking for G-single.
const SINGLE_TRIES: usize = 2_000;
/// At most this many components are examined.
const MAX_SCCS: usize = 64;

/// Finds cycle anomalies in `g` (nodes listed in `nodes`).
pub(crate) fn find(g: &Graph, nodes: &[usize], ex: &dyn Explain) -> Vec<Anomaly> {
    let all_in = |_: usize| true;
    let sccs = components(g, ALL, nodes, &all_in);
    let mut comp_of = vec![u32::MAX; g.len()];
    let mut seen = vec![0u32; g.len()];
    let mut stamp = 0u32;
    let mut out = Vec::new();
    let mut names: BTreeSet<String> = BTreeSet::new();
    for (ci, scc) in sccs.iter().enumerate().take(MAX_SCCS) {
        for &n in scc {
            comp_of[n] = ci as u32;
        }
        let inside = |n: usize| comp_of[n] == ci as u32;
        let mut found: Vec<Vec<(usize, u8)>> = Vec::new();
        // Base classes: data edges only.
        let base = [(WW, WW), (WR, WW | WR), (RW, WW | WR | RW)];
        for (i, &(x, m)) in base.iter().enumerate() {
            if i == 2 {
                // G-single first: exactly one rw edge, the rest ww/wr.
                if let Some(c) = single(g, scc, &inside, &mut seen, &mut stamp) {
                    found.push(c);
                    continue;
                }
            }
            if let Some(c) = with_edge(g, scc, x, m, &inside, &mut seen, &mut stamp) {
                found.push(c);
            }
        }
        if found.is_empty() {
            for (x, m) in [(PROCESS, WW | WR | RW | PROCESS), (REALTIME, ALL)] {
                if let Some(c) = with_edge(g, scc, x, m, &inside, &mut seen, &mut stamp) {
                    found.push(c);
                    break;
                }
            }
        }
        for c in found {
            let name = classify(&c);
            if names.insert(format!("{ci}/{name}")) {
                out.push(Anomaly::new(
                    &name,
                    c.iter().map(|&(n, _)| ex.op_id(n)).collect(),
                    explain(&c, ex),
                ));
            }
        }
    }
    out
}

/// Picks one kind for each cycle edge, data edges first.
fn label(g: &Graph, nodes: &[usize], allowed: u8) -> Vec<(usize, u8)> {
    (0..nodes.len())
        .map(|i| {
            let (a, b) = (nodes[i], nodes[(i + 1) % nodes.len()]);
            let m = g.mask(a, b) & allowed;
            let k = [WW, WR, RW, PROCESS, REALTIME]
                .into_iter()
                .find(|k| m & k != 0)
                .unwrap_or(0);
            (a, k)
        })
        .collect()
}

/// A cycle using an edge of kind `x` and otherwise edges in `m`.
fn with_edge(
    g: &Graph,
    scc: &[usize],
    x: u8,
    m: u8,
    inside: &dyn Fn(usize) -> bool,
    seen: &mut [u32],
    stamp: &mut u32,
) -> Option<Vec<(usize, u8)>> {
    for sub in components(g, m, scc, inside) {
        let mut in_sub = vec![false; g.len()];
        for &n in &sub {
            in_sub[n] = true;
        }
        let in_sub_f = |n: usize| in_sub[n];
        for &a in &sub {
            for &(b, k) in g.out(a) {
                let b = b as usize;
                if k & x != 0 && in_sub[b] {
                    *stamp += 1;
                    if let Some(p) = g.path(b, a, m, &in_sub_f, seen, *stamp) {
                        let mut nodes = vec![a];
                        nodes.extend(&p[..p.len() - 1]);
                        let mut c = label(g, &nodes, m);
                        c[0].1 = if k & x != 0 { x } else { c[0].1 };
                        return Some(c);
                    }
                }
            }
        }
    }
    None
}

/// A cycle with exactly one rw edge.
fn single(
    g: &Graph,
    scc: &[usize],
    inside: &dyn Fn(usize) -> bool,
    seen: &mut [u32],
    stamp: &mut u32,
) -> Option<Vec<(usize, u8)>> {
    let mut tries = 0;
    for &a in scc {
        for &(b, k) in g.out(a) {
            let b = b as usize;
            if k & RW == 0 || !inside(b) {
                continue;
            }
            tries += 1;
            if tries > SINGLE_TRIES {
                return None;
            }
            *stamp += 1;
            if let Some(p) = g.path(b, a, WW | WR, inside, seen, *stamp) {
                let mut nodes = vec![a];
                nodes.extend(&p[..p.len() - 1]);
                let mut c = label(g, &nodes, WW | WR);
                c[0].1 = RW;
                return Some(c);
            }
        }
    }
    None
}

/// Names a labelled cycle.
pub(crate) fn classify(c: &[(usize, u8)]) -> String {
    let rw = c.iter().filter(|e| e.1 == RW).count();
    let wr = c.iter().any(|e| e.1 == WR);
    let base = match rw {
        0 if wr => "G1c",
        0 => "G0",
        1 => "G-single",
        _ => "G2-item",
    };
    if c.iter().any(|e| e.1 == REALTIME) {
        format!("{base}-realtime")
    } else if c.iter().any(|e| e.1 == PROCESS) {
        format!("{base}-process")
    } else {
        base.to_string()
    }
}

fn explain(c: &[(usize, u8)], ex: &dyn Explain) -> String {
    let mut s = String::from("Let:\n");
    for (i, &(n, _)) in c.iter().enumerate() {
        s.push_str(&format!("  T{} = {}\n", i + 1, ex.show(n)));
    }
    s.push_str("Then:\n");
    for (i, &(a, k)) in c.iter().enumerate() {
        let j = (i + 1) % c.len();
        let b = c[j].0;
        let lead = if j == 0 { "However, " } else { "" };
        s.push_str(&format!(
            "  - {lead}T{} < T{} ({}): {}\n",
            i + 1,
            j + 1,
            kind_name(k),
            ex.why(a, b, k)
        ));
    }
    s.push_str("  A cycle: no order of these transactions is consistent with all of them.\n");
    s
}
