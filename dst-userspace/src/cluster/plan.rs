//! Cluster-level faults and their per-node rules. A partition {A,B}|{C} becomes, on every node,
//! an egress drop towards each node of the other groups (both sides cut, so the partition is
//! symmetric and holds even if one node's rules fail to act); isolating a node is the partition
//! {node}|{rest}; a delay between groups is an egress delay towards the other groups; directed
//! cuts (asymmetric partitions, a majorities ring) drop only from each `from` towards its `to`.

use std::{collections::BTreeMap, time::Duration};

use super::{ClusterError, Inventory};
use crate::{
    fault::{FaultSet, NetAction, NetFaultSpec, NetTarget, Schedule},
    net::Direction,
};

/// A fault over the whole cluster.
#[derive(Clone, Debug, PartialEq)]
pub enum ClusterFault {
    /// Nodes in different groups cannot reach each other.
    Partition {
        /// Node groups (names).
        groups: Vec<Vec<String>>,
    },
    /// One node cut off from every other.
    Isolate {
        /// The node.
        node: String,
    },
    /// Traffic between groups is delayed.
    Delay {
        /// Node groups.
        groups: Vec<Vec<String>>,
        /// Added one-way delay.
        base: Duration,
        /// Spread.
        jitter: Duration,
    },
    /// Traffic from each `from` node to its `to` node is dropped (the reverse only when listed):
    /// shapes that node groups cannot express, such as one-way partitions.
    Cuts {
        /// Directed (from, to) node pairs.
        cuts: Vec<(String, String)>,
    },
}

