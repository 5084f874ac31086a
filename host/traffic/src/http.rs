//! HTTP: a tiny HTTP/1.1 server ([`HttpServer`], the lab's service to check
//! and load) whose faults are turned at run time through a shared
//! [`HttpFaults`] handle (a fraction of requests answered 500/503, extra
//! latency), and [`HttpLoad`], requests at a fixed rate counting 2xx, 5xx and
//! errors with latency percentiles. Health checks proper live in
//! `umbra-health`; this is the service they check and the load it carries.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::listener::TcpService;
use crate::netns::in_namespace;
use crate::stats::{LatencySamples, ms};
use crate::{Result, TrafficError, spawn};

/// The body of a successful `GET /`.
pub const OK_BODY: &str = "umbra ok\n";
/// Longest request head the server reads.
const MAX_HEAD: usize = 8 * 1024;
/// Longest response the load reads.
const MAX_RESPONSE: usize = 64 * 1024;
/// Longest blocking read before a thread looks at its stop flag.
const POLL: Duration = Duration::from_millis(20);
/// A keep-alive connection idle this long is closed by the server.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Extra latency is capped so a knob set by mistake cannot wedge the server.
const MAX_EXTRA_LATENCY: Duration = Duration::from_secs(30);
/// How long one request of the load may take, connect included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Fault knobs of an [`HttpServer`], shared through an `Arc`: whoever holds
/// it (the lab's fault injector, a test) changes the server's behaviour at
/// once.
#[derive(Debug, Default)]
pub struct HttpFaults {
    /// `f64` bits of the error fraction.
    error_fraction_bits: AtomicU64,
    extra_latency_ns: AtomicU64,
    /// Requests to `/` seen, for the deterministic error pattern.
    decided: AtomicU64,
}

impl HttpFaults {
    /// Answers this fraction (clamped to 0..=1; NaN is 0) of `GET /` with a
    /// server error. The pattern is deterministic and exact over any run of
    /// requests: request `n` fails when `floor((n+1)·f) > floor(n·f)`, so
    /// 0.5 fails every other request. Failures alternate between 500 and 503.
    pub fn set_error_fraction(&self, fraction: f64) {
        let fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self.error_fraction_bits
            .store(fraction.to_bits(), Ordering::Relaxed);
    }

    /// The fraction of requests answered with a server error.
    pub fn error_fraction(&self) -> f64 {
        f64::from_bits(self.error_fraction_bits.load(Ordering::Relaxed))
    }

    /// Delays every answer by `latency` (capped at 30 s).
    pub fn set_extra_latency(&self, latency: Duration) {
        let latency = latency.min(MAX_EXTRA_LATENCY);
        self.extra_latency_ns
            .store(latency.as_nanos() as u64, Ordering::Relaxed);
    }

    /// The extra latency of every answer.
    pub fn extra_latency(&self) -> Duration {
        Duration::from_nanos(self.extra_latency_ns.load(Ordering::Relaxed))
    }

    /// The status for the next `GET /`: 200, or 500/503 per the error
    /// fraction.
    fn next_status(&self) -> u16 {
        let n = self.decided.fetch_add(1, Ordering::Relaxed) as f64;
        let fraction = self.error_fraction();
        let fails = ((n + 1.0) * fraction).floor() > (n * fraction).floor();
        if !fails {
            200
        } else if ((n + 1.0) * fraction).floor() as u64 % 2 == 1 {
            500
        } else {
            503
        }
    }
}

/// What an [`HttpServer`] answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HttpServerStats {
    /// Connections accepted.
    pub connections: u64,
    /// Requests answered.
    pub requests: u64,
    /// `200 OK` answers.
    pub ok: u64,
    /// 500/503 answers injected by the error fraction.
    pub errors_injected: u64,
    /// Requests for anything but `GET /` (404/405) or unparsable (400).
    pub rejected: u64,
}

#[derive(Debug, Default)]
struct ServerCounters {
    requests: AtomicU64,
    ok: AtomicU64,
    errors_injected: AtomicU64,
    rejected: AtomicU64,
}

