//! Property tests: every kernel, both dtypes, against [`super::reference`].

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::reference::{self, close};
use super::*;

/// All scalar kernels, with several `ddof`s.
fn scalar_kernels() -> Vec<RowKernel> {
    let mut ks: Vec<RowKernel> = (1..=12)
        .filter_map(|id| RowKernel::from_id(id, 0))
        .filter(|k| !k.output_is_matrix())
        .collect();
    ks.extend([
        RowKernel::Var { ddof: 1 },
        RowKernel::Std { ddof: 1 },
        RowKernel::Var { ddof: 5 },
        RowKernel::Std { ddof: 5 },
    ]);
    ks
}

/// How the output is compared with the reference.
#[derive(Clone, Copy, Debug)]
struct Tol {
    /// Relative precision of the kernel's internal arithmetic.
    internal: f64,
    /// Relative error of the final rounding to the output type.
    output: f64,
    /// Absolute slack: a couple of subnormal ulps of the output type.
    abs: f64,
}

const F64_TOL: Tol = Tol {
    internal: 1e-12,
    output: 1e-12,
    abs: 1e-323,
};
const F32_TOL: Tol = Tol {
    internal: 1e-12,
    output: 1e-6,
    abs: 3e-45,
};
const F32_NATIVE_TOL: Tol = Tol {
    internal: 1e-4,
    output: 1e-6,
    abs: 3e-45,
};

/// Runs every kernel on `data` and checks each row against the reference.
fn check_all<T: Float>(
    cols: usize,
    data: &[T],
    query: &[T],
    acc: Accumulate,
    tol: Tol,
) -> Result<(), TestCaseError> {
    let wide: Vec<f64> = data.iter().map(|v| v.to_f64()).collect();
    let q: Vec<f64> = query.iter().map(|v| v.to_f64()).collect();
    let rows = data.len().checked_div(cols).unwrap_or(3);
    let row = |i: usize| &wide[i * cols..(i + 1) * cols];
    let round = |v: f64| T::from_f64(v).to_f64();

    for kernel in scalar_kernels() {
        let mut out = vec![T::from_f64(-7.0); rows];
        apply_rows(&kernel, acc, data, cols, Some(query), &mut out)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (i, &got) in out.iter().enumerate() {
            let want = reference::scalar(&kernel, row(i), &q);
            let tol_abs = reference::tolerance(&kernel, row(i), &q, want, tol.internal)
                + tol.output * want.abs()
                + tol.abs;
            prop_assert!(
                close(got.to_f64(), round(want), tol_abs),
                "{kernel:?} {acc:?} {}: row {i} of {rows}x{cols}: got {got:?}, want {want:e} \
                 (rounded {:e}, tol {tol_abs:e}); row = {:?}, query = {q:?}",
                T::DTYPE,
                round(want),
                row(i),
            );
        }
    }

    if acc == Accumulate::F64 {
        let mut out = vec![T::from_f64(-7.0); data.len()];
        normalize_rows(data, cols, &mut out).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for i in 0..rows {
            let want = reference::normalize(row(i));
            for (j, (&got, &want)) in out[i * cols..(i + 1) * cols].iter().zip(&want).enumerate() {
                let tol_abs = tol.internal * want.abs() + tol.output * want.abs() + tol.abs;
                prop_assert!(
                    close(got.to_f64(), round(want), tol_abs),
                    "normalize {}: ({i}, {j}) of {rows}x{cols}: got {got:?}, want {want:e}; row = {:?}",
                    T::DTYPE,
                    row(i),
                );
            }
        }
    }
    Ok(())
}

/// Value families; `Mixed` draws each element from any of the others.
#[derive(Clone, Copy, Debug)]
enum Class {
    Random,
    Tiny,
    Huge,
    Special,
    Mixed,
}

/// `±[0.5, 10)`: mantissas kept away from 0 so that scaled values are
/// clearly inside or clearly outside the overflow range of their squares.
fn mantissa() -> impl Strategy<Value = f64> {
    (0.5_f64..10.0, any::<bool>()).prop_map(|(m, neg)| if neg { -m } else { m })
}

