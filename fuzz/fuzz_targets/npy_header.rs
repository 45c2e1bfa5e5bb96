//! The `.npy` header parser on hostile bytes: never panics; an accepted header's data range
//! lies inside the file once `check_file_len` accepts it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shmframe::npy::parse_header;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = parse_header(data)
        && h.check_file_len(data.len() as u64).is_ok()
    {
        assert!(h.data_offset + h.data_len <= data.len());
        let _ = h.shape.iter().product::<usize>();
    }
});
