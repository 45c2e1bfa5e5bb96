//! Cross-process synchronisation living in shared memory.
//!
//! Built on Linux futexes over words in a shared mapping (not `FUTEX_PRIVATE_FLAG`), so a
//! wait in one process is woken by a store and wake in another. There is no lock anywhere:
//! a process killed at any instruction (SIGKILL, OOM) cannot leave a primitive stuck, which
//! is why shmframe does not use `raw_sync` (pthread mutex + condvar in shared memory: a
//! holder killed inside `Event::set` leaves the mutex locked forever, the crate pins nix 0.23,
//! and it has no tests). Every wait takes a timeout.

pub mod atomic;
mod futex;
mod semaphore;

pub use semaphore::{Event, Semaphore, SyncError};
