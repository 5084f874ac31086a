//! Conntrack entries over ctnetlink (`NFNL_SUBSYS_CTNETLINK`): dump, event
//! subscription, create/update (idempotent upsert) and delete.
//!
//! Message and attribute numbers are those of the kernel's uapi headers
//! `linux/netfilter/nfnetlink.h`, `nfnetlink_conntrack.h`,
//! `nf_conntrack_common.h` and `nf_conntrack_tcp.h`; integer attributes are
//! big-endian except `CTA_LABELS` (a host-order bitmap).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeVal;

use crate::codec::{
    self, Message, MessageWriter, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
};
use crate::error::{Error, Facility, Result};
use crate::netns::{ConntrackWriter, NetNs};
use crate::socket::NlSocket;

const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_NEW: u16 = 0;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;

const NFNLGRP_CONNTRACK_NEW: u32 = 1;
const NFNLGRP_CONNTRACK_UPDATE: u32 = 2;
const NFNLGRP_CONNTRACK_DESTROY: u32 = 3;

const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_STATUS: u16 = 3;
const CTA_PROTOINFO: u16 = 4;
const CTA_NAT_SRC: u16 = 6;
const CTA_TIMEOUT: u16 = 7;
const CTA_MARK: u16 = 8;
const CTA_ID: u16 = 12;
const CTA_NAT_DST: u16 = 13;
const CTA_ZONE: u16 = 18;
const CTA_LABELS: u16 = 22;

const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;

const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_IP_V6_SRC: u16 = 3;
const CTA_IP_V6_DST: u16 = 4;

const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
const CTA_PROTO_ICMP_ID: u16 = 4;
const CTA_PROTO_ICMP_TYPE: u16 = 5;
const CTA_PROTO_ICMP_CODE: u16 = 6;
const CTA_PROTO_ICMPV6_ID: u16 = 7;
const CTA_PROTO_ICMPV6_TYPE: u16 = 8;
const CTA_PROTO_ICMPV6_CODE: u16 = 9;

const CTA_PROTOINFO_TCP: u16 = 1;
const CTA_PROTOINFO_TCP_STATE: u16 = 1;
const CTA_PROTOINFO_TCP_WSCALE_ORIGINAL: u16 = 2;
const CTA_PROTOINFO_TCP_WSCALE_REPLY: u16 = 3;
const CTA_PROTOINFO_TCP_FLAGS_ORIGINAL: u16 = 4;
const CTA_PROTOINFO_TCP_FLAGS_REPLY: u16 = 5;

const CTA_NAT_V4_MINIP: u16 = 1;
const CTA_NAT_V4_MAXIP: u16 = 2;
const CTA_NAT_PROTO: u16 = 3;
const CTA_NAT_V6_MINIP: u16 = 4;
const CTA_NAT_V6_MAXIP: u16 = 5;
const CTA_PROTONAT_PORT_MIN: u16 = 1;
const CTA_PROTONAT_PORT_MAX: u16 = 2;

const IPPROTO_ICMP: u8 = 1;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_ICMPV6: u8 = 58;

/// How many requests share one `send(2)`: keeps one batch (~150 KiB of
/// requests, ~0.5 MiB of ACK truesize) well inside the forced socket buffers.
const BATCH: usize = 512;

/// `IP_CT_TCP_FLAG_*` bits of [`TcpInfo`]'s flags
/// (`linux/netfilter/nf_conntrack_tcp.h`).
pub mod tcp_flag {
    /// The peer announced window scaling.
    pub const WINDOW_SCALE: u8 = 0x01;
    /// The peer allows selective acknowledgements.
    pub const SACK_PERM: u8 = 0x02;
    /// This side closed first.
    pub const CLOSE_INIT: u8 = 0x04;
    /// No window checks for this direction: any sequence number passes.
    pub const BE_LIBERAL: u8 = 0x08;
}

/// `IPS_*` status bits (`linux/netfilter/nf_conntrack_common.h`).
pub mod status {
    /// Expected connection (related to a master, e.g. FTP data).
    pub const EXPECTED: u32 = 1 << 0;
    /// Packets seen in both directions.
    pub const SEEN_REPLY: u32 = 1 << 1;
    /// Will not be early-dropped when the table is full.
    pub const ASSURED: u32 = 1 << 2;
    /// In the hash table.
    pub const CONFIRMED: u32 = 1 << 3;
    /// Source NAT applies.
    pub const SRC_NAT: u32 = 1 << 4;
    /// Destination NAT applies.
    pub const DST_NAT: u32 = 1 << 5;
    /// TCP sequence numbers are adjusted.
    pub const SEQ_ADJUST: u32 = 1 << 6;
    /// Source NAT set up.
    pub const SRC_NAT_DONE: u32 = 1 << 7;
    /// Destination NAT set up.
    pub const DST_NAT_DONE: u32 = 1 << 8;
    /// Being destroyed.
    pub const DYING: u32 = 1 << 9;
    /// Timeout is not refreshed by packets.
    pub const FIXED_TIMEOUT: u32 = 1 << 10;
    /// Template (never in the table).
    pub const TEMPLATE: u32 = 1 << 11;
    /// Untracked.
    pub const UNTRACKED: u32 = 1 << 12;
    /// Has a helper.
    pub const HELPER: u32 = 1 << 13;
    /// Offloaded to the flow table.
    pub const OFFLOAD: u32 = 1 << 14;
    /// Offloaded to hardware.
    pub const HW_OFFLOAD: u32 = 1 << 15;
    /// Bits userspace may set on an entry; the kernel ignores the others
    /// (`IPS_UNCHANGEABLE_MASK` and the internal bits). NAT bits follow from
    /// the NAT set-up derived from the reply tuple.
    pub const SETTABLE: u32 = SEEN_REPLY | ASSURED | FIXED_TIMEOUT;
}

/// The layer-4 part of a tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L4Tuple {
    /// TCP, UDP, SCTP, DCCP, UDP-Lite.
    Ports {
        /// Source port.
        src: u16,
        /// Destination port.
        dst: u16,
    },
    /// ICMP or ICMPv6.
    Icmp {
        /// Echo identifier.
        id: u16,
        /// ICMP type.
        kind: u8,
        /// ICMP code.
        code: u8,
    },
    /// Any other protocol: only addresses and the protocol number.
    None,
}

/// One direction of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConntrackTuple {
    /// Source address.
    pub src: IpAddr,
    /// Destination address (same family as `src`).
    pub dst: IpAddr,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...).
    pub protocol: u8,
    /// Ports or ICMP identity.
    pub l4: L4Tuple,
}

