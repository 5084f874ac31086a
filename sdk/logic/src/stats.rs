//! The statistics a policy author would otherwise rewrite: mean and standard
//! deviation, EWMA, z-score, least-squares slope, CUSUM, Pearson correlation
//! (whole and rolling), quantiles, and the two combinators the default
//! policies use to turn numbers into scores (`ramp`, `noisy_or`).
//!
//! Guarantees shared by every function here:
//! - non-finite inputs (NaN, ±∞) are skipped as if they were missing, never
//!   propagated;
//! - a function returning `Option<f64>` returns `None` rather than a number it
//!   cannot compute (empty input, zero variance, overflow), and `Some(x)`
//!   always has `x.is_finite()`;
//! - only `+ - * /`, `sqrt`, comparisons and `floor` are used, all of which
//!   IEEE 754 rounds exactly, so a result is bit-for-bit the same natively and
//!   in WebAssembly (no `exp`, `ln` or `powf`, whose precision differs between
//!   libms).

/// `Some(x)` if `x` is finite.
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// Arithmetic mean of the finite values; `None` if there are none.
pub fn mean(values: &[f64]) -> Option<f64> {
    let (sum, n) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        return None;
    }
    finite(sum / n as f64)
}

/// Population standard deviation of the finite values (divides by n, not
/// n − 1: a window is the whole population a policy looks at); `None` if there
/// are none. A constant input gives `Some(0.0)`.
pub fn stddev(values: &[f64]) -> Option<f64> {
    let m = mean(values)?;
    let (sum, n) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((0.0, 0usize), |(s, n), v| (s + (v - m) * (v - m), n + 1));
    finite((sum / n as f64).sqrt())
}

/// How many standard deviations `value` is from `mean`.
///
/// `None` if `stddev` is not strictly positive, or any argument is not
/// finite: a baseline without spread cannot say how unusual a value is, and
/// the caller decides what floor to use instead (the default policies use
/// [`crate::deviation::ZScoring::min_stddev_ratio`]).
pub fn z_score(value: f64, mean: f64, stddev: f64) -> Option<f64> {
    if stddev <= 0.0 || !value.is_finite() || !mean.is_finite() || !stddev.is_finite() {
        return None;
    }
    finite((value - mean) / stddev)
}

/// Exponentially weighted moving average, updated one sample at a time:
/// the first sample is taken as is, each later one as
/// `s = alpha * x + (1 - alpha) * s`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ewma {
    alpha: f64,
    value: Option<f64>,
}

impl Ewma {
    /// A new average with smoothing factor `alpha` in (0, 1] (1 follows the
    /// last sample, small values smooth more); `None` for any other `alpha`.
    pub fn new(alpha: f64) -> Option<Self> {
        (alpha > 0.0 && alpha <= 1.0).then_some(Self { alpha, value: None })
    }

    /// Folds in one sample (skipped if not finite) and returns the average.
    pub fn update(&mut self, x: f64) -> Option<f64> {
        if x.is_finite() {
            let next = match self.value {
                None => x,
                Some(s) => self.alpha * x + (1.0 - self.alpha) * s,
            };
            // Both terms are convex combinations of finite numbers, so `next`
            // is finite; the check keeps the guarantee explicit.
            if next.is_finite() {
                self.value = Some(next);
            }
        }
        self.value
    }

