//! Creating sockets inside a network namespace.
//!
//! A socket belongs to the namespace of the thread that created it, for its
//! whole life, whichever thread uses it later. So components create their
//! sockets through [`in_namespace`] and then hand them to ordinary threads;
//! no long-lived thread ever changes namespace.

use crate::{Result, TrafficError};

/// Runs `make` in network namespace `netns` (`/run/netns/NAME`), or on the
/// calling thread when `netns` is `None`, and returns what it made.
///
/// # Errors
/// [`TrafficError::Namespace`] if the namespace cannot be entered; otherwise
/// whatever `make` returns.
pub fn in_namespace<T: Send>(
    netns: Option<&str>,
    make: impl FnOnce() -> Result<T> + Send,
) -> Result<T> {
    match netns {
        None => make(),
        Some(namespace) => umbra_switch::dataplane::veth_lab::VethLab::run_in(namespace, make)
            .map_err(|source| TrafficError::Namespace {
                namespace: namespace.to_owned(),
                source,
            })?,
    }
}