impl ConntrackTuple {
    /// The tuple of the answer to this one with no NAT: addresses and ports
    /// swapped; for ICMP echo request (8) the reply is echo reply (0), and
    /// ICMPv6 128 answers with 129.
    pub fn inverted(&self) -> ConntrackTuple {
        let l4 = match self.l4 {
            L4Tuple::Ports { src, dst } => L4Tuple::Ports { src: dst, dst: src },
            L4Tuple::Icmp { id, kind, code } => {
                let kind = match (self.protocol, kind) {
                    (IPPROTO_ICMP, 8) => 0,
                    (IPPROTO_ICMP, 0) => 8,
                    (IPPROTO_ICMPV6, 128) => 129,
                    (IPPROTO_ICMPV6, 129) => 128,
                    (_, k) => k,
                };
                L4Tuple::Icmp { id, kind, code }
            }
            L4Tuple::None => L4Tuple::None,
        };
        ConntrackTuple {
            src: self.dst,
            dst: self.src,
            protocol: self.protocol,
            l4,
        }
    }

    fn family(&self) -> Result<u8> {
        match (self.src, self.dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) => Ok(libc::AF_INET as u8),
            (IpAddr::V6(_), IpAddr::V6(_)) => Ok(libc::AF_INET6 as u8),
            _ => Err(Error::InvalidArgument(format!(
                "tuple mixes IPv4 and IPv6: {} -> {}",
                self.src, self.dst
            ))),
        }
    }
}

/// TCP connection tracking state (`enum tcp_conntrack`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpState {
    /// `TCP_CONNTRACK_NONE`.
    None,
    /// `SYN_SENT`.
    SynSent,
    /// `SYN_RECV`.
    SynRecv,
    /// `ESTABLISHED`.
    Established,
    /// `FIN_WAIT`.
    FinWait,
    /// `CLOSE_WAIT`.
    CloseWait,
    /// `LAST_ACK`.
    LastAck,
    /// `TIME_WAIT`.
    TimeWait,
    /// `CLOSE`.
    Close,
    /// `SYN_SENT2` (simultaneous open; printed as `LISTEN` by old tools).
    SynSent2,
}

impl TcpState {
    const ALL: [TcpState; 10] = [
        TcpState::None,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::Established,
        TcpState::FinWait,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::SynSent2,
    ];

    /// The kernel's number for this state.
    pub fn to_raw(self) -> u8 {
        TcpState::ALL
            .iter()
            .position(|s| *s == self)
            .expect("listed") as u8
    }

    /// The state for a kernel number, if it is one.
    pub fn from_raw(raw: u8) -> Option<TcpState> {
        TcpState::ALL.get(raw as usize).copied()
    }

    /// The name `conntrack -L` prints.
    pub fn name(self) -> &'static str {
        [
            "NONE",
            "SYN_SENT",
            "SYN_RECV",
            "ESTABLISHED",
            "FIN_WAIT",
            "CLOSE_WAIT",
            "LAST_ACK",
            "TIME_WAIT",
            "CLOSE",
            "SYN_SENT2",
        ][self.to_raw() as usize]
    }
}

/// TCP tracking details (`CTA_PROTOINFO_TCP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpInfo {
    /// Connection state.
    pub state: TcpState,
    /// Window scale seen from the originator.
    pub wscale_original: u8,
    /// Window scale seen from the responder.
    pub wscale_reply: u8,
    /// `IP_CT_TCP_FLAG_*` of the original direction.
    pub flags_original: u8,
    /// `IP_CT_TCP_FLAG_*` of the reply direction.
    pub flags_reply: u8,
}

impl TcpInfo {
    /// Info with only a state, all scales and flags zero.
    pub fn with_state(state: TcpState) -> TcpInfo {
        TcpInfo {
            state,
            wscale_original: 0,
            wscale_reply: 0,
            flags_original: 0,
            flags_reply: 0,
        }
    }
}

/// One conntrack entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConntrackEntry {
    /// Tuple of the originating direction (the lookup key with `zone`).
    pub original: ConntrackTuple,
    /// Tuple of the reply direction; differs from `original.inverted()`
    /// exactly when NAT applies.
    pub reply: ConntrackTuple,
    /// Conntrack zone.
    pub zone: u16,
    /// Connection mark.
    pub mark: u32,
    /// `IPS_*` bits, see [`status`].
    pub status: u32,
    /// Seconds until expiry.
    pub timeout: u32,
    /// TCP details, for TCP entries.
    pub tcp: Option<TcpInfo>,
    /// Connection labels: bit *n* is label *n*.
    pub labels: u128,
    /// Kernel id of the entry (read only; 0 when unknown).
    pub id: u32,
}

impl ConntrackEntry {
    /// An entry with no NAT (`reply = original.inverted()`), zone 0, mark 0,
    /// no labels, `SEEN_REPLY|ASSURED`; TCP tuples get state ESTABLISHED.
    pub fn new(original: ConntrackTuple, timeout: u32) -> ConntrackEntry {
        ConntrackEntry {
            reply: original.inverted(),
            original,
            zone: 0,
            mark: 0,
            status: status::SEEN_REPLY | status::ASSURED,
            timeout,
            tcp: (original.protocol == IPPROTO_TCP)
                .then(|| TcpInfo::with_state(TcpState::Established)),
            labels: 0,
            id: 0,
        }
    }
}

/// A change reported by the kernel's conntrack event groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConntrackEvent {
    /// An entry was created.
    New(ConntrackEntry),
    /// An entry changed (state, status, mark, labels, ...).
    Update(ConntrackEntry),
    /// An entry was destroyed (expired, deleted or flushed).
    Destroy(ConntrackEntry),
    /// The kernel dropped events because our receive buffer was full
    /// (`ENOBUFS`): the caller must resync with a dump.
    Overrun,
}

/// Result of a [`Conntrack::create_batch`].
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Entries that did not exist and were created.
    pub created: usize,
    /// Entries that existed and were updated in place.
    pub updated: usize,
    /// Entries the kernel refused, by index in the input, each with its
    /// [`Error::Kernel`].
    pub failures: Vec<(usize, Error)>,
}

/// Whether [`Conntrack::create`] created or updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The entry was new.
    Created,
    /// The entry existed and was updated.
    Updated,
}

/// Conntrack operations on one namespace; see [`NetNs::conntrack`].
#[derive(Debug, Clone, Copy)]
pub struct Conntrack<'a> {
    ns: &'a NetNs,
}

impl NetNs {
    /// Conntrack operations in this namespace.
    pub fn conntrack(&self) -> Conntrack<'_> {
        Conntrack { ns: self }
    }
}

