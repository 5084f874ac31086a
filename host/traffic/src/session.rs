//! Long-lived TCP sessions: [`Sessions`] on the client keeps `n` connections
//! to a [`SessionEchoServer`], each sending a small sequence-numbered message
//! every interval (10 ms by default) and reading its echo. The
//! [`SessionsReport`] says how many survived (no reset, data still flowing),
//! which were reset and when, and the longest stall between echoes — what a
//! failover with (or without) session replication does to real connections.
//!
//! Message format (16 bytes, big endian): magic `UMBS`, session index `u32`,
//! sequence `u64`. The echo server echoes any bytes unchanged.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::listener::TcpService;
use crate::netns::in_namespace;
use crate::stats::ms;
use crate::{Result, TrafficError, socket_error, spawn};

/// The default interval between a session's messages.
pub const DEFAULT_SESSION_INTERVAL: Duration = Duration::from_millis(10);
/// At most this many sessions per [`Sessions`] (one thread each).
pub const MAX_SESSIONS: usize = 256;
/// A session counts as surviving only if an echo arrived this recently
/// before stop.
pub const SURVIVAL_WINDOW: Duration = Duration::from_secs(1);
const MESSAGE_LEN: usize = 16;
const MAGIC: &[u8; 4] = b"UMBS";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest blocking read before a thread looks at its stop flag.
const POLL: Duration = Duration::from_millis(20);
/// A write that cannot complete in this long counts as a failed session
/// (tens of bytes per interval never fill a socket buffer otherwise).
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// The server end: accepts connections and echoes every byte back.
#[derive(Debug)]
pub struct SessionEchoServer {
    service: TcpService,
    bytes_echoed: Arc<AtomicU64>,
}

impl SessionEchoServer {
    /// Binds `bind` (port 0 picks one) in `netns` and starts echoing.
    ///
    /// # Errors
    /// If the namespace cannot be entered or the address cannot be bound.
    pub fn start(netns: Option<&str>, bind: SocketAddr) -> Result<Self> {
        let bytes_echoed = Arc::new(AtomicU64::new(0));
        let service = TcpService::start(netns, bind, "session-echo", {
            let bytes_echoed = Arc::clone(&bytes_echoed);
            move |stream, stop| echo(stream, stop, &bytes_echoed)
        })?;
        Ok(Self {
            service,
            bytes_echoed,
        })
    }

    /// The address sessions should connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.service.local_addr()
    }

    /// Connections accepted so far.
    pub fn connections_accepted(&self) -> u64 {
        self.service.accepted()
    }

    /// Bytes echoed so far.
    pub fn bytes_echoed(&self) -> u64 {
        self.bytes_echoed.load(Ordering::Relaxed)
    }

    /// Stops accepting and echoing; closes every connection and joins every
    /// thread.
    pub fn stop(mut self) {
        self.service.stop();
    }
}

fn echo(mut stream: TcpStream, stop: &AtomicBool, bytes_echoed: &AtomicU64) {
    if stream.set_read_timeout(Some(POLL)).is_err()
        || stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_err()
    {
        return;
    }
    let _ = stream.set_nodelay(true);
    let mut buffer = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        match stream.read(&mut buffer) {
            Ok(0) => return,
            Ok(len) => {
                if stream.write_all(&buffer[..len]).is_err() {
                    return;
                }
                bytes_echoed.fetch_add(len as u64, Ordering::Relaxed);
            }
            Err(err) if is_timeout(&err) => {}
            Err(_) => return,
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// How a session ended before stop.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionFailure {
    /// The session's index.
    pub session: usize,
    /// When, since the sessions started.
    pub at_ms: f64,
    /// Whether the connection was reset: `ECONNRESET`, `EPIPE`,
    /// `ECONNABORTED` or an unexpected EOF. Anything else (a write that
    /// timed out, `EHOSTUNREACH`, …) is an error, not a reset.
    pub reset: bool,
    /// What the socket said.
    pub reason: String,
}

/// One session's measurements.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionReport {
    /// The session's index.
    pub session: usize,
    /// The client side's address.
    pub local_addr: String,
    /// Echoed messages received.
    pub echoes: u64,
    /// The largest time between consecutive echoes (or from the start to
    /// the first, or from the last to stop while the session was alive).
    pub longest_stall_ms: f64,
    /// When that stall began, since the sessions started.
    pub longest_stall_at_ms: f64,
    /// Whether the session was still alive and echoing at stop.
    pub survived: bool,
    /// How it ended, if it ended early.
    pub failure: Option<SessionFailure>,
}

