//! Test support: what the host daemon would do to the lab (program the
//! switch, replicate, read metrics) and the traffic the tests send.

use std::io::{ErrorKind, Read, Write as _};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;
use umbra_daemon::fabric::{DevicePorts, Fabric, P4rtFabric, PairPorts, Sampling, SamplingMode};
use umbra_lab::failover_lab::{CgroupInfo, FailoverLab, FailoverLabOptions, LabInfo};
use umbra_orchestrator::Slot;
use umbra_p4rt::{ClientConfig, Connection, P4RuntimeClient};
use umbra_proto::umbra::device::v1::device_client::DeviceClient;
use umbra_proto::umbra::device::v1::{HealthRequest, MetricsRequest, MetricsSample, ServingStatus};
use umbra_replicate::{Peer, Replicator, ReplicatorConfig, ReplicatorHandle, StreamConfig};
use umbra_switch::dataplane::veth_lab::VethLab;

/// Device numbers in `service_selector` / `device_portmap`.
pub const PRIMARY: u8 = 1;
/// See [`PRIMARY`].
pub const SHADOW: u8 = 2;
/// The protected service.
pub const SERVICE: u16 = 1;
/// Longest any single wait of a test may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// Fails loudly unless we are root: a skipped network test would pass
/// without proving anything.
pub fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .expect("Uid line");
    assert_eq!(
        euid, "0",
        "the failover lab tests create network namespaces and cgroups and need root (CI runs them as root)"
    );
}

/// One lab at a time: the machine has two cores, and the tests measure
/// CPU use and loss ratios.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A lab with the options the tests share, and a runtime for the
/// daemon's side.
pub struct Harness {
    pub lab: FailoverLab,
    pub info: LabInfo,
    pub runtime: Runtime,
    /// The switch, programmed as the daemon does.
    pub fabric: P4rtFabric,
    ports: PairPorts,
    stop: CancellationToken,
}

impl Harness {
    /// Brings a lab up and programs its switch to steer through the
    /// primary.
    pub fn up(options: FailoverLabOptions) -> Harness {
        require_root();
        let lab =
            FailoverLab::up(options).expect("the failover lab comes up (root, iproute2, nft)");
        let info = lab.info();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let stop = CancellationToken::new();
        let (fabric, ports) = runtime.block_on(async {
            let Connection {
                client, supervisor, ..
            } = P4RuntimeClient::connect(ClientConfig {
                device_id: info.switch.device_id,
                ..ClientConfig::new(info.switch.p4runtime.to_string())
            })
            .await
            .expect("connect to the switch");
            tokio::spawn(supervisor.run(stop.clone()));
            client
                .push_pipeline(
                    umbra_p4info::umbra_p4info().clone(),
                    Vec::new(),
                    0x0b5e_55ed,
                )
                .await
                .expect("push the pipeline");
            let fabric = P4rtFabric::new(client);
            let ports = pair_ports(&info);
            fabric
                .install(&ports, Slot::A)
                .await
                .expect("program the switch");
            (fabric, ports)
        });
        Harness {
            lab,
            info,
            runtime,
            fabric,
            ports,
            stop,
        }
    }

    /// The agents' URLs: (primary, shadow).
    pub fn agent_urls(&self) -> (String, String) {
        (
            self.info.primary_agent.url.clone(),
            self.info.shadow_agent.url.clone(),
        )
    }

    /// The primary's cgroup, which the CPU and memory faults need.
    pub fn primary_cgroup(&self) -> CgroupInfo {
        self.info
            .primary_agent
            .cgroup
            .clone()
            .expect("the primary has a cgroup (cgroup2 must be mounted)")
    }

    /// Moves the service to `device` with one P4Runtime write.
    pub fn select(&self, device: u8) {
        let slot = self.ports.slot_of(device).expect("a device of the pair");
        self.runtime
            .block_on(self.fabric.flip(&self.ports, slot))
            .expect("the selector write");
    }

