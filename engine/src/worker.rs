//! The worker process: waits for jobs on the control segment, claims row chunks, computes,
//! writes its rows of the output, and counts completion.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use shmframe_ipc::sync::atomic::Ordering;
use shmframe_ipc::{MappedFile, Segment, SegmentDir, SegmentName, SegmentRw, SharedRegion};

use crate::control::{
    ACTIVE, BufRef, CANCEL, CHUNK_DONE, CHUNK_FREE, CURRENT_SEQ, Control, DONE_CHUNKS, Dtype,
    Failure, InputDesc, JobDesc, Loc, N_CHUNKS, NEXT_CHUNK, Op, READY, S_CHUNKS, S_JOIN, S_PID,
    SHUTDOWN,
};
use crate::kernels::{
    Accumulate, ColumnSlice, RowKernel, apply_columns, apply_rows, normalize_rows,
};
use crate::user::{KernelRegistry, RowBlock};

/// What a worker needs to start (everything by value: nothing inherited is ever dropped).
#[derive(Debug, Clone)]
pub(crate) struct WorkerArgs {
    pub(crate) control: SegmentName,
    pub(crate) dir: SegmentDir,
    pub(crate) slot: usize,
    pub(crate) threads: usize,
    pub(crate) parent: u32,
    /// Address-space limit of the worker (`RLIMIT_AS`), bytes; 0 = none.
    pub(crate) memory_limit: u64,
}

enum RoMap {
    Segment(Segment),
    File(MappedFile),
}

impl RoMap {
    fn bytes(&self) -> &[u8] {
        match self {
            RoMap::Segment(s) => s.bytes(),
            RoMap::File(f) => f.bytes(),
        }
    }

    fn stale(&self) -> bool {
        match self {
            RoMap::Segment(s) => s.is_unlinked(),
            RoMap::File(_) => false,
        }
    }
}

/// The mapped inputs of an image job.
struct ImageInputs {
    bytes: [(Arc<RoMap>, BufRef); 2],
    paths: Option<[(Arc<RoMap>, BufRef); 2]>,
    scratch: SharedRegion,
}

fn slice_of(m: &(Arc<RoMap>, BufRef)) -> Result<&[u8], String> {
    m.0.bytes()
        .get(m.1.offset..m.1.offset + m.1.len)
        .ok_or_else(|| format!("buffer {:?} outside its mapping", m.1.loc))
}

struct Worker {
    control: Control,
    /// Image codec state, made on the first image job and reused.
    codec: std::cell::RefCell<Option<crate::image::codec::Codec>>,
    args: WorkerArgs,
    registry: Arc<KernelRegistry>,
    pool: Option<rayon::ThreadPool>,
    ro: HashMap<Loc, Arc<RoMap>>,
    /// Mappings of recycled outputs, kept between jobs (most recent last).
    rw: Vec<SegmentRw>,
}

/// Most recycled-output mappings a worker keeps.
const MAX_KEPT_OUTPUTS: usize = 8;

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
    let pool = if args.threads > 1 {
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
        codec: std::cell::RefCell::new(None),
        args,
        registry,
        pool,
        ro: HashMap::new(),
        rw: Vec::new(),
    };
    w.main_loop()
}

impl Worker {
    fn main_loop(&mut self) -> i32 {
        let c = &self.control;
        c.slot(self.args.slot, S_PID)
            .store(std::process::id(), Ordering::Release);
        let mut seen = c.job_event().current();
        c.ready_sem().post();
        loop {
            if self.control.word(SHUTDOWN).load(Ordering::Acquire) != 0 {
                return 0;
            }
            let cur = self.control.word(CURRENT_SEQ).load(Ordering::Acquire);
            if cur != 0
                && self
                    .control
                    .slot(self.args.slot, S_JOIN)
                    .load(Ordering::Acquire)
                    == cur
            {
                self.run_job(cur);
                continue;
            }
            match self
                .control
                .job_event()
                .wait_change(seen, Duration::from_millis(250))
            {
                Ok(s) => seen = s,
                Err(_) => {
                    self.purge();
                    if nix::unistd::getppid().as_raw() as u32 != self.args.parent {
                        return 0;
                    }
                }
            }
        }
    }

    /// Drops mappings of segments that have been unlinked, so their memory can be freed.
    /// Runs before each job and every 250 ms while idle.
    fn purge(&mut self) {
        self.ro.retain(|_, m| !m.stale());
        self.rw.retain(|m| !m.is_unlinked());
    }

