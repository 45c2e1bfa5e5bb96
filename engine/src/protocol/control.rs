//! The control segment: the only thing besides data segments that the coordinator and the
//! workers share. Every word has one meaning and one accessor here; nothing outside this file
//! indexes the segment.
//!
//! Layout of its payload (all words are `AtomicU32`; the protocol is in
//! `docs/ARCHITECTURE.md`, "The shared job loop"):
//!
//! ```text
//! byte 0          global words (see `Global`), GLOBAL_WORDS of them
//! SLOTS_OFF       worker slots, SLOT_WORDS words each, MAX_WORKERS slots (see `SlotWord`)
//! CHUNKS_OFF      chunk states, MAX_CHUNKS words (see `ChunkState`)
//! DESC_OFF        job descriptor: u32 length + JSON (`crate::ops::JobDesc`)
//! FAILURE_OFF     first failure of the job: u32 length + JSON (`Failure`)
//! ```
//!
//! Memory ordering: the coordinator resets the job words and writes the descriptor with
//! relaxed stores, then publishes them all with the `Release` store of the job's sequence
//! number (`publish_job`); a worker loads it with `Acquire` (`current_job`) before it reads
//! anything else. A worker writes a chunk's rows, then marks the chunk done with `Release`
//! (`finish_chunk`); the coordinator reads the chunk states with `Acquire`.

use shmframe_ipc::SharedRegion;
use shmframe_ipc::sync::atomic::{AtomicU32, Ordering};
use shmframe_ipc::sync::{Event, Semaphore};

use super::desc::Failure;

/// The most workers a pool can have.
pub const MAX_WORKERS: usize = 256;
/// The most chunks a job can be cut into.
pub(crate) const MAX_CHUNKS: usize = 1 << 16;
/// The most bytes a job descriptor can take (its JSON).
pub(crate) const DESC_MAX: usize = 60 * 1024;
/// The most bytes of a recorded failure (its JSON; longer messages are cut).
const FAILURE_MAX: usize = 4096;

/// The global words, one meaning each.
#[derive(Clone, Copy)]
#[repr(usize)]
enum Global {
    /// `Event`: bumped when a job is posted, at shutdown, and to wake idle workers.
    JobPosted,
    /// `Semaphore`: posted once by the last participant leaving a job.
    JobComplete,
    /// Non-zero: workers exit.
    Shutdown,
    /// Participants of the current job that have not left it yet.
    Participants,
    /// The claim counter: the next chunk number to hand out.
    NextChunk,
    /// Chunks in the current job.
    ChunkCount,
    /// The failure record's state (`FailureState`).
    Failure,
    /// Non-zero: workers stop claiming chunks of the current job.
    Cancel,
    /// Chunks of the current job written and counted (progress).
    ChunksCompleted,
    /// The sequence number of the job in the descriptor (0: none yet).
    CurrentJob,
    /// `Semaphore`: each worker posts once when it starts waiting for jobs.
    WorkerReady,
}
const GLOBAL_WORDS: usize = 64;

/// A worker slot's words.
#[derive(Clone, Copy)]
#[repr(usize)]
enum SlotWord {
    /// The sequence number of the job this slot takes part in (0: none).
    Joined,
    /// The pid of the worker in the slot.
    Pid,
}
const SLOT_WORDS: usize = 8;

/// States of the failure record (`Global::Failure`).
mod failure_state {
    pub(super) const NONE: u32 = 0;
    pub(super) const WRITING: u32 = 1;
    pub(super) const WRITTEN: u32 = 2;
}

const SLOTS_OFF: usize = GLOBAL_WORDS * 4;
const CHUNKS_OFF: usize = SLOTS_OFF + MAX_WORKERS * SLOT_WORDS * 4;
const DESC_OFF: usize = CHUNKS_OFF + MAX_CHUNKS * 4;
const FAILURE_OFF: usize = DESC_OFF + DESC_MAX;
/// Size of the control payload.
pub(crate) const CONTROL_LEN: usize = FAILURE_OFF + FAILURE_MAX;

