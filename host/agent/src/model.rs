//! The state model of a device: typed keys and values of routes, nftables
//! tables and conntrack entries, versioned entries, and the stable partition
//! of a key used by anti-entropy digests.
//!
//! Keys are totally ordered (snapshots and digests go in key order) and
//! identify what the kernel identifies: a route by (table, destination,
//! metric), an nftables table by (family, name), a conntrack entry by
//! (zone, original tuple).

use std::net::IpAddr;

use crate::hlc::Hlc;

/// The version of an entry, ordered by (`clock`, `origin`, `tombstone`):
/// for one key the greatest version wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version {
    /// When the change was made, on its origin's clock.
    pub clock: Hlc,
    /// Node id of the device where the change originated.
    pub origin: u64,
    /// The entry was deleted.
    pub tombstone: bool,
}

/// An IP prefix whose host bits are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix {
    address: IpAddr,
    length: u8,
}

impl Prefix {
    /// A prefix of `length` bits at `address`.
    ///
    /// # Errors
    /// A length beyond the family's width, or host bits set (the reason as
    /// text).
    pub fn new(address: IpAddr, length: u8) -> Result<Self, String> {
        let (bits, width) = match address {
            IpAddr::V4(a) => (u128::from(u32::from(a)) << 96, 32),
            IpAddr::V6(a) => (u128::from(a), 128),
        };
        if length > width {
            return Err(format!(
                "prefix length {length} exceeds {width} for {address}"
            ));
        }
        let host_mask = if length == 0 {
            u128::MAX
        } else {
            u128::MAX >> length
        };
        if bits & host_mask != 0 {
            return Err(format!("prefix {address}/{length} has host bits set"));
        }
        Ok(Self { address, length })
    }

    /// The network address.
    pub fn address(&self) -> IpAddr {
        self.address
    }

    /// The prefix length in bits.
    pub fn length(&self) -> u8 {
        self.length
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.length)
    }
}

/// nftables address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NftFamily {
    /// `ip`
    Ip,
    /// `ip6`
    Ip6,
    /// `inet`
    Inet,
    /// `arp`
    Arp,
    /// `bridge`
    Bridge,
    /// `netdev`
    Netdev,
}

impl NftFamily {
    /// The family's name in nft syntax.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ip => "ip",
            Self::Ip6 => "ip6",
            Self::Inet => "inet",
            Self::Arp => "arp",
            Self::Bridge => "bridge",
            Self::Netdev => "netdev",
        }
    }
}

/// The layer-4 part of a conntrack tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum L4 {
    /// A protocol with ports (TCP, UDP, UDP-Lite, SCTP, DCCP).
    Ports {
        /// IANA protocol number.
        protocol: u8,
        /// Source port.
        source: u16,
        /// Destination port.
        destination: u16,
    },
    /// ICMP (1) or ICMPv6 (58).
    Icmp {
        /// 1 or 58.
        protocol: u8,
        /// ICMP type.
        kind: u8,
        /// ICMP code.
        code: u8,
        /// Echo identifier.
        id: u16,
    },
    /// Any other protocol: tracked by addresses only.
    Other {
        /// IANA protocol number.
        protocol: u8,
    },
}

impl L4 {
    /// IANA protocol number.
    pub fn protocol(&self) -> u8 {
        match *self {
            Self::Ports { protocol, .. }
            | Self::Icmp { protocol, .. }
            | Self::Other { protocol } => protocol,
        }
    }

    /// Whether `protocol` carries ports in conntrack tuples.
    pub fn has_ports(protocol: u8) -> bool {
        matches!(protocol, 6 | 17 | 33 | 132 | 136)
    }
}

/// One direction of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tuple {
    /// Source address.
    pub source: IpAddr,
    /// Destination address (same family as `source`).
    pub destination: IpAddr,
    /// Protocol and ports or ICMP identity.
    pub l4: L4,
}

impl Tuple {
    /// The tuple of the other direction without NAT (addresses and ports
    /// swapped; ICMP echo request becomes echo reply).
    pub fn inverted(&self) -> Self {
        let l4 = match self.l4 {
            L4::Ports {
                protocol,
                source,
                destination,
            } => L4::Ports {
                protocol,
                source: destination,
                destination: source,
            },
            L4::Icmp {
                protocol,
                kind,
                code,
                id,
            } => L4::Icmp {
                protocol,
                kind: match (protocol, kind) {
                    (1, 8) => 0,
                    (58, 128) => 129,
                    (_, k) => k,
                },
                code,
                id,
            },
            other => other,
        };
        Self {
            source: self.destination,
            destination: self.source,
            l4,
        }
    }
}

