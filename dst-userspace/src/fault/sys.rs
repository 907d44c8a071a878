//! The user-facing syscall fault in fault files and API bodies: whose calls (pid, cgroup or
//! command name), which syscall class, which errno, the trigger and the schedule; validation
//! with field paths, and conversion to the engine's [`SysFault`] once the target is resolved.
//!
//! ```toml
//! [[sys]]
//! id = "kv-connect-refused"
//! target = { cgroup = "/sys/fs/cgroup/unified/dst-run/n1" }
//! syscall = "connect"
//! errno = "ECONNREFUSED"
//! probability = 0.5
//! seed = 7
//! schedule = { duration = "10s" }
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{FaultFileError, Schedule};
use crate::sys::{
    SysFault, SyscallClass, Target, Trigger,
    spec::{SysSpecError, parse_errno},
};

/// Whose syscalls fail: exactly one of a pid, a cgroup v2 directory or a command name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SysTarget {
    /// A running process (tgid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// With `pid`: also the children it forks afterwards.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub children: bool,
    /// A cgroup v2 directory (absolute or relative to the cgroup2 mount).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<PathBuf>,
    /// Every process with this command name (at most 15 bytes, as the kernel keeps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
}

/// One syscall fault as a file or API body gives it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SysFaultSpec {
    /// Stable id (generated when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Whose calls.
    pub target: SysTarget,
    /// Syscall name; it selects its whole class (`write` also covers `pwrite64`, `writev`).
    pub syscall: String,
    /// Errno by name (`EIO`) or number (`"5"`).
    pub errno: String,
    /// Chance per matched call (seeded), 0..=1; omitted = every matched call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// Only the Nth matched call (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nth: Option<u64>,
    /// Only calls after the first N matched ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    /// At most M failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
    /// File syscalls only: paths starting with this prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Seed of the probability stream (random and recorded when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// When it is live.
    #[serde(default)]
    pub schedule: Schedule,
}

fn invalid(field: String, problem: impl std::fmt::Display) -> FaultFileError {
    FaultFileError::Invalid {
        field,
        problem: problem.to_string(),
    }
}

impl SysFaultSpec {
    /// The syscall class, or the problem with `syscall`.
    pub fn class(&self, at: &str) -> Result<SyscallClass, FaultFileError> {
        SyscallClass::parse(&self.syscall).map_err(|e| invalid(format!("{at}.syscall"), e))
    }

    /// Checks every field without touching the system.
    pub fn validate(&self, at: &str) -> Result<(), FaultFileError> {
        let t = &self.target;
        let given = [t.pid.is_some(), t.cgroup.is_some(), t.comm.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if given != 1 {
            return Err(invalid(
                format!("{at}.target"),
                "give exactly one of pid, cgroup or comm",
            ));
        }
        if t.children && t.pid.is_none() {
            return Err(invalid(
                format!("{at}.target.children"),
                "children only applies to a pid target",
            ));
        }
        if let Some(id) = &self.id
            && id.is_empty()
        {
            return Err(invalid(format!("{at}.id"), "the id is empty"));
        }
        let class = self.class(at)?;
        parse_errno(&self.errno).map_err(|e| invalid(format!("{at}.errno"), e))?;
        // The engine's own checks, mapped to the field they are about.
        let probe = self.to_fault(
            Target::Comm(t.comm.clone().unwrap_or_default()),
            class,
            0,
            None,
        );
        probe.validate().map_err(|e| {
            let field = match &e {
                SysSpecError::Probability(_) => "probability",
                SysSpecError::ZeroCount(name) => name,
                SysSpecError::CommTooLong(_) => "target.comm",
                SysSpecError::PathNotApplicable(_) => "path",
                _ => "",
            };
            invalid(format!("{at}.{field}").trim_end_matches('.').to_string(), e)
        })?;
        self.schedule.validate(at)?;
        Ok(())
    }

    /// The engine fault for a resolved `target`, with `seed` and the schedule's duration.
    pub fn to_fault(
        &self,
        target: Target,
        class: SyscallClass,
        seed: u64,
        duration: Option<std::time::Duration>,
    ) -> SysFault {
        SysFault {
            target,
            class,
            errno: parse_errno(&self.errno).unwrap_or(libc::EIO),
            trigger: Trigger {
                probability: self.probability,
                nth: self.nth,
                after: self.after,
                max: self.max,
                seed,
            },
            path: self.path.clone(),
            duration,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::FaultSet;

    #[test]
    fn a_syscall_fault_parses_from_toml_and_json_alike() {
        let toml = r#"
            [[sys]]
            target = { pid = 42, children = true }
            syscall = "write"
            errno = "EIO"
            max = 3
        "#;
        let json = r#"{"sys":[{"target":{"pid":42,"children":true},"syscall":"write","errno":"EIO","max":3}]}"#;
        let a = FaultSet::parse(toml).unwrap();
        assert_eq!(a, FaultSet::parse(json).unwrap());
        assert_eq!(a.sys[0].class("sys[0]").unwrap(), SyscallClass::Write);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                r#"{"sys":[{"target":{},"syscall":"write","errno":"EIO"}]}"#,
                "sys[0].target",
            ),
            (
                r#"{"sys":[{"target":{"pid":1,"comm":"x"},"syscall":"write","errno":"EIO"}]}"#,
                "sys[0].target",
            ),
            (
                r#"{"sys":[{"target":{"comm":"x","children":true},"syscall":"write","errno":"EIO"}]}"#,
                "sys[0].target.children",
            ),
            (
                r#"{"sys":[{"target":{"pid":1},"syscall":"wirte","errno":"EIO"}]}"#,
                "sys[0].syscall",
            ),
            (
                r#"{"sys":[{"target":{"pid":1},"syscall":"write","errno":"EWHAT"}]}"#,
                "sys[0].errno",
            ),
            (
                r#"{"sys":[{"target":{"pid":1},"syscall":"write","errno":"EIO","probability":2}]}"#,
                "sys[0].probability",
            ),
            (
                r#"{"sys":[{"target":{"pid":1},"syscall":"write","errno":"EIO","nth":0}]}"#,
                "sys[0].nth",
            ),
            (
                r#"{"sys":[{"target":{"comm":"a-very-long-command-name"},"syscall":"write","errno":"EIO"}]}"#,
                "sys[0].target.comm",
            ),
            (
                r#"{"sys":[{"target":{"pid":1},"syscall":"connect","errno":"EIO","path":"/tmp"}]}"#,
                "sys[0].path",
            ),
            (
                r#"{"sys":[{"target":{"pid":1},"syscall":"write","errno":"EIO","schedule":{"duration":"0s"}}]}"#,
                "sys[0].schedule.duration",
            ),
        ];
        for (doc, field) in cases {
            match FaultSet::parse(doc) {
                Err(FaultFileError::Invalid { field: f, .. }) => assert_eq!(f, field, "{doc}"),
                other => panic!("{doc}: expected an error on {field}, got {other:?}"),
            }
        }
    }
}