fn scaled(scale: f64) -> BoxedStrategy<f64> {
    mantissa().prop_map(move |m| m * scale).boxed()
}

fn f64_value(class: Class) -> BoxedStrategy<f64> {
    match class {
        Class::Random => prop_oneof![
            -1e3_f64..1e3,
            -1.0_f64..1.0,
            (-1e6_f64..1e6).prop_map(f64::round),
            // Cancellation: large offset, small spread.
            (-1.0_f64..1.0).prop_map(|v| 1e8 + v),
        ]
        .boxed(),
        // Squares of 1e-160 are subnormal; the rest underflow to zero.
        Class::Tiny => prop_oneof![
            scaled(1e-160),
            scaled(1e-300),
            scaled(1e-310),
            scaled(1e-320),
            Just(0.0)
        ]
        .boxed(),
        // 1e150: every square, product and sum is finite.
        // 1e200: every square and product with another huge value is inf.
        Class::Huge => prop_oneof![scaled(1e150), scaled(1e200), Just(0.0)].boxed(),
        Class::Special => prop_oneof![
            4 => f64_value(Class::Random),
            1 => Just(f64::NAN),
            1 => Just(f64::INFINITY),
            1 => Just(f64::NEG_INFINITY),
            1 => Just(0.0),
            1 => Just(-0.0),
        ]
        .boxed(),
        Class::Mixed => prop_oneof![
            f64_value(Class::Random),
            f64_value(Class::Tiny),
            f64_value(Class::Huge),
            f64_value(Class::Special),
        ]
        .boxed(),
    }
}

fn f32_value(class: Class) -> BoxedStrategy<f32> {
    let wide = match class {
        Class::Random => prop_oneof![
            -1e3_f64..1e3,
            -1.0_f64..1.0,
            (-1e4_f64..1e4).prop_map(f64::round),
            (-1.0_f64..1.0).prop_map(|v| 1e4 + v),
        ]
        .boxed(),
        // 1e-40 and 1e-44 are f32 subnormals.
        Class::Tiny => prop_oneof![scaled(1e-20), scaled(1e-40), scaled(1e-44), Just(0.0)].boxed(),
        // 1e36: sums and norms may round to inf in f32 (but not in f64).
        Class::Huge => prop_oneof![scaled(1e18), scaled(1e36), Just(0.0)].boxed(),
        Class::Special => {
            return prop_oneof![
                4 => f32_value(Class::Random),
                1 => Just(f32::NAN),
                1 => Just(f32::INFINITY),
                1 => Just(f32::NEG_INFINITY),
                1 => Just(0.0_f32),
                1 => Just(-0.0_f32),
            ]
            .boxed();
        }
        Class::Mixed => {
            return prop_oneof![
                f32_value(Class::Random),
                f32_value(Class::Tiny),
                f32_value(Class::Huge),
                f32_value(Class::Special),
            ]
            .boxed();
        }
    };
    wide.prop_map(<f32 as Float>::from_f64).boxed()
}

/// `(cols, data, query)` with `cols` in `0..=70` and `rows` in `0..=20`.
fn matrix<T: std::fmt::Debug + Clone + 'static>(
    value: BoxedStrategy<T>,
) -> impl Strategy<Value = (usize, Vec<T>, Vec<T>)> {
    (0_usize..=70, 0_usize..=20).prop_flat_map(move |(cols, rows)| {
        let v = value.clone();
        (
            Just(cols),
            prop::collection::vec(v.clone(), rows * cols),
            prop::collection::vec(v, cols),
        )
    })
}

macro_rules! property {
    ($name:ident, $value:ident($class:expr), $acc:expr, $tol:expr) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]
            #[test]
            fn $name((cols, data, query) in matrix($value($class))) {
                check_all(cols, &data, &query, $acc, $tol)?;
            }
        }
    };
}

