//! One module per subcommand.

pub(crate) mod demo;
pub(crate) mod generate;
pub(crate) mod load;
#[cfg(feature = "image")]
pub(crate) mod resize;
pub(crate) mod run;
pub(crate) mod segments;

use std::path::Path;

use anyhow::{Context, Result};
use arrow_schema::DataType;
use shmframe::{Engine, EngineBuilder, SegmentDir, StartMethod};

use crate::cli::{PoolArgs, Start};

use crate::errors::bad_input;

/// Short type names: `f64`, `f32`, `i64`…; others as Arrow prints them.
pub(crate) fn type_name(dt: &DataType) -> String {
    match dt {
        DataType::Float64 => "f64".into(),
        DataType::Float32 => "f32".into(),
        DataType::Float16 => "f16".into(),
        DataType::Int64 => "i64".into(),
        DataType::Int32 => "i32".into(),
        DataType::Int16 => "i16".into(),
        DataType::Int8 => "i8".into(),
        DataType::UInt64 => "u64".into(),
        DataType::UInt32 => "u32".into(),
        DataType::UInt16 => "u16".into(),
        DataType::UInt8 => "u8".into(),
        DataType::Utf8 => "utf8".into(),
        DataType::FixedSizeList(f, w) => format!("{}[{w}]", type_name(f.data_type())),
        other => other.to_string(),
    }
}

/// Refuses a missing input file up front (a clear exit-2 error rather than an mmap error).
pub(crate) fn check_source(src: &str) -> Result<()> {
    if src.starts_with("shm:") {
        return Ok(());
    }
    let p = Path::new(src);
    if !p.exists() {
        return Err(bad_input(format!("input file {src} does not exist")));
    }
    if p.is_dir() {
        return Err(bad_input(format!("input {src} is a directory, not a file")));
    }
    Ok(())
}

/// The engine of `run` and `resize`, as the pool options ask. Call it before anything could
/// start a thread: it forks the workers.
pub(crate) fn pool_engine(pool: &PoolArgs, dir: &SegmentDir) -> Result<Engine> {
    pool_builder(pool, dir)
        .build()
        .context("cannot start the worker pool")
}

/// The builder of [`pool_engine`], for commands that set more.
pub(crate) fn pool_builder(pool: &PoolArgs, dir: &SegmentDir) -> EngineBuilder {
    let mut builder = Engine::builder().segment_dir(dir.clone());
    if let Some(n) = pool.workers {
        builder = builder.workers(n);
    }
    if pool.start_method == Start::Spawn {
        builder = builder.start_method(StartMethod::Spawn { exe: None });
    }
    builder
}

/// A one-worker engine for commands that only load data (`load`).
pub(crate) fn small_engine(dir: &SegmentDir, load_limit: Option<u64>) -> Result<Engine> {
    let mut builder = Engine::builder().workers(1).segment_dir(dir.clone());
    if let Some(limit) = load_limit {
        builder = builder.load_limit(limit);
    }
    Ok(builder.build()?)
}

/// A byte count: digits with an optional K, M, G or T suffix (powers of 1024).
pub(crate) fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("{s:?}: unknown unit (use K, M, G or T)")),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("{s:?} is not a byte count (e.g. 4096, 512M, 8G)"))
}
