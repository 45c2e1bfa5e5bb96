//! The worker process and the shared job loop, worker side: wait for a job, map what it
//! reads (the operation's `prepare`), claim chunks with the pool's atomic counter, have the
//! operation compute each into its rows of the output, mark each chunk done, leave the job.
//! Knows nothing about any particular operation.

use std::sync::Arc;
use std::time::Duration;

use shmframe_ipc::{SegmentRw, SharedRegion};

use crate::ops::{Chunk, JobDesc, Locals, Mappings, Prepare, PreparedJob, WorkerError};
use crate::protocol::{ChunkState, Control, Failure, WorkerArgs};
use crate::tuning::IDLE_PURGE;
use crate::user::KernelRegistry;

struct Worker {
    control: Control,
    args: WorkerArgs,
    registry: Arc<KernelRegistry>,
    threads: Option<rayon::ThreadPool>,
    maps: Mappings,
    locals: Locals,
}

/// Runs a worker until shutdown; returns the process exit code.
pub(crate) fn run(args: WorkerArgs, registry: Arc<KernelRegistry>) -> i32 {
    if args.memory_limit > 0 {
        use nix::sys::resource::{Resource, setrlimit};
        if let Err(e) = setrlimit(Resource::RLIMIT_AS, args.memory_limit, args.memory_limit) {
            eprintln!("shmframe worker {}: cannot set RLIMIT_AS: {e}", args.slot);
            return 3;
        }
    }
    let region = match SharedRegion::attach(&args.control, &args.dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "shmframe worker {}: cannot attach control segment: {e}",
                args.slot
            );
            return 3;
        }
    };
    // The worker's own rayon pool, built after the fork (never an inherited one).
    let threads = if args.threads > 1 {
        rayon::ThreadPoolBuilder::new()
            .num_threads(args.threads)
            .thread_name(|i| format!("shmframe-w{i}"))
            .build()
            .ok()
    } else {
        None
    };
    let mut w = Worker {
        control: Control::new(region),
        maps: Mappings::new(args.dir.clone()),
        args,
        registry,
        threads,
        locals: Locals::default(),
    };
    w.main_loop()
}

impl Worker {
    fn main_loop(&mut self) -> i32 {
        self.control.set_pid(self.args.slot, std::process::id());
        let mut seen = self.control.job_posted().current();
        self.control.worker_ready().post();
        loop {
            if self.control.shutdown_requested() {
                return 0;
            }
            let cur = self.control.current_job();
            if cur != 0 && self.control.joined(self.args.slot) == cur {
                self.run_job(cur);
                continue;
            }
            match self.control.job_posted().wait_change(seen, IDLE_PURGE) {
                Ok(s) => seen = s,
                Err(_) => {
                    self.maps.purge();
                    if nix::unistd::getppid().as_raw() as u32 != self.args.parent {
                        return 0;
                    }
                }
            }
        }
    }

    fn fail(&self, op: &str, chunk: usize, first_row: usize, e: &WorkerError) {
        self.control.record_failure(&Failure {
            kernel: op.to_string(),
            chunk,
            first_row,
            message: e.to_string(),
        });
    }

    fn run_job(&mut self, seq: u32) {
        self.maps.purge();
        let desc: JobDesc = match serde_json::from_slice(&self.control.read_descriptor()) {
            Ok(d) => d,
            Err(e) => {
                self.fail("?", 0, 0, &WorkerError::Descriptor(e));
                self.control.leave(self.args.slot, seq);
                return;
            }
        };
        if desc.seq != seq {
            self.control.leave(self.args.slot, seq);
            return;
        }
        let output = match self.claim_loop(&desc) {
            Ok(output) => output,
            Err(e) => {
                self.fail(&desc.op.name(), 0, 0, &e);
                None
            }
        };
        self.control.leave(self.args.slot, seq);
        // A fresh output is unmapped only now, after the job is complete: tearing down the
        // page tables of a large output is not the job's time. It is not kept: a mapping held
        // here would make the worker, not the coordinator, the one that frees the pages when
        // the frame is dropped (measured: 12% of a job's time). A recycled output is kept:
        // the coordinator holds it for the next job of its shape, and mapping its 4096 pages
        // again cost the row-norm job on a 256 MiB matrix about 1-2.5 ms of 14-16 (job medians
        // of three runs each, with and without the kept mapping, in a scratch benchmark).
        if let Some(o) = output
            && desc.output.as_ref().is_some_and(|o| o.keep_mapping)
        {
            self.maps.keep_output(o);
        }
    }