/// A minimal HTTP/1.1 server: `GET /` → 200 with [`OK_BODY`] (or a fault),
/// anything else 404/405/400. Keep-alive is honoured (HTTP/1.1 default,
/// `Connection: close` respected).
#[derive(Debug)]
pub struct HttpServer {
    service: TcpService,
    faults: Arc<HttpFaults>,
    counters: Arc<ServerCounters>,
}

impl HttpServer {
    /// Binds `bind` (port 0 picks one) in `netns` and starts serving, with
    /// no faults.
    ///
    /// # Errors
    /// If the namespace cannot be entered or the address cannot be bound.
    pub fn start(netns: Option<&str>, bind: SocketAddr) -> Result<Self> {
        let faults = Arc::new(HttpFaults::default());
        let counters = Arc::new(ServerCounters::default());
        let service = TcpService::start(netns, bind, "http", {
            let faults = Arc::clone(&faults);
            let counters = Arc::clone(&counters);
            move |stream, stop| serve_http(stream, stop, &faults, &counters)
        })?;
        Ok(Self {
            service,
            faults,
            counters,
        })
    }

    /// The server's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.service.local_addr()
    }

    /// `http://ADDR/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.local_addr())
    }

    /// The fault knobs, to share with whoever injects faults.
    pub fn faults(&self) -> Arc<HttpFaults> {
        Arc::clone(&self.faults)
    }

    /// What the server has answered so far.
    pub fn stats(&self) -> HttpServerStats {
        HttpServerStats {
            connections: self.service.accepted(),
            requests: self.counters.requests.load(Ordering::Relaxed),
            ok: self.counters.ok.load(Ordering::Relaxed),
            errors_injected: self.counters.errors_injected.load(Ordering::Relaxed),
            rejected: self.counters.rejected.load(Ordering::Relaxed),
        }
    }

    /// Stops serving, closes every connection, joins every thread.
    pub fn stop(mut self) -> HttpServerStats {
        self.service.stop();
        self.stats()
    }
}

/// A parsed request head.
#[derive(Debug, PartialEq, Eq)]
struct RequestHead {
    method: String,
    path: String,
    keep_alive: bool,
}

fn parse_request_head(head: &[u8]) -> Option<RequestHead> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let version = request_line.next()?;
    if !version.starts_with("HTTP/1.") || method.is_empty() {
        return None;
    }
    let mut keep_alive = version == "HTTP/1.1";
    for line in lines {
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("connection")
        {
            let value = value.trim();
            if value.eq_ignore_ascii_case("close") {
                keep_alive = false;
            } else if value.eq_ignore_ascii_case("keep-alive") {
                keep_alive = true;
            }
        }
    }
    Some(RequestHead {
        method,
        path,
        keep_alive,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

fn find_head_end(buffer: &[u8]) -> Option<usize> {
    buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
}

/// Sleeps `duration` in short steps, returning early if `stop` is set.
fn sleep_unless_stopped(duration: Duration, stop: &AtomicBool) {
    let until = Instant::now() + duration;
    while !stop.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(POLL));
    }
}

