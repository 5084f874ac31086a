//! umbra-traffic's integration tests, one binary: the generators measured
//! through in-test relays and proxies on loopback that inject exactly known
//! faults, and the whole `Traffic` across two network namespaces (root).

mod http;
mod namespaces;
mod probes;
mod sessions;
mod support;
