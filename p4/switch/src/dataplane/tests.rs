//! Dataplane tests on real interfaces: namespaces joined by veth pairs (see
//! [`veth_lab`](super::veth_lab)), frames sent in one namespace and received
//! in another through the dataplane. Needs root, `ip` and `ethtool`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use umbra_pipeline::{
    CPU_PORT, CloneSession, DevicePortmapAction, DevicePortmapKey, MirrorSamplingAction,
    MirrorTruncateAction, Pipeline, PipelineError, PortClassifyAction, Replica,
    ServiceSelectorAction,
};

use super::af_packet::{PacketSocket, PacketSocketOptions};
use super::veth_lab::VethLab;
use super::{Dataplane, DataplaneError, DataplaneOptions};

/// Switch-side interface of pipeline port `port`, in the switch namespace.
fn switch_if(port: u16) -> String {
    format!("sw{port}")
}

/// A switch namespace with ports 1..=n, each a veth pair to its own host
/// namespace `h<port>` whose end is `eth<port>`.
struct Topology {
    lab: VethLab,
    switch_ns: String,
    hosts: Vec<String>,
}

impl Topology {
    fn new(label: &str, ports: u16) -> Self {
        let mut lab = VethLab::new(label);
        let switch_ns = lab.add_namespace("sw").expect("switch namespace");
        let mut hosts = Vec::new();
        for port in 1..=ports {
            let host = lab
                .add_namespace(&format!("h{port}"))
                .expect("host namespace");
            lab.add_veth_pair(
                (&switch_ns, &switch_if(port)),
                (&host, &format!("eth{port}")),
            )
            .expect("veth pair");
            hosts.push(host);
        }
        Self {
            lab,
            switch_ns,
            hosts,
        }
    }

    fn start(
        &self,
        pipeline: &Arc<Pipeline>,
        packet_in: mpsc::Sender<Vec<u8>>,
        options: DataplaneOptions,
    ) -> Dataplane {
        let ports: Vec<(u16, String)> = (1..=self.hosts.len() as u16)
            .map(|p| (p, switch_if(p)))
            .collect();
        let pipeline = Arc::clone(pipeline);
        VethLab::run_in(&self.switch_ns, move || {
            Dataplane::start_with_options(pipeline, &ports, CPU_PORT, packet_in, options)
        })
        .expect("enter switch namespace")
        .expect("dataplane starts")
    }

    /// A raw socket on host `port`'s end of its veth pair.
    fn host_socket(&self, port: u16) -> PacketSocket {
        let ifname = format!("eth{port}");
        VethLab::run_in(&self.hosts[usize::from(port) - 1], move || {
            PacketSocket::open(
                &ifname,
                PacketSocketOptions {
                    promiscuous: false,
                    ignore_outgoing: true,
                    qdisc_bypass: false,
                    receive_buffer_bytes: 4 << 20,
                    send_buffer_bytes: 0,
                },
            )
        })
        .expect("enter host namespace")
        .expect("host socket")
    }
}

/// Ethernet/IPv4/UDP frame from 198.18.0.1 to 198.19.0.1 with `seq` in the
/// payload, `len` bytes long.
fn frame(seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len.max(46)];
    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    let ip_len = (f.len() - 14) as u16;
    f[16..18].copy_from_slice(&ip_len.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[198, 18, 0, 1]);
    f[30..34].copy_from_slice(&[198, 19, 0, 1]);
    f[34..36].copy_from_slice(&40000u16.to_be_bytes());
    f[36..38].copy_from_slice(&9u16.to_be_bytes());
    f[42..46].copy_from_slice(&seq.to_be_bytes());
    f
}

fn receive(socket: &PacketSocket, count: usize, timeout: Duration) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut frames = Vec::new();
    let mut buf = vec![0u8; 65536];
    while frames.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        if let Some(len) = socket.recv_timeout(&mut buf, left).expect("receive") {
            frames.push(buf[..len].to_vec());
        }
    }
    frames
}

/// Waits a little for frames that should not come.
fn receive_nothing(socket: &PacketSocket) -> Vec<Vec<u8>> {
    receive(socket, 1, Duration::from_millis(300))
}

fn send(socket: &PacketSocket, frame: &[u8]) {
    assert_eq!(socket.send_parts(&[], frame).expect("send"), frame.len());
}

