//! Files made by other tools: every producer's layout loads with the values pyarrow reads,
//! the content decides the format, and no file (corrupt, hostile, huge) makes a command
//! panic, die of a signal, allocate without bound or leave a segment behind.

use super::*;

/// `shmframe load FILE --name NAME` with the address space capped at `cap_mib` and a time
/// limit, so that an unbounded allocation fails the test rather than the machine.
fn load_capped(file: &Path, name: &str, seg: &Path, cap_mib: u64) -> Output {
    let script = format!(
        "ulimit -v {}; exec timeout 60 \"$0\" load \"$1\" --name {name} --segment-dir \"$2\"",
        cap_mib * 1024
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(BIN)
        .arg(file)
        .arg(seg)
        .env_remove("SHMFRAME_DIR")
        .output()
        .expect("run sh")
}

/// Loads `file` as `name`; asserts exit 0 or 2 (never a panic, a signal or a timeout), an
/// error that names the file, and no segment left but the loaded one. Returns whether it
/// loaded (and removes it).
fn load_survives(file: &Path, seg: &Path, cap_mib: u64) -> bool {
    let o = load_capped(file, "hostile", seg, cap_mib);
    let err = text(&o.stderr);
    let what = file.display();
    assert!(
        matches!(o.status.code(), Some(0 | 2)),
        "{what}: expected exit 0 or 2, got {} (124 is the timeout); stderr: {err}",
        o.status
    );
    // A panic inside a decoder is caught (exit 2), but only the upstream ones already
    // reported may happen at all (fuzz/fuzz_targets/parquet_file.rs lists them).
    let known = [
        "byte_stream_split_decoder.rs",
        "arrow/decoder/delta_byte_array.rs",
        "encodings/decoding.rs:759:",
        "encodings/decoding.rs:773:",
    ];
    assert!(
        !err.contains("panicked") || known.iter().any(|k| err.contains(k)),
        "{what}: panic: {err}"
    );
    let left: Vec<String> = std::fs::read_dir(seg)
        .expect("segment dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    if o.status.success() {
        assert_eq!(left, vec!["shmframe.hostile".to_string()], "{what}");
        std::fs::remove_file(seg.join("shmframe.hostile")).expect("remove");
        true
    } else {
        let name = file
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        assert!(
            err.contains(&name),
            "{what}: the error does not name the file: {err}"
        );
        assert!(left.is_empty(), "{what}: left {left:?}");
        false
    }
}

/// The regression inputs of every file-loading fuzz target, plus the hostile files that
/// crashed `shmframe load` before it checked them (fuzz/regressions/README.md).
fn regression_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    let mut out = Vec::new();
    for t in ["arrow_file", "parquet_file", "csv_file"] {
        let dir = root.join(t);
        out.extend(files_below(&dir).iter().map(|f| dir.join(f)));
    }
    assert!(
        out.len() >= 4,
        "regression files missing under {}",
        root.display()
    );
    out
}

#[test]
fn hostile_files_fail_cleanly_within_bounded_memory() {
    let t = TempDir::new("hostile");
    let seg = t.seg();
    let mut files = regression_files();
    // Made here: the shapes of the crashes the issue reported, whatever the fuzzer keeps.
    // An LZ4 Arrow file whose values buffer (8000 bytes) claims 1 TiB uncompressed.
    let mut lz4 = shmframe_ipc::arrow::testing::f64_file(1000, true);
    let at = lz4
        .windows(8)
        .position(|w| w == 8000i64.to_le_bytes())
        .expect("length prefix");
    lz4[at..at + 8].copy_from_slice(&(1i64 << 40).to_le_bytes());
    files.push(t.write("claims-1tib.arrow", &lz4));
    // A footer block claiming an 8 GiB body (the footer comes last: the last 8000 is its
    // body length).
    let mut body = shmframe_ipc::arrow::testing::f64_file(1000, false);
    let at = body
        .windows(8)
        .rposition(|w| w == 8000i64.to_le_bytes())
        .expect("body length");
    body[at..at + 8].copy_from_slice(&(8i64 << 30).to_le_bytes());
    files.push(t.write("claims-8gib-body.arrow", &body));
    files.push(t.write(
        "claims-2p40-rows.parquet",
        &parquet_claiming(Some(1 << 40), None),
    ));
    files.push(t.write(
        "claims-1tib.parquet",
        &parquet_claiming(None, Some(1 << 40)),
    ));
    files.push(t.write("empty.arrow", b""));
    files.push(t.write("magic-only.arrow", b"ARROW1\0\0ARROW1"));
    files.push(t.write("truncated.parquet", b"PAR1\x15\x04\x15\x10"));
    let mut wide = (0..1_000_000)
        .map(|i| format!("c{i}"))
        .collect::<Vec<_>>()
        .join(",");
    wide.push('\n');
    files.push(t.write("wide-header.csv", wide.as_bytes()));
    let mut w = (0..60_000)
        .map(|i| format!("c{i}"))
        .collect::<Vec<_>>()
        .join(",");
    w.push('\n');
    w.push_str(&vec!["1"; 60_000].join(","));
    w.push('\n');
    files.push(t.write("60k-columns.csv", w.as_bytes()));
    let mut line = String::from("a,b\n");
    line.push_str(&"7".repeat(20 << 20));
    line.push_str(",1\n");
    files.push(t.write("20mib-line.csv", line.as_bytes()));
    let mut loaded = 0;
    for f in &files {
        // 2 GiB of address space: a few hundred MiB of mappings and heap for the command,
        // far below what the files claim.
        loaded += usize::from(load_survives(f, &seg, 2048));
    }
    eprintln!(
        "{} hostile files: {loaded} loaded, the rest refused",
        files.len()
    );
}

