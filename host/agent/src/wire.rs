//! Conversions between the state model and `umbra.device.v1` messages.
//! Decoding validates everything and reports every problem of an entry at
//! once (joined with "; "), so a rejected entry says all that is wrong.

use std::fmt::Display;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use umbra_proto::umbra::device::v1 as pb;

use crate::hlc::Hlc;
use crate::model::{
    ConntrackKey, ConntrackValue, Entry, Key, L4, NftFamily, NftTableKey, NftTableValue, Prefix,
    RouteKey, RouteValue, TcpState, Tuple, Value, Version,
};

// `what` names the field for the problem's text; it is only formatted when
// there is a problem (`format_args!`), not for every field of every entry.

/// Decodes an address of 4 or 16 octets.
fn address(bytes: &[u8], what: impl Display, problems: &mut Vec<String>) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        Some(IpAddr::V4(Ipv4Addr::from(v4)))
    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        Some(IpAddr::V6(Ipv6Addr::from(v6)))
    } else {
        problems.push(format!(
            "{what}: malformed address of {} octets (want 4 or 16)",
            bytes.len()
        ));
        None
    }
}

fn octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn small<T: TryFrom<u32>>(value: u32, what: impl Display, problems: &mut Vec<String>) -> Option<T> {
    T::try_from(value)
        .map_err(|_| problems.push(format!("{what} {value} is out of range")))
        .ok()
}

fn tuple(t: Option<&pb::Tuple>, what: &str, problems: &mut Vec<String>) -> Option<Tuple> {
    let Some(t) = t else {
        problems.push(format!("{what} tuple is missing"));
        return None;
    };
    let source = address(&t.source, format_args!("{what} source"), problems);
    let destination = address(&t.destination, format_args!("{what} destination"), problems);
    let protocol: Option<u8> = small(t.protocol, format_args!("{what} protocol"), problems);
    if let (Some(s), Some(d)) = (source, destination)
        && s.is_ipv4() != d.is_ipv4()
    {
        problems.push(format!(
            "{what}: source {s} and destination {d} differ in family"
        ));
    }
    let l4 = match protocol? {
        p if L4::has_ports(p) => {
            let source_port = small(t.source_port, format_args!("{what} source port"), problems);
            let destination_port = small(
                t.destination_port,
                format_args!("{what} destination port"),
                problems,
            );
            L4::Ports {
                protocol: p,
                source: source_port?,
                destination: destination_port?,
            }
        }
        p @ (1 | 58) => {
            if let Some(s) = source
                && (p == 1) != s.is_ipv4()
            {
                problems.push(format!("{what}: protocol {p} with a {s} address"));
            }
            let kind = small(t.icmp_type, format_args!("{what} ICMP type"), problems);
            let code = small(t.icmp_code, format_args!("{what} ICMP code"), problems);
            let id = small(t.icmp_id, format_args!("{what} ICMP id"), problems);
            L4::Icmp {
                protocol: p,
                kind: kind?,
                code: code?,
                id: id?,
            }
        }
        p => L4::Other { protocol: p },
    };
    Some(Tuple {
        source: source?,
        destination: destination?,
        l4,
    })
}

fn tuple_to_wire(t: &Tuple) -> pb::Tuple {
    let address = |a: IpAddr| match a {
        IpAddr::V4(a) => prost::bytes::Bytes::copy_from_slice(&a.octets()),
        IpAddr::V6(a) => prost::bytes::Bytes::copy_from_slice(&a.octets()),
    };
    let mut out = pb::Tuple {
        source: address(t.source),
        destination: address(t.destination),
        protocol: u32::from(t.l4.protocol()),
        ..pb::Tuple::default()
    };
    match t.l4 {
        L4::Ports {
            source,
            destination,
            ..
        } => {
            out.source_port = u32::from(source);
            out.destination_port = u32::from(destination);
        }
        L4::Icmp { kind, code, id, .. } => {
            out.icmp_type = u32::from(kind);
            out.icmp_code = u32::from(code);
            out.icmp_id = u32::from(id);
        }
        L4::Other { .. } => {}
    }
    out
}

