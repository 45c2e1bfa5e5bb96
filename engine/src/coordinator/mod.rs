//! The coordinator: the public [`Engine`] API, its builder, pool supervision (with the
//! janitor that cleans up after a dead coordinator), and the shared job loop.

mod api;
mod builder;
mod janitor;
mod job;
mod options;
mod pool;

pub use api::Engine;
pub use builder::{EngineBuilder, StartMethod};
pub(crate) use janitor::run as janitor_main;
pub use options::{Interrupt, JobStats, Kernel, Progress, RunOptions, WorkerDeath};