    /// The average so far; `None` before the first finite sample.
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

/// EWMA of `values` (see [`Ewma`]); `None` if `alpha` is not in (0, 1] or no
/// value is finite.
pub fn ewma(values: &[f64], alpha: f64) -> Option<f64> {
    let mut avg = Ewma::new(alpha)?;
    for &v in values {
        avg.update(v);
    }
    avg.value()
}

/// The EWMA (see [`Ewma`]) at the last of `xs`, all finite, the first
/// seeding it: the same number as folding [`Ewma::update`] over them, up to
/// rounding. `alpha` must be in (0, 1]; `None` when `xs` is empty.
///
/// The fold is one long dependency chain (a multiply and an add per
/// sample); this evaluates the closed form
/// `alpha * sum(b^(n-1-i) x_i) + (1 - alpha) * b^(n-1) x_0`, `b = 1 - alpha`,
/// as four interleaved Horner chains, about four times faster on the
/// windows every drift and correlation evaluation smooths.
pub(crate) fn ewma_last(xs: impl ExactSizeIterator<Item = f64>, alpha: f64) -> Option<f64> {
    let n = xs.len();
    let b = 1.0 - alpha;
    let b4 = b * b * b * b;
    let mut xs = xs.peekable();
    let first = *xs.peek()?;
    let full = n / 4;
    let mut acc = [0.0f64; 4];
    for _ in 0..full {
        for a in &mut acc {
            // `full` chunks of four exist: `n` counts the items.
            *a = *a * b4 + xs.next().unwrap_or(0.0);
        }
    }
    // Each chain's last term has exponent 3 - k relative to item 4*full - 1.
    let mut sum = ((acc[0] * b + acc[1]) * b + acc[2]) * b + acc[3];
    for x in xs {
        sum = sum * b + x;
    }
    Some(alpha * sum + (1.0 - alpha) * pow(b, n - 1) * first)
}

/// `b^n` by squaring, in a fixed order of IEEE multiplications (unlike
/// `powi`, whose evaluation LLVM may choose per target), so the result is
/// the same natively and in WebAssembly.
fn pow(mut b: f64, mut n: usize) -> f64 {
    let mut out = 1.0;
    while n > 0 {
        if n & 1 == 1 {
            out *= b;
        }
        b *= b;
        n >>= 1;
    }
    out
}

/// `x` if it is above 0, else 0 (also for NaN): `x.max(0.0)`, spelled as a
/// comparison because WebAssembly has no instruction with the semantics of
/// `f64::max`, so there it is a call into libm's `fmax` (a fifth of a drift
/// evaluation's time when the hot loops used it). `clamp` is comparisons
/// already.
#[inline]
pub fn positive(x: f64) -> f64 {
    if x > 0.0 { x } else { 0.0 }
}

/// Least-squares slope of `v` against `t` over the points `(t, v)`: units of
/// `v` per unit of `t`. Points with a non-finite coordinate are skipped;
/// `None` with fewer than two points left or when every `t` is the same.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    slope_of(
        points
            .iter()
            .copied()
            .filter(|(t, v)| t.is_finite() && v.is_finite()),
    )
}

/// [`slope`] over finite points given by an iterator (walked three times),
/// without collecting them.
pub(crate) fn slope_of(points: impl Iterator<Item = (f64, f64)> + Clone) -> Option<f64> {
    let mut sums = SlopeSums::default();
    for (t, v) in points.clone() {
        sums.push(t, v);
    }
    sums.slope(points)
}

/// The first pass of [`slope_of`]: count and sums of `t` and `v`, in the
/// order given. Split out so a caller already walking the points can fold
/// them in on the way and get the very same slope.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SlopeSums {
    n: usize,
    st: f64,
    sv: f64,
}

impl SlopeSums {
    pub(crate) fn push(&mut self, t: f64, v: f64) {
        self.n += 1;
        self.st += t;
        self.sv += v;
    }

    /// The second pass over the same `points`.
    pub(crate) fn slope(self, points: impl Iterator<Item = (f64, f64)>) -> Option<f64> {
        let Self { n, st, sv } = self;
        if n < 2 {
            return None;
        }
        let (tm, vm) = (st / n as f64, sv / n as f64);
        // Centred sums: numerically stable even for epoch-sized `t`.
        let (sxx, sxy) = points.fold((0.0, 0.0), |(sxx, sxy), (t, v)| {
            (sxx + (t - tm) * (t - tm), sxy + (t - tm) * (v - vm))
        });
        if sxx <= 0.0 || !sxx.is_finite() {
            return None;
        }
        finite(sxy / sxx)
    }
}

/// The two one-sided CUSUM statistics of a series' derivative.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cusum {
    /// Accumulated rise in excess of the slack, in units of `v` (≥ 0).
    pub rise: f64,
    /// Accumulated fall in excess of the slack, in units of `v` (≥ 0).
    pub fall: f64,
}

/// Time-weighted CUSUM of the derivative of `v` over the points `(t, v)`,
/// taken in the order given: for each step, with `dv/dt` the derivative,
/// `rise = max(0, rise + (dv/dt - slack) * dt)` and symmetrically for `fall`.
/// `(dv/dt - slack) * dt` is `dv - slack * dt`, so no division happens and a
/// step with `dt ≤ 0` only adds its `dv`.
///
/// A sustained rate of change above `slack` (units of `v` per unit of `t`)
/// keeps `rise` growing; noise and slower drifts keep resetting it to zero.
/// Points with a non-finite coordinate are skipped; a statistic that would
/// overflow saturates at `f64::MAX` (and stays there).
pub fn cusum(points: &[(f64, f64)], slack: f64) -> Cusum {
    cusum_of(
        points
            .iter()
            .copied()
            .filter(|(t, v)| t.is_finite() && v.is_finite()),
        slack,
    )
}

