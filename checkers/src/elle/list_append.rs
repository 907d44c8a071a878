//! The list-append workload: micro-ops `[append k v]` and `[r k [v ...]]`. Version orders
//! come from the longest read of each key; every other read must be a prefix of it.

use super::anomaly::Anomaly;
use super::cycles::{Explain, find};
use super::graph::{Graph, PROCESS, REALTIME, RW, WR, WW};
use super::{ElleError, Txn, add_order_edges, show_txn, txns};
use crate::history::{HVal, Operation, Status};
use std::collections::{HashMap, HashSet};

/// A read of one key inside a transaction.
struct Read {
    txn: usize,
    key: u32,
    /// Elements, trailing own appends removed (what was read from others).
    ext: Vec<HVal>,
    /// Read before any own append to the key, and followed by one (read-modify-write).
    rmw: bool,
}

/// A parsed micro-op: (is append, key id, read list, appended value).
type Mop = (bool, u32, Option<Vec<HVal>>, HVal);

struct Analysis<'a> {
    ops: &'a [Operation],
    txns: Vec<Txn>,
    keys: Vec<HVal>,
    /// (key, element) → (txn, is that txn's last append to the key)
    writer: HashMap<(u32, HVal), (usize, bool)>,
    /// Version order per key.
    order: Vec<Vec<HVal>>,
    reads: Vec<Read>,
}

