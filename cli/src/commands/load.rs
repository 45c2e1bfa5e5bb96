//! `shmframe load`: a file into a named persistent segment.

use anyhow::{Context, Result};
use shmframe::{SegmentDir, SegmentName};

use super::{check_source, small_engine};
use crate::cli::LoadArgs;

/// Runs the command.
pub(crate) fn run(a: &LoadArgs, dir: &SegmentDir) -> Result<()> {
    let name = SegmentName::user(&a.name).context("bad segment name")?;
    let src = a.file.to_string_lossy().into_owned();
    check_source(&src)?;
    let engine = small_engine(dir, a.load_limit)?;
    let frame = engine
        .frame_from_source(&src)
        .with_context(|| format!("cannot load {src}"))?;
    let path = frame
        .persist_as(&name, dir)
        .with_context(|| format!("cannot create segment {name}"))?;
    println!("{}", path.display());
    Ok(())
}
