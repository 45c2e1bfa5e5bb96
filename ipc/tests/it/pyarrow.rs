//! pyarrow opens a segment written here, in place (`tests/python/test_pyarrow_reads_segment.py`).
//!
//! Runs the python named by `SHMFRAME_PYTHON` (skipped, with the reason printed, when it is
//! unset or cannot import pyarrow): under pytest when pytest is installed, else as a script.

use std::process::Command;
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, UInt8Type};
use arrow_array::{Array, RecordBatch};
use shmframe_ipc::arrow::write_batches;
use shmframe_ipc::{CreateOptions, matrix};

use super::harness::{ChildProc, Finished, LeakGuard, is_child, sample_batch};

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/python/test_pyarrow_reads_segment.py"
);

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_list<T>(items: impl IntoIterator<Item = T>, f: impl Fn(T) -> String) -> String {
    let v: Vec<String> = items.into_iter().map(f).collect();
    format!("[{}]", v.join(","))
}

/// The values the script must find, as JSON, read from the batch itself.
fn expected_json(b: &RecordBatch) -> String {
    let x = b.column(0).as_fixed_size_list();
    let xv = x.values().as_primitive::<Float64Type>();
    let w = x.value_length() as usize;
    let rows = json_list(0..x.len(), |r| {
        json_list(&xv.values()[r * w..(r + 1) * w], |v| format!("{v:?}"))
    });
    let shape = matrix::tensor_shape(b.schema().field(1)).unwrap().unwrap();
    let img = b.column(1).as_fixed_size_list();
    let iv = img.values().as_primitive::<UInt8Type>();
    let id = b.column(2).as_primitive::<Int32Type>();
    let s = b.column(3).as_string::<i32>();
    let opt = |v: Option<String>| v.unwrap_or_else(|| "null".into());
    format!(
        r#"{{"x":{{"list_size":{w},"rows":{rows}}},"img":{{"shape":{},"values":{}}},"id":{},"s":{}}}"#,
        json_list(&shape, |d| d.to_string()),
        json_list(iv.values().iter(), |v| v.to_string()),
        json_list(id.iter(), |v| opt(v.map(|v| v.to_string()))),
        json_list(s.iter(), |v| opt(v.map(json_str))),
    )
}

fn run(mut cmd: Command, what: &str) -> Option<Finished> {
    cmd.env("PYTHONDONTWRITEBYTECODE", "1");
    match ChildProc::spawn(cmd, what) {
        Ok(c) => Some(c.wait(Duration::from_secs(120))),
        Err(e) => {
            eprintln!("skipped: cannot run {what}: {e}");
            None
        }
    }
}

fn imports(py: &str, module: &str) -> bool {
    let mut c = Command::new(py);
    c.args(["-c", &format!("import {module}")]);
    run(c, &format!("{py} -c 'import {module}'")).is_some_and(|f| f.status.success())
}

#[test]
fn pyarrow_reads_our_segment_in_place() {
    if is_child() {
        return;
    }
    let py = match std::env::var("SHMFRAME_PYTHON") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            eprintln!("skipped: set SHMFRAME_PYTHON to a python with pyarrow (bash .ci/run does)");
            return;
        }
    };
    if !imports(&py, "pyarrow") {
        eprintln!("skipped: {py} cannot import pyarrow");
        return;
    }
    let g = LeakGuard::new("t-py");
    let batch = sample_batch();
    let owner = write_batches(
        g.name(),
        &CreateOptions::default(),
        &batch.schema(),
        std::slice::from_ref(&batch),
    )
    .unwrap();
    let path = owner.path();
    let expected = expected_json(&batch);
    let done = if imports(&py, "pytest") {
        let mut c = Command::new(&py);
        c.args(["-m", "pytest", "-q", "-p", "no:cacheprovider", SCRIPT])
            .env("SHMFRAME_SEGMENT_PATH", &path)
            .env("SHMFRAME_SEGMENT_EXPECTED", &expected);
        let done = run(c, "pytest").expect("python ran above");
        done.assert_success("pytest");
        assert!(done.stdout.contains("1 passed"), "not run: {done:?}");
        done
    } else {
        eprintln!("pytest not installed for {py}: running the check as a script");
        let mut c = Command::new(&py);
        c.arg(SCRIPT).arg(&path).arg(&expected);
        let done = run(c, "python").expect("python ran above");
        done.assert_success("python check");
        assert!(done.stdout.starts_with("ok"), "{done:?}");
        done
    };
    eprintln!("{}", done.stdout.trim());
    assert!(path.exists(), "python must not remove the segment");
    drop(owner);
}
