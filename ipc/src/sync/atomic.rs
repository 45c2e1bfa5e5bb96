//! The one place atomics come from, so a model checker (loom) could replace them.
//!
//! Ordering contract used across shmframe: a value written for another process is published
//! by a `Release` store (or `AcqRel` read-modify-write) on a shared atomic, and read after an
//! `Acquire` load of the same atomic. Counters that only decide "who goes next" (chunk
//! claiming) use `AcqRel` so the winner also sees the state the previous owner published.

pub use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
