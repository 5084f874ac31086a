//! Packets per second forwarded by the real AF_PACKET dataplane between two
//! veth ports, each leading to its own network namespace: a sender in
//! namespace `h1` blasts 64-byte frames of mixed flows with `sendmmsg` into
//! switch port 1, the pipeline steers them (port_classify → service_selector
//! → device_portmap) to port 2, and they arrive in namespace `h2`.
//!
//! The sender keeps at most `WINDOW` frames in flight (sent but not yet
//! processed by the pipeline), so the switch's receive queue never
//! overflows and every counted frame was really forwarded. Bounded: each
//! iteration gives up after `ITERATION_TIMEOUT`, criterion runs ~15 s.
//!
//! Target: >= 500 kpps. Needs root (namespaces, AF_PACKET) plus `ip` and
//! `ethtool`; otherwise it says why and exits successfully.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use tokio::sync::mpsc;
use umbra_pipeline::{
    DevicePortmapAction, DevicePortmapKey, Pipeline, PipelineError, PortClassifyAction,
    ServiceSelectorAction,
};
use umbra_switch::dataplane::af_packet::{PacketSocket, PacketSocketOptions, SendBatch};
use umbra_switch::dataplane::veth_lab::VethLab;
use umbra_switch::dataplane::{Dataplane, DataplaneOptions};

const FRAMES_PER_ITERATION: u64 = 20_000;
const SEND_BATCH: usize = 64;
const WINDOW: u64 = 1024;
const ITERATION_TIMEOUT: Duration = Duration::from_secs(5);

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|uids| uids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// 64-byte Ethernet/IPv4/UDP frames of `count` flows from 198.18.0.0/16 to
/// 198.19.0.1.
fn frames(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let mut f = vec![0u8; 64];
            f[0..12].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
            f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
            f[14] = 0x45;
            f[16..18].copy_from_slice(&50u16.to_be_bytes());
            f[22] = 64;
            f[23] = 17;
            f[26..30].copy_from_slice(&[198, 18, (i >> 8) as u8, i as u8]);
            f[30..34].copy_from_slice(&[198, 19, 0, 1]);
            f[34..36].copy_from_slice(&(1024 + i as u16).to_be_bytes());
            f[36..38].copy_from_slice(&9u16.to_be_bytes());
            f
        })
        .collect()
}

struct Lab {
    _lab: VethLab,
    h2: String,
    pipeline: Arc<Pipeline>,
    dataplane: Dataplane,
    sender: PacketSocket,
}

fn set_up() -> Result<Lab, String> {
    let mut lab = VethLab::new("bench");
    let sw = lab.add_namespace("sw").map_err(|e| e.to_string())?;
    let h1 = lab.add_namespace("h1").map_err(|e| e.to_string())?;
    let h2 = lab.add_namespace("h2").map_err(|e| e.to_string())?;
    lab.add_veth_pair((&sw, "sw1"), (&h1, "eth1"))
        .map_err(|e| e.to_string())?;
    lab.add_veth_pair((&sw, "sw2"), (&h2, "eth2"))
        .map_err(|e| e.to_string())?;

    let pipeline = Arc::new(Pipeline::new());
    pipeline
        .update(|t| {
            t.port_classify.insert(
                1,
                PortClassifyAction::SetService {
                    service_id: 10,
                    direction: 0,
                },
            )?;
            t.service_selector
                .insert(10, ServiceSelectorAction::SetActiveDevice { device: 1 })?;
            t.device_portmap.insert(
                DevicePortmapKey {
                    device: 1,
                    direction: 0,
                },
                DevicePortmapAction::SteerToPort { port: 2 },
            )?;
            Ok::<_, PipelineError>(())
        })
        .map_err(|e| e.to_string())?;

    let (packet_in, _) = mpsc::channel(1);
    let ports = vec![(1, "sw1".to_string()), (2, "sw2".to_string())];
    let dp_pipeline = Arc::clone(&pipeline);
    let dataplane = VethLab::run_in(&sw, move || {
        Dataplane::start_with_options(
            dp_pipeline,
            &ports,
            umbra_pipeline::CPU_PORT,
            packet_in,
            DataplaneOptions::default(),
        )
    })
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    let sender = VethLab::run_in(&h1, || {
        PacketSocket::open(
            "eth1",
            PacketSocketOptions {
                promiscuous: false,
                ignore_outgoing: true,
                qdisc_bypass: true,
                receive_buffer_bytes: 0,
                send_buffer_bytes: 4 << 20,
            },
        )
    })
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    Ok(Lab {
        _lab: lab,
        h2,
        pipeline,
        dataplane,
        sender,
    })
}

/// Sends `count` frames with at most `WINDOW` in flight and returns the time
/// until the pipeline has forwarded them all.
fn forward(lab: &Lab, tx: &mut SendBatch, frames: &[Vec<u8>], count: u64) -> Duration {
    let rx_base = lab.pipeline.port_rx().read(1).map_or(0, |c| c.packets);
    let tx_base = lab.pipeline.port_tx().read(2).map_or(0, |c| c.packets);
    let start = Instant::now();
    let mut sent = 0u64;
    let mut next = 0usize;
    while sent < count && start.elapsed() < ITERATION_TIMEOUT {
        let processed = lab.pipeline.port_rx().read(1).map_or(0, |c| c.packets) - rx_base;
        if sent - processed >= WINDOW {
            // Leave the CPU to the forwarding thread rather than spin.
            std::thread::yield_now();
            continue;
        }
        let n = SEND_BATCH.min((count - sent) as usize);
        let batch = (0..n).map(|k| {
            let f = &frames[(next + k) % frames.len()];
            (&[][..], f.as_slice())
        });
        let outcome = tx.send(&lab.sender, batch);
        next = (next + n) % frames.len();
        sent += outcome.sent as u64;
    }
    while lab.pipeline.port_tx().read(2).map_or(0, |c| c.packets) - tx_base < sent
        && start.elapsed() < ITERATION_TIMEOUT
    {
        std::thread::yield_now();
    }
    start.elapsed()
}

fn main() {
    if !running_as_root() {
        eprintln!(
            "veth_forwarding: skipped: needs root to create network namespaces and AF_PACKET sockets"
        );
        return;
    }
    let lab = match set_up() {
        Ok(lab) => lab,
        Err(err) => {
            eprintln!("veth_forwarding: skipped: cannot build the veth lab: {err}");
            return;
        }
    };
    let frames = frames(256);
    let mut tx = SendBatch::new(SEND_BATCH);
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();
    {
        let mut group = criterion.benchmark_group("veth_forwarding");
        group.throughput(Throughput::Elements(FRAMES_PER_ITERATION));
        group.bench_function("af_packet_64B_port1_to_port2", |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| forward(&lab, &mut tx, &frames, FRAMES_PER_ITERATION))
                    .sum()
            })
        });
        group.finish();
    }
    criterion.final_summary();

    let delivered = VethLab::interface_counter(&lab.h2, "eth2", "rx_packets").unwrap_or(0);
    let stats = lab.dataplane.shutdown();
    let (p1, p2) = (stats.port(1).cloned(), stats.port(2).cloned());
    if let (Some(p1), Some(p2)) = (p1, p2) {
        println!(
            "veth_forwarding: port1 rx {} (dropped {}), port2 tx {} (dropped {}, errors {}), \
             delivered to h2 {delivered}",
            p1.rx_packets, p1.rx_dropped, p2.tx_packets, p2.tx_dropped, p2.errors
        );
    }
}
