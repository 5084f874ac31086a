//! The UDP probe stream: [`ProbeStream`] on the client sends sequence-numbered,
//! timestamped probes at a fixed rate (1 kHz by default) to a
//! [`ProbeReflector`] on the server, which echoes each one back unchanged.
//! The stream's [`ProbeReport`] gives the switchover gap (longest interval
//! between echo arrivals while sending), the probes lost, duplicated and
//! reordered, and round-trip percentiles; the reflector's own record of what
//! it saw tells on which leg lost probes died ([`LossDirection`]).
//!
//! Wire format (32 bytes, big endian): magic `UMBP`, stream id `u32`,
//! sequence `u64`, send time `u64` (nanoseconds since the stream started),
//! eight bytes of zero padding.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::netns::in_namespace;
use crate::stats::{LatencySamples, ms};
use crate::{Result, TrafficError, socket_error, spawn};

/// Length of a probe datagram.
pub const PROBE_LEN: usize = 32;
const MAGIC: &[u8; 4] = b"UMBP";
/// The default probe rate: DESIGN.md's 1 kHz stream.
pub const DEFAULT_PROBE_HZ: u32 = 1000;
/// How long [`ProbeStream::stop`] waits for stragglers after the last send.
pub const DEFAULT_GRACE: Duration = Duration::from_millis(300);
/// At most this many gaps and lost ranges are listed in a report.
pub const LIST_CAP: usize = 1000;
/// A stream never sends more than this many probes (about 4.6 hours at
/// 1 kHz): it bounds the memory of both ends' sequence bitmaps (2 MiB).
pub const MAX_PROBES: u64 = 1 << 24;
/// How long blocking socket calls wait before threads look at their stop flag.
const POLL: Duration = Duration::from_millis(10);

/// One decoded probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Probe {
    stream_id: u32,
    sequence: u64,
    sent_ns: u64,
}

impl Probe {
    fn encode(self) -> [u8; PROBE_LEN] {
        let mut bytes = [0u8; PROBE_LEN];
        bytes[0..4].copy_from_slice(MAGIC);
        bytes[4..8].copy_from_slice(&self.stream_id.to_be_bytes());
        bytes[8..16].copy_from_slice(&self.sequence.to_be_bytes());
        bytes[16..24].copy_from_slice(&self.sent_ns.to_be_bytes());
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != PROBE_LEN || &bytes[0..4] != MAGIC {
            return None;
        }
        let u64_at = |at: usize| -> Option<u64> {
            Some(u64::from_be_bytes(bytes[at..at + 8].try_into().ok()?))
        };
        Some(Self {
            stream_id: u32::from_be_bytes(bytes[4..8].try_into().ok()?),
            sequence: u64_at(8)?,
            sent_ns: u64_at(16)?,
        })
    }
}

/// The sequence number of a probe datagram, or `None` if `datagram` is not
/// a probe. For relays and fault injectors that act on particular probes.
pub fn probe_sequence(datagram: &[u8]) -> Option<u64> {
    Probe::decode(datagram).map(|probe| probe.sequence)
}

/// A growable set of sequence numbers below [`MAX_PROBES`].
#[derive(Debug, Default, Clone)]
struct SequenceSet {
    words: Vec<u64>,
}

impl SequenceSet {
    /// Inserts `sequence`; false if it was already present or out of range.
    fn insert(&mut self, sequence: u64) -> bool {
        if sequence >= MAX_PROBES {
            return false;
        }
        let word = (sequence / 64) as usize;
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let bit = 1u64 << (sequence % 64);
        let fresh = self.words[word] & bit == 0;
        self.words[word] |= bit;
        fresh
    }

    fn contains(&self, sequence: u64) -> bool {
        self.words
            .get((sequence / 64) as usize)
            .is_some_and(|word| word & (1u64 << (sequence % 64)) != 0)
    }
}

