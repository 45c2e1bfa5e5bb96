//! Loading a Parquet file (metadata checks, then page decoding) as `shmframe load` and `shmframe run --input` do, up to the copy into a
//! segment. Must never panic and never allocate past the limit, whatever the bytes (run with
//! `-malloc_limit_mb` to catch an allocation the file's size does not justify).
#![no_main]

use libfuzzer_sys::fuzz_target;
use shmframe::{FileFormat, decode_for_fuzzing};

/// The load limit of the target: decoding may produce at most this much.
const LIMIT: u64 = 64 << 20;

/// Panics of parquet-rs already reported upstream and still open in the version the workspace
/// pins. The engine catches them (`no_panic`: the load fails with an input error, exit 2);
/// here they are let through to that `catch_unwind` instead of aborting, so the fuzzer keeps
/// looking for the others. Each entry: the panicking file (or `file:line`), and what it is.
const KNOWN_UPSTREAM: &[(&str, &str)] = &[
    (
        "encodings/decoding/byte_stream_split_decoder.rs",
        "apache/arrow-rs#11121: BYTE_STREAM_SPLIT page declaring more values than it holds",
    ),
    (
        "arrow/decoder/delta_byte_array.rs",
        "a negative DELTA_BYTE_ARRAY suffix length: an add overflow (checked builds), a slice \
         panic (release); found here, fuzz/regressions/README.md",
    ),
    (
        "encodings/decoding.rs:759",
        "DeltaBitPackDecoder::get: values_left underflows (checked builds); found here",
    ),
    (
        "encodings/decoding.rs:773",
        "DeltaBitPackDecoder::get slicing its output past a short buffer (release); found here",
    ),
];

fn let_known_panics_unwind() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let known = info.location().is_some_and(|l| {
                let at = format!("{}:{}", l.file(), l.line());
                KNOWN_UPSTREAM
                    .iter()
                    .any(|(f, _)| l.file().ends_with(f) || at.ends_with(f))
            });
            if !known {
                abort(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    let_known_panics_unwind();
    if let Ok(batches) = decode_for_fuzzing(data, "fuzz", Some(FileFormat::Parquet), LIMIT) {
        for b in &batches {
            for c in b.columns() {
                let _ = c.to_data().validate_full();
            }
        }
    }
    // The same bytes through content sniffing (any format, the name gives no hint).
    let _ = decode_for_fuzzing(data, "fuzz", None, LIMIT);
});