/// [`cusum`] over finite points given by an iterator.
pub(crate) fn cusum_of(points: impl Iterator<Item = (f64, f64)>, slack: f64) -> Cusum {
    let mut cusum = CusumRun::new(slack);
    for (t, v) in points {
        cusum.push(t, v);
    }
    cusum.finish()
}

/// [`cusum_of`] one point at a time, for callers walking the points anyway.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CusumRun {
    slack: f64,
    rise: f64,
    fall: f64,
    prev: Option<(f64, f64)>,
}

impl CusumRun {
    pub(crate) fn new(slack: f64) -> Self {
        let slack = if slack.is_finite() {
            positive(slack)
        } else {
            0.0
        };
        Self {
            slack,
            rise: 0.0,
            fall: 0.0,
            prev: None,
        }
    }

    pub(crate) fn push(&mut self, t: f64, v: f64) {
        if let Some((pt, pv)) = self.prev {
            // The steps are computed off the recurrences' dependency chains
            // and clamped finite, so a sum can reach +inf but never meet a
            // -inf: no NaN can arise.
            let dv = (v - pv).clamp(-f64::MAX, f64::MAX);
            let allowance = (self.slack * positive(t - pt)).clamp(0.0, f64::MAX);
            let up = (dv - allowance).clamp(-f64::MAX, f64::MAX);
            let down = (-dv - allowance).clamp(-f64::MAX, f64::MAX);
            self.rise = positive(self.rise + up);
            self.fall = positive(self.fall + down);
        }
        self.prev = Some((t, v));
    }

    /// Saturation is applied once: a statistic that overflowed stays at the
    /// largest finite value.
    pub(crate) fn finish(self) -> Cusum {
        Cusum {
            rise: self.rise.clamp(0.0, f64::MAX),
            fall: self.fall.clamp(0.0, f64::MAX),
        }
    }
}

/// Pearson correlation of `xs` and `ys`, paired by index (the longer one is
/// cut to the length of the shorter); pairs with a non-finite member are
/// skipped. In [-1, 1]; `None` with fewer than two pairs or when either side
/// is constant (correlation is undefined then, not zero).
pub fn pearson(xs: &[f64], ys: &[f64]) -> Option<f64> {
    let pairs = || {
        xs.iter()
            .zip(ys)
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let n = pairs().count();
    if n < 2 {
        return None;
    }
    let (sx, sy) = pairs().fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
    let (xm, ym) = (sx / n as f64, sy / n as f64);
    let (sxx, syy, sxy) = pairs().fold((0.0, 0.0, 0.0), |(sxx, syy, sxy), (x, y)| {
        let (dx, dy) = (x - xm, y - ym);
        (sxx + dx * dx, syy + dy * dy, sxy + dx * dy)
    });
    if !(sxx > 0.0 && syy > 0.0) {
        return None;
    }
    // One square root of the product is exact for perfect lines more often
    // than the product of two roots; the product only overflows for
    // enormous spreads, where the two roots take over.
    let product = sxx * syy;
    let norm = if product.is_finite() {
        product.sqrt()
    } else {
        sxx.sqrt() * syy.sqrt()
    };
    // Rounding can push |r| a hair over 1.
    finite(sxy / norm).map(|r| r.clamp(-1.0, 1.0))
}

/// Pearson correlation over every run of `window` consecutive pairs: element
/// `i` of the result covers pairs `i ..= i + window - 1`. Empty if `window` is
/// below 2 or longer than the shorter input; `None` entries are windows where
/// [`pearson`] is undefined.
pub fn rolling_pearson(xs: &[f64], ys: &[f64], window: usize) -> Vec<Option<f64>> {
    let n = xs.len().min(ys.len());
    if window < 2 || window > n {
        return Vec::new();
    }
    (0..=n - window)
        .map(|i| pearson(&xs[i..i + window], &ys[i..i + window]))
        .collect()
}

/// Quantile `q` in [0, 1] of the finite values, by linear interpolation
/// between closest ranks (type 7 of Hyndman & Fan, the default of R and
/// NumPy): with the values sorted as `x[0..n]` and `h = (n - 1) q`, the result
/// is `x[⌊h⌋] + (h - ⌊h⌋) (x[⌊h⌋ + 1] - x[⌊h⌋])`. `None` if `q` is outside
/// [0, 1] or no value is finite.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    quantiles(values, &[q]).pop().flatten()
}

