//! The header of a `.npy` file: the fixed preamble (magic, version, header length), its
//! validation into an [`NpyHeader`] ([`parse_header`]), and the header of the files we write
//! ([`header_bytes`]).

use super::error::{malformed, shape_u64};
use super::literal::{DictParser, HeaderDict, PyValue};
use super::{
    DATA_ALIGN, MAGIC, MAX_HEADER_LEN, NpyDtype, NpyFormatError, PREAMBLE_V1, PREAMBLE_V2,
};

/// The validated header of a `.npy` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// The element type.
    pub dtype: NpyDtype,
    /// The shape: one or two dimensions, C order.
    pub shape: Vec<usize>,
    /// Byte offset of the data section from the start of the file.
    pub data_offset: usize,
    /// Length of the data section in bytes (the product of the shape times the item size).
    pub data_len: usize,
}

impl NpyHeader {
    /// The number of rows: the first dimension.
    pub fn rows(&self) -> usize {
        self.shape[0]
    }

    /// The number of columns: the second dimension, 1 for a 1-D array.
    pub fn cols(&self) -> usize {
        self.shape.get(1).copied().unwrap_or(1)
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.data_len / self.dtype.itemsize()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.data_len == 0
    }

    /// The length a file with this header must have: data offset plus data length.
    pub fn file_len(&self) -> u64 {
        self.data_offset as u64 + self.data_len as u64
    }

    /// Whether the data section starts at a multiple of [`DATA_ALIGN`] (64) bytes, so a
    /// page-aligned mapping of the file can back Arrow buffers without a copy.
    ///
    /// True for files written by numpy >= 1.14 and by [`write_npy`](super::write_npy); files
    /// from older numpy are aligned to 16 bytes only, and must be copied to be used as Arrow
    /// buffers.
    pub fn is_data_offset_aligned(&self) -> bool {
        self.data_offset.is_multiple_of(DATA_ALIGN)
    }

    /// Checks a file of `file_len` bytes holds exactly the data the header describes.
    ///
    /// A shorter file is [`NpyFormatError::Truncated`]; a longer one is
    /// [`NpyFormatError::TrailingBytes`] (the header lies about the shape, or garbage
    /// follows the array; numpy ignores it, we do not).
    pub fn check_file_len(&self, file_len: u64) -> Result<(), NpyFormatError> {
        let expected = self.data_len as u64;
        let actual = file_len.saturating_sub(self.data_offset as u64);
        let shape = shape_u64(&self.shape);
        if actual < expected {
            Err(NpyFormatError::Truncated {
                expected,
                actual,
                dtype: self.dtype,
                shape,
            })
        } else if actual > expected {
            Err(NpyFormatError::TrailingBytes {
                expected,
                actual,
                dtype: self.dtype,
                shape,
            })
        } else {
            Ok(())
        }
    }
}

/// The fixed part of a file before the dict.
pub(super) struct Preamble {
    /// Where the dict starts.
    pub(super) dict_start: usize,
    /// Where the header (dict and padding) ends and data starts.
    pub(super) header_end: u64,
}