/// Port 1 is a client port of service 10 steered to port 2; port 2 forwards
/// back to port 1.
fn steering_pipeline() -> Arc<Pipeline> {
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
            t.port_classify
                .insert(2, PortClassifyAction::ForwardToPort { port: 1 })?;
            t.service_selector
                .insert(10, ServiceSelectorAction::SetActiveDevice { device: 1 })?;
            t.device_portmap.insert(
                DevicePortmapKey {
                    device: 1,
                    direction: 0,
                },
                DevicePortmapAction::SteerToPort { port: 2 },
            )
        })
        .unwrap();
    pipeline
}

#[test]
fn forwards_frames_between_namespaces_in_both_directions() {
    let topo = Topology::new("fwd", 2);
    let pipeline = steering_pipeline();
    let (packet_in, _packet_in_rx) = mpsc::channel(16);
    let dataplane = topo.start(&pipeline, packet_in, DataplaneOptions::default());
    let h1 = topo.host_socket(1);
    let h2 = topo.host_socket(2);

    let sent: Vec<Vec<u8>> = (0..200).map(|seq| frame(seq, 60 + seq as usize)).collect();
    for f in &sent {
        send(&h1, f);
    }
    let received = receive(&h2, sent.len(), Duration::from_secs(5));
    assert_eq!(received, sent, "every frame, unchanged and in order");

    let back = frame(7, 1500);
    send(&h2, &back);
    assert_eq!(receive(&h1, 1, Duration::from_secs(5)), vec![back.clone()]);
    assert!(
        receive_nothing(&h2).is_empty(),
        "our own transmissions are never re-read"
    );

    let stats = dataplane.shutdown();
    let p1 = stats.port(1).unwrap();
    let p2 = stats.port(2).unwrap();
    let sent_bytes: u64 = sent.iter().map(|f| f.len() as u64).sum();
    assert_eq!((p1.rx_packets, p1.rx_bytes), (200, sent_bytes));
    assert_eq!((p2.tx_packets, p2.tx_bytes), (200, sent_bytes));
    assert_eq!((p2.rx_packets, p1.tx_packets), (1, 1));
    assert_eq!(p1.rx_dropped + p2.tx_dropped + p1.errors + p2.errors, 0);
    assert_eq!(pipeline.port_rx().read(1).unwrap().packets, 200);
    assert_eq!(pipeline.port_tx().read(2).unwrap().packets, 200);
    drop(topo.lab);
}

#[test]
fn frames_the_host_sends_out_of_a_port_are_not_ingress() {
    // Another sender on the switch side of port 1 (say the kernel) transmits
    // towards h1. Without PACKET_IGNORE_OUTGOING the dataplane would see that
    // outgoing frame on port 1 and steer it to port 2.
    let topo = Topology::new("out", 2);
    let pipeline = steering_pipeline();
    let (packet_in, _rx) = mpsc::channel(16);
    let dataplane = topo.start(&pipeline, packet_in, DataplaneOptions::default());
    let (h1, h2) = (topo.host_socket(1), topo.host_socket(2));
    let local = VethLab::run_in(&topo.switch_ns, || {
        PacketSocket::open(
            &switch_if(1),
            PacketSocketOptions {
                promiscuous: false,
                ignore_outgoing: true,
                qdisc_bypass: false,
                receive_buffer_bytes: 0,
                send_buffer_bytes: 0,
            },
        )
    })
    .unwrap()
    .unwrap();
    send(&local, &frame(1, 64));
    assert_eq!(receive(&h1, 1, Duration::from_secs(5)), vec![frame(1, 64)]);
    assert!(receive_nothing(&h2).is_empty());
    assert_eq!(dataplane.shutdown().port(1).unwrap().rx_packets, 0);
}

