//! The dataplane's only unsafe code: thin, safe wrappers over the Linux
//! syscalls behind AF_PACKET ports (`socket`, `bind`, `setsockopt`,
//! `recvmmsg`, `sendmmsg`, `sendmsg`, `poll`) and `setns` for lab
//! namespaces. Every `unsafe` block states why it is sound.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;
use std::time::Duration;

/// `ETH_P_ALL`: every protocol.
const ETH_P_ALL: u16 = 0x0003;
/// `<linux/if_packet.h>`; stable kernel ABI.
const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_QDISC_BYPASS: libc::c_int = 20;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const PACKET_MR_PROMISC: libc::c_ushort = 1;

/// `struct packet_mreq` of `<linux/if_packet.h>`.
#[repr(C)]
struct PacketMreq {
    mr_ifindex: libc::c_int,
    mr_type: libc::c_ushort,
    mr_alen: libc::c_ushort,
    mr_address: [libc::c_uchar; 8],
}

/// `struct tpacket_stats` of `<linux/if_packet.h>`.
#[repr(C)]
#[derive(Default)]
struct TpacketStats {
    tp_packets: libc::c_uint,
    tp_drops: libc::c_uint,
}

/// How to set up a [`PacketSocket`].
#[derive(Debug, Clone, Copy)]
pub struct PacketSocketOptions {
    /// Put the interface in promiscuous mode for as long as the socket lives.
    pub promiscuous: bool,
    /// Do not receive frames this host transmits on the interface (including
    /// our own), `PACKET_IGNORE_OUTGOING` (Linux 4.20+).
    pub ignore_outgoing: bool,
    /// Transmit straight to the driver, skipping the qdisc layer.
    pub qdisc_bypass: bool,
    /// `SO_RCVBUF(FORCE)` in bytes; 0 keeps the default.
    pub receive_buffer_bytes: usize,
    /// `SO_SNDBUF(FORCE)` in bytes; 0 keeps the default.
    pub send_buffer_bytes: usize,
}

/// The index of a network interface in the calling thread's namespace.
///
/// # Errors
/// `NotFound`-like OS error if there is no such interface, `InvalidInput`
/// for a name with a NUL byte.
pub fn interface_index(name: &str) -> io::Result<libc::c_int> {
    let name = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call;
    // if_nametoindex only reads it.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(io::Error::last_os_error());
    }
    libc::c_int::try_from(index)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "interface index overflow"))
}

