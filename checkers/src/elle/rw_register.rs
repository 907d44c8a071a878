//! The rw-register workload: micro-ops `[w k v]` and `[r k v|nil]`, written values unique
//! per key. Version order comes from the initial `nil` preceding every write and from
//! writes that follow a read in the same transaction. Only a transaction's last write to a
//! key is a version; reading an earlier one is G1b.

use super::anomaly::Anomaly;
use super::cycles::{Explain, find};
use super::graph::{Graph, PROCESS, REALTIME, RW, WR, WW};
use super::{ElleError, Txn, add_order_edges, show_txn, txns};
use crate::history::{HVal, Operation, Status};
use std::collections::HashMap;

struct Analysis<'a> {
    ops: &'a [Operation],
    txns: Vec<Txn>,
    reasons: HashMap<(usize, usize, u8), String>,
}

/// Checks an rw-register history; returns every anomaly found.
pub fn check(ops: &[Operation]) -> Result<Vec<Anomaly>, ElleError> {
    let txns = txns(ops)?;
    let mut anomalies = Vec::new();
    // (key, value) → (writer txn, last write of that key in the txn)
    let mut writer: HashMap<(HVal, HVal), (usize, bool)> = HashMap::new();
    let mut writers_of: HashMap<HVal, Vec<usize>> = HashMap::new();
    // Version precedence pairs (key, v1, v2): v1 < v2.
    let mut prec: Vec<(HVal, HVal, HVal)> = Vec::new();
    for (t, txn) in txns.iter().enumerate() {
        let mut last: HashMap<&HVal, HVal> = HashMap::new();
        for (f, k, v) in &txn.mops {
            match f.as_str() {
                "w" | "write" => {
                    let v = HVal::from(v);
                    // Only a transaction's last write to a key is a version others may see.
                    if let Some(prev) = last.insert(k, v.clone()) {
                        writer.insert((k.clone(), prev), (t, false));
                    }
                    writer.insert((k.clone(), v), (t, true));
                    if txn.status != Status::Fail {
                        writers_of.entry(k.clone()).or_default().push(t);
                    }
                }
                "r" | "read" => {}
                other => {
                    return Err(ElleError::BadMicroOp {
                        index: ops[txn.op].invoke,
                        f: other.to_string(),
                        workload: "rw-register",
                    });
                }
            }
        }
    }
    // External reads of ok txns: (txn, key, value).
    let mut ext_reads: Vec<(usize, HVal, HVal)> = Vec::new();
    for (t, txn) in txns.iter().enumerate() {
        if txn.status != Status::Ok {
            continue;
        }
        let mut known: HashMap<&HVal, (HVal, bool)> = HashMap::new(); // value, own write
        let mut reported = false;
        for (f, k, v) in &txn.mops {
            let v = HVal::from(v);
            if f == "w" || f == "write" {
                if let Some((r, false)) = known.get(k) {
                    prec.push((k.clone(), r.clone(), v.clone()));
                }
                known.insert(k, (v, true));
                continue;
            }
            match known.get(k) {
                Some((exp, own)) if *exp != v => {
                    if !reported {
                        reported = true;
                        let src = if *own {
                            "its own write"
                        } else {
                            "its earlier read"
                        };
                        anomalies.push(Anomaly::new(
                            "internal",
                            vec![ops[txn.op].id],
                            format!(
                                "{} read key {k} = {v}, but {src} says {exp}.\n",
                                show_txn(ops, txn)
                            ),
                        ));
                    }
                }
                Some(_) => {}
                None => {
                    known.insert(k, (v.clone(), false));
                    ext_reads.push((t, k.clone(), v));
                }
            }
        }
    }
    let mut reasons: HashMap<(usize, usize, u8), String> = HashMap::new();
    let mut g = Graph::new(txns.len());
    let mut edge = |g: &mut Graph, a: usize, b: usize, k: u8, why: &dyn Fn() -> String| {
        if a != b {
            g.add(a, b, k);
            reasons.entry((a, b, k)).or_insert_with(why);
        }
    };
    let live =
        |w: Option<&(usize, bool)>| w.map(|w| w.0).filter(|&w| txns[w].status != Status::Fail);
    let mut readers: HashMap<(HVal, HVal), Vec<usize>> = HashMap::new();
    let mut by_version: HashMap<(HVal, HVal), Vec<usize>> = HashMap::new();
    for (t, k, v) in &ext_reads {
        let (t, k, v) = (*t, k, v);
        readers.entry((k.clone(), v.clone())).or_default().push(t);
        let writes_k = txns[t]
            .mops
            .iter()
            .any(|(f, mk, _)| (f == "w" || f == "write") && mk == k);
        if writes_k
            && !by_version
                .get(&(k.clone(), v.clone()))
                .is_some_and(|x| x.contains(&t))
        {
            by_version
                .entry((k.clone(), v.clone()))
                .or_default()
                .push(t);
        }
        if *v == HVal::Null {
            for &w in writers_of.get(k).into_iter().flatten() {
                edge(&mut g, t, w, RW, &|| {
                    format!(
                        "the first read key {k} = nil (the initial version), which the second's write replaced"
                    )
                });
            }
            continue;
        }
        match writer.get(&(k.clone(), v.clone())) {
            None => {}
            Some(&(w, last)) if w != t => {
                if txns[w].status == Status::Fail {
                    anomalies.push(Anomaly::new(
                        "G1a",
                        vec![ops[txns[w].op].id, ops[txns[t].op].id],
                        format!(
                            "{} read key {k} = {v}, written by the failed (aborted) {}.\n",
                            show_txn(ops, &txns[t]),
                            show_txn(ops, &txns[w])
                        ),
                    ));
                    continue;
                }
                if !last {
                    anomalies.push(Anomaly::new(
                        "G1b",
                        vec![ops[txns[w].op].id, ops[txns[t].op].id],
                        format!("{} read key {k} = {v}, an intermediate write of {}, which wrote {k} again afterwards.\n", show_txn(ops, &txns[t]), show_txn(ops, &txns[w])),
                    ));
                    continue;
                }
                edge(&mut g, w, t, WR, &|| {
                    format!("the second read key {k} = {v}, which the first wrote")
                });
            }
            Some(_) => {}
        }
    }
    for (k, v1, v2) in &prec {
        let Some(w2) = live(writer.get(&(k.clone(), v2.clone()))) else {
            continue;
        };
        if let Some(w1) = live(writer.get(&(k.clone(), v1.clone()))) {
            edge(&mut g, w1, w2, WW, &|| {
                format!("on key {k}, version {v2} follows {v1}")
            });
        }
        for &r in readers.get(&(k.clone(), v1.clone())).into_iter().flatten() {
            edge(&mut g, r, w2, RW, &|| {
                format!("the first read key {k} = {v1}, which the second overwrote with {v2}")
            });
        }
    }
    let mut lost: Vec<_> = by_version
        .into_iter()
        .filter(|(_, v)| v.len() > 1)
        .collect();
    lost.sort();
    for ((k, v), ts) in lost {
        let who: Vec<String> = ts.iter().map(|&t| show_txn(ops, &txns[t])).collect();
        anomalies.push(Anomaly::new(
            "lost-update",
            ts.iter().map(|&t| ops[txns[t].op].id).collect(),
            format!("These transactions all read key {k} = {v} and then wrote it; each overwrote the others' update:\n  {}\n", who.join("\n  ")),
        ));
    }
    add_order_edges(&mut g, ops, &txns);
    g.finish();
    let a = Analysis { ops, txns, reasons };
    let nodes: Vec<usize> = (0..a.txns.len())
        .filter(|&t| a.txns[t].status != Status::Fail)
        .collect();
    anomalies.extend(find(&g, &nodes, &a));
    Ok(anomalies)
}

impl Explain for Analysis<'_> {
    fn op_id(&self, n: usize) -> usize {
        self.ops[self.txns[n].op].id
    }

    fn show(&self, n: usize) -> String {
        show_txn(self.ops, &self.txns[n])
    }

    fn why(&self, a: usize, b: usize, kind: u8) -> String {
        match kind {
            PROCESS => format!(
                "both ran on process {}, the first before the second",
                self.ops[self.txns[a].op].process
            ),
            REALTIME => {
                let (oa, ob) = (&self.ops[self.txns[a].op], &self.ops[self.txns[b].op]);
                format!(
                    "the first completed (#{}) before the second was invoked (#{})",
                    oa.complete.unwrap_or(0),
                    ob.invoke
                )
            }
            k => self
                .reasons
                .get(&(a, b, k))
                .cloned()
                .unwrap_or_else(|| "dependency".to_string()),
        }
    }
}
