//! Black-box tests of `umbra.p4` as the pipeline executes it, through the
//! public API only: the lab topology of DESIGN.md programmed table by table.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use proptest::prelude::*;
use umbra_pipeline::{
    CPU_PORT, CloneSession, CounterData, DevicePortmapAction, DevicePortmapKey, InstanceType,
    MirrorSamplingAction, MirrorTruncateAction, PacketContext, PacketOutput, Pipeline,
    PipelineError, PortClassifyAction, Replica, ServiceSelectorAction, flow_hash,
};

const CLIENT: u16 = 1;
const SERVER: u16 = 2;
const PRIMARY_C: u16 = 3;
const PRIMARY_S: u16 = 4;
const SHADOW_C: u16 = 5;
const SHADOW_S: u16 = 6;
const MONITOR: u16 = 7;

const SERVICE: u16 = 10;
const PRIMARY: u8 = 1;
const SHADOW: u8 = 2;
const TO_SERVER: u8 = 0;
const TO_CLIENT: u8 = 1;
const MIRROR_SESSION: u32 = 100;

const CLIENT_IP: u32 = 0xc612_0001; // 198.18.0.1
const SERVER_IP: u32 = 0xc613_0001; // 198.19.0.1

/// Ethernet + IPv4 + TCP or UDP, padded with `payload_len` bytes.
fn ipv4_frame(
    src: u32,
    dst: u32,
    protocol: u8,
    sport: u16,
    dport: u16,
    payload_len: usize,
) -> Vec<u8> {
    let l4_len = if protocol == 6 { 20 } else { 8 };
    let mut f = vec![0u8; 14 + 20 + l4_len + payload_len];
    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    let total = (20 + l4_len + payload_len) as u16;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    f[22] = 64;
    f[23] = protocol;
    f[26..30].copy_from_slice(&src.to_be_bytes());
    f[30..34].copy_from_slice(&dst.to_be_bytes());
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    for (i, b) in f[14 + 20 + l4_len..].iter_mut().enumerate() {
        *b = i as u8;
    }
    f
}

fn client_frame(payload_len: usize) -> Vec<u8> {
    ipv4_frame(CLIENT_IP, SERVER_IP, 17, 40000, 53, payload_len)
}

fn server_frame(payload_len: usize) -> Vec<u8> {
    ipv4_frame(SERVER_IP, CLIENT_IP, 17, 53, 40000, payload_len)
}

/// The lab: service 10 steered through the primary, device legs forwarding
/// back to the client and server ports.
fn lab() -> Pipeline {
    let pipeline = Pipeline::new();
    pipeline
        .update(|t| {
            let pc = &mut t.port_classify;
            pc.insert(
                CLIENT,
                PortClassifyAction::SetService {
                    service_id: SERVICE,
                    direction: TO_SERVER,
                },
            )?;
            pc.insert(
                SERVER,
                PortClassifyAction::SetService {
                    service_id: SERVICE,
                    direction: TO_CLIENT,
                },
            )?;
            pc.insert(
                PRIMARY_C,
                PortClassifyAction::ForwardToPort { port: CLIENT },
            )?;
            pc.insert(
                PRIMARY_S,
                PortClassifyAction::ForwardToPort { port: SERVER },
            )?;
            pc.insert(SHADOW_C, PortClassifyAction::ForwardToPort { port: CLIENT })?;
            pc.insert(SHADOW_S, PortClassifyAction::ForwardToPort { port: SERVER })?;
            t.service_selector.insert(
                SERVICE,
                ServiceSelectorAction::SetActiveDevice { device: PRIMARY },
            )?;
            let pm = &mut t.device_portmap;
            for (device, c, s) in [
                (PRIMARY, PRIMARY_C, PRIMARY_S),
                (SHADOW, SHADOW_C, SHADOW_S),
            ] {
                pm.insert(
                    DevicePortmapKey {
                        device,
                        direction: TO_SERVER,
                    },
                    DevicePortmapAction::SteerToPort { port: c },
                )?;
                pm.insert(
                    DevicePortmapKey {
                        device,
                        direction: TO_CLIENT,
                    },
                    DevicePortmapAction::SteerToPort { port: s },
                )?;
            }
            Ok::<_, PipelineError>(())
        })
        .unwrap();
    pipeline
}

