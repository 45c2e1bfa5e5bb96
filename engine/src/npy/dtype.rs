//! The element types of `.npy` files: [`NpyDtype`] and the [`NpyElement`] trait.

use std::fmt;

use arrow_buffer::ArrowNativeType;

use super::NpyFormatError;

/// The element types shmframe reads from and writes to `.npy` files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NpyDtype {
    /// 32-bit float, numpy `<f4`.
    F32,
    /// 64-bit float, numpy `<f8`.
    F64,
    /// 32-bit signed integer, numpy `<i4`.
    I32,
    /// 64-bit signed integer, numpy `<i8`.
    I64,
    /// 8-bit unsigned integer, numpy `|u1`.
    U8,
}

impl NpyDtype {
    /// Every supported dtype.
    pub const ALL: [NpyDtype; 5] = [Self::F32, Self::F64, Self::I32, Self::I64, Self::U8];

    /// The size of one element in bytes.
    pub const fn itemsize(self) -> usize {
        match self {
            Self::F32 | Self::I32 => 4,
            Self::F64 | Self::I64 => 8,
            Self::U8 => 1,
        }
    }

    /// The alignment an element needs in memory for a typed view on this platform.
    pub const fn align(self) -> usize {
        match self {
            Self::F32 => std::mem::align_of::<f32>(),
            Self::F64 => std::mem::align_of::<f64>(),
            Self::I32 => std::mem::align_of::<i32>(),
            Self::I64 => std::mem::align_of::<i64>(),
            Self::U8 => 1,
        }
    }

    /// numpy's type string as written in headers: `<f4`, `<f8`, `<i4`, `<i8`, `|u1`.
    pub const fn descr(self) -> &'static str {
        match self {
            Self::F32 => "<f4",
            Self::F64 => "<f8",
            Self::I32 => "<i4",
            Self::I64 => "<i8",
            Self::U8 => "|u1",
        }
    }

    /// shmframe's name: `f32`, `f64`, `i32`, `i64`, `u8`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F64 => "f64",
            Self::I32 => "i32",
            Self::I64 => "i64",
            Self::U8 => "u8",
        }
    }

    /// The dtype with shmframe name `name` (`f32`, `f64`, `i32`, `i64`, `u8`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Parses a numpy type string (`descr`), refusing what this module cannot read.
    ///
    /// Accepts an explicit `<` (or `=`, or no byte order: native, on a little-endian
    /// host), and any byte order for `u1`. Refuses big-endian types
    /// ([`NpyFormatError::BigEndian`]), object arrays ([`NpyFormatError::ObjectDtype`]) and
    /// everything else ([`NpyFormatError::UnsupportedDtype`]).
    pub fn from_descr(descr: &str) -> Result<Self, NpyFormatError> {
        let (order, code) = match descr.as_bytes().first() {
            Some(c @ (b'<' | b'>' | b'|' | b'=')) => (Some(*c), &descr[1..]),
            _ => (None, descr),
        };
        if code.starts_with('O') {
            return Err(NpyFormatError::ObjectDtype {
                descr: descr.to_owned(),
            });
        }
        let dtype = match code {
            "f4" => Self::F32,
            "f8" => Self::F64,
            "i4" => Self::I32,
            "i8" => Self::I64,
            "u1" => Self::U8,
            _ => {
                return Err(NpyFormatError::UnsupportedDtype {
                    descr: descr.to_owned(),
                });
            }
        };
        if dtype.itemsize() == 1 {
            return Ok(dtype);
        }
        let native_little = cfg!(target_endian = "little");
        match order {
            Some(b'<') => Ok(dtype),
            Some(b'=') | None if native_little => Ok(dtype),
            Some(b'>' | b'=') | None => Err(NpyFormatError::BigEndian {
                descr: descr.to_owned(),
            }),
            // `|` ("not applicable") on a multi-byte type is not a valid numpy type string.
            _ => Err(NpyFormatError::UnsupportedDtype {
                descr: descr.to_owned(),
            }),
        }
    }
}

impl fmt::Display for NpyDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An element type that can be viewed in and written to `.npy` files.
pub trait NpyElement: ArrowNativeType {
    /// The matching `.npy` dtype.
    const DTYPE: NpyDtype;

    /// Writes the value's little-endian bytes to `out` (`out.len()` is the item size).
    fn write_le(self, out: &mut [u8]);
}

macro_rules! npy_element {
    ($t:ty, $d:ident) => {
        impl NpyElement for $t {
            const DTYPE: NpyDtype = NpyDtype::$d;

            fn write_le(self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_le_bytes());
            }
        }
    };
}

npy_element!(f32, F32);
npy_element!(f64, F64);
npy_element!(i32, I32);
npy_element!(i64, I64);
npy_element!(u8, U8);
