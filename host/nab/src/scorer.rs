//! The NAB scoring rules, as written in the tuning split's README:
//!
//! - a row is a detection when its anomaly score is at or above the
//!   threshold; the first `min(⌊0.15 · rows⌋, 750)` rows are a probation
//!   period and never count;
//! - `scaled(y) = 2 · sigmoid(−5y) − 1`, and −1 for `y > 3`;
//! - in a window of `w` rows with right edge `r`, row `i` sits at
//!   `y = −(r − i + 1) / w`; only the earliest detection of a window counts,
//!   for `A_tp · scaled(y) / scaled(−1)` (the left edge scores `A_tp`); a
//!   window without detection scores `−A_fn`;
//! - a detection outside every window is a false positive: after a window
//!   (right edge `p`, width `w`) it scores `A_fp · scaled(|p − i| / (w − 1))`,
//!   before any window `−A_fp`;
//! - the corpus score is normalised to `100 · (raw − null) / (perfect −
//!   null)`, where the null detector never detects and the perfect one
//!   detects exactly at every window's left edge;
//! - the optimised threshold of a profile is the one that maximises the
//!   corpus score.

use serde::Serialize;

use crate::{Error, Result};

/// Weights of a NAB application profile.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Profile {
    /// Profile name as NAB spells it.
    pub name: &'static str,
    /// Weight of a true positive.
    pub a_tp: f64,
    /// Weight of a false positive.
    pub a_fp: f64,
    /// Weight of a false negative (a missed window).
    pub a_fn: f64,
}

/// NAB's three profiles.
pub const PROFILES: [Profile; 3] = [
    Profile {
        name: "standard",
        a_tp: 1.0,
        a_fp: 0.11,
        a_fn: 1.0,
    },
    Profile {
        name: "reward_low_FP_rate",
        a_tp: 1.0,
        a_fp: 0.22,
        a_fn: 1.0,
    },
    Profile {
        name: "reward_low_FN_rate",
        a_tp: 1.0,
        a_fp: 0.11,
        a_fn: 2.0,
    },
];

/// Rows of the probation period of a file of `rows` rows.
pub fn probation(rows: usize) -> usize {
    // ⌊0.15 · rows⌋ computed exactly in integers.
    (rows * 15 / 100).min(750)
}

/// NAB's scaled sigmoid.
pub fn scaled_sigmoid(y: f64) -> f64 {
    if y > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * y).exp()) - 1.0
    }
}

/// What a detection at one row is worth, per unit of the profile weight.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Row {
    /// In probation: never counts.
    Probation,
    /// Inside window `window`; a detection here, if the window's earliest,
    /// is worth `A_tp · unit`.
    Window { window: usize, unit: f64 },
    /// Outside every window: a detection is worth `A_fp · unit` (≤ 0).
    Outside { unit: f64 },
}

/// One data file's labels turned into rows.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelledFile {
    /// Path relative to the corpus, e.g. `realTweets/Twitter_volume_FB.csv`.
    pub name: String,
    /// Windows as inclusive row ranges, in order.
    pub windows: Vec<(usize, usize)>,
    rows: Vec<Row>,
}

impl LabelledFile {
    /// Maps labelled windows (inclusive, in milliseconds) onto the rows of
    /// a file with the given timestamps. A window containing no row is
    /// dropped (it cannot be detected by anyone, perfect included).
    pub fn new(name: &str, timestamps_ms: &[i64], windows_ms: &[(i64, i64)]) -> Self {
        let mut windows: Vec<(usize, usize)> = windows_ms
            .iter()
            .filter_map(|&(start, end)| {
                let left = timestamps_ms.partition_point(|&t| t < start);
                let right = timestamps_ms.partition_point(|&t| t <= end);
                (right > left).then(|| (left, right - 1))
            })
            .collect();
        windows.sort_unstable();
        Self::from_row_windows(name, timestamps_ms.len(), windows)
    }

