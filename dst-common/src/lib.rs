//! `no_std` `#[repr(C)]` types shared by dst's kernel programs and userspace: fault specs as
//! stored in maps, counter slots and ring-buffer events.
//!
//! Rules for every type here: `#[repr(C)]`, `Copy`, explicit padding fields, no `bool`, and a
//! `const _` size assertion so kernel and userspace can never disagree on a layout silently.
#![no_std]

pub mod lsm;
pub mod net;
pub mod sys;

/// Maximum number of network fault rules active at once (size of the rule array map).
pub const MAX_NET_RULES: u32 = 64;

/// Maximum number of syscall fault rules active at once.
pub const MAX_SYS_RULES: u32 = 32;
const _: () = assert!(MAX_NET_RULES <= 64, "rule candidate sets are u64 bitmasks");