fn with_mirror_session(pipeline: &Pipeline, packet_length_bytes: u32) {
    pipeline
        .update(|t| {
            t.clone_sessions.insert(CloneSession {
                session_id: MIRROR_SESSION,
                replicas: vec![Replica {
                    egress_port: MONITOR,
                    instance: 1,
                }],
                class_of_service: 0,
                packet_length_bytes,
            })
        })
        .unwrap();
}

fn set_sampling(pipeline: &Pipeline, port: u16, action: MirrorSamplingAction) {
    pipeline
        .update(|t| match t.mirror_sampling.insert(port, action) {
            Err(PipelineError::EntryExists { .. }) => t.mirror_sampling.modify(port, action),
            other => other,
        })
        .unwrap();
}

/// (egress port, instance type, emitted bytes) of every output.
fn run(
    pipeline: &Pipeline,
    ctx: &mut PacketContext,
    port: u16,
    frame: &[u8],
) -> Vec<(u16, InstanceType, Vec<u8>)> {
    pipeline
        .process(port, frame, ctx)
        .iter()
        .map(|o: &PacketOutput| (o.egress_port, o.instance_type, o.to_vec(frame)))
        .collect()
}

fn ports(outputs: &[(u16, InstanceType, Vec<u8>)]) -> Vec<u16> {
    outputs.iter().map(|o| o.0).collect()
}

#[test]
fn steers_both_directions_through_the_active_device() {
    let p = lab();
    let mut ctx = PacketContext::with_seed(1);
    let c = client_frame(10);
    let out = run(&p, &mut ctx, CLIENT, &c);
    assert_eq!(out, vec![(PRIMARY_C, InstanceType::Normal, c.clone())]);

    let s = server_frame(10);
    assert_eq!(ports(&run(&p, &mut ctx, SERVER, &s)), vec![PRIMARY_S]);
    // The device forwards; its legs lead back to the server and client.
    assert_eq!(ports(&run(&p, &mut ctx, PRIMARY_S, &c)), vec![SERVER]);
    assert_eq!(ports(&run(&p, &mut ctx, PRIMARY_C, &s)), vec![CLIENT]);
}

#[test]
fn one_selector_modify_moves_both_directions_to_the_shadow() {
    let p = lab();
    let mut ctx = PacketContext::with_seed(1);
    p.update(|t| {
        t.service_selector.modify(
            SERVICE,
            ServiceSelectorAction::SetActiveDevice { device: SHADOW },
        )
    })
    .unwrap();
    assert_eq!(
        ports(&run(&p, &mut ctx, CLIENT, &client_frame(0))),
        vec![SHADOW_C]
    );
    assert_eq!(
        ports(&run(&p, &mut ctx, SERVER, &server_frame(0))),
        vec![SHADOW_S]
    );
    let entry = p.read(|t| t.service_selector.get(SERVICE)).unwrap();
    assert_eq!(
        entry.action,
        ServiceSelectorAction::SetActiveDevice { device: SHADOW }
    );
    assert_eq!(
        entry.counter, None,
        "service_selector has no direct counter"
    );
}