/// Moves the calling thread into the network namespace `name` (as created by
/// `ip netns add`, i.e. `/run/netns/NAME`). Sockets the thread opens
/// afterwards belong to that namespace; threads it spawns inherit it.
///
/// # Errors
/// If the namespace does not exist or `setns` is refused (needs
/// `CAP_SYS_ADMIN`).
pub fn enter_network_namespace(name: &str) -> io::Result<()> {
    let file = File::open(format!("/run/netns/{name}"))?;
    // SAFETY: `file` is an open namespace file descriptor for the duration
    // of the call; setns does not retain it.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// An AF_PACKET `SOCK_RAW` socket bound to one interface, receiving every
/// protocol. Closed on drop.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    /// Opens a socket on `ifname` in the calling thread's network namespace.
    ///
    /// # Errors
    /// If the interface does not exist or a syscall fails (e.g. without
    /// `CAP_NET_RAW`).
    pub fn open(ifname: &str, options: PacketSocketOptions) -> io::Result<Self> {
        let ifindex = interface_index(ifname)?;
        // Protocol 0: the socket receives nothing until bound, so no frame of
        // another interface is ever queued on it.
        // SAFETY: plain syscall with constant arguments; returns a new file
        // descriptor or -1.
        let raw = cvt(unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) })?;
        // SAFETY: `raw` is a freshly created descriptor that nothing else owns.
        let socket = Self {
            fd: unsafe { OwnedFd::from_raw_fd(raw) },
        };
        if options.ignore_outgoing {
            socket.set_int(libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)?;
        }
        if options.qdisc_bypass {
            socket.set_int(libc::SOL_PACKET, PACKET_QDISC_BYPASS, 1)?;
        }
        if options.receive_buffer_bytes > 0 {
            let bytes = clamp_int(options.receive_buffer_bytes);
            // FORCE exceeds net.core.rmem_max with CAP_NET_ADMIN; fall back.
            socket
                .set_int(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, bytes)
                .or_else(|_| socket.set_int(libc::SOL_SOCKET, libc::SO_RCVBUF, bytes))?;
        }
        if options.send_buffer_bytes > 0 {
            let bytes = clamp_int(options.send_buffer_bytes);
            socket
                .set_int(libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, bytes)
                .or_else(|_| socket.set_int(libc::SOL_SOCKET, libc::SO_SNDBUF, bytes))?;
        }

        // SAFETY: sockaddr_ll is plain old data; all-zeroes is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as libc::c_ushort;
        addr.sll_protocol = ETH_P_ALL.to_be();
        addr.sll_ifindex = ifindex;
        // SAFETY: `addr` is a valid sockaddr_ll and the length passed is its
        // size; bind only reads it.
        cvt(unsafe {
            libc::bind(
                socket.fd.as_raw_fd(),
                ptr::from_ref(&addr).cast::<libc::sockaddr>(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;

        if options.promiscuous {
            let mreq = PacketMreq {
                mr_ifindex: ifindex,
                mr_type: PACKET_MR_PROMISC,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            socket.set_raw(libc::SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq)?;
        }
        Ok(socket)
    }

    /// The raw descriptor, for [`PollSet`].
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn set_int(&self, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
        self.set_raw(level, name, &value)
    }

    fn set_raw<T>(&self, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
        // SAFETY: `value` points at a live, initialised `T` whose size is
        // passed; setsockopt only reads it.
        cvt(unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                ptr::from_ref(value).cast::<libc::c_void>(),
                mem::size_of::<T>() as libc::socklen_t,
            )
        })
        .map(drop)
    }

    /// Frames the kernel dropped because the receive queue was full since
    /// the previous call (`PACKET_STATISTICS`, which resets on read).
    ///
    /// # Errors
    /// If `getsockopt` fails.
    pub fn take_receive_drops(&self) -> io::Result<u64> {
        let mut stats = TpacketStats::default();
        let mut len = mem::size_of::<TpacketStats>() as libc::socklen_t;
        // SAFETY: `stats` and `len` are live and writable; the kernel writes
        // at most `len` bytes into `stats` and updates `len`.
        cvt(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_STATISTICS,
                ptr::from_mut(&mut stats).cast::<libc::c_void>(),
                &mut len,
            )
        })?;
        let _ = stats.tp_packets;
        Ok(u64::from(stats.tp_drops))
    }

    /// Receives up to `batch.capacity()` frames without blocking
    /// (`recvmmsg`). Returns how many arrived (0 if none was queued).
    ///
    /// # Errors
    /// On socket errors other than "would block" and EINTR.
    pub fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        batch.received = 0;
        let slots = batch.prepare();
        // SAFETY: `prepare` made headers[i] point at iovecs[i], which points
        // at the i-th disjoint `slot_bytes` chunk of `buffer`; all three are
        // owned by `batch`, exclusively borrowed and not reallocated during
        // the call, and `slots <= headers.len()`. MSG_TRUNC makes the kernel
        // report the real length of oversized frames instead of writing more.
        let rc = unsafe {
            libc::recvmmsg(
                self.fd.as_raw_fd(),
                batch.headers.as_mut_ptr(),
                slots as libc::c_uint,
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                ptr::null_mut(),
            )
        };
        if rc < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(err),
            };
        }
        let received = rc as usize;
        for i in 0..received {
            let header = &batch.headers[i];
            batch.lengths[i] = header.msg_len as usize;
            batch.truncated[i] = header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0
                || header.msg_len as usize > batch.slot_bytes;
        }
        batch.received = received;
        Ok(received)
    }

    /// Receives one frame into `buf`, waiting up to `timeout`. Returns the
    /// frame's real length (larger than `buf` if it was cut), or `None` on
    /// timeout.
    ///
    /// # Errors
    /// On socket errors.
    pub fn recv_timeout(&self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
        let mut poll = PollSet::new(&[self.raw_fd()]);
        if poll.wait(timeout)? == 0 {
            return Ok(None);
        }
        // SAFETY: `buf` is live and writable for `buf.len()` bytes.
        let rc = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast::<libc::c_void>(),
                buf.len(),
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            )
        };
        if rc < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(err),
            };
        }
        Ok(Some(rc as usize))
    }

    /// Transmits one frame made of `header` followed by `payload` without
    /// blocking (`sendmsg` with two iovecs).
    ///
    /// # Errors
    /// `WouldBlock` if the send buffer is full, or any other send error.
    pub fn send_parts(&self, header: &[u8], payload: &[u8]) -> io::Result<usize> {
        let mut iovecs = [iovec(header), iovec(payload)];
        // SAFETY: msghdr is plain old data; all-zeroes (no name, no control)
        // is valid.
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_iov = iovecs.as_mut_ptr();
        msg.msg_iovlen = iovecs.len() as _;
        // SAFETY: `msg` points at `iovecs`, which point at `header` and
        // `payload`; all are live for the call and the kernel only reads
        // them when sending.
        let rc = unsafe { libc::sendmsg(self.fd.as_raw_fd(), &msg, libc::MSG_DONTWAIT) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(rc as usize)
    }
}