/// What the sessions measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionsReport {
    /// Sessions started.
    pub total: usize,
    /// Sessions with no reset, EOF or error and an echo within the last
    /// second before stop.
    pub survived: usize,
    /// Sessions reset (`ECONNRESET`/`EPIPE`/unexpected EOF).
    pub reset: usize,
    /// The resets, each with when it happened.
    pub resets: Vec<SessionFailure>,
    /// Sessions that ended with another error.
    pub errors: Vec<SessionFailure>,
    /// The largest stall of any session.
    pub longest_stall_ms: f64,
    /// Which session had it.
    pub longest_stall_session: Option<usize>,
    /// When it began, since the sessions started.
    pub longest_stall_at_ms: f64,
    /// The configured interval between messages.
    pub interval_ms: f64,
    /// How long the sessions ran.
    pub duration_ms: f64,
    /// Bytes received back from the server, all sessions.
    pub bytes_echoed: u64,
    /// Every session.
    pub per_session: Vec<SessionReport>,
}

/// Counters shared with [`Sessions::alive`] for live progress.
#[derive(Debug, Default)]
struct SessionsProgress {
    failed: AtomicUsize,
    /// Per session: when its last echo arrived, in ms since the sessions
    /// started (0: none yet).
    last_echo_ms: Vec<AtomicU64>,
}

/// What one session's thread returns.
#[derive(Debug)]
struct SessionRecord {
    echoes: u64,
    bytes: u64,
    last_echo: Instant,
    longest_stall: Duration,
    longest_stall_at: Instant,
    failure: Option<(Instant, io::Error, bool)>,
}

/// The client end: `n` long-lived connections, one thread each.
#[derive(Debug)]
pub struct Sessions {
    start: Instant,
    interval: Duration,
    local_addrs: Vec<String>,
    progress: Arc<SessionsProgress>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<SessionRecord>>,
}

impl Sessions {
    /// Opens `n` connections from `netns` to `target` (a
    /// [`SessionEchoServer`]) with `TCP_NODELAY`, and starts each sending a
    /// message every `interval`.
    ///
    /// # Errors
    /// If `n` is 0 or above [`MAX_SESSIONS`], `interval` is zero, the
    /// namespace cannot be entered or a connection cannot be opened.
    pub fn start(
        netns: Option<&str>,
        target: SocketAddr,
        n: usize,
        interval: Duration,
    ) -> Result<Self> {
        if n == 0 || n > MAX_SESSIONS {
            return Err(TrafficError::Invalid(format!(
                "{n} sessions (1..={MAX_SESSIONS})"
            )));
        }
        if interval.is_zero() {
            return Err(TrafficError::Invalid("session interval 0".into()));
        }
        let streams = in_namespace(netns, || {
            (0..n)
                .map(|session| {
                    TcpStream::connect_timeout(&target, CONNECT_TIMEOUT).map_err(socket_error(
                        format!("connect session {session} to {target}"),
                    ))
                })
                .collect::<Result<Vec<_>>>()
        })?;
        let mut local_addrs = Vec::with_capacity(n);
        for stream in &streams {
            stream
                .set_nodelay(true)
                .map_err(socket_error("session TCP_NODELAY"))?;
            stream
                .set_write_timeout(Some(WRITE_TIMEOUT))
                .map_err(socket_error("session write timeout"))?;
            local_addrs.push(
                stream
                    .local_addr()
                    .map(|addr| addr.to_string())
                    .unwrap_or_default(),
            );
        }
        let start = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(SessionsProgress {
            failed: AtomicUsize::new(0),
            last_echo_ms: (0..n).map(|_| AtomicU64::new(0)).collect(),
        });
        let mut sessions = Self {
            start,
            interval,
            local_addrs,
            progress,
            stop,
            threads: Vec::with_capacity(n),
        };
        for (session, stream) in streams.into_iter().enumerate() {
            let stop = Arc::clone(&sessions.stop);
            let progress = Arc::clone(&sessions.progress);
            // On error `sessions` is dropped, which stops and joins the
            // threads already running.
            sessions.threads.push(spawn("session", move || {
                run_session(stream, session, start, interval, &stop, &progress)
            })?);
        }
        Ok(sessions)
    }

