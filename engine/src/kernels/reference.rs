//! Test oracle: one obvious sequential `f64` loop per kernel, and the error
//! bound a correct but differently ordered implementation must meet.

use super::kernel::RowKernel;

/// The reference result of a scalar kernel on row `x` with query `q`.
pub(super) fn scalar(kernel: &RowKernel, x: &[f64], q: &[f64]) -> f64 {
    let n = x.len();
    match *kernel {
        RowKernel::L1 => {
            let mut s = 0.0;
            for &v in x {
                s += v.abs();
            }
            s
        }
        RowKernel::L2 => {
            let mut s = 0.0;
            for &v in x {
                s += v * v;
            }
            s.sqrt()
        }
        RowKernel::LInf => {
            let mut m = 0.0_f64;
            for &v in x {
                if v.is_nan() {
                    return f64::NAN;
                }
                m = m.max(v.abs());
            }
            m
        }
        RowKernel::Sum => x.iter().sum(),
        RowKernel::Mean => {
            if n == 0 {
                return f64::NAN;
            }
            let mut s = 0.0;
            for &v in x {
                s += v;
            }
            s / n as f64
        }
        RowKernel::Min | RowKernel::Max => {
            if n == 0 {
                return f64::NAN;
            }
            let is_min = *kernel == RowKernel::Min;
            let mut m = x[0];
            for &v in x {
                if v.is_nan() {
                    return f64::NAN;
                }
                m = if is_min { m.min(v) } else { m.max(v) };
            }
            m
        }
        RowKernel::Var { ddof } => {
            if n <= ddof as usize {
                return f64::NAN;
            }
            let mean = scalar(&RowKernel::Mean, x, q);
            let mut ss = 0.0;
            for &v in x {
                ss += (v - mean) * (v - mean);
            }
            ss / (n - ddof as usize) as f64
        }
        RowKernel::Std { ddof } => scalar(&RowKernel::Var { ddof }, x, q).sqrt(),
        RowKernel::Dot => {
            let mut s = 0.0;
            for (&a, &b) in x.iter().zip(q) {
                s += a * b;
            }
            s
        }
        RowKernel::Cosine => {
            let (mut d, mut xx, mut qq) = (0.0, 0.0, 0.0);
            for (&a, &b) in x.iter().zip(q) {
                d += a * b;
                xx += a * a;
                qq += b * b;
            }
            if xx == 0.0 || qq == 0.0 {
                return f64::NAN;
            }
            d / (f64::sqrt(xx) * f64::sqrt(qq))
        }
        RowKernel::NormalizeL2 => panic!("normalize has a row output; use reference::normalize"),
    }
}

/// The reference L2-normalised row.
pub(super) fn normalize(x: &[f64]) -> Vec<f64> {
    let norm = scalar(&RowKernel::L2, x, &[]);
    x.iter()
        .map(|&v| if norm == 0.0 { 0.0 } else { v / norm })
        .collect()
}

/// Absolute error bound for a scalar kernel whose arithmetic has relative
/// precision `rel` but sums in another order, given the reference `want`.
///
/// Sums are bounded by `rel * sum(|terms|)`, which stays meaningful when
/// the terms cancel. Variance: reordering the mean's sum moves the mean by
/// `delta <= rel * sum|x|`, which changes the sum of squared deviations by
/// `n * delta^2`; the squared deviations themselves carry `rel` relative
/// error. Standard deviation uses `|sqrt a - sqrt b| <= min(sqrt|a - b|,
/// |a - b| / sqrt b)`.
pub(super) fn tolerance(kernel: &RowKernel, x: &[f64], q: &[f64], want: f64, rel: f64) -> f64 {
    let n = x.len() as f64;
    let abs_sum = |f: &dyn Fn(usize) -> f64| (0..x.len()).map(f).map(f64::abs).sum::<f64>();
    match *kernel {
        RowKernel::L1 | RowKernel::Sum => rel * abs_sum(&|i| x[i]),
        RowKernel::Mean => rel * abs_sum(&|i| x[i]) / n,
        RowKernel::L2 => rel * want.abs(),
        RowKernel::LInf | RowKernel::Min | RowKernel::Max => 0.0,
        RowKernel::Var { ddof } => {
            let mean = scalar(&RowKernel::Mean, x, q);
            let ss = abs_sum(&|i| (x[i] - mean) * (x[i] - mean));
            let s = abs_sum(&|i| x[i]);
            rel * (ss + rel * s * s) / (n - f64::from(ddof))
        }
        RowKernel::Std { ddof } => {
            let tv = tolerance(&RowKernel::Var { ddof }, x, q, want * want, rel);
            tv.sqrt().min(tv / want) + rel * want
        }
        RowKernel::Dot => rel * abs_sum(&|i| x[i] * q[i]),
        RowKernel::Cosine => {
            let nx = scalar(&RowKernel::L2, x, q);
            let nq = scalar(&RowKernel::L2, q, q);
            rel * (want.abs() + abs_sum(&|i| x[i] * q[i]) / (nx * nq))
        }
        RowKernel::NormalizeL2 => rel * want.abs(),
    }
}

/// `got` matches `want` rounded to the output type by `round`, within
/// `tol`: NaN only against NaN, infinities exactly.
pub(super) fn close(got: f64, want_rounded: f64, tol: f64) -> bool {
    if want_rounded.is_nan() {
        got.is_nan()
    } else if want_rounded.is_infinite() {
        got == want_rounded
    } else {
        got.is_finite() && (got - want_rounded).abs() <= tol
    }
}
