//! Hostile Arrow IPC bytes behind a valid segment header: `read_ipc_file` answers
//! `ArrowSegmentError::Invalid` or `Arrow`, never panics, never reads outside the bytes.

use shmframe_ipc::arrow::{read_ipc_file, write_batches};
use shmframe_ipc::{ArrowSegmentError, CreateOptions, MappedFile, Segment, SegmentDir};

use super::harness::{LeakGuard, TempDir, is_child, sample_batch, write_object};

fn good_bytes(g: &LeakGuard) -> Vec<u8> {
    let b = sample_batch();
    let seg = write_batches(g.name(), &CreateOptions::default(), &b.schema(), &[b]).unwrap();
    seg.bytes().to_vec()
}

/// Decodes `bytes` and requires a clean Arrow-level refusal; returns its message.
fn refused(bytes: Vec<u8>, what: &str) -> String {
    match read_ipc_file(bytes, what) {
        Err(e @ (ArrowSegmentError::Invalid { .. } | ArrowSegmentError::Arrow { .. })) => {
            assert!(e.to_string().contains(what), "unnamed error: {e}");
            e.to_string()
        }
        Err(e) => panic!("{what}: unexpected error kind: {e:?}"),
        Ok(f) => panic!("{what}: accepted ({} batches)", f.batches.len()),
    }
}

fn footer_range(b: &[u8]) -> std::ops::Range<usize> {
    let len = b.len();
    let flen = i32::from_le_bytes(b[len - 10..len - 6].try_into().unwrap()) as usize;
    len - 10 - flen..len - 10
}

/// Position of the only occurrence of `pat` in `hay[range]`.
fn find(hay: &[u8], range: std::ops::Range<usize>, pat: &[u8]) -> usize {
    let hits: Vec<usize> = hay[range.clone()]
        .windows(pat.len())
        .enumerate()
        .filter(|(_, w)| *w == pat)
        .map(|(i, _)| range.start + i)
        .collect();
    assert_eq!(hits.len(), 1, "pattern not unique: {hits:?}");
    hits[0]
}

/// Position of the record batch block (24 bytes: offset i64, metadata length i32, padding,
/// body length i64) inside the footer, and the block's fields.
fn block(b: &[u8]) -> (usize, i64, i32, i64) {
    let fr = footer_range(b);
    let footer = arrow_ipc::root_as_footer(&b[fr.clone()]).unwrap();
    let blk = footer.recordBatches().unwrap().get(0);
    let at = find(b, fr, &blk.0);
    (at, blk.offset(), blk.metaDataLength(), blk.bodyLength())
}

#[test]
fn corrupt_arrow_files_are_clean_errors() {
    if is_child() {
        return;
    }
    let g = LeakGuard::new("t-arrowbad");
    let ok = good_bytes(&g);
    let len = ok.len();
    assert!(read_ipc_file(ok.clone(), "good").is_ok());
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = ok.clone();
        f(&mut b);
        b
    };
    let flen_at = len - 10;
    let set_i32 =
        |b: &mut Vec<u8>, at: usize, v: i32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let set_i64 =
        |b: &mut Vec<u8>, at: usize, v: i64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());

    // The footer length.
    let m = refused(with(&|b| set_i32(b, flen_at, i32::MAX)), "flen-max");
    assert!(m.contains("footer length"), "{m}");
    refused(with(&|b| set_i32(b, flen_at, -1)), "flen-negative");
    refused(with(&|b| set_i32(b, flen_at, 0)), "flen-zero");
    let flen = footer_range(&ok).len() as i32;
    refused(with(&|b| set_i32(b, flen_at, flen - 16)), "flen-short");
    refused(with(&|b| set_i32(b, flen_at, flen + 64)), "flen-long");
    // The magic at either end.
    refused(with(&|b| b[len - 1] = b'X'), "trailing-magic");
    refused(with(&|b| b[0] = b'X'), "leading-magic");

    // The record batch block in the footer.
    let (at, off, meta, body) = block(&ok);
    let m = refused(with(&|b| set_i64(b, at, 2 * len as i64)), "block-past-end");
    assert!(m.contains("outside the file"), "{m}");
    let m = refused(with(&|b| set_i64(b, at, -64)), "block-negative");
    assert!(m.contains("negative"), "{m}");
    refused(with(&|b| set_i64(b, at, i64::MAX - 8)), "block-overflow");
    refused(with(&|b| set_i32(b, at + 8, 4)), "block-meta-tiny");
    refused(with(&|b| set_i32(b, at + 8, i32::MAX)), "block-meta-huge");
    refused(
        with(&|b| set_i64(b, at + 16, len as i64)),
        "block-body-past-end",
    );
    refused(with(&|b| set_i64(b, at, off + 64)), "block-shifted");

    // A buffer of the batch message pointing past the message body.
    let (moff, mlen) = (off as usize, meta as usize);
    let msg = arrow_ipc::root_as_message(&ok[moff + 8..moff + mlen]).unwrap();
    let bufs = msg.header_as_record_batch().unwrap().buffers().unwrap();
    let big = bufs.iter().max_by_key(|b| b.length()).unwrap();
    let bat = find(&ok, moff..moff + mlen, &big.0);
    let m = refused(with(&|b| set_i64(b, bat + 8, body + 1)), "buffer-past-body");
    assert!(m.contains("outside"), "{m}");
    refused(with(&|b| set_i64(b, bat, -8)), "buffer-negative");
    refused(with(&|b| set_i64(b, bat + 8, i64::MAX)), "buffer-huge");

    // Truncated files.
    for cut in [0, 9, 17, 128, len / 2, len - 11, len - 1] {
        refused(ok[..cut].to_vec(), &format!("truncated-{cut}"));
    }
}

