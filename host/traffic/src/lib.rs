//! The lab's traffic generator and measurements: 1 kHz UDP probes with sequence numbers, long-lived TCP sessions, HTTP requests.

#![forbid(unsafe_code)]