    /// A file of `rows` rows whose windows are given as inclusive row
    /// ranges (sorted, not overlapping).
    pub fn from_row_windows(name: &str, rows: usize, windows: Vec<(usize, usize)>) -> Self {
        let skip = probation(rows);
        let tp_norm = scaled_sigmoid(-1.0);
        let mut kinds = Vec::with_capacity(rows);
        let mut next = 0; // index of the first window not yet passed
        for i in 0..rows {
            while next < windows.len() && windows[next].1 < i {
                next += 1;
            }
            let kind = if i < skip {
                Row::Probation
            } else if let Some(&(left, right)) = windows.get(next).filter(|w| w.0 <= i) {
                let width = (right - left + 1) as f64;
                let y = -((right - i + 1) as f64) / width;
                Row::Window {
                    window: next,
                    unit: scaled_sigmoid(y) / tp_norm,
                }
            } else if let Some(&(left, right)) = next.checked_sub(1).and_then(|p| windows.get(p)) {
                // A one-row window has w − 1 = 0: treat as width 1 so that
                // the position stays finite.
                let span = ((right - left) as f64).max(1.0);
                Row::Outside {
                    unit: scaled_sigmoid((i - right) as f64 / span),
                }
            } else {
                Row::Outside { unit: -1.0 }
            };
            kinds.push(kind);
        }
        Self {
            name: name.to_owned(),
            windows,
            rows: kinds,
        }
    }

    /// Rows in the file.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the file has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Rows of the probation period.
    pub fn probation(&self) -> usize {
        probation(self.rows.len())
    }
}

/// Counts and raw score of one file at one threshold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct FileScore {
    /// Raw NAB score.
    pub raw: f64,
    /// Windows detected.
    pub tp: usize,
    /// Detections outside every window.
    pub fp: usize,
    /// Windows missed.
    pub fn_: usize,
}

/// A file's labels and the detector's anomaly scores for it.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoredFile {
    /// Labels.
    pub labels: LabelledFile,
    /// One anomaly score per row.
    pub scores: Vec<f64>,
}

impl ScoredFile {
    /// Pairs labels and scores.
    ///
    /// # Errors
    ///
    /// [`Error::Mismatch`] if there is not one score per row.
    pub fn new(labels: LabelledFile, scores: Vec<f64>) -> Result<Self> {
        if scores.len() != labels.len() {
            return Err(Error::Mismatch {
                file: labels.name.clone(),
                scores: scores.len(),
                rows: labels.len(),
            });
        }
        Ok(Self { labels, scores })
    }

    /// Scores the file at `threshold` under `profile`.
    pub fn score(&self, profile: &Profile, threshold: f64) -> FileScore {
        let mut earliest: Vec<Option<f64>> = vec![None; self.labels.windows.len()];
        let mut out = FileScore::default();
        for (row, &s) in self.labels.rows.iter().zip(&self.scores) {
            // A NaN score is never a detection.
            let detected = s >= threshold;
            if !detected {
                continue;
            }
            match *row {
                Row::Probation => {}
                Row::Window { window, unit } => {
                    // Rows are walked in order: the first is the earliest.
                    earliest[window].get_or_insert(unit);
                }
                Row::Outside { unit } => {
                    out.fp += 1;
                    out.raw += profile.a_fp * unit;
                }
            }
        }
        for e in earliest {
            match e {
                Some(unit) => {
                    out.tp += 1;
                    out.raw += profile.a_tp * unit;
                }
                None => {
                    out.fn_ += 1;
                    out.raw -= profile.a_fn;
                }
            }
        }
        out
    }
}

/// The best threshold of a profile over a corpus.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Scored {
    /// Threshold (a row is a detection when its score is at or above it).
    pub threshold: f64,
    /// Raw corpus score.
    pub raw: f64,
    /// Normalised corpus score (null 0, perfect 100).
    pub score: f64,
}

/// A profile's result over a corpus.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ProfileScore {
    /// The profile.
    pub profile: Profile,
    /// Raw score of the null detector.
    pub null: f64,
    /// Raw score of the perfect detector.
    pub perfect: f64,
    /// At the threshold maximising the corpus score.
    pub optimised: Scored,
    /// At the threshold fixed in advance.
    pub fixed: Scored,
}

/// Every scored file of a corpus.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Corpus {
    /// The files.
    pub files: Vec<ScoredFile>,
}

impl Corpus {
    /// Windows in the corpus.
    pub fn windows(&self) -> usize {
        self.files.iter().map(|f| f.labels.windows.len()).sum()
    }

    /// Raw score of the null detector.
    pub fn null(&self, profile: &Profile) -> f64 {
        -profile.a_fn * self.windows() as f64
    }

    /// Raw score of the perfect detector.
    pub fn perfect(&self, profile: &Profile) -> f64 {
        profile.a_tp * self.windows() as f64
    }

    /// `raw` normalised: 0 for the null detector, 100 for the perfect one
    /// (0 for a corpus without windows, where both coincide).
    pub fn normalise(&self, profile: &Profile, raw: f64) -> f64 {
        let (null, perfect) = (self.null(profile), self.perfect(profile));
        if perfect > null {
            100.0 * (raw - null) / (perfect - null)
        } else {
            0.0
        }
    }

