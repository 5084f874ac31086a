//! Umbra's P4Runtime client: the only component of the host that talks to
//! switches.
//!
//! It connects to a switch (plaintext or TLS), arbitrates for mastership,
//! pushes the pipeline (skipped when the switch's cookie already matches),
//! writes and reads entities built **by name** through the P4Info (no
//! P4Runtime id appears in host code), carries packet-in and packet-out, and
//! survives switch restarts: its [`StreamSupervisor`] reconnects, pushes the
//! pipeline again and reconciles the switch to the [`DesiredState`] the
//! owner declared — every successful write through the client is part of it.
//!
//! ```no_run
//! # async fn f(p4info: umbra_proto::p4::config::v1::P4Info) -> umbra_p4rt::Result<()> {
//! use tokio_util::{sync::CancellationToken, task::TaskTracker};
//! use umbra_p4rt::{ClientConfig, Connection, P4RuntimeClient};
//!
//! let Connection { client, supervisor, mut events } =
//!     P4RuntimeClient::connect(ClientConfig::new("127.0.0.1:9559")).await?;
//! let (tracker, shutdown) = (TaskTracker::new(), CancellationToken::new());
//! tracker.spawn(supervisor.run(shutdown.clone()));
//! client.push_pipeline(p4info, Vec::new(), 0x0b5e55ed).await?;
//! let entry = client
//!     .schema()?
//!     .table("UmbraIngress.service_selector")
//!     .exact("service_id", 1u16)
//!     .action("UmbraIngress.set_active_device")
//!     .param("device", 1u8)
//!     .build()?;
//! client.insert(entry).await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod backoff;
mod builder;
mod client;
mod config;
mod entity;
mod error;
mod event;
mod reconcile;
mod schema;
mod supervisor;
mod value;
mod wire;

#[cfg(test)]
mod testing;

pub use builder::{DefaultActionBuilder, PacketOutBuilder, TableEntryBuilder};
pub use client::{Connection, P4RuntimeClient, PipelineOutcome};
pub use config::{BackoffConfig, ClientConfig, TlsConfig};
pub use entity::{
    ActionCall, CloneSession, CloneSessionBuilder, CounterData, DefaultAction, EntryKey,
    FieldMatch, PacketIn, PacketOut, Replica, TableEntry,
};
pub use error::{EntityProblem, P4rtError, Result, UpdateStatus, WriteError};
pub use event::{ClientEvent, StreamError, StreamErrorKind, SyncReport};
pub use reconcile::{DesiredState, ReconcileReport};
pub use schema::{MatchKind, ObjectKind, P4Schema};
pub use supervisor::StreamSupervisor;
pub use value::{MacAddr, ParseMacError, Value};
pub use wire::{Atomicity, Update};
