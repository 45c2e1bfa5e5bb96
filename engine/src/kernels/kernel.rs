//! [`RowKernel`], the catalogue of row-wise kernels, and [`Accumulate`].

use std::fmt;
use std::str::FromStr;

/// A row-wise kernel: one output per row (a scalar, or for
/// [`RowKernel::NormalizeL2`] a row of the same width).
///
/// See the [module documentation](super) for the exact semantics of each
/// kernel on empty rows, NaN and infinities.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RowKernel {
    /// Sum of absolute values.
    L1,
    /// Euclidean norm, `sqrt(sum(x^2))`, without rescaling.
    L2,
    /// Largest absolute value; NaN if the row has a NaN.
    LInf,
    /// Sum of the row.
    Sum,
    /// Arithmetic mean of the row.
    Mean,
    /// Smallest value; NaN if the row has a NaN.
    Min,
    /// Largest value; NaN if the row has a NaN.
    Max,
    /// Variance, `sum((x - mean)^2) / (n - ddof)`, computed in two passes.
    Var {
        /// Delta degrees of freedom (0: population, 1: sample variance).
        ddof: u32,
    },
    /// Standard deviation, the square root of [`RowKernel::Var`].
    Std {
        /// Delta degrees of freedom (0: population, 1: sample deviation).
        ddof: u32,
    },
    /// Dot product with the query vector.
    Dot,
    /// Cosine similarity with the query vector.
    Cosine,
    /// The row divided by its L2 norm (a matrix output); zero rows stay zero.
    NormalizeL2,
}

/// Why a kernel name did not parse; the message lists the valid names.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown kernel `{input}`; valid kernels: {}", RowKernel::NAMES.join(", "))]
pub struct ParseRowKernelError {
    /// The rejected input.
    pub input: String,
}

impl RowKernel {
    /// The CLI names of all kernels, in declaration order.
    pub const NAMES: [&'static str; 12] = [
        "l1-norm",
        "l2-norm",
        "linf-norm",
        "sum",
        "mean",
        "min",
        "max",
        "var",
        "std",
        "dot",
        "cosine",
        "normalize",
    ];

    /// The CLI name, e.g. `"l2-norm"`. `var` and `std` do not encode `ddof`.
    pub fn name(&self) -> &'static str {
        // `id` is 1-based and dense, so this indexes in bounds.
        Self::NAMES[self.id() as usize - 1]
    }

    /// `true` for kernels that take a query vector of length `cols`
    /// ([`RowKernel::Dot`], [`RowKernel::Cosine`]).
    pub fn needs_query(&self) -> bool {
        matches!(self, Self::Dot | Self::Cosine)
    }

    /// `true` if the output is a matrix shaped like the input
    /// ([`RowKernel::NormalizeL2`]) rather than one scalar per row.
    pub fn output_is_matrix(&self) -> bool {
        matches!(self, Self::NormalizeL2)
    }

    /// The `ddof` of [`RowKernel::Var`] and [`RowKernel::Std`]; 0 otherwise.
    pub fn ddof(&self) -> u32 {
        match *self {
            Self::Var { ddof } | Self::Std { ddof } => ddof,
            _ => 0,
        }
    }

    /// The kernel's place in [`RowKernel::NAMES`], 1-based. (Job descriptors carry the
    /// kernel itself, serialised; this only orders the names.)
    pub(crate) fn id(&self) -> u32 {
        match self {
            Self::L1 => 1,
            Self::L2 => 2,
            Self::LInf => 3,
            Self::Sum => 4,
            Self::Mean => 5,
            Self::Min => 6,
            Self::Max => 7,
            Self::Var { .. } => 8,
            Self::Std { .. } => 9,
            Self::Dot => 10,
            Self::Cosine => 11,
            Self::NormalizeL2 => 12,
        }
    }

    /// The kernel with the given [`RowKernel::id`]; `ddof` is used by
    /// `Var` and `Std` and ignored otherwise. `None` for an unknown id.
    pub(crate) fn from_id(id: u32, ddof: u32) -> Option<Self> {
        Some(match id {
            1 => Self::L1,
            2 => Self::L2,
            3 => Self::LInf,
            4 => Self::Sum,
            5 => Self::Mean,
            6 => Self::Min,
            7 => Self::Max,
            8 => Self::Var { ddof },
            9 => Self::Std { ddof },
            10 => Self::Dot,
            11 => Self::Cosine,
            12 => Self::NormalizeL2,
            _ => return None,
        })
    }
}

impl fmt::Display for RowKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RowKernel {
    type Err = ParseRowKernelError;