/// A valid Parquet file of 1000 f64 values whose metadata is rewritten to claim `rows` rows
/// and `uncompressed` bytes per column chunk: what a corrupt or hostile footer says.
fn parquet_claiming(rows: Option<i64>, uncompressed: Option<i64>) -> Vec<u8> {
    use arrow_array::{Float64Array, RecordBatch};
    use parquet::file::metadata::{ParquetMetaDataReader, ParquetMetaDataWriter};
    let col = Float64Array::from_iter_values((0..1000).map(f64::from));
    let batch = RecordBatch::try_from_iter([("f", std::sync::Arc::new(col) as _)]).expect("batch");
    let mut file = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut file, batch.schema(), None).expect("w");
    w.write(&batch).expect("write");
    w.close().expect("close");
    let n = file.len();
    let footer_len = u32::from_le_bytes(file[n - 8..n - 4].try_into().expect("4")) as usize;
    let md = ParquetMetaDataReader::new()
        .parse_and_finish(&bytes::Bytes::from(file.clone()))
        .expect("metadata");
    let mut builder = md.into_builder();
    let mut groups = builder.take_row_groups();
    for g in &mut groups {
        for c in g.columns_mut() {
            if let Some(u) = uncompressed {
                *c = c
                    .clone()
                    .into_builder()
                    .set_total_uncompressed_size(u)
                    .build()
                    .expect("c");
            }
        }
        if let Some(r) = rows {
            *g = g.clone().into_builder().set_num_rows(r).build().expect("g");
        }
    }
    let md = builder.set_row_groups(groups).build();
    file.truncate(n - 8 - footer_len);
    ParquetMetaDataWriter::new(&mut file, &md)
        .finish()
        .expect("footer");
    file
}

#[test]
fn parquet_metadata_claiming_huge_sizes_is_refused_up_front() {
    let t = TempDir::new("pqclaims");
    let seg = t.seg();
    t.write("ok.parquet", &parquet_claiming(None, None));
    t.write("rows.parquet", &parquet_claiming(Some(1 << 40), None));
    t.write("bytes.parquet", &parquet_claiming(None, Some(1 << 40)));
    ok(&["load", "ok.parquet", "--name", "ok"], &t.0, Some(&seg));
    ok(&["rm", "ok"], &t.0, Some(&seg));
    for f in ["rows.parquet", "bytes.parquet"] {
        fails_with_2(
            &["load", f, "--name", "x"],
            &t.0,
            Some(&seg),
            &format!("{f}: decoding would produce more than the load limit"),
        );
    }
    // A limit smaller than the real file refuses it too.
    fails_with_2(
        &["load", "ok.parquet", "--name", "x", "--load-limit", "1K"],
        &t.0,
        Some(&seg),
        "load limit of 1024 bytes",
    );
    assert!(t.segments().is_empty());
}

#[test]
fn big_endian_arrow_is_refused_not_misread() {
    let t = TempDir::new("bigendian");
    let seg = t.seg();
    let f = t.write(
        "be.arrow",
        &shmframe_ipc::arrow::testing::big_endian_file(&[1, 2, 3]),
    );
    if let Some(python) = python() {
        // The file is genuine: pyarrow reads 1, 2, 3 from it.
        py(
            &python,
            &t.0,
            "import pyarrow as pa\n\
             t = pa.ipc.open_file('be.arrow').read_all()\n\
             assert t.column('v').to_pylist() == [1, 2, 3], t\n",
        );
    }
    let f = f.to_string_lossy().into_owned();
    fails_with_2(
        &["load", &f, "--name", "be"],
        &t.0,
        Some(&seg),
        "big-endian Arrow data is not supported",
    );
    fails_with_2(
        &["run", "sum", "--input", &f],
        &t.0,
        Some(&seg),
        "be.arrow: big-endian",
    );
    assert!(t.segments().is_empty());
}

