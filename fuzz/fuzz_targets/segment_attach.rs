//! Attach-time validation of a hostile segment: header decode against the object size, then
//! the Arrow IPC footer, blocks and arrays (zero-copy, validation on, alignment required).
//! Must never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shmframe_ipc::SegmentHeader;
use shmframe_ipc::arrow::read_ipc_file;

fuzz_target!(|data: &[u8]| {
    let version = data
        .get(16..20)
        .map_or(0, |b| u32::from_ne_bytes(b.try_into().expect("4 bytes")));
    if let Ok(h) = SegmentHeader::decode(data, version, data.len() as u64) {
        assert!(h.payload_offset + h.payload_len <= data.len() as u64);
    }
    if let Ok(file) = read_ipc_file(data.to_vec(), "fuzz") {
        for b in &file.batches {
            for c in b.columns() {
                let _ = c.to_data().validate_full();
            }
        }
    }
});