    /// Metrics samples of an agent every 100 ms, collected while `during`
    /// runs.
    pub fn metrics_during<T>(
        &self,
        url: &str,
        during: impl FnOnce() -> T,
    ) -> (Vec<MetricsSample>, T) {
        let collected = Arc::new(Mutex::new(Vec::new()));
        let done = CancellationToken::new();
        let task = self.runtime.spawn({
            let (url, collected, done) = (url.to_owned(), Arc::clone(&collected), done.clone());
            async move {
                let mut client = DeviceClient::connect(url)
                    .await
                    .expect("connect to the agent");
                let mut stream = client
                    .metrics(MetricsRequest { interval_ms: 100 })
                    .await
                    .expect("metrics")
                    .into_inner();
                loop {
                    tokio::select! {
                        sample = stream.message() => match sample.expect("a metrics sample") {
                            Some(sample) => collected.lock().expect("lock").push(sample),
                            None => break,
                        },
                        () = done.cancelled() => break,
                    }
                }
            }
        });
        let result = during();
        done.cancel();
        self.runtime.block_on(task).expect("the metrics task");
        let samples = std::mem::take(&mut *collected.lock().expect("lock"));
        (samples, result)
    }

    /// One metrics sample of an agent.
    pub fn metrics_now(&self, url: &str) -> MetricsSample {
        let (samples, ()) =
            self.metrics_during(url, || std::thread::sleep(Duration::from_millis(250)));
        samples.into_iter().last().expect("a metrics sample")
    }

    /// The agent's serving status.
    pub fn health(&self, url: &str) -> (ServingStatus, Vec<String>) {
        self.runtime.block_on(async {
            let mut client = DeviceClient::connect(url.to_owned())
                .await
                .expect("connect");
            let health = client
                .health(HealthRequest {})
                .await
                .expect("health")
                .into_inner();
            (health.status(), health.problems)
        })
    }

    /// Starts the real replicator from the primary's agent to the shadow's.
    pub fn replicate(&self) -> Replication {
        self.replicate_from(PRIMARY)
    }

    /// Starts the real replicator from `device`'s agent to the other's.
    pub fn replicate_from(&self, device: u8) -> Replication {
        let _entered = self.runtime.enter();
        let peer = |name: &str, url: &str| Peer::connect_lazy(name, url, None).expect("peer");
        let (primary, shadow) = (
            peer("primary", &self.info.primary_agent.url),
            peer("shadow", &self.info.shadow_agent.url),
        );
        let (source, target) = if device == PRIMARY {
            (primary, shadow)
        } else {
            (shadow, primary)
        };
        let replicator = Replicator::new(
            source,
            target,
            ReplicatorConfig {
                stream: StreamConfig {
                    backoff_max: Duration::from_millis(300),
                    ..StreamConfig::default()
                },
                anti_entropy: None,
                bidirectional: false,
            },
        );
        let handle = replicator.handle();
        let stop = CancellationToken::new();
        self.runtime.spawn(replicator.run(stop.clone()));
        Replication { handle, stop }
    }

    /// A listener on the server's address, on a free port.
    fn server_listener(&self) -> TcpListener {
        let server_addr = SocketAddr::new(IpAddr::V4(self.info.addresses.server), 0);
        VethLab::run_in(&self.info.namespaces.server, || {
            TcpListener::bind(server_addr)
        })
        .expect("server namespace")
        .expect("listen on the server")
    }

    /// A listener on the server and a connection to it from the client.
    pub fn connect(&self, read_timeout: Duration) -> (TcpStream, TcpStream) {
        let listener = self.server_listener();
        let addr = listener.local_addr().expect("listener address");
        let client = VethLab::run_in(&self.info.namespaces.client, || {
            TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        })
        .expect("client namespace")
        .expect("connect client → server through the primary");
        let (server, peer) = listener.accept().expect("accept");
        assert_eq!(peer.ip(), IpAddr::V4(self.info.addresses.client));
        for stream in [&client, &server] {
            stream
                .set_read_timeout(Some(read_timeout))
                .expect("timeout");
            stream.set_nodelay(true).expect("nodelay");
        }
        (client, server)
    }

    /// Whether a new TCP connection client → server gets through within
    /// `timeout`.
    pub fn can_connect(&self, timeout: Duration) -> bool {
        let listener = self.server_listener();
        let addr = listener.local_addr().expect("listener address");
        VethLab::run_in(&self.info.namespaces.client, || {
            TcpStream::connect_timeout(&addr, timeout).is_ok()
        })
        .expect("client namespace")
    }

