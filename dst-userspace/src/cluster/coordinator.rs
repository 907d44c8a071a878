//! Applies a cluster fault on every node daemon atomically: prepare on all (each daemon
//! validates, resolves and loads, nothing active), then commit on all; any refusal, timeout or
//! unreachable node aborts the transaction everywhere (prepared sets are dropped, committed
//! faults cleared). Heal clears a transaction's faults; evidence gathers every node's counters.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use futures::future::join_all;
use hyper::Method;
use serde::Serialize;
use serde_json::{Value, json};

use super::{ClusterError, ClusterFault, Inventory, plan::per_node};
use crate::remote::Remote;

/// Prefix of every rule id the coordinator installs.
pub const TXN_PREFIX: &str = "dstc-";

/// What happened on one node in one step.
#[derive(Clone, Debug, Serialize)]
pub struct NodeStep {
    /// The node.
    pub node: String,
    /// Whether the step succeeded.
    pub ok: bool,
    /// HTTP status (0 = no answer).
    pub status: u16,
    /// Milliseconds the step took on this node.
    pub ms: f64,
    /// The daemon's error or why it could not be reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Fault ids involved.
    pub faults: Vec<String>,
}

/// The outcome of a cluster apply.
#[derive(Clone, Debug, Serialize)]
pub struct ApplyReport {
    /// Transaction id (prefix of every rule id).
    pub txn: String,
    /// The fault as asked.
    pub fault: String,
    /// Whether every node committed.
    pub committed: bool,
    /// Prepare results per node.
    pub prepare: Vec<NodeStep>,
    /// Commit results per node (empty when prepare failed).
    pub commit: Vec<NodeStep>,
    /// Abort results per node when rolled back.
    pub rollback: Vec<NodeStep>,
    /// Wall time of prepare, commit, rollback and the whole apply (ms).
    pub prepare_ms: f64,
    /// Commit phase.
    pub commit_ms: f64,
    /// Rollback phase (0 when none).
    pub rollback_ms: f64,
    /// Whole apply.
    pub total_ms: f64,
}

/// A transaction after its prepare phase, waiting for [`Coordinator::commit`].
#[derive(Debug)]
pub struct Prepared {
    /// Nodes that got a rule set.
    nodes: Vec<String>,
    /// When the prepare began.
    start: Instant,
    /// The report so far (prepare filled in).
    pub report: ApplyReport,
}

/// The coordinator over an inventory.
pub struct Coordinator {
    inv: Inventory,
    remotes: BTreeMap<String, Remote>,
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn ids(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().or_else(|| f["id"].as_str()).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A fresh transaction id: `dstc-<unix ms>-<pid>`.
pub fn new_txn() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    format!("{TXN_PREFIX}{now}-{}", std::process::id())
}

impl Coordinator {
    /// Loads every node's credentials (a missing token file fails here, before any request).
    pub fn new(inv: Inventory, timeout: Duration) -> Result<Self, ClusterError> {
        let mut remotes = BTreeMap::new();
        for n in &inv.nodes {
            remotes.insert(n.name.clone(), n.remote(timeout)?);
        }
        Ok(Self { inv, remotes })
    }

    /// The inventory.
    pub fn inventory(&self) -> &Inventory {
        &self.inv
    }

    async fn step(
        &self,
        node: &str,
        method: Method,
        path: String,
        body: Option<Vec<u8>>,
        key: &str,
    ) -> NodeStep {
        let t = Instant::now();
        let r = self.remotes[node].request(method, &path, body).await;
        let (ok, status, error, faults) = match r {
            Ok(r) => {
                let v = r.json();
                let err = (!r.ok()).then(|| {
                    let field = v["field"]
                        .as_str()
                        .map(|f| format!(" [{f}]"))
                        .unwrap_or_default();
                    format!(
                        "HTTP {}{field}: {}",
                        r.status,
                        v["error"].as_str().unwrap_or("")
                    )
                });
                (r.ok(), r.status, err, ids(&v, key))
            }
            Err(e) => (false, 0, Some(e.to_string()), Vec::new()),
        };
        NodeStep {
            node: node.to_string(),
            ok,
            status,
            ms: t.elapsed().as_secs_f64() * 1000.0,
            error,
            faults,
        }
    }

    /// Applies `fault` on every node, all or nothing.
    pub async fn apply(
        &self,
        fault: &ClusterFault,
        duration: Option<Duration>,
    ) -> Result<ApplyReport, ClusterError> {
        self.apply_with(fault, duration, || {}).await
    }

    /// [`Coordinator::apply`] with a hook run between prepare and commit (tests use it to kill
    /// a daemon mid-apply).
    pub async fn apply_with(
        &self,
        fault: &ClusterFault,
        duration: Option<Duration>,
        between: impl FnOnce(),
    ) -> Result<ApplyReport, ClusterError> {
        let prepared = self.prepare(fault, duration).await?;
        if prepared.report.prepare.iter().all(|s| s.ok) {
            between();
        }
        Ok(self.commit(prepared).await)
    }

