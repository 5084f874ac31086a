//! Netlink framing: message headers, attributes and nested attributes, written
//! into and read from plain byte buffers so many messages can share one
//! `send(2)`.

use crate::error::{Error, Result};

/// `sizeof(struct nlmsghdr)`.
pub(crate) const NLMSG_HDRLEN: usize = 16;
/// `NLA_HDRLEN`.
const NLA_HDRLEN: usize = 4;
/// `NLA_F_NESTED`.
const NLA_F_NESTED: u16 = 0x8000;
/// Mask of the attribute type without the `NLA_F_*` flags.
const NLA_TYPE_MASK: u16 = 0x3fff;

pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const NLMSG_OVERRUN: u16 = 4;

pub(crate) const NLM_F_REQUEST: u16 = 0x01;
pub(crate) const NLM_F_ACK: u16 = 0x04;
pub(crate) const NLM_F_DUMP: u16 = 0x300;
pub(crate) const NLM_F_REPLACE: u16 = 0x100;
pub(crate) const NLM_F_EXCL: u16 = 0x200;
pub(crate) const NLM_F_CREATE: u16 = 0x400;

fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// One message being appended to a (possibly shared) buffer.
pub(crate) struct MessageWriter<'a> {
    buf: &'a mut Vec<u8>,
    start: usize,
}

impl<'a> MessageWriter<'a> {
    /// Starts a message at the end of `buf`; the length is filled in by
    /// [`MessageWriter::finish`].
    pub(crate) fn begin(buf: &'a mut Vec<u8>, ty: u16, flags: u16, seq: u32) -> Self {
        let start = buf.len();
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        MessageWriter { buf, start }
    }

    /// Appends raw payload (the family header), padded to 4 bytes.
    pub(crate) fn put(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        let padded = self.start + align(self.buf.len() - self.start);
        self.buf.resize(padded, 0);
    }

    /// Appends one attribute.
    pub(crate) fn attr(&mut self, ty: u16, data: &[u8]) {
        let len = u16::try_from(NLA_HDRLEN + data.len()).expect("attribute under 64 KiB");
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
    }

    pub(crate) fn attr_u8(&mut self, ty: u16, v: u8) {
        self.attr(ty, &[v]);
    }

    pub(crate) fn attr_be16(&mut self, ty: u16, v: u16) {
        self.attr(ty, &v.to_be_bytes());
    }

    pub(crate) fn attr_be32(&mut self, ty: u16, v: u32) {
        self.attr(ty, &v.to_be_bytes());
    }

    pub(crate) fn attr_ne32(&mut self, ty: u16, v: u32) {
        self.attr(ty, &v.to_ne_bytes());
    }

    /// Opens a nested attribute; close it with [`MessageWriter::nest_end`].
    pub(crate) fn nest_begin(&mut self, ty: u16) -> usize {
        let pos = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        pos
    }

    pub(crate) fn nest_end(&mut self, pos: usize) {
        let len = u16::try_from(self.buf.len() - pos).expect("nest under 64 KiB");
        self.buf[pos..pos + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// Writes the final length into the header.
    pub(crate) fn finish(self) {
        let len = u32::try_from(self.buf.len() - self.start).expect("message under 4 GiB");
        self.buf[self.start..self.start + 4].copy_from_slice(&len.to_ne_bytes());
    }
}

/// A received message, borrowed from the receive buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Message<'a> {
    pub(crate) ty: u16,
    pub(crate) flags: u16,
    pub(crate) seq: u32,
    /// `nlmsg_pid`: in an event, the port of the socket whose request
    /// caused it (0 for the kernel's own).
    pub(crate) pid: u32,
    pub(crate) payload: &'a [u8],
}

impl Message<'_> {
    /// For `NLMSG_ERROR`: the (positive) errno, 0 for an ACK.
    pub(crate) fn error_code(&self) -> Result<i32> {
        let raw = self
            .payload
            .get(..4)
            .ok_or_else(|| Error::Malformed("short NLMSG_ERROR".into()))?;
        Ok(-i32::from_ne_bytes(raw.try_into().expect("4 bytes")))
    }
}