fn clamp_int(bytes: usize) -> libc::c_int {
    libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX)
}

fn iovec(bytes: &[u8]) -> libc::iovec {
    libc::iovec {
        // The kernel never writes through a send iovec.
        iov_base: bytes.as_ptr().cast_mut().cast::<libc::c_void>(),
        iov_len: bytes.len(),
    }
}

/// Receive buffers for [`PacketSocket::recv_batch`]: `capacity` slots of
/// `slot_bytes` each, allocated once. Not `Send` (it holds the kernel's
/// scatter lists); create it on the thread that uses it.
pub struct RecvBatch {
    slot_bytes: usize,
    buffer: Box<[u8]>,
    lengths: Vec<usize>,
    truncated: Vec<bool>,
    received: usize,
    headers: Vec<libc::mmsghdr>,
    iovecs: Vec<libc::iovec>,
}

impl RecvBatch {
    /// Allocates `capacity` slots of `slot_bytes` bytes.
    pub fn new(capacity: usize, slot_bytes: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            slot_bytes,
            buffer: vec![0; capacity * slot_bytes].into_boxed_slice(),
            lengths: vec![0; capacity],
            truncated: vec![false; capacity],
            received: 0,
            // SAFETY: mmsghdr is plain old data; all-zeroes is valid (null
            // pointers are replaced by `prepare` before any syscall).
            headers: (0..capacity).map(|_| unsafe { mem::zeroed() }).collect(),
            iovecs: (0..capacity)
                .map(|_| libc::iovec {
                    iov_base: ptr::null_mut(),
                    iov_len: 0,
                })
                .collect(),
        }
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.headers.len()
    }

    /// Frames received by the last [`PacketSocket::recv_batch`].
    pub fn len(&self) -> usize {
        self.received
    }

    /// Whether the last receive returned no frame.
    pub fn is_empty(&self) -> bool {
        self.received == 0
    }

    /// Frame `i` of the last receive: `Ok(bytes)`, or `Err(real_length)` if
    /// it was larger than a slot and got cut.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn frame(&self, i: usize) -> Result<&[u8], usize> {
        assert!(i < self.received);
        if self.truncated[i] {
            return Err(self.lengths[i]);
        }
        let start = i * self.slot_bytes;
        Ok(&self.buffer[start..start + self.lengths[i]])
    }

    /// Points every header at its iovec and every iovec at its slot; returns
    /// the slot count. Done before each receive so moving `self` is harmless.
    fn prepare(&mut self) -> usize {
        let slot_bytes = self.slot_bytes;
        for ((iov, header), chunk) in self
            .iovecs
            .iter_mut()
            .zip(self.headers.iter_mut())
            .zip(self.buffer.chunks_mut(slot_bytes))
        {
            iov.iov_base = chunk.as_mut_ptr().cast::<libc::c_void>();
            iov.iov_len = chunk.len();
            header.msg_hdr.msg_name = ptr::null_mut();
            header.msg_hdr.msg_namelen = 0;
            header.msg_hdr.msg_iov = ptr::from_mut(iov);
            header.msg_hdr.msg_iovlen = 1;
            header.msg_hdr.msg_control = ptr::null_mut();
            header.msg_hdr.msg_controllen = 0;
            header.msg_hdr.msg_flags = 0;
            header.msg_len = 0;
        }
        self.headers.len()
    }
}

