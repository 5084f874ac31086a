//! Black-box test of `umbra eval nab` on a small synthetic NAB-format corpus
//! written to a temporary directory.

use std::fmt::Write as _;
use std::path::Path;

use umbra_nab::{NabArgs, PROFILES, run};

const T0: &str = "2024-01-01";

/// `rows` five-minute rows of a noisy daily pattern, with `jump` added to
/// rows `from..to`.
fn series(rows: usize, jump: Option<(usize, usize, f64)>) -> (String, Vec<String>) {
    let mut csv = String::from("timestamp,value\n");
    let mut stamps = Vec::with_capacity(rows);
    for i in 0..rows {
        let minutes = i * 5;
        let (day, hour, minute) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
        let stamp = format!("2024-01-{:02} {hour:02}:{minute:02}:00", day + 1);
        let phase = (minutes % 1440) as f64 / 1440.0 * std::f64::consts::TAU;
        // Deterministic "noise": a few incommensurate sines.
        let noise = (i as f64 * 1.7).sin() + 0.5 * (i as f64 * 0.37).cos();
        let mut v = 50.0 + 10.0 * phase.sin() + noise;
        if let Some((from, to, by)) = jump
            && (from..to).contains(&i)
        {
            v += by;
        }
        let _ = writeln!(csv, "{stamp},{v:.4}");
        stamps.push(stamp);
    }
    assert!(stamps[0].starts_with(T0));
    (csv, stamps)
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn runs_scores_and_writes_results_at_the_same_relative_paths() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let out = root.path().join("results");
    let rows = 2000;
    let (quiet, _) = series(rows, None);
    let (jumpy, stamps) = series(rows, Some((1500, 1600, 40.0)));
    write(&data.join("groupA/quiet.csv"), &quiet);
    write(&data.join("groupB/nested/jumpy.csv"), &jumpy);
    // The labelled window is centred on the jump's start, as NAB's are.
    let labels = format!(
        r#"{{"groupA/quiet.csv": [], "groupB/nested/jumpy.csv": [["{}.000000", "{}.000000"]]}}"#,
        stamps[1450], stamps[1550]
    );
    write(&root.path().join("labels/combined_windows.json"), &labels);

    let args = NabArgs {
        data: data.clone(),
        out: out.clone(),
        labels: None,
        threshold: None,
        config: Vec::new(),
    };
    let report = run(&args).unwrap();

    // One result file per data file, at the same relative path, with NAB's
    // columns and one row per input row.
    for rel in ["groupA/quiet.csv", "groupB/nested/jumpy.csv"] {
        let text = std::fs::read_to_string(out.join(rel)).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("timestamp,value,anomaly_score"));
        let body: Vec<&str> = lines.collect();
        assert_eq!(body.len(), rows, "{rel}");
        for line in &body {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 3, "{line}");
            let score: f64 = fields[2].parse().unwrap();
            assert!((0.0..=1.0).contains(&score), "{line}");
        }
    }
    // The input rows are echoed unchanged.
    let jumpy_out = std::fs::read_to_string(out.join("groupB/nested/jumpy.csv")).unwrap();
    let input_rows: Vec<&str> = jumpy.lines().skip(1).collect();
    for (i, line) in jumpy_out.lines().skip(1).enumerate() {
        assert!(line.starts_with(&format!("{},", input_rows[i])), "{line}");
    }

    // The score: a 40-unit jump on a ±1.5 noise is caught, and the detector
    // is quiet elsewhere, so the optimised standard score is high.
    assert_eq!(report.files, 2);
    assert_eq!(report.windows, 1);
    assert_eq!(report.fixed_threshold, 0.7);
    assert_eq!(report.profiles.len(), PROFILES.len());
    let standard = &report.profiles[0];
    assert_eq!(standard.profile.name, "standard");
    assert!(standard.optimised.score > 80.0, "{report}");
    assert!(standard.fixed.score > 80.0, "{report}");
    let jumpy_report = report
        .per_file
        .iter()
        .find(|f| f.file == "groupB/nested/jumpy.csv")
        .unwrap();
    assert_eq!(
        (jumpy_report.standard.tp, jumpy_report.standard.fn_),
        (1, 0)
    );
    assert_eq!(jumpy_report.tick_ms, 300_000);

    // nab-score.json holds the same figures, and the table names every
    // profile.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("nab-score.json")).unwrap())
            .unwrap();
    let profiles = json["profiles"].as_array().unwrap();
    assert_eq!(profiles.len(), 3);
    assert_eq!(
        profiles[0]["optimised"]["score"].as_f64().unwrap(),
        standard.optimised.score
    );
    let table = report.to_string();
    for p in &PROFILES {
        assert!(table.contains(p.name), "{table}");
    }
}

#[test]
fn unlabelled_files_and_bad_configurations_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let (csv, _) = series(100, None);
    write(&data.join("g/a.csv"), &csv);
    write(&data.join("g/b.csv"), &csv);
    let labels = root.path().join("labels.json");
    write(&labels, r#"{"g/a.csv": []}"#);
    let mut args = NabArgs {
        data,
        out: root.path().join("out"),
        labels: Some(labels),
        threshold: Some(0.5),
        config: Vec::new(),
    };
    let err = run(&args).unwrap_err().to_string();
    assert!(err.contains("g/b.csv"), "{err}");
    args.config = vec![("z-low".into(), "9".into()), ("z-high".into(), "1".into())];
    assert!(run(&args).is_err());
}