/// Locks a mutex, carrying on with the data if a thread panicked holding it
/// (the data are counters, still meaningful).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What a [`ProbeReflector`] has seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReflectorStats {
    /// Probe datagrams received (duplicates included), each echoed.
    pub probes_seen: u64,
    /// Distinct (stream, sequence) probes received.
    pub distinct_probes_seen: u64,
    /// Datagrams that were not probes (not echoed).
    pub other_datagrams: u64,
    /// Echoes the socket refused to send.
    pub echo_errors: u64,
}

#[derive(Debug, Default)]
struct ReflectorState {
    stats: ReflectorStats,
    /// Sequences seen per stream. At most [`MAX_STREAMS`] streams are kept
    /// (the lab runs one); a new stream beyond that evicts all others.
    seen: HashMap<u32, SequenceSet>,
}

const MAX_STREAMS: usize = 8;

/// The server end of the probe stream: a UDP socket that echoes every probe
/// back to its sender unchanged and remembers which sequence numbers it saw
/// (the one-way count that splits loss into forward and return).
#[derive(Debug)]
pub struct ProbeReflector {
    local_addr: SocketAddr,
    state: Arc<Mutex<ReflectorState>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ProbeReflector {
    /// Binds `bind` (port 0 picks one) in `netns` and starts echoing.
    ///
    /// # Errors
    /// If the namespace cannot be entered or the socket cannot be bound.
    pub fn start(netns: Option<&str>, bind: SocketAddr) -> Result<Self> {
        let socket = in_namespace(netns, || {
            UdpSocket::bind(bind).map_err(socket_error(format!("bind probe reflector {bind}")))
        })?;
        socket
            .set_read_timeout(Some(POLL))
            .map_err(socket_error("probe reflector read timeout"))?;
        let local_addr = socket
            .local_addr()
            .map_err(socket_error("probe reflector address"))?;
        let state = Arc::new(Mutex::new(ReflectorState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = spawn("probe-reflector", {
            let state = Arc::clone(&state);
            let stop = Arc::clone(&stop);
            move || reflect(&socket, &state, &stop)
        })?;
        Ok(Self {
            local_addr,
            state,
            stop,
            thread: Some(thread),
        })
    }

    /// The address probes should be sent to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// What the reflector has seen so far.
    pub fn stats(&self) -> ReflectorStats {
        lock(&self.state).stats
    }

    /// Splits the loss of a stream's report by direction: a lost probe the
    /// reflector saw died on the way back, one it never saw on the way out.
    /// Covers the report's listed `lost_ranges` (all of them unless
    /// `lost_ranges_truncated`).
    pub fn split_loss(&self, report: &ProbeReport) -> LossDirection {
        let state = lock(&self.state);
        let seen = state.seen.get(&report.stream_id);
        let mut split = LossDirection::default();
        for &(first, last) in &report.lost_ranges {
            for sequence in first..=last {
                if seen.is_some_and(|set| set.contains(sequence)) {
                    split.return_path += 1;
                } else {
                    split.forward += 1;
                }
            }
        }
        split
    }

    /// Stops echoing, joins the thread and returns the final counts.
    pub fn stop(mut self) -> ReflectorStats {
        self.halt();
        self.stats()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ProbeReflector {
    fn drop(&mut self) {
        self.halt();
    }
}

fn reflect(socket: &UdpSocket, state: &Mutex<ReflectorState>, stop: &AtomicBool) {
    let mut buffer = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let (len, from) = match socket.recv_from(&mut buffer) {
            Ok(received) => received,
            // Timeouts let us look at the stop flag; ICMP errors reported on
            // the socket (e.g. a client gone) are not ours to act on.
            Err(_) => continue,
        };
        let datagram = &buffer[..len];
        let Some(probe) = Probe::decode(datagram) else {
            lock(state).stats.other_datagrams += 1;
            continue;
        };
        {
            // Synchronous mutex: held for a few field updates, never across I/O.
            let mut state = lock(state);
            state.stats.probes_seen += 1;
            if !state.seen.contains_key(&probe.stream_id) && state.seen.len() >= MAX_STREAMS {
                state.seen.clear();
            }
            if state
                .seen
                .entry(probe.stream_id)
                .or_default()
                .insert(probe.sequence)
            {
                state.stats.distinct_probes_seen += 1;
            }
        }
        if socket.send_to(datagram, from).is_err() {
            lock(state).stats.echo_errors += 1;
        }
    }
}

/// On which leg lost probes died.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LossDirection {
    /// Lost on the way to the reflector (client → server).
    pub forward: u64,
    /// Reached the reflector, but the echo was lost (server → client).
    pub return_path: u64,
}

/// A gap in the echo stream longer than twice the probe interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ProbeGap {
    /// When the gap began (the last echo before it), since the stream started.
    pub at_ms: f64,
    /// How long no echo arrived.
    pub length_ms: f64,
}

/// What a probe stream measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeReport {
    /// The stream's id in the probes (to match the reflector's records).
    pub stream_id: u32,
    /// The configured rate.
    pub rate_hz: u32,
    /// The configured interval between probes.
    pub interval_ms: f64,
    /// How long the stream sent.
    pub duration_ms: f64,
    /// Sequence numbers issued (every one counts, even if the socket refused
    /// to send it, e.g. while the link was down: that probe is lost).
    pub sent: u64,
    /// Sends the socket refused (`ENETUNREACH` and the like).
    pub send_errors: u64,
    /// Distinct sequence numbers echoed back.
    pub received: u64,
    /// Sequence numbers never echoed, after the grace wait for stragglers.
    pub lost: u64,
    /// The lost sequence numbers as inclusive ranges, the first
    /// [`LIST_CAP`].
    pub lost_ranges: Vec<(u64, u64)>,
    /// Whether `lost_ranges` was cut at [`LIST_CAP`].
    pub lost_ranges_truncated: bool,
    /// Echoes of a sequence number already echoed.
    pub duplicates: u64,
    /// Echoes that arrived after an echo of a higher sequence number.
    pub reordered: u64,
    /// The largest interval between consecutive echo arrivals while sending
    /// (the switchover gap).
    pub longest_gap_ms: f64,
    /// When the longest gap began, since the stream started.
    pub longest_gap_at_ms: f64,
    /// Every gap longer than twice the interval, in order, the first
    /// [`LIST_CAP`].
    pub gaps: Vec<ProbeGap>,
    /// How many gaps were longer than twice the interval (listed or not).
    pub gaps_over_2x: u64,
    /// Median round-trip time.
    pub rtt_p50_ms: f64,
    /// 99th percentile round-trip time.
    pub rtt_p99_ms: f64,
}

/// Counters shared between the stream's threads and [`ProbeStream::sent`]
/// and friends, for live progress.
#[derive(Debug, Default)]
struct StreamProgress {
    sent: AtomicU64,
    send_errors: AtomicU64,
    received: AtomicU64,
    /// Nanoseconds since start of the last echo arrival.
    last_arrival_ns: AtomicU64,
    /// Nanoseconds since start of the last send; `u64::MAX` while sending.
    send_end_ns: AtomicU64,
}

/// What the receiving thread accumulates.
#[derive(Debug, Default)]
struct EchoRecord {
    echoed: SequenceSet,
    duplicates: u64,
    reordered: u64,
    highest: Option<u64>,
    longest_gap_ns: u64,
    longest_gap_at_ns: u64,
    gaps: Vec<ProbeGap>,
    gaps_over_2x: u64,
    rtt: LatencySamples,
}

impl EchoRecord {
    /// Accounts for a stretch without echoes from `from_ns` to `to_ns`.
    fn gap(&mut self, from_ns: u64, to_ns: u64, interval_ns: u64) {
        let length = to_ns.saturating_sub(from_ns);
        if length > self.longest_gap_ns {
            self.longest_gap_ns = length;
            self.longest_gap_at_ns = from_ns;
        }
        if length > 2 * interval_ns {
            self.gaps_over_2x += 1;
            if self.gaps.len() < LIST_CAP {
                self.gaps.push(ProbeGap {
                    at_ms: from_ns as f64 / 1e6,
                    length_ms: length as f64 / 1e6,
                });
            }
        }
    }
}

/// The client end of the probe stream: one thread sends probes against
/// absolute deadlines (`start + n × interval`, so the rate holds even when a
/// send is late), another receives the echoes.
#[derive(Debug)]
pub struct ProbeStream {
    stream_id: u32,
    rate_hz: u32,
    interval: Duration,
    start: Instant,
    progress: Arc<StreamProgress>,
    stop_sending: Arc<AtomicBool>,
    stop_receiving: Arc<AtomicBool>,
    sender: Option<JoinHandle<()>>,
    receiver: Option<JoinHandle<EchoRecord>>,
}

impl ProbeStream {
    /// Starts sending `rate_hz` probes per second from `netns` to `target`
    /// (a [`ProbeReflector`]).
    ///
    /// # Errors
    /// If the rate is 0 or above 100 kHz, the namespace cannot be entered or
    /// the socket cannot be created or connected (no route to `target`).
    pub fn start(netns: Option<&str>, target: SocketAddr, rate_hz: u32) -> Result<Self> {
        if rate_hz == 0 || rate_hz > 100_000 {
            return Err(TrafficError::Invalid(format!(
                "probe rate {rate_hz} Hz (1..=100000)"
            )));
        }
        let socket = in_namespace(netns, || {
            let bind: SocketAddr = if target.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                ([0u16; 8], 0).into()
            };
            let socket = UdpSocket::bind(bind).map_err(socket_error("bind probe stream"))?;
            socket
                .connect(target)
                .map_err(socket_error(format!("connect probe stream to {target}")))?;
            Ok(socket)
        })?;
        socket
            .set_read_timeout(Some(POLL))
            .map_err(socket_error("probe stream read timeout"))?;
        let receive_socket = socket
            .try_clone()
            .map_err(socket_error("clone probe socket"))?;