/// Reads magic, version and header length from the first bytes of a file.
pub(super) fn parse_preamble(bytes: &[u8]) -> Result<Preamble, NpyFormatError> {
    let magic_len = bytes.len().min(MAGIC.len());
    if bytes[..magic_len] != MAGIC[..magic_len] {
        return Err(NpyFormatError::BadMagic {
            found: bytes[..magic_len].to_vec(),
        });
    }
    if bytes.len() < 8 {
        return Err(NpyFormatError::TooShort {
            len: bytes.len() as u64,
            needed: PREAMBLE_V1 as u64,
        });
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let dict_start = match (major, minor) {
        (1, 0) => PREAMBLE_V1,
        (2, 0) | (3, 0) => PREAMBLE_V2,
        _ => return Err(NpyFormatError::UnsupportedVersion { major, minor }),
    };
    if bytes.len() < dict_start {
        return Err(NpyFormatError::TooShort {
            len: bytes.len() as u64,
            needed: dict_start as u64,
        });
    }
    let dict_len = if dict_start == PREAMBLE_V1 {
        u64::from(u16::from_le_bytes([bytes[8], bytes[9]]))
    } else {
        u64::from(u32::from_le_bytes([
            bytes[8], bytes[9], bytes[10], bytes[11],
        ]))
    };
    let header_end = dict_start as u64 + dict_len;
    if header_end > MAX_HEADER_LEN as u64 {
        return Err(NpyFormatError::HeaderTooLong {
            len: header_end,
            max: MAX_HEADER_LEN as u64,
        });
    }
    Ok(Preamble {
        dict_start,
        header_end,
    })
}

/// Parses and validates the header of a `.npy` file.
///
/// `bytes` is the file, or any prefix of it holding the whole header. Checks magic, version
/// and header length, then parses the dict literal (keys in any order, either quote style,
/// trailing commas, any spacing) and refuses what cannot be read: see [`NpyFormatError`].
/// It does not know the file length; call [`NpyHeader::check_file_len`] for that.
pub fn parse_header(bytes: &[u8]) -> Result<NpyHeader, NpyFormatError> {
    let pre = parse_preamble(bytes)?;
    if pre.header_end > bytes.len() as u64 {
        return Err(NpyFormatError::HeaderPastEnd {
            header_end: pre.header_end,
            len: bytes.len() as u64,
        });
    }
    // Bounded by MAX_HEADER_LEN, so it fits.
    let header_end = pre.header_end as usize;
    let text = std::str::from_utf8(&bytes[pre.dict_start..header_end]).map_err(|e| {
        NpyFormatError::HeaderNotText {
            offset: (pre.dict_start + e.valid_up_to()) as u64,
        }
    })?;
    let dict = DictParser::new(text).parse()?;
    header_from_dict(dict, text, header_end)
}

/// Validates the parsed dict `dict` of the header text `text`, which ends at byte
/// `header_end` of the file, and computes the data section's place and length.
fn header_from_dict(
    dict: HeaderDict,
    text: &str,
    header_end: usize,
) -> Result<NpyHeader, NpyFormatError> {
    let missing = |key: &str| malformed(format!("key '{key}' is missing"), text);
    let dtype = match dict.descr.ok_or_else(|| missing("descr"))? {
        PyValue::Str(s) => NpyDtype::from_descr(&s)?,
        PyValue::Other(raw) => return Err(NpyFormatError::UnsupportedDtype { descr: raw }),
        v => {
            return Err(malformed(
                format!("'descr' is not a type string: {v:?}"),
                text,
            ));
        }
    };
    let shape = match dict.shape.ok_or_else(|| missing("shape"))? {
        PyValue::Tuple(dims) => dims,
        v => {
            return Err(malformed(
                format!("'shape' is not a tuple of integers: {v:?}"),
                text,
            ));
        }
    };
    let fortran_order = match dict.fortran_order.ok_or_else(|| missing("fortran_order"))? {
        PyValue::Bool(b) => b,
        v => {
            return Err(malformed(
                format!("'fortran_order' is not True or False: {v:?}"),
                text,
            ));
        }
    };
    match shape.len() {
        0 => return Err(NpyFormatError::ZeroDim),
        1 | 2 => {}
        _ => return Err(NpyFormatError::TooManyDims { shape }),
    }
    // Column-major order only changes the layout when there is more than one row and
    // more than one column; numpy itself writes `False` for 1-D arrays.
    if fortran_order && shape.len() == 2 && shape[0] > 1 && shape[1] > 1 {
        return Err(NpyFormatError::FortranOrder { shape });
    }
    let overflow = || NpyFormatError::ShapeOverflow {
        shape: shape.clone(),
        dtype,
    };
    let mut dims = Vec::with_capacity(shape.len());
    let mut data_len = dtype.itemsize();
    for &d in &shape {
        let d = usize::try_from(d).map_err(|_| overflow())?;
        data_len = data_len.checked_mul(d).ok_or_else(overflow)?;
        dims.push(d);
    }
    header_end.checked_add(data_len).ok_or_else(overflow)?;
    Ok(NpyHeader {
        dtype,
        shape: dims,
        data_offset: header_end,
        data_len,
    })
}

/// Checks a shape for writing and returns its data length in bytes.
pub(super) fn checked_data_len(dtype: NpyDtype, shape: &[usize]) -> Result<usize, NpyFormatError> {
    match shape.len() {
        0 => return Err(NpyFormatError::ZeroDim),
        1 | 2 => {}
        _ => {
            return Err(NpyFormatError::TooManyDims {
                shape: shape_u64(shape),
            });
        }
    }
    shape
        .iter()
        .try_fold(dtype.itemsize(), |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| NpyFormatError::ShapeOverflow {
            shape: shape_u64(shape),
            dtype,
        })
}

/// The version 1.0 header for a C-ordered array, padded so the data starts at a multiple
/// of [`DATA_ALIGN`] (64) bytes. The data section follows it directly.
///
/// Refuses the shapes [`parse_header`] refuses: 0-D, more than 2-D, and byte sizes that
/// overflow `usize`.
pub fn header_bytes(dtype: NpyDtype, shape: &[usize]) -> Result<Vec<u8>, NpyFormatError> {
    checked_data_len(dtype, shape)?;
    let shape_repr = match shape {
        [n] => format!("({n},)"),
        [r, c] => format!("({r}, {c})"),
        _ => unreachable!("checked_data_len allows 1 or 2 dimensions"),
    };
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape_repr}, }}",
        dtype.descr()
    );
    // Magic, version, u16 length, dict, then spaces and a newline up to the alignment.
    let unpadded = PREAMBLE_V1 + dict.len() + 1;
    let total = unpadded.div_ceil(DATA_ALIGN) * DATA_ALIGN;
    let dict_len = u16::try_from(total - PREAMBLE_V1).expect("a 2-D header is short");
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&dict_len.to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::npy::tests::{ErrCheck, craft, craft_version, parse_dict};

    #[test]
    fn header_bytes_are_numpy_style() {
        let h = header_bytes(NpyDtype::F64, &[3, 4]).unwrap();
        assert_eq!(h.len() % DATA_ALIGN, 0);
        assert!(h.starts_with(b"\x93NUMPY\x01\x00"));
        let text = std::str::from_utf8(&h[10..]).unwrap();
        assert!(text.starts_with("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }"));
        assert!(text.ends_with(" \n"));
        let parsed = parse_header(&h).unwrap();
        assert_eq!(parsed.shape, vec![3, 4]);
        assert_eq!(parsed.data_offset, h.len());
        assert_eq!(parsed.data_len, 96);
        let h1 = header_bytes(NpyDtype::U8, &[7]).unwrap();
        assert!(std::str::from_utf8(&h1[10..]).unwrap().contains("'|u1'"));
        assert!(std::str::from_utf8(&h1[10..]).unwrap().contains("(7,)"));
        assert_eq!(
            header_bytes(NpyDtype::F64, &[]),
            Err(NpyFormatError::ZeroDim)
        );
        assert!(matches!(
            header_bytes(NpyDtype::F64, &[1, 2, 3]),
            Err(NpyFormatError::TooManyDims { .. })
        ));
        assert!(matches!(
            header_bytes(NpyDtype::F64, &[1 << 62, 8]),
            Err(NpyFormatError::ShapeOverflow { .. })
        ));
    }

    fn parse_err(bytes: &[u8]) -> NpyFormatError {
        parse_header(bytes).unwrap_err()
    }

    #[test]
    fn refuses_bad_preambles() {
        let good = craft(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1,)}",
            &[0; 8],
        );
        let mut wrong_magic = good.clone();
        wrong_magic[1] = b'X';
        assert!(matches!(
            parse_err(&wrong_magic),
            NpyFormatError::BadMagic { .. }
        ));
        assert!(matches!(
            parse_err(b"PK\x03\x04"),
            NpyFormatError::BadMagic { .. }
        ));
        assert!(matches!(
            parse_err(b""),
            NpyFormatError::TooShort { len: 0, .. }
        ));
        assert!(matches!(
            parse_err(b"\x93NUMPY\x01"),
            NpyFormatError::TooShort { .. }
        ));
        assert!(matches!(
            parse_err(b"\x93NUMPY\x02\x00\x10\x00"),
            NpyFormatError::TooShort { .. }
        ));
        for v in [(0, 0), (1, 1), (4, 0)] {
            let mut b = good.clone();
            (b[6], b[7]) = v;
            assert_eq!(
                parse_err(&b),
                NpyFormatError::UnsupportedVersion {
                    major: v.0,
                    minor: v.1
                }
            );
        }
        // Header length past the end of the bytes.
        let mut b = good.clone();
        b[8..10].copy_from_slice(&1000u16.to_le_bytes());
        assert_eq!(
            parse_err(&b),
            NpyFormatError::HeaderPastEnd {
                header_end: 1010,
                len: b.len() as u64
            }
        );
        assert!(matches!(
            parse_err(&good[..40]),
            NpyFormatError::HeaderPastEnd { .. }
        ));
        // A v2 length field claiming gigabytes.
        let mut b = craft_version(
            (2, 0),
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1,)}",
            &[0; 8],
        );
        b[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            parse_err(&b),
            NpyFormatError::HeaderTooLong { .. }
        ));
    }

    #[test]
    fn refuses_bad_dicts() {
        let cases: &[(&str, ErrCheck)] = &[
            (
                "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }",
                |e| matches!(e, NpyFormatError::FortranOrder { shape } if shape == &[2, 3]),
            ),
            (
                "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }",
                |e| matches!(e, NpyFormatError::BigEndian { descr } if descr == ">f8"),
            ),
            (
                "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }",
                |e| matches!(e, NpyFormatError::ObjectDtype { .. }),
            ),
            (
                "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }",
                |e| matches!(e, NpyFormatError::UnsupportedDtype { descr } if descr == "<f2"),
            ),
            (
                "{'descr': '|f8', 'fortran_order': False, 'shape': (2,), }",
                |e| matches!(e, NpyFormatError::UnsupportedDtype { .. }),
            ),
            (
                "{'descr': [('a', '<f8'), ('b', '<i4')], 'fortran_order': False, 'shape': (2,), }",
                |e| matches!(e, NpyFormatError::UnsupportedDtype { descr } if descr.starts_with("[('a'")),
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2, 2), }",
                |e| matches!(e, NpyFormatError::TooManyDims { shape } if shape.len() == 3),
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (), }",
                |e| matches!(e, NpyFormatError::ZeroDim),
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 8), }",
                |e| matches!(e, NpyFormatError::ShapeOverflow { shape, .. } if shape == &[1 << 62, 8]),
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,), }",
                |e| matches!(e, NpyFormatError::MalformedHeader { reason, .. } if reason.contains("64 bits")),
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (5), }",
                |e| matches!(e, NpyFormatError::MalformedHeader { reason, .. } if reason.contains("not a tuple")),
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (-5,), }",
                |e| matches!(e, NpyFormatError::MalformedHeader { reason, .. } if reason.contains("negative")),
            ),
            (
                "{'descr': '<f8', 'fortran_order': 0, 'shape': (5,), }",
                |e| matches!(e, NpyFormatError::MalformedHeader { reason, .. } if reason.contains("True or False")),
            ),
            (
                "{'descr': '<f8', 'shape': (5,), }",
                |e| matches!(e, NpyFormatError::MalformedHeader { reason, .. } if reason.contains("'fortran_order' is missing")),
            ),
            (
                "{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (5,), }",
                |e| matches!(e, NpyFormatError::MalformedHeader { reason, .. } if reason.contains("duplicate")),
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (5,), 'extra': 1}",
                |e| matches!(e, NpyFormatError::MalformedHeader { reason, .. } if reason.contains("unexpected key")),
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (5,)",
                |e| matches!(e, NpyFormatError::MalformedHeader { reason, .. } if reason.contains("unterminated dict")),
            ),
            (
                "{'descr': '<f8, 'fortran_order': False, 'shape': (5,)}",
                |e| matches!(e, NpyFormatError::MalformedHeader { .. }),
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (5,)} junk",
                |e| matches!(e, NpyFormatError::MalformedHeader { reason, .. } if reason.contains("after the dict")),
            ),
            ("['descr', '<f8']", |e| {
                matches!(e, NpyFormatError::MalformedHeader { .. })
            }),
            ("", |e| matches!(e, NpyFormatError::MalformedHeader { .. })),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (5,",
                |e| matches!(e, NpyFormatError::MalformedHeader { reason, .. } if reason.contains("unterminated shape")),
            ),
        ];
        for (dict, check) in cases {
            let err = parse_dict(dict).unwrap_err();
            assert!(check(&err), "{dict}: unexpected {err:?}");
            // Every message is a single readable line.
            assert!(!err.to_string().contains('\n'), "{err}");
        }
        // Not UTF-8.
        let mut b = craft(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1,)}",
            &[0; 8],
        );
        b[20] = 0xff;
        assert_eq!(parse_err(&b), NpyFormatError::HeaderNotText { offset: 20 });
    }

    proptest::proptest! {
        /// Arbitrary and mutated headers never panic the parser.
        #[test]
        fn parser_never_panics(
            tail in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            flips in proptest::collection::vec((0usize..140, proptest::num::u8::ANY), 0..6),
        ) {
            let mut raw = MAGIC.to_vec();
            raw.extend_from_slice(&tail);
            let _ = parse_header(&raw);
            let mut b = craft("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }", &[0; 96]);
            for (i, v) in flips {
                let i = i % b.len();
                b[i] = v;
            }
            if let Ok(h) = parse_header(&b) {
                let _ = h.check_file_len(b.len() as u64);
            }
        }
    }
}
