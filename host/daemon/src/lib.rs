//! umbra run: the host daemon tying P4Runtime, replication, health checks, prediction, policies and the failover orchestrator together.

#![forbid(unsafe_code)]
