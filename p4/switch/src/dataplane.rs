//! The software switch's dataplane: real Linux interfaces as pipeline ports
//! over AF_PACKET, forwarding threads that run every received frame through
//! the [`Pipeline`] and transmit what it emits, and the virtual CPU port.
//!
//! # Ports
//!
//! Each `(port, ifname)` gets an AF_PACKET `SOCK_RAW` socket receiving every
//! protocol, bound to the interface (in the network namespace of the thread
//! calling [`Dataplane::start`]), with the interface in promiscuous mode,
//! `PACKET_IGNORE_OUTGOING` (we never re-read our own transmissions, nor
//! anything else the host sends there), a receive ring, and qdisc bypass on
//! transmit. Interfaces must be up.
//!
//! Frames up to [`DataplaneOptions::max_frame_bytes`] (9600 bytes by
//! default: 9216-byte jumbo frames plus tags) are forwarded. Larger ones are
//! dropped and counted as `rx_oversized`: with GRO/GSO/TSO enabled, veth and
//! many NICs hand AF_PACKET super-frames of up to 64 KiB that no wire could
//! carry, so **lab interfaces must have offloads off**
//! (`ethtool -K IF gro off gso off tso off tx off rx off`, as
//! [`veth_lab`] does). VLAN tags stripped into metadata by `rxvlan` offload
//! are not re-inserted either; turn it off where tagged traffic matters.
//!
//! # Threads
//!
//! Forwarding threads are plain std threads (no async runtime on the hot
//! path). Ports are spread round-robin over them; each thread `poll`s its
//! sockets with a 100 ms timeout (so a stop request is seen within 100 ms),
//! takes the frames waiting in each ready port's memory-mapped `TPACKET_V2`
//! receive ring in batches, processes a batch under one pipeline read lock
//! ([`Pipeline::packet_batch`]), releases the lock, then transmits with one
//! `sendmmsg` per egress port straight from the ring (no copy) before
//! handing the slots back to the kernel. Transmission never blocks: frames
//! the kernel refuses are dropped and counted.
//!
//! The ring (rather than `recvmmsg`) is what makes 500 kpps on two cores:
//! the kernel copies each frame into it on the CPU that delivered it and
//! the forwarding thread reads without a syscall per frame.
//!
//! # CPU port
//!
//! The CPU port is virtual. Frames the pipeline sends to it (they carry the
//! `packet_in` header) go to a bounded `tokio::sync::mpsc` channel; when it
//! is full or closed they are dropped and counted, never blocking
//! forwarding. [`Dataplane::packet_out`] injects a frame (with its
//! `packet_out` header) at the CPU port, processed on the caller's thread.

pub mod af_packet;
mod forwarding;
pub mod veth_lab;

#[cfg(test)]
mod tests;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use tokio::sync::mpsc;
use umbra_pipeline::{DROP_PORT, PORT_COUNT, PacketContext, Pipeline};

use self::af_packet::{PacketSocket, PacketSocketOptions, RxRing, RxRingConfig};

/// Result alias of the dataplane layer.
pub type Result<T, E = DataplaneError> = std::result::Result<T, E>;

/// The dataplane could not start.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    /// A port number is unusable: 511 and above are not ports (511 is the
    /// drop port) and the CPU port is virtual. The operator's configuration
    /// is at fault.
    #[error("port {port}: {reason}")]
    InvalidPort {
        /// The rejected port number.
        port: u16,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// Two ports share a number or an interface. The operator's
    /// configuration is at fault.
    #[error("port {port} ({ifname}) duplicates another port's number or interface")]
    DuplicatePort {
        /// The second port with that number or interface.
        port: u16,
        /// Its interface.
        ifname: String,
    },

    /// A port's socket could not be set up: the interface does not exist in
    /// this network namespace, or the process lacks `CAP_NET_RAW`. The
    /// environment (or the configuration naming the interface) is at fault.
    #[error("port {port} ({ifname}): {source}")]
    OpenPort {
        /// The port number.
        port: u16,
        /// Its interface.
        ifname: String,
        /// The failed syscall's error.
        #[source]
        source: io::Error,
    },

    /// The CPU port given differs from the pipeline's. The operator's
    /// configuration (`--cpu-port`) is at fault.
    #[error("CPU port {given} differs from the pipeline's CPU port {pipeline}")]
    CpuPortMismatch {
        /// The CPU port passed to [`Dataplane::start`].
        given: u16,
        /// [`Pipeline::cpu_port`].
        pipeline: u16,
    },

    /// The operating system refused to start a forwarding thread.
    #[error("cannot start a forwarding thread: {0}")]
    SpawnThread(#[source] io::Error),
}

/// Tuning of the dataplane; `Default` suits a lab on a few cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataplaneOptions {
    /// Forwarding threads; 0 means one per port, at most one per CPU.
    pub forwarding_threads: usize,
    /// Frames processed under one pipeline read lock and sent per
    /// `sendmmsg`.
    pub batch_size: usize,
    /// Largest frame forwarded, in bytes; larger ones are dropped and counted.
    pub max_frame_bytes: usize,
    /// Slots of each port's receive ring: frames that can wait to be
    /// forwarded before the kernel drops (and counts) more. Each slot takes
    /// about `max_frame_bytes`, so the default costs ~20 MiB per port.
    pub rx_ring_frames: usize,
    /// Socket send buffer per port, in bytes.
    pub send_buffer_bytes: usize,
}

