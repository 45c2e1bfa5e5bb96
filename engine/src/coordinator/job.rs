//! The shared job loop, coordinator side: post a planned job, wait for it in slices while
//! looking after the workers (deaths repaired, progress reported, deadline and stall timeout
//! enforced, a poisoned chunk or too many deaths ending the job), then check that every chunk
//! is done. Knows nothing about any particular operation.

use std::time::Instant;

use super::options::{JobStats, RunOptions};
use super::pool::Pool;
use crate::error::EngineError;
use crate::ops::{JobDesc, JobSpec};
use crate::protocol::{DESC_MAX, Hooks, MAX_CHUNKS};
use crate::tuning::{
    CHUNK_ROW_MULTIPLE, CHUNKS_PER_WORKER, DEATHS_BASE, DEATHS_PER_WORKER, WAIT_SLICE,
};

/// The default rows per chunk of a job of `rows` rows on `workers` workers.
pub(crate) fn default_chunk_rows(rows: usize, workers: usize) -> usize {
    let target = rows.div_ceil(workers.max(1) * CHUNKS_PER_WORKER);
    target
        .next_multiple_of(CHUNK_ROW_MULTIPLE)
        .max(CHUNK_ROW_MULTIPLE)
}

impl Pool {
    /// Runs job `spec` to completion (or failure) with the options `opts`.
    pub(crate) fn execute(
        &mut self,
        spec: JobSpec,
        opts: &RunOptions,
    ) -> Result<JobStats, EngineError> {
        let name = spec.op.name();
        let chunk_rows = opts
            .chunk_rows
            .or(spec.chunk_rows)
            .unwrap_or_else(|| default_chunk_rows(spec.rows, self.slots.len()))
            .max(1);
        let n_chunks = spec.rows.div_ceil(chunk_rows);
        if n_chunks > MAX_CHUNKS {
            return Err(EngineError::Input {
                what: "chunk_rows".into(),
                reason: format!(
                    "{n_chunks} chunks exceed the limit of {MAX_CHUNKS}; use larger chunks"
                ),
            });
        }
        let hooks = Hooks {
            chunk_sleep_us: opts.test_chunk_sleep.map_or(0, |d| d.as_micros() as u64),
            kill_pid_after: opts.test_kill_worker_after_chunks.and_then(|(slot, n)| {
                self.slots
                    .get(slot)
                    .copied()
                    .flatten()
                    .map(|pid| (pid.as_raw() as u32, n))
            }),
        };
        // Replace workers that died between jobs.
        self.repair(None, 0)?;
        self.seq = self.seq.wrapping_add(1).max(1);
        let seq = self.seq;
        let desc = JobDesc {
            seq,
            rows: spec.rows,
            chunk_rows,
            op: spec.op,
            output: spec.output,
            hooks,
        };
        let json = serde_json::to_vec(&desc).expect("descriptor serialises");
        if !self.control.write_descriptor(&json) {
            return Err(EngineError::Input {
                what: "job descriptor".into(),
                reason: format!(
                    "{} bytes exceed the {DESC_MAX} byte descriptor area (too many columns?)",
                    json.len()
                ),
            });
        }
        let live: Vec<usize> = (0..self.slots.len())
            .filter(|s| self.slots[*s].is_some())
            .collect();
        self.control.reset_job(seq, n_chunks, &live);
        self.redo = vec![0; n_chunks];
        self.poison = None;
        self.control.publish_job(seq);
        let start = Instant::now();
        let mut deaths = 0usize;
        let mut last_progress = (0usize, Instant::now());
        while self
            .control
            .job_complete()
            .wait_timeout(WAIT_SLICE)
            .is_err()
        {
            // A slice went by: look after the workers.
            deaths += self.repair(Some(seq), n_chunks)?;
            if let Some((chunk, how)) = self.poison.take() {
                self.abandon(seq);
                return Err(EngineError::ChunkKillsWorkers {
                    kernel: name,
                    chunk,
                    first_row: chunk * chunk_rows,
                    how,
                });
            }
            if deaths > DEATHS_PER_WORKER * self.slots.len() + DEATHS_BASE {
                let last = self
                    .log
                    .last()
                    .map(|d| format!("pid {} {}", d.pid, d.how))
                    .unwrap_or_default();
                self.abandon(seq);
                return Err(EngineError::WorkersDied {
                    kernel: name,
                    deaths,
                    last,
                });
            }
            let done = self.control.chunks_completed();
            if done != last_progress.0 {
                last_progress = (done, Instant::now());
                if let Some(p) = &opts.progress {
                    (p.0)(done, n_chunks);
                }
            }
            if opts.interrupt.as_ref().is_some_and(|i| (i.0)()) {
                self.abandon(seq);
                return Err(EngineError::Interrupted {
                    kernel: name,
                    done,
                    chunks: n_chunks,
                });
            }
            let stalled = last_progress.1.elapsed() > self.cfg.stall_timeout;
            if opts.deadline.is_some_and(|d| start.elapsed() > d) || stalled {
                self.abandon(seq);
                return Err(EngineError::Deadline {
                    kernel: name,
                    deadline: opts.deadline.unwrap_or(self.cfg.stall_timeout),
                    done,
                    chunks: n_chunks,
                });
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        if let Some(f) = self.control.failure() {
            return Err(EngineError::Kernel {
                kernel: f.kernel,
                chunk: f.chunk,
                first_row: f.first_row,
                message: f.message,
            });
        }
        let done = self.control.chunks_done(n_chunks);
        if done != n_chunks {
            return Err(EngineError::Broken(format!(
                "job {name} ended with {done} of {n_chunks} chunks done"
            )));
        }
        Ok(JobStats {
            seconds,
            rows: desc.rows,
            chunks: n_chunks,
            input_bytes: spec.input_bytes,
            worker_deaths: deaths,
            output_reused: spec.output_reused,
        })
    }

    /// Cancels job `seq`: workers stop claiming; those that do not leave within the grace
    /// period (stopped, stuck in a long chunk) are killed and replaced.
    fn abandon(&mut self, seq: u32) {
        self.control.cancel();
        let until = Instant::now() + self.cfg.grace;
        while Instant::now() < until {
            if self.control.participants() == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        for slot in 0..self.slots.len() {
            if self.control.joined(slot) == seq {
                self.kill_and_replace(slot, "stuck in a cancelled job");
            }
        }
        self.control.clear_participants();
        // Drain a completion post that may have raced with the cancellation.
        let _ = self.control.job_complete().try_wait();
    }
}
