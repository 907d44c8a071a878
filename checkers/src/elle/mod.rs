//! Elle-style transactional checking (placeholder).
use serde::Serialize;
/// x
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ElleWitness {}