impl Default for DataplaneOptions {
    fn default() -> Self {
        Self {
            forwarding_threads: 0,
            batch_size: 64,
            max_frame_bytes: 9600,
            rx_ring_frames: 2048,
            send_buffer_bytes: 4 << 20,
        }
    }
}

/// Counters of one port, readable while forwarding.
#[derive(Debug, Default)]
struct PortCounters {
    rx_packets: AtomicU64,
    rx_bytes: AtomicU64,
    rx_oversized: AtomicU64,
    rx_kernel_drops: AtomicU64,
    tx_packets: AtomicU64,
    tx_bytes: AtomicU64,
    tx_dropped: AtomicU64,
    errors: AtomicU64,
}

/// A snapshot of one port's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Pipeline port number.
    pub port: u16,
    /// Interface name.
    pub ifname: String,
    /// Frames received and handed to the pipeline.
    pub rx_packets: u64,
    /// Bytes of those frames.
    pub rx_bytes: u64,
    /// Frames dropped on receive: `rx_oversized` plus frames the kernel
    /// dropped because the socket's receive queue was full.
    pub rx_dropped: u64,
    /// Frames larger than [`DataplaneOptions::max_frame_bytes`].
    pub rx_oversized: u64,
    /// Frames transmitted.
    pub tx_packets: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
    /// Frames the pipeline sent here that were not transmitted: no buffer
    /// space (`EAGAIN`/`ENOBUFS`) or truncated to nothing.
    pub tx_dropped: u64,
    /// Socket errors (failed receives, transmissions refused for other
    /// reasons than buffer space).
    pub errors: u64,
}

/// A snapshot of the dataplane's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataplaneStats {
    /// Every port, in configuration order.
    pub ports: Vec<PortStats>,
    /// Frames put on the packet-in channel.
    pub packet_in_sent: u64,
    /// Packet-in frames dropped because the channel was full or closed.
    pub packet_in_dropped: u64,
    /// Frames injected through [`Dataplane::packet_out`].
    pub packet_out_received: u64,
    /// Frames the pipeline sent to a port that has no interface.
    pub no_such_port_dropped: u64,
}

impl DataplaneStats {
    /// The stats of pipeline port `port`, if it is configured.
    pub fn port(&self, port: u16) -> Option<&PortStats> {
        self.ports.iter().find(|p| p.port == port)
    }
}

/// One configured port.
#[derive(Debug)]
struct Port {
    number: u16,
    ifname: String,
    socket: PacketSocket,
    counters: PortCounters,
}

/// Marks a port number without an interface in [`Shared::port_slots`].
const NO_PORT: u16 = u16::MAX;

/// State shared by the forwarding threads and the [`Dataplane`] handle.
#[derive(Debug)]
struct Shared {
    pipeline: Arc<Pipeline>,
    cpu_port: u16,
    ports: Vec<Port>,
    /// Port number → index into `ports`, or `NO_PORT`.
    port_slots: Box<[u16]>,
    packet_in: mpsc::Sender<Vec<u8>>,
    packet_in_sent: AtomicU64,
    packet_in_dropped: AtomicU64,
    packet_out_received: AtomicU64,
    no_such_port_dropped: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    fn port(&self, number: u16) -> Option<&Port> {
        match self.port_slots.get(usize::from(number)).copied() {
            Some(NO_PORT) | None => None,
            Some(index) => self.ports.get(usize::from(index)),
        }
    }

