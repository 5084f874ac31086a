//! Replication between in-process device agents over loopback gRPC:
//! convergence under churn, resuming after restarts without loss or
//! duplicates, resnapshots, bidirectional conflicts without echo,
//! anti-entropy repairs, and drain before failover.

mod anti_entropy;
mod bidirectional;
mod drain;
mod state;
mod stream;
mod support;
mod tls;