impl ClusterFault {
    /// Short description for reports.
    pub fn describe(&self) -> String {
        let g = |groups: &Vec<Vec<String>>| {
            groups
                .iter()
                .map(|g| format!("{{{}}}", g.join(",")))
                .collect::<Vec<_>>()
                .join("|")
        };
        match self {
            Self::Partition { groups } => format!("partition {}", g(groups)),
            Self::Isolate { node } => format!("isolate {node}"),
            Self::Delay {
                groups,
                base,
                jitter,
            } => {
                format!("delay {base:?}±{jitter:?} between {}", g(groups))
            }
            Self::Cuts { cuts } => format!(
                "cut {}",
                cuts.iter()
                    .map(|(a, b)| format!("{a}->{b}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        }
    }

    /// The groups (isolate: the node, then everyone else).
    fn groups(&self, inv: &Inventory) -> Vec<Vec<String>> {
        match self {
            Self::Partition { groups } | Self::Delay { groups, .. } => groups.clone(),
            Self::Cuts { .. } => Vec::new(),
            Self::Isolate { node } => vec![
                vec![node.clone()],
                inv.nodes
                    .iter()
                    .filter(|n| &n.name != node)
                    .map(|n| n.name.clone())
                    .collect(),
            ],
        }
    }

    fn action(&self) -> NetAction {
        match self {
            Self::Delay { base, jitter, .. } => NetAction::Delay {
                base: *base,
                jitter: *jitter,
                distribution: Default::default(),
            },
            _ => NetAction::Drop { probability: 1.0 },
        }
    }
}

/// Per-node fault sets (nodes without a rule are left out). Rule ids are `{txn}.{from}-{to}`.
pub fn per_node(
    inv: &Inventory,
    fault: &ClusterFault,
    txn: &str,
    duration: Option<Duration>,
) -> Result<BTreeMap<String, FaultSet>, ClusterError> {
    let pairs = directed_pairs(inv, fault)?;
    let mut out: BTreeMap<String, FaultSet> = BTreeMap::new();
    for (from, to) in pairs {
        let node = inv.node(&from).expect("checked by directed_pairs");
        let peer = inv.node(&to).expect("checked by directed_pairs");
        let ip = peer.data_ip().expect("inventory checks ip");
        out.entry(from.clone()).or_default().net.push(NetFaultSpec {
            id: Some(format!("{txn}.{from}-{to}")),
            target: NetTarget {
                netns: node.netns.clone(),
                dev: Some(node.dev.clone()),
                ..Default::default()
            },
            direction: Direction::Egress,
            proto: None,
            src: None,
            dst: Some(format!("{ip}/32")),
            sport: None,
            dport: None,
            action: fault.action(),
            seed: Some(1),
            schedule: Schedule {
                duration,
                ..Default::default()
            },
        });
    }
    Ok(out)
}

/// The directed (from, to) node pairs whose traffic the fault acts on, sorted: every cross
/// pair of the groups, or the listed cuts. Unknown nodes, a node in two groups, fewer than two
/// non-empty groups, a cut from a node to itself or no cut at all are refused.
pub fn directed_pairs(
    inv: &Inventory,
    fault: &ClusterFault,
) -> Result<Vec<(String, String)>, ClusterError> {
    let invalid = |field: &str, problem: String| ClusterError::Invalid {
        field: field.into(),
        problem,
    };
    let known = |field: &str, n: &String| {
        if inv.node(n).is_none() {
            Err(invalid(field, format!("{n} is not in the inventory")))
        } else {
            Ok(())
        }
    };
    if let ClusterFault::Cuts { cuts } = fault {
        if cuts.is_empty() {
            return Err(invalid("cuts", "give at least one (from, to) pair".into()));
        }
        let mut pairs = std::collections::BTreeSet::new();
        for (a, b) in cuts {
            known("cuts", a)?;
            known("cuts", b)?;
            if a == b {
                return Err(invalid(
                    "cuts",
                    format!("{a} -> {a}: a node cannot be cut from itself"),
                ));
            }
            pairs.insert((a.clone(), b.clone()));
        }
        return Ok(pairs.into_iter().collect());
    }
    let groups = fault.groups(inv);
    let mut group_of = BTreeMap::new();
    for (gi, g) in groups.iter().enumerate() {
        for n in g {
            known("groups", n)?;
            if group_of.insert(n.clone(), gi).is_some() {
                return Err(invalid("groups", format!("{n} is in two groups")));
            }
        }
    }
    if groups.iter().filter(|g| !g.is_empty()).count() < 2 {
        return Err(invalid(
            "groups",
            "give at least two non-empty groups".into(),
        ));
    }
    let mut pairs = Vec::new();
    for (from, gi) in &group_of {
        for (to, gj) in &group_of {
            if gi != gj {
                pairs.push((from.clone(), to.clone()));
            }
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn inv() -> Inventory {
        let mut t = String::new();
        for i in 1..=4 {
            t.push_str(&format!(
                "[[node]]\nname='n{i}'\naddress='10.9.0.{i}:7070'\ntoken_file='t'\n"
            ));
        }
        Inventory::parse(&t, Path::new("/"), Path::new("/i")).unwrap()
    }

    #[test]
    fn partition_cuts_both_sides_of_every_cross_pair() {
        let f = ClusterFault::Partition {
            groups: vec![vec!["n1".into(), "n2".into()], vec!["n3".into()]],
        };
        let sets = per_node(&inv(), &f, "t1", Some(Duration::from_secs(5))).unwrap();
        assert_eq!(sets.keys().collect::<Vec<_>>(), ["n1", "n2", "n3"]);
        let dsts = |n: &str| -> Vec<String> {
            sets[n].net.iter().map(|s| s.dst.clone().unwrap()).collect()
        };
        assert_eq!(dsts("n1"), ["10.9.0.3/32"]);
        assert_eq!(dsts("n2"), ["10.9.0.3/32"]);
        assert_eq!(dsts("n3"), ["10.9.0.1/32", "10.9.0.2/32"]);
        assert_eq!(sets["n3"].net[0].id.as_deref(), Some("t1.n3-n1"));
        for s in sets.values() {
            s.validate().unwrap();
        }
    }

    #[test]
    fn isolate_and_bad_groups() {
        let sets = per_node(
            &inv(),
            &ClusterFault::Isolate { node: "n4".into() },
            "t",
            None,
        )
        .unwrap();
        assert_eq!(sets["n4"].net.len(), 3);
        assert_eq!(sets["n1"].net.len(), 1);
        let bad = |groups: Vec<Vec<&str>>| {
            let groups = groups
                .into_iter()
                .map(|g| g.into_iter().map(String::from).collect())
                .collect();
            per_node(&inv(), &ClusterFault::Partition { groups }, "t", None).unwrap_err()
        };
        assert!(bad(vec![vec!["n1"], vec!["n9"]]).to_string().contains("n9"));
        assert!(
            bad(vec![vec!["n1"], vec!["n1"]])
                .to_string()
                .contains("two groups")
        );
        assert!(bad(vec![vec!["n1", "n2"]]).to_string().contains("two"));
    }

    #[test]
    fn cuts_act_only_in_their_direction() {
        let f = ClusterFault::Cuts {
            cuts: vec![("n1".into(), "n2".into()), ("n1".into(), "n3".into())],
        };
        let sets = per_node(&inv(), &f, "t", None).unwrap();
        assert_eq!(sets.keys().collect::<Vec<_>>(), ["n1"]);
        let ids: Vec<_> = sets["n1"]
            .net
            .iter()
            .map(|s| s.id.clone().unwrap())
            .collect();
        assert_eq!(ids, ["t.n1-n2", "t.n1-n3"]);
        assert_eq!(f.describe(), "cut n1->n2 n1->n3");
        let self_cut = ClusterFault::Cuts {
            cuts: vec![("n1".into(), "n1".into())],
        };
        assert!(per_node(&inv(), &self_cut, "t", None).is_err());
        let none = ClusterFault::Cuts { cuts: vec![] };
        assert!(per_node(&inv(), &none, "t", None).is_err());
    }
}