/// Checks a list-append history; returns every anomaly found.
pub fn check(ops: &[Operation]) -> Result<Vec<Anomaly>, ElleError> {
    let txns = txns(ops)?;
    let mut key_ids: HashMap<HVal, u32> = HashMap::new();
    let mut keys = Vec::new();
    let mut kid = |k: &HVal| {
        *key_ids.entry(k.clone()).or_insert_with(|| {
            keys.push(k.clone());
            keys.len() as u32 - 1
        })
    };
    let mut anomalies = Vec::new();
    // Writers, and each txn's appends per key.
    let mut writer: HashMap<(u32, HVal), (usize, bool)> = HashMap::new();
    let mut parsed: Vec<Vec<Mop>> = Vec::with_capacity(txns.len());
    for (t, txn) in txns.iter().enumerate() {
        let mut mops = Vec::with_capacity(txn.mops.len());
        for (f, k, v) in &txn.mops {
            let k = kid(k);
            match f.as_str() {
                "append" => {
                    let v = HVal::from(v);
                    // Mark the previous append of this txn to k as not last.
                    for (is_app, pk, _, pv) in mops.iter().rev() {
                        if *is_app && *pk == k {
                            writer.insert((k, HVal::clone(pv)), (t, false));
                            break;
                        }
                    }
                    writer.insert((k, v.clone()), (t, true));
                    mops.push((true, k, None, v));
                }
                "r" | "read" => {
                    let list = v.as_array().map(|a| a.iter().map(HVal::from).collect());
                    mops.push((false, k, list, HVal::Null));
                }
                other => {
                    return Err(ElleError::BadMicroOp {
                        index: ops[txn.op].invoke,
                        f: other.to_string(),
                        workload: "list-append",
                    });
                }
            }
        }
        parsed.push(mops);
    }

    let mut reads = Vec::new();
    for (t, mops) in parsed.iter().enumerate() {
        let txn = &txns[t];
        if txn.status != Status::Ok {
            continue;
        }
        // Per key: Some(expected full list) once known, plus own appends so far.
        let mut known: HashMap<u32, (Option<Vec<HVal>>, Vec<HVal>)> = HashMap::new();
        let mut internal_reported = false;
        for (mi, (is_app, k, list, v)) in mops.iter().enumerate() {
            let entry = known.entry(*k).or_insert((None, Vec::new()));
            if *is_app {
                if let Some(l) = entry.0.as_mut() {
                    l.push(v.clone());
                }
                entry.1.push(v.clone());
                continue;
            }
            let Some(list) = list else { continue };
            // duplicate elements
            let mut seen = HashSet::with_capacity(list.len());
            if let Some(d) = list.iter().find(|x| !seen.insert(*x)) {
                anomalies.push(Anomaly::new(
                    "duplicate-elements",
                    vec![ops[txn.op].id],
                    format!(
                        "{} read key {} = {}, which contains {} more than once.\n",
                        show_txn(ops, txn),
                        txns_key(&keys, *k),
                        fmt_list(list),
                        d
                    ),
                ));
            }
            // internal consistency
            let consistent = match &entry.0 {
                Some(exp) => exp == list,
                None => list.ends_with(&entry.1),
            };
            if !consistent && !internal_reported {
                internal_reported = true;
                let exp = match &entry.0 {
                    Some(e) => fmt_list(e),
                    None => format!("a list ending in {}", fmt_list(&entry.1)),
                };
                anomalies.push(Anomaly::new(
                    "internal",
                    vec![ops[txn.op].id],
                    format!(
                        "{} read key {} = {}, but its own earlier micro-ops imply {exp}.\n",
                        show_txn(ops, txn),
                        txns_key(&keys, *k),
                        fmt_list(list)
                    ),
                ));
            }
            entry.0 = Some(list.clone());
            // G1a / G1b
            for (i, x) in list.iter().enumerate() {
                let Some(&(w, last)) = writer.get(&(*k, x.clone())) else {
                    continue;
                };
                if w == t {
                    continue;
                }
                if txns[w].status == Status::Fail {
                    anomalies.push(Anomaly::new(
                        "G1a",
                        vec![ops[txns[w].op].id, ops[txn.op].id],
                        format!("{} read key {} = {}, including {x}, which was appended by the failed (aborted) {}.\n", show_txn(ops, txn), txns_key(&keys, *k), fmt_list(list), show_txn(ops, &txns[w])),
                    ));
                } else if i + 1 == list.len() && !last {
                    anomalies.push(Anomaly::new(
                        "G1b",
                        vec![ops[txns[w].op].id, ops[txn.op].id],
                        format!("{} read key {} = {}, ending in {x}: an intermediate state of {}, which appended to {} again afterwards.\n", show_txn(ops, txn), txns_key(&keys, *k), fmt_list(list), show_txn(ops, &txns[w]), txns_key(&keys, *k)),
                    ));
                }
            }
            let mut ext = list.clone();
            while ext
                .last()
                .is_some_and(|x| writer.get(&(*k, x.clone())).is_some_and(|w| w.0 == t))
            {
                ext.pop();
            }
            let rmw =
                entry.1.is_empty() && mops[mi + 1..].iter().any(|(a, mk, _, _)| *a && mk == k);
            reads.push(Read {
                txn: t,
                key: *k,
                ext,
                rmw,
            });
        }
    }

    // Version order: the longest read per key; every read must be a prefix of it.
    let mut order: Vec<Vec<HVal>> = vec![Vec::new(); keys.len()];
    let mut full: Vec<Option<(usize, Vec<HVal>)>> = vec![None; keys.len()];
    for (t, mops) in parsed.iter().enumerate() {
        if txns[t].status != Status::Ok {
            continue;
        }
        for (is_app, k, list, _) in mops {
            if let (false, Some(l)) = (is_app, list)
                && full[*k as usize]
                    .as_ref()
                    .is_none_or(|(_, f)| l.len() > f.len())
            {
                full[*k as usize] = Some((t, l.clone()));
            }
        }
    }
    for (k, f) in full.into_iter().enumerate() {
        if let Some((_, l)) = f {
            order[k] = l;
        }
    }
    let mut incompatible: HashSet<u32> = HashSet::new();
    for r in &reads {
        let o = &order[r.key as usize];
        if !o.starts_with(&r.ext) && incompatible.insert(r.key) {
            anomalies.push(Anomaly::new(
                "incompatible-order",
                vec![ops[txns[r.txn].op].id],
                format!("{} read key {} = {}, which is not a prefix of the longest read {}: no single version order explains both.\n", show_txn(ops, &txns[r.txn]), txns_key(&keys, r.key), fmt_list(&r.ext), fmt_list(o)),
            ));
        }
    }

    // Lost update: two committed txns read the same version of k and both appended to it.
    let mut by_version: HashMap<(u32, usize), Vec<usize>> = HashMap::new();
    for r in &reads {
        if r.rmw && order[r.key as usize].starts_with(&r.ext) {
            let v = by_version.entry((r.key, r.ext.len())).or_default();
            if !v.contains(&r.txn) {
                v.push(r.txn);
            }
        }
    }
    let mut lost: Vec<_> = by_version
        .into_iter()
        .filter(|(_, v)| v.len() > 1)
        .collect();
    lost.sort();
    for ((k, len), ts) in lost {
        let version = fmt_list(&order[k as usize][..len]);
        let who: Vec<String> = ts.iter().map(|&t| show_txn(ops, &txns[t])).collect();
        anomalies.push(Anomaly::new(
            "lost-update",
            ts.iter().map(|&t| ops[txns[t].op].id).collect(),
            format!("These transactions all read key {} = {version} and then appended to it; each overwrote the others' update:\n  {}\n", txns_key(&keys, k), who.join("\n  ")),
        ));
    }

    let a = Analysis {
        ops,
        txns,
        keys,
        writer,
        order,
        reads,
    };
    let g = a.graph();
    let nodes: Vec<usize> = (0..a.txns.len())
        .filter(|&t| a.txns[t].status != Status::Fail)
        .collect();
    anomalies.extend(find(&g, &nodes, &a));
    Ok(anomalies)
}

