//! Loading a Parquet file (metadata checks, then page decoding) as `shmframe load` and `shmframe run --input` do, up to the copy into a
//! segment. Must never panic and never allocate past the limit, whatever the bytes (run with
//! `-malloc_limit_mb` to catch an allocation the file's size does not justify).
#![no_main]

use libfuzzer_sys::fuzz_target;
use shmframe::{FileFormat, decode_for_fuzzing};

/// The load limit of the target: decoding may produce at most this much.
const LIMIT: u64 = 64 << 20;

fuzz_target!(|data: &[u8]| {
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