#[test]
fn defaults_drop() {
    let empty = Pipeline::new();
    let mut ctx = PacketContext::with_seed(1);
    assert!(
        run(&empty, &mut ctx, CLIENT, &client_frame(0)).is_empty(),
        "port_classify default drop"
    );

    let p = lab();
    // Unknown port: port_classify miss.
    assert!(run(&p, &mut ctx, 40, &client_frame(0)).is_empty());
    // device_portmap miss (device 3 has no legs).
    p.update(|t| {
        t.service_selector.modify(
            SERVICE,
            ServiceSelectorAction::SetActiveDevice { device: 3 },
        )
    })
    .unwrap();
    assert!(run(&p, &mut ctx, CLIENT, &client_frame(0)).is_empty());
    // service_selector miss.
    p.update(|t| t.service_selector.delete(SERVICE)).unwrap();
    assert!(run(&p, &mut ctx, CLIENT, &client_frame(0)).is_empty());
    // Explicit drop action on a port.
    p.update(|t| t.port_classify.modify(PRIMARY_C, PortClassifyAction::Drop))
        .unwrap();
    assert!(run(&p, &mut ctx, PRIMARY_C, &client_frame(0)).is_empty());
}

#[test]
fn a_selector_miss_drops_even_with_a_device_zero_portmap_entry() {
    // umbra.p4 applies device_portmap only when service_selector ran
    // set_active_device, so a miss cannot fall through to device 0.
    let p = lab();
    let mut ctx = PacketContext::with_seed(1);
    p.update(|t| {
        t.service_selector.delete(SERVICE)?;
        t.device_portmap.insert(
            DevicePortmapKey {
                device: 0,
                direction: TO_SERVER,
            },
            DevicePortmapAction::SteerToPort { port: 9 },
        )
    })
    .unwrap();
    assert!(run(&p, &mut ctx, CLIENT, &client_frame(0)).is_empty());
    // A selector whose action is drop() does not steer either.
    p.update(|t| {
        t.service_selector
            .insert(SERVICE, ServiceSelectorAction::Drop)
    })
    .unwrap();
    assert!(run(&p, &mut ctx, CLIENT, &client_frame(0)).is_empty());
}

#[test]
fn changed_default_action_runs_on_miss() {
    let p = lab();
    let mut ctx = PacketContext::with_seed(1);
    p.update(|t| {
        t.port_classify
            .set_default_action(PortClassifyAction::ForwardToPort { port: 8 })
    })
    .unwrap();
    assert_eq!(ports(&run(&p, &mut ctx, 40, &client_frame(0))), vec![8]);
    // A default set_service also runs the steering tables (action_run).
    p.update(|t| {
        t.port_classify
            .set_default_action(PortClassifyAction::SetService {
                service_id: SERVICE,
                direction: TO_CLIENT,
            })
    })
    .unwrap();
    assert_eq!(
        ports(&run(&p, &mut ctx, 40, &client_frame(0))),
        vec![PRIMARY_S]
    );
    p.update(|t| t.port_classify.reset_default_action());
    assert!(run(&p, &mut ctx, 40, &client_frame(0)).is_empty());
}

#[test]
fn punt_to_cpu_prepends_packet_in_with_the_ingress_port() {
    let p = lab();
    let mut ctx = PacketContext::with_seed(1);
    p.update(|t| t.port_classify.insert(300, PortClassifyAction::PuntToCpu))
        .unwrap();
    let frame = client_frame(4);
    let out = run(&p, &mut ctx, 300, &frame);
    assert_eq!(ports(&out), vec![CPU_PORT]);
    // 300 = 0b1_0010_1100: top 9 bits of the 16-bit header, 7 zero bits.
    let mut expected = vec![0b1001_0110, 0b0000_0000];
    expected.extend_from_slice(&frame);
    assert_eq!(out[0].2, expected);
    let p2 = lab();
    p2.update(|t| t.port_classify.insert(301, PortClassifyAction::PuntToCpu))
        .unwrap();
    assert_eq!(
        run(&p2, &mut ctx, 301, &frame)[0].2[..2],
        [0b1001_0110, 0b1000_0000]
    );
}

