//! `UmbraParser`: the parser of `umbra.p4`, extracting only the fields the
//! pipeline reads.
//!
//! Short packets follow bmv2: when an `extract` runs out of bytes the parser
//! stops with `error.PacketTooShort`, the header being extracted stays
//! invalid (and so do all later ones), the headers extracted before it stay
//! valid, and the packet continues to ingress. v1model does not drop on a
//! parser error and `umbra.p4` never looks at `parser_error`, so such a
//! packet is classified by ingress port like any other; the deparser emits it
//! unchanged (the unparsed bytes are payload).

use crate::CONTROLLER_HEADER_LEN;

const ETHERNET_LEN: usize = 14;
const IPV4_LEN: usize = 20;
const TCP_LEN: usize = 20;
const UDP_LEN: usize = 8;
const ETHERTYPE_IPV4: u16 = 0x0800;
const IP_PROTO_TCP: u8 = 6;
const IP_PROTO_UDP: u8 = 17;

/// `standard_metadata.parser_error` values the parser can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParserError {
    /// `error.NoError`.
    #[default]
    NoError,
    /// `error.PacketTooShort`: an `extract` ran out of bytes.
    PacketTooShort,
}

/// The IPv4 fields the pipeline reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Fields {
    /// `hdr.ipv4.src_addr`.
    pub src_addr: u32,
    /// `hdr.ipv4.dst_addr`.
    pub dst_addr: u32,
    /// `hdr.ipv4.protocol`.
    pub protocol: u8,
}

