//! Where each format keeps its orientation, the TIFF value types, the precedence of EXIF
//! over XMP, and hostile bytes. The expected values are what Pillow 13's `Image.Exif` and
//! `ImageOps.exif_transpose` give for the same bytes (checked by hand; `cli/tests/images.rs`
//! compares whole files against Pillow when `SHMFRAME_PYTHON` is set).

use super::*;
use proptest::prelude::*;

const O: [Orientation; 9] = [
    Orientation::NoTransforms, // 0: not an EXIF value, unused
    Orientation::NoTransforms,
    Orientation::FlipHorizontal,
    Orientation::Rotate180,
    Orientation::FlipVertical,
    Orientation::Rotate90FlipH,
    Orientation::Rotate90,
    Orientation::Rotate270FlipH,
    Orientation::Rotate270,
];

/// A big-endian TIFF whose first IFD holds `entries` (tag, type, count, 4-byte value field),
/// followed by `extra` bytes (at offset `data_at(entries.len())`).
fn tiff(entries: &[(u16, u16, u32, [u8; 4])], extra: &[u8]) -> Vec<u8> {
    let mut t = b"MM\0*".to_vec();
    t.extend_from_slice(&8u32.to_be_bytes());
    t.extend_from_slice(&(entries.len() as u16).to_be_bytes());
    for (tag, kind, count, value) in entries {
        t.extend_from_slice(&tag.to_be_bytes());
        t.extend_from_slice(&kind.to_be_bytes());
        t.extend_from_slice(&count.to_be_bytes());
        t.extend_from_slice(value);
    }
    t.extend_from_slice(&[0; 4]);
    t.extend_from_slice(extra);
    t
}

/// Where the bytes after `n` entries start.
fn data_at(n: usize) -> [u8; 4] {
    ((8 + 2 + 12 * n + 4) as u32).to_be_bytes()
}

/// A little-endian TIFF with one SHORT orientation entry.
fn exif_le(o: u16) -> Vec<u8> {
    let mut t = b"II*\0".to_vec();
    t.extend_from_slice(&8u32.to_le_bytes());
    t.extend_from_slice(&1u16.to_le_bytes());
    t.extend_from_slice(&0x0112u16.to_le_bytes());
    t.extend_from_slice(&3u16.to_le_bytes());
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(&o.to_le_bytes());
    t.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    t
}

fn short(v: u16) -> [u8; 4] {
    let b = v.to_be_bytes();
    [b[0], b[1], 0, 0]
}