#[test]
fn packet_out_leaves_through_its_port_without_its_header() {
    let p = lab();
    let mut ctx = PacketContext::with_seed(1);
    let frame = client_frame(6);
    let mut injected = ((MONITOR << 7).to_be_bytes()).to_vec();
    injected.extend_from_slice(&frame);
    let out = run(&p, &mut ctx, CPU_PORT, &injected);
    assert_eq!(out, vec![(MONITOR, InstanceType::Normal, frame.clone())]);
    // The steering tables were not consulted.
    assert_eq!(
        p.read(|t| t.port_classify.entries())
            .iter()
            .map(|e| e.counter.unwrap().packets)
            .sum::<u64>(),
        0
    );
    // port_rx counts the ingress length, header included.
    assert_eq!(
        p.port_rx().read(CPU_PORT.into()).unwrap(),
        CounterData {
            packets: 1,
            bytes: injected.len() as u64
        }
    );

    // Packet-out to the CPU port comes back as packet-in from port 255.
    let mut to_cpu = (CPU_PORT << 7).to_be_bytes().to_vec();
    to_cpu.extend_from_slice(&frame);
    let out = run(&p, &mut ctx, CPU_PORT, &to_cpu);
    let mut expected = vec![0x7f, 0x80];
    expected.extend_from_slice(&frame);
    assert_eq!(out, vec![(CPU_PORT, InstanceType::Normal, expected)]);

    // Packet-out to 511 is a drop.
    assert!(run(&p, &mut ctx, CPU_PORT, &[0xff, 0x80, 1, 2, 3]).is_empty());
}

#[test]
fn short_packet_out_on_cpu_port_is_classified_like_any_packet() {
    let p = lab();
    let mut ctx = PacketContext::with_seed(1);
    assert!(
        run(&p, &mut ctx, CPU_PORT, &[0x03]).is_empty(),
        "no port_classify entry for 255"
    );
    p.update(|t| {
        t.port_classify
            .insert(CPU_PORT, PortClassifyAction::ForwardToPort { port: 9 })
    })
    .unwrap();
    assert_eq!(
        run(&p, &mut ctx, CPU_PORT, &[0x03]),
        vec![(9, InstanceType::Normal, vec![0x03])]
    );
}

#[test]
fn short_and_non_ip_frames_are_steered_unchanged() {
    let p = lab();
    let mut ctx = PacketContext::with_seed(1);
    for frame in [
        vec![1u8, 2, 3],
        client_frame(0)[..20].to_vec(),
        client_frame(0)[..40].to_vec(),
    ] {
        assert_eq!(
            run(&p, &mut ctx, CLIENT, &frame),
            vec![(PRIMARY_C, InstanceType::Normal, frame.clone())]
        );
    }
    let mut arp = vec![0xffu8; 42];
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    assert_eq!(ports(&run(&p, &mut ctx, SERVER, &arp)), vec![PRIMARY_S]);
}

#[test]
fn sampled_clone_is_truncated_by_mirror_truncate() {
    let p = lab();
    let mut ctx = PacketContext::with_seed(1);
    with_mirror_session(&p, 0);
    set_sampling(
        &p,
        CLIENT,
        MirrorSamplingAction::SamplePerPacket {
            one_in_n: 1,
            session: MIRROR_SESSION,
        },
    );
    p.update(|t| {
        t.mirror_truncate
            .insert(MONITOR, MirrorTruncateAction::TruncateMirror { length: 64 })
    })
    .unwrap();
    let frame = client_frame(200);
    let out = run(&p, &mut ctx, CLIENT, &frame);
    assert_eq!(
        out,
        vec![
            (MONITOR, InstanceType::IngressClone, frame[..64].to_vec()),
            (PRIMARY_C, InstanceType::Normal, frame.clone()),
        ]
    );
    // mirror_truncate only applies to clones: a normal packet to the monitor
    // port is not cut.
    p.update(|t| {
        t.port_classify
            .insert(20, PortClassifyAction::ForwardToPort { port: MONITOR })
    })
    .unwrap();
    assert_eq!(run(&p, &mut ctx, 20, &frame)[0].2.len(), frame.len());
    // A shorter packet is not padded.
    let small = client_frame(0);
    assert_eq!(run(&p, &mut ctx, CLIENT, &small)[0].2, small);
}