#[test]
fn the_content_decides_and_a_contradicting_extension_names_both() {
    let t = TempDir::new("sniff");
    let seg = t.seg();
    let seg = Some(seg.as_path());
    gen_matrix(&t, "m.npy", 10, 3, "f64", 1);
    ok(
        &["run", "l2-norm", "--input", "m.npy", "--out", "n.parquet"],
        &t.0,
        seg,
    );
    ok(
        &["run", "normalize", "--input", "m.npy", "--out", "u.arrow"],
        &t.0,
        seg,
    );
    std::fs::copy(t.path("n.parquet"), t.path("n.csv")).expect("copy");
    std::fs::copy(t.path("m.npy"), t.path("m.arrow")).expect("copy");
    std::fs::copy(t.path("u.arrow"), t.path("u.arrow_file")).expect("copy");
    std::fs::copy(t.path("u.arrow"), t.path("u-no-extension")).expect("copy");
    std::fs::copy(t.path("n.parquet"), t.path("n-no-extension")).expect("copy");
    t.write("plain", b"a,b\n1,2\n3,4\n");
    t.write(
        "photo.dat",
        &[0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0],
    );
    t.write("x.csv.gz", &[0x1F, 0x8B, 8, 0, 0, 0, 0, 0]);
    t.write("nothing.csv", b"");
    fails_with_2(
        &["load", "n.csv", "--name", "a"],
        &t.0,
        seg,
        "the content is Parquet but the extension .csv says CSV",
    );
    fails_with_2(
        &["run", "sum", "--input", "m.arrow"],
        &t.0,
        seg,
        "the content is NumPy .npy but the extension .arrow says Arrow IPC",
    );
    fails_with_2(
        &["load", "photo.dat", "--name", "a"],
        &t.0,
        seg,
        "a JPEG image (use `shmframe resize`)",
    );
    fails_with_2(
        &["load", "x.csv.gz", "--name", "a"],
        &t.0,
        seg,
        "gzip-compressed data",
    );
    fails_with_2(
        &["load", "nothing.csv", "--name", "a"],
        &t.0,
        seg,
        "the file is empty",
    );
    // No extension, or one shmframe does not know: the content decides.
    for (file, rows) in [
        ("u.arrow_file", 10),
        ("u-no-extension", 10),
        ("n-no-extension", 10),
        ("plain", 2),
    ] {
        let out = ok(&["run", "sum", "--input", file, "--json"], &t.0, seg);
        assert_eq!(json(&out)["rows"], rows, "{file}: {out}");
    }
    assert!(t.segments().is_empty());
}

#[test]
fn a_table_without_a_matrix_column_runs_across_its_numeric_columns() {
    let t = TempDir::new("numeric");
    let seg = t.seg();
    let seg = Some(seg.as_path());
    t.write("t.csv", b"name,a,b,c\nx,1,2.5,-1\ny,3,,4\nz,0,0.5,0\n");
    let out = ok(
        &["run", "sum", "--input", "t.csv", "--out", "s.npy"],
        &t.0,
        seg,
    );
    assert!(out.contains("[a,b,c]"), "{out}");
    // The row with an empty b is null in the input: its sum is a null row (NaN in .npy,
    // which has no nulls).
    let s = npy_vec(&t.path("s.npy"));
    assert_eq!(s[0], 2.5);
    assert!(s[1].is_nan(), "{s:?}");
    assert_eq!(s[2], 0.5);
    t.write("names.csv", b"name,city\nx,y\n");
    fails_with_2(
        &["run", "sum", "--input", "names.csv"],
        &t.0,
        seg,
        "no numeric column (columns: name, city)",
    );
}

