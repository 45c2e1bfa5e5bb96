"""Writes the committed seed files of the arrow_file, parquet_file and csv_file fuzz targets.

Each seed is a small file made by another producer, so the fuzzer starts from the layouts
users hand shmframe: pyarrow (IPC file and stream, LZ4 frame and ZSTD compression, metadata
V4, the legacy pre-0.15 stream framing, dictionaries, nested types, several batches),
polars (IPC, IPC stream, Parquet, CSV) and pyarrow's Parquet (snappy, zstd, dictionary,
nulls). Run: python fuzz/seeds.py (needs pyarrow and polars).
"""

import io
import pathlib
import sys

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

OUT = pathlib.Path(__file__).parent / "corpus"


def table(rows=16):
    """A small table with the types users load: numbers, a matrix column, strings, nulls."""
    vals = pa.array([float(i) for i in range(rows * 4)], pa.float64())
    return pa.table(
        {
            "x": pa.FixedSizeListArray.from_arrays(vals, 4),
            "a": pa.array(list(range(rows)), pa.int32()),
            "b": pa.array([None if i % 3 == 0 else i / 7 for i in range(rows)], pa.float32()),
            "s": pa.array([f"row{i}" for i in range(rows)]),
            "d": pa.array([["x", "y"][i % 2] for i in range(rows)]).dictionary_encode(),
            "l": pa.array([[i, i + 1] for i in range(rows)], pa.list_(pa.int64())),
        }
    )


def ipc_bytes(t, stream=False, **opts):
    sink = io.BytesIO()
    options = ipc.IpcWriteOptions(**opts)
    new = ipc.new_stream if stream else ipc.new_file
    with new(sink, t.schema, options=options) as w:
        for b in t.to_batches(max_chunksize=8):
            w.write_batch(b)
    return sink.getvalue()


def write(target, name, data):
    (OUT / target).mkdir(parents=True, exist_ok=True)
    (OUT / target / f"seed-{name}").write_bytes(data)


def main():
    t = table()
    write("arrow_file", "pyarrow-file", ipc_bytes(t))
    write("arrow_file", "pyarrow-stream", ipc_bytes(t, stream=True))
    write("arrow_file", "pyarrow-lz4", ipc_bytes(t, compression="lz4"))
    write("arrow_file", "pyarrow-zstd", ipc_bytes(t, compression="zstd"))
    write("arrow_file", "pyarrow-stream-zstd", ipc_bytes(t, stream=True, compression="zstd"))
    write("arrow_file", "pyarrow-v4", ipc_bytes(t, metadata_version=ipc.MetadataVersion.V4))
    write(
        "arrow_file",
        "pyarrow-legacy-stream",
        ipc_bytes(t.select(["a", "b"]), stream=True, use_legacy_format=True),
    )
    write("arrow_file", "pyarrow-one-batch", ipc_bytes(t.combine_chunks().slice(0, 8)))
    write("arrow_file", "pyarrow-empty", ipc_bytes(t.slice(0, 0)))
    sink = io.BytesIO()
    pq.write_table(t, sink, compression="snappy", row_group_size=8)
    write("parquet_file", "pyarrow-snappy", sink.getvalue())
    sink = io.BytesIO()
    pq.write_table(t.drop_columns(["d"]), sink, compression="zstd", use_dictionary=False)
    write("parquet_file", "pyarrow-zstd-plain", sink.getvalue())
    sink = io.BytesIO()
    pq.write_table(t.select(["a", "b"]), sink, compression="none", data_page_version="2.0")
    write("parquet_file", "pyarrow-v2-pages", sink.getvalue())
    flat = t.select(["a", "b", "s"])
    sink = io.BytesIO()
    pacsv.write_csv(flat, sink)
    write("csv_file", "pyarrow", sink.getvalue())
    write("csv_file", "quoted", b'a,"b, with comma",c\n1,"x ""y""",2.5\n3,,\n')
    try:
        import polars as pl
    except ImportError:
        print("polars missing: its seeds are skipped", file=sys.stderr)
        return
    df = pl.from_arrow(flat)
    for name, fn in [
        ("polars-ipc", lambda s: df.write_ipc(s)),
        ("polars-ipc-lz4", lambda s: df.write_ipc(s, compression="lz4")),
        ("polars-ipc-stream", lambda s: df.write_ipc_stream(s)),
    ]:
        sink = io.BytesIO()
        fn(sink)
        write("arrow_file", name, sink.getvalue())
    sink = io.BytesIO()
    df.write_parquet(sink)
    write("parquet_file", "polars", sink.getvalue())
    sink = io.BytesIO()
    df.write_csv(sink)
    write("csv_file", "polars", sink.getvalue())


if __name__ == "__main__":
    main()
