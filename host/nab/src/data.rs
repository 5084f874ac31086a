//! The NAB file formats: data files (`timestamp,value`), result files
//! (`timestamp,value,anomaly_score`) and the labels
//! (`combined_windows.json`: `{"<group>/<name>.csv": [[start, end], ...]}`).
//! Timestamps are `YYYY-MM-DD HH:MM:SS` with optional fractional seconds,
//! read as UTC.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// One NAB data file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DataFile {
    /// Timestamps as written in the file, one per row.
    pub timestamps: Vec<String>,
    /// The same, in milliseconds since the Unix epoch.
    pub timestamps_ms: Vec<i64>,
    /// Values as written in the file (echoed into the results unchanged).
    pub raw_values: Vec<String>,
    /// Values, one per row.
    pub values: Vec<f64>,
}

impl DataFile {
    /// Rows in the file.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the file has no rows.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Labelled anomaly windows per data file, keyed by the file's path
/// relative to the data directory with `/` separators; each window is
/// `(start_ms, end_ms)`, both inclusive.
pub type Labels = BTreeMap<String, Vec<(i64, i64)>>;

/// Parses a NAB timestamp (`YYYY-MM-DD HH:MM:SS[.f…]`, also with a `T`) to
/// milliseconds since the Unix epoch, or `None` if malformed.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, time) = text.split_once([' ', 'T'])?;
    let mut d = date.splitn(3, '-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    let (hms, frac) = match time.split_once('.') {
        Some((hms, frac)) => (hms, frac),
        None => (time, ""),
    };
    let mut t = hms.splitn(3, ':');
    let hour: i64 = t.next()?.parse().ok()?;
    let minute: i64 = t.next()?.parse().ok()?;
    let second: i64 = t.next().unwrap_or("0").parse().ok()?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || !(0..24).contains(&hour)
        || !(0..60).contains(&minute)
        || !(0..=60).contains(&second)
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // Milliseconds: the first three fractional digits, right-padded.
    let millis = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0'));
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard
/// Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| Error::Io {
            path: parent.to_owned(),
            source,
        })?;
    }
    std::fs::write(path, text).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}

/// Reads a NAB data file: a header naming `timestamp` and `value`, then one
/// row per step.
///
/// # Errors
///
/// [`Error::Io`] if it cannot be read, [`Error::Format`] for a missing
/// column, a bad timestamp or value, or timestamps that go backwards.
pub fn read_data(path: &Path) -> Result<DataFile> {
    let text = read(path)?;
    let bad = |line: usize, message: String| Error::Format {
        path: path.to_owned(),
        line,
        message,
    };
    let mut lines = text.lines().enumerate();
    let (_, header) = lines
        .next()
        .ok_or_else(|| bad(1, "empty file, expected a header".into()))?;
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    let column = |name: &str| {
        columns
            .iter()
            .position(|c| *c == name)
            .ok_or_else(|| bad(1, format!("no `{name}` column in `{header}`")))
    };
    let (ti, vi) = (column("timestamp")?, column("value")?);
    let mut file = DataFile::default();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let (Some(ts), Some(v)) = (fields.get(ti), fields.get(vi)) else {
            return Err(bad(i + 1, format!("expected {} fields", columns.len())));
        };
        let ms = parse_timestamp(ts).ok_or_else(|| bad(i + 1, format!("bad timestamp `{ts}`")))?;
        let value: f64 = v
            .parse()
            .ok()
            .filter(|x: &f64| x.is_finite())
            .ok_or_else(|| bad(i + 1, format!("bad value `{v}`")))?;
        if file.timestamps_ms.last().is_some_and(|&last| ms < last) {
            return Err(bad(i + 1, format!("timestamp `{ts}` goes backwards")));
        }
        file.timestamps.push((*ts).to_owned());
        file.timestamps_ms.push(ms);
        file.raw_values.push((*v).to_owned());
        file.values.push(value);
    }
    Ok(file)
}

/// Writes a NAB result file: `timestamp,value,anomaly_score`, one row per
/// row of `data`.
///
/// # Errors
///
/// [`Error::Mismatch`] if `scores` and `data` differ in length,
/// [`Error::Io`] if the file cannot be written (parents are created).
pub fn write_results(path: &Path, data: &DataFile, scores: &[f64]) -> Result<()> {
    if scores.len() != data.len() {
        return Err(Error::Mismatch {
            file: path.display().to_string(),
            scores: scores.len(),
            rows: data.len(),
        });
    }
    let mut text = String::with_capacity(48 * (data.len() + 1));
    text.push_str("timestamp,value,anomaly_score\n");
    for ((ts, v), s) in data.timestamps.iter().zip(&data.raw_values).zip(scores) {
        let _ = writeln!(text, "{ts},{v},{s}");
    }
    write(path, &text)
}

