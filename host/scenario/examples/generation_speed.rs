//! Measures how fast fault-free device-days are generated, written and read
//! back: `cargo run --release -p umbra-scenario --example generation_speed [DAYS]`.

use std::time::{Duration, Instant};

use umbra_scenario::{ScenarioConfig, generate_trace, read_trace, write_trace};

fn main() -> anyhow::Result<()> {
    let days: usize = std::env::args().nth(1).map_or(Ok(2), |a| a.parse())?;
    let config = ScenarioConfig {
        faulty_traces: 0,
        fault_free_traces: days,
        trace_duration: Duration::from_secs(86_400),
        ..ScenarioConfig::default()
    };
    let dir = tempfile::tempdir()?;
    let (mut generating, mut writing, mut reading) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut bytes = 0;
    for i in 0..days {
        let started = Instant::now();
        let trace = generate_trace(&config, i)?;
        generating += started.elapsed();
        let started = Instant::now();
        write_trace(dir.path(), &trace)?;
        writing += started.elapsed();
        bytes += std::fs::metadata(dir.path().join(format!("{}.csv", trace.name())))?.len();
        let started = Instant::now();
        let back = read_trace(dir.path(), trace.name())?;
        reading += started.elapsed();
        anyhow::ensure!(
            back == trace,
            "{} did not read back unchanged",
            trace.name()
        );
        std::fs::remove_file(dir.path().join(format!("{}.csv", trace.name())))?;
    }
    let per_day = |d: Duration| d.as_secs_f64() / days as f64;
    println!(
        "{days} device-days at {} ms ticks: generate {:.3} s/day, write {:.3} s/day, read {:.3} s/day; {:.0} MB of CSV per day",
        config.tick_ms,
        per_day(generating),
        per_day(writing),
        per_day(reading),
        bytes as f64 / days as f64 / 1e6
    );
    Ok(())
}