fn serve_http(
    mut stream: TcpStream,
    stop: &AtomicBool,
    faults: &HttpFaults,
    counters: &ServerCounters,
) {
    if stream.set_read_timeout(Some(POLL)).is_err()
        || stream.set_write_timeout(Some(REQUEST_TIMEOUT)).is_err()
    {
        return;
    }
    let _ = stream.set_nodelay(true);
    let mut buffer: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let mut idle_since = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let Some(head_end) = find_head_end(&buffer) else {
            if buffer.len() > MAX_HEAD || idle_since.elapsed() > IDLE_TIMEOUT {
                break;
            }
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(len) => buffer.extend_from_slice(&chunk[..len]),
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => break,
            }
            continue;
        };
        let head = parse_request_head(&buffer[..head_end]);
        // Request bodies are not supported (GET has none): the head is
        // all there is to consume.
        buffer.drain(..head_end);
        counters.requests.fetch_add(1, Ordering::Relaxed);
        let (status, keep_alive) = match &head {
            None => (400, false),
            Some(head) if head.path != "/" => (404, head.keep_alive),
            Some(head) if head.method != "GET" => (405, false),
            Some(head) => (faults.next_status(), head.keep_alive),
        };
        match status {
            200 => counters.ok.fetch_add(1, Ordering::Relaxed),
            500 | 503 => counters.errors_injected.fetch_add(1, Ordering::Relaxed),
            _ => counters.rejected.fetch_add(1, Ordering::Relaxed),
        };
        sleep_unless_stopped(faults.extra_latency(), stop);
        let body = if status == 200 {
            OK_BODY.to_owned()
        } else {
            format!("{status} {}\n", reason(status))
        };
        let response = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n{body}",
            reason(status),
            body.len(),
            if keep_alive { "keep-alive" } else { "close" },
        );
        if stream.write_all(response.as_bytes()).is_err() || !keep_alive {
            break;
        }
        idle_since = Instant::now();
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// What an [`HttpLoad`] measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpReport {
    /// The target, as given.
    pub target: String,
    /// The configured rate.
    pub rate_per_s: u32,
    /// How long the load ran.
    pub duration_ms: f64,
    /// Requests attempted.
    pub requests: u64,
    /// 2xx answers.
    pub ok_2xx: u64,
    /// 5xx answers.
    pub server_errors_5xx: u64,
    /// Other statuses (3xx, 4xx).
    pub other_status: u64,
    /// Requests that got no valid answer (connect refused or timed out, no
    /// answer in 2 s, malformed answer).
    pub errors: u64,
    /// Ticks not sent because every worker was busy (the target is slower
    /// than the rate allows); not counted in `requests`.
    pub shed: u64,
    /// Fraction of attempted requests answered 2xx.
    pub ok_rate: f64,
    /// Fraction of attempted requests answered 5xx.
    pub server_error_rate: f64,
    /// Fraction of attempted requests that failed without an answer.
    pub error_rate: f64,
    /// Answers per status code.
    pub status_counts: BTreeMap<u16, u64>,
    /// Median latency of answered requests (connect to last byte).
    pub latency_p50_ms: f64,
    /// 99th percentile latency of answered requests.
    pub latency_p99_ms: f64,
    /// The most recent error, for the report's reader.
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct LoadCounters {
    requests: AtomicU64,
    server_errors: AtomicU64,
    errors: AtomicU64,
    shed: AtomicU64,
}

#[derive(Debug, Default)]
struct LoadRecord {
    status_counts: BTreeMap<u16, u64>,
    latency: LatencySamples,
    last_error: Option<String>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where requests go.
#[derive(Debug, Clone)]
struct Target {
    addr: SocketAddr,
    host: String,
    path: String,
}

fn parse_target(target: &str) -> Result<Target> {
    let invalid = |why: &str| TrafficError::Invalid(format!("HTTP target {target:?}: {why}"));
    if target.starts_with("https://") {
        return Err(invalid("https is not supported"));
    }
    let rest = target.strip_prefix("http://").unwrap_or(target);
    let (host, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let with_port = if host.parse::<SocketAddr>().is_ok() {
        host.to_owned()
    } else if let Ok(ip) = host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        SocketAddr::new(ip, 80).to_string()
    } else if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|err| invalid(&err.to_string()))?
        .next()
        .ok_or_else(|| invalid("no address"))?;
    Ok(Target {
        addr,
        host: host.to_owned(),
        path: path.to_owned(),
    })
}

