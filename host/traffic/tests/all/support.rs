//! In-test fault injectors: a UDP relay that drops or holds chosen probes,
//! and a TCP proxy that can reset a connection or pause all forwarding.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use umbra_traffic::probe::probe_sequence;

/// What the UDP relay does to probes.
#[derive(Debug, Clone, Copy)]
pub enum RelayFault {
    /// Drop probes with these sequence numbers on the way to the reflector.
    DropForward(u64, u64),
    /// Drop echoes with these sequence numbers on the way back.
    DropReturn(u64, u64),
    /// From the probe with this sequence number on, hold everything going
    /// forward for this long, then release it in order.
    HoldForward(u64, Duration),
}

/// A UDP relay between a probe stream and a reflector.
pub struct UdpRelay {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl UdpRelay {
    pub fn start(upstream: SocketAddr, fault: RelayFault) -> Self {
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").unwrap();
        back.connect(upstream).unwrap();
        front
            .set_read_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        back.set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        let addr = front.local_addr().unwrap();
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let forward = {
            let (front, back) = (front.try_clone().unwrap(), back.try_clone().unwrap());
            let (client, stop) = (Arc::clone(&client), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut held: Vec<Vec<u8>> = Vec::new();
                let mut hold_until: Option<Instant> = None;
                let mut buffer = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    if hold_until.is_some_and(|until| Instant::now() >= until) {
                        for datagram in held.drain(..) {
                            let _ = back.send(&datagram);
                        }
                    }
                    let Ok((len, from)) = front.recv_from(&mut buffer) else {
                        continue;
                    };
                    *client.lock().unwrap() = Some(from);
                    let datagram = &buffer[..len];
                    let sequence = probe_sequence(datagram).unwrap();
                    match fault {
                        RelayFault::DropForward(first, last)
                            if (first..=last).contains(&sequence) =>
                        {
                            continue;
                        }
                        RelayFault::HoldForward(first, hold) if sequence == first => {
                            hold_until = Some(Instant::now() + hold);
                        }
                        _ => {}
                    }
                    if hold_until.is_some_and(|until| Instant::now() < until) {
                        held.push(datagram.to_vec());
                    } else {
                        let _ = back.send(datagram);
                    }
                }
            })
        };
        let backward = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut buffer = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    let Ok(len) = back.recv(&mut buffer) else {
                        continue;
                    };
                    let datagram = &buffer[..len];
                    let sequence = probe_sequence(datagram).unwrap();
                    if let RelayFault::DropReturn(first, last) = fault
                        && (first..=last).contains(&sequence)
                    {
                        continue;
                    }
                    if let Some(client) = *client.lock().unwrap() {
                        let _ = front.send_to(datagram, client);
                    }
                }
            })
        };
        Self {
            addr,
            stop,
            threads: vec![forward, backward],
        }
    }
}

impl Drop for UdpRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A TCP proxy; each connection is served by one thread owning both
/// sockets (no clones), so closing the client side with `SO_LINGER` 0
/// really sends a reset.
pub struct TcpProxy {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    reset_requests: Arc<AtomicUsize>,
    paused_until: Arc<Mutex<Option<Instant>>>,
    thread: Option<JoinHandle<()>>,
}

impl TcpProxy {
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let reset_requests = Arc::new(AtomicUsize::new(0));
        let paused_until: Arc<Mutex<Option<Instant>>> = Arc::default();
        let thread = {
            let (stop, reset_requests, paused_until) = (
                Arc::clone(&stop),
                Arc::clone(&reset_requests),
                Arc::clone(&paused_until),
            );
            std::thread::spawn(move || {
                let mut connections = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let upstream = TcpStream::connect(upstream).unwrap();
                            let (stop, reset_requests, paused_until) = (
                                Arc::clone(&stop),
                                Arc::clone(&reset_requests),
                                Arc::clone(&paused_until),
                            );
                            connections.push(std::thread::spawn(move || {
                                pipe(client, upstream, &stop, &reset_requests, &paused_until);
                            }));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
                for connection in connections {
                    let _ = connection.join();
                }
            })
        };
        Self {
            addr,
            stop,
            reset_requests,
            paused_until,
            thread: Some(thread),
        }
    }

    /// Resets one connection (whichever looks first) towards the client.
    pub fn reset_one(&self) {
        self.reset_requests.fetch_add(1, Ordering::SeqCst);
    }

    /// Stops forwarding in both directions for `length`.
    pub fn pause(&self, length: Duration) {
        *self.paused_until.lock().unwrap() = Some(Instant::now() + length);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn pipe(
    client: TcpStream,
    upstream: TcpStream,
    stop: &AtomicBool,
    reset_requests: &AtomicUsize,
    paused_until: &Mutex<Option<Instant>>,
) {
    let timeout = Some(Duration::from_millis(1));
    client.set_read_timeout(timeout).unwrap();
    upstream.set_read_timeout(timeout).unwrap();
    client.set_nodelay(true).unwrap();
    upstream.set_nodelay(true).unwrap();
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(60);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        if reset_requests
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            socket2::SockRef::from(&client)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            return; // dropping `client` now sends RST
        }
        if paused_until
            .lock()
            .unwrap()
            .is_some_and(|until| Instant::now() < until)
        {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        for (mut from, mut to) in [(&client, &upstream), (&upstream, &client)] {
            match from.read(&mut buffer) {
                Ok(0) => return,
                Ok(len) => {
                    if to.write_all(&buffer[..len]).is_err() {
                        return;
                    }
                }
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
        }
    }
}
