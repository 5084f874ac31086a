//! The forwarding thread: poll the assigned ports, receive in batches, run
//! the pipeline under one read lock per batch, transmit per egress port.

use std::ops::Range;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering;
use std::time::Duration;

use umbra_pipeline::{PORT_COUNT, PacketContext};

use super::af_packet::{PollSet, RxRing, SendBatch};
use super::{DataplaneOptions, Port, Shared};

/// Longest wait in `poll`: how quickly a stop request is noticed.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Batches drained from one ready socket before looking at the others (and
/// at the stop flag) again.
const MAX_BATCHES_PER_WAKE: usize = 16;

/// Back-off after a failed receive, so a socket in a persistent error state
/// (e.g. its interface was deleted) cannot spin a core.
const ERROR_BACKOFF: Duration = Duration::from_millis(10);

/// One frame to transmit: which receive slot it comes from and which part.
#[derive(Debug, Clone)]
struct Transmit {
    egress_port: u16,
    slot: usize,
    header: [u8; 2],
    header_len: u8,
    payload: Range<usize>,
}

/// Body of a forwarding thread serving `shared.ports[i]` through its
/// receive ring for each `(i, ring)` in `assigned`. Returns when
/// `shared.stop` is set.
pub(super) fn run(shared: &Shared, mut assigned: Vec<(usize, RxRing)>, options: DataplaneOptions) {
    let batch_size = options.batch_size.max(1);
    let mut tx = SendBatch::new(batch_size);
    let mut ctx = PacketContext::new();
    let mut plan: Vec<Transmit> = Vec::with_capacity(batch_size * 2);
    let fds: Vec<RawFd> = assigned
        .iter()
        .map(|(i, _)| shared.ports[*i].socket.raw_fd())
        .collect();
    let mut poll = PollSet::new(&fds);

    while !shared.stop.load(Ordering::Relaxed) {
        match poll.wait(POLL_INTERVAL) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(_) => {
                std::thread::sleep(ERROR_BACKOFF);
                continue;
            }
        }
        for (k, (port_index, ring)) in assigned.iter_mut().enumerate() {
            if !poll.is_ready(k) {
                continue;
            }
            let port = &shared.ports[*port_index];
            let mut idle = true;
            for _ in 0..MAX_BATCHES_PER_WAKE {
                let claimed = ring.claim(batch_size);
                if claimed == 0 {
                    break;
                }
                idle = false;
                forward_batch(shared, port, ring, &mut ctx, &mut plan, &mut tx);
                ring.release();
                if claimed < batch_size {
                    break;
                }
            }
            if idle && port.socket.take_error().is_some() {
                // Readable with nothing in the ring: a socket error (e.g.
                // the interface went down), now cleared. Count it and back
                // off rather than spin should it persist.
                port.counters.errors.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(ERROR_BACKOFF);
            } else if idle {
                std::thread::yield_now();
            }
        }
    }
}

/// Runs the claimed frames through the pipeline and transmits the result.
fn forward_batch(
    shared: &Shared,
    port: &Port,
    rx: &RxRing,
    ctx: &mut PacketContext,
    plan: &mut Vec<Transmit>,
    tx: &mut SendBatch,
) {
    plan.clear();
    let (mut rx_packets, mut rx_bytes, mut oversized) = (0u64, 0u64, 0u64);
    {
        // The read lock covers processing only, never a syscall.
        let batch = shared.pipeline.packet_batch();
        for slot in 0..rx.claimed() {
            let Ok(frame) = rx.frame(slot) else {
                oversized += 1;
                continue;
            };
            rx_packets += 1;
            rx_bytes += frame.len() as u64;
            for output in batch.process(port.number, frame, ctx) {
                if output.egress_port == shared.cpu_port {
                    shared.deliver_packet_in(output.to_vec(frame));
                    continue;
                }
                let header = output.header();
                let mut header_bytes = [0u8; 2];
                header_bytes[..header.len()].copy_from_slice(header);
                plan.push(Transmit {
                    egress_port: output.egress_port,
                    slot,
                    header: header_bytes,
                    header_len: header.len() as u8,
                    payload: output.payload_range(),
                });
            }
        }
    }
    let counters = &port.counters;
    counters.rx_packets.fetch_add(rx_packets, Ordering::Relaxed);
    counters.rx_bytes.fetch_add(rx_bytes, Ordering::Relaxed);
    if oversized > 0 {
        counters
            .rx_oversized
            .fetch_add(oversized, Ordering::Relaxed);
    }
    transmit(shared, plan, rx, tx);
}

/// Sends the planned frames with one `sendmmsg` run per egress port, keeping
/// each port's frames in order.
fn transmit(shared: &Shared, plan: &[Transmit], rx: &RxRing, tx: &mut SendBatch) {
    let mut done = [0u64; PORT_COUNT / 64];
    for first in plan {
        let egress = first.egress_port;
        let (word, bit) = (usize::from(egress) / 64, 1u64 << (egress % 64));
        if done[word] & bit != 0 {
            continue;
        }
        done[word] |= bit;
        let frames = plan.iter().filter(|t| t.egress_port == egress);
        let Some(port) = shared.port(egress) else {
            shared
                .no_such_port_dropped
                .fetch_add(frames.count() as u64, Ordering::Relaxed);
            continue;
        };
        let mut empty = 0u64;
        let sendable = frames.filter_map(|t| {
            let payload = rx.frame(t.slot).map_or(&[][..], |f| &f[t.payload.clone()]);
            let header = &t.header[..usize::from(t.header_len)];
            if header.is_empty() && payload.is_empty() {
                empty += 1;
                return None;
            }
            Some((header, payload))
        });
        let outcome = tx.send(&port.socket, sendable);
        let c = &port.counters;
        c.tx_packets
            .fetch_add(outcome.sent as u64, Ordering::Relaxed);
        c.tx_bytes.fetch_add(outcome.sent_bytes, Ordering::Relaxed);
        if outcome.dropped > 0 || empty > 0 {
            c.tx_dropped
                .fetch_add(outcome.dropped as u64 + empty, Ordering::Relaxed);
        }
        if outcome.failed > 0 {
            c.errors.fetch_add(outcome.failed as u64, Ordering::Relaxed);
        }
    }
}