property!(
    f64_random,
    f64_value(Class::Random),
    Accumulate::F64,
    F64_TOL
);
property!(f64_tiny, f64_value(Class::Tiny), Accumulate::F64, F64_TOL);
property!(f64_huge, f64_value(Class::Huge), Accumulate::F64, F64_TOL);
property!(
    f64_special,
    f64_value(Class::Special),
    Accumulate::F64,
    F64_TOL
);
property!(f64_mixed, f64_value(Class::Mixed), Accumulate::F64, F64_TOL);
property!(
    f64_native_is_f64,
    f64_value(Class::Mixed),
    Accumulate::Native,
    F64_TOL
);
property!(
    f32_random,
    f32_value(Class::Random),
    Accumulate::F64,
    F32_TOL
);
property!(f32_tiny, f32_value(Class::Tiny), Accumulate::F64, F32_TOL);
property!(f32_huge, f32_value(Class::Huge), Accumulate::F64, F32_TOL);
property!(
    f32_special,
    f32_value(Class::Special),
    Accumulate::F64,
    F32_TOL
);
property!(f32_mixed, f32_value(Class::Mixed), Accumulate::F64, F32_TOL);
property!(
    f32_native_random,
    f32_value(Class::Random),
    Accumulate::Native,
    F32_NATIVE_TOL
);