#[test]
fn packet_length_bytes_truncates_clones_and_the_smaller_cut_wins() {
    let p = lab();
    let mut ctx = PacketContext::with_seed(1);
    with_mirror_session(&p, 100);
    set_sampling(
        &p,
        SERVER,
        MirrorSamplingAction::SamplePerPacket {
            one_in_n: 1,
            session: MIRROR_SESSION,
        },
    );
    let frame = server_frame(300);
    let out = run(&p, &mut ctx, SERVER, &frame);
    assert_eq!(
        out[0],
        (MONITOR, InstanceType::IngressClone, frame[..100].to_vec())
    );
    assert_eq!(out[1].2.len(), frame.len(), "the original is never cut");

    p.update(|t| {
        t.mirror_truncate
            .insert(MONITOR, MirrorTruncateAction::TruncateMirror { length: 80 })
    })
    .unwrap();
    assert_eq!(run(&p, &mut ctx, SERVER, &frame)[0].2.len(), 80);
    p.update(|t| {
        t.mirror_truncate.modify(
            MONITOR,
            MirrorTruncateAction::TruncateMirror { length: 150 },
        )
    })
    .unwrap();
    assert_eq!(run(&p, &mut ctx, SERVER, &frame)[0].2.len(), 100);
}

#[test]
fn clone_replicates_to_every_replica_even_when_the_original_drops() {
    let p = lab();
    let mut ctx = PacketContext::with_seed(1);
    p.update(|t| {
        t.clone_sessions.insert(CloneSession {
            session_id: 7,
            replicas: vec![
                Replica {
                    egress_port: MONITOR,
                    instance: 1,
                },
                Replica {
                    egress_port: MONITOR,
                    instance: 2,
                },
                Replica {
                    egress_port: CPU_PORT,
                    instance: 3,
                },
            ],
            class_of_service: 2,
            packet_length_bytes: 0,
        })?;
        t.service_selector.modify(
            SERVICE,
            ServiceSelectorAction::SetActiveDevice { device: 9 },
        )
    })
    .unwrap();
    set_sampling(
        &p,
        CLIENT,
        MirrorSamplingAction::SamplePerPacket {
            one_in_n: 1,
            session: 7,
        },
    );
    let frame = client_frame(0);
    let outs: Vec<_> = p
        .process(CLIENT, &frame, &mut ctx)
        .iter()
        .map(|o| {
            (
                o.egress_port,
                o.instance,
                o.instance_type,
                o.header().to_vec(),
            )
        })
        .collect();
    assert_eq!(
        outs,
        vec![
            (MONITOR, 1, InstanceType::IngressClone, vec![]),
            (MONITOR, 2, InstanceType::IngressClone, vec![]),
            (CPU_PORT, 3, InstanceType::IngressClone, vec![0x00, 0x80]),
        ]
    );
    // A session that does not exist clones nothing.
    set_sampling(
        &p,
        CLIENT,
        MirrorSamplingAction::SamplePerPacket {
            one_in_n: 1,
            session: 8,
        },
    );
    assert!(run(&p, &mut ctx, CLIENT, &frame).is_empty());
}

#[test]
fn per_packet_sampling_rate_matches_one_in_n() {
    let p = lab();
    with_mirror_session(&p, 0);
    set_sampling(
        &p,
        CLIENT,
        MirrorSamplingAction::SamplePerPacket {
            one_in_n: 50,
            session: MIRROR_SESSION,
        },
    );
    let frame = client_frame(0);
    let count_clones = |seed: u64| {
        let mut ctx = PacketContext::with_seed(seed);
        (0..100_000)
            .filter(|_| p.process(CLIENT, &frame, &mut ctx).len() == 2)
            .count()
    };
    let clones = count_clones(42);
    // Binomial(100000, 0.02): mean 2000, sd ~44; allow 5 sd.
    assert!((1780..=2220).contains(&clones), "{clones} clones");
    assert_eq!(
        count_clones(42),
        clones,
        "a seed makes sampling deterministic"
    );
    assert_eq!(
        p.port_tx().read(MONITOR.into()).unwrap().packets,
        2 * clones as u64
    );

    set_sampling(
        &p,
        CLIENT,
        MirrorSamplingAction::SamplePerPacket {
            one_in_n: 0,
            session: MIRROR_SESSION,
        },
    );
    assert_eq!(count_clones(1), 0, "one_in_n 0 disables sampling");
    set_sampling(&p, CLIENT, MirrorSamplingAction::NoSampling);
    assert_eq!(count_clones(1), 0);
}