/// HTTP requests at a fixed rate, each on a new connection
/// (`Connection: close`, so every request also exercises the path's
/// new-connection handling), sent by a small pool of workers.
#[derive(Debug)]
pub struct HttpLoad {
    target: String,
    rate_per_s: u32,
    start: Instant,
    counters: Arc<LoadCounters>,
    record: Arc<Mutex<LoadRecord>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl HttpLoad {
    /// Starts `rate_per_s` `GET`s per second from `netns` to `target`
    /// (`http://IP:PORT/path`, `IP:PORT` or `http://IP/`).
    ///
    /// # Errors
    /// If the rate is 0 or above 10 000, the target does not parse, or the
    /// namespace cannot be entered.
    pub fn start(netns: Option<&str>, target: &str, rate_per_s: u32) -> Result<Self> {
        if rate_per_s == 0 || rate_per_s > 10_000 {
            return Err(TrafficError::Invalid(format!(
                "HTTP rate {rate_per_s}/s (1..=10000)"
            )));
        }
        let parsed = parse_target(target)?;
        // Fail now, not in a worker, if the namespace is unusable.
        in_namespace(netns, || Ok(()))?;

        // Enough workers that a server answering in ~100 ms still keeps up.
        let workers = (rate_per_s / 10).clamp(2, 16) as usize;
        // Bounded: when every worker is busy and the queue is full, the
        // pacer sheds the tick and counts it rather than queueing latency.
        let (ticks, queue): (SyncSender<()>, Receiver<()>) = mpsc::sync_channel(workers);
        let queue = Arc::new(Mutex::new(queue));
        let start = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(LoadCounters::default());
        let record = Arc::new(Mutex::new(LoadRecord::default()));
        let mut load = Self {
            target: target.to_owned(),
            rate_per_s,
            start,
            counters,
            record,
            stop,
            threads: Vec::with_capacity(workers + 1),
        };
        for _ in 0..workers {
            let queue = Arc::clone(&queue);
            let stop = Arc::clone(&load.stop);
            let counters = Arc::clone(&load.counters);
            let record = Arc::clone(&load.record);
            let target = parsed.clone();
            let netns = netns.map(str::to_owned);
            // Each request opens a socket, so the worker itself lives in
            // the namespace (on the scoped thread `in_namespace` makes).
            load.threads.push(spawn("http-load", move || {
                let result = in_namespace(netns.as_deref(), || {
                    http_worker(&queue, &stop, &target, &counters, &record);
                    Ok(())
                });
                if let Err(err) = result {
                    lock(&record).last_error = Some(err.to_string());
                }
            })?);
        }
        let stop = Arc::clone(&load.stop);
        let counters = Arc::clone(&load.counters);
        load.threads.push(spawn("http-pacer", move || {
            pace(start, rate_per_s, &ticks, &stop, &counters);
        })?);
        Ok(load)
    }

    /// Requests attempted so far.
    pub fn requests(&self) -> u64 {
        self.counters.requests.load(Ordering::Relaxed)
    }

    /// 5xx answers so far.
    pub fn server_errors(&self) -> u64 {
        self.counters.server_errors.load(Ordering::Relaxed)
    }

    /// Requests failed without an answer so far.
    pub fn errors(&self) -> u64 {
        self.counters.errors.load(Ordering::Relaxed)
    }

    /// Stops the load (requests in flight finish or time out), joins every
    /// thread and reports.
    pub fn stop(mut self) -> HttpReport {
        self.halt();
        let duration = self.start.elapsed();
        let record = lock(&self.record);
        let count = |filter: fn(u16) -> bool| -> u64 {
            record
                .status_counts
                .iter()
                .filter(|(status, _)| filter(**status))
                .map(|(_, n)| n)
                .sum()
        };
        let requests = self.counters.requests.load(Ordering::Relaxed);
        let ok_2xx = count(|s| (200..300).contains(&s));
        let server_errors_5xx = count(|s| (500..600).contains(&s));
        let other_status = count(|s| !(200..300).contains(&s) && !(500..600).contains(&s));
        let errors = self.counters.errors.load(Ordering::Relaxed);
        let rate = |n: u64| {
            if requests == 0 {
                0.0
            } else {
                n as f64 / requests as f64
            }
        };
        HttpReport {
            target: self.target.clone(),
            rate_per_s: self.rate_per_s,
            duration_ms: ms(duration),
            requests,
            ok_2xx,
            server_errors_5xx,
            other_status,
            errors,
            shed: self.counters.shed.load(Ordering::Relaxed),
            ok_rate: rate(ok_2xx),
            server_error_rate: rate(server_errors_5xx),
            error_rate: rate(errors),
            status_counts: record.status_counts.clone(),
            latency_p50_ms: record.latency.quantile_ms(0.5),
            latency_p99_ms: record.latency.quantile_ms(0.99),
            last_error: record.last_error.clone(),
        }
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for HttpLoad {
    fn drop(&mut self) {
        self.halt();
    }
}

fn pace(
    start: Instant,
    rate_per_s: u32,
    ticks: &SyncSender<()>,
    stop: &AtomicBool,
    counters: &LoadCounters,
) {
    let interval = Duration::from_secs(1) / rate_per_s;
    let mut tick = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let deadline = start + interval * tick;
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep((deadline - now).min(POLL));
            continue;
        }
        match ticks.try_send(()) {
            Ok(()) => {}
            Err(TrySendError::Full(())) => {
                counters.shed.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(())) => return,
        }
        tick = tick.saturating_add(1);
    }
}

fn http_worker(
    queue: &Mutex<Receiver<()>>,
    stop: &AtomicBool,
    target: &Target,
    counters: &LoadCounters,
    record: &Mutex<LoadRecord>,
) {
    while !stop.load(Ordering::Relaxed) {
        // The lock is held only while waiting for a tick, never across a
        // request.
        let tick = lock(queue).recv_timeout(POLL);
        match tick {
            Ok(()) => {}
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        }
        counters.requests.fetch_add(1, Ordering::Relaxed);
        let began = Instant::now();
        match request(target) {
            Ok(status) => {
                if (500..600).contains(&status) {
                    counters.server_errors.fetch_add(1, Ordering::Relaxed);
                }
                let mut record = lock(record);
                *record.status_counts.entry(status).or_default() += 1;
                record.latency.record(began.elapsed());
            }
            Err(err) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                lock(record).last_error = Some(err.to_string());
            }
        }
    }
}

