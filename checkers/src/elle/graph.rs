//! The transaction dependency graph: nodes are transactions, edges carry a bitmask of
//! dependency kinds (ww, wr, rw, process, realtime); cycle search restricted to a mask.

use std::collections::VecDeque;

/// Write-write: the source's write precedes the target's in the version order.
pub const WW: u8 = 1;
/// Write-read: the target read the source's write.
pub const WR: u8 = 2;
/// Read-write (anti-dependency): the source read a version the target overwrote.
pub const RW: u8 = 4;
/// Same process, consecutive.
pub const PROCESS: u8 = 8;
/// The source completed before the target was invoked.
pub const REALTIME: u8 = 16;
/// Every kind.
pub const ALL: u8 = WW | WR | RW | PROCESS | REALTIME;

/// Name of a single edge kind.
pub fn kind_name(k: u8) -> &'static str {
    match k {
        WW => "ww",
        WR => "wr",
        RW => "rw",
        PROCESS => "process",
        REALTIME => "realtime",
        _ => "?",
    }
}

/// A directed multigraph over `n` transactions, with kind masks on edges.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    raw: Vec<(u32, u32, u8)>,
    /// Adjacency: (target, mask), sorted by target.
    adj: Vec<Vec<(u32, u8)>>,
}

impl Graph {
    /// An empty graph over `n` nodes.
    pub fn new(n: usize) -> Graph {
        Graph {
            raw: Vec::new(),
            adj: vec![Vec::new(); n],
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.adj.len()
    }

    /// True with no nodes.
    pub fn is_empty(&self) -> bool {
        self.adj.is_empty()
    }

    /// Adds an edge (self-loops are ignored). Call [`Graph::finish`] afterwards.
    pub fn add(&mut self, a: usize, b: usize, kind: u8) {
        if a != b {
            self.raw.push((a as u32, b as u32, kind));
        }
    }

    /// Merges duplicate edges and builds the adjacency lists.
    pub fn finish(&mut self) {
        let mut raw = std::mem::take(&mut self.raw);
        raw.sort_unstable();
        for (a, b, k) in raw {
            let out = &mut self.adj[a as usize];
            match out.last_mut() {
                Some((t, m)) if *t == b => *m |= k,
                _ => out.push((b, k)),
            }
        }
    }

    /// Out-edges of `a`.
    pub fn out(&self, a: usize) -> &[(u32, u8)] {
        &self.adj[a]
    }

    /// Mask of kinds on edge a→b (0 if none).
    pub fn mask(&self, a: usize, b: usize) -> u8 {
        let out = &self.adj[a];
        out.binary_search_by_key(&(b as u32), |e| e.0)
            .map_or(0, |i| out[i].1)
    }

    /// Shortest path `from → to` using only edges with a kind in `mask`, staying inside
    /// nodes where `inside[n]` holds. Returns the node sequence, both ends included.
    pub fn path(
        &self,
        from: usize,
        to: usize,
        mask: u8,
        inside: &dyn Fn(usize) -> bool,
        seen: &mut [u32],
        stamp: u32,
    ) -> Option<Vec<usize>> {
        let mut parent: Vec<(u32, u32)> = Vec::new();
        let mut q = VecDeque::new();
        seen[from] = stamp;
        q.push_back((from as u32, u32::MAX));
        let mut idx = 0usize;
        while let Some((n, p)) = q.pop_front() {
            parent.push((n, p));
            let me = idx as u32;
            idx += 1;
            if n as usize == to {
                let mut path = Vec::new();
                let mut i = me;
                while i != u32::MAX {
                    path.push(parent[i as usize].0 as usize);
                    i = parent[i as usize].1;
                }
                path.reverse();
                return Some(path);
            }
            for &(t, m) in &self.adj[n as usize] {
                if m & mask != 0 && seen[t as usize] != stamp && inside(t as usize) {
                    seen[t as usize] = stamp;
                    q.push_back((t, me));
                }
            }
        }
        None
    }
}