/// [`quantile`] for several `qs` at once, sorting only once; one entry per
/// element of `qs`.
pub fn quantiles(values: &[f64], qs: &[f64]) -> Vec<Option<f64>> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    qs.iter().map(|&q| sorted_quantile(&sorted, q)).collect()
}

fn sorted_quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor();
    let frac = h - lo;
    // `lo` ≤ n - 1 because q ≤ 1, and the cast truncates an integer value.
    let lo = lo as usize;
    let a = sorted[lo];
    let Some(&b) = sorted.get(lo + 1) else {
        return Some(a);
    };
    if frac == 0.0 || a == b {
        return Some(a);
    }
    let direct = a + frac * (b - a);
    // `b - a` can overflow for values near ±f64::MAX; the weighted form
    // cannot.
    finite(direct).or_else(|| finite((1.0 - frac) * a + frac * b))
}

/// Maps `x` linearly from `[lo, hi]` onto `[0, 1]`, clamping outside: `lo`
/// and below give 0, `hi` and above give 1. NaN gives 0. If `hi ≤ lo` it is a
/// step at `hi`.
pub fn ramp(x: f64, lo: f64, hi: f64) -> f64 {
    if x.is_nan() {
        return 0.0;
    }
    if lo.is_nan() || hi.is_nan() || hi <= lo {
        return if x >= hi { 1.0 } else { 0.0 };
    }
    let r = (x - lo) / (hi - lo);
    // ∞/∞ (an infinite x with infinite bounds) is NaN: call it 0.
    if r.is_nan() { 0.0 } else { r.clamp(0.0, 1.0) }
}

