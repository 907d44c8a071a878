//! The syscall-exit observer's twin: whether this kernel needs it, and how the two programs'
//! counts combine.
//!
//! From 7.x the kernel runs `syscalls:sys_exit_*` programs preemptibly
//! (`trace_call_bpf_faultable`) and guards each program against running twice on a CPU: while a
//! task is preempted inside the observer, every other task's exit on that CPU skips it (the
//! program's `recursion_misses`). A second, identical program with its own maps is guarded
//! separately, so a call is lost only when both programs skipped it. Per key the larger count
//! is the closer one, and at most `min(skips of one, skips of the other)` calls are missing.

use std::{collections::BTreeMap, sync::OnceLock};

use aya::Btf;
use aya_obj::btf::BtfKind;

/// Whether the running kernel can preempt a syscall tracepoint program (its BTF has
/// `trace_call_bpf_faultable`). Without kernel BTF the answer is no: such kernels predate it.
pub fn syscall_programs_preemptible() -> bool {
    static ANSWER: OnceLock<bool> = OnceLock::new();
    *ANSWER.get_or_init(|| {
        Btf::from_sys_fs().is_ok_and(|btf| {
            btf.id_by_type_name_kind("trace_call_bpf_faultable", BtfKind::Func)
                .is_ok()
        })
    })
}

/// Per key, the larger of the two programs' counts (a key only one of them saw keeps its count).
pub fn merge_max<K: Ord>(
    primary: impl IntoIterator<Item = (K, u64)>,
    twin: impl IntoIterator<Item = (K, u64)>,
) -> BTreeMap<K, u64> {
    let mut out: BTreeMap<K, u64> = primary.into_iter().collect();
    for (k, n) in twin {
        let e = out.entry(k).or_insert(0);
        *e = (*e).max(n);
    }
    out
}

/// How many calls the observers may have missed: a call is lost only when every attached
/// program skipped it, so the bound is the smallest skip count.
pub fn missed_bound(primary: u64, twin: Option<u64>) -> u64 {
    twin.map_or(primary, |t| primary.min(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Counts = &'static [(u32, u64)];

    #[test]
    fn merge_takes_the_larger_count_per_key() {
        let cases: &[(Counts, Counts, Counts)] = &[
            (&[(1, 5), (2, 3)], &[(1, 5), (2, 3)], &[(1, 5), (2, 3)]),
            (&[(1, 4), (2, 3)], &[(1, 5), (2, 2)], &[(1, 5), (2, 3)]),
            (&[(1, 4)], &[(2, 7)], &[(1, 4), (2, 7)]),
            (&[], &[(3, 1)], &[(3, 1)]),
            (&[], &[], &[]),
        ];
        for (p, t, want) in cases {
            let got: Vec<(u32, u64)> = merge_max(p.iter().copied(), t.iter().copied())
                .into_iter()
                .collect();
            assert_eq!(got, want.to_vec(), "primary {p:?} twin {t:?}");
        }
    }

    #[test]
    fn the_bound_is_the_smaller_skip_count() {
        assert_eq!(missed_bound(0, None), 0);
        assert_eq!(missed_bound(7, None), 7);
        assert_eq!(missed_bound(7, Some(0)), 0);
        assert_eq!(missed_bound(3, Some(9)), 3);
    }
}
