//! The output of a row job: a one-column Arrow segment whose values the workers write, laid
//! out by the coordinator (metadata, validity copied from the input's null rows), recycled
//! from a dropped output of the same layout when the engine holds one (`crate::recycle`).

use std::sync::Arc;

use arrow_buffer::NullBuffer;
use arrow_schema::{Field, Schema};
use shmframe_ipc::arrow::{ColumnPlan, PlannedSegment, plan_layout, plan_layout_into};
use shmframe_ipc::{ArrowSegmentError, CreateOptions, SegmentDir, SegmentError, SegmentName};

use crate::error::EngineError;
use crate::frame::SharedFrame;
use crate::protocol::{BufRef, Dtype, Loc, OutputDesc};
use crate::recycle::{OutputKey, OutputPool};
use crate::tuning::ROOM_WAIT;

/// An engine's row-job outputs: where new ones are made and dropped ones wait for reuse.
#[derive(Debug)]
pub(crate) struct RowOutputs {
    pool: Arc<OutputPool>,
}

/// A planned row-job output: the segment being filled, published by [`PendingOutput::finish`]
/// once the job is done.
pub(crate) struct PendingOutput {
    planned: PlannedSegment,
    key: OutputKey,
    pool: Arc<OutputPool>,
}

impl RowOutputs {
    /// Keeps up to `cap` bytes of dropped outputs.
    pub(crate) fn new(cap: u64) -> Self {
        RowOutputs {
            pool: Arc::new(OutputPool::new(cap)),
        }
    }

    /// Bytes of dropped outputs held.
    pub(crate) fn bytes(&self) -> u64 {
        self.pool.bytes()
    }

    /// Unlinks the held outputs.
    pub(crate) fn clear(&self) {
        self.pool.clear()
    }

    /// Lays out the output of a row job: one column `field` of `rows` rows, `nulls` its null
    /// rows, `row_width` values of `dtype` per row. Returns what workers are told and the
    /// segment to publish after the job, and whether it is a recycled one.
    pub(crate) fn plan(
        &self,
        field: Field,
        rows: usize,
        nulls: Option<&NullBuffer>,
        dtype: Dtype,
        row_width: usize,
        dir: &SegmentDir,
    ) -> Result<(OutputDesc, PendingOutput, bool), EngineError> {
        let key = OutputKey {
            field,
            rows,
            null_count: nulls.map_or(0, |n| n.null_count()),
        };
        let schema = Schema::new(vec![key.field.clone()]);
        let (mut planned, reused) = self.segment(&key, &schema, dir)?;
        let bufs = planned.columns[0].clone();
        if let (Some(v), Some(nulls)) = (&bufs.validity, nulls) {
            let (body, base) = planned.segment.body_mut();
            let bits = nulls.inner().sliced();
            let dst = &mut body[v.start - base..v.end - base];
            dst.copy_from_slice(&bits.as_slice()[..dst.len()]);
        }
        let desc = OutputDesc {
            values: BufRef {
                loc: Loc::Segment(planned.segment.name().to_string()),
                offset: bufs.values.start,
                len: bufs.values.len(),
            },
            dtype,
            row_width,
            keep_mapping: reused,
        };
        let pending = PendingOutput {
            planned,
            key,
            pool: self.pool.clone(),
        };
        Ok((desc, pending, reused))
    }

    /// A recycled segment for `key` if one is held, else a new one (after releasing the held
    /// ones if it does not fit). Returns whether it was recycled.
    fn segment(
        &self,
        key: &OutputKey,
        schema: &Schema,
        dir: &SegmentDir,
    ) -> Result<(PlannedSegment, bool), EngineError> {
        let plans = [ColumnPlan {
            null_count: key.null_count,
            value_bytes: 0,
        }];
        if let Some(seg) = self.pool.take(key) {
            match plan_layout_into(seg, schema, key.rows, &plans) {
                Ok(p) => return Ok((p, true)),
                // Cannot happen for an equal key (the layout follows from it); a new segment
                // is the remedy if it ever does.
                Err(e) => tracing::warn!(error = %e, "recycled output refused"),
            }
        }
        let create = CreateOptions {
            dir: dir.clone(),
            ..Default::default()
        };
        let fresh = || -> Result<PlannedSegment, ArrowSegmentError> {
            let name = SegmentName::owned("out").map_err(SegmentError::from)?;
            plan_layout(name, &create, schema, key.rows, &plans)
        };
        match fresh() {
            Err(ArrowSegmentError::Segment(SegmentError::NoSpace { .. }))
                if self.pool.bytes() > 0 =>
            {
                self.pool.clear();
                // The released pages return to the file system only once every mapping of
                // them is gone, and a worker unmaps a fresh output just after leaving its job
                // (worker/mod.rs), possibly a moment after the coordinator saw the job done:
                // look again, briefly, before calling the directory full.
                let until = std::time::Instant::now() + ROOM_WAIT;
                loop {
                    match fresh() {
                        Err(ArrowSegmentError::Segment(SegmentError::NoSpace { .. }))
                            if std::time::Instant::now() < until =>
                        {
                            std::thread::sleep(std::time::Duration::from_millis(5));
                        }
                        r => return Ok((r?, false)),
                    }
                }
            }
            r => Ok((r?, false)),
        }
    }
}

impl PendingOutput {
    /// Publishes the written output as a frame that goes back to the engine's pool when
    /// dropped.
    pub(crate) fn finish(self) -> Result<SharedFrame, EngineError> {
        let seg = self.planned.segment.publish()?;
        SharedFrame::from_recyclable(seg, &self.pool, self.key)
    }
}