/// The same corruptions, in real objects: a file in a plain directory (mapped) and a
/// `/dev/shm` segment whose header is valid but whose Arrow footer lies.
#[test]
fn corrupt_arrow_objects_are_clean_errors() {
    if is_child() {
        return;
    }
    let g = LeakGuard::new("t-arrowobj");
    let ok = good_bytes(&g);
    let len = ok.len();
    let (at, ..) = block(&ok);
    let mut bad_block = ok.clone();
    bad_block[at..at + 8].copy_from_slice(&(3 * len as i64).to_le_bytes());
    let mut bad_footer = ok.clone();
    bad_footer[len - 10..len - 6].copy_from_slice(&i32::MAX.to_le_bytes());

    let tmp = TempDir::new("arrowbad");
    for (tag, bytes) in [
        ("block", &bad_block[..]),
        ("footer", &bad_footer[..]),
        ("trunc", &ok[..len / 2]),
    ] {
        let p = tmp.path().join(format!("{tag}.arrow"));
        write_object(&p, bytes, 0o600);
        let f = MappedFile::open(&p).unwrap();
        match read_ipc_file(f, tag) {
            Err(ArrowSegmentError::Invalid { .. } | ArrowSegmentError::Arrow { .. }) => {}
            other => panic!("{tag}: {other:?}"),
        }
    }
    for (tag, bytes) in [("block", &bad_block), ("footer", &bad_footer)] {
        let n = g.user_name(&format!("arrowbad{tag}"));
        write_object(&SegmentDir::Shm.object_path(&n), bytes, 0o600);
        // The shmframe header is intact: attach succeeds, decoding refuses.
        let seg = Segment::attach(&n, &SegmentDir::Shm).unwrap();
        match read_ipc_file(seg, n.as_str()) {
            Err(e @ ArrowSegmentError::Invalid { .. }) => {
                assert!(e.to_string().contains(n.as_str()), "{e}")
            }
            other => panic!("{tag}: {other:?}"),
        }
    }
    g.remove_tracked();
}

/// Every single byte of a good file flipped in turn: decoding may succeed (padding, values)
/// or refuse cleanly, and never panics out of `read_ipc_file`.
#[test]
fn every_flipped_byte_is_ok_or_a_clean_error() {
    if is_child() {
        return;
    }
    let g = LeakGuard::new("t-flip");
    let ok = good_bytes(&g);
    let mut refusals = 0;
    for i in 0..ok.len() {
        let mut b = ok.clone();
        b[i] ^= 0xff;
        match read_ipc_file(b, "flip") {
            Ok(_) => {}
            Err(ArrowSegmentError::Invalid { .. } | ArrowSegmentError::Arrow { .. }) => {
                refusals += 1
            }
            Err(e) => panic!("byte {i}: unexpected error kind {e:?}"),
        }
    }
    assert!(refusals > 100, "only {refusals} refusals");
}

/// Inputs on which the `segment_attach` fuzz target once crashed (arrow-rs panicked on a
/// buffer past the body); each must now be a clean error.
#[test]
fn fuzz_regressions_are_clean_errors() {
    if is_child() {
        return;
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz-regressions");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        match read_ipc_file(bytes, "regression") {
            Err(ArrowSegmentError::Invalid { .. } | ArrowSegmentError::Arrow { .. }) => {}
            other => panic!("{}: {other:?}", p.display()),
        }
        n += 1;
    }
    assert!(n >= 3, "regression inputs missing from {dir}");
}