fn family(value: i32, problems: &mut Vec<String>) -> Option<NftFamily> {
    match pb::NftFamily::try_from(value) {
        Ok(pb::NftFamily::Ip) => Some(NftFamily::Ip),
        Ok(pb::NftFamily::Ip6) => Some(NftFamily::Ip6),
        Ok(pb::NftFamily::Inet) => Some(NftFamily::Inet),
        Ok(pb::NftFamily::Arp) => Some(NftFamily::Arp),
        Ok(pb::NftFamily::Bridge) => Some(NftFamily::Bridge),
        Ok(pb::NftFamily::Netdev) => Some(NftFamily::Netdev),
        Ok(pb::NftFamily::Unspecified) | Err(_) => {
            problems.push(format!("unknown nftables family {value}"));
            None
        }
    }
}

fn family_to_wire(f: NftFamily) -> pb::NftFamily {
    match f {
        NftFamily::Ip => pb::NftFamily::Ip,
        NftFamily::Ip6 => pb::NftFamily::Ip6,
        NftFamily::Inet => pb::NftFamily::Inet,
        NftFamily::Arp => pb::NftFamily::Arp,
        NftFamily::Bridge => pb::NftFamily::Bridge,
        NftFamily::Netdev => pb::NftFamily::Netdev,
    }
}

fn tcp_state(value: i32, problems: &mut Vec<String>) -> TcpState {
    match pb::TcpState::try_from(value) {
        Ok(pb::TcpState::None) => TcpState::None,
        Ok(pb::TcpState::SynSent) => TcpState::SynSent,
        Ok(pb::TcpState::SynRecv) => TcpState::SynRecv,
        Ok(pb::TcpState::Established) => TcpState::Established,
        Ok(pb::TcpState::FinWait) => TcpState::FinWait,
        Ok(pb::TcpState::CloseWait) => TcpState::CloseWait,
        Ok(pb::TcpState::LastAck) => TcpState::LastAck,
        Ok(pb::TcpState::TimeWait) => TcpState::TimeWait,
        Ok(pb::TcpState::Close) => TcpState::Close,
        Ok(pb::TcpState::SynSent2) => TcpState::SynSent2,
        Err(_) => {
            problems.push(format!("unknown TCP state {value}"));
            TcpState::None
        }
    }
}

fn tcp_state_to_wire(s: TcpState) -> pb::TcpState {
    match s {
        TcpState::None => pb::TcpState::None,
        TcpState::SynSent => pb::TcpState::SynSent,
        TcpState::SynRecv => pb::TcpState::SynRecv,
        TcpState::Established => pb::TcpState::Established,
        TcpState::FinWait => pb::TcpState::FinWait,
        TcpState::CloseWait => pb::TcpState::CloseWait,
        TcpState::LastAck => pb::TcpState::LastAck,
        TcpState::TimeWait => pb::TcpState::TimeWait,
        TcpState::Close => pb::TcpState::Close,
        TcpState::SynSent2 => pb::TcpState::SynSent2,
    }
}

