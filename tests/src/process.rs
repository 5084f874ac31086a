//! Child processes with deadlines: programs run to completion under a
//! timeout, and long-running ones (`umbra switch`) behind a guard that stops
//! them on drop.

use std::fs::File;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::lab::Netns;
use crate::workspace;

/// How often a deadline loop looks again.
const POLL: Duration = Duration::from_millis(20);

/// A program that ran to completion.
#[derive(Debug)]
pub struct Finished {
    /// How it exited.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
    /// Wall-clock run time.
    pub elapsed: Duration,
}

impl Finished {
    /// Stdout and stderr, labelled, for assertion messages.
    pub fn transcript(&self) -> String {
        format!(
            "exit: {}, {:.1?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// Runs `command` (stdin closed, stdout and stderr captured) and waits for
/// it at most `timeout`; on timeout it is killed and this fails with what it
/// printed so far.
///
/// # Errors
/// The program cannot be started, or it outlives `timeout`.
pub fn run(command: &mut Command, timeout: Duration) -> Result<Finished> {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {command:?}"))?;
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));
    let deadline = started + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            // Our own child, by its pid: SIGKILL, then reap it.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(POLL);
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    match status {
        Some(status) => Ok(Finished {
            status,
            stdout,
            stderr,
            elapsed: started.elapsed(),
        }),
        None => bail!(
            "{command:?} did not finish within {timeout:?} and was killed\n\
             --- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
        ),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// `python` of `venv` running `script` with `args`, the official bindings'
/// pure-Python protobuf (p4runtime 1.6.0's generated code needs it), and
/// `tests/python` importable; inside `netns` if given.
pub fn python(netns: Option<&Netns>, venv: &Path, script: &Path) -> Command {
    let python = venv.join("bin").join("python");
    let mut command = match netns {
        Some(netns) => netns.exec(&python),
        None => Command::new(&python),
    };
    command
        .arg("-u")
        .arg(script)
        .env("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
        .env("PYTHONPATH", workspace::python_dir())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    command
}

/// A running `umbra switch`, stopped (SIGTERM, then SIGKILL) on drop. Its
/// stderr (the log) goes to a temporary file, for failure messages.
#[derive(Debug)]
pub struct Switch {
    child: Child,
    log: tempfile::NamedTempFile,
    grpc: SocketAddr,
}

impl Switch {
    /// Starts `umbra switch --grpc GRPC --device-id 1 --cpu-port 255` with
    /// `--port N=IFNAME` for each of `ports`, inside `netns` if given.
    ///
    /// # Errors
    /// The binary cannot be built or started.
    pub fn start(netns: Option<&Netns>, grpc: SocketAddr, ports: &[(u16, &str)]) -> Result<Self> {
        let binary = workspace::umbra_binary()?;
        let log = tempfile::Builder::new()
            .prefix("umbra-switch-")
            .suffix(".log")
            .tempfile()?;
        let mut command = match netns {
            Some(netns) => netns.exec(&binary),
            None => Command::new(&binary),
        };
        command
            .arg("switch")
            .arg("--grpc")
            .arg(grpc.to_string())
            .args(["--device-id", "1", "--cpu-port", "255"])
            .env("UMBRA_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.reopen()?))
            .stderr(Stdio::from(log.reopen()?));
        for (port, ifname) in ports {
            command.arg("--port").arg(format!("{port}={ifname}"));
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {command:?}"))?;
        Ok(Self { child, log, grpc })
    }

    /// The address its P4Runtime server listens on.
    pub fn grpc(&self) -> SocketAddr {
        self.grpc
    }

    /// What the switch has logged so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        let _ = File::open(self.log.path()).and_then(|mut f| f.read_to_string(&mut text));
        text
    }

    /// Fails if the switch has exited.
    ///
    /// # Errors
    /// It exited (the error carries its status and log).
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("umbra switch exited ({status}); log:\n{}", self.log());
        }
        Ok(())
    }

    /// Waits until the gRPC port accepts connections (only for a switch in
    /// this process's namespace; in a lab namespace the clients wait).
    ///
    /// # Errors
    /// The switch exits, or does not listen within `timeout`.
    pub fn wait_listening(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_running()?;
            if TcpStream::connect_timeout(&self.grpc, POLL).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "umbra switch does not listen on {} after {timeout:?}; log:\n{}",
                    self.grpc,
                    self.log()
                );
            }
            thread::sleep(POLL);
        }
    }

    /// Stops the switch (SIGTERM, then SIGKILL after 3 s) and returns its
    /// exit status and complete log.
    ///
    /// # Errors
    /// The process cannot be signalled or reaped.
    pub fn stop(mut self) -> Result<(ExitStatus, String)> {
        let status = self.terminate()?;
        Ok((status, self.log()))
    }

    fn terminate(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        // Our own child, by its pid (`ip netns exec` execs the binary, so the
        // pid is the switch's): a graceful SIGTERM first.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            thread::sleep(POLL);
        }
        self.child.kill()?;
        Ok(self.child.wait()?)
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        if let Err(error) = self.terminate() {
            eprintln!(
                "cannot stop umbra switch (pid {}): {error:#}",
                self.child.id()
            );
        }
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for a server in this
/// process's namespace; inside a lab namespace any fixed port is free).
///
/// # Errors
/// No port can be bound.
pub fn free_local_port() -> Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}