fn txns_key(keys: &[HVal], k: u32) -> String {
    keys[k as usize].to_string()
}

fn fmt_list(l: &[HVal]) -> String {
    let items: Vec<String> = l.iter().map(HVal::to_string).collect();
    format!("[{}]", items.join(" "))
}

impl Analysis<'_> {
    fn w(&self, k: u32, v: &HVal) -> Option<usize> {
        self.writer
            .get(&(k, v.clone()))
            .map(|w| w.0)
            .filter(|&w| self.txns[w].status != Status::Fail)
    }

    fn graph(&self) -> Graph {
        let mut g = Graph::new(self.txns.len());
        for (k, o) in self.order.iter().enumerate() {
            for pair in o.windows(2) {
                if let (Some(a), Some(b)) = (self.w(k as u32, &pair[0]), self.w(k as u32, &pair[1]))
                {
                    g.add(a, b, WW);
                }
            }
        }
        for r in &self.reads {
            let o = &self.order[r.key as usize];
            if let Some(last) = r.ext.last()
                && let Some(w) = self.w(r.key, last)
            {
                g.add(w, r.txn, WR);
            }
            if o.starts_with(&r.ext)
                && let Some(next) = o.get(r.ext.len())
                && let Some(w) = self.w(r.key, next)
            {
                g.add(r.txn, w, RW);
            }
        }
        add_order_edges(&mut g, self.ops, &self.txns);
        g.finish();
        g
    }

    fn key(&self, k: u32) -> String {
        txns_key(&self.keys, k)
    }
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
            WW => {
                for (k, o) in self.order.iter().enumerate() {
                    for p in o.windows(2) {
                        if self.w(k as u32, &p[0]) == Some(a) && self.w(k as u32, &p[1]) == Some(b)
                        {
                            return format!(
                                "on key {}, {} was appended right after {}",
                                self.key(k as u32),
                                p[1],
                                p[0]
                            );
                        }
                    }
                }
            }
            WR => {
                for r in self.reads.iter().filter(|r| r.txn == b) {
                    if let Some(last) = r.ext.last()
                        && self.w(r.key, last) == Some(a)
                    {
                        return format!(
                            "the second read key {} = {}, which ends with the first's append of {last}",
                            self.key(r.key),
                            fmt_list(&r.ext)
                        );
                    }
                }
            }
            RW => {
                for r in self.reads.iter().filter(|r| r.txn == a) {
                    if let Some(next) = self.order[r.key as usize].get(r.ext.len())
                        && self.w(r.key, next) == Some(b)
                    {
                        return format!(
                            "the first read key {} = {}, which does not yet include the second's append of {next}",
                            self.key(r.key),
                            fmt_list(&r.ext)
                        );
                    }
                }
            }
            PROCESS => {
                return format!(
                    "both ran on process {}, the first before the second",
                    self.ops[self.txns[a].op].process
                );
            }
            REALTIME => {
                let (oa, ob) = (&self.ops[self.txns[a].op], &self.ops[self.txns[b].op]);
                return format!(
                    "the first completed (#{}) before the second was invoked (#{})",
                    oa.complete.unwrap_or(0),
                    ob.invoke
                );
            }
            _ => {}
        }
        "dependency".to_string()
    }
}