impl Conntrack<'_> {
    /// All entries of the namespace, IPv4 and IPv6, every zone.
    ///
    /// # Errors
    /// [`Error::Socket`] or [`Error::Kernel`] if the dump fails,
    /// [`Error::Malformed`] if an entry cannot be decoded.
    pub fn dump(&self) -> Result<Vec<ConntrackEntry>> {
        self.ns.with_state(|state| {
            let sock = state.conntrack()?;
            let seq = sock.next_seqs(1);
            let mut req = Vec::with_capacity(32);
            let mut m = MessageWriter::begin(
                &mut req,
                msg_type(IPCTNL_MSG_CT_GET),
                NLM_F_REQUEST | NLM_F_DUMP,
                seq,
            );
            m.put(&nfgenmsg(libc::AF_UNSPEC as u8));
            m.finish();
            let mut out = Vec::new();
            sock.dump(&req, seq, "dump", |msg| {
                out.push(decode_entry(msg.payload)?);
                Ok(())
            })?;
            Ok(out)
        })
    }

    /// Creates `entry`, or updates it if an entry with its original tuple
    /// and zone exists: an idempotent upsert.
    ///
    /// # Errors
    /// [`Error::Kernel`] with the errno explained if the kernel refuses the
    /// entry; [`Error::InvalidArgument`] for a tuple mixing families.
    pub fn create(&self, entry: &ConntrackEntry) -> Result<Applied> {
        let mut outcome = self.create_batch(std::slice::from_ref(entry))?;
        match outcome.failures.pop() {
            Some((_, e)) => Err(e),
            None if outcome.created == 1 => Ok(Applied::Created),
            None => Ok(Applied::Updated),
        }
    }

    /// Upserts many entries, 512 per `send(2)`: each is sent as
    /// `IPCTNL_MSG_CT_NEW` with `NLM_F_CREATE|NLM_F_EXCL` and its status
    /// bits; the entries that already exist (`EEXIST`) are then sent again
    /// as updates, in one more datagram per 512. New entries, the common
    /// case, cost one request each. An entry with labels is followed in
    /// the same datagram by its update: a create drops labels the
    /// namespace has no room for without a word, the update refuses them
    /// (`ENOSPC`).
    ///
    /// # Errors
    /// Socket failures end the batch with an error; per-entry refusals are
    /// collected in [`BatchOutcome::failures`].
    pub fn create_batch(&self, entries: &[ConntrackEntry]) -> Result<BatchOutcome> {
        for e in entries {
            e.original.family()?;
            e.reply.family()?;
        }
        let entries = entries.to_vec();
        self.ns.with_state(move |state| {
            let sock = state.conntrack()?;
            let mut outcome = BatchOutcome::default();
            let mut buf = Vec::with_capacity(BATCH * 320);
            let mut plan = Vec::with_capacity(BATCH + 1);
            let mut create_errno = Vec::with_capacity(BATCH);
            let mut update_errno = Vec::with_capacity(BATCH);
            let mut retry = Vec::new();
            for (chunk_no, chunk) in entries.chunks(BATCH).enumerate() {
                let base = chunk_no * BATCH;
                plan.clear();
                for (i, e) in chunk.iter().enumerate() {
                    plan.push((i, true));
                    if e.labels != 0 {
                        plan.push((i, false));
                    }
                }
                let errnos =
                    send_entries(sock, &mut buf, plan.iter().map(|&(i, c)| (&chunk[i], c)))?;
                create_errno.clear();
                create_errno.resize(chunk.len(), 0);
                update_errno.clear();
                update_errno.resize(chunk.len(), None);
                for (&(i, create), errno) in plan.iter().zip(errnos) {
                    if create {
                        create_errno[i] = errno;
                    } else {
                        update_errno[i] = Some(errno);
                    }
                }
                retry.clear();
                for (i, (&c, &u)) in create_errno.iter().zip(&update_errno).enumerate() {
                    let fail =
                        |op, errno| (base + i, Error::kernel(Facility::Conntrack, op, errno));
                    match (c, u) {
                        (0, None | Some(0)) => outcome.created += 1,
                        (libc::EEXIST, Some(0)) => outcome.updated += 1,
                        (libc::EEXIST, None) => retry.push(i),
                        (0 | libc::EEXIST, Some(u)) => outcome.failures.push(fail("update", u)),
                        (c, _) => outcome.failures.push(fail("create", c)),
                    }
                }
                if retry.is_empty() {
                    continue;
                }
                let errnos =
                    send_entries(sock, &mut buf, retry.iter().map(|&i| (&chunk[i], false)))?;
                for (&i, errno) in retry.iter().zip(errnos) {
                    match errno {
                        0 => outcome.updated += 1,
                        errno => outcome.failures.push((
                            base + i,
                            Error::kernel(Facility::Conntrack, "update", errno),
                        )),
                    }
                }
            }
            outcome.failures.sort_by_key(|(i, _)| *i);
            Ok(outcome)
        })
    }

    /// Updates an existing entry (found by original tuple and zone): status
    /// bits may only be added, timeout, mark, TCP info and labels replaced.
    ///
    /// # Errors
    /// [`Error::Kernel`] with `ENOENT` if there is no such entry, `EBUSY` if
    /// the status would clear `SEEN_REPLY`/`ASSURED`.
    pub fn update(&self, entry: &ConntrackEntry) -> Result<()> {
        entry.original.family()?;
        let entry = entry.clone();
        self.ns.with_state(move |state| {
            let sock = state.conntrack()?;
            let mut buf = Vec::new();
            match send_entries(sock, &mut buf, std::iter::once((&entry, false)))?[0] {
                0 => Ok(()),
                errno => Err(Error::kernel(Facility::Conntrack, "update", errno)),
            }
        })
    }

    /// Sets `flags` ([`tcp_flag`] bits) in both directions of existing TCP
    /// entries, each named by its original tuple and zone, 512 per
    /// `send(2)`. Only those bits change: the other flags, the state,
    /// timeout, status, mark and labels stay as they are.
    ///
    /// # Errors
    /// Socket failures end the batch with an error; per-entry refusals
    /// (`ENOENT` for an entry that is gone) are collected in
    /// [`BatchOutcome::failures`], the rest counted as updated.
    pub fn set_tcp_flags(
        &self,
        entries: &[(ConntrackTuple, u16)],
        flags: u8,
    ) -> Result<BatchOutcome> {
        for (tuple, _) in entries {
            tuple.family()?;
        }
        let entries = entries.to_vec();
        self.ns.with_state(move |state| {
            let sock = state.conntrack()?;
            let mut outcome = BatchOutcome::default();
            let mut buf = Vec::with_capacity(BATCH * 128);
            for (chunk_no, chunk) in entries.chunks(BATCH).enumerate() {
                let errnos = send_requests(
                    sock,
                    &mut buf,
                    chunk.iter(),
                    |buf, (tuple, zone), ack, seq| {
                        encode_tcp_flags(buf, tuple, *zone, flags, ack, seq)
                    },
                )?;
                for (i, errno) in errnos.into_iter().enumerate() {
                    match errno {
                        0 => outcome.updated += 1,
                        errno => outcome.failures.push((
                            chunk_no * BATCH + i,
                            Error::kernel(Facility::Conntrack, "update", errno),
                        )),
                    }
                }
            }
            Ok(outcome)
        })
    }

    /// Deletes the entry whose original tuple is `tuple` in `zone`.
    ///
    /// # Errors
    /// [`Error::Kernel`] with `ENOENT` if there is no such entry.
    pub fn delete(&self, tuple: &ConntrackTuple, zone: u16) -> Result<()> {
        let family = tuple.family()?;
        let tuple = *tuple;
        self.ns.with_state(move |state| {
            let sock = state.conntrack()?;
            let seq = sock.next_seqs(1);
            let mut buf = Vec::new();
            let mut m = MessageWriter::begin(
                &mut buf,
                msg_type(IPCTNL_MSG_CT_DELETE),
                NLM_F_REQUEST | NLM_F_ACK,
                seq,
            );
            m.put(&nfgenmsg(family));
            put_tuple(&mut m, CTA_TUPLE_ORIG, &tuple);
            m.attr_be16(CTA_ZONE, zone);
            m.finish();
            sock.request(&buf, seq, "delete")
        })
    }

    /// Subscribes to new/update/destroy events of the namespace. Events are
    /// read on their own thread into a channel of about `queue` events (in
    /// batches of up to 256, what one read of the socket brought); when the
    /// channel is full the reader waits, the kernel socket buffer of
    /// `socket_buffer` bytes (forced past `rmem_max`; each event costs about
    /// 1 KiB of it) fills, and the kernel's `ENOBUFS` comes out as
    /// [`ConntrackEvent::Overrun`]: events were lost, resync with a dump.
    ///
    /// # Errors
    /// [`Error::Socket`] if the event socket cannot be opened or joined to
    /// the groups.
    pub fn subscribe(&self, queue: usize, socket_buffer: usize) -> Result<ConntrackEvents> {
        self.subscribe_inner(queue, socket_buffer, None)
    }

    /// As [`Conntrack::subscribe`], without the new and update events
    /// caused by `writer`'s own creates and updates (the kernel names the
    /// socket whose request caused an event): their writer knows what it
    /// wrote, and skipping them spares decoding them. Events of its deletes
    /// and everything else (packets, other writers, the kernel's own
    /// changes) still come. The kernel itself drops the skipped events
    /// (a socket filter on the event socket that follows the writer's
    /// port), so they cost neither a wake-up nor a read here.
    ///
    /// # Errors
    /// As [`Conntrack::subscribe`].
    pub fn subscribe_skipping(
        &self,
        queue: usize,
        socket_buffer: usize,
        writer: ConntrackWriter,
    ) -> Result<ConntrackEvents> {
        self.subscribe_inner(queue, socket_buffer, Some(writer))
    }

    fn subscribe_inner(
        &self,
        queue: usize,
        socket_buffer: usize,
        writer: Option<ConntrackWriter>,
    ) -> Result<ConntrackEvents> {
        let sock = self.ns.with_state(move |_| {
            let sock = NlSocket::open(
                netlink_sys::protocols::NETLINK_NETFILTER,
                Facility::Conntrack,
            )?
            .into_inner();
            setsockopt(&sock, sockopt::RcvBufForce, &socket_buffer)
                .map_err(|e| Error::socket("SO_RCVBUFFORCE", e.into()))?;
            for group in [
                NFNLGRP_CONNTRACK_NEW,
                NFNLGRP_CONNTRACK_UPDATE,
                NFNLGRP_CONNTRACK_DESTROY,
            ] {
                sock.add_membership(group)
                    .map_err(|e| Error::socket("join conntrack group", e))?;
            }
            // Wake up regularly to notice that the subscriber was dropped.
            setsockopt(&sock, sockopt::ReceiveTimeout, &TimeVal::new(0, 100_000))
                .map_err(|e| Error::socket("SO_RCVTIMEO", e.into()))?;
            Ok(sock)
        })?;
        let sock = Arc::new(sock);
        if let Some(writer) = &writer {
            writer.filter(&sock)?;
        }
        let (tx, rx) = mpsc::sync_channel(queue.div_ceil(EVENT_BATCH).max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let reader_stop = Arc::clone(&stop);
        let skipped = Arc::new(AtomicU64::new(0));
        let reader_skipped = Arc::clone(&skipped);
        let thread = std::thread::Builder::new()
            .name("ct-events".into())
            .spawn(move || {
                let skip = writer.as_ref().map(|w| (w, &*reader_skipped));
                read_events(&sock, &tx, &reader_stop, skip);
            })
            .map_err(|e| Error::socket("spawn event reader", e))?;
        Ok(ConntrackEvents {
            rx: Some(rx),
            pending: RefCell::new(VecDeque::new()),
            stop,
            skipped,
            thread: Some(thread),
        })
    }
}

