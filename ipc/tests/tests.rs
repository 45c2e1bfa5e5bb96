//! Integration tests of the shared-memory layer: real processes, real `/dev/shm`.
//!
//! One test binary (fast to build) with a module per concern in `it/`. Multi-process tests
//! re-run this binary as the child (`--exact <test> --nocapture`, role in
//! `SHMFRAME_TEST_CHILD`); every wait on a child has a watchdog, and every test ends with a
//! leak check of the segments it made (see `it/harness.rs`).

mod it;
