//! The network fault engine in userspace: fault specs, their translation to kernel rules, and
//! the loader that attaches the programs and reads back landing evidence.

pub mod backend;
pub mod delayline;
pub mod engine;
pub mod events;
pub mod evidence;
pub mod fq;
pub mod ifb;
pub mod lease;
pub mod partition;
pub mod spec;
pub mod sweep;
pub mod tap;

pub use engine::{NetEngine, NetError, RuleEvidence};
pub use spec::{Action, Direction, NetFault, PortRange, SpecError};
