//! A netlink socket with request/ACK and dump loops on top of `netlink-sys`.
//!
//! Sockets are created on a namespace's worker thread and so belong to that
//! namespace for their whole life.

use std::io;
use std::time::Duration;

use netlink_sys::Socket;
use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeVal;

use crate::codec::{self, Message, NLMSG_DONE, NLMSG_ERROR, NLMSG_OVERRUN};
use crate::error::{Error, Facility, Result};

/// Receive buffer: large enough for the biggest dump datagram the kernel
/// builds (it sizes dump skbs up to 32 KiB, more if our buffer is larger).
const RX_BUF: usize = 1 << 20;
/// Socket buffers forced above `rmem_max`/`wmem_max` (we are root): a batch of
/// ACKs is accounted by skb truesize (~1 KiB each), and event bursts need room.
pub(crate) const SOCK_BUF: usize = 32 << 20;
/// Longest wait for one kernel answer before giving up.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct NlSocket {
    sock: Socket,
    seq: u32,
    rx: Vec<u8>,
    facility: Facility,
}

impl NlSocket {
    /// Opens and binds a socket of `protocol` (`NETLINK_ROUTE`, ...).
    pub(crate) fn open(protocol: isize, facility: Facility) -> Result<Self> {
        let mut sock = Socket::new(protocol).map_err(|e| Error::socket("socket", e))?;
        sock.bind_auto().map_err(|e| Error::socket("bind", e))?;
        // Only the header of a failed request comes back in its error; we
        // identify requests by sequence number.
        let _ = sock.set_cap_ack(true);
        if setsockopt(&sock, sockopt::RcvBufForce, &SOCK_BUF).is_err() {
            let _ = sock.set_rx_buf_sz(SOCK_BUF);
        }
        let _ = setsockopt(&sock, sockopt::SndBufForce, &SOCK_BUF);
        setsockopt(
            &sock,
            sockopt::ReceiveTimeout,
            &TimeVal::new(REPLY_TIMEOUT.as_secs() as _, 0),
        )
        .map_err(|e| Error::socket("SO_RCVTIMEO", e.into()))?;
        let seq = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(1);
        Ok(NlSocket {
            sock,
            seq,
            rx: Vec::with_capacity(RX_BUF),
            facility,
        })
    }

    /// The socket's netlink port (the kernel assigned it at bind).
    pub(crate) fn port(&self) -> u32 {
        let mut addr = netlink_sys::SocketAddr::new(0, 0);
        match self.sock.get_address(&mut addr) {
            Ok(()) => addr.port_number(),
            Err(_) => 0,
        }
    }

    pub(crate) fn into_inner(self) -> Socket {
        self.sock
    }

    /// Reserves `n` consecutive sequence numbers and returns the first.
    pub(crate) fn next_seqs(&mut self, n: u32) -> u32 {
        let first = self.seq;
        self.seq = self.seq.wrapping_add(n);
        first
    }

    fn send(&self, buf: &[u8]) -> Result<()> {
        let sent = self
            .sock
            .send(buf, 0)
            .map_err(|e| Error::socket("send", e))?;
        if sent != buf.len() {
            return Err(Error::socket(
                "send",
                io::Error::other(format!("short send {sent} of {}", buf.len())),
            ));
        }
        Ok(())
    }

    fn recv(&mut self) -> Result<()> {
        loop {
            self.rx.clear();
            match self.sock.recv(&mut self.rx, 0) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(Error::socket("no answer from the kernel within 30 s", e));
                }
                Err(e) => return Err(Error::socket("recv", e)),
            }
        }
    }

    /// Sends `count` requests already encoded in `buf` with sequence numbers
    /// `first_seq..first_seq + count`, of which only the last carries
    /// `NLM_F_ACK`, and returns each request's errno (0 = success) in order.
    ///
    /// The kernel processes the requests of one datagram in order and
    /// answers every failed one with an `NLMSG_ERROR` whether or not it
    /// asked for an ACK (`netlink_rcv_skb`), so the last request's answer
    /// (its ACK or its error) closes the batch: a request that got no
    /// answer by then succeeded. Asking only the last for an ACK spares
    /// the kernel an answer (an skb) per request and us reading it.
    pub(crate) fn send_acked(
        &mut self,
        buf: &[u8],
        first_seq: u32,
        count: usize,
    ) -> Result<Vec<i32>> {
        self.send(buf)?;
        let mut results = vec![0; count];
        let last = count.checked_sub(1);
        let mut done = last.is_none();
        while !done {
            self.recv()?;
            for msg in codec::messages(&self.rx) {
                let msg = msg?;
                if msg.ty != NLMSG_ERROR {
                    continue;
                }
                let idx = msg.seq.wrapping_sub(first_seq) as usize;
                if let Some(slot) = results.get_mut(idx) {
                    *slot = msg.error_code()?;
                    done |= Some(idx) == last;
                }
            }
        }
        Ok(results)
    }

    /// Sends one request and checks its ACK.
    pub(crate) fn request(&mut self, buf: &[u8], seq: u32, op: &'static str) -> Result<()> {
        match self.send_acked(buf, seq, 1)?[0] {
            0 => Ok(()),
            errno => Err(Error::kernel(self.facility, op, errno)),
        }
    }

    /// Sends a dump request and hands every answer message to `each` until
    /// `NLMSG_DONE`. The whole dump is always drained so the socket stays in
    /// step; the first error is returned.
    pub(crate) fn dump(
        &mut self,
        req: &[u8],
        seq: u32,
        op: &'static str,
        mut each: impl FnMut(Message<'_>) -> Result<()>,
    ) -> Result<()> {
        self.send(req)?;
        let mut first_err: Option<Error> = None;
        loop {
            self.recv()?;
            for msg in codec::messages(&self.rx) {
                let msg = msg?;
                if msg.seq != seq {
                    continue;
                }
                match msg.ty {
                    NLMSG_DONE => return first_err.map_or(Ok(()), Err),
                    NLMSG_ERROR => {
                        let errno = msg.error_code()?;
                        return Err(first_err.unwrap_or(if errno == 0 {
                            Error::Malformed("ACK instead of dump data".into())
                        } else {
                            Error::kernel(self.facility, op, errno)
                        }));
                    }
                    NLMSG_OVERRUN => {
                        return Err(Error::Malformed("NLMSG_OVERRUN during dump".into()));
                    }
                    _ => {
                        if first_err.is_none()
                            && let Err(e) = each(msg)
                        {
                            first_err = Some(e);
                        }
                    }
                }
            }
        }
    }
}
