//! Operations: the management API (umbra.management.v1) and its clients, Prometheus metrics, the JSON-lines audit log.

#![forbid(unsafe_code)]