#[test]
fn per_flow_sampling_follows_the_hash_threshold() {
    let p = lab();
    let mut ctx = PacketContext::with_seed(1);
    with_mirror_session(&p, 0);
    let threshold = u32::MAX / 4;
    set_sampling(
        &p,
        CLIENT,
        MirrorSamplingAction::SamplePerFlow {
            threshold,
            session: MIRROR_SESSION,
        },
    );
    let mut sampled = 0;
    for flow in 0..4000u32 {
        let sport = 1024 + (flow % 60000) as u16;
        let frame = ipv4_frame(CLIENT_IP + flow / 7, SERVER_IP, 6, sport, 443, 0);
        let cloned = run(&p, &mut ctx, CLIENT, &frame).len() == 2;
        let expected = flow_hash(CLIENT_IP + flow / 7, SERVER_IP, 6, sport, 443) < threshold;
        assert_eq!(cloned, expected);
        sampled += usize::from(cloned);
    }
    // A quarter of the flows, give or take.
    assert!((800..=1200).contains(&sampled), "{sampled}");

    // Non-IPv4 packets hash all-zero fields.
    let mut arp = vec![0u8; 42];
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    let zero_hash = flow_hash(0, 0, 0, 0, 0);
    set_sampling(
        &p,
        CLIENT,
        MirrorSamplingAction::SamplePerFlow {
            threshold: zero_hash + 1,
            session: MIRROR_SESSION,
        },
    );
    assert_eq!(run(&p, &mut ctx, CLIENT, &arp).len(), 2);
    set_sampling(
        &p,
        CLIENT,
        MirrorSamplingAction::SamplePerFlow {
            threshold: zero_hash,
            session: MIRROR_SESSION,
        },
    );
    assert_eq!(run(&p, &mut ctx, CLIENT, &arp).len(), 1);
}

proptest! {
    #[test]
    fn per_flow_sampling_takes_whole_flows_in_both_directions(
        a in any::<u32>(), b in any::<u32>(), sport in any::<u16>(), dport in any::<u16>(),
        tcp in any::<bool>(), threshold in any::<u32>(), payloads in prop::collection::vec(0usize..64, 1..6),
    ) {
        let p = lab();
        let mut ctx = PacketContext::with_seed(3);
        with_mirror_session(&p, 0);
        set_sampling(&p, CLIENT, MirrorSamplingAction::SamplePerFlow { threshold, session: MIRROR_SESSION });
        set_sampling(&p, SERVER, MirrorSamplingAction::SamplePerFlow { threshold, session: MIRROR_SESSION });
        let proto = if tcp { 6 } else { 17 };
        let mut decisions = Vec::new();
        for len in payloads {
            let fwd = ipv4_frame(a, b, proto, sport, dport, len);
            let rev = ipv4_frame(b, a, proto, dport, sport, len);
            decisions.push(p.process(CLIENT, &fwd, &mut ctx).len() == 2);
            decisions.push(p.process(SERVER, &rev, &mut ctx).len() == 2);
        }
        let first = decisions[0];
        prop_assert!(decisions.iter().all(|&d| d == first));
        prop_assert_eq!(first, flow_hash(a, b, proto, sport, dport) < threshold);
    }

    #[test]
    fn arbitrary_frames_never_panic(frame in prop::collection::vec(any::<u8>(), 0..200), port in any::<u16>(), seed in any::<u64>()) {
        let p = lab();
        with_mirror_session(&p, 17);
        set_sampling(&p, CLIENT, MirrorSamplingAction::SamplePerPacket { one_in_n: 2, session: MIRROR_SESSION });
        set_sampling(&p, SERVER, MirrorSamplingAction::SamplePerFlow { threshold: u32::MAX / 2, session: MIRROR_SESSION });
        p.update(|t| t.port_classify.insert(CPU_PORT, PortClassifyAction::PuntToCpu)).unwrap();
        let mut ctx = PacketContext::with_seed(seed);
        for port in [port, port & 0x1ff, CLIENT, SERVER, CPU_PORT, PRIMARY_C] {
            for out in p.process(port, &frame, &mut ctx) {
                let bytes = out.to_vec(&frame);
                prop_assert_eq!(bytes.len(), out.len());
                // Headers are never modified: the emitted payload is a suffix
                // of the frame, cut short at most.
                let start = out.payload_range().start;
                prop_assert!(frame[start..].starts_with(out.payload(&frame)));
            }
        }
    }
}