/// Most events the reader hands over at once: what one read of the socket
/// brought, up to this many. Handing them over one by one cost a channel
/// operation (and often a wake-up) per event.
const EVENT_BATCH: usize = 256;

/// How long a reader that found fewer than a quarter of [`EVENT_BATCH`]
/// events queued waits once for more before handing them over: at most
/// this much latency, for one wake-up per batch instead of per event
/// under load.
const EVENT_LINGER: Duration = Duration::from_micros(500);

/// A live stream of conntrack events; dropping it unsubscribes.
#[derive(Debug)]
pub struct ConntrackEvents {
    rx: Option<mpsc::Receiver<Vec<ConntrackEvent>>>,
    /// Events of a batch taken from the reader and not yet returned by
    /// [`ConntrackEvents::recv_timeout`] or [`ConntrackEvents::try_recv`].
    pending: RefCell<VecDeque<ConntrackEvent>>,
    stop: Arc<AtomicBool>,
    /// Events of the writer that reached the reader and were skipped
    /// there.
    skipped: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl ConntrackEvents {
    /// How many events of the writer of [`Conntrack::subscribe_skipping`]
    /// reached this process and were skipped by its reader rather than
    /// by the kernel's filter: 0 unless the filter could not be set, or
    /// was read in the moment the writer's socket was reopened.
    pub fn skipped_by_reader(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Waits up to `timeout` for the next event; `Ok(None)` on timeout.
    ///
    /// # Errors
    /// [`Error::EventStreamClosed`] if the reader stopped on a socket error.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<ConntrackEvent>> {
        if let Some(event) = self.pending.borrow_mut().pop_front() {
            return Ok(Some(event));
        }
        let mut batch = self.recv_batch(timeout)?.into_iter();
        let first = batch.next();
        self.pending.borrow_mut().extend(batch);
        Ok(first)
    }

    /// The next event if one is queued.
    ///
    /// # Errors
    /// [`Error::EventStreamClosed`] if the reader stopped on a socket error.
    pub fn try_recv(&self) -> Result<Option<ConntrackEvent>> {
        let mut pending = self.pending.borrow_mut();
        if pending.is_empty() {
            let rx = self.rx.as_ref().ok_or(Error::EventStreamClosed)?;
            match rx.try_recv() {
                Ok(batch) => pending.extend(batch),
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => return Err(Error::EventStreamClosed),
            }
        }
        Ok(pending.pop_front())
    }

    /// Waits up to `timeout` for events and returns every one queued now,
    /// in order (up to a few hundred per read of the kernel socket, more
    /// if several reads are queued); empty on timeout.
    ///
    /// # Errors
    /// [`Error::EventStreamClosed`] if the reader stopped on a socket error.
    pub fn recv_batch(&self, timeout: Duration) -> Result<Vec<ConntrackEvent>> {
        let mut events: Vec<ConntrackEvent> = self.pending.borrow_mut().drain(..).collect();
        let rx = self.rx.as_ref().ok_or(Error::EventStreamClosed)?;
        if events.is_empty() {
            match rx.recv_timeout(timeout) {
                Ok(batch) => events = batch,
                Err(mpsc::RecvTimeoutError::Timeout) => return Ok(events),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Error::EventStreamClosed);
                }
            }
        }
        // Whatever else is queued comes along: fewer, larger batches
        // when the consumer falls behind.
        while events.len() < EVENT_BATCH * 16 {
            match rx.try_recv() {
                Ok(batch) => events.extend(batch),
                Err(_) => break,
            }
        }
        Ok(events)
    }
}