    /// Raw corpus score at `threshold`.
    pub fn raw(&self, profile: &Profile, threshold: f64) -> f64 {
        self.files
            .iter()
            .map(|f| f.score(profile, threshold).raw)
            .sum()
    }

    /// The corpus score at `threshold`.
    pub fn at(&self, profile: &Profile, threshold: f64) -> Scored {
        let raw = self.raw(profile, threshold);
        Scored {
            threshold,
            raw,
            score: self.normalise(profile, raw),
        }
    }

    /// The threshold maximising the corpus score, found in one sweep: every
    /// scored row is sorted by decreasing anomaly score and the threshold
    /// is lowered through each distinct value, updating the corpus score by
    /// what the newly detected rows change (a false positive's cost, or a
    /// window's earliest detection moving earlier). Ties go to the higher
    /// threshold. If no threshold beats the null detector, the threshold is
    /// just above the highest score.
    pub fn optimise(&self, profile: &Profile) -> Scored {
        // (score, file, row) of every row that can count.
        let mut rows: Vec<(f64, usize, usize)> = Vec::new();
        let mut first_window = Vec::with_capacity(self.files.len());
        let mut windows = 0;
        for (fi, f) in self.files.iter().enumerate() {
            first_window.push(windows);
            windows += f.labels.windows.len();
            for (ri, (row, &s)) in f.labels.rows.iter().zip(&f.scores).enumerate() {
                if *row != Row::Probation && !s.is_nan() {
                    rows.push((s, fi, ri));
                }
            }
        }
        rows.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        let max = rows.first().map_or(1.0, |r| r.0);
        let mut earliest: Vec<Option<(usize, f64)>> = vec![None; windows];
        let mut raw = self.null(profile);
        let mut best = Scored {
            threshold: if max.is_finite() { max.next_up() } else { max },
            raw,
            score: 0.0,
        };
        let mut i = 0;
        while i < rows.len() {
            let threshold = rows[i].0;
            while i < rows.len() && rows[i].0 == threshold {
                let (_, fi, ri) = rows[i];
                match self.files[fi].labels.rows[ri] {
                    Row::Probation => {}
                    Row::Window { window, unit } => {
                        let slot = &mut earliest[first_window[fi] + window];
                        match *slot {
                            None => {
                                raw += profile.a_fn + profile.a_tp * unit;
                                *slot = Some((ri, unit));
                            }
                            Some((r, old)) if ri < r => {
                                raw += profile.a_tp * (unit - old);
                                *slot = Some((ri, unit));
                            }
                            Some(_) => {}
                        }
                    }
                    Row::Outside { unit } => raw += profile.a_fp * unit,
                }
                i += 1;
            }
            if raw > best.raw {
                best = Scored {
                    threshold,
                    raw,
                    score: 0.0,
                };
            }
        }
        best.score = self.normalise(profile, best.raw);
        best
    }