    fn leave(&self, seq: u32) {
        let c = &self.control;
        if c.slot(self.args.slot, S_JOIN)
            .compare_exchange(seq, 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
            && c.word(ACTIVE).fetch_sub(1, Ordering::AcqRel) == 1
        {
            c.done_sem().post();
        }
    }

    fn fail(&self, kernel: &str, chunk: usize, first_row: usize, message: String) {
        self.control.record_failure(&Failure {
            kernel: kernel.to_string(),
            chunk,
            first_row,
            message,
        });
    }

    fn run_job(&mut self, seq: u32) {
        if self.ro.len() > 64 {
            self.ro.clear();
        }
        self.purge();
        let desc: JobDesc = match serde_json::from_slice(&self.control.read_blob(true)) {
            Ok(d) => d,
            Err(e) => {
                self.fail("?", 0, 0, format!("unreadable job descriptor: {e}"));
                self.leave(seq);
                return;
            }
        };
        if desc.seq != seq {
            self.leave(seq);
            return;
        }
        let output = match self.claim_loop(&desc) {
            Ok(output) => output,
            Err(msg) => {
                self.fail(&op_name(&desc.op), 0, 0, msg);
                None
            }
        };
        self.leave(seq);
        // A fresh output is unmapped only now, after the job is complete: tearing down the
        // page tables of a large output is not the job's time. It is not kept: a mapping held
        // here would make the worker, not the coordinator, the one that frees the pages when
        // the frame is dropped (measured: 12% of a job's time). A recycled output is kept:
        // the coordinator holds it for the next job of its shape, and mapping its 4096 pages
        // again cost the row-norm job on a 256 MiB matrix about 1-2.5 ms of 14-16 (job medians
        // of three runs each, with and without the kept mapping, in a scratch benchmark).
        if let Some(o) = output.filter(|_| desc.keep_output) {
            if self.rw.len() >= MAX_KEPT_OUTPUTS {
                self.rw.remove(0);
            }
            self.rw.push(o);
        }
    }

    fn ro_map(&mut self, loc: &Loc) -> Result<Arc<RoMap>, String> {
        if let Some(m) = self.ro.get(loc) {
            return Ok(m.clone());
        }
        let m = match loc {
            Loc::Segment(name) => {
                let name = SegmentName::parse(name).map_err(|e| e.to_string())?;
                RoMap::Segment(Segment::attach(&name, &self.args.dir).map_err(|e| e.to_string())?)
            }
            Loc::File(p) => RoMap::File(MappedFile::open(p).map_err(|e| e.to_string())?),
        };
        let m = Arc::new(m);
        self.ro.insert(loc.clone(), m.clone());
        Ok(m)
    }

    /// Claims and computes chunks until none is left; returns the output mapping, to be
    /// dropped after the worker has left the job.
    fn claim_loop(&mut self, desc: &JobDesc) -> Result<Option<SegmentRw>, String> {
        let n = self.control.word(N_CHUNKS).load(Ordering::Acquire) as usize;
        // Map everything once per job.
        let input = match &desc.input {
            Some(InputDesc::Matrix { values, .. }) => {
                vec![(self.ro_map(&values.loc)?, values.clone())]
            }
            Some(InputDesc::Columns { columns }) => {
                let mut v = Vec::new();
                for (b, _) in columns {
                    v.push((self.ro_map(&b.loc)?, b.clone()));
                }
                v
            }
            None => Vec::new(),
        };
        let query = match &desc.query {
            Some((b, _)) => Some((self.ro_map(&b.loc)?, b.clone())),
            None => None,
        };
        let images = match &desc.op {
            Op::Resize(r) => {
                let mut map2 = |b: &crate::image::pipeline::BinaryRef| -> Result<_, String> {
                    Ok([
                        (self.ro_map(&b.offsets.loc)?, b.offsets.clone()),
                        (self.ro_map(&b.values.loc)?, b.values.clone()),
                    ])
                };
                let bytes = map2(&r.bytes)?;
                let paths = r.paths.as_ref().map(&mut map2).transpose()?;
                let name = SegmentName::parse(&r.scratch).map_err(|e| e.to_string())?;
                let scratch =
                    SharedRegion::attach(&name, &self.args.dir).map_err(|e| e.to_string())?;
                Some(ImageInputs {
                    bytes,
                    paths,
                    scratch,
                })
            }
            _ => None,
        };
        let mut out = match &desc.output {
            Some((b, _, _)) => {
                let Loc::Segment(name) = &b.loc else {
                    return Err("outputs must be segments".into());
                };
                match self.rw.iter().position(|m| m.name().as_str() == name) {
                    Some(i) => Some(self.rw.remove(i)),
                    None => {
                        let name = SegmentName::parse(name).map_err(|e| e.to_string())?;
                        Some(SegmentRw::attach(&name, &self.args.dir).map_err(|e| e.to_string())?)
                    }
                }
            }
            None => None,
        };
        let mut done_here = 0u32;
        let slot_mark = self.args.slot as u32 + 1;
        let chunks = self.control.chunks(n);
        let mut claim = |c: usize, this: &Worker| -> bool {
            if chunks[c]
                .compare_exchange(CHUNK_FREE, slot_mark, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                return false;
            }
            let r0 = c * desc.chunk_rows;
            let r1 = (r0 + desc.chunk_rows).min(desc.rows);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                this.compute(
                    desc,
                    &input,
                    query.as_ref(),
                    images.as_ref(),
                    out.as_mut(),
                    r0,
                    r1,
                )
            }))
            .unwrap_or_else(|p| Err(format!("panicked: {}", panic_message(&p))));
            if let Err(msg) = result {
                this.fail(&op_name(&desc.op), c, r0, msg);
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
            // SYNC POINT: the rows are written before the chunk is marked done and counted.
            chunks[c].store(CHUNK_DONE, Ordering::Release);
            this.control
                .word(DONE_CHUNKS)
                .fetch_add(1, Ordering::AcqRel);
            this.control
                .slot(this.args.slot, S_CHUNKS)
                .fetch_add(1, Ordering::Relaxed);
            if desc.hooks.chunk_sleep_us > 0 {
                std::thread::sleep(Duration::from_micros(desc.hooks.chunk_sleep_us));
            }
            true
        };
        let cancelled = || self.control.word(CANCEL).load(Ordering::Acquire) != 0;
        loop {
            if cancelled() {
                break;
            }
            let c = self.control.word(NEXT_CHUNK).fetch_add(1, Ordering::AcqRel) as usize;
            if c >= n {
                break;
            }
            claim(c, self);
        }
        // Second pass: chunks released after a worker died, or claimed-then-dropped numbers.
        for (c, state) in chunks.iter().enumerate() {
            if cancelled() {
                break;
            }
            if state.load(Ordering::Acquire) == CHUNK_FREE {
                claim(c, self);
            }
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)] // the one dispatch point for every kind of job
    fn compute(
        &self,
        desc: &JobDesc,
        input: &[(Arc<RoMap>, BufRef)],
        query: Option<&(Arc<RoMap>, BufRef)>,
        images: Option<&ImageInputs>,
        out: Option<&mut SegmentRw>,
        r0: usize,
        r1: usize,
    ) -> Result<(), String> {
        if r1 <= r0 {
            return Ok(());
        }
        let Some(out_seg) = out else {
            return Ok(()); // Op::Empty
        };
        let (out_ref, out_dtype, out_width) = desc.output.as_ref().expect("output with segment");
        let ow = out_dtype.width() * out_width;
        let abs0 = out_ref.offset + r0 * ow;
        out_seg.populate_write(abs0..abs0 + (r1 - r0) * ow);
        let (body, base) = out_seg.body_mut();
        let o0 = abs0 - base;
        let out_bytes = &mut body[o0..o0 + (r1 - r0) * ow];
        if let (Op::Resize(r), Some(img)) = (&desc.op, images) {
            return self.resize_rows(r, img, out_bytes, r0, r1);
        }
        let query_bytes = query.map(|(m, b)| &m.bytes()[b.offset..b.offset + b.len]);
        match (&desc.op, &desc.input) {
            (Op::Empty, _) => Ok(()),
            (op, Some(InputDesc::Matrix { dtype, cols, .. })) => {
                let (m, b) = &input[0];
                let w = dtype.width() * cols;
                let in_bytes = &m.bytes()[b.offset + r0 * w..b.offset + r1 * w];
                self.matrix_op(op, *dtype, *cols, in_bytes, query_bytes, out_bytes)
            }
            (Op::Row { id, ddof, .. }, Some(InputDesc::Columns { columns })) => {
                let kernel = RowKernel::from_id(*id, *ddof).ok_or("unknown kernel id")?;
                let raw: Vec<(Dtype, &[u8])> = columns
                    .iter()
                    .zip(input)
                    .map(|((_, dt), (m, b))| {
                        let w = dt.width();
                        (*dt, &m.bytes()[b.offset + r0 * w..b.offset + r1 * w])
                    })
                    .collect();
                let q = match query_bytes {
                    Some(q) => Some(cast::<f64>(q)?),
                    None => None,
                };
                let out = cast_mut::<f64>(out_bytes)?;
                self.par_rows(out, 1, |lo, hi, o| {
                    let sub = raw
                        .iter()
                        .map(|(dt, b)| column_slice(*dt, &b[lo * dt.width()..hi * dt.width()]))
                        .collect::<Result<Vec<ColumnSlice<'_>>, _>>()?;
                    apply_columns(&kernel, &sub, q, o).map_err(|e| e.to_string())
                })
            }
            (Op::User { .. }, Some(InputDesc::Columns { .. })) => {
                Err("user kernels take a matrix column".into())
            }
            (Op::Resize(_), _) => Err("image job without its inputs".into()),
            (_, None) => Err("job has no input".into()),
        }
    }

    fn matrix_op(
        &self,
        op: &Op,
        dtype: Dtype,
        cols: usize,
        input: &[u8],
        query: Option<&[u8]>,
        out: &mut [u8],
    ) -> Result<(), String> {
        match op {
            Op::Empty => Ok(()),
            Op::Resize(_) => Err("image jobs take no matrix".into()),
            Op::Row { id, ddof, acc } => {
                let kernel = RowKernel::from_id(*id, *ddof).ok_or("unknown kernel id")?;
                let acc = Accumulate::from_id(*acc).unwrap_or(Accumulate::F64);
                let width = if kernel.output_is_matrix() { cols } else { 1 };
                match dtype {
                    Dtype::F64 => {
                        let x = cast::<f64>(input)?;
                        let q = query.map(cast::<f64>).transpose()?;
                        let o = cast_mut::<f64>(out)?;
                        self.par_rows(o, width, |lo, hi, o| {
                            row_kernel(&kernel, acc, &x[lo * cols..hi * cols], cols, q, o)
                        })
                    }
                    Dtype::F32 => {
                        let x = cast::<f32>(input)?;
                        let q = query.map(cast::<f32>).transpose()?;
                        let o = cast_mut::<f32>(out)?;
                        self.par_rows(o, width, |lo, hi, o| {
                            row_kernel(&kernel, acc, &x[lo * cols..hi * cols], cols, q, o)
                        })
                    }
                    Dtype::U8 => {
                        // Widened to f64 a block of rows at a time (about 512 KiB).
                        let q = query.map(cast::<f64>).transpose()?;
                        let o = cast_mut::<f64>(out)?;
                        let step = ((1 << 16) / cols.max(1)).max(1);
                        self.par_rows(o, width, |lo, hi, o| {
                            let mut buf = Vec::with_capacity(step.min(hi - lo) * cols);
                            for b in (lo..hi).step_by(step) {
                                let e = (b + step).min(hi);
                                buf.clear();
                                buf.extend(input[b * cols..e * cols].iter().map(|&v| f64::from(v)));
                                let ob = &mut o[(b - lo) * width..(e - lo) * width];
                                row_kernel(&kernel, Accumulate::F64, &buf, cols, q, ob)?;
                            }
                            Ok(())
                        })
                    }
                    other => Err(format!(
                        "row kernels take f32, f64 or u8 matrices, not {other:?}"
                    )),
                }
            }
            Op::User { name } => {
                let k = self
                    .registry
                    .get(name)
                    .ok_or_else(|| {
                        format!("user kernel {name:?} is not registered in this worker")
                    })?
                    .clone();
                let width = k.output_cols(cols);
                let o = cast_mut::<f64>(out)?;
                match dtype {
                    Dtype::F64 => {
                        let x = cast::<f64>(input)?;
                        self.par_rows(o, width, |lo, hi, o| {
                            k.run(
                                RowBlock::F64 {
                                    data: &x[lo * cols..hi * cols],
                                    cols,
                                },
                                o,
                            )
                        })
                    }
                    Dtype::F32 => {
                        let x = cast::<f32>(input)?;
                        self.par_rows(o, width, |lo, hi, o| {
                            k.run(
                                RowBlock::F32 {
                                    data: &x[lo * cols..hi * cols],
                                    cols,
                                },
                                o,
                            )
                        })
                    }
                    other => Err(format!(
                        "user kernels take f32 or f64 matrices, not {other:?}"
                    )),
                }
            }
        }
    }

    /// Decodes, resizes (and encodes) images `r0..r1` into their output rows.
    fn resize_rows(
        &self,
        desc: &crate::image::ResizeDesc,
        img: &ImageInputs,
        out: &mut [u8],
        r0: usize,
        r1: usize,
    ) -> Result<(), String> {
        use crate::image::{codec::Codec, pipeline};
        let mut codec = self.codec.borrow_mut();
        if codec.is_none() {
            *codec = Some(Codec::new().map_err(|e| e.to_string())?);
        }
        let paths = match &img.paths {
            Some([o, v]) => Some((slice_of(o)?, slice_of(v)?)),
            None => None,
        };
        let input = pipeline::RowsInput {
            desc,
            bytes: (slice_of(&img.bytes[0])?, slice_of(&img.bytes[1])?),
            paths,
            scratch: &img.scratch,
        };
        pipeline::run_rows(codec.as_mut().expect("made above"), &input, out, r0, r1)
    }

    /// Runs `f(lo, hi, out_rows)` over the chunk's rows, split across this worker's own rayon
    /// pool when it has one.
    fn par_rows<T: Send>(
        &self,
        out: &mut [T],
        width: usize,
        f: impl Fn(usize, usize, &mut [T]) -> Result<(), String> + Sync,
    ) -> Result<(), String> {
        let rows = out.len().checked_div(width).unwrap_or(0);
        match &self.pool {
            Some(pool) if rows >= 2 * pool.current_num_threads() => {
                let per = rows.div_ceil(pool.current_num_threads());
                pool.install(|| {
                    use rayon::prelude::*;
                    out.par_chunks_mut(per * width)
                        .enumerate()
                        .try_for_each(|(i, o)| f(i * per, i * per + o.len() / width, o))
                })
            }
            _ => f(0, rows, out),
        }
    }
}

