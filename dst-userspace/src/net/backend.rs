//! Which mechanism carries one network fault, chosen from what the probe found: the classifier
//! alone (drop, duplicate, corrupt), EDT with `fq` (delay, jitter, reorder, rate: egress on the
//! device, ingress through an `ifb` where the kernel delivers redirected packets to it), else the
//! TAP delay line; a fault nothing here can carry is refused with the reason.

use std::fmt;

use serde::Serialize;

use super::spec::{Action, Direction};

/// The mechanism carrying one fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetBackend {
    /// The tc / cgroup_skb classifier acts by itself.
    Classifier,
    /// `skb->tstamp` set by the classifier, enforced by `fq` (ingress: on an `ifb`).
    EdtFq,
    /// Redirect to a TAP and the userspace delay line.
    DelayLine,
}

impl fmt::Display for NetBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Classifier => "classifier",
            Self::EdtFq => "edt-fq",
            Self::DelayLine => "delay-line",
        })
    }
}

/// What the user asked for on the command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// EDT where the probe says it works, else the delay line.
    #[default]
    Auto,
    /// EDT or refuse.
    Edt,
    /// The delay line even where EDT works.
    DelayLine,
}

/// The probe facts the choice depends on (each found by really trying it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NetFacts {
    /// A root `fq` qdisc can be created (sch_fq).
    pub fq: bool,
    /// Packets redirected from tc ingress to an `ifb` with a delivery-mono tstamp come out of
    /// it (false on 6.1, where every such packet is dropped).
    pub ifb_edt: bool,
    /// TAP devices can be created (the delay line).
    pub tap: bool,
}

/// A fault no mechanism on this kernel can carry.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BackendError {
    /// EDT was demanded but is missing for this direction.
    #[error("--backend edt: {0}; use --backend auto to fall back to the delay line")]
    NoEdt(String),
    /// Neither EDT nor the delay line works here.
    #[error("{action} needs EDT or the delay line: {reason}; run `dst probe` for details")]
    Nothing {
        /// The action kind.
        action: &'static str,
        /// What was missing.
        reason: String,
    },
}

/// Why EDT cannot carry `dir` here (None = it can).
fn edt_missing(dir: Direction, facts: &NetFacts) -> Option<String> {
    if !facts.fq {
        return Some("probe says fq is missing (no sch_fq)".into());
    }
    if dir != Direction::Egress && !facts.ifb_edt {
        return Some(
            "probe says ingress EDT through an ifb does not deliver on this kernel \
             (6.1 drops every packet redirected to an ifb)"
                .into(),
        );
    }
    None
}

/// Chooses the backend of one fault.
pub fn select(
    action: &Action,
    dir: Direction,
    choice: BackendChoice,
    facts: &NetFacts,
) -> Result<NetBackend, BackendError> {
    if !action.needs_delay_line() {
        return Ok(NetBackend::Classifier);
    }
    let edt = edt_missing(dir, facts);
    match (choice, edt) {
        (BackendChoice::Edt, Some(why)) => Err(BackendError::NoEdt(why)),
        (BackendChoice::Edt | BackendChoice::Auto, None) => Ok(NetBackend::EdtFq),
        (BackendChoice::DelayLine, _) | (BackendChoice::Auto, Some(_)) if facts.tap => {
            Ok(NetBackend::DelayLine)
        }
        (_, edt) => Err(BackendError::Nothing {
            action: action.kind(),
            reason: format!(
                "{}; TAP devices cannot be created (/dev/net/tun)",
                edt.unwrap_or_else(|| "the delay line was asked for".into())
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELAY: Action = Action::Delay {
        base_ns: 50_000_000,
        jitter_ns: 0,
        normal: false,
    };
    const HOST: NetFacts = NetFacts {
        fq: false,
        ifb_edt: false,
        tap: true,
    };
    const GUEST_612: NetFacts = NetFacts {
        fq: true,
        ifb_edt: true,
        tap: true,
    };
    const GUEST_61: NetFacts = NetFacts {
        fq: true,
        ifb_edt: false,
        tap: true,
    };

    #[test]
    fn host_without_fq_uses_the_delay_line() {
        for dir in [Direction::Egress, Direction::Ingress, Direction::Both] {
            assert_eq!(
                select(&DELAY, dir, BackendChoice::Auto, &HOST),
                Ok(NetBackend::DelayLine)
            );
        }
        let e = select(&DELAY, Direction::Egress, BackendChoice::Edt, &HOST).unwrap_err();
        assert!(e.to_string().contains("fq is missing"), "{e}");
    }

    #[test]
    fn fq_kernels_use_edt_and_ingress_only_where_the_ifb_delivers() {
        assert_eq!(
            select(&DELAY, Direction::Egress, BackendChoice::Auto, &GUEST_612),
            Ok(NetBackend::EdtFq)
        );
        assert_eq!(
            select(&DELAY, Direction::Ingress, BackendChoice::Auto, &GUEST_612),
            Ok(NetBackend::EdtFq)
        );
        assert_eq!(
            select(&DELAY, Direction::Egress, BackendChoice::Auto, &GUEST_61),
            Ok(NetBackend::EdtFq)
        );
        // 6.1: ingress falls back to the delay line, or is refused when EDT is demanded.
        assert_eq!(
            select(&DELAY, Direction::Ingress, BackendChoice::Auto, &GUEST_61),
            Ok(NetBackend::DelayLine)
        );
        assert_eq!(
            select(&DELAY, Direction::Both, BackendChoice::Auto, &GUEST_61),
            Ok(NetBackend::DelayLine)
        );
        let e = select(&DELAY, Direction::Ingress, BackendChoice::Edt, &GUEST_61).unwrap_err();
        assert!(e.to_string().contains("6.1"), "{e}");
        assert_eq!(
            select(
                &DELAY,
                Direction::Egress,
                BackendChoice::DelayLine,
                &GUEST_612
            ),
            Ok(NetBackend::DelayLine)
        );
    }

    #[test]
    fn classifier_actions_need_neither_and_nothing_is_refused_with_reason() {
        let drop = Action::Drop { probability: 0.5 };
        assert_eq!(
            select(
                &drop,
                Direction::Both,
                BackendChoice::Auto,
                &NetFacts::default()
            ),
            Ok(NetBackend::Classifier)
        );
        let rate = Action::Rate {
            bits_per_sec: 1_000_000,
        };
        let e = select(
            &rate,
            Direction::Egress,
            BackendChoice::Auto,
            &NetFacts::default(),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("fq is missing") && e.to_string().contains("TAP"),
            "{e}"
        );
    }
}