impl Drop for ConntrackEvents {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Dropping the receiver first unblocks a reader waiting on a full
        // channel; the socket timeout unblocks one waiting on the kernel.
        self.rx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn read_events(
    sock: &netlink_sys::Socket,
    tx: &mpsc::SyncSender<Vec<ConntrackEvent>>,
    stop: &AtomicBool,
    writer: Option<(&ConntrackWriter, &AtomicU64)>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut batch = Vec::with_capacity(EVENT_BATCH);
    while !stop.load(Ordering::Relaxed) {
        buf.clear();
        match sock.recv(&mut buf, 0) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                if !overrun(sock, &mut buf, tx) {
                    return;
                }
                continue;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(_) => return,
        }
        decode_events(&buf, writer, &mut batch);
        // Each read brings one event (one skb each): what else is queued
        // already is read without waiting and handed over with it, so the
        // consumer is woken once per batch instead of once per event. A
        // short batch waits [`EVENT_LINGER`] once for more: at a high
        // event rate a reader that keeps up would otherwise be woken, and
        // wake its consumer, for every event.
        let mut lost = false;
        let mut lingered = false;
        while batch.len() < EVENT_BATCH {
            buf.clear();
            match sock.recv(&mut buf, libc::MSG_DONTWAIT) {
                Ok(_) => decode_events(&buf, writer, &mut batch),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    lost = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if lingered || batch.len() >= EVENT_BATCH / 4 {
                        break;
                    }
                    lingered = true;
                    std::thread::sleep(EVENT_LINGER);
                }
                Err(_) => {
                    let _ = tx.send(std::mem::take(&mut batch));
                    return;
                }
            }
        }
        // The events read before an overrun come first.
        if !batch.is_empty() {
            if tx.send(std::mem::take(&mut batch)).is_err() {
                return;
            }
            batch.reserve(EVENT_BATCH);
        }
        if lost && !overrun(sock, &mut buf, tx) {
            return;
        }
    }
}

/// After `ENOBUFS`: the kernel reports it once per congestion; until a
/// read finds the socket's queue empty, it drops further events without a
/// word (netlink_overrun sets the error only when NETLINK_S_CONGESTED was
/// clear; netlink_rcv_wake clears it on an empty queue). A resync dump
/// taken before then could miss entries whose events are dropped after
/// it, so the queue is emptied (its events are stale: the dump covers
/// them) before the overrun is reported. False when the stream is over.
fn overrun(
    sock: &netlink_sys::Socket,
    buf: &mut Vec<u8>,
    tx: &mpsc::SyncSender<Vec<ConntrackEvent>>,
) -> bool {
    drain(sock, buf) && tx.send(vec![ConntrackEvent::Overrun]).is_ok()
}