/// Reads `combined_windows.json`.
///
/// # Errors
///
/// [`Error::Io`], [`Error::Labels`] for bad JSON, [`Error::Format`] for a
/// bad timestamp or a window that ends before it starts.
pub fn read_labels(path: &Path) -> Result<Labels> {
    let text = read(path)?;
    let raw: BTreeMap<String, Vec<(String, String)>> =
        serde_json::from_str(&text).map_err(|source| Error::Labels {
            path: path.to_owned(),
            source,
        })?;
    let mut labels = Labels::new();
    for (file, windows) in raw {
        let mut parsed = Vec::with_capacity(windows.len());
        for (start, end) in windows {
            let bad = |message: String| Error::Format {
                path: path.to_owned(),
                line: 0,
                message: format!("{file}: {message}"),
            };
            let s =
                parse_timestamp(&start).ok_or_else(|| bad(format!("bad timestamp `{start}`")))?;
            let e = parse_timestamp(&end).ok_or_else(|| bad(format!("bad timestamp `{end}`")))?;
            if e < s {
                return Err(bad(format!(
                    "window `{start}`..`{end}` ends before it starts"
                )));
            }
            parsed.push((s, e));
        }
        parsed.sort_unstable();
        labels.insert(file, parsed);
    }
    Ok(labels)
}

/// Every `.csv` file under `dir`, recursively, as `(relative path with '/'
/// separators, full path)`, sorted.
///
/// # Errors
///
/// [`Error::Io`] if a directory cannot be listed.
pub fn find_csv(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| Error::Io {
            path: d.clone(),
            source,
        })?;
        for entry in entries {
            let path = entry
                .map_err(|source| Error::Io {
                    path: d.clone(),
                    source,
                })?
                .path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "csv") {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                found.push((rel, path));
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_to_epoch_milliseconds() {
        assert_eq!(parse_timestamp("1970-01-01 00:00:00"), Some(0));
        assert_eq!(
            parse_timestamp("2014-04-01 00:05:00"),
            Some(1_396_310_700_000)
        );
        assert_eq!(
            parse_timestamp("2014-04-10 07:15:00.000000"),
            Some(1_397_114_100_000)
        );
        assert_eq!(
            parse_timestamp("2000-02-29 12:00:00.25"),
            Some(951_825_600_250)
        );
        assert_eq!(
            parse_timestamp("2015-02-26T21:42:53"),
            Some(1_424_986_973_000)
        );
        assert_eq!(parse_timestamp("2014-13-01 00:00:00"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn data_results_and_labels_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("g/a.csv");
        std::fs::create_dir_all(data.parent().unwrap()).unwrap();
        std::fs::write(
            &data,
            "timestamp,value\n2014-04-01 00:00:00,1.5\n2014-04-01 00:05:00,2\n",
        )
        .unwrap();
        let file = read_data(&data).unwrap();
        assert_eq!(file.values, vec![1.5, 2.0]);
        assert_eq!(file.timestamps_ms[1] - file.timestamps_ms[0], 300_000);
        let out = dir.path().join("out/g/a.csv");
        write_results(&out, &file, &[0.0, 0.75]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "timestamp,value,anomaly_score\n2014-04-01 00:00:00,1.5,0\n2014-04-01 00:05:00,2,0.75\n"
        );
        assert!(matches!(
            write_results(&out, &file, &[0.0]),
            Err(Error::Mismatch { .. })
        ));
        let labels = dir.path().join("labels.json");
        std::fs::write(
            &labels,
            r#"{"g/a.csv": [["2014-04-01 00:05:00.000000", "2014-04-01 00:10:00.000000"]], "g/b.csv": []}"#,
        )
        .unwrap();
        let l = read_labels(&labels).unwrap();
        assert_eq!(l["g/a.csv"], vec![(1_396_310_700_000, 1_396_311_000_000)]);
        assert!(l["g/b.csv"].is_empty());
        let found = find_csv(dir.path()).unwrap();
        let names: Vec<&str> = found.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(names, vec!["g/a.csv", "out/g/a.csv"]);
    }

    #[test]
    fn malformed_data_is_refused_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.csv");
        std::fs::write(
            &path,
            "timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,abc\n",
        )
        .unwrap();
        let Err(Error::Format { line, .. }) = read_data(&path) else {
            panic!("expected a format error");
        };
        assert_eq!(line, 3);
        std::fs::write(&path, "time,value\n").unwrap();
        assert!(matches!(
            read_data(&path),
            Err(Error::Format { line: 1, .. })
        ));
    }
}