/// Splits a datagram into messages.
pub(crate) fn messages(mut buf: &[u8]) -> impl Iterator<Item = Result<Message<'_>>> {
    std::iter::from_fn(move || {
        if buf.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32::from_ne_bytes(buf[0..4].try_into().expect("4")) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            buf = &[];
            return Some(Err(Error::Malformed(format!("bad nlmsg_len {len}"))));
        }
        let msg = Message {
            ty: u16::from_ne_bytes(buf[4..6].try_into().expect("2")),
            flags: u16::from_ne_bytes(buf[6..8].try_into().expect("2")),
            seq: u32::from_ne_bytes(buf[8..12].try_into().expect("4")),
            pid: u32::from_ne_bytes(buf[12..16].try_into().expect("4")),
            payload: &buf[NLMSG_HDRLEN..len],
        };
        buf = &buf[align(len).min(buf.len())..];
        Some(Ok(msg))
    })
}

/// Iterates over attributes as `(type without flags, payload)`; stops at the
/// first truncated attribute.
pub(crate) fn attrs(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if buf.len() < NLA_HDRLEN {
            return None;
        }
        let len = u16::from_ne_bytes(buf[0..2].try_into().expect("2")) as usize;
        let ty = u16::from_ne_bytes(buf[2..4].try_into().expect("2")) & NLA_TYPE_MASK;
        if len < NLA_HDRLEN || len > buf.len() {
            return None;
        }
        let payload = &buf[NLA_HDRLEN..len];
        buf = &buf[align(len).min(buf.len())..];
        Some((ty, payload))
    })
}

pub(crate) fn be16(data: &[u8]) -> Result<u16> {
    Ok(u16::from_be_bytes(fixed(data)?))
}

pub(crate) fn be32(data: &[u8]) -> Result<u32> {
    Ok(u32::from_be_bytes(fixed(data)?))
}

pub(crate) fn ne32(data: &[u8]) -> Result<u32> {
    Ok(u32::from_ne_bytes(fixed(data)?))
}

pub(crate) fn u8_at(data: &[u8]) -> Result<u8> {
    Ok(u8::from_ne_bytes(fixed(data)?))
}

pub(crate) fn fixed<const N: usize>(data: &[u8]) -> Result<[u8; N]> {
    data.get(..N)
        .and_then(|d| d.try_into().ok())
        .ok_or_else(|| Error::Malformed(format!("attribute of {} bytes, want {N}", data.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_output_parses_back_with_nesting_and_padding() {
        let mut buf = Vec::new();
        let mut m = MessageWriter::begin(&mut buf, 0x0100, NLM_F_REQUEST, 7);
        m.put(&[2, 0, 0, 0]);
        let n = m.nest_begin(1);
        m.attr_u8(3, 9);
        m.attr_be16(4, 0x1234);
        m.nest_end(n);
        m.attr_be32(5, 0xdead_beef);
        m.finish();
        let mut m2 = MessageWriter::begin(&mut buf, 0x0101, 0, 8);
        m2.attr(1, b"abc");
        m2.finish();

        let msgs: Vec<_> = messages(&buf).collect::<Result<_>>().unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!((msgs[0].ty, msgs[0].seq), (0x0100, 7));
        let top: Vec<_> = attrs(&msgs[0].payload[4..]).collect();
        assert_eq!(top.len(), 2);
        assert_eq!(top[0].0, 1, "NLA_F_NESTED is masked off");
        let inner: Vec<_> = attrs(top[0].1).collect();
        assert_eq!(inner[0], (3, &[9u8][..]));
        assert_eq!(be16(inner[1].1).unwrap(), 0x1234);
        assert_eq!(be32(top[1].1).unwrap(), 0xdead_beef);
        assert_eq!(msgs[1].seq, 8);
        assert_eq!(attrs(msgs[1].payload).next().unwrap().1, b"abc");
    }

    #[test]
    fn truncated_message_is_reported() {
        let mut buf = Vec::new();
        MessageWriter::begin(&mut buf, 1, 0, 1).finish();
        buf[0] = 200;
        assert!(messages(&buf).next().unwrap().is_err());
    }
}
