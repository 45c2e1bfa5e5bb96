//! The display orientation of a JPEG, PNG or WebP file, found where Pillow's
//! `ImageOps.exif_transpose` (Pillow 13) finds it, so that a file comes out of a job the way
//! Pillow, browsers and photo viewers show it:
//!
//! * **JPEG**: the `Exif\0\0` APP1 segments before the first scan (a second one continues the
//!   first, as Pillow reads them); else the XMP APP1 segment's `tiff:Orientation`.
//! * **PNG**: the `eXIf` chunk, before or after the image data (the last one wins, and a `tEXt`
//!   chunk keyed `exif` counts as one, as in Pillow); without either, the legacy
//!   `Raw profile type exif` text chunk (`tEXt`, `zTXt` or `iTXt`: hex, as ImageMagick
//!   writes it), which Pillow honours too; else the `XML:com.adobe.xmp` text chunk.
//! * **WebP**: the `EXIF` chunk of an extended (`VP8X`) file, lossy or lossless, wherever it
//!   sits (usually after the image data); else its `XMP ` chunk. As in libwebp's demuxer
//!   (which Pillow uses), each counts only when the `VP8X` header's flag says it is there.
//!   Simple WebP files (a lone `VP8 ` or `VP8L` chunk) carry no metadata.
//!
//! The EXIF payload may start with one or two `Exif\0\0` headers (some writers copy the
//! JPEG APP1 payload, header included, into WebP and PNG), and its orientation tag (0x0112,
//! first IFD) may be stored with any numeric TIFF type; the first readable entry counts,
//! and a value outside 1 to 8 means no transform. XMP is read only when the EXIF data has no
//! orientation tag at all. Unreadable, truncated or hostile metadata is ignored (no
//! transform), never an error and never a panic; nothing here copies the image data, and
//! decompression (a compressed text chunk) is bounded to 1 MiB, Pillow's limit.

use std::borrow::Cow;

use image::metadata::Orientation;

/// Pillow's `PngImagePlugin.MAX_TEXT_CHUNK`: compressed text chunks that inflate to more are
/// ignored.
const MAX_TEXT: usize = 1 << 20;

/// The PNG text keyword of ImageMagick's hex-encoded EXIF profile.
const RAW_PROFILE_EXIF: &[u8] = b"Raw profile type exif";
/// The PNG text keyword of XMP packets.
const XMP_KEYWORD: &[u8] = b"XML:com.adobe.xmp";
/// The header of an XMP APP1 segment in JPEG.
const JPEG_XMP: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
/// The EXIF orientation tag.
const ORIENTATION_TAG: u16 = 0x0112;

/// The orientation of a JPEG file (`bytes` starts with its SOI marker).
pub(crate) fn jpeg(bytes: &[u8]) -> Orientation {
    let mut exif: Option<Cow<'_, [u8]>> = None;
    let mut xmp: Option<&[u8]> = None;
    let mut i = 2;
    while i + 1 < bytes.len() {
        if bytes[i] != 0xFF {
            // Junk between segments: skipped, as libjpeg and Pillow do.
            match memchr::memchr(0xFF, &bytes[i..]) {
                Some(k) => i += k,
                None => break,
            }
            continue;
        }
        let marker = bytes[i + 1];
        match marker {
            // A fill byte: the next 0xFF starts the marker.
            0xFF => {
                i += 1;
                continue;
            }
            // Start of scan or end of image: no metadata segment follows.
            0xDA | 0xD9 => break,
            // Markers without a length: stuffed zero, TEM, RSTn, SOI.
            0x00 | 0x01 | 0xD0..=0xD8 => {
                i += 2;
                continue;
            }
            _ => {}
        }
        let Some(len) = bytes.get(i + 2..i + 4) else {
            break;
        };
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let Some(body) = (len >= 2).then(|| bytes.get(i + 4..i + 2 + len)).flatten() else {
            break; // truncated: what was read so far counts
        };
        if marker == 0xE1 {
            if body.starts_with(b"Exif\0\0") {
                match &mut exif {
                    None => exif = Some(Cow::Borrowed(body)),
                    // A continuation (EXIF over 64 KiB): Pillow appends it after its header.
                    Some(first) => first.to_mut().extend_from_slice(&body[6..]),
                }
            } else if let Some(packet) = body.strip_prefix(JPEG_XMP) {
                xmp = Some(packet);
            }
        }
        i += 2 + len;
    }
    // The segment's own `Exif\0\0` plus at most one more, as Pillow strips them.
    resolve(exif.as_deref().map(|e| strip_exif_headers(e, 2)), xmp)
}