#[test]
fn selector_flip_moves_traffic_to_the_shadow_leg() {
    let topo = Topology::new("flip", 3);
    let pipeline = steering_pipeline();
    pipeline
        .update(|t| {
            t.device_portmap.insert(
                DevicePortmapKey {
                    device: 2,
                    direction: 0,
                },
                DevicePortmapAction::SteerToPort { port: 3 },
            )
        })
        .unwrap();
    let (packet_in, _rx) = mpsc::channel(16);
    let dataplane = topo.start(&pipeline, packet_in, DataplaneOptions::default());
    let (h1, h2, h3) = (
        topo.host_socket(1),
        topo.host_socket(2),
        topo.host_socket(3),
    );

    send(&h1, &frame(1, 64));
    assert_eq!(receive(&h2, 1, Duration::from_secs(5)).len(), 1);
    pipeline
        .update(|t| {
            t.service_selector
                .modify(10, ServiceSelectorAction::SetActiveDevice { device: 2 })
        })
        .unwrap();
    send(&h1, &frame(2, 64));
    assert_eq!(receive(&h3, 1, Duration::from_secs(5)), vec![frame(2, 64)]);
    assert!(receive_nothing(&h2).is_empty());
    drop(dataplane);
}

#[test]
fn packet_in_and_packet_out_use_the_virtual_cpu_port() {
    let topo = Topology::new("cpu", 2);
    let pipeline = Arc::new(Pipeline::new());
    pipeline
        .update(|t| t.port_classify.insert(1, PortClassifyAction::PuntToCpu))
        .unwrap();
    let (packet_in, mut packet_in_rx) = mpsc::channel(16);
    let dataplane = topo.start(&pipeline, packet_in, DataplaneOptions::default());
    let (h1, h2) = (topo.host_socket(1), topo.host_socket(2));

    let punted = frame(3, 80);
    send(&h1, &punted);
    let deadline = Instant::now() + Duration::from_secs(5);
    let packet = loop {
        match packet_in_rx.try_recv() {
            Ok(packet) => break packet,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(err) => panic!("no packet-in: {err}"),
        }
    };
    let mut expected = vec![0x00, 0x80]; // ingress_port 1 in the top 9 bits
    expected.extend_from_slice(&punted);
    assert_eq!(packet, expected);

    let injected = frame(4, 90);
    let mut with_header = (2u16 << 7).to_be_bytes().to_vec();
    with_header.extend_from_slice(&injected);
    assert_eq!(dataplane.packet_out(&with_header), 1);
    assert_eq!(receive(&h2, 1, Duration::from_secs(5)), vec![injected]);

    // Packet-out to a port without an interface is dropped and counted.
    let mut nowhere = (9u16 << 7).to_be_bytes().to_vec();
    nowhere.extend_from_slice(&frame(5, 64));
    assert_eq!(dataplane.packet_out(&nowhere), 0);

    let stats = dataplane.shutdown();
    assert_eq!(stats.packet_in_sent, 1);
    assert_eq!(stats.packet_out_received, 2);
    assert_eq!(stats.no_such_port_dropped, 1);
    assert_eq!(stats.port(2).unwrap().tx_packets, 1);
}