    /// Claims and computes chunks until none is left; returns the output mapping, to be
    /// dropped after the worker has left the job.
    fn claim_loop(&mut self, desc: &JobDesc) -> Result<Option<SegmentRw>, WorkerError> {
        let n = self.control.chunk_count();
        // Map everything once per job.
        let job = desc.op.prepare(&mut Prepare {
            maps: &mut self.maps,
            registry: &self.registry,
        })?;
        let mut out = match &desc.output {
            Some(o) => Some(self.maps.output(o)?),
            None => None,
        };
        let op = desc.op.name();
        let mut done_here = 0u32;
        let mut claim = |c: usize, this: &Worker| {
            if !this.control.claim_chunk(c, this.args.slot) {
                return;
            }
            let r0 = c * desc.chunk_rows;
            let r1 = (r0 + desc.chunk_rows).min(desc.rows);
            if let Err(e) = this.compute(desc, job.as_ref(), out.as_mut(), r0, r1) {
                this.fail(&op, c, r0, &e);
            }
            done_here += 1;
            // Test hook: die after writing this chunk's rows but before counting it, the worst
            // moment: the chunk must be redone, and counted once.
            if let Some((pid, after)) = desc.hooks.kill_pid_after
                && pid == std::process::id()
                && done_here >= after
            {
                let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
            }
            this.control.finish_chunk(c);
            if desc.hooks.chunk_sleep_us > 0 {
                std::thread::sleep(Duration::from_micros(desc.hooks.chunk_sleep_us));
            }
        };
        loop {
            if self.control.cancelled() {
                break;
            }
            let c = self.control.next_chunk();
            if c >= n {
                break;
            }
            claim(c, self);
        }
        // Second pass: chunks released after a worker died, or claimed-then-dropped numbers.
        for c in 0..n {
            if self.control.cancelled() {
                break;
            }
            if self.control.chunk_state(c) == ChunkState::Free {
                claim(c, self);
            }
        }
        Ok(out)
    }

    /// Computes rows `r0..r1` into their rows of the output; a panic becomes an error.
    fn compute(
        &self,
        desc: &JobDesc,
        job: &dyn PreparedJob,
        out: Option<&mut SegmentRw>,
        r0: usize,
        r1: usize,
    ) -> Result<(), WorkerError> {
        if r1 <= r0 {
            return Ok(());
        }
        let cx = Chunk {
            rows: r0..r1,
            threads: self.threads.as_ref(),
            locals: &self.locals,
        };
        let run = |out: &mut [u8]| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.execute(&cx, out)))
                .unwrap_or_else(|p| Err(WorkerError::Panic(panic_message(&p))))
        };
        match (out, &desc.output) {
            (Some(seg), Some(o)) => {
                let row_bytes = o.row_bytes();
                let abs0 = o.values.offset + r0 * row_bytes;
                let len = (r1 - r0) * row_bytes;
                seg.populate_write(abs0..abs0 + len);
                let (body, base) = seg.body_mut();
                let (rel, mapped) = (abs0 - base, base + body.len());
                let rows = body
                    .get_mut(rel..rel + len)
                    .ok_or(WorkerError::OutOfBounds {
                        loc: o.values.loc.clone(),
                        start: abs0,
                        end: abs0 + len,
                        len: mapped,
                    })?;
                run(rows)
            }
            _ => run(&mut []),
        }
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into())
}
