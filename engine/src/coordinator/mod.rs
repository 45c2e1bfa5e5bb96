//! The coordinator: the public [`Engine`] API, its builder, pool supervision, and the shared
//! job loop.

mod api;
mod builder;
mod job;
mod options;
mod pool;

pub use api::Engine;
pub use builder::{EngineBuilder, StartMethod};
pub use options::{Interrupt, JobStats, Kernel, Progress, RunOptions, WorkerDeath};