#[test]
fn counters_count_exact_packets_and_bytes() {
    let p = lab();
    let mut ctx = PacketContext::with_seed(1);
    with_mirror_session(&p, 0);
    set_sampling(
        &p,
        CLIENT,
        MirrorSamplingAction::SamplePerPacket {
            one_in_n: 1,
            session: MIRROR_SESSION,
        },
    );
    p.update(|t| {
        t.mirror_truncate
            .insert(MONITOR, MirrorTruncateAction::TruncateMirror { length: 50 })?;
        t.port_classify.insert(30, PortClassifyAction::PuntToCpu)
    })
    .unwrap();
    let c = client_frame(100); // 142 bytes
    let s = server_frame(20); // 62 bytes
    for _ in 0..3 {
        p.process(CLIENT, &c, &mut ctx);
    }
    p.process(SERVER, &s, &mut ctx);
    p.process(30, &s, &mut ctx);
    p.process(41, &s, &mut ctx); // classify miss: no direct counter hit

    let rx = |port: u16| p.port_rx().read(port.into()).unwrap();
    let tx = |port: u16| p.port_tx().read(port.into()).unwrap();
    assert_eq!(
        rx(CLIENT),
        CounterData {
            packets: 3,
            bytes: 3 * 142
        }
    );
    assert_eq!(
        rx(SERVER),
        CounterData {
            packets: 1,
            bytes: 62
        }
    );
    assert_eq!(
        rx(41),
        CounterData {
            packets: 1,
            bytes: 62
        }
    );
    assert_eq!(
        tx(PRIMARY_C),
        CounterData {
            packets: 3,
            bytes: 3 * 142
        }
    );
    assert_eq!(
        tx(PRIMARY_S),
        CounterData {
            packets: 1,
            bytes: 62
        }
    );
    assert_eq!(
        tx(MONITOR),
        CounterData {
            packets: 3,
            bytes: 3 * 50
        },
        "emitted (truncated) length"
    );
    assert_eq!(
        tx(CPU_PORT),
        CounterData {
            packets: 1,
            bytes: 64
        },
        "packet_in adds 2 bytes"
    );

    p.read(|t| {
        assert_eq!(
            t.port_classify.direct_counter(CLIENT).unwrap(),
            CounterData {
                packets: 3,
                bytes: 3 * 142
            }
        );
        assert_eq!(
            t.port_classify.direct_counter(30).unwrap(),
            CounterData {
                packets: 1,
                bytes: 62
            }
        );
        let to_server = DevicePortmapKey {
            device: PRIMARY,
            direction: TO_SERVER,
        };
        let to_client = DevicePortmapKey {
            device: PRIMARY,
            direction: TO_CLIENT,
        };
        assert_eq!(
            t.device_portmap.direct_counter(to_server).unwrap(),
            CounterData {
                packets: 3,
                bytes: 3 * 142
            }
        );
        assert_eq!(
            t.device_portmap.direct_counter(to_client).unwrap(),
            CounterData {
                packets: 1,
                bytes: 62
            }
        );
        let shadow = DevicePortmapKey {
            device: SHADOW,
            direction: TO_SERVER,
        };
        assert_eq!(
            t.device_portmap.direct_counter(shadow).unwrap(),
            CounterData::default()
        );
        assert!(matches!(
            t.service_selector.direct_counter(SERVICE),
            Err(PipelineError::NoDirectCounter { .. })
        ));
        // Wildcard read reports counters with entries.
        let hits: u64 = t
            .device_portmap
            .entries()
            .iter()
            .map(|e| e.counter.unwrap().packets)
            .sum();
        assert_eq!(hits, 4);
        t.port_classify
            .set_direct_counter(
                CLIENT,
                CounterData {
                    packets: 1,
                    bytes: 2,
                },
            )
            .unwrap();
    });
    assert_eq!(
        p.read(|t| t.port_classify.get(CLIENT)).unwrap().counter,
        Some(CounterData {
            packets: 1,
            bytes: 2
        })
    );

    p.port_rx()
        .write(
            CLIENT.into(),
            CounterData {
                packets: 10,
                bytes: 20,
            },
        )
        .unwrap();
    assert_eq!(
        rx(CLIENT),
        CounterData {
            packets: 10,
            bytes: 20
        }
    );
    assert_eq!(p.port_rx().read_all().len(), 512);
    assert!(matches!(
        p.port_tx().read(512),
        Err(PipelineError::CounterIndexOutOfRange { .. })
    ));
}

