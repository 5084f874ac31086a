//! The statistics the sampling tests judge with: a normal-approximation
//! binomial bound and Pearson's chi-square goodness of fit of a sample
//! against the traffic it was drawn from, at the 0.05 level.

/// Two-sided 95 % standard normal quantile.
pub const Z_95: f64 = 1.959_964;

/// One-sided 0.05 upper standard normal quantile (for Wilson–Hilferty).
const Z_UPPER_05: f64 = 1.644_854;

/// Chi-square upper 0.05 critical values for 1..=30 degrees of freedom.
const CHI_SQUARE_05: [f64; 30] = [
    3.841, 5.991, 7.815, 9.488, 11.070, 12.592, 14.067, 15.507, 16.919, 18.307, 19.675, 21.026,
    22.362, 23.685, 24.996, 26.296, 27.587, 28.869, 30.144, 31.410, 32.671, 33.924, 35.172, 36.415,
    37.652, 38.885, 40.113, 41.337, 42.557, 43.773,
];

/// Bounds `[lo, hi]` on the share of successes in `n` Bernoulli(`p`) trials
/// that hold with the two-sided normal quantile `z` (`Z_95`: 95 %).
pub fn binomial_share_bounds(n: u64, p: f64, z: f64) -> (f64, f64) {
    let sigma = (p * (1.0 - p) / n as f64).sqrt();
    (p - z * sigma, p + z * sigma)
}

/// Upper 0.05 critical value of chi-square with `df` degrees of freedom:
/// the table up to 30, Wilson–Hilferty above (error < 0.1 % there).
///
/// # Panics
/// If `df` is 0.
pub fn chi_square_critical_05(df: usize) -> f64 {
    assert!(df > 0, "chi-square needs at least one degree of freedom");
    if let Some(value) = CHI_SQUARE_05.get(df - 1) {
        return *value;
    }
    wilson_hilferty(df as f64, Z_UPPER_05)
}

fn wilson_hilferty(k: f64, z: f64) -> f64 {
    let a = 2.0 / (9.0 * k);
    k * (1.0 - a + z * a.sqrt()).powi(3)
}

/// A chi-square goodness-of-fit result.
#[derive(Debug, Clone, PartialEq)]
pub struct ChiSquare {
    /// Pearson's statistic.
    pub statistic: f64,
    /// Degrees of freedom (pooled bins − 1).
    pub df: usize,
    /// The 0.05 critical value for `df`.
    pub critical: f64,
    /// Bins after pooling those with an expected count below 5.
    pub bins: usize,
}

impl ChiSquare {
    /// Whether equal distributions are rejected at the 0.05 level.
    pub fn rejects(&self) -> bool {
        self.statistic > self.critical
    }
}

/// Tests whether `sampled` (counts per bin of a sample) is distributed as
/// `full` (counts per bin of the traffic it was drawn from): the expected
/// count of bin i is `n_sampled · full_i / n_full`. Adjacent bins are
/// pooled until each expects at least 5, as the approximation needs.
///
/// # Panics
/// If the slices differ in length, or fewer than two bins remain.
pub fn goodness_of_fit(sampled: &[u64], full: &[u64]) -> ChiSquare {
    assert_eq!(sampled.len(), full.len(), "bins differ");
    let n_sampled: u64 = sampled.iter().sum();
    let n_full: u64 = full.iter().sum();
    let mut pooled: Vec<(f64, f64)> = Vec::new(); // (observed, expected)
    let mut current = (0.0, 0.0);
    for (s, f) in sampled.iter().zip(full) {
        current.0 += *s as f64;
        current.1 += n_sampled as f64 * *f as f64 / n_full as f64;
        if current.1 >= 5.0 {
            pooled.push(current);
            current = (0.0, 0.0);
        }
    }
    if current.1 > 0.0 || current.0 > 0.0 {
        match pooled.last_mut() {
            Some(last) => {
                last.0 += current.0;
                last.1 += current.1;
            }
            None => pooled.push(current),
        }
    }
    assert!(
        pooled.len() >= 2,
        "too few samples for a chi-square test: {n_sampled} in {} bins",
        sampled.len()
    );
    let statistic = pooled
        .iter()
        .map(|(observed, expected)| (observed - expected).powi(2) / expected)
        .sum();
    let df = pooled.len() - 1;
    ChiSquare {
        statistic,
        df,
        critical: chi_square_critical_05(df),
        bins: pooled.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_hilferty_agrees_with_the_table() {
        for df in 10..=30 {
            let approx = wilson_hilferty(df as f64, Z_UPPER_05);
            let table = CHI_SQUARE_05[df - 1];
            assert!(
                (approx - table).abs() / table < 0.002,
                "df {df}: {approx} vs {table}"
            );
        }
        // Published values beyond the table.
        assert!((chi_square_critical_05(100) - 124.342).abs() < 0.05);
        assert!((chi_square_critical_05(199) - 232.912).abs() < 0.1);
    }

    #[test]
    fn goodness_of_fit_accepts_a_proportional_sample_and_rejects_a_skewed_one() {
        let full = [1000, 2000, 3000, 4000];
        let fit = goodness_of_fit(&[10, 20, 30, 40], &full);
        assert_eq!(fit.statistic, 0.0);
        assert_eq!(fit.df, 3);
        assert!(!fit.rejects());
        let skewed = goodness_of_fit(&[40, 30, 20, 10], &full);
        assert!(skewed.rejects(), "{skewed:?}");
    }

    #[test]
    fn goodness_of_fit_pools_sparse_bins() {
        // Expected counts 2, 2, 2, 2, 12: the first three pool into 6, the
        // fourth (2) joins the last pool.
        let fit = goodness_of_fit(&[2, 2, 2, 2, 12], &[100, 100, 100, 100, 600]);
        assert_eq!(fit.bins, 2);
        assert_eq!(fit.df, 1);
    }

    #[test]
    fn binomial_bounds_shrink_with_n() {
        let (lo, hi) = binomial_share_bounds(100_000, 0.02, Z_95);
        assert!((hi - 0.02 - 0.000_868).abs() < 0.000_01, "{hi}");
        assert!((0.02 - lo - 0.000_868).abs() < 0.000_01, "{lo}");
    }
}
