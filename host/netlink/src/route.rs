//! Unicast routes of a routing table over rtnetlink: dump, add, replace and
//! delete (`RTM_GETROUTE`/`RTM_NEWROUTE`/`RTM_DELROUTE`, `linux/rtnetlink.h`).

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::codec::{
    self, MessageWriter, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE,
    NLM_F_REQUEST,
};
use crate::error::{Error, Result};
use crate::metrics::dump_links;
use crate::netns::{NetNs, NsState};

const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_TABLE: u16 = 15;

const RTN_UNICAST: u8 = 1;
const RTPROT_STATIC: u8 = 4;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RT_SCOPE_NOWHERE: u8 = 255;
const RT_TABLE_UNSPEC: u8 = 0;

/// An address prefix such as `198.18.5.0/24`; `/0` is the default route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpPrefix {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length in bits.
    pub len: u8,
}

impl IpPrefix {
    /// A prefix, checked for length.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `len` exceeds the address width.
    pub fn new(addr: IpAddr, len: u8) -> Result<IpPrefix> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if len > max {
            return Err(Error::InvalidArgument(format!(
                "prefix {addr}/{len} too long"
            )));
        }
        Ok(IpPrefix { addr, len })
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for IpPrefix {
    type Err = Error;

    fn from_str(s: &str) -> Result<IpPrefix> {
        let bad = || Error::InvalidArgument(format!("bad prefix {s:?}"));
        match s.split_once('/') {
            Some((a, l)) => {
                IpPrefix::new(a.parse().map_err(|_| bad())?, l.parse().map_err(|_| bad())?)
            }
            None => {
                let addr: IpAddr = s.parse().map_err(|_| bad())?;
                IpPrefix::new(addr, if addr.is_ipv4() { 32 } else { 128 })
            }
        }
    }
}

/// One unicast route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    /// Routing table id (254 is `main`).
    pub table: u32,
    /// Destination prefix.
    pub destination: IpPrefix,
    /// Next hop, if not directly connected.
    pub gateway: Option<IpAddr>,
    /// Output interface name.
    pub interface: Option<String>,
    /// Metric (`RTA_PRIORITY`); lower wins.
    pub metric: u32,
}

/// Route operations on one namespace; see [`NetNs::routes`].
#[derive(Debug, Clone, Copy)]
pub struct Routes<'a> {
    ns: &'a NetNs,
}

impl NetNs {
    /// Route operations in this namespace.
    pub fn routes(&self) -> Routes<'_> {
        Routes { ns: self }
    }
}