#[test]
fn reset_restores_the_initial_pipeline() {
    let p = lab();
    let mut ctx = PacketContext::with_seed(1);
    with_mirror_session(&p, 0);
    p.process(CLIENT, &client_frame(0), &mut ctx);
    p.reset();
    assert_eq!(
        p.port_rx().read(CLIENT.into()).unwrap(),
        CounterData::default()
    );
    assert_eq!(
        p.port_tx().read(PRIMARY_C.into()).unwrap(),
        CounterData::default()
    );
    p.read(|t| {
        assert!(
            t.port_classify.is_empty()
                && t.device_portmap.is_empty()
                && t.service_selector.is_empty()
        );
        assert!(t.clone_sessions.is_empty());
    });
    assert!(run(&p, &mut ctx, CLIENT, &client_frame(0)).is_empty());
}

#[test]
fn batch_updates_are_atomic_for_packets() {
    // A writer repeatedly flips the service and, in the same batch, rewires
    // the legs through a delete and re-insert. Packets must always see a
    // consistent state: never a drop, never the half-updated leg.
    let p = Arc::new(lab());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (p, stop) = (Arc::clone(&p), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut device = PRIMARY;
            let mut flips = 0u32;
            while !stop.load(Ordering::Relaxed) {
                device = if device == PRIMARY { SHADOW } else { PRIMARY };
                p.update(|t| {
                    let key = DevicePortmapKey {
                        device,
                        direction: TO_SERVER,
                    };
                    let action = t.device_portmap.get(key)?.action;
                    t.device_portmap.delete(key)?;
                    t.device_portmap.insert(key, action)?;
                    t.service_selector
                        .modify(SERVICE, ServiceSelectorAction::SetActiveDevice { device })
                })
                .unwrap();
                flips += 1;
            }
            flips
        })
    };
    let mut ctx = PacketContext::with_seed(1);
    let frame = client_frame(0);
    let mut seen = [0u32; 2];
    for _ in 0..50_000 {
        let batch = p.packet_batch();
        for _ in 0..8 {
            let out = batch.process(CLIENT, &frame, &mut ctx);
            assert_eq!(out.len(), 1, "never dropped");
            match out[0].egress_port {
                PRIMARY_C => seen[0] += 1,
                SHADOW_C => seen[1] += 1,
                other => panic!("steered to {other}"),
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let flips = writer.join().unwrap();
    assert!(flips > 0);
    assert_eq!(seen[0] + seen[1], 400_000);
}