    /// Sessions still running (not failed).
    pub fn alive(&self) -> usize {
        self.threads.len() - self.progress.failed.load(Ordering::Relaxed)
    }

    /// Sessions whose last echo arrived within `within` (not failed, and
    /// data flowing now rather than stalled).
    pub fn flowing(&self, within: Duration) -> usize {
        let now = self.start.elapsed().as_millis();
        let within = within.as_millis();
        self.progress
            .last_echo_ms
            .iter()
            .map(|ms| u128::from(ms.load(Ordering::Relaxed)))
            .filter(|&ms| ms > 0 && now.saturating_sub(ms) <= within)
            .count()
    }

    /// Sessions that failed so far.
    pub fn failed(&self) -> usize {
        self.progress.failed.load(Ordering::Relaxed)
    }

    /// Stops every session, joins the threads and reports.
    pub fn stop(mut self) -> SessionsReport {
        self.stop.store(true, Ordering::Relaxed);
        let stopped_at = Instant::now();
        let records: Vec<Option<SessionRecord>> = self
            .threads
            .drain(..)
            .map(|thread| thread.join().ok())
            .collect();
        let since_start = |at: Instant| ms(at.saturating_duration_since(self.start));

        let mut report = SessionsReport {
            total: records.len(),
            survived: 0,
            reset: 0,
            resets: Vec::new(),
            errors: Vec::new(),
            longest_stall_ms: 0.0,
            longest_stall_session: None,
            longest_stall_at_ms: 0.0,
            interval_ms: ms(self.interval),
            duration_ms: since_start(stopped_at),
            bytes_echoed: 0,
            per_session: Vec::with_capacity(records.len()),
        };
        for (session, record) in records.into_iter().enumerate() {
            let local_addr = self.local_addrs[session].clone();
            let Some(mut record) = record else {
                // The thread panicked: count it as an error, not a survivor.
                let failure = SessionFailure {
                    session,
                    at_ms: since_start(stopped_at),
                    reset: false,
                    reason: "session thread panicked".into(),
                };
                report.errors.push(failure.clone());
                report.per_session.push(SessionReport {
                    session,
                    local_addr,
                    echoes: 0,
                    longest_stall_ms: 0.0,
                    longest_stall_at_ms: 0.0,
                    survived: false,
                    failure: Some(failure),
                });
                continue;
            };
            if record.failure.is_none() {
                // A live session's silence up to stop is a stall too.
                let tail = stopped_at.saturating_duration_since(record.last_echo);
                if tail > record.longest_stall {
                    record.longest_stall = tail;
                    record.longest_stall_at = record.last_echo;
                }
            }
            let failure = record.failure.map(|(at, err, reset)| SessionFailure {
                session,
                at_ms: since_start(at),
                reset,
                reason: err.to_string(),
            });
            let survived = failure.is_none()
                && record.echoes > 0
                && stopped_at.saturating_duration_since(record.last_echo) <= SURVIVAL_WINDOW;
            report.survived += usize::from(survived);
            report.bytes_echoed += record.bytes;
            match &failure {
                Some(failure) if failure.reset => report.resets.push(failure.clone()),
                Some(failure) => report.errors.push(failure.clone()),
                None => {}
            }
            let stall_ms = ms(record.longest_stall);
            if report.longest_stall_session.is_none() || stall_ms > report.longest_stall_ms {
                report.longest_stall_ms = stall_ms;
                report.longest_stall_session = Some(session);
                report.longest_stall_at_ms = since_start(record.longest_stall_at);
            }
            report.per_session.push(SessionReport {
                session,
                local_addr,
                echoes: record.echoes,
                longest_stall_ms: stall_ms,
                longest_stall_at_ms: since_start(record.longest_stall_at),
                survived,
                failure,
            });
        }
        report.reset = report.resets.len();
        report
    }
}