    /// First phase alone: prepares `fault` on every node (nothing acts yet; a daemon forgets
    /// a prepared set after 30 s). [`Coordinator::commit`] finishes it, all or nothing.
    pub async fn prepare(
        &self,
        fault: &ClusterFault,
        duration: Option<Duration>,
    ) -> Result<Prepared, ClusterError> {
        let txn = new_txn();
        let sets = per_node(&self.inv, fault, &txn, duration)?;
        let start = Instant::now();
        let t = Instant::now();
        let prepare: Vec<NodeStep> = join_all(sets.iter().map(|(node, set)| {
            let body = serde_json::to_vec(set).unwrap_or_default();
            self.step(
                node,
                Method::POST,
                format!("/v1/txn/{txn}?ttl=30"),
                Some(body),
                "faults",
            )
        }))
        .await;
        let prepare_ms = ms(t);
        Ok(Prepared {
            nodes: sets.into_keys().collect(),
            start,
            report: ApplyReport {
                txn,
                fault: fault.describe(),
                committed: false,
                prepare,
                commit: Vec::new(),
                rollback: Vec::new(),
                prepare_ms,
                commit_ms: 0.0,
                rollback_ms: 0.0,
                total_ms: 0.0,
            },
        })
    }

    /// Second phase: commits a prepared transaction on every node when every node prepared it;
    /// otherwise, or when any commit fails, aborts it everywhere (rollback).
    pub async fn commit(&self, prepared: Prepared) -> ApplyReport {
        let Prepared {
            nodes,
            start,
            mut report,
        } = prepared;
        let txn = report.txn.clone();
        if report.prepare.iter().all(|s| s.ok) {
            let t = Instant::now();
            report.commit = join_all(nodes.iter().map(|node| {
                self.step(
                    node,
                    Method::POST,
                    format!("/v1/txn/{txn}/commit"),
                    None,
                    "faults",
                )
            }))
            .await;
            report.commit_ms = ms(t);
            report.committed = report.commit.iter().all(|s| s.ok);
        }
        if !report.committed {
            let t = Instant::now();
            report.rollback = join_all(nodes.iter().map(|node| {
                self.step(
                    node,
                    Method::DELETE,
                    format!("/v1/txn/{txn}"),
                    None,
                    "cleared",
                )
            }))
            .await;
            report.rollback_ms = ms(t);
        }
        report.total_ms = ms(start);
        report
    }

    /// Clears the faults of `txn` (or of every coordinator transaction) on every node.
    pub async fn heal(&self, txn: Option<&str>) -> Vec<NodeStep> {
        let prefix = txn.map_or(TXN_PREFIX.to_string(), |t| format!("{t}."));
        join_all(self.inv.nodes.iter().map(|n| {
            let prefix = prefix.clone();
            async move {
                let t = Instant::now();
                let list = self
                    .step(&n.name, Method::GET, "/v1/faults".into(), None, "faults")
                    .await;
                if !list.ok {
                    return list;
                }
                let mut cleared = Vec::new();
                let mut error = None;
                for id in list.faults.iter().filter(|id| id.starts_with(&prefix)) {
                    let s = self
                        .step(
                            &n.name,
                            Method::DELETE,
                            format!("/v1/faults/{id}"),
                            None,
                            "",
                        )
                        .await;
                    if s.ok {
                        cleared.push(id.clone());
                    } else {
                        error = s.error;
                    }
                }
                if let Some(t) = txn {
                    let _ = self
                        .step(&n.name, Method::DELETE, format!("/v1/txn/{t}"), None, "")
                        .await;
                }
                NodeStep {
                    node: n.name.clone(),
                    ok: error.is_none(),
                    status: 200,
                    ms: ms(t),
                    error,
                    faults: cleared,
                }
            }
        }))
        .await
    }

    /// Every node's faults of `txn` (or of every coordinator transaction), active and ended,
    /// with their evidence; unreachable nodes are reported as such.
    pub async fn evidence(&self, txn: Option<&str>) -> Value {
        let prefix = txn.map_or(TXN_PREFIX.to_string(), |t| format!("{t}."));
        let nodes = join_all(self.inv.nodes.iter().map(|n| {
            let prefix = prefix.clone();
            async move {
                match self.remotes[&n.name]
                    .request(Method::GET, "/v1/faults?all=true", None)
                    .await
                {
                    Ok(r) if r.ok() => {
                        let faults: Vec<Value> = r.json()["faults"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                            .into_iter()
                            .filter(|f| f["id"].as_str().is_some_and(|i| i.starts_with(&prefix)))
                            .collect();
                        json!({"node": n.name, "reachable": true, "faults": faults})
                    }
                    Ok(r) => json!({"node": n.name, "reachable": true, "error":
                        format!("HTTP {}: {}", r.status, r.json()["error"])}),
                    Err(e) => json!({"node": n.name, "reachable": false, "error": e.to_string()}),
                }
            }
        }))
        .await;
        json!({ "txn": txn, "nodes": nodes })
    }

    /// Each node's health answer.
    pub async fn status(&self) -> Vec<NodeStep> {
        join_all(
            self.inv
                .nodes
                .iter()
                .map(|n| self.step(&n.name, Method::GET, "/v1/health".into(), None, "")),
        )
        .await
    }
}
