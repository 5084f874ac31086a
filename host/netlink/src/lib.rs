//! The Linux state of a device — conntrack, routes, nftables and metrics — read
//! and written over netlink inside a chosen network namespace.
//!
//! Every operation goes through a [`NetNs`] handle. The handle owns one
//! dedicated thread that has `setns(2)`-ed into the target namespace; every
//! netlink socket is created and used on that thread (and `nft` is spawned from
//! it), so the namespace of the caller's threads never changes.
//!
//! ```no_run
//! use umbra_netlink::{NetNs, NsTarget};
//! # fn main() -> umbra_netlink::Result<()> {
//! let primary = NetNs::open(NsTarget::Named("primary".into()))?;
//! let shadow = NetNs::open(NsTarget::Named("shadow".into()))?;
//! let entries = primary.conntrack().dump()?;
//! let outcome = shadow.conntrack().create_batch(&entries)?;
//! assert!(outcome.failures.is_empty());
//! # Ok(())
//! # }
//! ```
//!
//! `unsafe` is not needed: sockets come from `netlink-sys` and `setns` from
//! `nix`; the ctnetlink and rtnetlink messages are encoded by this crate's
//! own small codec from the kernel's uapi numbers (`netlink-packet-netfilter`
//! has no ctnetlink attributes), and nftables goes through the `nft` CLI.

#![forbid(unsafe_code)]

mod codec;
pub mod conntrack;
mod error;
pub mod metrics;
mod netns;
pub mod nftables;
pub mod route;
mod socket;

pub use conntrack::{
    Applied, BatchOutcome, Conntrack, ConntrackEntry, ConntrackEvent, ConntrackEvents,
    ConntrackTuple, L4Tuple, TcpInfo, TcpState, tcp_flag,
};
pub use error::{Error, Facility, Result};
pub use metrics::{CgroupStats, InterfaceStats, NamespaceMetrics};
pub use netns::{ConntrackWriter, NetNs, NsTarget};
pub use nftables::Nftables;
pub use nix::errno::Errno;
pub use route::{IpPrefix, Route, Routes};