/// Appends the events of one datagram to `batch`, leaving out those of
/// `writer`'s creates and updates.
fn decode_events(
    buf: &[u8],
    writer: Option<(&ConntrackWriter, &AtomicU64)>,
    batch: &mut Vec<ConntrackEvent>,
) {
    for msg in codec::messages(buf) {
        let Ok(msg) = msg else { break };
        if msg.pid != 0
            && msg.ty == msg_type(IPCTNL_MSG_CT_NEW)
            && let Some((writer, skipped)) = writer
            && writer.port() == msg.pid
        {
            skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if let Some(event) = decode_event(msg) {
            batch.push(event);
        }
    }
}

/// Attaches to the event socket `sock` a classic BPF filter that drops the
/// create and update events (`IPCTNL_MSG_CT_NEW`) whose `nlmsg_pid` is
/// `port`, the writer's socket (each event is an skb of its own, starting
/// with its `nlmsghdr`); with `port` 0 the filter lets everything through
/// (the kernel's own events carry 0).
pub(crate) fn skip_writer_filter(sock: &netlink_sys::Socket, port: u32) -> Result<()> {
    use socket2::SockFilter;
    // Absolute loads are big-endian; the header's fields are in host order.
    let ty = u32::from(u16::from_be_bytes(
        msg_type(IPCTNL_MSG_CT_NEW).to_ne_bytes(),
    ));
    let pid = u32::from_be_bytes(port.to_ne_bytes());
    const LD_H_ABS: u16 = (libc::BPF_LD | libc::BPF_H | libc::BPF_ABS) as u16;
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let program = if port == 0 {
        vec![SockFilter::new(RET_K, 0, 0, u32::MAX)]
    } else {
        vec![
            // nlmsg_type at 4: a create or update goes on, anything else
            // is accepted.
            SockFilter::new(LD_H_ABS, 0, 0, 4),
            SockFilter::new(JEQ_K, 0, 3, ty),
            // nlmsg_pid at 12: the writer's is dropped.
            SockFilter::new(LD_W_ABS, 0, 0, 12),
            SockFilter::new(JEQ_K, 0, 1, pid),
            SockFilter::new(RET_K, 0, 0, 0),
            SockFilter::new(RET_K, 0, 0, u32::MAX),
        ]
    };
    socket2::SockRef::from(sock)
        .attach_filter(&program)
        .map_err(|e| Error::socket("SO_ATTACH_FILTER", e))
}

/// Reads and discards what `sock` has queued until a read finds it empty,
/// which ends the kernel's congestion state; false on a socket error.
fn drain(sock: &netlink_sys::Socket, buf: &mut Vec<u8>) -> bool {
    loop {
        buf.clear();
        match sock.recv(buf, libc::MSG_DONTWAIT) {
            Ok(_) => {}
            // Dropped again meanwhile: keep draining.
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

fn decode_event(msg: Message<'_>) -> Option<ConntrackEvent> {
    if msg.ty >> 8 != NFNL_SUBSYS_CTNETLINK {
        return None;
    }
    let entry = decode_entry(msg.payload).ok()?;
    match msg.ty & 0xff {
        IPCTNL_MSG_CT_NEW if msg.flags & (NLM_F_CREATE | NLM_F_EXCL) != 0 => {
            Some(ConntrackEvent::New(entry))
        }
        IPCTNL_MSG_CT_NEW => Some(ConntrackEvent::Update(entry)),
        IPCTNL_MSG_CT_DELETE => Some(ConntrackEvent::Destroy(entry)),
        _ => None,
    }
}

fn msg_type(msg: u16) -> u16 {
    (NFNL_SUBSYS_CTNETLINK << 8) | msg
}

fn nfgenmsg(family: u8) -> [u8; 4] {
    // struct nfgenmsg { family, version = NFNETLINK_V0, res_id = 0 (be16) }
    [family, 0, 0, 0]
}

/// Encodes `entries` as NEW requests (`create` adds `NLM_F_CREATE|EXCL`),
/// sends them in one datagram and returns each one's errno
/// ([`send_requests`]).
fn send_entries<'e>(
    sock: &mut NlSocket,
    buf: &mut Vec<u8>,
    entries: impl ExactSizeIterator<Item = (&'e ConntrackEntry, bool)>,
) -> Result<Vec<i32>> {
    send_requests(sock, buf, entries, |buf, (entry, create), ack, seq| {
        encode_entry(buf, entry, create, ack, seq)
    })
}

/// Encodes one request per item with `encode(buf, item, ack, seq)`, sends
/// them in one datagram and returns each one's errno; only the last asks
/// for an ACK ([`NlSocket::send_acked`]).
fn send_requests<T>(
    sock: &mut NlSocket,
    buf: &mut Vec<u8>,
    items: impl ExactSizeIterator<Item = T>,
    mut encode: impl FnMut(&mut Vec<u8>, T, bool, u32) -> Result<()>,
) -> Result<Vec<i32>> {
    let count = items.len();
    let first = sock.next_seqs(count as u32);
    buf.clear();
    for (i, item) in items.enumerate() {
        encode(buf, item, i + 1 == count, first.wrapping_add(i as u32))?;
    }
    sock.send_acked(buf, first, count)
}

/// Appends one NEW request for `e`; `ack` asks for an answer even when it
/// succeeds.
fn encode_entry(
    buf: &mut Vec<u8>,
    e: &ConntrackEntry,
    create: bool,
    ack: bool,
    seq: u32,
) -> Result<()> {
    let family = e.original.family()?;
    let flags = NLM_F_REQUEST
        | if ack { NLM_F_ACK } else { 0 }
        | if create { NLM_F_CREATE | NLM_F_EXCL } else { 0 };
    let mut m = MessageWriter::begin(buf, msg_type(IPCTNL_MSG_CT_NEW), flags, seq);
    m.put(&nfgenmsg(family));
    put_tuple(&mut m, CTA_TUPLE_ORIG, &e.original);
    if create && put_nat(&mut m, e) {
        // The kernel derives the NAT-ed reply tuple from the ranges; given
        // the NAT-ed reply itself it would see nothing to translate and
        // leave SRC_NAT/DST_NAT unset.
        put_tuple(&mut m, CTA_TUPLE_REPLY, &e.original.inverted());
    } else {
        put_tuple(&mut m, CTA_TUPLE_REPLY, &e.reply);
    }
    // The settable status bits go with the create too. The kernel marks a
    // new entry CONFIRMED before it applies CTA_STATUS (in
    // ctnetlink_create_conntrack), as an existing entry is, and answers
    // EBUSY to a change of CONFIRMED, EXPECTED or DYING
    // (ctnetlink_change_status): both carry CONFIRMED.
    m.attr_be32(
        CTA_STATUS,
        (e.status & status::SETTABLE) | status::CONFIRMED,
    );
    m.attr_be32(CTA_TIMEOUT, e.timeout.max(1));
    m.attr_be32(CTA_MARK, e.mark);
    m.attr_be16(CTA_ZONE, e.zone);
    if let Some(tcp) = &e.tcp {
        let info = m.nest_begin(CTA_PROTOINFO);
        let t = m.nest_begin(CTA_PROTOINFO_TCP);
        m.attr_u8(CTA_PROTOINFO_TCP_STATE, tcp.state.to_raw());
        m.attr_u8(CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, tcp.wscale_original);
        m.attr_u8(CTA_PROTOINFO_TCP_WSCALE_REPLY, tcp.wscale_reply);
        // struct nf_ct_tcp_flags { flags, mask }: replace every flag bit.
        m.attr(
            CTA_PROTOINFO_TCP_FLAGS_ORIGINAL,
            &[tcp.flags_original, 0xff],
        );
        m.attr(CTA_PROTOINFO_TCP_FLAGS_REPLY, &[tcp.flags_reply, 0xff]);
        m.nest_end(t);
        m.nest_end(info);
    }
    if e.labels != 0 {
        // The kernel's label bitmap is an array of host-order longs; on a
        // little-endian host that is the u128 in little-endian byte order.
        m.attr(CTA_LABELS, &labels_to_bytes(e.labels));
    }
    m.finish();
    Ok(())
}

/// Appends one update request setting `flags` (and only them: the mask is
/// `flags`) in both directions of the TCP entry `tuple` in `zone`. Nothing
/// else is sent, so the kernel changes nothing else
/// (`ctnetlink_change_conntrack` applies only the attributes present).
fn encode_tcp_flags(
    buf: &mut Vec<u8>,
    tuple: &ConntrackTuple,
    zone: u16,
    flags: u8,
    ack: bool,
    seq: u32,
) -> Result<()> {
    let family = tuple.family()?;
    let nl_flags = NLM_F_REQUEST | if ack { NLM_F_ACK } else { 0 };
    let mut m = MessageWriter::begin(buf, msg_type(IPCTNL_MSG_CT_NEW), nl_flags, seq);
    m.put(&nfgenmsg(family));
    put_tuple(&mut m, CTA_TUPLE_ORIG, tuple);
    m.attr_be16(CTA_ZONE, zone);
    let info = m.nest_begin(CTA_PROTOINFO);
    let t = m.nest_begin(CTA_PROTOINFO_TCP);
    // struct nf_ct_tcp_flags { flags, mask }.
    m.attr(CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, &[flags, flags]);
    m.attr(CTA_PROTOINFO_TCP_FLAGS_REPLY, &[flags, flags]);
    m.nest_end(t);
    m.nest_end(info);
    m.finish();
    Ok(())
}

fn labels_to_bytes(labels: u128) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (word, chunk) in out.chunks_mut(4).enumerate() {
        let bits = (labels >> (32 * word)) as u32;
        chunk.copy_from_slice(&bits.to_ne_bytes());
    }
    out
}

fn labels_from_bytes(data: &[u8]) -> u128 {
    data.chunks_exact(4)
        .take(4)
        .enumerate()
        .fold(0u128, |acc, (word, chunk)| {
            let bits = u32::from_ne_bytes(chunk.try_into().expect("4 bytes"));
            acc | (u128::from(bits) << (32 * word))
        })
}

/// Asks the kernel to set up NAT the way the reply tuple shows it, as
/// conntrackd does: a reply destination other than the original source is
/// source NAT, a reply source other than the original destination is
/// destination NAT. Without this the reply tuple is kept but the NAT
/// extension and `SRC_NAT`/`DST_NAT` status are missing, so the shadow would
/// not translate packets of the connection. Returns whether NAT applies.
fn put_nat(m: &mut MessageWriter<'_>, e: &ConntrackEntry) -> bool {
    let (o, r) = (&e.original, &e.reply);
    let ports = |t: &ConntrackTuple| match t.l4 {
        L4Tuple::Ports { src, dst } => Some((src, dst)),
        _ => None,
    };
    let (o_ports, r_ports) = (ports(o), ports(r));
    // Source NAT: the reply goes to the translated source.
    let snat_port = match (o_ports, r_ports) {
        (Some((osrc, _)), Some((_, rdst))) if osrc != rdst => Some(rdst),
        _ => None,
    };
    let snat = r.dst != o.src || snat_port.is_some();
    if snat {
        put_nat_range(m, CTA_NAT_SRC, r.dst, snat_port);
    }
    // Destination NAT: the reply comes from the translated destination.
    let dnat_port = match (o_ports, r_ports) {
        (Some((_, odst)), Some((rsrc, _))) if odst != rsrc => Some(rsrc),
        _ => None,
    };
    let dnat = r.src != o.dst || dnat_port.is_some();
    if dnat {
        put_nat_range(m, CTA_NAT_DST, r.src, dnat_port);
    }
    snat || dnat
}

fn put_nat_range(m: &mut MessageWriter<'_>, ty: u16, addr: IpAddr, port: Option<u16>) {
    let nat = m.nest_begin(ty);
    match addr {
        IpAddr::V4(a) => {
            m.attr(CTA_NAT_V4_MINIP, &a.octets());
            m.attr(CTA_NAT_V4_MAXIP, &a.octets());
        }
        IpAddr::V6(a) => {
            m.attr(CTA_NAT_V6_MINIP, &a.octets());
            m.attr(CTA_NAT_V6_MAXIP, &a.octets());
        }
    }
    if let Some(port) = port {
        let proto = m.nest_begin(CTA_NAT_PROTO);
        m.attr_be16(CTA_PROTONAT_PORT_MIN, port);
        m.attr_be16(CTA_PROTONAT_PORT_MAX, port);
        m.nest_end(proto);
    }
    m.nest_end(nat);
}

fn put_tuple(m: &mut MessageWriter<'_>, ty: u16, t: &ConntrackTuple) {
    let tuple = m.nest_begin(ty);
    let ip = m.nest_begin(CTA_TUPLE_IP);
    match (t.src, t.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            m.attr(CTA_IP_V4_SRC, &s.octets());
            m.attr(CTA_IP_V4_DST, &d.octets());
        }
        (s, d) => {
            m.attr(CTA_IP_V6_SRC, &v6(s).octets());
            m.attr(CTA_IP_V6_DST, &v6(d).octets());
        }
    }
    m.nest_end(ip);
    let proto = m.nest_begin(CTA_TUPLE_PROTO);
    m.attr_u8(CTA_PROTO_NUM, t.protocol);
    match t.l4 {
        L4Tuple::Ports { src, dst } => {
            m.attr_be16(CTA_PROTO_SRC_PORT, src);
            m.attr_be16(CTA_PROTO_DST_PORT, dst);
        }
        L4Tuple::Icmp { id, kind, code } => {
            let (a_id, a_type, a_code) = if t.protocol == IPPROTO_ICMPV6 {
                (
                    CTA_PROTO_ICMPV6_ID,
                    CTA_PROTO_ICMPV6_TYPE,
                    CTA_PROTO_ICMPV6_CODE,
                )
            } else {
                (CTA_PROTO_ICMP_ID, CTA_PROTO_ICMP_TYPE, CTA_PROTO_ICMP_CODE)
            };
            m.attr_be16(a_id, id);
            m.attr_u8(a_type, kind);
            m.attr_u8(a_code, code);
        }
        L4Tuple::None => {}
    }
    m.nest_end(proto);
    m.nest_end(tuple);
}

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V6(a) => a,
        IpAddr::V4(a) => a.to_ipv6_mapped(),
    }
}

