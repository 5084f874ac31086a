//! The dataplane's only unsafe code: thin, safe wrappers over the Linux
//! syscalls behind AF_PACKET ports (`socket`, `bind`, `setsockopt`, `mmap`
//! of `TPACKET_V2` receive rings, `sendmmsg`, `sendmsg`, `recv`, `poll`) and
//! `setns` for lab namespaces. Every `unsafe` block states why it is sound.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// `ETH_P_ALL`: every protocol.
const ETH_P_ALL: u16 = 0x0003;
/// `<linux/if_packet.h>`; stable kernel ABI.
const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
const PACKET_RX_RING: libc::c_int = 5;
const PACKET_VERSION: libc::c_int = 10;
const TPACKET_V2: libc::c_int = 1;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
/// `TPACKET_ALIGNMENT`.
const TPACKET_ALIGNMENT: usize = 16;
/// Offset of the MAC header in a `TPACKET_V2` frame for Ethernet:
/// `TPACKET_ALIGN(TPACKET2_HDRLEN + 16) - 14` with `TPACKET2_HDRLEN` = 52.
const TPACKET2_MAC_OFFSET: usize = 66;
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

/// `struct tpacket_req` of `<linux/if_packet.h>`.
#[repr(C)]
struct TpacketReq {
    tp_block_size: libc::c_uint,
    tp_block_nr: libc::c_uint,
    tp_frame_size: libc::c_uint,
    tp_frame_nr: libc::c_uint,
}

/// `struct tpacket2_hdr` of `<linux/if_packet.h>`: the head of every frame
/// in a `TPACKET_V2` ring.
#[repr(C)]
struct Tpacket2Hdr {
    tp_status: u32,
    tp_len: u32,
    tp_snaplen: u32,
    tp_mac: u16,
    tp_net: u16,
    tp_sec: u32,
    tp_nsec: u32,
    tp_vlan_tci: u16,
    tp_vlan_tpid: u16,
    tp_padding: [u8; 4],
}

/// `struct tpacket_stats` of `<linux/if_packet.h>`.
#[repr(C)]
#[derive(Default)]
struct TpacketStats {
    // Kernel ABI: present for the layout; only drops are reported.
    #[allow(dead_code)]
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
        Self::open_inner(ifname, options, None).map(|(socket, _)| socket)
    }

    /// Opens a socket as [`PacketSocket::open`] does, receiving through a
    /// memory-mapped `TPACKET_V2` ring of `ring.frames` slots, each holding
    /// a frame of up to `ring.max_frame_bytes` bytes. The ring is set up
    /// before the socket is bound, so no frame is ever queued elsewhere.
    ///
    /// # Errors
    /// As [`PacketSocket::open`], or if the kernel refuses the ring (e.g.
    /// not enough memory).
    pub fn open_with_rx_ring(
        ifname: &str,
        options: PacketSocketOptions,
        ring: RxRingConfig,
    ) -> io::Result<(Self, RxRing)> {
        Self::open_inner(ifname, options, Some(ring))
            .map(|(socket, ring)| (socket, ring.expect("ring requested")))
    }

    fn open_inner(
        ifname: &str,
        options: PacketSocketOptions,
        ring_config: Option<RxRingConfig>,
    ) -> io::Result<(Self, Option<RxRing>)> {
        let ifindex = interface_index(ifname)?;
        // Protocol 0: the socket receives nothing until bound, so no frame of
        // another interface is ever queued on it.
        // SAFETY: plain syscall with constant arguments; returns a new file
        // descriptor or -1.
        let raw =
            cvt(unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) })?;
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

        let ring = match ring_config {
            Some(config) => Some(RxRing::map(&socket, config)?),
            None => None,
        };

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
        Ok((socket, ring))
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

    /// Takes (and so clears) the socket's pending error, e.g. `ENETDOWN`
    /// after its interface went down; `None` if there was none.
    pub fn take_error(&self) -> Option<io::Error> {
        let mut error: libc::c_int = 0;
        let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `error` and `len` are live and writable; the kernel writes
        // at most `len` bytes into `error`.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                ptr::from_mut(&mut error).cast::<libc::c_void>(),
                &mut len,
            )
        };
        match (rc, error) {
            (0, 0) => None,
            (0, code) => Some(io::Error::from_raw_os_error(code)),
            _ => Some(io::Error::last_os_error()),
        }
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
        Ok(u64::from(stats.tp_drops))
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

