//! Fault files and API bodies: the user-facing schema (TOML or JSON, same shape) for a set of
//! faults applied atomically, with validation errors that name the field and the problem.
//!
//! ```toml
//! [[net]]
//! id = "drop-to-n2"
//! target = { netns = "n1", dev = "eth0" }
//! direction = "egress"
//! proto = "udp"
//! dst = "10.0.0.2/32"
//! dport = "9000"
//! action = { kind = "drop", probability = 0.3 }
//! seed = 42
//! schedule = { start = "0s", duration = "10s" }
//!
//! [[sys]]
//! target = { comm = "kv-server" }
//! syscall = "connect"
//! errno = "ECONNREFUSED"
//! ```

pub mod net;
pub mod sys;

use serde::{Deserialize, Serialize};

pub use net::{NetAction, NetFaultSpec, NetTarget, Proto, Schedule};
pub use sys::{SysFaultSpec, SysTarget};

/// A validation or parse error, naming the field (`net[0].action.probability`).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FaultFileError {
    /// The document does not parse or has a wrong/unknown field.
    #[error("{format} fault file: {message}")]
    Parse {
        /// "toml" or "json".
        format: &'static str,
        /// The parser's message (names line and field).
        message: String,
    },
    /// A field has an invalid value.
    #[error("{field}: {problem}")]
    Invalid {
        /// Path of the field, e.g. `net[1].dport`.
        field: String,
        /// What is wrong and what is allowed.
        problem: String,
    },
    /// The set holds no fault at all.
    #[error("the fault set is empty: add at least one [[net]] or [[sys]] entry")]
    Empty,
}

/// A set of faults applied together: all of them land or none does.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSet {
    /// Network faults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub net: Vec<NetFaultSpec>,
    /// Syscall faults on running processes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sys: Vec<SysFaultSpec>,
}

impl FaultSet {
    /// Parses TOML or JSON (chosen by the first non-blank character: `{` means JSON) and validates.
    pub fn parse(text: &str) -> Result<Self, FaultFileError> {
        let set: Self = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| FaultFileError::Parse {
                format: "json",
                message: e.to_string(),
            })?
        } else {
            toml::from_str(text).map_err(|e| FaultFileError::Parse {
                format: "toml",
                message: e.to_string(),
            })?
        };
        set.validate()?;
        Ok(set)
    }

    /// Checks every fault; the first problem is returned with its field path.
    pub fn validate(&self) -> Result<(), FaultFileError> {
        if self.net.is_empty() && self.sys.is_empty() {
            return Err(FaultFileError::Empty);
        }
        for (i, f) in self.net.iter().enumerate() {
            f.validate(&format!("net[{i}]"))?;
        }
        for (i, f) in self.sys.iter().enumerate() {
            f.validate(&format!("sys[{i}]"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_and_json_give_the_same_set() {
        let toml = r#"
            [[net]]
            target = { netns = "n1", dev = "eth0" }
            proto = "udp"
            dport = "9000-9010"
            action = { kind = "drop", probability = 0.3 }
            schedule = { duration = "10s" }
        "#;
        let json = r#"{"net":[{"target":{"netns":"n1","dev":"eth0"},"proto":"udp","dport":"9000-9010",
            "action":{"kind":"drop","probability":0.3},"schedule":{"duration":"10s"}}]}"#;
        assert_eq!(
            FaultSet::parse(toml).unwrap(),
            FaultSet::parse(json).unwrap()
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                r#"{"net":[{"target":{"netns":"n1","dev":"eth0"},"action":{"kind":"drop","probability":1.5}}]}"#,
                "net[0].action.probability",
            ),
            (
                r#"{"net":[{"target":{"netns":"n1","dev":"eth0"},"dport":"90-80","action":{"kind":"drop","probability":1}}]}"#,
                "net[0].dport",
            ),
            (
                r#"{"net":[{"target":{},"action":{"kind":"drop","probability":1}}]}"#,
                "net[0].target",
            ),
            (
                r#"{"net":[{"target":{"netns":"n1","dev":"eth0"},"src":"10.0.0.300","action":{"kind":"drop","probability":1}}]}"#,
                "net[0].src",
            ),
            (
                r#"{"net":[{"target":{"netns":"n1","dev":"eth0"},"action":{"kind":"delay","base":"50ms","jitter":"80ms"}}]}"#,
                "net[0].action.jitter",
            ),
            (
                r#"{"net":[{"target":{"netns":"n1","dev":"eth0"},"action":{"kind":"drop","probability":1},"schedule":{"duration":"0s"}}]}"#,
                "net[0].schedule.duration",
            ),
        ];
        for (doc, field) in cases {
            match FaultSet::parse(doc) {
                Err(FaultFileError::Invalid { field: f, .. }) => assert_eq!(f, field, "{doc}"),
                other => panic!("{doc}: expected an error on {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_fields_are_refused_with_their_name() {
        let e =
            FaultSet::parse("[[net]]\ntarget = { netns = \"n1\", dev = \"eth0\" }\nactoin = 1\n")
                .unwrap_err();
        assert!(e.to_string().contains("actoin"), "{e}");
        assert_eq!(FaultSet::parse("").unwrap_err(), FaultFileError::Empty);
    }
}