/// Decodes and validates a wire entry.
///
/// # Errors
/// Every problem of the entry (malformed addresses, bad prefix, unknown
/// family or state, out-of-range numbers, missing parts, invalid nft JSON),
/// joined into one reason.
pub fn entry_from_wire(entry: &pb::Entry) -> Result<Entry, String> {
    let mut problems = Vec::new();
    let Some(version) = entry.version.as_ref() else {
        return Err("entry has no version".into());
    };
    let clock = version.clock.unwrap_or_default();
    let version = Version {
        clock: Hlc {
            wall_ms: clock.wall_ms,
            logical: clock.logical,
            node_id: clock.node_id,
        },
        origin: version.origin,
        tombstone: version.tombstone,
    };
    if version.clock.wall_ms == 0 {
        problems.push("version clock has no wall time".into());
    }
    let live = !version.tombstone;
    let (key, value) = match &entry.entry {
        None => return Err("entry is empty (no route, nft_table or conntrack)".into()),
        Some(pb::entry::Entry::Route(r)) => {
            let destination = match r.destination.as_ref() {
                None => {
                    problems.push("route destination is missing".into());
                    None
                }
                Some(d) => address(&d.address, "route destination", &mut problems).and_then(|a| {
                    let length = small(d.length, "prefix length", &mut problems)?;
                    Prefix::new(a, length)
                        .map_err(|e| problems.push(format!("bad prefix: {e}")))
                        .ok()
                }),
            };
            let gateway = if r.gateway.is_empty() {
                None
            } else {
                address(&r.gateway, "route gateway", &mut problems)
            };
            if let (Some(d), Some(g)) = (destination, gateway)
                && d.address().is_ipv4() != g.is_ipv4()
            {
                problems.push(format!("gateway {g} is not of {d}'s family"));
            }
            if live && gateway.is_none() && r.output_interface.is_empty() {
                problems.push("route has neither a gateway nor an output interface".into());
            }
            let key = destination.map(|destination| {
                Key::Route(RouteKey {
                    table: r.table,
                    destination,
                    metric: r.metric,
                })
            });
            let value = Value::Route(RouteValue {
                gateway,
                output_interface: r.output_interface.clone(),
            });
            (key, value)
        }
        Some(pb::entry::Entry::NftTable(t)) => {
            let family = family(t.family, &mut problems);
            if t.name.is_empty() {
                problems.push("nftables table name is empty".into());
            }
            if live {
                match serde_json::from_str::<serde_json::Value>(&t.ruleset_json) {
                    Ok(json) if json.get("nftables").is_some_and(|v| v.is_array()) => {}
                    Ok(_) => problems
                        .push("nftables JSON is not an object with an `nftables` array".into()),
                    Err(e) => problems.push(format!("nftables JSON does not parse: {e}")),
                }
            }
            let key = family.map(|family| {
                Key::NftTable(NftTableKey {
                    family,
                    name: t.name.clone(),
                })
            });
            let value = Value::NftTable(NftTableValue {
                ruleset_json: t.ruleset_json.clone(),
            });
            (key, value)
        }
        Some(pb::entry::Entry::Conntrack(c)) => {
            let original = tuple(c.original.as_ref(), "original", &mut problems);
            let zone = small(c.zone, "zone", &mut problems);
            let key = original
                .zip(zone)
                .map(|(original, zone)| Key::Conntrack(ConntrackKey { zone, original }));
            let value = if live {
                let reply = tuple(c.reply.as_ref(), "reply", &mut problems);
                let labels = match c.labels.len() {
                    0 => 0,
                    16 => u128::from_be_bytes(c.labels.as_slice().try_into().unwrap_or([0; 16])),
                    n => {
                        problems.push(format!("labels have {n} octets (want 0 or 16)"));
                        0
                    }
                };
                let tcp_state = tcp_state(c.tcp_state, &mut problems);
                if let (Some(o), Some(r)) = (original, reply)
                    && o.l4.protocol() != r.l4.protocol()
                {
                    problems.push("original and reply protocols differ".into());
                }
                reply.map(|reply| {
                    Value::Conntrack(ConntrackValue {
                        reply,
                        mark: c.mark,
                        status: c.status,
                        timeout_seconds: c.timeout_seconds,
                        tcp_state,
                        labels,
                    })
                })
            } else {
                None
            };
            match (key, value) {
                (key, Some(value)) => (key, value),
                // A tombstone (or an already reported problem): the value
                // is not used.
                (key, None) => (
                    key,
                    Value::Conntrack(ConntrackValue {
                        reply: Tuple {
                            source: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                            destination: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                            l4: L4::Other { protocol: 0 },
                        },
                        mark: 0,
                        status: 0,
                        timeout_seconds: 0,
                        tcp_state: TcpState::None,
                        labels: 0,
                    }),
                ),
            }
        }
    };
    match key {
        Some(key) if problems.is_empty() => {
            Entry::new(key, version, live.then_some(value)).map_err(|e| e.to_string())
        }
        _ => Err(problems.join("; ")),
    }
}