impl Control {
    pub(crate) fn ready_sem(&self) -> shmframe_ipc::sync::Semaphore<'_> {
        shmframe_ipc::sync::Semaphore::new(self.word(READY), "worker ready")
    }
}

fn row_kernel<T: crate::kernels::Float>(
    kernel: &RowKernel,
    acc: Accumulate,
    x: &[T],
    cols: usize,
    q: Option<&[T]>,
    o: &mut [T],
) -> Result<(), String> {
    if kernel.output_is_matrix() {
        normalize_rows(x, cols, o).map_err(|e| e.to_string())
    } else {
        apply_rows(kernel, acc, x, cols, q, o).map_err(|e| e.to_string())
    }
}

fn cast<T: bytemuck::Pod>(b: &[u8]) -> Result<&[T], String> {
    bytemuck::try_cast_slice(b).map_err(|e| format!("buffer not aligned for its type: {e}"))
}

fn cast_mut<T: bytemuck::Pod>(b: &mut [u8]) -> Result<&mut [T], String> {
    bytemuck::try_cast_slice_mut(b).map_err(|e| format!("output buffer not aligned: {e}"))
}

fn column_slice(dt: Dtype, b: &[u8]) -> Result<ColumnSlice<'_>, String> {
    Ok(match dt {
        Dtype::F32 => ColumnSlice::F32(cast(b)?),
        Dtype::F64 => ColumnSlice::F64(cast(b)?),
        Dtype::I8 => ColumnSlice::I8(cast(b)?),
        Dtype::I16 => ColumnSlice::I16(cast(b)?),
        Dtype::I32 => ColumnSlice::I32(cast(b)?),
        Dtype::I64 => ColumnSlice::I64(cast(b)?),
        Dtype::U8 => ColumnSlice::U8(cast(b)?),
        Dtype::U16 => ColumnSlice::U16(cast(b)?),
        Dtype::U32 => ColumnSlice::U32(cast(b)?),
        Dtype::U64 => ColumnSlice::U64(cast(b)?),
    })
}

pub(crate) fn op_name(op: &Op) -> String {
    match op {
        Op::Empty => "empty".into(),
        Op::Row { id, ddof, .. } => RowKernel::from_id(*id, *ddof)
            .map(|k| k.name().to_string())
            .unwrap_or_default(),
        Op::User { name } => name.clone(),
        Op::Resize(_) => "resize".into(),
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into())
}