    /// UDP datagrams client → server at about `rate` per second until the
    /// returned flood is dropped; counts what the server receives.
    pub fn udp_flood(&self, rate: u32) -> UdpFlood {
        let server_addr = SocketAddr::new(IpAddr::V4(self.info.addresses.server), 9999);
        let receiver = VethLab::run_in(&self.info.namespaces.server, || {
            UdpSocket::bind(server_addr)
        })
        .expect("server namespace")
        .expect("bind the receiver");
        receiver
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let sender = VethLab::run_in(&self.info.namespaces.client, || {
            UdpSocket::bind(SocketAddr::new(
                IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                0,
            ))
        })
        .expect("client namespace")
        .expect("bind the sender");
        let stop = Arc::new(AtomicBool::new(false));
        let interval = Duration::from_secs(1) / rate.max(1);
        let threads = vec![
            std::thread::spawn({
                let stop = Arc::clone(&stop);
                move || {
                    // Bounded: stops on the flag or after a minute.
                    let deadline = Instant::now() + Duration::from_secs(60);
                    let mut next = Instant::now();
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        let _ = sender.send_to(b"probe", server_addr);
                        next += interval;
                        std::thread::sleep(next.saturating_duration_since(Instant::now()));
                    }
                }
            }),
            std::thread::spawn({
                let stop = Arc::clone(&stop);
                move || {
                    let mut buf = [0u8; 64];
                    while !stop.load(Ordering::Relaxed) {
                        let _ = receiver.recv(&mut buf);
                    }
                }
            }),
        ];
        UdpFlood { stop, threads }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A running UDP flood; stopped on drop.
pub struct UdpFlood {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for UdpFlood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The real replicator, stopped on drop.
pub struct Replication {
    pub handle: ReplicatorHandle,
    stop: CancellationToken,
}

impl Drop for Replication {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// What the host daemon installs, as the daemon's own fabric installs
/// it: the client and server ports belong to the service, the devices'
/// legs lead back to the hosts, each device's legs in the port map, the
/// selector on the primary, and 1-in-10 sampling of service traffic to the
/// standby's (the shadow's) monitor leg, cut to 64 bytes.
fn pair_ports(info: &LabInfo) -> PairPorts {
    let ports = &info.ports;
    PairPorts {
        service: SERVICE,
        client_port: ports.client,
        server_port: ports.server,
        devices: [
            DevicePorts {
                device: PRIMARY,
                client_leg: ports.primary_client_leg,
                server_leg: ports.primary_server_leg,
                monitor: ports.primary_monitor,
            },
            DevicePorts {
                device: SHADOW,
                client_leg: ports.shadow_client_leg,
                server_leg: ports.shadow_server_leg,
                monitor: ports.shadow_monitor,
            },
        ],
        sampling: Sampling {
            mode: SamplingMode::Packet,
            one_in: 10,
            truncate_bytes: 64,
        },
    }
}

/// Sends `message` each way and checks it arrives intact.
pub fn exchange(client: &mut TcpStream, server: &mut TcpStream, message: &[u8]) {
    client.write_all(message).expect("client writes");
    let mut got = vec![0; message.len()];
    server
        .read_exact(&mut got)
        .unwrap_or_else(|e| panic!("server reads {:?}: {e}", String::from_utf8_lossy(message)));
    assert_eq!(got, message);
    server.write_all(&got).expect("server writes");
    client
        .read_exact(&mut got)
        .unwrap_or_else(|e| panic!("client reads the echo: {e}"));
    assert_eq!(got, message);
}

/// Sends `bytes` of data each way (the connection's sequence numbers move
/// on by as much).
pub fn bulk(client: &TcpStream, server: &TcpStream, bytes: usize) {
    for (mut from, mut to) in [(client, server), (server, client)] {
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let chunk = vec![0x5a_u8; 64 * 1024];
                let mut left = bytes;
                while left > 0 {
                    let n = left.min(chunk.len());
                    from.write_all(&chunk[..n]).expect("bulk write");
                    left -= n;
                }
            });
            let mut buf = vec![0u8; 64 * 1024];
            let mut got = 0;
            while got < bytes {
                let n = read_once(&mut to, &mut buf).expect("bulk read");
                assert!(n > 0, "the connection closed during the bulk transfer");
                got += n;
            }
        });
    }
}

/// Reads once, retrying reads a signal interrupted.
pub fn read_once(mut stream: impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match stream.read(buf) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// An interface's counters in a sample.
pub fn interface<'a>(
    sample: &'a MetricsSample,
    name: &str,
) -> &'a umbra_proto::umbra::device::v1::InterfaceCounters {
    sample
        .interfaces
        .iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("no interface {name} in {sample:?}"))
}

/// The lab's namespaces present now (`ip netns list`).
pub fn namespaces() -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}