/// What a batch transmission did with each frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendOutcome {
    /// Frames handed to the interface.
    pub sent: usize,
    /// Frames refused for lack of buffer space (`EAGAIN`, `ENOBUFS`).
    pub dropped: usize,
    /// Frames refused for any other reason (e.g. `EMSGSIZE`, `ENETDOWN`).
    pub failed: usize,
}

/// Scatter lists for [`SendBatch::send`], allocated once. Not `Send`;
/// create it on the thread that uses it.
pub struct SendBatch {
    headers: Vec<libc::mmsghdr>,
    iovecs: Vec<[libc::iovec; 2]>,
}

impl SendBatch {
    /// Room for `capacity` frames per `sendmmsg`.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            // SAFETY: mmsghdr is plain old data; all-zeroes is valid.
            headers: (0..capacity).map(|_| unsafe { mem::zeroed() }).collect(),
            iovecs: (0..capacity).map(|_| [iovec(&[]), iovec(&[])]).collect(),
        }
    }

    /// Transmits every `(header, payload)` frame on `socket` without
    /// blocking, `capacity` frames per `sendmmsg`. A frame the kernel refuses
    /// is counted and skipped; the rest are still sent.
    pub fn send<'a>(
        &mut self,
        socket: &PacketSocket,
        frames: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> SendOutcome {
        let mut outcome = SendOutcome::default();
        let mut frames = frames.into_iter().peekable();
        while frames.peek().is_some() {
            let mut count = 0;
            // Slots first: zip stops on them without pulling a frame it
            // could not place.
            for ((iovs, msg), (header, payload)) in self
                .iovecs
                .iter_mut()
                .zip(self.headers.iter_mut())
                .zip(frames.by_ref())
            {
                *iovs = [iovec(header), iovec(payload)];
                msg.msg_hdr.msg_name = ptr::null_mut();
                msg.msg_hdr.msg_namelen = 0;
                msg.msg_hdr.msg_iov = iovs.as_mut_ptr();
                msg.msg_hdr.msg_iovlen = 2;
                msg.msg_hdr.msg_control = ptr::null_mut();
                msg.msg_hdr.msg_controllen = 0;
                msg.msg_hdr.msg_flags = 0;
                count += 1;
            }
            let mut done = 0;
            while done < count {
                // SAFETY: headers[done..count] point at iovecs filled above
                // from slices borrowed for 'a, which outlives this call;
                // nothing is reallocated meanwhile; the kernel only reads
                // them (and writes msg_len).
                let rc = unsafe {
                    libc::sendmmsg(
                        socket.fd.as_raw_fd(),
                        self.headers[done..].as_mut_ptr(),
                        (count - done) as libc::c_uint,
                        libc::MSG_DONTWAIT,
                    )
                };
                if rc >= 0 {
                    done += rc as usize;
                    outcome.sent += rc as usize;
                    continue;
                }
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // The frame at `done` was refused: count it and go on.
                if err.kind() == io::ErrorKind::WouldBlock
                    || err.raw_os_error() == Some(libc::ENOBUFS)
                {
                    outcome.dropped += 1;
                } else {
                    outcome.failed += 1;
                }
                done += 1;
            }
        }
        outcome
    }
}

/// A set of descriptors to wait on for readability (`poll`).
#[derive(Debug)]
pub struct PollSet {
    fds: Vec<libc::pollfd>,
}

impl PollSet {
    /// Watches `fds` for input. The descriptors must stay open while the
    /// set is used (a closed one reports `POLLNVAL`, never UB).
    pub fn new(fds: &[RawFd]) -> Self {
        Self {
            fds: fds
                .iter()
                .map(|&fd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect(),
        }
    }

    /// Waits up to `timeout` for any descriptor to become readable; returns
    /// how many are ready (0 on timeout or EINTR).
    ///
    /// # Errors
    /// If `poll` fails for another reason.
    pub fn wait(&mut self, timeout: Duration) -> io::Result<usize> {
        let timeout_ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `fds` is a live, exclusively borrowed array of pollfd whose
        // length is passed; poll only writes `revents`.
        let rc = unsafe { libc::poll(self.fds.as_mut_ptr(), self.fds.len() as libc::nfds_t, timeout_ms) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(err);
        }
        Ok(rc as usize)
    }

    /// Whether descriptor `i` has input (or an error to report) after the
    /// last [`PollSet::wait`].
    pub fn is_ready(&self, i: usize) -> bool {
        self.fds[i].revents != 0
    }
}