    /// Hands a packet-in frame to the controller side without blocking.
    fn deliver_packet_in(&self, frame: Vec<u8>) {
        match self.packet_in.try_send(frame) {
            Ok(()) => self.packet_in_sent.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.packet_in_dropped.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// The running dataplane. Dropping it stops and joins the forwarding
/// threads, like [`Dataplane::shutdown`].
#[derive(Debug)]
pub struct Dataplane {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    /// Context of the packet-out path (a slow path, serialised).
    packet_out_context: Mutex<PacketContext>,
}

impl Dataplane {
    /// Opens every port and starts forwarding with default options.
    /// `cpu_port` must be the pipeline's ([`Pipeline::cpu_port`]); frames
    /// the pipeline sends there go to `packet_in`. With no ports nothing is
    /// forwarded but [`Dataplane::packet_out`] still works.
    ///
    /// # Errors
    /// See [`Dataplane::start_with_options`].
    pub fn start(
        pipeline: Arc<Pipeline>,
        ports: &[(u16, String)],
        cpu_port: u16,
        packet_in: mpsc::Sender<Vec<u8>>,
    ) -> Result<Self> {
        Self::start_with_options(
            pipeline,
            ports,
            cpu_port,
            packet_in,
            DataplaneOptions::default(),
        )
    }

    /// Opens every port (interfaces are looked up in the calling thread's
    /// network namespace) and starts the forwarding threads.
    ///
    /// # Errors
    /// [`DataplaneError::CpuPortMismatch`],
    /// [`DataplaneError::InvalidPort`] for a port ≥ 511 or equal to the CPU
    /// port, [`DataplaneError::DuplicatePort`], [`DataplaneError::OpenPort`]
    /// if a socket cannot be set up, [`DataplaneError::SpawnThread`]. Nothing
    /// keeps running after an error.
    pub fn start_with_options(
        pipeline: Arc<Pipeline>,
        ports: &[(u16, String)],
        cpu_port: u16,
        packet_in: mpsc::Sender<Vec<u8>>,
        options: DataplaneOptions,
    ) -> Result<Self> {
        if cpu_port != pipeline.cpu_port() {
            return Err(DataplaneError::CpuPortMismatch {
                given: cpu_port,
                pipeline: pipeline.cpu_port(),
            });
        }
        let mut port_slots = vec![NO_PORT; PORT_COUNT].into_boxed_slice();
        let mut opened = Vec::with_capacity(ports.len());
        let mut rings: Vec<Option<RxRing>> = Vec::with_capacity(ports.len());
        for (index, (number, ifname)) in ports.iter().enumerate() {
            let number = *number;
            if number >= DROP_PORT {
                return Err(DataplaneError::InvalidPort {
                    port: number,
                    reason: "ports are 9 bits and 511 is the drop port",
                });
            }
            if number == cpu_port {
                return Err(DataplaneError::InvalidPort {
                    port: number,
                    reason: "the CPU port is virtual and cannot have an interface",
                });
            }
            let duplicate_name = ports[..index].iter().any(|(_, other)| other == ifname);
            if port_slots[usize::from(number)] != NO_PORT || duplicate_name {
                return Err(DataplaneError::DuplicatePort {
                    port: number,
                    ifname: ifname.clone(),
                });
            }
            let (socket, ring) = PacketSocket::open_with_rx_ring(
                ifname,
                PacketSocketOptions {
                    promiscuous: true,
                    ignore_outgoing: true,
                    qdisc_bypass: true,
                    receive_buffer_bytes: 0,
                    send_buffer_bytes: options.send_buffer_bytes,
                },
                RxRingConfig {
                    frames: options.rx_ring_frames,
                    max_frame_bytes: options.max_frame_bytes,
                },
            )
            .map_err(|source| DataplaneError::OpenPort {
                port: number,
                ifname: ifname.clone(),
                source,
            })?;
            port_slots[usize::from(number)] = index as u16;
            rings.push(Some(ring));
            opened.push(Port {
                number,
                ifname: ifname.clone(),
                socket,
                counters: PortCounters::default(),
            });
        }

        let shared = Arc::new(Shared {
            pipeline,
            cpu_port,
            ports: opened,
            port_slots,
            packet_in,
            packet_in_sent: AtomicU64::new(0),
            packet_in_dropped: AtomicU64::new(0),
            packet_out_received: AtomicU64::new(0),
            no_such_port_dropped: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let mut dataplane = Self {
            shared: Arc::clone(&shared),
            threads: Vec::new(),
            packet_out_context: Mutex::new(PacketContext::new()),
        };

        let port_count = shared.ports.len();
        let thread_count = match options.forwarding_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
        .min(port_count);
        for thread_index in 0..thread_count {
            let assigned: Vec<(usize, RxRing)> = (thread_index..port_count)
                .step_by(thread_count)
                .filter_map(|i| rings[i].take().map(|ring| (i, ring)))
                .collect();
            let shared = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("umbra-fwd-{thread_index}"))
                .spawn(move || forwarding::run(&shared, assigned, options));
            match spawned {
                Ok(handle) => dataplane.threads.push(handle),
                // Dropping `dataplane` stops the threads already started.
                Err(err) => return Err(DataplaneError::SpawnThread(err)),
            }
        }
        Ok(dataplane)
    }

    /// The CPU port.
    pub fn cpu_port(&self) -> u16 {
        self.shared.cpu_port
    }

    /// Injects `frame` — a `packet_out` header followed by the packet — at
    /// the CPU port, runs it through the pipeline on the calling thread and
    /// transmits what it emits without blocking (the pipeline read lock is
    /// taken briefly). Returns how many frames were transmitted or put on
    /// the packet-in channel; failures are counted in [`Dataplane::stats`].
    pub fn packet_out(&self, frame: impl AsRef<[u8]>) -> usize {
        let frame = frame.as_ref();
        let shared = &*self.shared;
        shared.packet_out_received.fetch_add(1, Ordering::Relaxed);
        let mut ctx = self
            .packet_out_context
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut delivered = 0;
        for output in shared.pipeline.process(shared.cpu_port, frame, &mut ctx) {
            if output.egress_port == shared.cpu_port {
                let before = shared.packet_in_sent.load(Ordering::Relaxed);
                shared.deliver_packet_in(output.to_vec(frame));
                delivered += usize::from(shared.packet_in_sent.load(Ordering::Relaxed) != before);
                continue;
            }
            let Some(port) = shared.port(output.egress_port) else {
                shared.no_such_port_dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            if output.is_empty() {
                port.counters.tx_dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            match port
                .socket
                .send_parts(output.header(), output.payload(frame))
            {
                Ok(bytes) => {
                    port.counters.tx_packets.fetch_add(1, Ordering::Relaxed);
                    port.counters
                        .tx_bytes
                        .fetch_add(bytes as u64, Ordering::Relaxed);
                    delivered += 1;
                }
                Err(err)
                    if err.kind() == io::ErrorKind::WouldBlock
                        || err.raw_os_error() == Some(libc::ENOBUFS) =>
                {
                    port.counters.tx_dropped.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    port.counters.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        delivered
    }

    /// A snapshot of every counter (also collects the kernel's receive-queue
    /// drop counts).
    pub fn stats(&self) -> DataplaneStats {
        let shared = &*self.shared;
        let ports = shared
            .ports
            .iter()
            .map(|port| {
                let c = &port.counters;
                match port.socket.take_receive_drops() {
                    Ok(drops) => c.rx_kernel_drops.fetch_add(drops, Ordering::Relaxed),
                    Err(_) => c.errors.fetch_add(1, Ordering::Relaxed),
                };
                let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
                PortStats {
                    port: port.number,
                    ifname: port.ifname.clone(),
                    rx_packets: load(&c.rx_packets),
                    rx_bytes: load(&c.rx_bytes),
                    rx_dropped: load(&c.rx_oversized) + load(&c.rx_kernel_drops),
                    rx_oversized: load(&c.rx_oversized),
                    tx_packets: load(&c.tx_packets),
                    tx_bytes: load(&c.tx_bytes),
                    tx_dropped: load(&c.tx_dropped),
                    errors: load(&c.errors),
                }
            })
            .collect();
        DataplaneStats {
            ports,
            packet_in_sent: shared.packet_in_sent.load(Ordering::Relaxed),
            packet_in_dropped: shared.packet_in_dropped.load(Ordering::Relaxed),
            packet_out_received: shared.packet_out_received.load(Ordering::Relaxed),
            no_such_port_dropped: shared.no_such_port_dropped.load(Ordering::Relaxed),
        }
    }

    /// Stops forwarding (threads notice within 100 ms), joins the threads,
    /// closes the sockets and returns the final counters.
    pub fn shutdown(mut self) -> DataplaneStats {
        self.stop_and_join();
        self.stats()
    }

    fn stop_and_join(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for handle in self.threads.drain(..) {
            // A forwarding thread that panicked has nothing left to clean up.
            let _ = handle.join();
        }
    }
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
