//! Invariants (placeholder).
use serde::Serialize;
/// x
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {}