/// Noisy-OR of weights in [0, 1]: `1 - Π (1 - w)`, the probability that at
/// least one of several independent signals is right. Each weight is clamped
/// to [0, 1] first (NaN counts as 0); no weights give 0.
pub fn noisy_or(weights: impl IntoIterator<Item = f64>) -> f64 {
    let none = weights
        .into_iter()
        .map(|w| if w.is_nan() { 0.0 } else { w.clamp(0.0, 1.0) })
        .fold(1.0, |acc, w| acc * (1.0 - w));
    (1.0 - none).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAN: f64 = f64::NAN;
    const INF: f64 = f64::INFINITY;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn mean_and_stddev_by_hand() {
        assert_eq!(mean(&[1.0, 2.0, 3.0, 4.0]), Some(2.5));
        // The classic example: population stddev of this set is exactly 2.
        let set = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_eq!(mean(&set), Some(5.0));
        assert_eq!(stddev(&set), Some(2.0));
    }

    #[test]
    fn mean_and_stddev_edge_cases() {
        assert_eq!(mean(&[]), None);
        assert_eq!(stddev(&[]), None);
        assert_eq!(mean(&[NAN, INF]), None);
        assert_eq!(stddev(&[3.0, 3.0, 3.0]), Some(0.0));
        assert_eq!(mean(&[1.0, NAN, 3.0, -INF]), Some(2.0));
        assert_eq!(stddev(&[1.0, NAN, 3.0]), Some(1.0));
        // Overflow of the sum is reported as "cannot compute", not ∞.
        assert_eq!(mean(&[f64::MAX, f64::MAX]), None);
    }

    #[test]
    fn z_score_by_hand_and_edge_cases() {
        assert_eq!(z_score(13.0, 10.0, 2.0), Some(1.5));
        assert_eq!(z_score(7.0, 10.0, 2.0), Some(-1.5));
        assert_eq!(z_score(10.0, 10.0, 0.0), None);
        assert_eq!(z_score(10.0, 10.0, -1.0), None);
        assert_eq!(z_score(NAN, 10.0, 1.0), None);
        assert_eq!(z_score(1.0, 10.0, NAN), None);
        assert_eq!(z_score(f64::MAX, -f64::MAX, 0.5), None);
    }

    #[test]
    fn ewma_by_hand() {
        // s = 1; s = 0.5·2 + 0.5·1 = 1.5; s = 0.5·3 + 0.5·1.5 = 2.25.
        assert_eq!(ewma(&[1.0, 2.0, 3.0], 0.5), Some(2.25));
        assert_eq!(ewma(&[1.0, 2.0, 3.0], 1.0), Some(3.0));
        let mut avg = Ewma::new(0.25).unwrap();
        assert_eq!(avg.value(), None);
        assert_eq!(avg.update(8.0), Some(8.0));
        assert_eq!(avg.update(NAN), Some(8.0));
        assert_eq!(avg.update(4.0), Some(7.0));
    }

    #[test]
    fn ewma_last_matches_the_fold() {
        for n in [1usize, 2, 3, 4, 5, 7, 8, 9, 60, 61] {
            let xs: Vec<f64> = (0..n).map(|i| ((i * 37) % 11) as f64 - 4.5).collect();
            for alpha in [0.05, 0.3, 0.5, 1.0] {
                let fold = ewma(&xs, alpha).unwrap();
                let fast = ewma_last(xs.iter().copied(), alpha).unwrap();
                assert!(close(fold, fast), "n {n} alpha {alpha}: {fold} vs {fast}");
            }
        }
        assert_eq!(ewma_last(std::iter::empty(), 0.3), None);
        assert_eq!(pow(0.5, 0), 1.0);
        assert_eq!(pow(0.5, 3), 0.125);
        assert_eq!(pow(3.0, 5), 243.0);
    }

    #[test]
    fn ewma_edge_cases() {
        assert_eq!(ewma(&[], 0.5), None);
        assert_eq!(ewma(&[NAN], 0.5), None);
        assert_eq!(ewma(&[5.0; 10], 0.3), Some(5.0));
        assert!(Ewma::new(0.0).is_none());
        assert!(Ewma::new(1.5).is_none());
        assert!(Ewma::new(NAN).is_none());
        assert_eq!(ewma(&[1.0, 2.0], -0.1), None);
    }

    #[test]
    fn slope_by_hand() {
        assert_eq!(slope(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]), Some(2.0));
        // t̄ = 1, v̄ = 7/3; Σ(t-t̄)(v-v̄) = 3, Σ(t-t̄)² = 2.
        assert!(close(
            slope(&[(0.0, 1.0), (1.0, 2.0), (2.0, 4.0)]).unwrap(),
            1.5
        ));
        // Epoch-sized times do not lose precision.
        let t0 = 1.7e12;
        assert!(close(
            slope(&[(t0, 0.0), (t0 + 1000.0, 1.0), (t0 + 2000.0, 2.0)]).unwrap(),
            0.001
        ));
    }

    #[test]
    fn slope_edge_cases() {
        assert_eq!(slope(&[]), None);
        assert_eq!(slope(&[(0.0, 1.0)]), None);
        assert_eq!(slope(&[(1.0, 1.0), (1.0, 5.0)]), None);
        assert_eq!(slope(&[(0.0, 4.0), (1.0, 4.0), (2.0, 4.0)]), Some(0.0));
        assert_eq!(
            slope(&[(0.0, 0.0), (1.0, NAN), (2.0, 2.0), (INF, 1.0)]),
            Some(1.0)
        );
    }

    #[test]
    fn cusum_by_hand() {
        // Rises of 1 per step against a slack of 0.5 per step, then flat.
        let points = [(0.0, 0.0), (1.0, 1.0), (2.0, 2.0), (3.0, 2.0)];
        let c = cusum(&points, 0.5);
        assert_eq!(c.rise, 0.5);
        assert_eq!(c.fall, 0.0);
        let falling: Vec<_> = points.iter().map(|&(t, v)| (t, -v)).collect();
        assert_eq!(cusum(&falling, 0.5).fall, 0.5);
        // A rate below the slack never accumulates.
        let slow: Vec<_> = (0..100)
            .map(|i| (f64::from(i), 0.1 * f64::from(i)))
            .collect();
        assert_eq!(cusum(&slow, 0.2).rise, 0.0);
    }

    #[test]
    fn cusum_edge_cases() {
        assert_eq!(cusum(&[], 0.1), Cusum::default());
        assert_eq!(cusum(&[(0.0, 5.0)], 0.1), Cusum::default());
        assert_eq!(
            cusum(&[(0.0, 5.0), (1.0, 5.0), (2.0, 5.0)], 0.0),
            Cusum::default()
        );
        // Saturates rather than overflowing.
        let huge = [
            (0.0, -f64::MAX),
            (1.0, f64::MAX),
            (2.0, -f64::MAX),
            (3.0, f64::MAX),
        ];
        let c = cusum(&huge, NAN);
        assert!(c.rise.is_finite() && c.fall.is_finite());
        // A time step backwards grants no allowance.
        assert_eq!(cusum(&[(5.0, 0.0), (4.0, 1.0)], 10.0).rise, 1.0);
    }

    #[test]
    fn pearson_by_hand() {
        assert_eq!(pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]), Some(1.0));
        assert_eq!(pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        // x̄ = ȳ = 2.5; Σdxdy = 4, Σdx² = Σdy² = 5.
        assert!(close(
            pearson(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]).unwrap(),
            0.8
        ));
    }

    #[test]
    fn pearson_edge_cases() {
        assert_eq!(pearson(&[], &[]), None);
        assert_eq!(pearson(&[1.0], &[1.0]), None);
        assert_eq!(pearson(&[1.0, 2.0, 3.0], &[7.0, 7.0, 7.0]), None);
        // Unequal lengths: the extra tail is ignored.
        assert_eq!(
            pearson(&[1.0, 2.0, 3.0, 100.0], &[1.0, 2.0, 3.0]),
            Some(1.0)
        );
        // The NaN pair is dropped, leaving a perfect line.
        assert_eq!(
            pearson(&[1.0, NAN, 3.0, 4.0], &[2.0, 0.0, 6.0, 8.0]),
            Some(1.0)
        );
    }

    #[test]
    fn rolling_pearson_windows() {
        let xs = [1.0, 2.0, 3.0, 4.0, 5.0];
        let ys = [1.0, 2.0, 3.0, 2.0, 1.0];
        let r = rolling_pearson(&xs, &ys, 3);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0], Some(1.0));
        assert_eq!(r[1], Some(0.0));
        assert_eq!(r[2], Some(-1.0));
        assert!(rolling_pearson(&xs, &ys, 1).is_empty());
        assert!(rolling_pearson(&xs, &ys, 6).is_empty());
        assert_eq!(rolling_pearson(&xs, &[2.0; 5], 2), vec![None; 4]);
    }

    #[test]
    fn quantile_by_hand() {
        let v = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&v, 0.25), Some(1.75));
        assert_eq!(quantile(&v, 0.5), Some(2.5));
        assert_eq!(quantile(&v, 1.0), Some(4.0));
        assert_eq!(
            quantiles(&v, &[0.5, 0.9, 2.0]),
            vec![Some(2.5), Some(3.7), None]
        );
    }

    #[test]
    fn quantile_edge_cases() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[NAN, INF], 0.5), None);
        assert_eq!(quantile(&[10.0], 0.3), Some(10.0));
        assert_eq!(quantile(&[3.0; 7], 0.42), Some(3.0));
        assert_eq!(quantile(&[1.0, 2.0], -0.1), None);
        assert_eq!(quantile(&[1.0, 2.0], NAN), None);
        let q = quantile(&[-f64::MAX, f64::MAX], 0.5).unwrap();
        assert!(q.is_finite() && q.abs() < 1e300);
    }

    #[test]
    fn ramp_and_noisy_or() {
        assert_eq!(ramp(2.0, 2.0, 6.0), 0.0);
        assert_eq!(ramp(4.0, 2.0, 6.0), 0.5);
        assert_eq!(ramp(9.0, 2.0, 6.0), 1.0);
        assert_eq!(ramp(NAN, 0.0, 1.0), 0.0);
        assert_eq!(ramp(INF, 0.0, 1.0), 1.0);
        assert_eq!(ramp(INF, -INF, INF), 0.0);
        assert_eq!(ramp(0.5, 1.0, 1.0), 0.0);
        assert_eq!(ramp(1.0, 1.0, 1.0), 1.0);
        assert_eq!(noisy_or([]), 0.0);
        assert_eq!(noisy_or([0.5, 0.5]), 0.75);
        assert_eq!(noisy_or([0.2, 1.0]), 1.0);
        assert_eq!(noisy_or([NAN, -3.0, 0.5]), 0.5);
    }
}