#[test]
fn the_tag_is_read_as_pillow_reads_it() {
    let width = (0x0100, 3, 1, short(64));
    let one =
        |e: (u16, u16, u32, [u8; 4]), extra: &[u8]| exif_orientation_tag(&tiff(&[width, e], extra));
    let p = |v: f64| Tag::Present(Some(v));
    // Every integer type; bytes and text are kept as such by Pillow (no transform).
    assert_eq!(one((0x112, 3, 1, short(6)), &[]), p(6.0));
    assert_eq!(one((0x112, 4, 1, 6u32.to_be_bytes()), &[]), p(6.0));
    assert_eq!(one((0x112, 8, 1, short(6)), &[]), p(6.0));
    assert_eq!(one((0x112, 9, 1, 6u32.to_be_bytes()), &[]), p(6.0));
    assert_eq!(one((0x112, 6, 1, [6, 0, 0, 0]), &[]), p(6.0));
    assert_eq!(one((0x112, 13, 1, 6u32.to_be_bytes()), &[]), p(6.0));
    assert_eq!(one((0x112, 8, 1, short(0xFFFE)), &[]), p(-2.0));
    assert_eq!(one((0x112, 1, 1, [6, 0, 0, 0]), &[]), Tag::Present(None));
    assert_eq!(one((0x112, 7, 1, [6, 0, 0, 0]), &[]), Tag::Present(None));
    assert_eq!(one((0x112, 2, 2, *b"6\0\0\0"), &[]), Tag::Present(None));
    // Rationals and floats compare equal to an integer in Python.
    let rational = [&12u32.to_be_bytes()[..], &2u32.to_be_bytes()].concat();
    assert_eq!(one((0x112, 5, 1, data_at(2)), &rational), p(6.0));
    assert_eq!(
        one((0x112, 11, 1, 6.0f32.to_bits().to_be_bytes()), &[]),
        p(6.0)
    );
    assert_eq!(
        one((0x112, 12, 1, data_at(2)), &6.0f64.to_bits().to_be_bytes()),
        p(6.0)
    );
    assert_eq!(one((0x112, 16, 1, data_at(2)), &6u64.to_be_bytes()), p(6.0));
    // More than one value: the first; stored outside the entry when over 4 bytes.
    assert_eq!(one((0x112, 3, 2, [0, 6, 0, 3]), &[]), p(6.0));
    assert_eq!(one((0x112, 3, 3, data_at(2)), &[0, 8, 0, 1, 0, 1]), p(8.0));
    // No value, a value outside the data, an unknown type: as if absent.
    assert_eq!(one((0x112, 3, 0, short(6)), &[]), Tag::Absent);
    assert_eq!(one((0x112, 3, 3, 1000u32.to_be_bytes()), &[]), Tag::Absent);
    assert_eq!(one((0x112, 99, 1, short(6)), &[]), Tag::Absent);
    assert_eq!(one((0x112, 3, u32::MAX, data_at(2)), &[]), Tag::Absent);
    // The first readable entry counts.
    let two = |a, b| exif_orientation_tag(&tiff(&[a, b], &[]));
    assert_eq!(
        two((0x112, 3, 1, short(6)), (0x112, 3, 1, short(3))),
        p(6.0)
    );
    assert_eq!(
        two((0x112, 99, 1, short(6)), (0x112, 3, 1, short(3))),
        p(3.0)
    );
    assert_eq!(
        two((0x112, 3, 0, short(6)), (0x112, 3, 1, short(3))),
        p(3.0)
    );
    // Little-endian, and the swapped magic numbers Pillow accepts.
    assert_eq!(exif_orientation_tag(&exif_le(8)), p(8.0));
    let mut swapped = tiff(&[(0x112, 3, 1, short(6))], &[]);
    swapped[2..4].copy_from_slice(b"*\0");
    assert_eq!(exif_orientation_tag(&swapped), p(6.0));
    // Truncated: the entries read before the cut count.
    let mut cut = tiff(&[(0x112, 3, 1, short(6)), width, width], &[]);
    cut.truncate(8 + 2 + 12 + 4);
    assert_eq!(exif_orientation_tag(&cut), p(6.0));
    let mut cut = tiff(&[width, (0x112, 3, 1, short(6))], &[]);
    cut.truncate(8 + 2 + 12 + 6);
    assert_eq!(exif_orientation_tag(&cut), Tag::Absent);
    // Not a TIFF, an IFD outside the data.
    assert_eq!(exif_orientation_tag(b"Exif\0\0MM\0*"), Tag::Absent);
    assert_eq!(exif_orientation_tag(b"MM\0*\0\0\x03\xe7"), Tag::Absent);
    assert_eq!(exif_orientation_tag(b""), Tag::Absent);
}

#[test]
fn values_outside_one_to_eight_and_xmp_fallback() {
    let e = |v: u16| tiff(&[(0x112, 3, 1, short(v))], &[]);
    for v in 1..=8u16 {
        assert_eq!(resolve(Some(&e(v)), None), O[usize::from(v)], "{v}");
    }
    for v in [0u16, 9, 262, 0xFFFF] {
        assert_eq!(resolve(Some(&e(v)), None), Orientation::NoTransforms, "{v}");
    }
    let xmp = br#"<rdf:Description tiff:Orientation="6"/>"#;
    // EXIF with the tag wins, even with 1; without the tag (or unreadable), XMP is read.
    assert_eq!(resolve(Some(&e(1)), Some(xmp)), Orientation::NoTransforms);
    assert_eq!(resolve(Some(&e(9)), Some(xmp)), Orientation::NoTransforms);
    let no_tag = tiff(&[(0x100, 3, 1, short(6))], &[]);
    assert_eq!(resolve(Some(&no_tag), Some(xmp)), Orientation::Rotate90);
    assert_eq!(resolve(Some(b"junk"), Some(xmp)), Orientation::Rotate90);
    assert_eq!(resolve(None, Some(xmp)), Orientation::Rotate90);
    assert_eq!(resolve(None, None), Orientation::NoTransforms);
}