/// One `GET` on a new connection; the answer's status code.
fn request(target: &Target) -> io::Result<u16> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut stream = TcpStream::connect_timeout(&target.addr, REQUEST_TIMEOUT)?;
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: umbra-traffic\r\nConnection: close\r\n\r\n",
        target.path, target.host
    );
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::with_capacity(256);
    let mut chunk = [0u8; 2048];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no answer in 2 s"));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(len) => {
                response.extend_from_slice(&chunk[..len]);
                if response.len() > MAX_RESPONSE {
                    break;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no answer in 2 s"));
            }
            Err(err) => return Err(err),
        }
    }
    parse_status(&response)
}

/// `HTTP/1.x NNN reason` → NNN.
fn parse_status(response: &[u8]) -> io::Result<u16> {
    let malformed = || io::Error::new(io::ErrorKind::InvalidData, "malformed HTTP answer");
    let line_end = response
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or_else(malformed)?;
    let line = std::str::from_utf8(&response[..line_end]).map_err(|_| malformed())?;
    let mut parts = line.split(' ');
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(malformed());
    }
    parts
        .next()
        .and_then(|code| code.parse::<u16>().ok())
        .filter(|code| (100..600).contains(code))
        .ok_or_else(malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_pattern_is_exact() {
        let faults = HttpFaults::default();
        faults.set_error_fraction(0.25);
        let statuses: Vec<u16> = (0..8).map(|_| faults.next_status()).collect();
        assert_eq!(statuses, [200, 200, 200, 500, 200, 200, 200, 503]);
        faults.set_error_fraction(0.0);
        assert!((0..10).all(|_| faults.next_status() == 200));
        faults.set_error_fraction(f64::NAN);
        assert_eq!(faults.error_fraction(), 0.0);
    }

    #[test]
    fn request_heads_parse() {
        let head = parse_request_head(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n");
        assert_eq!(
            head,
            Some(RequestHead {
                method: "GET".into(),
                path: "/".into(),
                keep_alive: false
            })
        );
        assert!(parse_request_head(b"GET / HTTP/1.0\r\n\r\n").is_some_and(|h| !h.keep_alive));
        assert!(parse_request_head(b"garbage\r\n\r\n").is_none());
    }

    #[test]
    fn targets_parse() {
        let target = parse_target("http://127.0.0.1:8080/health").unwrap();
        assert_eq!(target.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(target.path, "/health");
        assert_eq!(parse_target("198.18.1.1:80").unwrap().path, "/");
        assert_eq!(
            parse_target("http://198.18.1.1/").unwrap().addr,
            "198.18.1.1:80".parse().unwrap()
        );
        assert!(parse_target("https://x/").is_err());
        assert_eq!(
            parse_status(b"HTTP/1.1 503 Service Unavailable\r\n\r\n").unwrap(),
            503
        );
        assert!(parse_status(b"SSH-2.0\r\n").is_err());
    }
}