/// What the parser extracted, reduced to what the program uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParsedHeaders {
    /// `hdr.packet_out.egress_port` if `hdr.packet_out` is valid.
    pub packet_out_egress_port: Option<u16>,
    /// Whether `hdr.ethernet` is valid.
    pub ethernet_valid: bool,
    /// `hdr.ipv4` if valid.
    pub ipv4: Option<Ipv4Fields>,
    /// `meta.l4_src_port` (0 unless a TCP or UDP header was extracted).
    pub l4_src_port: u16,
    /// `meta.l4_dst_port` (0 unless a TCP or UDP header was extracted).
    pub l4_dst_port: u16,
    /// Whether `hdr.tcp` is valid.
    pub tcp_valid: bool,
    /// Whether `hdr.udp` is valid.
    pub udp_valid: bool,
    /// `standard_metadata.parser_error`.
    pub error: ParserError,
    /// Offset of the first byte the deparser emits: past `packet_out`, which
    /// the deparser never emits.
    pub emit_start: usize,
}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Runs the parser on `frame`; `from_cpu_port` is
/// `standard_metadata.ingress_port == CPU_PORT` (the `start` state's select).
pub fn parse(frame: &[u8], from_cpu_port: bool) -> ParsedHeaders {
    let mut hdr = ParsedHeaders::default();
    let mut at = 0;

    // state start / parse_packet_out
    if from_cpu_port {
        if frame.len() < CONTROLLER_HEADER_LEN {
            hdr.error = ParserError::PacketTooShort;
            return hdr;
        }
        // bit<9> egress_port; bit<7> _pad
        hdr.packet_out_egress_port = Some(be16(frame, 0) >> 7);
        at = CONTROLLER_HEADER_LEN;
        hdr.emit_start = at;
    }

    // state parse_ethernet
    if frame.len() < at + ETHERNET_LEN {
        hdr.error = ParserError::PacketTooShort;
        return hdr;
    }
    hdr.ethernet_valid = true;
    let ether_type = be16(frame, at + 12);
    at += ETHERNET_LEN;
    if ether_type != ETHERTYPE_IPV4 {
        return hdr;
    }

    // state parse_ipv4
    if frame.len() < at + IPV4_LEN {
        hdr.error = ParserError::PacketTooShort;
        return hdr;
    }
    let ip = &frame[at..at + IPV4_LEN];
    let ihl = ip[0] & 0x0f;
    let frag_offset = be16(ip, 6) & 0x1fff;
    let protocol = ip[9];
    hdr.ipv4 = Some(Ipv4Fields {
        src_addr: be32(ip, 12),
        dst_addr: be32(ip, 16),
        protocol,
    });
    at += IPV4_LEN;
    if ihl != 5 || frag_offset != 0 {
        return hdr;
    }

    // states parse_tcp / parse_udp: the meta assignments follow the extract,
    // so they do not happen when the extract fails.
    let l4_len = match protocol {
        IP_PROTO_TCP => TCP_LEN,
        IP_PROTO_UDP => UDP_LEN,
        _ => return hdr,
    };
    if frame.len() < at + l4_len {
        hdr.error = ParserError::PacketTooShort;
        return hdr;
    }
    hdr.l4_src_port = be16(frame, at);
    hdr.l4_dst_port = be16(frame, at + 2);
    if protocol == IP_PROTO_TCP {
        hdr.tcp_valid = true;
    } else {
        hdr.udp_valid = true;
    }
    hdr
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4_udp() -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[14] = 0x45;
        f[14 + 9] = 17;
        f[14 + 12..14 + 16].copy_from_slice(&[198, 18, 0, 1]);
        f[14 + 16..14 + 20].copy_from_slice(&[198, 18, 0, 2]);
        f[34..36].copy_from_slice(&1234u16.to_be_bytes());
        f[36..38].copy_from_slice(&53u16.to_be_bytes());
        f
    }

    #[test]
    fn parses_ipv4_udp() {
        let h = parse(&ipv4_udp(), false);
        assert_eq!(h.error, ParserError::NoError);
        assert!(h.ethernet_valid && h.udp_valid && !h.tcp_valid);
        let ip = h.ipv4.unwrap();
        assert_eq!(ip.src_addr, 0xc612_0001);
        assert_eq!(ip.dst_addr, 0xc612_0002);
        assert_eq!((h.l4_src_port, h.l4_dst_port), (1234, 53));
        assert_eq!(h.emit_start, 0);
    }

    #[test]
    fn transport_only_without_options_and_fragments() {
        let mut f = ipv4_udp();
        f[14] = 0x46; // ihl 6
        let h = parse(&f, false);
        assert!(h.ipv4.is_some() && !h.udp_valid);
        assert_eq!((h.l4_src_port, h.l4_dst_port), (0, 0));

        let mut f = ipv4_udp();
        f[14 + 7] = 1; // fragment offset 1
        let h = parse(&f, false);
        assert!(!h.udp_valid);

        let mut f = ipv4_udp();
        f[14 + 6] = 0x20; // more-fragments flag alone: first fragment, parsed
        assert!(parse(&f, false).udp_valid);
    }

    #[test]
    fn packet_too_short_keeps_earlier_headers() {
        let f = ipv4_udp();
        let h = parse(&f[..40], false);
        assert_eq!(h.error, ParserError::PacketTooShort);
        assert!(h.ipv4.is_some() && !h.udp_valid);
        assert_eq!(h.l4_src_port, 0);

        let h = parse(&f[..20], false);
        assert!(h.ethernet_valid && h.ipv4.is_none());
        assert_eq!(h.error, ParserError::PacketTooShort);

        let h = parse(&f[..5], false);
        assert!(!h.ethernet_valid);
        assert_eq!(h.error, ParserError::PacketTooShort);
    }

    #[test]
    fn packet_out_header_is_nine_bits_of_port() {
        let mut f = vec![0x01, 0x80]; // port 3: 0b0000_0001_1 then 7 pad bits
        f.extend(ipv4_udp());
        let h = parse(&f, true);
        assert_eq!(h.packet_out_egress_port, Some(3));
        assert_eq!(h.emit_start, 2);
        assert!(h.udp_valid);
        let h = parse(&[0xff, 0xff], true);
        assert_eq!(h.packet_out_egress_port, Some(511));
        assert_eq!(h.error, ParserError::PacketTooShort);
        let h = parse(&[0xff], true);
        assert_eq!(h.packet_out_egress_port, None);
        assert_eq!(h.emit_start, 0);
    }
}