/// The orientation of a PNG file (`bytes` starts with its signature).
pub(crate) fn png(bytes: &[u8]) -> Orientation {
    // Each slot keeps the last chunk that fills it, as Pillow's `info` dictionary does.
    let mut exif: Option<&[u8]> = None;
    let mut raw_profile: Option<Cow<'_, [u8]>> = None;
    let mut xmp: Option<Cow<'_, [u8]>> = None;
    let mut i = 8;
    while let Some(head) = bytes.get(i..i + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let kind = &head[4..8];
        let Some(data) = bytes.get(i + 8..).and_then(|rest| rest.get(..len)) else {
            break; // truncated: what was read so far counts
        };
        match kind {
            // Pillow adds an `Exif\0\0` header to eXIf chunks and then strips up to two.
            b"eXIf" => exif = Some(strip_exif_headers(data, 1)),
            b"tEXt" => {
                let (key, value) = split_nul(data);
                if key == b"exif" {
                    exif = Some(strip_exif_headers(value, 2));
                } else if key == RAW_PROFILE_EXIF {
                    raw_profile = Some(Cow::Borrowed(value));
                } else if key == XMP_KEYWORD {
                    xmp = Some(Cow::Borrowed(value));
                }
            }
            b"zTXt" => {
                let (key, rest) = split_nul(data);
                if key == RAW_PROFILE_EXIF || key == XMP_KEYWORD {
                    // Compression method 0 (zlib) is the only one; Pillow reads a stream it
                    // cannot inflate as empty text, and refuses one that inflates too far.
                    let text = match rest.split_first() {
                        None => Some(Vec::new()),
                        Some((0, z)) => match inflate(z) {
                            Inflated::Text(t) => Some(t),
                            Inflated::Corrupt => Some(Vec::new()),
                            Inflated::TooLarge => None,
                        },
                        Some(_) => None,
                    };
                    if let Some(text) = text {
                        if key == RAW_PROFILE_EXIF {
                            raw_profile = Some(Cow::Owned(text));
                        } else {
                            xmp = Some(Cow::Owned(text));
                        }
                    }
                }
            }
            b"iTXt" => {
                if let Some((key, text)) = itxt(data)
                    && (key == RAW_PROFILE_EXIF || key == XMP_KEYWORD)
                {
                    if key == RAW_PROFILE_EXIF {
                        raw_profile = Some(text);
                    } else {
                        xmp = Some(text);
                    }
                }
            }
            b"IEND" => break,
            _ => {}
        }
        i += 12 + len;
    }
    match exif {
        Some(e) => resolve(Some(e), xmp.as_deref()),
        None => {
            let raw = raw_profile.and_then(|t| raw_profile_bytes(&t));
            resolve(
                raw.as_deref().map(|r| strip_exif_headers(r, 2)),
                xmp.as_deref(),
            )
        }
    }
}

/// The orientation of a WebP file (`bytes` starts with `RIFF....WEBP`).
pub(crate) fn webp(bytes: &[u8]) -> Orientation {
    let Some(size) = bytes.get(4..8) else {
        return Orientation::NoTransforms;
    };
    // Bytes past the RIFF size are not part of the file, for libwebp.
    let riff_end = (u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize)
        .saturating_add(8)
        .min(bytes.len());
    let bytes = &bytes[..riff_end];
    // Metadata lives only in extended files: VP8X first, its flags in the first byte.
    let flags = match (bytes.get(12..16), bytes.get(20)) {
        (Some(b"VP8X"), Some(&flags)) => flags,
        _ => return Orientation::NoTransforms,
    };
    let (exif_flag, xmp_flag) = (flags & 0x08 != 0, flags & 0x04 != 0);
    let (mut exif, mut xmp) = (None, None);
    let mut i = 12;
    while let Some(head) = bytes.get(i..i + 8) {
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let Some(data) = bytes.get(i + 8..).and_then(|rest| rest.get(..len)) else {
            break;
        };
        // The first chunk of each kind, as libwebp's WebPDemuxGetChunk(.., 1, ..) returns.
        match &head[..4] {
            b"EXIF" if exif_flag && exif.is_none() => exif = Some(strip_exif_headers(data, 2)),
            b"XMP " if xmp_flag && xmp.is_none() => xmp = Some(data),
            _ => {}
        }
        // Chunks are padded to an even size.
        i = i
            .saturating_add(8)
            .saturating_add(len)
            .saturating_add(len & 1);
    }
    resolve(exif, xmp)
}