#[test]
fn xmp_is_searched_as_pillow_searches_it() {
    assert_eq!(xmp_orientation(br#"a tiff:Orientation="8" b"#), Some(8));
    assert_eq!(
        xmp_orientation(b"<tiff:Orientation>5</tiff:Orientation>"),
        Some(5)
    );
    // The first occurrence that matches; other quotes and spaces do not.
    assert_eq!(
        xmp_orientation(br#"tiff:Orientation='6' tiff:Orientation = "6" tiff:Orientation="3""#),
        Some(3)
    );
    assert_eq!(xmp_orientation(br#"tiff:Orientation="x""#), None);
    assert_eq!(xmp_orientation(b"tiff:Orientation"), None);
    assert_eq!(xmp_orientation(br#"tiff:Orientation="9""#), Some(9));
}

#[test]
fn exif_headers_are_stripped_up_to_a_limit() {
    let t = exif_le(6);
    for n in 0..=3 {
        let data = [b"Exif\0\0".repeat(n), t.clone()].concat();
        let got = exif_orientation_tag(strip_exif_headers(&data, 2));
        let want = if n <= 2 {
            Tag::Present(Some(6.0))
        } else {
            Tag::Absent
        };
        assert_eq!(got, want, "{n} headers");
    }
}

// ---------------------------------------------------------------------------------------------
// JPEG.

fn segment(marker: u8, body: &[u8]) -> Vec<u8> {
    let mut s = vec![0xFF, marker];
    s.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
    s.extend_from_slice(body);
    s
}

fn jpeg_with(segments: &[Vec<u8>]) -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8];
    for s in segments {
        j.extend_from_slice(s);
    }
    j.extend_from_slice(&segment(0xDA, &[1, 2, 3]));
    j.extend_from_slice(&[0x12, 0x34, 0xFF, 0xD9]);
    j
}

fn app1_exif(tiff: &[u8]) -> Vec<u8> {
    segment(0xE1, &[&b"Exif\0\0"[..], tiff].concat())
}

fn app1_xmp(packet: &[u8]) -> Vec<u8> {
    segment(0xE1, &[JPEG_XMP, packet].concat())
}

#[test]
fn jpeg_exif_xmp_and_segments_around_them() {
    let jfif = segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    for o in 1..=8u16 {
        let j = jpeg_with(&[jfif.clone(), app1_exif(&exif_le(o))]);
        assert_eq!(jpeg(&j), O[usize::from(o)], "{o}");
    }
    // The IFD in a continuation segment (EXIF over 64 KiB): read as one.
    let t = tiff(&[(0x112, 3, 1, short(8))], &[]);
    let (head, tail) = t.split_at(10);
    let j = jpeg_with(&[
        app1_exif(head),
        segment(0xE1, &[&b"Exif\0\0"[..], tail].concat()),
    ]);
    assert_eq!(jpeg(&j), Orientation::Rotate270);
    // XMP only when EXIF has no orientation tag.
    let xmp = app1_xmp(br#"<x tiff:Orientation="3"/>"#);
    assert_eq!(
        jpeg(&jpeg_with(std::slice::from_ref(&xmp))),
        Orientation::Rotate180
    );
    let j = jpeg_with(&[app1_exif(&exif_le(1)), xmp.clone()]);
    assert_eq!(jpeg(&j), Orientation::NoTransforms);
    // Junk and fill bytes between segments are skipped.
    let mut j = vec![0xFF, 0xD8, 0x00, 0x17, 0xFF, 0xFF];
    j.extend_from_slice(&app1_exif(&exif_le(6))[1..]);
    assert_eq!(jpeg(&j), Orientation::Rotate90);
    // Nothing after the start of scan is metadata.
    let mut j = jpeg_with(&[]);
    j.truncate(j.len() - 2);
    j.extend_from_slice(&app1_exif(&exif_le(6)));
    assert_eq!(jpeg(&j), Orientation::NoTransforms);
}

// ---------------------------------------------------------------------------------------------
// PNG.

fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = (data.len() as u32).to_be_bytes().to_vec();
    c.extend_from_slice(kind);
    c.extend_from_slice(data);
    c.extend_from_slice(&[0; 4]); // CRC: not checked here
    c
}

fn png_with(before: &[Vec<u8>], after: &[Vec<u8>]) -> Vec<u8> {
    let mut p = b"\x89PNG\r\n\x1a\n".to_vec();
    p.extend_from_slice(&chunk(b"IHDR", &[0, 0, 0, 4, 0, 0, 0, 3, 8, 2, 0, 0, 0]));
    for c in before {
        p.extend_from_slice(c);
    }
    p.extend_from_slice(&chunk(b"IDAT", &[0x78, 0x9C, 1, 2, 3]));
    for c in after {
        p.extend_from_slice(c);
    }
    p.extend_from_slice(&chunk(b"IEND", &[]));
    p
}

fn zlib(data: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec_zlib(data, 6)
}

/// ImageMagick's text: a blank line, `exif`, the length, then the hex in lines of 72.
fn raw_profile(exif: &[u8]) -> Vec<u8> {
    let payload = [&b"Exif\0\0"[..], exif].concat();
    let hex: String = payload.iter().map(|b| format!("{b:02x}")).collect();
    let lines: Vec<&str> = hex
        .as_bytes()
        .chunks(72)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!("\nexif\n{:8}\n{}\n", payload.len(), lines.join("\n")).into_bytes()
}

fn text(kind: &[u8; 4], key: &[u8], value: &[u8]) -> Vec<u8> {
    let data = match kind {
        b"tEXt" => [key, b"\0", value].concat(),
        b"zTXt" => [key, b"\0\0", &zlib(value)].concat(),
        _ => [key, b"\0\0\0\0\0", value].concat(), // iTXt, uncompressed
    };
    chunk(kind, &data)
}

fn itxt_z(key: &[u8], value: &[u8]) -> Vec<u8> {
    chunk(b"iTXt", &[key, b"\0\x01\0\0\0", &zlib(value)].concat())
}

#[test]
fn png_exif_before_or_after_the_image_data() {
    for o in 1..=8u16 {
        let e = chunk(b"eXIf", &exif_le(o));
        assert_eq!(
            png(&png_with(std::slice::from_ref(&e), &[])),
            O[usize::from(o)]
        );
        assert_eq!(png(&png_with(&[], &[e])), O[usize::from(o)]);
    }
    // An Exif header inside the chunk; the last eXIf wins; tEXt "exif" is one too.
    let prefixed = chunk(b"eXIf", &[&b"Exif\0\0"[..], &exif_le(6)].concat());
    assert_eq!(png(&png_with(&[prefixed], &[])), Orientation::Rotate90);
    let (six, three) = (chunk(b"eXIf", &exif_le(6)), chunk(b"eXIf", &exif_le(3)));
    assert_eq!(png(&png_with(&[six], &[three])), Orientation::Rotate180);
    let t = text(b"tEXt", b"exif", &[&b"Exif\0\0"[..], &exif_le(8)].concat());
    assert_eq!(png(&png_with(&[t], &[])), Orientation::Rotate270);
    // Nothing after IEND.
    let mut p = png_with(&[], &[]);
    p.extend_from_slice(&chunk(b"eXIf", &exif_le(6)));
    assert_eq!(png(&p), Orientation::NoTransforms);
}

#[test]
fn png_raw_profile_and_xmp_text_chunks() {
    let raw = raw_profile(&exif_le(6));
    for kind in [b"tEXt", b"zTXt", b"iTXt"] {
        let c = text(kind, RAW_PROFILE_EXIF, &raw);
        assert_eq!(
            png(&png_with(std::slice::from_ref(&c), &[])),
            Orientation::Rotate90
        );
        assert_eq!(png(&png_with(&[], &[c])), Orientation::Rotate90);
    }
    let c = itxt_z(RAW_PROFILE_EXIF, &raw);
    assert_eq!(png(&png_with(&[c], &[])), Orientation::Rotate90);
    // eXIf wins over the raw profile, wherever each is.
    let e = chunk(b"eXIf", &exif_le(3));
    let r = text(b"tEXt", RAW_PROFILE_EXIF, &raw);
    assert_eq!(png(&png_with(&[e], &[r])), Orientation::Rotate180);
    // Bad hex: ignored.
    let bad = text(b"tEXt", RAW_PROFILE_EXIF, b"\nexif\n  4\n45786g\n");
    assert_eq!(png(&png_with(&[bad], &[])), Orientation::NoTransforms);
    let split = text(b"tEXt", RAW_PROFILE_EXIF, b"\nexif\n  1\n4 5\n");
    assert_eq!(png(&png_with(&[split], &[])), Orientation::NoTransforms);
    // XMP in any text chunk, when no EXIF orientation.
    let packet = b"<tiff:Orientation>8</tiff:Orientation>";
    for kind in [b"tEXt", b"zTXt", b"iTXt"] {
        let x = text(kind, XMP_KEYWORD, packet);
        assert_eq!(png(&png_with(&[], &[x])), Orientation::Rotate270);
    }
    let x = itxt_z(XMP_KEYWORD, packet);
    assert_eq!(
        png(&png_with(std::slice::from_ref(&x), &[])),
        Orientation::Rotate270
    );
    let e1 = chunk(b"eXIf", &exif_le(1));
    assert_eq!(png(&png_with(&[e1, x], &[])), Orientation::NoTransforms);
}

#[test]
fn png_compressed_text_is_bounded() {
    // A zTXt that inflates past 1 MiB is ignored (Pillow refuses it), whatever it holds.
    let mut big = raw_profile(&exif_le(6));
    big.extend(std::iter::repeat_n(b' ', MAX_TEXT));
    let bomb = text(b"zTXt", RAW_PROFILE_EXIF, &big);
    assert!(bomb.len() < 8192, "{}", bomb.len());
    assert_eq!(png(&png_with(&[bomb], &[])), Orientation::NoTransforms);
    let bomb = itxt_z(RAW_PROFILE_EXIF, &big);
    assert_eq!(png(&png_with(&[bomb], &[])), Orientation::NoTransforms);
    // Not zlib: empty text for zTXt, skipped for iTXt; other methods skipped.
    let junk = chunk(b"zTXt", &[RAW_PROFILE_EXIF, b"\0\0junk"].concat());
    assert_eq!(png(&png_with(&[junk], &[])), Orientation::NoTransforms);
    let method1 = chunk(b"zTXt", &[RAW_PROFILE_EXIF, b"\0\x01junk"].concat());
    assert_eq!(png(&png_with(&[method1], &[])), Orientation::NoTransforms);
}

// ---------------------------------------------------------------------------------------------
// WebP.

fn riff_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = kind.to_vec();
    c.extend_from_slice(&(data.len() as u32).to_le_bytes());
    c.extend_from_slice(data);
    if data.len() % 2 == 1 {
        c.push(0);
    }
    c
}

fn webp_with(flags: u8, chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut body = b"WEBP".to_vec();
    body.extend_from_slice(&riff_chunk(b"VP8X", &[flags, 0, 0, 0, 3, 0, 0, 2, 0, 0]));
    for c in chunks {
        body.extend_from_slice(c);
    }
    let mut w = b"RIFF".to_vec();
    w.extend_from_slice(&(body.len() as u32).to_le_bytes());
    w.extend_from_slice(&body);
    w
}

#[test]
fn webp_exif_and_xmp_chunks_behind_their_flags() {
    const EXIF: u8 = 0x08;
    const XMP: u8 = 0x04;
    // An odd-sized image chunk first: its padding byte must be skipped.
    for image in [
        riff_chunk(b"VP8 ", &[0; 11]),
        riff_chunk(b"VP8L", &[0x2F; 7]),
    ] {
        for o in 1..=8u16 {
            let e = riff_chunk(b"EXIF", &exif_le(o));
            let w = webp_with(EXIF, &[image.clone(), e.clone()]);
            assert_eq!(webp(&w), O[usize::from(o)], "{o}");
            // Before the image data too; ignored without the flag (libwebp's demuxer).
            let w = webp_with(EXIF, &[e.clone(), image.clone()]);
            assert_eq!(webp(&w), O[usize::from(o)], "{o}");
            let w = webp_with(0, &[image.clone(), e]);
            assert_eq!(webp(&w), Orientation::NoTransforms, "{o}");
        }
        let prefixed = riff_chunk(b"EXIF", &[&b"Exif\0\0"[..], &exif_le(6)].concat());
        let w = webp_with(EXIF, &[image.clone(), prefixed]);
        assert_eq!(webp(&w), Orientation::Rotate90);
        // The first EXIF chunk counts.
        let (a, b) = (
            riff_chunk(b"EXIF", &exif_le(3)),
            riff_chunk(b"EXIF", &exif_le(6)),
        );
        let w = webp_with(EXIF, &[image.clone(), a, b]);
        assert_eq!(webp(&w), Orientation::Rotate180);
        let x = riff_chunk(b"XMP ", br#"<r tiff:Orientation="5"/>"#);
        let w = webp_with(XMP, &[image.clone(), x.clone()]);
        assert_eq!(webp(&w), Orientation::Rotate90FlipH);
        let w = webp_with(0, &[image.clone(), x]);
        assert_eq!(webp(&w), Orientation::NoTransforms);
    }
    // Past the RIFF size: not part of the file.
    let mut w = webp_with(EXIF, &[riff_chunk(b"VP8 ", &[0; 10])]);
    w.extend_from_slice(&riff_chunk(b"EXIF", &exif_le(6)));
    assert_eq!(webp(&w), Orientation::NoTransforms);
    // A simple file carries no metadata, whatever follows.
    let mut w = b"RIFF\0\0\0\0WEBP".to_vec();
    w.extend_from_slice(&riff_chunk(b"VP8 ", &[0; 10]));
    w.extend_from_slice(&riff_chunk(b"EXIF", &exif_le(6)));
    let n = (w.len() - 8) as u32;
    w[4..8].copy_from_slice(&n.to_le_bytes());
    assert_eq!(webp(&w), Orientation::NoTransforms);
}

// ---------------------------------------------------------------------------------------------
// Hostile bytes.

/// Files with orientation data in every place, for cutting and mutating.
fn samples() -> Vec<Vec<u8>> {
    let t = tiff(
        &[(0x100, 3, 1, short(4)), (0x112, 3, 3, data_at(2))],
        &[0, 6, 0, 1, 0, 1],
    );
    vec![
        jpeg_with(&[app1_exif(&t), app1_xmp(br#"tiff:Orientation="6""#)]),
        png_with(
            &[
                chunk(b"eXIf", &t),
                text(b"zTXt", RAW_PROFILE_EXIF, &raw_profile(&t)),
            ],
            &[itxt_z(
                XMP_KEYWORD,
                b"<tiff:Orientation>6</tiff:Orientation>",
            )],
        ),
        webp_with(
            0x0C,
            &[
                riff_chunk(b"VP8L", &[0x2F; 5]),
                riff_chunk(b"EXIF", &t),
                riff_chunk(b"XMP ", b"tiff:Orientation>6"),
            ],
        ),
    ]
}

fn all(bytes: &[u8]) -> [Orientation; 3] {
    [jpeg(bytes), png(bytes), webp(bytes)]
}

#[test]
fn every_cut_of_every_sample_is_no_panic() {
    for s in samples() {
        assert!(all(&s).contains(&Orientation::Rotate90));
        for cut in 0..s.len() {
            all(&s[..cut]);
        }
    }
}

proptest! {
    #[test]
    fn hostile_bytes_never_panic(
        which in 0usize..3,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        tail in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut s = samples().swap_remove(which);
        for (at, v) in flips {
            let n = s.len();
            s[at % n] = v;
        }
        s.extend_from_slice(&tail);
        all(&s);
        all(&tail);
        exif_orientation_tag(&tail);
        raw_profile_bytes(&tail);
    }
}
