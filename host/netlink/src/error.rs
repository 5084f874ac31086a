//! The crate's one error type and its `Result` alias.

use std::io;
use std::path::PathBuf;

use nix::errno::Errno;

/// Result of every fallible operation in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which kernel facility rejected a request; selects the errno explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facility {
    /// ctnetlink (`NFNL_SUBSYS_CTNETLINK`).
    Conntrack,
    /// rtnetlink routes.
    Route,
    /// rtnetlink links.
    Link,
}

/// Everything that can go wrong talking to a namespace's kernel state.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The namespace could not be opened or entered (no such `/run/netns`
    /// entry, or no `CAP_SYS_ADMIN`). The caller or the environment is at fault.
    #[error("cannot enter network namespace {path}: {source}")]
    Namespace {
        /// The namespace file that was opened.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A netlink socket could not be opened, sent on or read from. The
    /// environment is at fault (permissions, resource limits).
    #[error("netlink socket: {op}: {source}")]
    Socket {
        /// What was being done.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The kernel refused one request; `explanation` says what the errno
    /// means for this facility. Usually the request did not fit the kernel's
    /// current state (exists / does not exist) or the kernel lacks a feature.
    #[error("kernel rejected {facility:?} {op}: {errno}: {explanation}")]
    Kernel {
        /// Which netlink facility answered.
        facility: Facility,
        /// The request kind, e.g. `"create"`.
        op: &'static str,
        /// The errno the kernel returned.
        errno: Errno,
        /// What this errno means for this facility.
        explanation: &'static str,
    },
    /// The kernel sent something this crate cannot decode. A bug here or an
    /// unexpected kernel.
    #[error("malformed netlink message: {0}")]
    Malformed(String),
    /// An argument was invalid (mixed address families, unknown interface,
    /// bad prefix). The caller is at fault.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The namespace's worker thread is gone (it panicked). A bug here.
    #[error("namespace worker thread has stopped")]
    WorkerGone,
    /// A conntrack event stream's reader stopped (socket error); the caller
    /// should resubscribe and resync with a dump.
    #[error("conntrack event stream closed")]
    EventStreamClosed,
    /// An external command (`nft`) failed or could not be run.
    #[error("{command}: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// Exit status and stderr, or the spawn error.
        detail: String,
    },
    /// nft JSON could not be parsed or had an unexpected shape.
    #[error("nft JSON: {0}")]
    Json(String),
    /// A metrics file could not be read or parsed.
    #[error("reading {path}: {detail}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}

impl Error {
    /// The kernel errno if this is a [`Error::Kernel`].
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    pub(crate) fn kernel(facility: Facility, op: &'static str, errno: i32) -> Error {
        let errno = Errno::from_raw(errno);
        Error::Kernel {
            facility,
            op,
            errno,
            explanation: explain(facility, errno),
        }
    }

    pub(crate) fn socket(op: &'static str, source: io::Error) -> Error {
        Error::Socket { op, source }
    }
}

/// What an errno means coming from a given facility, from the kernel sources
/// (`net/netfilter/nf_conntrack_netlink.c`, `net/ipv4/fib_*.c`).
pub(crate) fn explain(facility: Facility, errno: Errno) -> &'static str {
    match (facility, errno) {
        (Facility::Conntrack, Errno::EEXIST) => {
            "an entry with this tuple already exists (NLM_F_EXCL create)"
        }
        (Facility::Conntrack, Errno::ENOENT) => {
            "no entry with this tuple (update or delete of a missing entry)"
        }
        (Facility::Conntrack, Errno::EBUSY) => {
            "status change not allowed: EXPECTED/CONFIRMED/DYING cannot change and SEEN_REPLY/ASSURED cannot be cleared"
        }
        (Facility::Conntrack, Errno::EINVAL) => {
            "malformed or inconsistent attributes (missing tuple or timeout, mismatched families, TCP state out of range)"
        }
        (Facility::Conntrack, Errno::ENOMEM) => {
            "conntrack table full (nf_conntrack_max reached) or out of memory"
        }
        (Facility::Conntrack, Errno::ENOSPC) => {
            "connlabels are not enabled in this namespace (no rule uses ct label), or too many labels"
        }
        (Facility::Conntrack, Errno::EOPNOTSUPP) => {
            "operation not supported (NAT or helper change on an existing entry, or module missing)"
        }
        (Facility::Conntrack, Errno::EAFNOSUPPORT) => {
            "address family not supported by conntrack (nf_conntrack_ipv4/6 missing)"
        }
        (Facility::Conntrack, Errno::ETIME) => "the entry expired while being changed",
        (_, Errno::EPERM) => "CAP_NET_ADMIN is required in the namespace's owning user namespace",
        (Facility::Route, Errno::EEXIST) => "the route already exists (add without replace)",
        (Facility::Route, Errno::ESRCH) => "no such route (delete of a missing route)",
        (Facility::Route, Errno::ENETUNREACH) => {
            "the gateway is not reachable through any connected route"
        }
        (Facility::Route, Errno::ENODEV) => "the output interface does not exist or is down",
        (Facility::Route, Errno::EINVAL) => "invalid route (bad prefix, table or attribute)",
        (Facility::Link, Errno::ENODEV) => "no such interface",
        _ => "unexpected errno for this request",
    }
}