/// `(cols, data, query)` with `cols` one of the widths `rows::each_row` specialises (8, 16,
/// 32) or a neighbour, and `rows` in `0..=150`: several row blocks, a partial last one.
fn fixed_width_matrix<T: std::fmt::Debug + Clone + 'static>(
    value: BoxedStrategy<T>,
) -> impl Strategy<Value = (usize, Vec<T>, Vec<T>)> {
    let widths = prop::sample::select(vec![7_usize, 8, 9, 15, 16, 17, 31, 32, 33]);
    (widths, 0_usize..=150).prop_flat_map(move |(cols, rows)| {
        let v = value.clone();
        (
            Just(cols),
            prop::collection::vec(v.clone(), rows * cols),
            prop::collection::vec(v, cols),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn f64_fixed_widths((cols, data, query) in fixed_width_matrix(f64_value(Class::Mixed))) {
        check_all(cols, &data, &query, Accumulate::F64, F64_TOL)?;
    }

    #[test]
    fn f32_fixed_widths((cols, data, query) in fixed_width_matrix(f32_value(Class::Mixed))) {
        check_all(cols, &data, &query, Accumulate::F64, F32_TOL)?;
    }

    /// f32 accumulation overflows on huge inputs by design, so only ordinary values here.
    #[test]
    fn f32_native_fixed_widths(
        (cols, data, query) in fixed_width_matrix(f32_value(Class::Random))
    ) {
        check_all(cols, &data, &query, Accumulate::Native, F32_NATIVE_TOL)?;
    }
}

/// A column of one of the ten primitive types, owned.
#[derive(Clone, Debug)]
enum Owned {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
}

impl Owned {
    /// Converts `values` to dtype number `dtype % 10` (saturating for ints).
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn new(dtype: u8, values: &[f64]) -> Self {
        macro_rules! conv {
            ($v:ident, $t:ty) => {
                Owned::$v(values.iter().map(|&x| x as $t).collect())
            };
        }
        match dtype % 10 {
            0 => conv!(F32, f32),
            1 => conv!(F64, f64),
            2 => conv!(I8, i8),
            3 => conv!(I16, i16),
            4 => conv!(I32, i32),
            // Keep i64/u64 beyond 2^53 too, to exercise their rounding.
            5 => Owned::I64(values.iter().map(|&x| (x * 1e10) as i64).collect()),
            6 => conv!(U8, u8),
            7 => conv!(U16, u16),
            8 => conv!(U32, u32),
            _ => Owned::U64(values.iter().map(|&x| (x * 1e10) as u64).collect()),
        }
    }

    fn slice(&self) -> ColumnSlice<'_> {
        match self {
            Owned::F32(v) => ColumnSlice::from(&v[..]),
            Owned::F64(v) => ColumnSlice::from(&v[..]),
            Owned::I8(v) => ColumnSlice::from(&v[..]),
            Owned::I16(v) => ColumnSlice::from(&v[..]),
            Owned::I32(v) => ColumnSlice::from(&v[..]),
            Owned::I64(v) => ColumnSlice::from(&v[..]),
            Owned::U8(v) => ColumnSlice::from(&v[..]),
            Owned::U16(v) => ColumnSlice::from(&v[..]),
            Owned::U32(v) => ColumnSlice::from(&v[..]),
            Owned::U64(v) => ColumnSlice::from(&v[..]),
        }
    }

    #[allow(clippy::cast_precision_loss)]
    fn get(&self, i: usize) -> f64 {
        match self {
            Owned::F32(v) => f64::from(v[i]),
            Owned::F64(v) => v[i],
            Owned::I8(v) => f64::from(v[i]),
            Owned::I16(v) => f64::from(v[i]),
            Owned::I32(v) => f64::from(v[i]),
            Owned::I64(v) => v[i] as f64,
            Owned::U8(v) => f64::from(v[i]),
            Owned::U16(v) => f64::from(v[i]),
            Owned::U32(v) => f64::from(v[i]),
            Owned::U64(v) => v[i] as f64,
        }
    }
}

/// `apply_columns` equals `apply_rows::<f64>` on the widened row-major
/// matrix, bit for bit (they share the per-row code).
fn columns_match_rows(columns: &[Owned], rows: usize, query: &[f64]) -> Result<(), TestCaseError> {
    let ncols = columns.len();
    let mut data = Vec::with_capacity(rows * ncols);
    for i in 0..rows {
        data.extend(columns.iter().map(|c| c.get(i)));
    }
    let slices: Vec<ColumnSlice<'_>> = columns.iter().map(Owned::slice).collect();
    for kernel in scalar_kernels() {
        let mut by_cols = vec![-7.0; rows];
        let mut by_rows = vec![-7.0; rows];
        apply_columns(&kernel, &slices, Some(query), &mut by_cols)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        apply_rows(
            &kernel,
            Accumulate::F64,
            &data,
            ncols,
            Some(query),
            &mut by_rows,
        )
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (i, (a, b)) in by_cols.iter().zip(&by_rows).enumerate() {
            prop_assert!(
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                "{kernel:?} row {i}: columns {a:e} vs rows {b:e}"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn columns_equal_rows(
        (rows, columns, query) in (0_usize..=600, 0_usize..=12).prop_flat_map(|(rows, ncols)| (
            Just(rows),
            prop::collection::vec(
                (any::<u8>(), prop::collection::vec(f64_value(Class::Mixed), rows))
                    .prop_map(|(dtype, values)| Owned::new(dtype, &values)),
                ncols,
            ),
            prop::collection::vec(f64_value(Class::Random), ncols),
        ))
    ) {
        columns_match_rows(&columns, rows, &query)?;
    }
}

#[test]
fn columns_wide_blocks() {
    // 100 columns: 81-row blocks; 9000 columns: one row per block.
    for (ncols, rows) in [(100, 300), (9000, 3)] {
        let columns: Vec<Owned> = (0..ncols)
            .map(|c| {
                let values: Vec<f64> = (0..rows)
                    .map(|r| ((r * 31 + c * 17) % 23) as f64 - 11.5)
                    .collect();
                Owned::new((c % 10) as u8, &values)
            })
            .collect();
        let query: Vec<f64> = (0..ncols).map(|c| (c % 7) as f64 - 3.0).collect();
        columns_match_rows(&columns, rows, &query).unwrap();
    }
}

/// Runs a scalar kernel on `f64` rows.
fn run(kernel: RowKernel, data: &[f64], cols: usize, query: Option<&[f64]>) -> Vec<f64> {
    let rows = data.len().checked_div(cols).unwrap_or(2);
    let mut out = vec![-7.0; rows];
    apply_rows(&kernel, Accumulate::F64, data, cols, query, &mut out).unwrap();
    out
}

#[test]
fn empty_rows() {
    let q: &[f64] = &[];
    let expect = [
        (RowKernel::L1, 0.0),
        (RowKernel::L2, 0.0),
        (RowKernel::LInf, 0.0),
        (RowKernel::Sum, 0.0),
        (RowKernel::Dot, 0.0),
    ];
    for (k, v) in expect {
        assert_eq!(run(k, &[], 0, Some(q)), [v, v]);
    }
    for k in [
        RowKernel::Mean,
        RowKernel::Min,
        RowKernel::Max,
        RowKernel::Var { ddof: 0 },
        RowKernel::Std { ddof: 0 },
        RowKernel::Cosine,
    ] {
        assert!(
            run(k.clone(), &[], 0, Some(q)).iter().all(|v| v.is_nan()),
            "{k}"
        );
    }
    let mut out: Vec<f64> = vec![];
    normalize_rows::<f64>(&[], 0, &mut out).unwrap();
}

#[test]
fn nan_propagates_through_min_max_linf() {
    // NaN at every position of a row crossing the 8-lane boundary.
    for pos in 0..11 {
        let mut row = vec![1.0; 11];
        row[pos] = f64::NAN;
        for k in [RowKernel::Min, RowKernel::Max, RowKernel::LInf] {
            assert!(run(k.clone(), &row, 11, None)[0].is_nan(), "{k} {pos}");
        }
    }
    let row = [3.0, -5.0, f64::INFINITY, 2.0];
    assert_eq!(run(RowKernel::Min, &row, 4, None), [-5.0]);
    assert_eq!(run(RowKernel::Max, &row, 4, None), [f64::INFINITY]);
    assert_eq!(run(RowKernel::LInf, &[-9.0, 2.0], 2, None), [9.0]);
}

#[test]
fn variance_is_two_pass() {
    // A one-pass E[x^2] - E[x]^2 loses everything here; two passes are exact.
    let big = [1e9, 1e9 + 1.0, 1e9 + 2.0, 1e9 + 3.0];
    assert_eq!(run(RowKernel::Var { ddof: 0 }, &big, 4, None), [1.25]);
    assert_eq!(run(RowKernel::Var { ddof: 1 }, &big, 4, None), [5.0 / 3.0]);
    assert!(run(RowKernel::Var { ddof: 4 }, &big, 4, None)[0].is_nan());
    let small = [1e4_f32, 1e4 + 1.0, 1e4 + 2.0, 1e4 + 3.0];
    let mut out = [0.0_f32];
    apply_rows(
        &RowKernel::Var { ddof: 0 },
        Accumulate::Native,
        &small,
        4,
        None,
        &mut out,
    )
    .unwrap();
    assert_eq!(out, [1.25]);
    apply_rows(
        &RowKernel::Std { ddof: 0 },
        Accumulate::F64,
        &small,
        4,
        None,
        &mut out,
    )
    .unwrap();
    assert_eq!(out, [1.25_f64.sqrt() as f32]);
}

#[test]
fn cosine_and_normalize_of_zero_rows() {
    let data = [0.0, 0.0, 3.0, 4.0];
    let c = run(RowKernel::Cosine, &data, 2, Some(&[1.0, 0.0]));
    assert!(c[0].is_nan());
    assert_eq!(c[1], 0.6);
    assert!(
        run(RowKernel::Cosine, &data, 2, Some(&[0.0, 0.0]))
            .iter()
            .all(|v| v.is_nan())
    );
    let mut out = [9.0; 4];
    normalize_rows(&data, 2, &mut out).unwrap();
    assert_eq!(out, [0.0, 0.0, 0.6, 0.8]);
}

#[test]
fn f32_results_are_rounded_once() {
    // 0.1 + 0.2 + 0.3 in f32 arithmetic is 0.6000000238...; in f64 and rounded
    // once it is the f32 nearest to the exact sum of the three f32 inputs.
    let data = [0.1_f32, 0.2, 0.3];
    let mut out = [0.0_f32];
    apply_rows(&RowKernel::Sum, Accumulate::F64, &data, 3, None, &mut out).unwrap();
    let exact: f64 = data.iter().map(|&v| f64::from(v)).sum();
    assert_eq!(out[0], exact as f32);
}