/// TCP conntrack state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum TcpState {
    /// Not TCP.
    #[default]
    None,
    /// SYN seen.
    SynSent,
    /// SYN/ACK seen.
    SynRecv,
    /// Handshake completed.
    Established,
    /// FIN seen.
    FinWait,
    /// FIN seen in the reply direction.
    CloseWait,
    /// Last ACK awaited.
    LastAck,
    /// Both FINs acknowledged.
    TimeWait,
    /// RST seen.
    Close,
    /// Simultaneous open.
    SynSent2,
}

/// Conntrack status bit: a reply has been seen.
pub const IPS_SEEN_REPLY: u32 = 0x2;
/// Conntrack status bit: the connection is assured (not early-dropped).
pub const IPS_ASSURED: u32 = 0x4;
/// Conntrack status bit: the entry is in the table.
pub const IPS_CONFIRMED: u32 = 0x8;
/// Conntrack status bit: source NAT.
pub const IPS_SRC_NAT: u32 = 0x10;

/// Key of a route.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteKey {
    /// Routing table id.
    pub table: u32,
    /// Destination prefix.
    pub destination: Prefix,
    /// Route priority.
    pub metric: u32,
}

/// Value of a route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteValue {
    /// Next hop; `None` for a connected route.
    pub gateway: Option<IpAddr>,
    /// Output interface name.
    pub output_interface: String,
}

/// Key of an nftables table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NftTableKey {
    /// Address family.
    pub family: NftFamily,
    /// Table name.
    pub name: String,
}

/// Value of an nftables table: the whole table as libnftables JSON.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NftTableValue {
    /// `nft -j list table` output (an object with an `nftables` array).
    pub ruleset_json: String,
}

/// Key of a conntrack entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConntrackKey {
    /// Conntrack zone.
    pub zone: u16,
    /// Tuple of the packet that created the connection.
    pub original: Tuple,
}

/// Value of a conntrack entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConntrackValue {
    /// Tuple of the replies (implies NAT).
    pub reply: Tuple,
    /// Connection mark.
    pub mark: u32,
    /// `IPS_*` status bits.
    pub status: u32,
    /// Seconds left before expiry when the change was recorded.
    pub timeout_seconds: u32,
    /// TCP state (`None` for other protocols).
    pub tcp_state: TcpState,
    /// Connection labels.
    pub labels: u128,
}

/// The key of any entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// A route.
    Route(RouteKey),
    /// An nftables table.
    NftTable(NftTableKey),
    /// A conntrack entry.
    Conntrack(ConntrackKey),
}

/// The value of any entry; always of the same kind as its key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// A route.
    Route(RouteValue),
    /// An nftables table.
    NftTable(NftTableValue),
    /// A conntrack entry.
    Conntrack(ConntrackValue),
}

impl Value {
    /// Whether this value belongs with `key`'s kind.
    pub fn matches(&self, key: &Key) -> bool {
        matches!(
            (key, self),
            (Key::Route(_), Value::Route(_))
                | (Key::NftTable(_), Value::NftTable(_))
                | (Key::Conntrack(_), Value::Conntrack(_))
        )
    }
}

/// A versioned entry. Invariant (checked by [`Entry::new`] and by the wire
/// conversion): `value` is `None` exactly when `version.tombstone`, and a
/// value is of its key's kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// What the entry is about.
    pub key: Key,
    /// Its version.
    pub version: Version,
    /// Its value; `None` for a tombstone.
    pub value: Option<Value>,
}

impl Entry {
    /// A checked entry.
    ///
    /// # Errors
    /// A value of another kind than the key, or a value on a tombstone (or
    /// none on a live entry).
    pub fn new(key: Key, version: Version, value: Option<Value>) -> Result<Self, String> {
        match &value {
            Some(v) if version.tombstone => {
                Err(format!("tombstone of {key:?} carries a value {v:?}"))
            }
            Some(v) if !v.matches(&key) => Err(format!("value {v:?} does not belong to {key:?}")),
            None if !version.tombstone => Err(format!("live entry {key:?} has no value")),
            _ => Ok(Self {
                key,
                version,
                value,
            }),
        }
    }
}

/// A change the device made by itself (not through Apply), as its backend
/// reports it: the key's new value, or `None` when it disappeared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalChange {
    /// What changed.
    pub key: Key,
    /// Its new value; `None` when deleted.
    pub value: Option<Value>,
}