/// The wire form of a key with a value (live) or without (tombstone).
pub fn entry_to_wire(entry: &Entry) -> pb::Entry {
    let v = &entry.version;
    let version = pb::Version {
        clock: Some(pb::Hlc {
            wall_ms: v.clock.wall_ms,
            logical: v.clock.logical,
            node_id: v.clock.node_id,
        }),
        origin: v.origin,
        tombstone: v.tombstone,
    };
    let body = match (&entry.key, &entry.value) {
        (Key::Route(k), value) => {
            let (gateway, output_interface) = match value {
                Some(Value::Route(r)) => (
                    r.gateway.map(octets).unwrap_or_default(),
                    r.output_interface.clone(),
                ),
                _ => (Vec::new(), String::new()),
            };
            pb::entry::Entry::Route(pb::Route {
                table: k.table,
                destination: Some(pb::Prefix {
                    address: octets(k.destination.address()),
                    length: u32::from(k.destination.length()),
                }),
                gateway,
                output_interface,
                metric: k.metric,
            })
        }
        (Key::NftTable(k), value) => pb::entry::Entry::NftTable(pb::NftTable {
            family: family_to_wire(k.family).into(),
            name: k.name.clone(),
            ruleset_json: match value {
                Some(Value::NftTable(t)) => t.ruleset_json.clone(),
                _ => String::new(),
            },
        }),
        (Key::Conntrack(k), value) => {
            let mut out = pb::Conntrack {
                original: Some(tuple_to_wire(&k.original)),
                zone: u32::from(k.zone),
                ..pb::Conntrack::default()
            };
            if let Some(Value::Conntrack(c)) = value {
                out.reply = Some(tuple_to_wire(&c.reply));
                out.mark = c.mark;
                out.status = c.status;
                out.timeout_seconds = c.timeout_seconds;
                out.tcp_state = tcp_state_to_wire(c.tcp_state).into();
                out.labels = if c.labels == 0 {
                    Vec::new()
                } else {
                    c.labels.to_be_bytes().to_vec()
                };
            }
            pb::entry::Entry::Conntrack(out)
        }
    };
    pb::Entry {
        version: Some(version),
        entry: Some(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::IPS_ASSURED;

    fn version(tombstone: bool) -> Version {
        Version {
            clock: Hlc {
                wall_ms: 1_700_000_000_000,
                logical: 3,
                node_id: 7,
            },
            origin: 7,
            tombstone,
        }
    }

    fn conntrack() -> Entry {
        let original = Tuple {
            source: "198.18.0.10".parse().unwrap(),
            destination: "198.19.0.10".parse().unwrap(),
            l4: L4::Ports {
                protocol: 6,
                source: 40_000,
                destination: 443,
            },
        };
        Entry::new(
            Key::Conntrack(ConntrackKey { zone: 3, original }),
            version(false),
            Some(Value::Conntrack(ConntrackValue {
                reply: original.inverted(),
                mark: 0x42,
                status: IPS_ASSURED,
                timeout_seconds: 431_999,
                tcp_state: TcpState::Established,
                labels: 1 << 100 | 5,
            })),
        )
        .unwrap()
    }

    #[test]
    fn entries_round_trip_through_the_wire_form() {
        let route = Entry::new(
            Key::Route(RouteKey {
                table: 254,
                destination: Prefix::new("2001:db8::".parse().unwrap(), 32).unwrap(),
                metric: 100,
            }),
            version(false),
            Some(Value::Route(RouteValue {
                gateway: Some("2001:db8::1".parse().unwrap()),
                output_interface: "eth1".into(),
            })),
        )
        .unwrap();
        let nft = Entry::new(
            Key::NftTable(NftTableKey {
                family: NftFamily::Inet,
                name: "filter".into(),
            }),
            version(false),
            Some(Value::NftTable(NftTableValue {
                ruleset_json: r#"{"nftables":[]}"#.into(),
            })),
        )
        .unwrap();
        let icmp = Entry::new(
            Key::Conntrack(ConntrackKey {
                zone: 0,
                original: Tuple {
                    source: "198.18.0.1".parse().unwrap(),
                    destination: "198.18.0.2".parse().unwrap(),
                    l4: L4::Icmp {
                        protocol: 1,
                        kind: 8,
                        code: 0,
                        id: 77,
                    },
                },
            }),
            version(true),
            None,
        )
        .unwrap();
        for entry in [route, nft, conntrack(), icmp] {
            let wire = entry_to_wire(&entry);
            assert_eq!(entry_from_wire(&wire).unwrap(), entry);
        }
    }

    #[test]
    fn decoding_reports_every_problem_of_an_entry() {
        let mut wire = entry_to_wire(&conntrack());
        let Some(pb::entry::Entry::Conntrack(c)) = wire.entry.as_mut() else {
            unreachable!()
        };
        c.original.as_mut().unwrap().source = vec![1, 2, 3].into();
        c.original.as_mut().unwrap().destination_port = 70_000;
        c.labels = vec![0; 3];
        c.tcp_state = 99;
        let reason = entry_from_wire(&wire).unwrap_err();
        for expected in [
            "malformed address of 3 octets",
            "destination port 70000",
            "labels have 3 octets",
            "unknown TCP state 99",
        ] {
            assert!(
                reason.contains(expected),
                "{expected:?} missing in {reason}"
            );
        }
    }
}
