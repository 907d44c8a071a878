//! What the dst runner (`dst run SCENARIO.toml`) carries today: clients, models, checkers and
//! invariants. Compile turns a scenario that needs anything else into a manual one with the
//! reason. Keep this in step with `dst-userspace/src/runner/scenario.rs`.

/// Built-in workload clients.
pub const CLIENTS: &[&str] = &["kv-set"];

/// Models the runner's clients record histories for.
pub const MODELS: &[&str] = &["set"];

/// Checkers: `linearizable` (search, plus invariants) and `invariants` (invariants only).
pub const CHECKERS: &[&str] = &["linearizable", "invariants"];

/// Invariants the checker library knows.
pub const INVARIANTS: &[&str] = &[
    "no-lost-writes",
    "no-duplicates",
    "idempotent-retries",
    "monotonic-reads",
    "counter-bounds",
];

/// Host count range the runner accepts.
pub const HOSTS: std::ops::RangeInclusive<usize> = 2..=16;