/// Decodes a `IPCTNL_MSG_CT_NEW`/`DELETE` payload (nfgenmsg + attributes).
fn decode_entry(payload: &[u8]) -> Result<ConntrackEntry> {
    let attrs = payload
        .get(4..)
        .ok_or_else(|| Error::Malformed("conntrack message without nfgenmsg".into()))?;
    let mut original = None;
    let mut reply = None;
    let mut entry = ConntrackEntry {
        original: placeholder_tuple(),
        reply: placeholder_tuple(),
        zone: 0,
        mark: 0,
        status: 0,
        timeout: 0,
        tcp: None,
        labels: 0,
        id: 0,
    };
    for (ty, data) in codec::attrs(attrs) {
        match ty {
            CTA_TUPLE_ORIG => original = Some(decode_tuple(data)?),
            CTA_TUPLE_REPLY => reply = Some(decode_tuple(data)?),
            CTA_STATUS => entry.status = codec::be32(data)?,
            CTA_TIMEOUT => entry.timeout = codec::be32(data)?,
            CTA_MARK => entry.mark = codec::be32(data)?,
            CTA_ZONE => entry.zone = codec::be16(data)?,
            CTA_ID => entry.id = codec::be32(data)?,
            CTA_LABELS => entry.labels = labels_from_bytes(data),
            CTA_PROTOINFO => {
                for (pty, pdata) in codec::attrs(data) {
                    if pty == CTA_PROTOINFO_TCP {
                        entry.tcp = Some(decode_tcp(pdata)?);
                    }
                }
            }
            _ => {}
        }
    }
    entry.original = original
        .ok_or_else(|| Error::Malformed("conntrack entry without CTA_TUPLE_ORIG".into()))?;
    entry.reply = reply.unwrap_or_else(|| entry.original.inverted());
    Ok(entry)
}

fn placeholder_tuple() -> ConntrackTuple {
    ConntrackTuple {
        src: Ipv4Addr::UNSPECIFIED.into(),
        dst: Ipv4Addr::UNSPECIFIED.into(),
        protocol: 0,
        l4: L4Tuple::None,
    }
}

fn decode_tcp(data: &[u8]) -> Result<TcpInfo> {
    let mut info = TcpInfo::with_state(TcpState::None);
    for (ty, d) in codec::attrs(data) {
        match ty {
            CTA_PROTOINFO_TCP_STATE => {
                let raw = codec::u8_at(d)?;
                info.state = TcpState::from_raw(raw)
                    .ok_or_else(|| Error::Malformed(format!("TCP conntrack state {raw}")))?;
            }
            CTA_PROTOINFO_TCP_WSCALE_ORIGINAL => info.wscale_original = codec::u8_at(d)?,
            CTA_PROTOINFO_TCP_WSCALE_REPLY => info.wscale_reply = codec::u8_at(d)?,
            CTA_PROTOINFO_TCP_FLAGS_ORIGINAL => info.flags_original = codec::u8_at(d)?,
            CTA_PROTOINFO_TCP_FLAGS_REPLY => info.flags_reply = codec::u8_at(d)?,
            _ => {}
        }
    }
    Ok(info)
}