impl Drop for Sessions {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn message(session: usize, sequence: u64) -> [u8; MESSAGE_LEN] {
    let mut bytes = [0u8; MESSAGE_LEN];
    bytes[0..4].copy_from_slice(MAGIC);
    bytes[4..8].copy_from_slice(&(session as u32).to_be_bytes());
    bytes[8..16].copy_from_slice(&sequence.to_be_bytes());
    bytes
}

fn is_reset(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
    )
}

fn run_session(
    mut stream: TcpStream,
    session: usize,
    start: Instant,
    interval: Duration,
    stop: &AtomicBool,
    progress: &SessionsProgress,
) -> SessionRecord {
    let mut record = SessionRecord {
        echoes: 0,
        bytes: 0,
        last_echo: start,
        longest_stall: Duration::ZERO,
        longest_stall_at: start,
        failure: None,
    };
    let mut sequence = 0u64;
    let mut next_send = start;
    let mut pending: Vec<u8> = Vec::with_capacity(4 * MESSAGE_LEN);
    let mut buffer = [0u8; 1024];
    let outcome: io::Result<()> = loop {
        if stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        let now = Instant::now();
        if now >= next_send {
            if let Err(err) = stream.write_all(&message(session, sequence)) {
                break Err(err);
            }
            sequence += 1;
            next_send += interval;
            // Unlike the probes, a TCP session does not catch up in a burst
            // after a stall: it keeps its pace from now.
            if next_send < now {
                next_send = now + interval;
            }
        }
        let wait = next_send
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(1), POLL);
        if let Err(err) = stream.set_read_timeout(Some(wait)) {
            break Err(err);
        }
        match stream.read(&mut buffer) {
            Ok(0) => {
                break Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                ));
            }
            Ok(len) => {
                let arrived = Instant::now();
                pending.extend_from_slice(&buffer[..len]);
                record.bytes += len as u64;
                let whole = pending.len() / MESSAGE_LEN;
                if whole > 0 {
                    let stall = arrived.saturating_duration_since(record.last_echo);
                    if stall > record.longest_stall {
                        record.longest_stall = stall;
                        record.longest_stall_at = record.last_echo;
                    }
                    record.echoes += whole as u64;
                    record.last_echo = arrived;
                    if let Some(last) = progress.last_echo_ms.get(session) {
                        let ms = arrived.saturating_duration_since(start).as_millis();
                        last.store(
                            u64::try_from(ms).unwrap_or(u64::MAX).max(1),
                            Ordering::Relaxed,
                        );
                    }
                    pending.drain(..whole * MESSAGE_LEN);
                }
            }
            Err(err) if is_timeout(&err) => {}
            Err(err) => break Err(err),
        }
    };
    if let Err(err) = outcome {
        let reset = is_reset(&err);
        tracing::debug!(session, %err, reset, "session ended");
        record.failure = Some((Instant::now(), err, reset));
        progress.failed.fetch_add(1, Ordering::Relaxed);
    }
    record
}