/// Pillow's rule: the EXIF orientation tag if the EXIF data has one (whatever its value);
/// else the XMP `tiff:Orientation`; a value outside 1 to 8 is no transform.
fn resolve(exif: Option<&[u8]>, xmp: Option<&[u8]>) -> Orientation {
    let value = match exif.map(exif_orientation_tag) {
        Some(Tag::Present(v)) => v,
        _ => xmp.and_then(xmp_orientation).map(f64::from),
    };
    value
        .filter(|v| v.fract() == 0.0 && (1.0..=8.0).contains(v))
        .and_then(|v| Orientation::from_exif(v as u8))
        .unwrap_or(Orientation::NoTransforms)
}

/// What the first IFD says about the orientation tag.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tag {
    /// No readable entry for the tag (or no readable EXIF at all).
    Absent,
    /// The tag is there: its first value if numeric (`None`: a byte string or text, which
    /// Pillow keeps as such and which matches no orientation).
    Present(Option<f64>),
}

/// Removes up to `max` leading `Exif\0\0` headers (Pillow's `^(Exif\x00\x00){1,2}`).
fn strip_exif_headers(mut data: &[u8], max: usize) -> &[u8] {
    for _ in 0..max {
        match data.strip_prefix(b"Exif\0\0") {
            Some(rest) => data = rest,
            None => break,
        }
    }
    data
}