/// Why the agent or its backend refused one entry of an Apply; the
/// caller's entry is at fault. Not an error of the agent: a per-entry
/// result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected(pub String);

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Key {
    /// A canonical, stable byte encoding of the key (independent of the
    /// platform and of Rust versions), for partitioning.
    pub fn canonical_bytes(&self, out: &mut Vec<u8>) {
        fn addr(out: &mut Vec<u8>, a: IpAddr) {
            match a {
                IpAddr::V4(a) => {
                    out.push(4);
                    out.extend_from_slice(&a.octets());
                }
                IpAddr::V6(a) => {
                    out.push(6);
                    out.extend_from_slice(&a.octets());
                }
            }
        }
        fn tuple(out: &mut Vec<u8>, t: &Tuple) {
            addr(out, t.source);
            addr(out, t.destination);
            match t.l4 {
                L4::Ports {
                    protocol,
                    source,
                    destination,
                } => {
                    out.extend_from_slice(&[0, protocol]);
                    out.extend_from_slice(&source.to_be_bytes());
                    out.extend_from_slice(&destination.to_be_bytes());
                }
                L4::Icmp {
                    protocol,
                    kind,
                    code,
                    id,
                } => {
                    out.extend_from_slice(&[1, protocol, kind, code]);
                    out.extend_from_slice(&id.to_be_bytes());
                }
                L4::Other { protocol } => out.extend_from_slice(&[2, protocol]),
            }
        }
        match self {
            Key::Route(k) => {
                out.push(1);
                out.extend_from_slice(&k.table.to_be_bytes());
                addr(out, k.destination.address());
                out.push(k.destination.length());
                out.extend_from_slice(&k.metric.to_be_bytes());
            }
            Key::NftTable(k) => {
                out.push(2);
                out.push(k.family as u8);
                out.extend_from_slice(k.name.as_bytes());
            }
            Key::Conntrack(k) => {
                out.push(3);
                out.extend_from_slice(&k.zone.to_be_bytes());
                tuple(out, &k.original);
            }
        }
    }

    /// The key's partition among `count` (at least 1): FNV-1a 64 of the
    /// canonical bytes, modulo `count`. Depends only on the key and
    /// `count`, so every agent agrees.
    pub fn partition(&self, count: u32) -> u32 {
        let mut bytes = Vec::with_capacity(64);
        self.canonical_bytes(&mut bytes);
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        u32::try_from(hash % u64::from(count.max(1))).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    #[test]
    fn prefixes_refuse_host_bits_and_long_lengths() {
        let net = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 0));
        assert!(Prefix::new(net, 24).is_ok());
        assert!(Prefix::new(net, 23).unwrap_err().contains("host bits"));
        assert!(Prefix::new(net, 33).unwrap_err().contains("exceeds 32"));
        assert!(Prefix::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0).is_ok());
        assert!(Prefix::new(net, 0).is_err());
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0));
        assert!(Prefix::new(v6, 32).is_ok());
        assert!(Prefix::new(v6, 16).is_err());
        assert!(Prefix::new(v6, 129).is_err());
    }

    #[test]
    fn partitions_are_stable_and_spread() {
        let key = |port: u16| {
            Key::Conntrack(ConntrackKey {
                zone: 0,
                original: Tuple {
                    source: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
                    destination: IpAddr::V4(Ipv4Addr::new(198, 19, 0, 2)),
                    l4: L4::Ports {
                        protocol: 6,
                        source: port,
                        destination: 80,
                    },
                },
            })
        };
        // Pinned: a change of the encoding or hash would split agents of
        // different builds into different partitions.
        assert_eq!(key(40_000).partition(1 << 16), 8147);
        assert_eq!(key(1).partition(1), 0);
        let mut seen = [0u32; 16];
        for port in 0..1_600 {
            seen[key(port).partition(16) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    }

    #[test]
    fn versions_order_by_clock_then_origin_then_tombstone() {
        let at = |wall_ms, node_id| Hlc {
            wall_ms,
            logical: 0,
            node_id,
        };
        let v = |clock, origin, tombstone| Version {
            clock,
            origin,
            tombstone,
        };
        assert!(v(at(2, 1), 1, false) > v(at(1, 9), 9, true));
        assert!(v(at(1, 2), 1, false) > v(at(1, 1), 9, false));
        assert!(v(at(1, 1), 1, true) > v(at(1, 1), 1, false));
    }

    #[test]
    fn entries_check_kind_and_tombstone() {
        let key = Key::NftTable(NftTableKey {
            family: NftFamily::Inet,
            name: "filter".into(),
        });
        let value = Value::NftTable(NftTableValue {
            ruleset_json: "{}".into(),
        });
        let live = Version::default();
        let dead = Version {
            tombstone: true,
            ..live
        };
        assert!(Entry::new(key.clone(), live, Some(value.clone())).is_ok());
        assert!(Entry::new(key.clone(), dead, None).is_ok());
        assert!(Entry::new(key.clone(), dead, Some(value)).is_err());
        assert!(Entry::new(key.clone(), live, None).is_err());
        let route = Value::Route(RouteValue {
            gateway: None,
            output_interface: "eth0".into(),
        });
        assert!(Entry::new(key, live, Some(route)).is_err());
    }
}
