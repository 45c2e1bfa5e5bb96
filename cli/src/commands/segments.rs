//! `shmframe ls`, `rm` and `gc`: segments in the segment directory.

use anyhow::{Context, Result};
use shmframe::{SegmentDir, SegmentName, SharedFrame};
use shmframe_ipc::sweep::{SegmentInfo, list, sweep_stale};
use shmframe_ipc::{ContentKind, NameOwner, human_bytes};

use super::type_name;
use crate::errors::bad_input;

fn owner_text(info: &SegmentInfo) -> String {
    match info.owner {
        NameOwner::Nobody => "none".into(),
        NameOwner::Process(p) => {
            format!(
                "{} {}",
                p.pid,
                if info.owner_alive { "alive" } else { "dead" }
            )
        }
    }
}

/// Field names and types of an Arrow segment, or why they could not be read.
fn schema_text(info: &SegmentInfo, dir: &SegmentDir) -> String {
    match &info.header {
        Err(e) => format!("error: {e}"),
        Ok(h) if h.version == 0 => "(unpublished)".into(),
        Ok(h) if h.kind == ContentKind::ArrowFile => match SharedFrame::attach(&info.name, dir) {
            Ok(f) => {
                let fields: Vec<String> = f
                    .schema()
                    .fields()
                    .iter()
                    .map(|fl| format!("{}:{}", fl.name(), type_name(fl.data_type())))
                    .collect();
                format!("{} rows; {}", f.num_rows(), fields.join(", "))
            }
            Err(e) => format!("error: {e}"),
        },
        Ok(_) => String::new(),
    }
}

/// `ls`: one row per segment; a segment that cannot be read shows its error in its row.
pub(crate) fn ls(dir: &SegmentDir) -> Result<()> {
    let infos = list(dir).with_context(|| format!("cannot list {}", dir.path().display()))?;
    if infos.is_empty() {
        println!("no shmframe segments in {}", dir.path().display());
        return Ok(());
    }
    let rows: Vec<[String; 5]> = infos
        .iter()
        .map(|i| {
            let kind = match &i.header {
                Ok(h) => h.kind.as_str().to_string(),
                Err(_) => "?".into(),
            };
            [
                i.name.short().to_string(),
                kind,
                human_bytes(i.size),
                owner_text(i),
                schema_text(i, dir),
            ]
        })
        .collect();
    let head = ["NAME", "KIND", "SIZE", "OWNER", "SCHEMA"];
    let mut w = head.map(str::len);
    for r in &rows {
        for (k, c) in r.iter().enumerate().take(4) {
            w[k] = w[k].max(c.chars().count());
        }
    }
    let line = |r: [&str; 5]| {
        println!(
            "{:<w0$}  {:<w1$}  {:>w2$}  {:<w3$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3]
        )
    };
    line(head);
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3], &r[4]]);
    }
    Ok(())
}

/// `rm`: removes each name; reports every failure, then fails if any did.
pub(crate) fn rm(names: &[String], dir: &SegmentDir) -> Result<()> {
    let mut first_err: Option<anyhow::Error> = None;
    let mut failed = 0;
    for n in names {
        let res = SegmentName::from_user_input(n)
            .map_err(anyhow::Error::from)
            .and_then(|name| {
                shmframe_ipc::remove(&name, dir)?;
                Ok(name)
            });
        match res {
            Ok(name) => println!("removed {name}"),
            Err(e) => {
                eprintln!("shmframe: cannot remove {n}: {e:#}");
                failed += 1;
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        None => Ok(()),
        Some(e) if names.len() == 1 => Err(e.context(format!("cannot remove {}", names[0]))),
        Some(e) => Err(e.context(format!(
            "{failed} of {} segments could not be removed",
            names.len()
        ))),
    }
}

/// `gc`: removes segments whose owner process is dead.
pub(crate) fn gc(dir: &SegmentDir) -> Result<()> {
    if !dir.path().is_dir() {
        return Err(bad_input(format!(
            "segment directory {} does not exist",
            dir.path().display()
        )));
    }
    let removed = sweep_stale(dir).context("cannot sweep stale segments")?;
    if removed.is_empty() {
        println!("nothing to remove");
    }
    for i in &removed {
        println!(
            "removed {} ({}, owner {})",
            i.name,
            human_bytes(i.size),
            owner_text(i)
        );
    }
    Ok(())
}