/// The orientation tag of a TIFF structure (the EXIF payload), read as Pillow's
/// `ImageFileDirectory_v2` reads the first IFD: entries of an unknown type, with no value,
/// or whose value lies outside the data are skipped; the first other entry for the tag counts.
fn exif_orientation_tag(tiff: &[u8]) -> Tag {
    let big = match tiff.get(..4) {
        // The two valid headers, and the two swapped ones that Pillow also accepts.
        Some(b"MM\0*" | b"MM*\0") => true,
        Some(b"II*\0" | b"II\0*") => false,
        _ => return Tag::Absent,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b = tiff.get(at..at.checked_add(2)?)?;
        Some(if big {
            u16::from_be_bytes([b[0], b[1]])
        } else {
            u16::from_le_bytes([b[0], b[1]])
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b = tiff.get(at..at.checked_add(4)?)?;
        let b = [b[0], b[1], b[2], b[3]];
        Some(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let Some(ifd) = u32_at(4).map(|o| o as usize) else {
        return Tag::Absent;
    };
    let Some(entries) = u16_at(ifd) else {
        return Tag::Absent;
    };
    for n in 0..usize::from(entries) {
        let at = ifd + 2 + 12 * n;
        let (Some(tag), Some(kind), Some(count)) = (u16_at(at), u16_at(at + 2), u32_at(at + 4))
        else {
            break; // truncated: the entries read so far count
        };
        if tag != ORIENTATION_TAG {
            continue;
        }
        let unit = match kind {
            1 | 2 | 6 | 7 => 1,
            3 | 8 => 2,
            4 | 9 | 11 | 13 => 4,
            5 | 10 | 12 | 16 => 8,
            _ => continue, // a type Pillow does not know: skipped
        };
        let Some(size) = (count as usize).checked_mul(unit).filter(|&s| s > 0) else {
            continue;
        };
        // Up to 4 bytes sit in the entry itself, more at the offset it holds.
        let start = if size <= 4 {
            at + 8
        } else {
            match u32_at(at + 8) {
                Some(o) => o as usize,
                None => continue,
            }
        };
        if start.checked_add(size).is_none_or(|end| end > tiff.len()) {
            continue; // the value lies outside the data: skipped
        }
        let value = match kind {
            3 => u16_at(start).map(f64::from),
            8 => u16_at(start).map(|v| f64::from(v as i16)),
            4 | 13 => u32_at(start).map(f64::from),
            9 => u32_at(start).map(|v| f64::from(v as i32)),
            6 => tiff.get(start).map(|&v| f64::from(v as i8)),
            16 => {
                let (hi, lo) = (u32_at(start), u32_at(start + 4));
                let (hi, lo) = if big { (hi, lo) } else { (lo, hi) };
                hi.zip(lo)
                    .map(|(hi, lo)| (u64::from(hi) << 32 | u64::from(lo)) as f64)
            }
            5 => u32_at(start)
                .zip(u32_at(start + 4))
                .map(|(n, d)| f64::from(n) / f64::from(d)),
            10 => u32_at(start)
                .zip(u32_at(start + 4))
                .map(|(n, d)| f64::from(n as i32) / f64::from(d as i32)),
            11 => u32_at(start).map(|v| f64::from(f32::from_bits(v))),
            12 => {
                let (hi, lo) = (u32_at(start), u32_at(start + 4));
                let (hi, lo) = if big { (hi, lo) } else { (lo, hi) };
                hi.zip(lo)
                    .map(|(hi, lo)| f64::from_bits(u64::from(hi) << 32 | u64::from(lo)))
            }
            // BYTE, ASCII, UNDEFINED: bytes or text, never equal to an orientation.
            _ => None,
        };
        return Tag::Present(value);
    }
    Tag::Absent
}

/// The digit of the first `tiff:Orientation="N` or `tiff:Orientation>N` in an XMP packet
/// (Pillow's `tiff:Orientation(="|>)([0-9])`).
fn xmp_orientation(xmp: &[u8]) -> Option<u8> {
    const KEY: &[u8] = b"tiff:Orientation";
    memchr::memmem::find_iter(xmp, KEY).find_map(|at| {
        let rest = &xmp[at + KEY.len()..];
        let digit = match rest {
            [b'=', b'"', d, ..] | [b'>', d, ..] => *d,
            _ => return None,
        };
        digit.is_ascii_digit().then(|| digit - b'0')
    })
}

/// Keyword and text of a PNG `tEXt` chunk (or keyword and the rest, for `zTXt`).
fn split_nul(data: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(0, data) {
        Some(n) => (&data[..n], &data[n + 1..]),
        None => (data, &[]),
    }
}

/// Keyword and text of a PNG `iTXt` chunk, as Pillow reads it: `None` when malformed, when
/// compressed other than with zlib, when the stream does not inflate (or inflates past
/// [`MAX_TEXT`]), or, for the raw EXIF profile, when it is not UTF-8.
fn itxt(data: &[u8]) -> Option<(&[u8], Cow<'_, [u8]>)> {
    let (key, rest) = split_nul(data);
    let (&compressed, rest) = rest.split_first()?;
    let (&method, rest) = rest.split_first()?;
    let (lang, rest) = split_nul(rest);
    let nul = memchr::memchr(0, rest)?;
    let (translated, text) = (&rest[..nul], &rest[nul + 1..]);
    let text = match (compressed, method) {
        (0, _) => Cow::Borrowed(text),
        (_, 0) => match inflate(text) {
            Inflated::Text(t) => Cow::Owned(t),
            _ => return None,
        },
        _ => return None,
    };
    // Pillow keeps an XMP packet as bytes whatever its encoding; other texts must be UTF-8.
    let utf8 = |b: &[u8]| std::str::from_utf8(b).is_ok();
    if key != XMP_KEYWORD && !(utf8(lang) && utf8(translated) && utf8(&text)) {
        return None;
    }
    Some((key, text))
}

/// A zlib stream inflated, bounded as Pillow bounds it.
enum Inflated {
    /// The text.
    Text(Vec<u8>),
    /// Not a zlib stream, a corrupt or a truncated one.
    Corrupt,
    /// More than [`MAX_TEXT`] bytes.
    TooLarge,
}

fn inflate(z: &[u8]) -> Inflated {
    use miniz_oxide::inflate::{TINFLStatus, decompress_to_vec_zlib_with_limit};
    match decompress_to_vec_zlib_with_limit(z, MAX_TEXT) {
        Ok(text) => Inflated::Text(text),
        Err(e) if e.status == TINFLStatus::HasMoreOutput => Inflated::TooLarge,
        Err(_) => Inflated::Corrupt,
    }
}

/// The bytes of ImageMagick's `Raw profile type exif` text: `\nexif\n  LENGTH\nHEX...`, the
/// hex from the fourth line on (Pillow: `bytes.fromhex("".join(text.split("\n")[3:]))`).
/// `None` when the hex is invalid (Pillow raises; here the profile is ignored).
fn raw_profile_bytes(text: &[u8]) -> Option<Vec<u8>> {
    let mut lines = text.split(|&b| b == b'\n');
    for _ in 0..3 {
        lines.next();
    }
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut high: Option<u8> = None;
    for b in lines.flatten().copied() {
        if b.is_ascii_whitespace() || b == 0x0B {
            // Whitespace between bytes is skipped; inside a byte it is an error.
            if high.is_some() {
                return None;
            }
            continue;
        }
        let v = (b as char).to_digit(16)? as u8;
        match high.take() {
            None => high = Some(v),
            Some(h) => out.push(h << 4 | v),
        }
    }
    high.is_none().then_some(out)
}

#[cfg(test)]
mod tests;
