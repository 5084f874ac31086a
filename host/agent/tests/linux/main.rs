//! Tests of the Linux backend against real kernels: namespaces, veths,
//! nftables firewalls and conntrack, checked with the Linux CLIs
//! (`conntrack`, `ip`, `nft`). They need root, as CI has.

mod faults;
mod firewall;
mod lab;
