//! Pillow as the reference: files it writes and its own results on them, made by
//! `images/pillow.py` with the python named by `SHMFRAME_PYTHON`.

use crate::s;
use std::path::Path;
use std::process::Command;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/images/pillow.py");

/// The python named by `SHMFRAME_PYTHON` if it imports numpy and Pillow; `None`, with the
/// reason printed, otherwise (the rule of the other python tests: skipped, not failed).
pub(crate) fn python() -> Option<String> {
    let py = match std::env::var("SHMFRAME_PYTHON") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            println!(
                "  skipped: set SHMFRAME_PYTHON to a python with numpy and Pillow (bash .ci/run does)"
            );
            return None;
        }
    };
    match Command::new(&py)
        .args(["-c", "import numpy, PIL.ImageOps"])
        .output()
    {
        Ok(o) if o.status.success() => Some(py),
        Ok(_) => {
            println!("  skipped: {py} cannot import numpy and Pillow (pip install numpy pillow)");
            None
        }
        Err(e) => {
            println!("  skipped: cannot run {py}: {e}");
            None
        }
    }
}

/// Runs `pillow.py MODE DIR W H`: see the script for what each mode writes below `dir`.
pub(crate) fn make(py: &str, mode: &str, dir: &Path, w: u32, h: u32) -> Result<(), String> {
    let o = Command::new(py)
        .arg(SCRIPT)
        .arg(mode)
        .arg(dir)
        .args([w.to_string(), h.to_string()])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .map_err(s)?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "pillow.py {mode} failed: {}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        ))
    }
}

/// A file the script wrote, whole.
pub(crate) fn read(dir: &Path, rel: &str) -> Result<Vec<u8>, String> {
    std::fs::read(dir.join(rel)).map_err(|e| format!("{rel}: {e}"))
}