    /// The result of `profile`: optimised, and at `fixed_threshold`.
    pub fn profile_score(&self, profile: &Profile, fixed_threshold: f64) -> ProfileScore {
        ProfileScore {
            profile: *profile,
            null: self.null(profile),
            perfect: self.perfect(profile),
            optimised: self.optimise(profile),
            fixed: self.at(profile, fixed_threshold),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STANDARD: Profile = PROFILES[0];
    const LOW_FP: Profile = PROFILES[1];
    const LOW_FN: Profile = PROFILES[2];

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// 1000 rows (probation 150), windows at rows 300..=399 and 700..=799.
    fn labels() -> LabelledFile {
        LabelledFile::from_row_windows("g/f.csv", 1000, vec![(300, 399), (700, 799)])
    }

    fn with_detections(rows: &[usize]) -> ScoredFile {
        let mut scores = vec![0.0; 1000];
        for &r in rows {
            scores[r] = 1.0;
        }
        ScoredFile::new(labels(), scores).unwrap()
    }

    fn corpus(files: Vec<ScoredFile>) -> Corpus {
        Corpus { files }
    }

    #[test]
    fn probation_length() {
        assert_eq!(probation(1000), 150);
        assert_eq!(probation(4032), 604);
        assert_eq!(probation(15_902), 750);
        assert_eq!(probation(6), 0);
    }

    #[test]
    fn scaled_sigmoid_values() {
        assert!(close(scaled_sigmoid(0.0), 0.0));
        assert!(close(
            scaled_sigmoid(-1.0),
            2.0 / (1.0 + (-5.0f64).exp()) - 1.0
        ));
        assert!(scaled_sigmoid(-1.0) > 0.98);
        assert!(scaled_sigmoid(1.0) < -0.98);
        assert_eq!(scaled_sigmoid(3.5), -1.0);
    }

    #[test]
    fn null_detector_scores_zero_and_perfect_one_hundred() {
        for profile in &PROFILES {
            let null = corpus(vec![with_detections(&[])]);
            let o = null.at(profile, 0.5);
            assert!(close(o.score, 0.0), "{}", profile.name);
            assert!(close(o.raw, -2.0 * profile.a_fn));
            let perfect = corpus(vec![with_detections(&[300, 700])]);
            assert!(
                close(perfect.at(profile, 0.5).score, 100.0),
                "{}",
                profile.name
            );
            assert!(close(perfect.optimise(profile).score, 100.0));
        }
    }

    #[test]
    fn probation_rows_never_count() {
        // A detection in probation would be a false positive before any
        // window; it scores nothing.
        let f = with_detections(&[0, 149]);
        assert_eq!(
            f.score(&STANDARD, 0.5),
            with_detections(&[]).score(&STANDARD, 0.5)
        );
        let fp = with_detections(&[150]).score(&STANDARD, 0.5);
        assert_eq!(fp.fp, 1);
        // A window inside probation cannot be detected.
        let early = LabelledFile::from_row_windows("e.csv", 1000, vec![(100, 160)]);
        let mut scores = vec![0.0; 1000];
        scores[100] = 1.0;
        let s = ScoredFile::new(early, scores)
            .unwrap()
            .score(&STANDARD, 0.5);
        assert_eq!((s.tp, s.fn_), (0, 1));
    }

    #[test]
    fn only_the_earliest_detection_of_a_window_counts() {
        let left = with_detections(&[300]).score(&STANDARD, 0.5);
        let left_and_more = with_detections(&[300, 350, 399]).score(&STANDARD, 0.5);
        assert_eq!(left.raw, left_and_more.raw);
        assert_eq!((left_and_more.tp, left_and_more.fp), (1, 0));
        // Left edge: A_tp; second window missed: −A_fn.
        assert!(close(left.raw, 1.0 - 1.0));
        // The middle of a window scores scaled(−0.5)/scaled(−1) … and the
        // right edge close to 0.
        let middle = with_detections(&[350]).score(&STANDARD, 0.5).raw + 1.0;
        assert!(close(middle, scaled_sigmoid(-0.5) / scaled_sigmoid(-1.0)));
        let right = with_detections(&[399]).score(&STANDARD, 0.5).raw + 1.0;
        assert!(close(right, scaled_sigmoid(-0.01) / scaled_sigmoid(-1.0)));
        assert!(right > 0.0 && right < 0.03);
    }

    #[test]
    fn false_positives_before_any_window_cost_the_full_weight() {
        let s = with_detections(&[200, 250]).score(&STANDARD, 0.5);
        assert_eq!(s.fp, 2);
        assert!(close(s.raw, -2.0 * 0.11 - 2.0));
    }

    #[test]
    fn false_positives_after_a_window_cost_by_distance() {
        // Window 300..=399 has width 100: w − 1 = 99.
        let base = 1.0 - 1.0; // first window hit at its left edge, second missed
        let near = with_detections(&[300, 400]).score(&STANDARD, 0.5).raw - base;
        assert!(close(near, 0.11 * scaled_sigmoid(1.0 / 99.0)));
        assert!(near < 0.0 && near > -0.11 * 0.03);
        let far = with_detections(&[300, 699]).score(&STANDARD, 0.5).raw - base;
        assert!(close(far, -0.11));
        let mid = with_detections(&[300, 399 + 99]).score(&STANDARD, 0.5).raw - base;
        assert!(close(mid, 0.11 * scaled_sigmoid(1.0)));
        // After the last window too.
        let tail = with_detections(&[300, 700, 850]).score(&STANDARD, 0.5);
        assert_eq!(tail.fp, 1);
        assert!(close(tail.raw, 2.0 + 0.11 * scaled_sigmoid(51.0 / 99.0)));
    }

    #[test]
    fn profiles_weigh_false_positives_and_negatives() {
        // One FP before the windows, one window hit at its left edge, one
        // missed.
        let f = with_detections(&[200, 300]);
        assert!(close(f.score(&STANDARD, 0.5).raw, -0.11 + 1.0 - 1.0));
        assert!(close(f.score(&LOW_FP, 0.5).raw, -0.22 + 1.0 - 1.0));
        assert!(close(f.score(&LOW_FN, 0.5).raw, -0.11 + 1.0 - 2.0));
        let c = corpus(vec![f]);
        // Normalisation: (raw − null) / (perfect − null).
        assert!(close(
            c.at(&STANDARD, 0.5).score,
            100.0 * (-0.11 + 2.0) / 4.0
        ));
        assert!(close(c.at(&LOW_FP, 0.5).score, 100.0 * (-0.22 + 2.0) / 4.0));
        assert!(close(c.at(&LOW_FN, 0.5).score, 100.0 * (-1.11 + 4.0) / 6.0));
    }

    #[test]
    fn windows_map_from_timestamps() {
        let ts: Vec<i64> = (0..10).map(|i| i * 100).collect();
        let f = LabelledFile::new("x.csv", &ts, &[(250, 500), (5_000, 6_000), (0, 0)]);
        // (0, 0) covers row 0; (250, 500) rows 3..=5; the last covers nothing.
        assert_eq!(f.windows, vec![(0, 0), (3, 5)]);
    }

    #[test]
    fn optimised_threshold_matches_a_brute_force_search() {
        // Two files, scores made up so that the best threshold is interior.
        let mut a = vec![0.0; 1000];
        a[200] = 0.9; // FP before windows
        a[320] = 0.6; // TP
        a[330] = 0.95; // later TP, but higher
        a[710] = 0.4; // TP in the second window
        a[900] = 0.3; // FP after
        let mut b = vec![0.1; 1000];
        b[500] = 0.7;
        b[301] = 0.5;
        let c = corpus(vec![
            ScoredFile::new(labels(), a).unwrap(),
            ScoredFile::new(labels(), b).unwrap(),
        ]);
        for profile in &PROFILES {
            let best = c.optimise(profile);
            let mut candidates: Vec<f64> = c
                .files
                .iter()
                .flat_map(|f| f.scores.iter().copied())
                .collect();
            candidates.push(2.0);
            let brute = candidates
                .iter()
                .map(|&t| c.raw(profile, t))
                .fold(f64::NEG_INFINITY, f64::max);
            assert!(close(best.raw, brute), "{}", profile.name);
            assert!(close(c.raw(profile, best.threshold), best.raw));
            assert!(close(best.score, c.normalise(profile, brute)));
        }
    }

    #[test]
    fn optimum_of_a_useless_detector_is_the_null_score() {
        let mut s = vec![0.0; 1000];
        s[200] = 0.8; // only false positives
        let c = corpus(vec![ScoredFile::new(labels(), s).unwrap()]);
        let best = c.optimise(&STANDARD);
        assert!(best.threshold > 0.8);
        assert_eq!(best.score, 0.0);
    }

    proptest::proptest! {
        /// The one-sweep optimum is the brute-force maximum over every
        /// distinct score, whatever the scores and windows.
        #[test]
        fn sweep_matches_brute_force(
            files in proptest::collection::vec(
                (
                    proptest::collection::vec(0u8..8, 40..120),
                    proptest::collection::vec((0usize..100, 1usize..20), 0..4),
                ),
                1..4,
            )
        ) {
            let files: Vec<ScoredFile> = files
                .into_iter()
                .enumerate()
                .map(|(i, (levels, raw_windows))| {
                    let rows = levels.len();
                    // Sorted, non-overlapping windows inside the file.
                    let mut windows = Vec::new();
                    let mut next_free = 0;
                    let mut starts = raw_windows;
                    starts.sort_unstable();
                    for (start, width) in starts {
                        let left = start.max(next_free);
                        let right = (left + width).min(rows - 1);
                        if left <= right {
                            windows.push((left, right));
                            next_free = right + 2;
                        }
                    }
                    let labels = LabelledFile::from_row_windows(&format!("f{i}"), rows, windows);
                    let scores = levels.iter().map(|&l| f64::from(l) / 7.0).collect();
                    ScoredFile::new(labels, scores).unwrap()
                })
                .collect();
            let c = corpus(files);
            for profile in &PROFILES {
                let best = c.optimise(profile);
                let brute = (0..=8)
                    .map(|l| c.raw(profile, f64::from(l) / 7.0))
                    .fold(f64::NEG_INFINITY, f64::max);
                proptest::prop_assert!((best.raw - brute).abs() < 1e-9);
                proptest::prop_assert!((c.raw(profile, best.threshold) - best.raw).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn scores_must_match_rows() {
        assert!(matches!(
            ScoredFile::new(labels(), vec![0.0; 3]),
            Err(Error::Mismatch { .. })
        ));
    }
}