/// The producers' files, written by pyarrow and polars; each loads (in place or decoded) and
/// reads back through pyarrow equal to pyarrow's own read of the file.
const PRODUCERS: &str = r#"
import io, pyarrow as pa, pyarrow.ipc as ipc, pyarrow.parquet as pq, pyarrow.feather as feather
import numpy as np
rng = np.random.default_rng(7)
n = 5000
vals = rng.standard_normal(n * 8)
t = pa.table({
    "x": pa.FixedSizeListArray.from_arrays(pa.array(vals), 8),
    "i": pa.array(rng.integers(-9, 9, n), pa.int64()),
    "f": pa.array([None if k % 7 == 0 else float(k) for k in range(n)], pa.float32()),
    "s": pa.array([f"s{k % 13}" for k in range(n)]),
    "d": pa.array([["red", "green", "blue"][k % 3] for k in range(n)]).dictionary_encode(),
})
def ipc_file(path, stream=False, batches=1000, **o):
    new = ipc.new_stream if stream else ipc.new_file
    with new(path, t.schema, options=ipc.IpcWriteOptions(**o)) as w:
        for b in t.to_batches(max_chunksize=batches):
            w.write_batch(b)
ipc_file("plain.arrow")
ipc_file("one-batch.arrow", batches=n)
ipc_file("lz4.arrow_file", compression="lz4")
ipc_file("zstd.ipc", compression="zstd")
ipc_file("v4.feather", metadata_version=ipc.MetadataVersion.V4)
ipc_file("stream.arrows", stream=True)
ipc_file("stream-zstd", stream=True, compression="zstd")
ipc_file("legacy.stream", stream=True, use_legacy_format=True)
feather.write_feather(t, "feather-default-lz4")
pq.write_table(t, "snappy.parquet", row_group_size=1000)
pq.write_table(t, "zstd.pq", compression="zstd", use_dictionary=False)
pq.write_table(t.drop_columns(["x", "d"]), "v2-pages", data_page_version="2.0")
import polars as pl
df = pl.from_arrow(t.drop_columns(["d"]))
df.write_ipc("polars.arrow")
df.write_ipc("polars-lz4.ipc", compression="lz4")
df.write_ipc_stream("polars-stream")
df.write_parquet("polars.parquet")
df.drop("x").write_csv("polars.csv")
"#;

const COMPARE: &str = r#"
import sys, pyarrow as pa, pyarrow.ipc as ipc, pyarrow.parquet as pq, pyarrow.csv as pacsv
src, seg = sys.argv[1], sys.argv[2]
got = ipc.open_file(pa.memory_map(seg)).read_all()
with open(src, "rb") as fh:
    head = fh.read(8)
if head.startswith(b"PAR1"):
    want = pq.read_table(src)
elif head.startswith(b"ARROW1"):
    want = ipc.open_file(src).read_all()
elif src.endswith(".csv"):
    want = pacsv.read_csv(src)
else:
    want = ipc.open_stream(src).read_all()
want = want.combine_chunks()
assert got.schema.names == want.schema.names, (got.schema, want.schema)
for name in want.schema.names:
    a, b = got.column(name), want.column(name)
    if a.type != b.type:
        b = b.cast(a.type)  # CSV: arrow-csv and pyarrow infer different widths
    assert a.to_pylist() == b.to_pylist(), (src, name)
# `run sum` on the file itself (workers read it in place, or from the decoded segment).
if "x" in want.schema.names:
    import numpy as np
    x = want.column("x").combine_chunks()
    m = x.flatten().to_numpy().reshape(len(x), -1)
    s = np.load("s.npy")
    assert np.allclose(s, m.sum(axis=1), rtol=1e-12, atol=1e-12), (src, s[:4], m.sum(axis=1)[:4])
print(src, got.num_rows, "equal")
"#;

#[test]
fn other_producers_files_load_with_pyarrows_values() {
    let Some(python) = python() else { return };
    let t = TempDir::new("producers");
    let seg = t.seg();
    py(&python, &t.0, PRODUCERS);
    t.write("compare.py", COMPARE.as_bytes());
    let mut files: Vec<String> = std::fs::read_dir(&t.0)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|f| f != "compare.py" && f != "seg")
        .collect();
    files.sort();
    assert!(files.len() >= 17, "{files:?}");
    let _guard = SegGuard {
        dir: Some(seg.clone()),
        names: vec!["prod".into()],
    };
    for f in &files {
        let path = ok(&["load", f, "--name", "prod"], &t.0, Some(&seg));
        let _ = std::fs::remove_file(t.path("s.npy"));
        let o = shmframe(
            &["run", "sum", "--input", f, "--out", "s.npy"],
            &t.0,
            Some(&seg),
        );
        assert!(o.status.success(), "run sum on {f}: {}", text(&o.stderr));
        py(
            &python,
            &t.0,
            &format!(
                "import sys; sys.argv = ['compare', {f:?}, {:?}]; exec(open('compare.py').read())",
                path.trim()
            ),
        );
        ok(&["rm", "prod"], &t.0, Some(&seg));
    }
    assert!(t.segments().is_empty());
}