/// A chunk's state word: free, claimed by a slot, or done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkState {
    /// Nobody has it (never claimed, or released after its worker died).
    Free,
    /// Claimed by the worker in this slot.
    Claimed(usize),
    /// Written and counted.
    Done,
}

impl ChunkState {
    const FREE: u32 = 0;
    const DONE: u32 = u32::MAX;

    fn word(self) -> u32 {
        match self {
            ChunkState::Free => Self::FREE,
            ChunkState::Claimed(slot) => slot as u32 + 1,
            ChunkState::Done => Self::DONE,
        }
    }

    fn from_word(w: u32) -> Self {
        match w {
            Self::FREE => ChunkState::Free,
            Self::DONE => ChunkState::Done,
            s => ChunkState::Claimed(s as usize - 1),
        }
    }
}

/// Typed access to the control segment.
pub(crate) struct Control {
    region: SharedRegion,
}

impl Control {
    /// Wraps a control region of at least [`CONTROL_LEN`] bytes.
    pub(crate) fn new(region: SharedRegion) -> Self {
        assert!(region.len() >= CONTROL_LEN, "control region too small");
        Control { region }
    }

    fn global(&self, w: Global) -> &AtomicU32 {
        &self.region.u32s(w as usize * 4, 1)[0]
    }

    fn slot(&self, slot: usize, w: SlotWord) -> &AtomicU32 {
        &self
            .region
            .u32s(SLOTS_OFF + (slot * SLOT_WORDS + w as usize) * 4, 1)[0]
    }

    fn chunk_words(&self, n: usize) -> &[AtomicU32] {
        self.region.u32s(CHUNKS_OFF, n.min(MAX_CHUNKS))
    }

    // ---- waking and waiting ----

