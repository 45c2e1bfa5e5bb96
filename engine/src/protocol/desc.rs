//! The building blocks of a job descriptor: where a buffer lives, element types, the output,
//! test hooks, and the failure record. The descriptor itself, whose operation part is
//! defined by the operation modules, is [`crate::ops::JobDesc`].

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where a buffer lives, as a worker finds it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) enum Loc {
    /// A named segment (in the engine's segment directory).
    Segment(String),
    /// A plain file mapped read-only.
    File(PathBuf),
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loc::Segment(name) => write!(f, "segment {name}"),
            Loc::File(p) => write!(f, "file {}", p.display()),
        }
    }
}

/// A byte range in a mapped object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BufRef {
    /// The mapped object.
    pub(crate) loc: Loc,
    /// First byte, from the start of the object.
    pub(crate) offset: usize,
    /// Bytes.
    pub(crate) len: usize,
}

/// Element types a job reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Dtype {
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
}

impl Dtype {
    /// Bytes per element.
    pub(crate) fn width(self) -> usize {
        match self {
            Dtype::I8 | Dtype::U8 => 1,
            Dtype::I16 | Dtype::U16 => 2,
            Dtype::F32 | Dtype::I32 | Dtype::U32 => 4,
            Dtype::F64 | Dtype::I64 | Dtype::U64 => 8,
        }
    }

    /// The element type of an Arrow primitive type.
    pub(crate) fn from_arrow(dt: &arrow_schema::DataType) -> Option<Self> {
        use arrow_schema::DataType as D;
        Some(match dt {
            D::Float32 => Dtype::F32,
            D::Float64 => Dtype::F64,
            D::Int8 => Dtype::I8,
            D::Int16 => Dtype::I16,
            D::Int32 => Dtype::I32,
            D::Int64 => Dtype::I64,
            D::UInt8 => Dtype::U8,
            D::UInt16 => Dtype::U16,
            D::UInt32 => Dtype::U32,
            D::UInt64 => Dtype::U64,
            _ => return None,
        })
    }

    /// The Arrow type of this element type.
    pub(crate) fn to_arrow(self) -> arrow_schema::DataType {
        use arrow_schema::DataType as D;
        match self {
            Dtype::F32 => D::Float32,
            Dtype::F64 => D::Float64,
            Dtype::I8 => D::Int8,
            Dtype::I16 => D::Int16,
            Dtype::I32 => D::Int32,
            Dtype::I64 => D::Int64,
            Dtype::U8 => D::UInt8,
            Dtype::U16 => D::UInt16,
            Dtype::U32 => D::UInt32,
            Dtype::U64 => D::UInt64,
        }
    }
}

/// Calls `$body` with `$T` bound to the Rust type of a [`Dtype`]: the one place where an
/// element type read from a descriptor becomes a type parameter.
macro_rules! with_dtype {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::protocol::Dtype::F32 => {
                type $T = f32;
                $body
            }
            $crate::protocol::Dtype::F64 => {
                type $T = f64;
                $body
            }
            $crate::protocol::Dtype::I8 => {
                type $T = i8;
                $body
            }
            $crate::protocol::Dtype::I16 => {
                type $T = i16;
                $body
            }
            $crate::protocol::Dtype::I32 => {
                type $T = i32;
                $body
            }
            $crate::protocol::Dtype::I64 => {
                type $T = i64;
                $body
            }
            $crate::protocol::Dtype::U8 => {
                type $T = u8;
                $body
            }
            $crate::protocol::Dtype::U16 => {
                type $T = u16;
                $body
            }
            $crate::protocol::Dtype::U32 => {
                type $T = u32;
                $body
            }
            $crate::protocol::Dtype::U64 => {
                type $T = u64;
                $body
            }
        }
    };
}
pub(crate) use with_dtype;

/// A job's output values as workers find them: each worker writes the rows of the chunks it
/// claims, and nothing else.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OutputDesc {
    /// The values buffer, in a segment.
    pub(crate) values: BufRef,
    /// Element type.
    pub(crate) dtype: Dtype,
    /// Elements per row.
    pub(crate) row_width: usize,
    /// The output is a recycled segment (see `crate::recycle`): workers keep their mapping of
    /// it after the job, so the next job into it finds its pages mapped.
    pub(crate) keep_mapping: bool,
}

impl OutputDesc {
    /// Bytes per output row.
    pub(crate) fn row_bytes(&self) -> usize {
        self.dtype.width() * self.row_width
    }
}

/// Test hooks carried by a job (fault injection; never set by normal use).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Hooks {
    /// The worker with this pid SIGKILLs itself after writing (not counting) this many chunks.
    pub(crate) kill_pid_after: Option<(u32, u32)>,
    /// Every worker sleeps this long (µs) after each chunk.
    pub(crate) chunk_sleep_us: u64,
}

/// The first failure of a job, as recorded by a worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Failure {
    /// The operation's name (a kernel name, `resize`).
    pub(crate) kernel: String,
    /// The chunk.
    pub(crate) chunk: usize,
    /// The chunk's first row.
    pub(crate) first_row: usize,
    /// What went wrong.
    pub(crate) message: String,
}

impl Failure {
    /// A failure whose details could not be read.
    pub(crate) fn unknown(message: &str) -> Self {
        Failure {
            kernel: "?".into(),
            chunk: 0,
            first_row: 0,
            message: message.into(),
        }
    }
}