impl Routes<'_> {
    /// The unicast routes (IPv4 and IPv6) of `table`, in kernel order.
    /// Multipath routes are reported without their next hops.
    ///
    /// # Errors
    /// [`Error::Socket`]/[`Error::Kernel`] if the dump fails.
    pub fn dump(&self, table: u32) -> Result<Vec<Route>> {
        self.ns.with_state(move |state| {
            let names: HashMap<u32, String> = dump_links(state)?
                .into_iter()
                .map(|l| (l.index, l.stats.name))
                .collect();
            let sock = state.route()?;
            let seq = sock.next_seqs(1);
            let mut req = Vec::new();
            let mut m =
                MessageWriter::begin(&mut req, RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq);
            m.put(&rtmsg(libc::AF_UNSPEC as u8, 0, 0, 0, 0, 0));
            m.finish();
            let mut routes = Vec::new();
            sock.dump(&req, seq, "dump", |msg| {
                let p = msg.payload;
                if p.len() < 12 || p[7] != RTN_UNICAST {
                    return Ok(());
                }
                let (family, dst_len) = (p[0], p[1]);
                let mut route_table = u32::from(p[4]);
                let mut dst = None;
                let mut gateway = None;
                let mut oif = None;
                let mut metric = 0;
                for (ty, d) in codec::attrs(&p[12..]) {
                    match ty {
                        RTA_DST => dst = Some(addr(d)?),
                        RTA_GATEWAY => gateway = Some(addr(d)?),
                        RTA_OIF => oif = Some(codec::ne32(d)?),
                        RTA_PRIORITY => metric = codec::ne32(d)?,
                        RTA_TABLE => route_table = codec::ne32(d)?,
                        _ => {}
                    }
                }
                if route_table != table {
                    return Ok(());
                }
                let addr = match (dst, i32::from(family)) {
                    (Some(a), _) => a,
                    (None, libc::AF_INET) => IpAddr::from([0u8; 4]),
                    (None, libc::AF_INET6) => IpAddr::from([0u8; 16]),
                    _ => return Ok(()),
                };
                routes.push(Route {
                    table: route_table,
                    destination: IpPrefix::new(addr, dst_len)?,
                    gateway,
                    interface: oif.map(|i| names.get(&i).cloned().unwrap_or_else(|| i.to_string())),
                    metric,
                });
                Ok(())
            })?;
            Ok(routes)
        })
    }

    /// Adds a route; fails if one with the same key exists.
    ///
    /// # Errors
    /// [`Error::Kernel`] (`EEXIST`, `ENETUNREACH` for an unreachable
    /// gateway, ...); [`Error::InvalidArgument`] for an unknown interface or
    /// mixed families.
    pub fn add(&self, route: &Route) -> Result<()> {
        self.send(route, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, "add")
    }

    /// Adds a route or replaces the one with the same destination, table and
    /// metric.
    ///
    /// # Errors
    /// As [`Routes::add`], without `EEXIST`.
    pub fn replace(&self, route: &Route) -> Result<()> {
        self.send(route, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, "replace")
    }

    /// Deletes the route matching `route` (destination, table, and gateway,
    /// interface and metric where given).
    ///
    /// # Errors
    /// [`Error::Kernel`] with `ESRCH` if no route matches.
    pub fn delete(&self, route: &Route) -> Result<()> {
        self.send(route, RTM_DELROUTE, 0, "delete")
    }

    fn send(&self, route: &Route, ty: u16, flags: u16, op: &'static str) -> Result<()> {
        let family = match route.destination.addr {
            IpAddr::V4(_) => libc::AF_INET as u8,
            IpAddr::V6(_) => libc::AF_INET6 as u8,
        };
        if let Some(gw) = route.gateway
            && gw.is_ipv4() != route.destination.addr.is_ipv4()
        {
            return Err(Error::InvalidArgument(format!(
                "gateway {gw} and destination {} differ in family",
                route.destination
            )));
        }
        let route = route.clone();
        self.ns.with_state(move |state: &mut NsState| {
            let oif = match &route.interface {
                Some(name) => Some(
                    dump_links(state)?
                        .into_iter()
                        .find(|l| &l.stats.name == name)
                        .map(|l| l.index)
                        .ok_or_else(|| {
                            Error::InvalidArgument(format!("no interface named {name}"))
                        })?,
                ),
                None => None,
            };
            let sock = state.route()?;
            let seq = sock.next_seqs(1);
            let (scope, proto, rtype) = if ty == RTM_DELROUTE {
                (RT_SCOPE_NOWHERE, 0, 0)
            } else if route.gateway.is_some() {
                (RT_SCOPE_UNIVERSE, RTPROT_STATIC, RTN_UNICAST)
            } else {
                (RT_SCOPE_LINK, RTPROT_STATIC, RTN_UNICAST)
            };
            let small_table = u8::try_from(route.table).unwrap_or(RT_TABLE_UNSPEC);
            let mut buf = Vec::new();
            let mut m = MessageWriter::begin(&mut buf, ty, NLM_F_REQUEST | NLM_F_ACK | flags, seq);
            m.put(&rtmsg(
                family,
                route.destination.len,
                small_table,
                proto,
                scope,
                rtype,
            ));
            if route.destination.len > 0 {
                m.attr(RTA_DST, &octets(route.destination.addr));
            }
            if let Some(gw) = route.gateway {
                m.attr(RTA_GATEWAY, &octets(gw));
            }
            if let Some(oif) = oif {
                m.attr_ne32(RTA_OIF, oif);
            }
            m.attr_ne32(RTA_PRIORITY, route.metric);
            m.attr_ne32(RTA_TABLE, route.table);
            m.finish();
            sock.request(&buf, seq, op)
        })
    }
}

/// `struct rtmsg`: family, dst_len, src_len, tos, table, protocol, scope,
/// type, flags (u32).
fn rtmsg(family: u8, dst_len: u8, table: u8, protocol: u8, scope: u8, rtype: u8) -> [u8; 12] {
    [
        family, dst_len, 0, 0, table, protocol, scope, rtype, 0, 0, 0, 0,
    ]
}

fn octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn addr(d: &[u8]) -> Result<IpAddr> {
    match d.len() {
        4 => Ok(IpAddr::from(codec::fixed::<4>(d)?)),
        16 => Ok(IpAddr::from(codec::fixed::<16>(d)?)),
        n => Err(Error::Malformed(format!("address of {n} bytes"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse_and_print() {
        let p: IpPrefix = "198.18.5.0/24".parse().unwrap();
        assert_eq!(p.to_string(), "198.18.5.0/24");
        assert_eq!("198.18.5.1".parse::<IpPrefix>().unwrap().len, 32);
        assert!("198.18.5.0/33".parse::<IpPrefix>().is_err());
        assert!("nonsense".parse::<IpPrefix>().is_err());
    }
}
