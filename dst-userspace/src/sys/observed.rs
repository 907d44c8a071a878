//! Reading one exit observer's counts: its shared hash map plus every CPU's count table
//! (`ObsCount` entries, see `dst_common::sys`), summed per key.

use std::collections::BTreeMap;

use dst_common::sys::{ObsCount, ObsKey};

/// Per key, the shared map's count plus every CPU entry that holds the key. Empty entries
/// (count 0) and entries without a process (tgid 0: nothing was counted into them yet) add
/// nothing.
pub fn sum_counts(
    shared: impl IntoIterator<Item = (ObsKey, u64)>,
    per_cpu: impl IntoIterator<Item = ObsCount>,
) -> BTreeMap<ObsKey, u64> {
    let mut out = BTreeMap::new();
    let entries = per_cpu
        .into_iter()
        .filter(|e| e.count != 0 && e.key.tgid != 0)
        .map(|e| (e.key, e.count));
    for (key, n) in shared.into_iter().chain(entries) {
        *out.entry(key).or_insert(0) += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(tgid: u32, nr: u32, ret: i64) -> ObsKey {
        ObsKey { tgid, nr, ret }
    }

    /// (what, shared map, per-CPU entries, expected sums).
    type Case = (
        &'static str,
        Vec<(ObsKey, u64)>,
        Vec<ObsCount>,
        Vec<(ObsKey, u64)>,
    );

    fn entry(count: u64, k: ObsKey) -> ObsCount {
        ObsCount { count, key: k }
    }

    #[test]
    fn sums_the_shared_map_and_every_cpu_entry_per_key() {
        let write_eio = key(42, 1, -5);
        let write_ok = key(42, 1, 0);
        let other = key(7, 74, -5);
        let cases: [Case; 5] = [
            ("nothing", vec![], vec![ObsCount::default(); 4], vec![]),
            (
                "shared only",
                vec![(write_eio, 3), (other, 1)],
                vec![],
                vec![(write_eio, 3), (other, 1)],
            ),
            (
                "one key on two CPUs and in the shared map (its entry was owned elsewhere)",
                vec![(write_eio, 2)],
                vec![
                    entry(10, write_eio),
                    entry(5, write_eio),
                    entry(1, write_ok),
                ],
                vec![(write_ok, 1), (write_eio, 17)],
            ),
            (
                "empty and ownerless entries add nothing",
                vec![],
                vec![entry(0, write_eio), entry(3, key(0, 1, 0)), entry(4, other)],
                vec![(other, 4)],
            ),
            (
                "a key only a CPU saw",
                vec![(write_ok, 6)],
                vec![entry(2, other)],
                vec![(other, 2), (write_ok, 6)],
            ),
        ];
        for (what, shared, per_cpu, want) in cases {
            let got: Vec<(ObsKey, u64)> = sum_counts(shared, per_cpu).into_iter().collect();
            let want: BTreeMap<ObsKey, u64> = want.into_iter().collect();
            assert_eq!(got, want.into_iter().collect::<Vec<_>>(), "{what}");
        }
    }
}