#[test]
fn full_packet_in_channel_drops_and_counts_without_stalling_forwarding() {
    let topo = Topology::new("full", 2);
    let pipeline = steering_pipeline();
    pipeline
        .update(|t| t.port_classify.modify(2, PortClassifyAction::PuntToCpu))
        .unwrap();
    let (packet_in, _never_read) = mpsc::channel(1);
    let dataplane = topo.start(&pipeline, packet_in, DataplaneOptions::default());
    let (h1, h2) = (topo.host_socket(1), topo.host_socket(2));
    for seq in 0..10 {
        send(&h2, &frame(seq, 64));
    }
    // Forwarding on port 1 still works while packet-in overflows.
    send(&h1, &frame(99, 64));
    assert_eq!(receive(&h2, 1, Duration::from_secs(5)), vec![frame(99, 64)]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while dataplane.stats().packet_in_dropped < 9 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let stats = dataplane.shutdown();
    assert_eq!((stats.packet_in_sent, stats.packet_in_dropped), (1, 9));
}

#[test]
fn mirrored_samples_reach_the_monitor_leg_truncated() {
    let topo = Topology::new("mirror", 3);
    let pipeline = steering_pipeline();
    pipeline
        .update(|t| {
            t.clone_sessions.insert(CloneSession {
                session_id: 5,
                replicas: vec![Replica {
                    egress_port: 3,
                    instance: 1,
                }],
                class_of_service: 0,
                packet_length_bytes: 0,
            })?;
            t.mirror_sampling.insert(
                1,
                MirrorSamplingAction::SamplePerPacket {
                    one_in_n: 1,
                    session: 5,
                },
            )?;
            t.mirror_truncate
                .insert(3, MirrorTruncateAction::TruncateMirror { length: 60 })?;
            Ok::<_, PipelineError>(())
        })
        .unwrap();
    let (packet_in, _rx) = mpsc::channel(16);
    let dataplane = topo.start(&pipeline, packet_in, DataplaneOptions::default());
    let (h1, h2, h3) = (
        topo.host_socket(1),
        topo.host_socket(2),
        topo.host_socket(3),
    );
    let f = frame(1, 400);
    send(&h1, &f);
    assert_eq!(receive(&h2, 1, Duration::from_secs(5)), vec![f.clone()]);
    assert_eq!(
        receive(&h3, 1, Duration::from_secs(5)),
        vec![f[..60].to_vec()]
    );
    let stats = dataplane.shutdown();
    assert_eq!(stats.port(3).unwrap().tx_bytes, 60);
}

#[test]
fn oversized_frames_are_dropped_and_counted() {
    let topo = Topology::new("big", 2);
    let pipeline = steering_pipeline();
    let (packet_in, _rx) = mpsc::channel(16);
    let options = DataplaneOptions {
        max_frame_bytes: 512,
        ..DataplaneOptions::default()
    };
    let dataplane = topo.start(&pipeline, packet_in, options);
    let (h1, h2) = (topo.host_socket(1), topo.host_socket(2));
    send(&h1, &frame(1, 1000));
    send(&h1, &frame(2, 512));
    assert_eq!(receive(&h2, 2, Duration::from_secs(2)), vec![frame(2, 512)]);
    let stats = dataplane.shutdown();
    let p1 = stats.port(1).unwrap();
    assert_eq!((p1.rx_oversized, p1.rx_dropped, p1.rx_packets), (1, 1, 1));
}

#[test]
fn shutdown_is_prompt() {
    let topo = Topology::new("stop", 2);
    let (packet_in, _rx) = mpsc::channel(1);
    let dataplane = topo.start(&steering_pipeline(), packet_in, DataplaneOptions::default());
    let started = Instant::now();
    dataplane.shutdown();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn start_rejects_bad_port_configurations() {
    let pipeline = Arc::new(Pipeline::new());
    let start = |ports: &[(u16, &str)]| {
        let ports: Vec<(u16, String)> = ports.iter().map(|(p, n)| (*p, n.to_string())).collect();
        let (packet_in, _rx) = mpsc::channel(1);
        Dataplane::start(Arc::clone(&pipeline), &ports, CPU_PORT, packet_in)
    };
    assert!(matches!(
        start(&[(511, "lo")]),
        Err(DataplaneError::InvalidPort { port: 511, .. })
    ));
    assert!(matches!(
        start(&[(255, "lo")]),
        Err(DataplaneError::InvalidPort { port: 255, .. })
    ));
    let (packet_in, _rx) = mpsc::channel(1);
    assert!(matches!(
        Dataplane::start(Arc::clone(&pipeline), &[], 254, packet_in),
        Err(DataplaneError::CpuPortMismatch {
            given: 254,
            pipeline: CPU_PORT
        })
    ));
    assert!(matches!(
        start(&[(1, "umbra-none0")]),
        Err(DataplaneError::OpenPort { port: 1, .. })
    ));
    let topo = Topology::new("dup", 2);
    let duplicate = VethLab::run_in(&topo.switch_ns, || {
        let ports = vec![(1, "sw1".to_string()), (1, "sw2".to_string())];
        let (packet_in, _rx) = mpsc::channel(1);
        Dataplane::start(Arc::clone(&pipeline), &ports, CPU_PORT, packet_in).map(drop)
    })
    .unwrap();
    assert!(matches!(
        duplicate,
        Err(DataplaneError::DuplicatePort { port: 1, .. })
    ));
    let same_interface = VethLab::run_in(&topo.switch_ns, || {
        let ports = vec![(1, "sw1".to_string()), (2, "sw1".to_string())];
        let (packet_in, _rx) = mpsc::channel(1);
        Dataplane::start(Arc::clone(&pipeline), &ports, CPU_PORT, packet_in).map(drop)
    })
    .unwrap();
    assert!(matches!(
        same_interface,
        Err(DataplaneError::DuplicatePort { port: 2, .. })
    ));
}
