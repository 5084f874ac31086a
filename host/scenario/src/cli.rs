//! Command-line pieces of `umbra model generate`: flags and the command that
//! writes a data directory.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::{ScenarioConfig, ScenarioKind, generate_trace, trace_names, write_trace};

/// Parses a duration such as `500ms`, `90s`, `10m`, `1h`, `2d` (a bare number
/// is seconds).
///
/// # Errors
///
/// A message naming the input if it is not a non-negative number with one of
/// those units.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 500ms, 90s, 10m, 1h or 2d"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86_400.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {s:?}: use ms, s, m, h or d"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{s:?}: {e}"))
}

/// Flags of `umbra model generate`.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    /// Data directory to write (`NAME.csv` + `NAME.json` per trace); created if needed.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Seed; the same seed and flags give byte-identical files.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Number of faulty traces (fault ramping into a hard failure).
    #[arg(long, default_value_t = 60)]
    pub faulty: usize,
    /// Number of fault-free traces.
    #[arg(long = "fault-free", default_value_t = 20)]
    pub fault_free: usize,
    /// Length of each trace (500ms, 90s, 10m, 1h, 2d).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub duration: Duration,
    /// Milliseconds between two samples.
    #[arg(long = "tick-ms", default_value_t = 500)]
    pub tick_ms: i64,
    /// Fault kinds to cycle through (repeat the flag); default: all six.
    #[arg(long = "kind", value_enum)]
    pub kinds: Vec<ScenarioKind>,
    /// Shortest fault ramp, fault start to failure onset.
    #[arg(long = "ramp-min", default_value = "20s", value_parser = parse_duration)]
    pub ramp_min: Duration,
    /// Longest fault ramp.
    #[arg(long = "ramp-max", default_value = "10m", value_parser = parse_duration)]
    pub ramp_max: Duration,
    /// Per device and tick, the chance a gap of missing samples starts.
    #[arg(long = "missing-rate", default_value_t = 0.001)]
    pub missing_rate: f64,
    /// Mean benign traffic surges per hour (on both devices).
    #[arg(long = "surges-per-hour", default_value_t = 1.0)]
    pub surges_per_hour: f64,
    /// Replace traces already in the directory instead of refusing.
    #[arg(long)]
    pub overwrite: bool,
}

impl GenerateArgs {
    /// The generator config these flags describe (unset fields at their
    /// [`ScenarioConfig::default`]).
    #[must_use]
    pub fn to_config(&self) -> ScenarioConfig {
        let defaults = ScenarioConfig::default();
        ScenarioConfig {
            seed: self.seed,
            tick_ms: self.tick_ms,
            faulty_traces: self.faulty,
            fault_free_traces: self.fault_free,
            trace_duration: self.duration,
            fault_kinds: if self.kinds.is_empty() {
                defaults.fault_kinds.clone()
            } else {
                self.kinds.clone()
            },
            ramp_min: self.ramp_min,
            ramp_max: self.ramp_max,
            // Short traces cannot afford the default five minutes of history
            // before a fault: take what the trace leaves after the longest
            // ramp and the post-failure tail.
            min_history: defaults.min_history.min(
                self.duration
                    .saturating_sub(self.ramp_max + defaults.post_failure),
            ),
            missing_rate: self.missing_rate,
            surges_per_hour: self.surges_per_hour,
            ..defaults
        }
    }
}

/// Runs `umbra model generate`: validates the flags, then generates and
/// writes one trace at a time (memory stays at one trace however many
/// device-days are asked for) and prints a one-line summary.
///
/// # Errors
///
/// If the flags are invalid, the directory already holds traces and
/// `--overwrite` is not given, or a file cannot be written.
pub fn generate_cmd(args: &GenerateArgs) -> anyhow::Result<()> {
    let config = args.to_config();
    config.validate()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let existing = trace_names(&args.out)?;
    if !existing.is_empty() {
        if !args.overwrite {
            bail!(
                "{} already holds {} traces (first: {}); pass --overwrite to replace them",
                args.out.display(),
                existing.len(),
                existing[0]
            );
        }
        for name in &existing {
            let (csv, json) = crate::trace::trace_paths(&args.out, name);
            for path in [csv, json] {
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
            }
        }
    }
    let started = Instant::now();
    let mut device_days = 0.0;
    for i in 0..config.trace_count() {
        let trace = generate_trace(&config, i)?;
        device_days += trace.meta().device_days;
        write_trace(&args.out, &trace)?;
    }
    println!(
        "wrote {} traces ({} faulty, {} fault-free, {device_days:.2} device-days) to {} in {:.1} s",
        config.trace_count(),
        config.faulty_traces,
        config.fault_free_traces,
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: GenerateArgs,
    }

    fn args(flags: &[&str]) -> GenerateArgs {
        let mut argv = vec!["umbra"];
        argv.extend_from_slice(flags);
        Cli::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_duration("ten").unwrap_err().contains("ten"));
        assert!(parse_duration("3w").unwrap_err().contains("unit"));
    }

    #[test]
    fn flags_map_onto_the_config() {
        let a = args(&[
            "--out",
            "x",
            "--seed",
            "9",
            "--faulty",
            "3",
            "--fault-free",
            "2",
            "--duration",
            "30m",
            "--kind",
            "memory-leak",
            "--kind",
            "http-5xx-ramp",
            "--tick-ms",
            "1000",
        ]);
        let c = a.to_config();
        assert_eq!(c.seed, 9);
        assert_eq!(c.faulty_traces, 3);
        assert_eq!(c.fault_free_traces, 2);
        assert_eq!(c.trace_duration, Duration::from_secs(1800));
        assert_eq!(c.tick_ms, 1000);
        assert_eq!(
            c.fault_kinds,
            vec![ScenarioKind::MemoryLeak, ScenarioKind::Http5xxRamp]
        );
        assert!(c.validate().is_ok());
        assert_eq!(args(&["--out", "x"]).to_config().fault_kinds.len(), 6);
    }

    #[test]
    fn generate_cmd_writes_a_readable_directory_and_refuses_to_clobber() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("data");
        let out_s = out.to_str().unwrap();
        let flags = [
            "--out",
            out_s,
            "--faulty",
            "2",
            "--fault-free",
            "1",
            "--duration",
            "15m",
            "--ramp-max",
            "2m",
        ];
        generate_cmd(&args(&flags)).unwrap();
        let traces = crate::read_dir(&out).unwrap();
        let names: Vec<&str> = traces.iter().map(|t| t.name()).collect();
        assert_eq!(
            names,
            [
                "clean-0000",
                "fault-0000-cpu-exhaustion",
                "fault-0001-memory-leak"
            ]
        );
        assert_eq!(traces[0].len(), 1800);

        let e = generate_cmd(&args(&flags)).unwrap_err().to_string();
        assert!(e.contains("--overwrite"), "{e}");

        let mut flags = flags.to_vec();
        flags[3] = "0";
        flags.push("--overwrite");
        generate_cmd(&args(&flags)).unwrap();
        assert_eq!(crate::trace_names(&out).unwrap(), ["clean-0000"]);
    }

    #[test]
    fn invalid_flags_are_all_reported() {
        let a = args(&["--out", "x", "--tick-ms", "0", "--missing-rate", "2"]);
        let e = generate_cmd(&a).unwrap_err().to_string();
        assert!(e.contains("tick_ms") && e.contains("missing_rate"), "{e}");
    }
}
