//! The syscall and process fault engine in userspace: fault specs, the kernel engine (cgroup
//! sock hooks, BPF LSM, fmod_ret + observers), the seccomp user-notification supervisor for processes dst
//! launches, process faults (kill, pause) and the evidence that ties them together.

pub mod btf;
pub mod engine;
pub mod fmod;
pub mod inject;
pub mod launch;
pub mod lsm;
pub mod observed;
pub mod process;
pub mod seccomp;
pub mod select;
pub mod spec;
pub mod twin;

pub use engine::{Observation, ProcessEvent, SysEngine, SysError, SysEvidenceCounters};
pub use launch::{FaultEvidence, LaunchError, LaunchReport, Launched, launch};
pub use spec::{SysFault, SysSpecError, SyscallClass, Target, Trigger};