        let interval = Duration::from_secs(1) / rate_hz;
        let start = Instant::now();
        // Distinguishes this stream's probes at a shared reflector; the
        // clock is a fine source for that.
        let stream_id = (start.elapsed().as_nanos() as u32)
            ^ std::process::id().rotate_left(16)
            ^ (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0));
        let progress = Arc::new(StreamProgress {
            send_end_ns: AtomicU64::new(u64::MAX),
            ..StreamProgress::default()
        });
        let stop_sending = Arc::new(AtomicBool::new(false));
        let stop_receiving = Arc::new(AtomicBool::new(false));

        let receiver = spawn("probe-receiver", {
            let progress = Arc::clone(&progress);
            let stop = Arc::clone(&stop_receiving);
            move || {
                receive(
                    &receive_socket,
                    stream_id,
                    start,
                    interval,
                    &progress,
                    &stop,
                )
            }
        })?;
        let sender = spawn("probe-sender", {
            let progress = Arc::clone(&progress);
            let stop = Arc::clone(&stop_sending);
            move || send(&socket, stream_id, start, interval, &progress, &stop)
        });
        let sender = match sender {
            Ok(sender) => sender,
            Err(err) => {
                stop_receiving.store(true, Ordering::Relaxed);
                let _ = receiver.join();
                return Err(err);
            }
        };
        Ok(Self {
            stream_id,
            rate_hz,
            interval,
            start,
            progress,
            stop_sending,
            stop_receiving,
            sender: Some(sender),
            receiver: Some(receiver),
        })
    }

    /// Probes sent so far.
    pub fn sent(&self) -> u64 {
        self.progress.sent.load(Ordering::Relaxed)
    }

    /// Distinct probes echoed so far.
    pub fn received(&self) -> u64 {
        self.progress.received.load(Ordering::Relaxed)
    }

    /// How long no echo has arrived (zero once sending stopped).
    pub fn current_gap(&self) -> Duration {
        if self.progress.send_end_ns.load(Ordering::Relaxed) != u64::MAX {
            return Duration::ZERO;
        }
        let last = Duration::from_nanos(self.progress.last_arrival_ns.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }

    /// Stops sending, waits [`DEFAULT_GRACE`] for stragglers and reports.
    pub fn stop(self) -> ProbeReport {
        self.stop_with_grace(DEFAULT_GRACE)
    }

    /// Stops sending, waits `grace` (capped at 10 s) for stragglers and
    /// reports.
    pub fn stop_with_grace(mut self, grace: Duration) -> ProbeReport {
        self.stop_sending.store(true, Ordering::Relaxed);
        if let Some(sender) = self.sender.take() {
            let _ = sender.join();
        }
        std::thread::sleep(grace.min(Duration::from_secs(10)));
        self.stop_receiving.store(true, Ordering::Relaxed);
        let record = self
            .receiver
            .take()
            .and_then(|receiver| receiver.join().ok())
            .unwrap_or_default();
        self.report(record)
    }

    fn report(&self, mut record: EchoRecord) -> ProbeReport {
        let sent = self.progress.sent.load(Ordering::Relaxed);
        let send_end_ns = self.progress.send_end_ns.load(Ordering::Relaxed);
        let send_end_ns = if send_end_ns == u64::MAX {
            0
        } else {
            send_end_ns
        };
        let interval_ns = self.interval.as_nanos() as u64;
        // The stretch from the last echo to the end of sending is a gap too:
        // a stream that dies for good must show it.
        let last_arrival_ns = self.progress.last_arrival_ns.load(Ordering::Relaxed);
        if send_end_ns > last_arrival_ns {
            record.gap(last_arrival_ns, send_end_ns, interval_ns);
        }

        let mut lost = 0;
        let mut lost_ranges: Vec<(u64, u64)> = Vec::new();
        let mut truncated = false;
        for sequence in 0..sent {
            if record.echoed.contains(sequence) {
                continue;
            }
            lost += 1;
            let full = lost_ranges.len() >= LIST_CAP;
            match lost_ranges.last_mut() {
                Some((_, last)) if *last + 1 == sequence => *last = sequence,
                _ if full => truncated = true,
                _ => lost_ranges.push((sequence, sequence)),
            }
        }
        ProbeReport {
            stream_id: self.stream_id,
            rate_hz: self.rate_hz,
            interval_ms: ms(self.interval),
            duration_ms: send_end_ns as f64 / 1e6,
            sent,
            send_errors: self.progress.send_errors.load(Ordering::Relaxed),
            received: self.progress.received.load(Ordering::Relaxed),
            lost,
            lost_ranges,
            lost_ranges_truncated: truncated,
            duplicates: record.duplicates,
            reordered: record.reordered,
            longest_gap_ms: record.longest_gap_ns as f64 / 1e6,
            longest_gap_at_ms: record.longest_gap_at_ns as f64 / 1e6,
            gaps: record.gaps,
            gaps_over_2x: record.gaps_over_2x,
            rtt_p50_ms: record.rtt.quantile_ms(0.5),
            rtt_p99_ms: record.rtt.quantile_ms(0.99),
        }
    }
}

