//! Integration tests: real namespaces, veth pairs and kernel state, checked
//! against the Linux CLIs (`conntrack`, `ip`, `nft`). They need root, as CI has.

mod cli;
mod conntrack;
mod lab;
mod metrics;
mod netns;
mod nftables;
mod route;
