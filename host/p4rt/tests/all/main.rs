//! Integration tests of the P4Runtime client against Umbra's software
//! switch served in-process on 127.0.0.1, through the public API only.

mod arbitration;
mod connect;
mod entries;
mod packet_io;
mod pipeline;
mod restart;
mod support;
mod tls;
