//! Pure consistency checkers over operation histories (linearizability, transactional anomalies, invariants).
//!
//! Entry points: [`history::History`] (the data), [`format`] (JSONL / EDN / Porcupine etcd
//! import and export), [`linearizable::check`] with a [`model::Model`], [`elle`] for
//! transactional workloads, [`invariants`] for search-free claims, and [`cli`] for the
//! `dst check` verb (registry of checkers by name, report rendering).

pub mod cli;
pub mod elle;
pub mod format;
pub mod history;
pub mod html;
pub mod invariants;
pub mod linearizable;
pub mod model;
pub mod result;

pub use history::{History, Op, OpType, Operation, Process};
pub use result::{Budget, CheckResult, UnknownReason, Verdict, Witness};