    /// The event workers wait on for a new job (or shutdown).
    pub(crate) fn job_posted(&self) -> Event<'_> {
        Event::new(self.global(Global::JobPosted), "job posted")
    }

    /// The semaphore the last participant of a job posts and the coordinator waits on.
    pub(crate) fn job_complete(&self) -> Semaphore<'_> {
        Semaphore::new(self.global(Global::JobComplete), "job completion")
    }

    /// The semaphore each worker posts once when it starts waiting for jobs.
    pub(crate) fn worker_ready(&self) -> Semaphore<'_> {
        Semaphore::new(self.global(Global::WorkerReady), "worker ready")
    }

    // ---- shutdown and cancellation ----

    /// Asks every worker to exit and wakes them.
    pub(crate) fn request_shutdown(&self) {
        self.global(Global::Shutdown).store(1, Ordering::Release);
        self.job_posted().notify_all();
    }

    /// Whether the workers are asked to exit.
    pub(crate) fn shutdown_requested(&self) -> bool {
        self.global(Global::Shutdown).load(Ordering::Acquire) != 0
    }

    /// Stops every worker from claiming more chunks of the current job.
    pub(crate) fn cancel(&self) {
        self.global(Global::Cancel).store(1, Ordering::Release);
    }

    /// Whether the current job is cancelled.
    pub(crate) fn cancelled(&self) -> bool {
        self.global(Global::Cancel).load(Ordering::Acquire) != 0
    }

    // ---- posting a job (coordinator) ----

    /// Writes the job descriptor; false when it does not fit in [`DESC_MAX`] bytes.
    pub(crate) fn write_descriptor(&self, json: &[u8]) -> bool {
        self.write_record(DESC_OFF, DESC_MAX, json)
    }

    /// Resets every per-job word for a job of `chunks` chunks in which the workers of
    /// `participants` take part as job `seq`. Relaxed: [`Control::publish_job`] publishes them.
    pub(crate) fn reset_job(&self, seq: u32, chunks: usize, participants: &[usize]) {
        for s in self.chunk_words(chunks) {
            s.store(ChunkState::FREE, Ordering::Relaxed);
        }
        self.global(Global::NextChunk).store(0, Ordering::Relaxed);
        self.global(Global::ChunkCount)
            .store(chunks as u32, Ordering::Relaxed);
        self.global(Global::ChunksCompleted)
            .store(0, Ordering::Relaxed);
        self.global(Global::Failure)
            .store(failure_state::NONE, Ordering::Relaxed);
        self.global(Global::Cancel).store(0, Ordering::Relaxed);
        self.global(Global::Participants)
            .store(participants.len() as u32, Ordering::Relaxed);
        for &s in participants {
            self.slot(s, SlotWord::Joined).store(seq, Ordering::Relaxed);
        }
    }

    /// SYNC POINT: publishes the descriptor and every reset before it (`Release`), then
    /// wakes the workers.
    pub(crate) fn publish_job(&self, seq: u32) {
        self.global(Global::CurrentJob)
            .store(seq, Ordering::Release);
        self.job_posted().notify_all();
    }

    // ---- taking part (workers, and the coordinator settling for dead ones) ----

    /// The sequence number of the posted job (0: none yet). `Acquire`: pairs with
    /// [`Control::publish_job`].
    pub(crate) fn current_job(&self) -> u32 {
        self.global(Global::CurrentJob).load(Ordering::Acquire)
    }

    /// The job the worker in `slot` takes part in (0: none).
    pub(crate) fn joined(&self, slot: usize) -> u32 {
        self.slot(slot, SlotWord::Joined).load(Ordering::Acquire)
    }

    /// Makes `slot` a participant of job `seq` (a replacement worker joining a running job).
    /// The caller has counted it in with [`Control::add_participant`] first.
    pub(crate) fn join(&self, slot: usize, seq: u32) {
        self.slot(slot, SlotWord::Joined)
            .store(seq, Ordering::Release);
    }

    /// Counts one more participant of the running job.
    pub(crate) fn add_participant(&self) {
        self.global(Global::Participants)
            .fetch_add(1, Ordering::AcqRel);
    }

    /// Takes `slot` out of job `seq` if it is still in it, and posts the job's completion when
    /// it was the last participant. Returns whether the slot was in the job.
    pub(crate) fn leave(&self, slot: usize, seq: u32) -> bool {
        if self
            .slot(slot, SlotWord::Joined)
            .compare_exchange(seq, 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        if self
            .global(Global::Participants)
            .fetch_sub(1, Ordering::AcqRel)
            == 1
        {
            self.job_complete().post();
        }
        true
    }

    /// Takes `slot` out of job `seq` without counting it down: for a dead worker whose
    /// replacement takes its place in the count.
    pub(crate) fn drop_out(&self, slot: usize, seq: u32) -> bool {
        let was_in = self
            .slot(slot, SlotWord::Joined)
            .compare_exchange(seq, 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
        if was_in {
            self.global(Global::Participants)
                .fetch_sub(1, Ordering::AcqRel);
        }
        was_in
    }

    /// Participants that have not left the current job.
    pub(crate) fn participants(&self) -> u32 {
        self.global(Global::Participants).load(Ordering::Acquire)
    }

    /// Ends every participation in a cancelled job at once.
    pub(crate) fn clear_participants(&self) {
        self.global(Global::Participants)
            .store(0, Ordering::Release);
    }

    /// Clears `slot`'s participation (its worker was killed).
    pub(crate) fn clear_joined(&self, slot: usize) {
        self.slot(slot, SlotWord::Joined)
            .store(0, Ordering::Release);
    }

    /// Records the pid of the worker in `slot`.
    pub(crate) fn set_pid(&self, slot: usize, pid: u32) {
        self.slot(slot, SlotWord::Pid).store(pid, Ordering::Release);
    }

    /// Reads the job descriptor.
    pub(crate) fn read_descriptor(&self) -> Vec<u8> {
        self.read_record(DESC_OFF, DESC_MAX)
    }

    // ---- chunks ----

    /// Chunks in the current job.
    pub(crate) fn chunk_count(&self) -> usize {
        self.global(Global::ChunkCount).load(Ordering::Acquire) as usize
    }

    /// The next chunk number from the claim counter (may be past the last chunk).
    pub(crate) fn next_chunk(&self) -> usize {
        self.global(Global::NextChunk)
            .fetch_add(1, Ordering::AcqRel) as usize
    }

    /// Claims chunk `c` for `slot` if it is free.
    pub(crate) fn claim_chunk(&self, c: usize, slot: usize) -> bool {
        self.chunk_words(c + 1)[c]
            .compare_exchange(
                ChunkState::FREE,
                ChunkState::Claimed(slot).word(),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// SYNC POINT: the chunk's rows are written; marks it done (`Release`) and counts it.
    pub(crate) fn finish_chunk(&self, c: usize) {
        self.chunk_words(c + 1)[c].store(ChunkState::DONE, Ordering::Release);
        self.global(Global::ChunksCompleted)
            .fetch_add(1, Ordering::AcqRel);
    }

    /// The state of chunk `c`.
    pub(crate) fn chunk_state(&self, c: usize) -> ChunkState {
        ChunkState::from_word(self.chunk_words(c + 1)[c].load(Ordering::Acquire))
    }

    /// Frees the chunks among the first `n` that `slot` had claimed and not finished (its
    /// worker died); returns their numbers.
    pub(crate) fn release_claims(&self, slot: usize, n: usize) -> Vec<usize> {
        let mark = ChunkState::Claimed(slot).word();
        self.chunk_words(n)
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.compare_exchange(mark, ChunkState::FREE, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Chunks of the current job counted as completed (progress).
    pub(crate) fn chunks_completed(&self) -> usize {
        self.global(Global::ChunksCompleted).load(Ordering::Acquire) as usize
    }

    /// Chunks among the first `n` whose state is done.
    pub(crate) fn chunks_done(&self, n: usize) -> usize {
        (0..n.min(MAX_CHUNKS))
            .filter(|&c| self.chunk_state(c) == ChunkState::Done)
            .count()
    }

    // ---- failures ----

    /// Records the first failure of a job (later ones are dropped) and cancels the job.
    /// Returns whether this call recorded it.
    pub(crate) fn record_failure(&self, failure: &Failure) -> bool {
        if self
            .global(Global::Failure)
            .compare_exchange(
                failure_state::NONE,
                failure_state::WRITING,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return false;
        }
        let mut json = serde_json::to_vec(failure).unwrap_or_default();
        json.truncate(FAILURE_MAX - 4);
        self.write_record(FAILURE_OFF, FAILURE_MAX, &json);
        self.global(Global::Failure)
            .store(failure_state::WRITTEN, Ordering::Release);
        self.cancel();
        true
    }

    /// The failure recorded for the current job, if any.
    pub(crate) fn failure(&self) -> Option<Failure> {
        match self.global(Global::Failure).load(Ordering::Acquire) {
            failure_state::NONE => None,
            failure_state::WRITTEN => Some(
                serde_json::from_slice(&self.read_record(FAILURE_OFF, FAILURE_MAX))
                    .unwrap_or_else(|_| Failure::unknown("error record unreadable")),
            ),
            _ => Some(Failure::unknown("a worker died while recording an error")),
        }
    }

    fn write_record(&self, off: usize, max: usize, bytes: &[u8]) -> bool {
        if bytes.len() + 4 > max {
            return false;
        }
        self.region
            .write_bytes(off, &(bytes.len() as u32).to_ne_bytes());
        self.region.write_bytes(off + 4, bytes);
        true
    }

    fn read_record(&self, off: usize, max: usize) -> Vec<u8> {
        let mut len = [0u8; 4];
        self.region.read_bytes(off, &mut len);
        let len = (u32::from_ne_bytes(len) as usize).min(max - 4);
        let mut out = vec![0u8; len];
        self.region.read_bytes(off + 4, &mut out);
        out
    }
}