fn decode_tuple(data: &[u8]) -> Result<ConntrackTuple> {
    let mut src = None;
    let mut dst = None;
    let mut protocol = None;
    let (mut sport, mut dport) = (None, None);
    let (mut icmp_id, mut icmp_type, mut icmp_code) = (None, None, None);
    for (ty, d) in codec::attrs(data) {
        match ty {
            CTA_TUPLE_IP => {
                for (ity, id) in codec::attrs(d) {
                    match ity {
                        CTA_IP_V4_SRC => src = Some(IpAddr::from(codec::fixed::<4>(id)?)),
                        CTA_IP_V4_DST => dst = Some(IpAddr::from(codec::fixed::<4>(id)?)),
                        CTA_IP_V6_SRC => src = Some(IpAddr::from(codec::fixed::<16>(id)?)),
                        CTA_IP_V6_DST => dst = Some(IpAddr::from(codec::fixed::<16>(id)?)),
                        _ => {}
                    }
                }
            }
            CTA_TUPLE_PROTO => {
                for (pty, pd) in codec::attrs(d) {
                    match pty {
                        CTA_PROTO_NUM => protocol = Some(codec::u8_at(pd)?),
                        CTA_PROTO_SRC_PORT => sport = Some(codec::be16(pd)?),
                        CTA_PROTO_DST_PORT => dport = Some(codec::be16(pd)?),
                        CTA_PROTO_ICMP_ID | CTA_PROTO_ICMPV6_ID => {
                            icmp_id = Some(codec::be16(pd)?);
                        }
                        CTA_PROTO_ICMP_TYPE | CTA_PROTO_ICMPV6_TYPE => {
                            icmp_type = Some(codec::u8_at(pd)?);
                        }
                        CTA_PROTO_ICMP_CODE | CTA_PROTO_ICMPV6_CODE => {
                            icmp_code = Some(codec::u8_at(pd)?);
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let missing = |what: &str| Error::Malformed(format!("conntrack tuple without {what}"));
    let l4 = match (sport, dport, icmp_type) {
        (Some(src), Some(dst), _) => L4Tuple::Ports { src, dst },
        (_, _, Some(kind)) => L4Tuple::Icmp {
            id: icmp_id.unwrap_or(0),
            kind,
            code: icmp_code.unwrap_or(0),
        },
        _ => L4Tuple::None,
    };
    Ok(ConntrackTuple {
        src: src.ok_or_else(|| missing("source address"))?,
        dst: dst.ok_or_else(|| missing("destination address"))?,
        protocol: protocol.ok_or_else(|| missing("protocol number"))?,
        l4,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ConntrackEntry {
        let original = ConntrackTuple {
            src: "198.18.1.2".parse().unwrap(),
            dst: "198.18.2.2".parse().unwrap(),
            protocol: IPPROTO_TCP,
            l4: L4Tuple::Ports {
                src: 40000,
                dst: 80,
            },
        };
        let mut e = ConntrackEntry::new(original, 300);
        e.reply.dst = "198.18.2.1".parse().unwrap();
        e.reply.l4 = L4Tuple::Ports {
            src: 80,
            dst: 61000,
        };
        e.mark = 0x2a;
        e.zone = 3;
        e.labels = (1 << 5) | (1 << 100);
        e.tcp = Some(TcpInfo {
            state: TcpState::Established,
            wscale_original: 7,
            wscale_reply: 9,
            flags_original: 0x23,
            flags_reply: 0x21,
        });
        e
    }

    #[test]
    fn encoded_entry_decodes_to_the_same_entry() {
        let e = sample();
        let mut buf = Vec::new();
        encode_entry(&mut buf, &e, false, true, 1).unwrap();
        let msg = codec::messages(&buf).next().unwrap().unwrap();
        assert_eq!(msg.ty, 0x0100);
        assert_eq!(msg.flags, NLM_F_REQUEST | NLM_F_ACK);
        let mut back = decode_entry(msg.payload).unwrap();
        assert_eq!(back.status, e.status | status::CONFIRMED);
        back.status = e.status;
        assert_eq!(back, e);

        // A create has the settable status with CONFIRMED and, with NAT,
        // the un-NAT-ed reply tuple; without an ACK asked, no NLM_F_ACK.
        buf.clear();
        encode_entry(&mut buf, &e, true, false, 1).unwrap();
        let msg = codec::messages(&buf).next().unwrap().unwrap();
        assert_eq!(msg.flags, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
        let back = decode_entry(msg.payload).unwrap();
        assert_eq!(
            back.status,
            (e.status & status::SETTABLE) | status::CONFIRMED
        );
        assert_eq!(back.reply, e.original.inverted());
    }

    #[test]
    fn nat_setup_follows_the_reply_tuple() {
        let e = sample();
        let mut buf = Vec::new();
        encode_entry(&mut buf, &e, true, true, 1).unwrap();
        let msg = codec::messages(&buf).next().unwrap().unwrap();
        let top: Vec<_> = codec::attrs(&msg.payload[4..]).collect();
        let snat = top.iter().find(|(t, _)| *t == CTA_NAT_SRC).expect("SNAT");
        let min: Vec<_> = codec::attrs(snat.1).collect();
        assert_eq!(min[0], (CTA_NAT_V4_MINIP, &[198u8, 18, 2, 1][..]));
        let proto = min.iter().find(|(t, _)| *t == CTA_NAT_PROTO).expect("port");
        let port = codec::attrs(proto.1).next().unwrap();
        assert_eq!(codec::be16(port.1).unwrap(), 61000);
        assert!(top.iter().all(|(t, _)| *t != CTA_NAT_DST), "no DNAT");

        let plain = ConntrackEntry::new(e.original, 10);
        buf.clear();
        encode_entry(&mut buf, &plain, true, true, 1).unwrap();
        let msg = codec::messages(&buf).next().unwrap().unwrap();
        assert!(codec::attrs(&msg.payload[4..]).all(|(t, _)| t != CTA_NAT_SRC && t != CTA_NAT_DST));
    }

    #[test]
    fn icmp_and_v6_tuples_invert_and_roundtrip() {
        let t = ConntrackTuple {
            src: "2001:2::1".parse().unwrap(),
            dst: "2001:2::2".parse().unwrap(),
            protocol: IPPROTO_ICMPV6,
            l4: L4Tuple::Icmp {
                id: 77,
                kind: 128,
                code: 0,
            },
        };
        let e = ConntrackEntry::new(t, 30);
        assert_eq!(
            e.reply.l4,
            L4Tuple::Icmp {
                id: 77,
                kind: 129,
                code: 0
            }
        );
        let mut buf = Vec::new();
        encode_entry(&mut buf, &e, false, true, 1).unwrap();
        let msg = codec::messages(&buf).next().unwrap().unwrap();
        let back = decode_entry(msg.payload).unwrap();
        assert_eq!((back.original, back.reply), (e.original, e.reply));
        assert!(
            back.status & status::CONFIRMED != 0,
            "updates keep CONFIRMED"
        );
    }

    #[test]
    fn mixed_families_are_rejected() {
        let mut e = sample();
        e.original.dst = "2001:2::2".parse().unwrap();
        let mut buf = Vec::new();
        assert!(matches!(
            encode_entry(&mut buf, &e, true, true, 1),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn tcp_states_map_to_kernel_numbers_and_cli_names() {
        assert_eq!(TcpState::Established.to_raw(), 3);
        assert_eq!(TcpState::from_raw(7), Some(TcpState::TimeWait));
        assert_eq!(TcpState::from_raw(10), None);
        assert_eq!(TcpState::TimeWait.name(), "TIME_WAIT");
    }
}
