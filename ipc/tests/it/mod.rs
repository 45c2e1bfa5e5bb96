//! The test modules, one concern each; `harness` holds what they share.

mod harness;

mod arrow_corrupt;
mod arrow_read;
mod corrupt;
mod dir;
mod mapped;
mod memfd;
mod names;
mod nospace;
mod planned;
mod pyarrow;
mod readonly;
mod sweep;
mod sync;
