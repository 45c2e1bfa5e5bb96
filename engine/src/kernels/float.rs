//! The [`Float`] element trait, implemented for `f32` and `f64` only.

use std::fmt::Debug;
use std::ops::{Add, Div, Mul, Sub};

mod sealed {
    /// Keeps [`super::Float`] closed to `f32` and `f64`: the kernels'
    /// numeric contract (IEEE 754 binary32/binary64) is only checked for those.
    /// `pub` in a private module: nameable in `Float`'s bounds, nowhere else.
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A floating-point element type the row kernels accept: `f32` or `f64`.
///
/// The trait is sealed; it exists so that [`apply_rows`](super::apply_rows)
/// and [`normalize_rows`](super::normalize_rows) can be generic over the
/// element type of a shared-memory chunk. It is also used internally as the
/// accumulator type (see [`Accumulate`](super::Accumulate)).
pub trait Float:
    sealed::Sealed
    + Copy
    + Default
    + Debug
    + PartialOrd
    + Send
    + Sync
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + 'static
{
    /// Positive zero.
    const ZERO: Self;
    /// A quiet NaN.
    const NAN: Self;
    /// Positive infinity.
    const INFINITY: Self;
    /// Negative infinity.
    const NEG_INFINITY: Self;
    /// The dtype name as used in descriptors and messages (`"f32"`, `"f64"`).
    const DTYPE: &'static str;

    /// Widens (or, for `f64`, passes through) to `f64`; exact.
    fn to_f64(self) -> f64;
    /// Rounds an `f64` to `Self` (round to nearest, ties to even).
    fn from_f64(v: f64) -> Self;
    /// Converts a count such as a row length; exact below 2^24 (`f32`) or
    /// 2^53 (`f64`).
    fn from_usize(n: usize) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// `true` if `self` is NaN.
    fn is_nan(self) -> bool;
}

macro_rules! impl_float {
    ($t:ty, $name:literal) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const NAN: Self = <$t>::NAN;
            const INFINITY: Self = <$t>::INFINITY;
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
            const DTYPE: &'static str = $name;

            #[inline(always)]
            fn to_f64(self) -> f64 {
                f64::from(self)
            }
            #[inline(always)]
            #[allow(clippy::cast_possible_truncation)] // rounding is the point
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            #[allow(clippy::cast_precision_loss)] // documented above
            fn from_usize(n: usize) -> Self {
                n as $t
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
        }
    };
}

impl_float!(f32, "f32");
impl_float!(f64, "f64");

#[cfg(test)]
mod tests {
    use super::Float;

    #[test]
    fn conversions_round_once() {
        assert_eq!(<f32 as Float>::from_f64(0.1), 0.1_f32);
        assert_eq!(Float::to_f64(0.1_f32), f64::from(0.1_f32));
        assert_eq!(<f32 as Float>::from_f64(1e300), f32::INFINITY);
        assert!(<f64 as Float>::NAN.is_nan());
        assert_eq!(<f32 as Float>::DTYPE, "f32");
        assert_eq!(<f64 as Float>::from_usize(70), 70.0);
    }
}
