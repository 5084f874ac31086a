//! In-memory packets per second of the umbra.p4 pipeline on one core: 64-byte
//! frames of mixed flows through the steering path, both directions, with 2 %
//! sampling (per-packet 1-in-50 on the client port, per-flow 2 % on the
//! server port) cloning to a truncating monitor leg.
//!
//! Target: >= 5 Mpps (<= 200 ns per packet).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use umbra_pipeline::{
    CloneSession, DevicePortmapAction, DevicePortmapKey, MirrorSamplingAction,
    MirrorTruncateAction, PacketContext, Pipeline, PipelineError, PortClassifyAction, Replica,
    ServiceSelectorAction,
};

const CLIENT: u16 = 1;
const SERVER: u16 = 2;
const MONITOR: u16 = 7;
const FLOWS: usize = 1024;
const BATCH: usize = 64;

fn lab() -> Pipeline {
    let pipeline = Pipeline::new();
    pipeline
        .update(|t| {
            t.port_classify.insert(
                CLIENT,
                PortClassifyAction::SetService {
                    service_id: 10,
                    direction: 0,
                },
            )?;
            t.port_classify.insert(
                SERVER,
                PortClassifyAction::SetService {
                    service_id: 10,
                    direction: 1,
                },
            )?;
            t.service_selector
                .insert(10, ServiceSelectorAction::SetActiveDevice { device: 1 })?;
            for (direction, port) in [(0, 3), (1, 4)] {
                t.device_portmap.insert(
                    DevicePortmapKey {
                        device: 1,
                        direction,
                    },
                    DevicePortmapAction::SteerToPort { port },
                )?;
            }
            t.clone_sessions.insert(CloneSession {
                session_id: 100,
                replicas: vec![Replica {
                    egress_port: MONITOR,
                    instance: 1,
                }],
                class_of_service: 0,
                packet_length_bytes: 0,
            })?;
            t.mirror_sampling.insert(
                CLIENT,
                MirrorSamplingAction::SamplePerPacket {
                    one_in_n: 50,
                    session: 100,
                },
            )?;
            t.mirror_sampling.insert(
                SERVER,
                MirrorSamplingAction::SamplePerFlow {
                    threshold: (u32::MAX / 50),
                    session: 100,
                },
            )?;
            t.mirror_truncate
                .insert(MONITOR, MirrorTruncateAction::TruncateMirror { length: 48 })?;
            Ok::<_, PipelineError>(())
        })
        .expect("lab tables");
    pipeline
}

/// 64-byte Ethernet/IPv4/UDP frame of flow `i`, in `reverse` direction or not.
fn frame(i: usize, reverse: bool) -> Vec<u8> {
    let client = 0xc612_0000u32 | i as u32; // 198.18.x.x
    let server = 0xc613_0001u32; // 198.19.0.1
    let (src, dst, sport, dport) = if reverse {
        (server, client, 53u16, 1024 + i as u16)
    } else {
        (client, server, 1024 + i as u16, 53u16)
    };
    let mut f = vec![0u8; 64];
    f[0..12].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&50u16.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&src.to_be_bytes());
    f[30..34].copy_from_slice(&dst.to_be_bytes());
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    f
}

fn bench_pipeline(c: &mut Criterion) {
    let pipeline = lab();
    let packets: Vec<(u16, Vec<u8>)> = (0..FLOWS)
        .map(|i| {
            if i % 2 == 0 {
                (CLIENT, frame(i / 2, false))
            } else {
                (SERVER, frame(i / 2, true))
            }
        })
        .collect();
    let mut ctx = PacketContext::with_seed(7);
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(FLOWS as u64));

    group.bench_function("steering_64B_mixed_flows_sampling_2pct/batched", |b| {
        b.iter(|| {
            let mut emitted = 0usize;
            for chunk in packets.chunks(BATCH) {
                let batch = pipeline.packet_batch();
                for (port, frame) in chunk {
                    emitted += batch.process(*port, frame, &mut ctx).len();
                }
            }
            black_box(emitted)
        })
    });

    group.bench_function(
        "steering_64B_mixed_flows_sampling_2pct/per_packet_lock",
        |b| {
            b.iter(|| {
                let mut emitted = 0usize;
                for (port, frame) in &packets {
                    emitted += pipeline.process(*port, frame, &mut ctx).len();
                }
                black_box(emitted)
            })
        },
    );
    group.finish();
}

criterion_group!(benches, bench_pipeline);
criterion_main!(benches);