    /// Parses a CLI name (exact, case-sensitive). `var` and `std` parse
    /// with `ddof = 0`, numpy's default.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::NAMES
            .iter()
            .position(|&n| n == s)
            .and_then(|i| u32::try_from(i + 1).ok())
            .and_then(|id| Self::from_id(id, 0))
            .ok_or_else(|| ParseRowKernelError {
                input: s.to_owned(),
            })
    }
}

/// The accumulator precision for `f32` input.
///
/// `f64` input always accumulates in `f64`; min, max and the L-infinity norm
/// are exact and ignore this setting.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Accumulate {
    /// Widen each element to `f64`, accumulate in `f64`, round the result
    /// once to the element type. The default.
    #[default]
    F64,
    /// Accumulate in the element type (`f32` for `f32` input): faster for
    /// wide rows but loses about `log2(cols)` bits, and squares overflow
    /// above about 1.8e19.
    Native,
}

impl Accumulate {
    /// A 1-based number, like [`RowKernel::id`].
    #[cfg(test)]
    pub(crate) fn id(self) -> u32 {
        match self {
            Self::F64 => 1,
            Self::Native => 2,
        }
    }

    /// The mode with the given [`Accumulate::id`], or `None`.
    #[cfg(test)]
    pub(crate) fn from_id(id: u32) -> Option<Self> {
        match id {
            1 => Some(Self::F64),
            2 => Some(Self::Native),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(ddof: u32) -> Vec<RowKernel> {
        (1..=12)
            .map(|id| RowKernel::from_id(id, ddof).unwrap())
            .collect()
    }

    #[test]
    fn name_round_trips_through_from_str() {
        for k in all(0) {
            assert_eq!(k.name().parse::<RowKernel>(), Ok(k.clone()));
            assert_eq!(k.to_string(), k.name());
        }
        assert_eq!("var".parse(), Ok(RowKernel::Var { ddof: 0 }));
        assert_eq!("std".parse(), Ok(RowKernel::Std { ddof: 0 }));
    }

    #[test]
    fn names_are_the_cli_names() {
        let names: Vec<_> = all(0).iter().map(RowKernel::name).collect();
        assert_eq!(
            names.join(" "),
            "l1-norm l2-norm linf-norm sum mean min max var std dot cosine normalize"
        );
    }

    #[test]
    fn unknown_name_lists_valid_names() {
        let err = "L2".parse::<RowKernel>().unwrap_err();
        assert_eq!(err.input, "L2");
        let msg = err.to_string();
        assert!(msg.starts_with("unknown kernel `L2`"), "{msg}");
        for name in RowKernel::NAMES {
            assert!(msg.contains(name), "{msg}");
        }
        assert!("".parse::<RowKernel>().is_err());
        assert!("l2-norm ".parse::<RowKernel>().is_err());
    }

    #[test]
    fn ids_are_stable_and_round_trip() {
        let expected = [
            (RowKernel::L1, 1),
            (RowKernel::L2, 2),
            (RowKernel::LInf, 3),
            (RowKernel::Sum, 4),
            (RowKernel::Mean, 5),
            (RowKernel::Min, 6),
            (RowKernel::Max, 7),
            (RowKernel::Var { ddof: 3 }, 8),
            (RowKernel::Std { ddof: 3 }, 9),
            (RowKernel::Dot, 10),
            (RowKernel::Cosine, 11),
            (RowKernel::NormalizeL2, 12),
        ];
        for (k, id) in expected {
            assert_eq!(k.id(), id);
            assert_eq!(RowKernel::from_id(id, k.ddof()), Some(k));
        }
        assert_eq!(RowKernel::from_id(0, 0), None);
        assert_eq!(RowKernel::from_id(13, 0), None);
        assert_eq!(RowKernel::from_id(u32::MAX, 0), None);
        assert_eq!(RowKernel::L2.ddof(), 0);
    }

    #[test]
    fn query_and_matrix_flags() {
        for k in all(1) {
            let q = matches!(k, RowKernel::Dot | RowKernel::Cosine);
            assert_eq!(k.needs_query(), q, "{k}");
            assert_eq!(k.output_is_matrix(), k == RowKernel::NormalizeL2, "{k}");
        }
    }

    #[test]
    fn accumulate_ids() {
        assert_eq!(Accumulate::default(), Accumulate::F64);
        for a in [Accumulate::F64, Accumulate::Native] {
            assert_eq!(Accumulate::from_id(a.id()), Some(a));
        }
        assert_eq!(Accumulate::from_id(0), None);
    }
}