/// Geometry of a receive ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxRingConfig {
    /// Number of frame slots: how many frames can wait to be read.
    pub frames: usize,
    /// Largest frame a slot holds; longer frames are cut (and reported as
    /// such by [`RxRing::frame`]).
    pub max_frame_bytes: usize,
}

/// A memory-mapped `TPACKET_V2` receive ring: the kernel copies each frame
/// into the next free slot (on the CPU that delivered it) and the reader
/// takes them in order without a syscall per frame.
///
/// Usage: [`RxRing::claim`] the frames that are ready, read them with
/// [`RxRing::frame`], then [`RxRing::release`] them all back to the kernel.
#[derive(Debug)]
pub struct RxRing {
    map: ptr::NonNull<u8>,
    map_len: usize,
    block_size: usize,
    frames_per_block: usize,
    frame_size: usize,
    frame_count: usize,
    /// Next slot the kernel will hand us.
    head: usize,
    /// Slots claimed from `head` on and not yet released.
    claimed: usize,
}

// SAFETY: the mapping is owned exclusively by this value (nothing else has
// its address), so moving it to another thread is as safe as moving a Vec.
unsafe impl Send for RxRing {}

impl RxRing {
    /// Sets `socket` to `TPACKET_V2`, asks for the ring and maps it.
    fn map(socket: &PacketSocket, config: RxRingConfig) -> io::Result<Self> {
        let page = 4096;
        let frame_size = (config.max_frame_bytes + TPACKET2_MAC_OFFSET).div_ceil(TPACKET_ALIGNMENT)
            * TPACKET_ALIGNMENT;
        let frames_per_block = (64 * 1024 / frame_size).max(1);
        let block_size = (frames_per_block * frame_size).div_ceil(page) * page;
        let block_count = config.frames.max(1).div_ceil(frames_per_block);
        let frame_count = block_count * frames_per_block;
        let too_big = || io::Error::new(io::ErrorKind::InvalidInput, "receive ring too large");
        let req = TpacketReq {
            tp_block_size: block_size.try_into().map_err(|_| too_big())?,
            tp_block_nr: block_count.try_into().map_err(|_| too_big())?,
            tp_frame_size: frame_size.try_into().map_err(|_| too_big())?,
            tp_frame_nr: frame_count.try_into().map_err(|_| too_big())?,
        };
        socket.set_int(libc::SOL_PACKET, PACKET_VERSION, TPACKET_V2)?;
        socket.set_raw(libc::SOL_PACKET, PACKET_RX_RING, &req)?;
        let map_len = block_size * block_count;
        // SAFETY: a fresh shared mapping of the socket's ring, whose size is
        // exactly what we asked the kernel for; we own the returned region
        // until munmap in Drop.
        let addr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                socket.fd.as_raw_fd(),
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let map = ptr::NonNull::new(addr.cast::<u8>()).ok_or_else(io::Error::last_os_error)?;
        Ok(Self {
            map,
            map_len,
            block_size,
            frames_per_block,
            frame_size,
            frame_count,
            head: 0,
            claimed: 0,
        })
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.frame_count
    }

    /// Pointer to the header of slot `slot` (`slot < frame_count`).
    fn slot_header(&self, slot: usize) -> *mut Tpacket2Hdr {
        let offset = (slot / self.frames_per_block) * self.block_size
            + (slot % self.frames_per_block) * self.frame_size;
        debug_assert!(offset + self.frame_size <= self.map_len);
        // SAFETY: offset + frame_size <= map_len by construction of the
        // geometry, so the pointer stays inside the mapping.
        unsafe { self.map.as_ptr().add(offset).cast::<Tpacket2Hdr>() }
    }

