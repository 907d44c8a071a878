//! Partitions as sets of blocked (from, to) host pairs: explicit groups (symmetric or one-way)
//! and Jepsen's shapes (halves, isolate one node, majorities ring, bridge). The CLI turns each
//! blocked pair into one drop rule (src = from, dst = to) and applies them all at once.

use serde::Serialize;

/// Errors of partition planning.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PartitionError {
    /// Too few hosts for the shape.
    #[error("{shape} needs at least {need} hosts, got {got}")]
    TooFewHosts {
        /// The shape.
        shape: &'static str,
        /// Minimum.
        need: usize,
        /// Given.
        got: usize,
    },
    /// Fewer than two groups, or an empty group.
    #[error("a partition needs at least two non-empty groups (--group a,b --group c)")]
    Groups,
    /// The same host appears twice.
    #[error("host {0:?} appears more than once")]
    Duplicate(String),
    /// The index of the node to isolate is out of range.
    #[error("--node {0} is not one of the hosts")]
    NoSuchNode(String),
}

/// Jepsen's partition shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// First half vs second half (the second has the majority when n is odd).
    Halves,
    /// One node (the first, or `--node`) cut from all others.
    Isolate,
    /// Every node sees a majority, no two nodes the same one (ring neighbourhoods).
    MajoritiesRing,
    /// Two halves that cannot talk, and one node in the middle that talks to both.
    Bridge,
}

/// Blocked pairs for explicit groups: symmetric blocks every pair across groups; one-way blocks
/// only traffic from the first group to the others.
pub fn groups(groups: &[Vec<usize>], one_way: bool) -> Result<Vec<(usize, usize)>, PartitionError> {
    if groups.len() < 2 || groups.iter().any(Vec::is_empty) {
        return Err(PartitionError::Groups);
    }
    let mut pairs = Vec::new();
    for (i, gi) in groups.iter().enumerate() {
        for (j, gj) in groups.iter().enumerate() {
            if i == j || (one_way && i != 0) {
                continue;
            }
            for &a in gi {
                for &b in gj {
                    pairs.push((a, b));
                }
            }
        }
    }
    Ok(pairs)
}

/// Blocked pairs of a shape over `n` hosts (`node` = which host `isolate` cuts off).
pub fn shape(shape: Shape, n: usize, node: usize) -> Result<Vec<(usize, usize)>, PartitionError> {
    let too_few = |s: &'static str, need: usize| PartitionError::TooFewHosts {
        shape: s,
        need,
        got: n,
    };
    match shape {
        Shape::Halves => {
            if n < 2 {
                return Err(too_few("halves", 2));
            }
            groups(&[(0..n / 2).collect(), (n / 2..n).collect()], false)
        }
        Shape::Isolate => {
            if n < 2 {
                return Err(too_few("isolate", 2));
            }
            groups(
                &[vec![node], (0..n).filter(|&i| i != node).collect()],
                false,
            )
        }
        Shape::Bridge => {
            if n < 3 {
                return Err(too_few("bridge", 3));
            }
            let mid = n / 2;
            groups(&[(0..mid).collect(), (mid + 1..n).collect()], false)
        }
        Shape::MajoritiesRing => {
            if n < 4 {
                return Err(too_few("majorities-ring", 4));
            }
            let majority = n / 2 + 1;
            let k = majority / 2;
            let mut pairs = Vec::new();
            for a in 0..n {
                for b in 0..n {
                    let d = a.abs_diff(b);
                    if a != b && d.min(n - d) > k {
                        pairs.push((a, b));
                    }
                }
            }
            Ok(pairs)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn sees(pairs: &[(usize, usize)], n: usize, a: usize) -> BTreeSet<usize> {
        (0..n).filter(|&b| !pairs.contains(&(a, b))).collect()
    }

    #[test]
    fn symmetric_and_one_way_groups() {
        let s = groups(&[vec![0], vec![1, 2]], false).unwrap();
        assert_eq!(s.len(), 4);
        assert!(s.contains(&(0, 1)) && s.contains(&(2, 0)));
        let o = groups(&[vec![0], vec![1]], true).unwrap();
        assert_eq!(o, vec![(0, 1)]);
        assert_eq!(groups(&[vec![0]], false), Err(PartitionError::Groups));
    }

    #[test]
    fn majorities_ring_gives_everyone_a_distinct_majority() {
        for n in [4, 5, 7] {
            let p = shape(Shape::MajoritiesRing, n, 0).unwrap();
            let views: Vec<_> = (0..n).map(|a| sees(&p, n, a)).collect();
            for v in &views {
                assert!(v.len() > n / 2, "n={n}: {v:?} is not a majority");
            }
            let distinct: BTreeSet<_> = views.iter().collect();
            assert_eq!(distinct.len(), n, "n={n}: majorities repeat");
            assert!(p.iter().all(|&(a, b)| p.contains(&(b, a))), "symmetric");
        }
    }

    #[test]
    fn bridge_node_sees_everyone() {
        let p = shape(Shape::Bridge, 5, 0).unwrap();
        assert_eq!(sees(&p, 5, 2).len(), 5);
        assert_eq!(sees(&p, 5, 0), [0, 1, 2].into());
        assert_eq!(sees(&p, 5, 4), [2, 3, 4].into());
        let iso = shape(Shape::Isolate, 3, 1).unwrap();
        assert_eq!(sees(&iso, 3, 1), [1].into());
        assert!(shape(Shape::Bridge, 2, 0).is_err());
    }
}
