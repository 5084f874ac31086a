//! A long CPU-bound command stops on SIGTERM and on SIGINT, as the
//! long-running services do, instead of running on to the end.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn stops_on(signal: &str) {
    let out = std::env::temp_dir().join(format!("umbra-signals-{}-{signal}", std::process::id()));
    // Hours of telemetry: far longer than the test waits.
    let mut child = Command::new(env!("CARGO_BIN_EXE_umbra"))
        .args([
            "model",
            "generate",
            "--faulty",
            "2000",
            "--fault-free",
            "2000",
        ])
        .args(["--duration", "6h", "--log", "warn", "--out"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start umbra");
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        child.try_wait().expect("poll").is_none(),
        "it ended on its own"
    );
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("umbra model generate still running 10 s after SIG{signal}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::io::read_to_string(child.stderr.take().expect("stderr")).expect("read");
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("umbra model: interrupted"), "{stderr}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_long_model_command_stops_on_sigterm() {
    stops_on("TERM");
}

#[test]
fn a_long_model_command_stops_on_sigint() {
    stops_on("INT");
}
