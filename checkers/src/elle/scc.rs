//! Strongly connected components (iterative Tarjan) of a [`Graph`] restricted to an edge mask.

use super::graph::Graph;

/// Components with more than one node, using only edges whose kind is in `mask` and only
/// nodes for which `inside` holds.
pub fn components(
    g: &Graph,
    mask: u8,
    nodes: &[usize],
    inside: &dyn Fn(usize) -> bool,
) -> Vec<Vec<usize>> {
    const UNSEEN: u32 = u32::MAX;
    let n = g.len();
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut out = Vec::new();
    let mut counter = 0u32;
    // (node, next edge position)
    let mut call: Vec<(usize, usize)> = Vec::new();
    for &root in nodes {
        if index[root] != UNSEEN {
            continue;
        }
        call.push((root, 0));
        index[root] = counter;
        low[root] = counter;
        counter += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut pos)) = call.last_mut() {
            let edges = g.out(v);
            let mut descended = false;
            while *pos < edges.len() {
                let (w, m) = edges[*pos];
                *pos += 1;
                let w = w as usize;
                if m & mask == 0 || !inside(w) {
                    continue;
                }
                if index[w] == UNSEEN {
                    index[w] = counter;
                    low[w] = counter;
                    counter += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    call.push((w, 0));
                    descended = true;
                    break;
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            }
            if descended {
                continue;
            }
            call.pop();
            if let Some(&(parent, _)) = call.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut comp = Vec::new();
                loop {
                    let w = stack.pop().expect("tarjan stack");
                    on_stack[w] = false;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    comp.sort_unstable();
                    out.push(comp);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elle::graph::{RW, WR, WW};

    #[test]
    fn finds_only_nontrivial_components_under_the_mask() {
        let mut g = Graph::new(5);
        g.add(0, 1, WW);
        g.add(1, 0, WR);
        g.add(2, 3, WW);
        g.add(3, 2, RW);
        g.add(3, 4, WW);
        g.finish();
        let all: Vec<usize> = (0..5).collect();
        let c = components(&g, WW | WR | RW, &all, &|_| true);
        assert_eq!(c.len(), 2);
        assert!(c.contains(&vec![0, 1]) && c.contains(&vec![2, 3]));
        let ww_only = components(&g, WW, &all, &|_| true);
        assert!(ww_only.is_empty());
        assert_eq!(g.mask(3, 2), RW);
        let mut seen = vec![0; 5];
        assert_eq!(g.path(0, 1, WW, &|_| true, &mut seen, 1), Some(vec![0, 1]));
        assert_eq!(g.path(1, 0, WW, &|_| true, &mut seen, 2), None);
    }
}