impl Drop for ProbeStream {
    fn drop(&mut self) {
        self.stop_sending.store(true, Ordering::Relaxed);
        self.stop_receiving.store(true, Ordering::Relaxed);
        if let Some(sender) = self.sender.take() {
            let _ = sender.join();
        }
        if let Some(receiver) = self.receiver.take() {
            let _ = receiver.join();
        }
    }
}

fn send(
    socket: &UdpSocket,
    stream_id: u32,
    start: Instant,
    interval: Duration,
    progress: &StreamProgress,
    stop: &AtomicBool,
) {
    let interval_ns = interval.as_nanos() as u64;
    let mut sequence = 0u64;
    while !stop.load(Ordering::Relaxed) && sequence < MAX_PROBES {
        let deadline = start + Duration::from_nanos(interval_ns * sequence);
        let now = Instant::now();
        if deadline > now {
            // Short sleeps so a slow rate still stops promptly.
            std::thread::sleep((deadline - now).min(POLL));
            continue;
        }
        let sent_ns = start.elapsed().as_nanos() as u64;
        let probe = Probe {
            stream_id,
            sequence,
            sent_ns,
        };
        // Issue the number before sending: on a fast path the echo can
        // arrive before `send` returns, and the receiver only accepts
        // numbers already issued.
        progress.sent.store(sequence + 1, Ordering::Release);
        if let Err(err) = socket.send(&probe.encode()) {
            progress.send_errors.fetch_add(1, Ordering::Relaxed);
            tracing::trace!(sequence, %err, "probe not sent");
        }
        sequence += 1;
    }
    progress
        .send_end_ns
        .store(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
}

fn receive(
    socket: &UdpSocket,
    stream_id: u32,
    start: Instant,
    interval: Duration,
    progress: &StreamProgress,
    stop: &AtomicBool,
) -> EchoRecord {
    let interval_ns = interval.as_nanos() as u64;
    let mut record = EchoRecord::default();
    let mut buffer = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let len = match socket.recv(&mut buffer) {
            Ok(len) => len,
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            // ECONNREFUSED and friends: ICMP errors for earlier sends,
            // reported here; the loss shows in the counts.
            Err(_) => continue,
        };
        let arrival_ns = start.elapsed().as_nanos() as u64;
        let Some(probe) = Probe::decode(&buffer[..len]) else {
            continue;
        };
        if probe.stream_id != stream_id || probe.sequence >= progress.sent.load(Ordering::Acquire) {
            continue;
        }
        record.rtt.record(Duration::from_nanos(
            arrival_ns.saturating_sub(probe.sent_ns),
        ));
        if record.echoed.insert(probe.sequence) {
            progress.received.fetch_add(1, Ordering::Relaxed);
        } else {
            record.duplicates += 1;
        }
        match record.highest {
            Some(highest) if probe.sequence < highest => record.reordered += 1,
            _ => record.highest = Some(probe.sequence),
        }
        // Gaps count only while sending: stragglers after the last send
        // must not turn the grace wait into a gap.
        let last_arrival_ns = progress.last_arrival_ns.load(Ordering::Relaxed);
        let gap_end_ns = arrival_ns.min(progress.send_end_ns.load(Ordering::Relaxed));
        if gap_end_ns > last_arrival_ns {
            record.gap(last_arrival_ns, gap_end_ns, interval_ns);
        }
        progress
            .last_arrival_ns
            .store(arrival_ns.max(last_arrival_ns), Ordering::Relaxed);
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_round_trip_through_the_wire_format() {
        let probe = Probe {
            stream_id: 7,
            sequence: 123_456,
            sent_ns: 99,
        };
        let bytes = probe.encode();
        assert_eq!(Probe::decode(&bytes), Some(probe));
        assert_eq!(probe_sequence(&bytes), Some(123_456));
        assert_eq!(probe_sequence(&bytes[..31]), None);
        let mut garbage = bytes;
        garbage[0] = b'X';
        assert_eq!(probe_sequence(&garbage), None);
    }

    #[test]
    fn sequence_sets_report_duplicates() {
        let mut set = SequenceSet::default();
        assert!(set.insert(130));
        assert!(!set.insert(130));
        assert!(set.contains(130));
        assert!(!set.contains(129));
        assert!(!set.insert(MAX_PROBES));
    }
}