    /// The status word of slot `slot`, shared with the kernel.
    fn status(&self, slot: usize) -> &AtomicU32 {
        // SAFETY: `tp_status` is the first, 4-byte aligned field of a slot
        // header inside the live mapping; the kernel and we only ever access
        // it atomically (the kernel with barriers), and the reference does
        // not outlive `self`, which owns the mapping.
        unsafe { AtomicU32::from_ptr(ptr::addr_of_mut!((*self.slot_header(slot)).tp_status)) }
    }

    /// Claims up to `max` more frames that the kernel has filled, in order;
    /// returns how many are claimed in total (they are indexed from 0 by
    /// [`RxRing::frame`]).
    pub fn claim(&mut self, max: usize) -> usize {
        while self.claimed < max.min(self.frame_count) {
            let slot = (self.head + self.claimed) % self.frame_count;
            if self.status(slot).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
                break;
            }
            self.claimed += 1;
        }
        self.claimed
    }

    /// Number of claimed frames.
    pub fn claimed(&self) -> usize {
        self.claimed
    }

    /// Claimed frame `i`: `Ok(bytes)`, or `Err(real_length)` if it did not
    /// fit a slot and was cut.
    ///
    /// # Panics
    /// If `i >= self.claimed()`.
    pub fn frame(&self, i: usize) -> Result<&[u8], usize> {
        assert!(i < self.claimed, "frame {i} is not claimed");
        let header = self.slot_header((self.head + i) % self.frame_count);
        // SAFETY: the slot is claimed: its status is TP_STATUS_USER (read
        // with Acquire, after the kernel's write barrier), so the kernel does
        // not touch the slot until we release it, and its header is
        // initialised.
        let (len, snaplen, mac) = unsafe {
            (
                (*header).tp_len as usize,
                (*header).tp_snaplen as usize,
                usize::from((*header).tp_mac),
            )
        };
        if snaplen < len || mac + snaplen > self.frame_size {
            return Err(len);
        }
        // SAFETY: as above the slot is ours until release, which needs
        // `&mut self` and so cannot happen while this borrow lives; the
        // bytes lie within the slot (checked just above).
        Ok(unsafe { std::slice::from_raw_parts(header.cast::<u8>().add(mac), snaplen) })
    }

    /// Hands every claimed slot back to the kernel.
    pub fn release(&mut self) {
        for i in 0..self.claimed {
            let slot = (self.head + i) % self.frame_count;
            self.status(slot).store(TP_STATUS_KERNEL, Ordering::Release);
        }
        self.head = (self.head + self.claimed) % self.frame_count;
        self.claimed = 0;
    }
}

impl Drop for RxRing {
    fn drop(&mut self) {
        // SAFETY: `map`/`map_len` describe the mapping made in `RxRing::map`,
        // unmapped exactly once here; no borrow of it can outlive `self`.
        unsafe {
            libc::munmap(self.map.as_ptr().cast::<libc::c_void>(), self.map_len);
        }
    }
}

/// What a batch transmission did with each frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendOutcome {
    /// Frames handed to the interface.
    pub sent: usize,
    /// Bytes of those frames.
    pub sent_bytes: u64,
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
                // One iovec when there is no header: less for the kernel to
                // import per frame.
                let iov_count = if header.is_empty() {
                    *iovs = [iovec(payload), iovec(&[])];
                    1
                } else {
                    *iovs = [iovec(header), iovec(payload)];
                    2
                };
                msg.msg_hdr.msg_name = ptr::null_mut();
                msg.msg_hdr.msg_namelen = 0;
                msg.msg_hdr.msg_iov = iovs.as_mut_ptr();
                msg.msg_hdr.msg_iovlen = iov_count;
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
                if rc > 0 {
                    let sent = rc as usize;
                    outcome.sent_bytes += self.headers[done..done + sent]
                        .iter()
                        .map(|h| u64::from(h.msg_len))
                        .sum::<u64>();
                    done += sent;
                    outcome.sent += sent;
                    continue;
                }
                let err = if rc == 0 {
                    // Not expected with a non-empty vector; never spin on it.
                    io::Error::from(io::ErrorKind::WouldBlock)
                } else {
                    io::Error::last_os_error()
                };
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
        let rc = unsafe {
            libc::poll(
                self.fds.as_mut_ptr(),
                self.fds.len() as libc::nfds_t,
                timeout_ms,
            )
        };
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
