//! The P4Runtime client: connection and arbitration, pipeline push, writes
//! (which also update the desired state), reads decoded to names, packet-out,
//! and reconciliation.
//!
//! The stream side (packet-ins, mastership changes, reconnection) is the
//! [`StreamSupervisor`](crate::StreamSupervisor)'s; both share the state
//! here.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use prost::Message as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use umbra_proto::google::rpc;
use umbra_proto::p4::config::v1::P4Info;
use umbra_proto::p4::v1 as p4;
use umbra_proto::p4::v1::p4_runtime_client::P4RuntimeClient as Grpc;

use crate::config::ClientConfig;
use crate::entity::{CloneSession, CounterData, DefaultAction, EntryKey, PacketOut, TableEntry};
use crate::error::{EntityProblem, P4rtError, Result, UpdateStatus, WriteError};
use crate::event::{ClientEvent, SyncReport};
use crate::reconcile::{self, DesiredState, Installed, ReconcileReport};
use crate::schema::{P4Schema, invalid};
use crate::supervisor::StreamSupervisor;
use crate::wire::{self, Atomicity, DecodedEntry, Update};

/// What [`P4RuntimeClient::connect`] hands over.
#[derive(Debug)]
pub struct Connection {
    /// The client, cheap to clone and share.
    pub client: P4RuntimeClient,
    /// The stream's supervisor: spawn its
    /// [`run`](StreamSupervisor::run) into the owner's task tracker. Without
    /// it no event arrives and the client does not survive a switch
    /// restart.
    pub supervisor: StreamSupervisor,
    /// The client's events; see [`ClientEvent`] for what happens when the
    /// owner does not keep up.
    pub events: mpsc::Receiver<ClientEvent>,
}

/// Whether [`P4RuntimeClient::push_pipeline`] had to push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineOutcome {
    /// The switch had another cookie (or no pipeline): the pipeline was
    /// pushed with VERIFY_AND_COMMIT, which empties every table.
    Pushed,
    /// The switch already runs a pipeline with this cookie: nothing was
    /// sent, and its tables are untouched.
    Skipped,
}

/// The pipeline this client pushed, kept to push it again after a switch
/// restart and to resolve names.
#[derive(Debug)]
pub(crate) struct Pipeline {
    pub schema: Arc<P4Schema>,
    pub device_config: Vec<u8>,
    pub cookie: u64,
}

/// A P4Runtime client of one switch (one device id, one role, one election
/// id). Clones share the connection, the pipeline and the desired state.
#[derive(Debug, Clone)]
pub struct P4RuntimeClient {
    pub(crate) shared: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub config: ClientConfig,
    endpoint: Endpoint,
    /// Synchronous mutexes: no `.await` ever happens under them.
    link: Mutex<Link>,
    pipeline: Mutex<Option<Arc<Pipeline>>>,
    desired: Mutex<DesiredState>,
    /// Whether the owner has said anything about the desired state (a
    /// declaration, or a write through this client that the switch
    /// applied). Until then, becoming primary adopts what the switch holds
    /// (anew each time) instead of reconciling it towards an empty state: a
    /// backup host taking over must not wipe the switch its predecessor
    /// programmed.
    declared: std::sync::atomic::AtomicBool,
    /// Serialises writes, pipeline pushes and reconciliations, so that a
    /// reconciliation never interleaves with a write it would undo. Async:
    /// held across RPCs.
    ops: tokio::sync::Mutex<()>,
    events: mpsc::Sender<ClientEvent>,
    dropped_events: AtomicU64,
}

#[derive(Debug)]
struct Link {
    grpc: Grpc<Channel>,
    /// Towards the switch on the StreamChannel; `None` while disconnected.
    outbound: Option<mpsc::Sender<p4::StreamMessageRequest>>,
    connected: bool,
    shut_down: bool,
    primary: bool,
    primary_election_id: Option<u128>,
    /// The switch said no controller is primary (the last primary left).
    vacant: bool,
    /// This client's election id (the configured one until
    /// [`P4RuntimeClient::rearbitrate`]).
    election_id: u128,
}

/// A fresh connection, arbitrated.
pub(crate) struct Established {
    grpc: Grpc<Channel>,
    outbound: mpsc::Sender<p4::StreamMessageRequest>,
    pub inbound: tonic::Streaming<p4::StreamMessageResponse>,
    pub primary: bool,
    pub election_id: Option<u128>,
    pub vacant: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic under one of these locks cannot leave the data half-updated
    // (every critical section is a few assignments), so poisoning is moot.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn to_uint128(id: u128) -> p4::Uint128 {
    p4::Uint128 {
        high: (id >> 64) as u64,
        low: id as u64,
    }
}

pub(crate) fn from_uint128(id: &p4::Uint128) -> u128 {
    (u128::from(id.high) << 64) | u128::from(id.low)
}

fn endpoint(config: &ClientConfig) -> Result<Endpoint> {
    let uri = config.uri();
    let mut endpoint = Endpoint::from_shared(uri.clone())
        .map_err(|e| P4rtError::Config {
            problems: vec![format!(
                "address {:?} is not a valid URI: {e}",
                config.address
            )],
        })?
        .connect_timeout(config.connect_timeout)
        .tcp_nodelay(true)
        // Notices a switch that vanished without closing the connection.
        .http2_keep_alive_interval(std::time::Duration::from_secs(10))
        .keep_alive_timeout(std::time::Duration::from_secs(10))
        .keep_alive_while_idle(true);
    if let Some(tls) = &config.tls {
        let mut tls_config =
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&tls.ca_certificate_pem));
        if let (Some(cert), Some(key)) = (&tls.client_certificate_pem, &tls.client_key_pem) {
            tls_config = tls_config.identity(Identity::from_pem(cert, key));
        }
        if let Some(domain) = &tls.domain_name {
            tls_config = tls_config.domain_name(domain.clone());
        }
        endpoint = endpoint
            .tls_config(tls_config)
            .map_err(|source| P4rtError::Tls {
                address: config.address.clone(),
                source,
            })?;
    }
    Ok(endpoint)
}

/// The arbitration request of `config`'s device and role with `election_id`.
fn arbitration_request(config: &ClientConfig, election_id: u128) -> p4::StreamMessageRequest {
    p4::StreamMessageRequest {
        update: Some(p4::stream_message_request::Update::Arbitration(
            p4::MasterArbitrationUpdate {
                device_id: config.device_id,
                role: (!config.role.is_empty()).then(|| p4::Role {
                    name: config.role.clone(),
                    ..p4::Role::default()
                }),
                election_id: Some(to_uint128(election_id)),
                status: None,
            },
        )),
    }
}

/// Connects, opens the StreamChannel, arbitrates and waits for the answer.
pub(crate) async fn establish(
    config: &ClientConfig,
    endpoint: &Endpoint,
    election_id: u128,
) -> Result<Established> {
    let channel = tokio::time::timeout(config.connect_timeout, endpoint.connect())
        .await
        .map_err(|_| P4rtError::Timeout {
            what: "connecting",
            after: config.connect_timeout,
        })?
        .map_err(|source| P4rtError::Connect {
            address: config.address.clone(),
            source,
        })?;
    let grpc = Grpc::new(channel)
        .max_decoding_message_size(config.max_message_bytes)
        .max_encoding_message_size(config.max_message_bytes);

    let (outbound, outbound_rx) = mpsc::channel(config.outbound_capacity);
    let arbitration = arbitration_request(config, election_id);
    // The channel is new and empty: this cannot wait.
    outbound
        .send(arbitration)
        .await
        .map_err(|_| P4rtError::ArbitrationUnanswered)?;

    let mut stream_grpc = grpc.clone();
    let answer = async move {
        let mut inbound = stream_grpc
            .stream_channel(ReceiverStream::new(outbound_rx))
            .await
            .map_err(|status| {
                // A status the transport made up (TLS refused, connection
                // lost) is not the switch refusing arbitration.
                if crate::error::is_transport(&status) {
                    P4rtError::Rpc {
                        rpc: "StreamChannel",
                        status,
                    }
                } else {
                    P4rtError::Arbitration(status)
                }
            })?
            .into_inner();
        loop {
            match inbound.message().await {
                Ok(Some(p4::StreamMessageResponse {
                    update: Some(p4::stream_message_response::Update::Arbitration(update)),
                })) => return Ok((inbound, update)),
                // Nothing but arbitration is meant for a controller that
                // has not arbitrated yet.
                Ok(Some(other)) => tracing::debug!(?other, "stream message before arbitration"),
                Ok(None) => return Err(P4rtError::ArbitrationUnanswered),
                Err(status) => return Err(P4rtError::Arbitration(status)),
            }
        }
    };
    let (inbound, update) = tokio::time::timeout(config.arbitration_timeout, answer)
        .await
        .map_err(|_| P4rtError::Timeout {
            what: "arbitration",
            after: config.arbitration_timeout,
        })??;
    let (primary, primary_election_id, vacant) = arbitration_state(&update);
    tracing::info!(
        address = %config.address,
        device_id = config.device_id,
        election_id,
        primary,
        "P4Runtime stream arbitrated"
    );
    Ok(Established {
        grpc,
        outbound,
        inbound,
        primary,
        election_id: primary_election_id,
        vacant,
    })
}

/// Whether an arbitration update makes the receiver primary (status OK, per
/// spec), the election id it reports, and whether no controller is primary
/// (status NOT_FOUND).
pub(crate) fn arbitration_state(
    update: &p4::MasterArbitrationUpdate,
) -> (bool, Option<u128>, bool) {
    let code = update.status.as_ref().map(|s| s.code);
    (
        code == Some(tonic::Code::Ok as i32),
        update.election_id.as_ref().map(from_uint128),
        code == Some(tonic::Code::NotFound as i32),
    )
}

impl P4RuntimeClient {
    /// Connects to the switch, opens the StreamChannel, sends the
    /// arbitration request (device id, role, election id) and waits for the
    /// switch's answer, which says whether this client is the primary.
    ///
    /// # Errors
    ///
    /// [`P4rtError::Config`] or [`P4rtError::Tls`] for a bad
    /// configuration; [`P4rtError::Connect`] or [`P4rtError::Timeout`] when
    /// the switch cannot be reached or does not answer;
    /// [`P4rtError::Arbitration`] when it refuses the arbitration.
    pub async fn connect(config: ClientConfig) -> Result<Connection> {
        config.validate()?;
        let endpoint = endpoint(&config)?;
        let established = establish(&config, &endpoint, config.election_id).await?;
        let (events, events_rx) = mpsc::channel(config.event_capacity);
        let shared = Arc::new(Shared {
            endpoint,
            link: Mutex::new(Link {
                grpc: established.grpc,
                outbound: Some(established.outbound),
                connected: true,
                shut_down: false,
                primary: established.primary,
                primary_election_id: established.election_id,
                vacant: established.vacant,
                election_id: config.election_id,
            }),
            pipeline: Mutex::new(None),
            desired: Mutex::new(DesiredState::new()),
            declared: std::sync::atomic::AtomicBool::new(false),
            ops: tokio::sync::Mutex::new(()),
            events,
            dropped_events: AtomicU64::new(0),
            config,
        });
        let client = Self { shared };
        Ok(Connection {
            supervisor: StreamSupervisor::new(client.clone(), established.inbound),
            client,
            events: events_rx,
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &ClientConfig {
        &self.shared.config
    }

    /// Whether the switch last said this client is the primary.
    #[must_use]
    pub fn is_primary(&self) -> bool {
        let link = lock(&self.shared.link);
        link.connected && link.primary
    }

    /// The primary's election id as the switch last reported it.
    #[must_use]
    pub fn primary_election_id(&self) -> Option<u128> {
        lock(&self.shared.link).primary_election_id
    }

    /// Whether the stream to the switch is up.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        lock(&self.shared.link).connected
    }

    /// Events dropped because the event channel was full.
    #[must_use]
    pub fn dropped_events(&self) -> u64 {
        self.shared.dropped_events.load(Ordering::Relaxed)
    }

    /// The schema of the pushed pipeline, to build entities with.
    ///
    /// # Errors
    ///
    /// [`P4rtError::NoPipeline`] before [`push_pipeline`](Self::push_pipeline).
    pub fn schema(&self) -> Result<Arc<P4Schema>> {
        Ok(Arc::clone(&self.pipeline()?.schema))
    }

    pub(crate) fn pipeline(&self) -> Result<Arc<Pipeline>> {
        lock(&self.shared.pipeline)
            .clone()
            .ok_or(P4rtError::NoPipeline)
    }

    pub(crate) fn current_schema(&self) -> Option<Arc<P4Schema>> {
        lock(&self.shared.pipeline)
            .as_ref()
            .map(|p| Arc::clone(&p.schema))
    }

    fn grpc(&self) -> Result<Grpc<Channel>> {
        let link = lock(&self.shared.link);
        if link.shut_down {
            return Err(P4rtError::Shutdown);
        }
        if !link.connected {
            return Err(P4rtError::Disconnected);
        }
        Ok(link.grpc.clone())
    }

    async fn call<T>(
        &self,
        rpc: &'static str,
        future: impl Future<Output = std::result::Result<T, tonic::Status>>,
    ) -> Result<T> {
        let after = self.shared.config.rpc_timeout;
        tokio::time::timeout(after, future)
            .await
            .map_err(|_| P4rtError::Timeout { what: rpc, after })?
            .map_err(|status| rpc_error(rpc, status))
    }

    fn election_id(&self) -> Option<p4::Uint128> {
        Some(to_uint128(self.current_election_id()))
    }

    /// This client's election id: the configured one, or the one of the
    /// last [`Self::rearbitrate`].
    #[must_use]
    pub fn current_election_id(&self) -> u128 {
        lock(&self.shared.link).election_id
    }

    /// Whether the switch last said that no controller is primary (the
    /// primary went away and nobody has arbitrated as high since).
    #[must_use]
    pub fn primary_vacant(&self) -> bool {
        lock(&self.shared.link).vacant
    }

    /// Arbitrates again with `election_id` (a backup taking over a switch
    /// whose primary is gone sends one at least as high as the highest the
    /// switch has seen). The answer arrives on the stream as a
    /// [`ClientEvent::MastershipChanged`]; writes carry the new id from
    /// now on, and so does every reconnection.
    ///
    /// # Errors
    /// [`P4rtError::Disconnected`] when there is no stream (the id is kept
    /// and used when the supervisor reconnects).
    pub async fn rearbitrate(&self, election_id: u128) -> Result<()> {
        let outbound = {
            let mut link = lock(&self.shared.link);
            link.election_id = election_id;
            link.outbound.clone()
        };
        let request = arbitration_request(&self.shared.config, election_id);
        tracing::info!(election_id, "P4Runtime: arbitrating again");
        match outbound {
            Some(outbound) => outbound
                .send(request)
                .await
                .map_err(|_| P4rtError::Disconnected),
            None => Err(P4rtError::Disconnected),
        }
    }

    // ------------------------------------------------------------ pipeline

    /// Makes the switch run `p4info` and `device_config` under `cookie`:
    /// asks for the switch's cookie first (COOKIE_ONLY) and skips the push
    /// when it matches, else pushes with VERIFY_AND_COMMIT (which empties
    /// the tables: call [`reconcile`](Self::reconcile) to install the
    /// desired state again). Either way the pipeline becomes the client's
    /// (also when a backup is refused the push): names resolve through
    /// `p4info`, and after a switch restart, or on becoming primary, it is
    /// pushed again if the switch's differs.
    ///
    /// # Errors
    ///
    /// [`P4rtError::P4Info`] when `p4info` is inconsistent;
    /// [`P4rtError::NotPrimary`] when this client may not push;
    /// [`P4rtError::Rpc`] when the switch refuses the pipeline;
    /// [`P4rtError::Disconnected`], [`P4rtError::Timeout`].
    pub async fn push_pipeline(
        &self,
        p4info: P4Info,
        device_config: Vec<u8>,
        cookie: u64,
    ) -> Result<PipelineOutcome> {
        let pipeline = Arc::new(Pipeline {
            schema: Arc::new(P4Schema::new(p4info)?),
            device_config,
            cookie,
        });
        let _ops = self.shared.ops.lock().await;
        let outcome = self.ensure_pipeline(&pipeline).await;
        // A backup may not push, but reads with these names and pushes
        // them if it becomes primary.
        if matches!(outcome, Ok(_) | Err(P4rtError::NotPrimary(_))) {
            *lock(&self.shared.pipeline) = Some(pipeline);
        }
        outcome
    }

    /// The switch's pipeline cookie, `None` when it has no pipeline.
    ///
    /// # Errors
    ///
    /// [`P4rtError::Rpc`], [`P4rtError::Disconnected`],
    /// [`P4rtError::Timeout`].
    pub async fn pipeline_cookie(&self) -> Result<Option<u64>> {
        let mut grpc = self.grpc()?;
        let request = p4::GetForwardingPipelineConfigRequest {
            device_id: self.shared.config.device_id,
            response_type: p4::get_forwarding_pipeline_config_request::ResponseType::CookieOnly
                .into(),
        };
        match self
            .call(
                "GetForwardingPipelineConfig",
                grpc.get_forwarding_pipeline_config(request),
            )
            .await
        {
            Ok(response) => Ok(response
                .into_inner()
                .config
                .and_then(|c| c.cookie)
                .map(|c| c.cookie)),
            // Servers answer a request for a pipeline they do not have
            // either with an empty config or with one of these.
            Err(P4rtError::Rpc { status, .. })
                if matches!(
                    status.code(),
                    tonic::Code::FailedPrecondition | tonic::Code::NotFound
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn ensure_pipeline(&self, pipeline: &Pipeline) -> Result<PipelineOutcome> {
        if self.pipeline_cookie().await? == Some(pipeline.cookie) {
            tracing::debug!(cookie = pipeline.cookie, "pipeline already installed");
            return Ok(PipelineOutcome::Skipped);
        }
        let mut grpc = self.grpc()?;
        let request = p4::SetForwardingPipelineConfigRequest {
            device_id: self.shared.config.device_id,
            role: self.shared.config.role.clone(),
            election_id: self.election_id(),
            action: p4::set_forwarding_pipeline_config_request::Action::VerifyAndCommit.into(),
            config: Some(p4::ForwardingPipelineConfig {
                p4info: Some(pipeline.schema.p4info().clone()),
                p4_device_config: pipeline.device_config.clone(),
                cookie: Some(p4::forwarding_pipeline_config::Cookie {
                    cookie: pipeline.cookie,
                }),
            }),
            ..p4::SetForwardingPipelineConfigRequest::default()
        };
        self.call(
            "SetForwardingPipelineConfig",
            grpc.set_forwarding_pipeline_config(request),
        )
        .await?;
        tracing::info!(cookie = pipeline.cookie, "pipeline pushed");
        Ok(PipelineOutcome::Pushed)
    }

    // -------------------------------------------------------------- writes

    /// Writes `updates` with `atomicity`, in requests of at most
    /// `max_updates_per_write` updates (atomicity holds per request), and
    /// records every applied update in the desired state so that a switch
    /// restart restores it. A delete the switch answers NOT_FOUND is
    /// recorded too (what it asked for, absence, holds).
    ///
    /// # Errors
    ///
    /// [`P4rtError::Write`] with the per-update statuses when the switch
    /// refuses some updates (under `ContinueOnError` the others are applied
    /// and recorded); [`P4rtError::NotPrimary`] when this client is not the
    /// primary; [`P4rtError::InvalidEntity`] when an entity does not encode
    /// with the pipeline's P4Info (nothing is sent);
    /// [`P4rtError::NoPipeline`], [`P4rtError::Disconnected`],
    /// [`P4rtError::Timeout`], [`P4rtError::Rpc`].
    pub async fn write(&self, updates: Vec<Update>, atomicity: Atomicity) -> Result<()> {
        let schema = self.schema()?;
        let mut encoded = Vec::with_capacity(updates.len());
        let mut problems = Vec::new();
        for update in &updates {
            match wire::encode_update(&schema, update) {
                Ok(proto) => encoded.push(proto),
                Err(P4rtError::InvalidEntity { problems: p, .. }) => problems.extend(p),
                Err(e) => return Err(e),
            }
        }
        if !problems.is_empty() {
            return Err(P4rtError::InvalidEntity {
                what: "write".into(),
                problems,
            });
        }
        let _ops = self.shared.ops.lock().await;
        let result = self.send_updates(encoded, atomicity).await;
        let mut desired = lock(&self.shared.desired);
        // Only what reached the switch declares anything: a write refused
        // (say, while briefly primary of a switch another host then took
        // back) must not turn a desired state this client never had into
        // one it would later enforce.
        let mut applied = false;
        match &result {
            Ok(()) => {
                updates.iter().for_each(|u| desired.apply(u));
                applied = !updates.is_empty();
            }
            Err(P4rtError::Write(error)) => {
                for (update, status) in updates.iter().zip(&error.updates) {
                    let absent = matches!(
                        update,
                        Update::DeleteEntry(_) | Update::DeleteCloneSession(_)
                    ) && status.code == tonic::Code::NotFound;
                    if status.code == tonic::Code::Ok || absent {
                        desired.apply(update);
                        applied = true;
                    }
                }
            }
            Err(_) => {}
        }
        drop(desired);
        if applied {
            self.mark_declared();
        }
        result
    }

    /// Inserts one entry; see [`write`](Self::write).
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    pub async fn insert(&self, entry: TableEntry) -> Result<()> {
        self.write(vec![Update::InsertEntry(entry)], Atomicity::default())
            .await
    }

    /// Modifies one entry; see [`write`](Self::write).
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    pub async fn modify(&self, entry: TableEntry) -> Result<()> {
        self.write(vec![Update::ModifyEntry(entry)], Atomicity::default())
            .await
    }

    /// Deletes one entry; see [`write`](Self::write).
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    pub async fn delete(&self, key: EntryKey) -> Result<()> {
        self.write(vec![Update::DeleteEntry(key)], Atomicity::default())
            .await
    }

    /// Sends encoded updates in chunks and decodes the per-update errors.
    async fn send_updates(&self, updates: Vec<p4::Update>, atomicity: Atomicity) -> Result<()> {
        let total = updates.len();
        let chunk_size = self.shared.config.max_updates_per_write.max(1);
        let mut statuses: Vec<UpdateStatus> = Vec::with_capacity(total);
        let mut failure: Option<(tonic::Code, String)> = None;
        // Set when a request failed as a whole (not per update): nothing
        // after it is sent, whatever the atomicity.
        let mut stopped = false;
        let mut updates = updates.into_iter().peekable();
        while updates.peek().is_some() {
            let chunk: Vec<p4::Update> = updates.by_ref().take(chunk_size).collect();
            let offset = statuses.len();
            let count = chunk.len();
            if stopped || (failure.is_some() && atomicity != Atomicity::ContinueOnError) {
                statuses.extend((0..count).map(|i| UpdateStatus {
                    index: offset + i,
                    code: tonic::Code::Aborted,
                    message: "not sent: an earlier request of the batch failed".into(),
                    space: String::new(),
                    space_code: 0,
                }));
                continue;
            }
            let request = p4::WriteRequest {
                device_id: self.shared.config.device_id,
                role: self.shared.config.role.clone(),
                election_id: self.election_id(),
                updates: chunk,
                atomicity: atomicity.to_proto().into(),
                ..p4::WriteRequest::default()
            };
            let result = match self.grpc() {
                Ok(mut grpc) => self.call("Write", grpc.write(request)).await.map(drop),
                Err(e) => Err(e),
            };
            let error = match result {
                Ok(()) => {
                    statuses.extend((0..count).map(|i| UpdateStatus {
                        index: offset + i,
                        code: tonic::Code::Ok,
                        message: String::new(),
                        space: String::new(),
                        space_code: 0,
                    }));
                    continue;
                }
                Err(error) => error,
            };
            let status = match &error {
                P4rtError::Rpc { status, .. } | P4rtError::NotPrimary(status) => Some(status),
                _ => None,
            };
            if let Some(status) = status
                && let Some(details) = decode_write_details(status, count)
            {
                failure = Some((status.code(), status.message().to_owned()));
                statuses.extend(details.into_iter().map(|mut detail| {
                    detail.index += offset;
                    detail
                }));
                continue;
            }
            // The request failed as a whole. Before anything was applied,
            // the error says it all (and keeps its type: NotPrimary, ...).
            if offset == 0 {
                return Err(error);
            }
            let code = status.map_or(tonic::Code::Unavailable, tonic::Status::code);
            let message = error.to_string();
            statuses.extend((0..count).map(|i| UpdateStatus {
                index: offset + i,
                code,
                message: message.clone(),
                space: String::new(),
                space_code: 0,
            }));
            failure = Some((code, message));
            stopped = true;
        }
        match failure {
            None => Ok(()),
            Some((code, message)) => Err(P4rtError::Write(WriteError {
                code,
                message,
                updates: statuses,
            })),
        }
    }

    // --------------------------------------------------------------- reads

    async fn read_entities(&self, entities: Vec<p4::Entity>) -> Result<Vec<p4::Entity>> {
        let mut grpc = self.grpc()?;
        let request = p4::ReadRequest {
            device_id: self.shared.config.device_id,
            role: self.shared.config.role.clone(),
            entities,
        };
        let after = self.shared.config.rpc_timeout;
        let read = async move {
            let mut stream = grpc.read(request).await?.into_inner();
            let mut out = Vec::new();
            while let Some(response) = stream.message().await? {
                out.extend(response.entities);
            }
            Ok(out)
        };
        tokio::time::timeout(after, read)
            .await
            .map_err(|_| P4rtError::Timeout {
                what: "Read",
                after,
            })?
            .map_err(|status| rpc_error("Read", status))
    }

    async fn read_table_entries(&self, entry: p4::TableEntry) -> Result<Vec<p4::TableEntry>> {
        Ok(self
            .read_entities(vec![wire::table_entity(entry)])
            .await?
            .into_iter()
            .filter_map(|e| match e.entity {
                Some(p4::entity::Entity::TableEntry(entry)) => Some(entry),
                _ => None,
            })
            .collect())
    }

    fn decode_entries(schema: &P4Schema, raw: &[p4::TableEntry]) -> Result<Vec<TableEntry>> {
        let mut entries = Vec::with_capacity(raw.len());
        for proto in raw {
            if let DecodedEntry::Entry(entry) = wire::decode_table_entry(schema, proto)? {
                entries.push(entry);
            }
        }
        entries.sort();
        Ok(entries)
    }

    /// Every entry of `table`, sorted by key.
    ///
    /// # Errors
    ///
    /// [`P4rtError::InvalidEntity`] for an unknown table;
    /// [`P4rtError::Decode`] when the switch answers with ids the P4Info
    /// does not have; [`P4rtError::Rpc`], [`P4rtError::Disconnected`],
    /// [`P4rtError::Timeout`], [`P4rtError::NoPipeline`].
    pub async fn read_table(&self, table: &str) -> Result<Vec<TableEntry>> {
        let schema = self.schema()?;
        let info = schema
            .resolve_table(table)
            .map_err(|p| invalid(format!("read of {table:?}"), p))?;
        let raw = self
            .read_table_entries(p4::TableEntry {
                table_id: info.id,
                ..p4::TableEntry::default()
            })
            .await?;
        Self::decode_entries(&schema, &raw)
    }

    /// Every entry of every table, sorted by key (default entries are not
    /// included; see [`read_default_action`](Self::read_default_action)).
    ///
    /// # Errors
    ///
    /// As [`read_table`](Self::read_table).
    pub async fn read_all_tables(&self) -> Result<Vec<TableEntry>> {
        let schema = self.schema()?;
        let raw = self.read_table_entries(p4::TableEntry::default()).await?;
        Self::decode_entries(&schema, &raw)
    }

    /// The action `table` runs on a miss.
    ///
    /// # Errors
    ///
    /// As [`read_table`](Self::read_table); [`P4rtError::Decode`] when the
    /// switch answers with no default entry.
    pub async fn read_default_action(&self, table: &str) -> Result<DefaultAction> {
        let schema = self.schema()?;
        let info = schema
            .resolve_table(table)
            .map_err(|p| invalid(format!("read of {table:?}"), p))?;
        let raw = self
            .read_table_entries(p4::TableEntry {
                table_id: info.id,
                is_default_action: true,
                ..p4::TableEntry::default()
            })
            .await?;
        for proto in &raw {
            if let DecodedEntry::Default(default) = wire::decode_table_entry(&schema, proto)? {
                return Ok(default);
            }
        }
        Err(P4rtError::Decode(format!(
            "the switch answered no default entry for {:?}",
            info.name
        )))
    }

    /// Every clone session, sorted by id.
    ///
    /// # Errors
    ///
    /// [`P4rtError::Decode`] for replicas without a usable port;
    /// [`P4rtError::Rpc`], [`P4rtError::Disconnected`],
    /// [`P4rtError::Timeout`].
    pub async fn read_clone_sessions(&self) -> Result<Vec<CloneSession>> {
        let entities = self
            .read_entities(vec![wire::clone_session_entity(
                p4::CloneSessionEntry::default(),
            )])
            .await?;
        let mut sessions = Vec::new();
        for entity in entities {
            if let Some(p4::entity::Entity::PacketReplicationEngineEntry(pre)) = entity.entity
                && let Some(p4::packet_replication_engine_entry::Type::CloneSessionEntry(entry)) =
                    pre.r#type
            {
                sessions.push(wire::decode_clone_session(&entry)?);
            }
        }
        sessions.sort_by_key(CloneSession::session_id);
        Ok(sessions)
    }

    /// Cell `index` of the indexed counter `counter`.
    ///
    /// # Errors
    ///
    /// [`P4rtError::InvalidEntity`] for an unknown counter or an index out
    /// of range; [`P4rtError::Rpc`], [`P4rtError::Disconnected`],
    /// [`P4rtError::Timeout`], [`P4rtError::NoPipeline`].
    pub async fn read_counter(&self, counter: &str, index: i64) -> Result<CounterData> {
        let schema = self.schema()?;
        let info = schema
            .resolve_counter(counter)
            .map_err(|p| invalid(format!("read of counter {counter:?}"), p))?;
        if index < 0 || index >= info.size {
            return Err(invalid(
                format!("read of counter {counter:?}"),
                EntityProblem::IndexOutOfRange {
                    counter: info.name.clone(),
                    index,
                    size: info.size,
                },
            ));
        }
        let cells = self.read_counter_cells(info.id, Some(index)).await?;
        Ok(cells.get(&index).copied().unwrap_or_default())
    }

    /// Every cell of the indexed counter `counter`, by index.
    ///
    /// # Errors
    ///
    /// As [`read_counter`](Self::read_counter).
    pub async fn read_counters(&self, counter: &str) -> Result<BTreeMap<i64, CounterData>> {
        let schema = self.schema()?;
        let info = schema
            .resolve_counter(counter)
            .map_err(|p| invalid(format!("read of counter {counter:?}"), p))?;
        self.read_counter_cells(info.id, None).await
    }

    async fn read_counter_cells(
        &self,
        counter_id: u32,
        index: Option<i64>,
    ) -> Result<BTreeMap<i64, CounterData>> {
        let entities = self
            .read_entities(vec![p4::Entity {
                entity: Some(p4::entity::Entity::CounterEntry(p4::CounterEntry {
                    counter_id,
                    index: index.map(|index| p4::Index { index }),
                    data: None,
                })),
            }])
            .await?;
        let schema = self.schema()?;
        let mut cells = BTreeMap::new();
        for entity in entities {
            if let Some(p4::entity::Entity::CounterEntry(entry)) = entity.entity {
                if schema.counter_by_id(entry.counter_id).is_none() {
                    return Err(P4rtError::Decode(format!(
                        "unknown counter id {:#010x}",
                        entry.counter_id
                    )));
                }
                let at = entry.index.map_or(0, |i| i.index);
                cells.insert(at, wire::decode_counter_data(entry.data.as_ref()));
            }
        }
        Ok(cells)
    }

    /// Every entry of `table` with the counts of its direct counter, sorted
    /// by key.
    ///
    /// # Errors
    ///
    /// [`P4rtError::InvalidEntity`] for an unknown table or one without a
    /// direct counter; otherwise as [`read_table`](Self::read_table).
    pub async fn read_direct_counters(
        &self,
        table: &str,
    ) -> Result<Vec<(TableEntry, CounterData)>> {
        let schema = self.schema()?;
        let info = schema
            .resolve_table(table)
            .map_err(|p| invalid(format!("direct counter read of {table:?}"), p))?;
        if info.direct_counter_id.is_none() {
            return Err(invalid(
                format!("direct counter read of {table:?}"),
                EntityProblem::NoDirectCounter {
                    table: info.name.clone(),
                },
            ));
        }
        let raw = self
            .read_table_entries(p4::TableEntry {
                table_id: info.id,
                counter_data: Some(p4::CounterData::default()),
                ..p4::TableEntry::default()
            })
            .await?;
        let mut out = Vec::with_capacity(raw.len());
        for proto in &raw {
            if let DecodedEntry::Entry(entry) = wire::decode_table_entry(&schema, proto)? {
                out.push((
                    entry,
                    wire::decode_counter_data(proto.counter_data.as_ref()),
                ));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// The counts of the direct counter of the entry of `key`.
    ///
    /// # Errors
    ///
    /// [`P4rtError::Decode`] when the switch holds no such entry; otherwise
    /// as [`read_direct_counters`](Self::read_direct_counters).
    pub async fn read_direct_counter(&self, key: &EntryKey) -> Result<CounterData> {
        // A wildcard read of the table, filtered here: servers that only
        // implement wildcard reads are the common case for this table size.
        self.read_direct_counters(key.table())
            .await?
            .into_iter()
            .find(|(entry, _)| entry.key() == key)
            .map(|(_, data)| data)
            .ok_or_else(|| P4rtError::Decode(format!("the switch holds no entry {key}")))
    }

    /// Sets cell `index` of the indexed counter `counter` (usually to zero,
    /// before a measurement). Counters are not part of the desired state.
    ///
    /// # Errors
    ///
    /// As [`read_counter`](Self::read_counter), and
    /// [`P4rtError::NotPrimary`].
    pub async fn set_counter(&self, counter: &str, index: i64, data: CounterData) -> Result<()> {
        let schema = self.schema()?;
        let info = schema
            .resolve_counter(counter)
            .map_err(|p| invalid(format!("write of counter {counter:?}"), p))?;
        if index < 0 || index >= info.size {
            return Err(invalid(
                format!("write of counter {counter:?}"),
                EntityProblem::IndexOutOfRange {
                    counter: info.name.clone(),
                    index,
                    size: info.size,
                },
            ));
        }
        let entity = p4::Entity {
            entity: Some(p4::entity::Entity::CounterEntry(p4::CounterEntry {
                counter_id: info.id,
                index: Some(p4::Index { index }),
                data: Some(wire::encode_counter_data(data)),
            })),
        };
        self.send_counter_write(entity).await
    }

    /// Sets the direct counter of the entry of `key`. Counters are not part
    /// of the desired state.
    ///
    /// # Errors
    ///
    /// [`P4rtError::InvalidEntity`] for a table without a direct counter;
    /// [`P4rtError::Write`] when the switch holds no such entry;
    /// [`P4rtError::NotPrimary`] and the errors of any write.
    pub async fn set_direct_counter(&self, key: &EntryKey, data: CounterData) -> Result<()> {
        let schema = self.schema()?;
        let info = schema
            .resolve_table(key.table())
            .map_err(|p| invalid(format!("direct counter write of {:?}", key.table()), p))?;
        if info.direct_counter_id.is_none() {
            return Err(invalid(
                format!("direct counter write of {:?}", key.table()),
                EntityProblem::NoDirectCounter {
                    table: info.name.clone(),
                },
            ));
        }
        let entity = p4::Entity {
            entity: Some(p4::entity::Entity::DirectCounterEntry(
                p4::DirectCounterEntry {
                    table_entry: Some(wire::encode_key(&schema, key)?),
                    data: Some(wire::encode_counter_data(data)),
                },
            )),
        };
        self.send_counter_write(entity).await
    }

    async fn send_counter_write(&self, entity: p4::Entity) -> Result<()> {
        let _ops = self.shared.ops.lock().await;
        self.send_updates(
            vec![p4::Update {
                r#type: p4::update::Type::Modify.into(),
                entity: Some(entity),
            }],
            Atomicity::ContinueOnError,
        )
        .await
    }

    // ---------------------------------------------------------- packet-out

    /// Sends `packet` out through the switch (on the StreamChannel). Waits
    /// while the outbound queue is full.
    ///
    /// # Errors
    ///
    /// [`P4rtError::InvalidEntity`] when the packet does not encode with the
    /// pipeline's P4Info; [`P4rtError::Disconnected`],
    /// [`P4rtError::Shutdown`], [`P4rtError::NoPipeline`]. Errors of the
    /// switch come back as [`ClientEvent::StreamError`].
    pub async fn send_packet_out(&self, packet: &PacketOut) -> Result<()> {
        let schema = self.schema()?;
        let proto = wire::encode_packet_out(&schema, packet)?;
        let outbound = {
            let link = lock(&self.shared.link);
            if link.shut_down {
                return Err(P4rtError::Shutdown);
            }
            link.outbound.clone().ok_or(P4rtError::Disconnected)?
        };
        outbound
            .send(p4::StreamMessageRequest {
                update: Some(p4::stream_message_request::Update::Packet(proto)),
            })
            .await
            .map_err(|_| P4rtError::Disconnected)
    }

    // ------------------------------------------------------- desired state

    /// A copy of the desired state.
    #[must_use]
    pub fn desired_state(&self) -> DesiredState {
        lock(&self.shared.desired).clone()
    }

    /// Replaces the desired state wholesale; call
    /// [`reconcile`](Self::reconcile) to apply it.
    pub fn replace_desired_state(&self, desired: DesiredState) {
        self.mark_declared();
        *lock(&self.shared.desired) = desired;
    }

    /// Records `entry`, read from the switch, as desired, without
    /// declaring anything else: a client that has declared nothing yet
    /// still adopts all the switch holds when it becomes primary, while a
    /// reconcile after a reconnection keeps this entry as read.
    pub fn note_installed_entry(&self, entry: TableEntry) {
        lock(&self.shared.desired).insert_entry(entry);
    }

    /// Declares `entry` desired (applied at the next reconciliation).
    pub fn set_desired_entry(&self, entry: TableEntry) {
        self.mark_declared();
        lock(&self.shared.desired).insert_entry(entry);
    }

    /// Withdraws the entry of `key` from the desired state; returns whether
    /// it was there.
    pub fn remove_desired_entry(&self, key: &EntryKey) -> bool {
        self.mark_declared();
        lock(&self.shared.desired).remove_entry(key).is_some()
    }

    /// Declares a default action desired.
    pub fn set_desired_default_action(&self, default: DefaultAction) {
        self.mark_declared();
        lock(&self.shared.desired).set_default_action(default);
    }

    /// Withdraws the default action of `table` (fully qualified name): the
    /// table goes back to its initial default action.
    pub fn remove_desired_default_action(&self, table: &str) -> bool {
        self.mark_declared();
        lock(&self.shared.desired)
            .remove_default_action(table)
            .is_some()
    }

    /// Declares a clone session desired.
    pub fn set_desired_clone_session(&self, session: CloneSession) {
        self.mark_declared();
        lock(&self.shared.desired).insert_clone_session(session);
    }

    /// Withdraws clone session `session_id` from the desired state.
    pub fn remove_desired_clone_session(&self, session_id: u32) -> bool {
        self.mark_declared();
        lock(&self.shared.desired)
            .remove_clone_session(session_id)
            .is_some()
    }

    /// Reads what the switch holds and writes only the difference with the
    /// desired state (deletes, then modifies, then inserts), so that it
    /// holds exactly the desired state.
    ///
    /// # Errors
    ///
    /// [`P4rtError::Write`] when some updates were refused (the others are
    /// applied); [`P4rtError::NoPipeline`]; errors of reads and writes.
    pub async fn reconcile(&self) -> Result<ReconcileReport> {
        let _ops = self.shared.ops.lock().await;
        self.reconcile_locked().await
    }

    fn mark_declared(&self) {
        self.shared
            .declared
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    async fn reconcile_locked(&self) -> Result<ReconcileReport> {
        let pipeline = self.pipeline()?;
        let schema = &pipeline.schema;
        let installed = self.read_installed(schema).await?;
        if !self
            .shared
            .declared
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            // Nothing declared: what the switch holds is the desired state.
            let mut adopted = DesiredState::new();
            for entry in &installed.entries {
                adopted.insert_entry(entry.clone());
            }
            for (table, action) in installed.default_actions.iter().flatten() {
                adopted.set_default_action(DefaultAction {
                    table: table.clone(),
                    action: action.clone(),
                });
            }
            for session in &installed.clone_sessions {
                adopted.insert_clone_session(session.clone());
            }
            tracing::info!(
                entries = installed.entries.len(),
                clone_sessions = installed.clone_sessions.len(),
                "nothing declared yet: the switch's entries adopted as the desired state"
            );
            // Still undeclared: until the owner writes or declares, each
            // time this client becomes primary it adopts the switch anew
            // (what it adopts from an empty, restarted switch must not be
            // enforced later on a switch another host has programmed since).
            *lock(&self.shared.desired) = adopted;
            return Ok(ReconcileReport::default());
        }
        let desired = self.desired_state();
        let plan = reconcile::plan(schema, &desired, &installed)?;
        if !plan.updates.is_empty() {
            self.send_updates(plan.updates, Atomicity::ContinueOnError)
                .await?;
        }
        if plan.report.is_noop() {
            tracing::debug!("switch already in the desired state");
        } else {
            tracing::info!(report = ?plan.report, "switch reconciled to the desired state");
        }
        Ok(plan.report)
    }

    async fn read_installed(&self, schema: &P4Schema) -> Result<Installed> {
        let mut installed = Installed::default();
        for proto in self.read_table_entries(p4::TableEntry::default()).await? {
            if proto.is_const {
                continue;
            }
            match wire::decode_table_entry(schema, &proto) {
                Ok(DecodedEntry::Entry(entry)) => installed.entries.push(entry),
                Ok(DecodedEntry::Default(_)) => {}
                Err(error) => {
                    tracing::warn!(%error, "deleting an installed entry that does not decode");
                    installed.undecodable.push(proto);
                }
            }
        }
        // Default entries, one read for all tables; a switch that cannot
        // read them gets the declared ones written blindly.
        let requests = schema
            .tables()
            .iter()
            .map(|t| {
                wire::table_entity(p4::TableEntry {
                    table_id: t.id,
                    is_default_action: true,
                    ..p4::TableEntry::default()
                })
            })
            .collect::<Vec<_>>();
        installed.default_actions = match self.read_entities(requests).await {
            Ok(entities) => {
                let mut defaults = BTreeMap::new();
                for entity in entities {
                    if let Some(p4::entity::Entity::TableEntry(proto)) = entity.entity
                        && let Ok(DecodedEntry::Default(default)) =
                            wire::decode_table_entry(schema, &proto)
                    {
                        defaults.insert(default.table, default.action);
                    }
                }
                Some(defaults)
            }
            Err(error) if error.is_transient() => return Err(error),
            Err(error) => {
                tracing::debug!(%error, "switch cannot read default entries");
                None
            }
        };
        installed.clone_sessions = self.read_clone_sessions().await?;
        Ok(installed)
    }

    // ------------------------------------------------- supervisor's side

    /// Pushes the pipeline if needed and reconciles; `None` without a
    /// pipeline. Needs the `ops` lock held.
    async fn sync_locked(&self) -> Option<Result<SyncReport>> {
        let pipeline = lock(&self.shared.pipeline).clone()?;
        let outcome = match self.ensure_pipeline(&pipeline).await {
            Ok(outcome) => outcome,
            Err(e) => return Some(Err(e)),
        };
        Some(self.reconcile_locked().await.map(|reconcile| SyncReport {
            pipeline: outcome,
            reconcile,
        }))
    }

    /// Takes over a fresh connection and, if primary, synchronises the
    /// switch. Transient failures of the synchronisation fail the attempt
    /// (the supervisor retries); others are reported in the event.
    pub(crate) async fn adopt(
        &self,
        established: Established,
    ) -> Result<(tonic::Streaming<p4::StreamMessageResponse>, ClientEvent)> {
        let Established {
            grpc,
            outbound,
            inbound,
            primary,
            election_id,
            vacant,
        } = established;
        // Held until synchronised, so that no write reaches a switch that
        // has no pipeline yet.
        let _ops = self.shared.ops.lock().await;
        {
            let mut link = lock(&self.shared.link);
            if link.shut_down {
                return Err(P4rtError::Shutdown);
            }
            link.grpc = grpc;
            link.outbound = Some(outbound);
            link.connected = true;
            link.primary = primary;
            link.primary_election_id = election_id;
            link.vacant = vacant;
        }
        let sync = if primary {
            self.sync_locked().await
        } else {
            None
        };
        if let Some(Err(error)) = &sync
            && error.is_transient()
        {
            self.mark_disconnected();
            return Err(sync.and_then(Result::err).expect("matched an error"));
        }
        Ok((inbound, ClientEvent::Reconnected { primary, sync }))
    }

    /// Records an arbitration update from the stream. Returns the events to
    /// emit and whether this client just became primary.
    pub(crate) fn record_arbitration(
        &self,
        update: &p4::MasterArbitrationUpdate,
    ) -> (Option<ClientEvent>, bool) {
        let (primary, election_id, vacant) = arbitration_state(update);
        let mut link = lock(&self.shared.link);
        let changed = link.primary != primary
            || link.primary_election_id != election_id
            || link.vacant != vacant;
        let became_primary = primary && !link.primary;
        link.primary = primary;
        link.primary_election_id = election_id;
        link.vacant = vacant;
        let event = changed.then_some(ClientEvent::MastershipChanged {
            primary,
            election_id,
            vacant,
        });
        (event, became_primary)
    }

    /// Synchronises after becoming primary on a live stream.
    pub(crate) async fn resynchronize(&self) -> ClientEvent {
        let _ops = self.shared.ops.lock().await;
        ClientEvent::Resynchronized {
            sync: self.sync_locked().await,
        }
    }

    pub(crate) fn mark_disconnected(&self) {
        let mut link = lock(&self.shared.link);
        link.connected = false;
        // Dropping the sender ends our half of the stream.
        link.outbound = None;
    }

    pub(crate) fn mark_shut_down(&self) {
        let mut link = lock(&self.shared.link);
        link.connected = false;
        link.shut_down = true;
        link.outbound = None;
    }

    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.shared.endpoint
    }

    /// Emits an event that may be dropped when the channel is full.
    pub(crate) fn emit_lossy(&self, event: ClientEvent) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.shared.events.try_send(event) {
            self.shared.dropped_events.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Emits an event that waits for room (a closed channel discards it).
    pub(crate) async fn emit(&self, event: ClientEvent) {
        let _ = self.shared.events.send(event).await;
    }
}

fn rpc_error(rpc: &'static str, status: tonic::Status) -> P4rtError {
    if status.code() == tonic::Code::PermissionDenied {
        P4rtError::NotPrimary(status)
    } else {
        P4rtError::Rpc { rpc, status }
    }
}

/// The per-update `p4.v1.Error`s packed in a failed Write's status details
/// (`grpc-status-details-bin`), if there is one per update.
pub(crate) fn decode_write_details(
    status: &tonic::Status,
    count: usize,
) -> Option<Vec<UpdateStatus>> {
    if status.details().is_empty() {
        return None;
    }
    let details = rpc::Status::decode(status.details()).ok()?;
    let errors: Vec<UpdateStatus> = details
        .details
        .iter()
        .filter(|any| any.type_url.rsplit('/').next() == Some("p4.v1.Error"))
        .filter_map(|any| p4::Error::decode(any.value.as_slice()).ok())
        .enumerate()
        .map(|(index, error)| UpdateStatus {
            index,
            code: tonic::Code::from(error.canonical_code),
            message: error.message,
            space: error.space,
            space_code: error.code,
        })
        .collect();
    (errors.len() == count).then_some(errors)
}

#[cfg(test)]
mod tests {
    use prost_types::Any;

    use super::*;

    fn status_with(errors: &[(tonic::Code, &str)]) -> tonic::Status {
        let details = rpc::Status {
            code: tonic::Code::Unknown as i32,
            message: "write failed".into(),
            details: errors
                .iter()
                .map(|(code, message)| Any {
                    type_url: "type.googleapis.com/p4.v1.Error".into(),
                    value: p4::Error {
                        canonical_code: *code as i32,
                        message: (*message).into(),
                        ..p4::Error::default()
                    }
                    .encode_to_vec(),
                })
                .collect(),
        };
        tonic::Status::with_details(
            tonic::Code::Unknown,
            "write failed",
            details.encode_to_vec().into(),
        )
    }

    #[test]
    fn write_details_decode_per_update() {
        let status = status_with(&[
            (tonic::Code::Ok, ""),
            (tonic::Code::AlreadyExists, "entry exists"),
            (tonic::Code::Ok, ""),
        ]);
        let details = decode_write_details(&status, 3).unwrap();
        assert_eq!(details[1].code, tonic::Code::AlreadyExists);
        assert_eq!(details[1].message, "entry exists");
        assert_eq!(details[1].index, 1);
        assert_eq!(details[2].code, tonic::Code::Ok);
        // One detail per update or none at all.
        assert!(decode_write_details(&status, 2).is_none());
        assert!(decode_write_details(&tonic::Status::unknown("x"), 1).is_none());
    }

    #[test]
    fn permission_denied_is_not_primary() {
        assert!(matches!(
            rpc_error("Write", tonic::Status::permission_denied("backup")),
            P4rtError::NotPrimary(_)
        ));
        assert!(matches!(
            rpc_error("Write", tonic::Status::unavailable("gone")),
            P4rtError::Rpc { rpc: "Write", .. }
        ));
    }

    #[test]
    fn election_ids_round_trip_128_bits() {
        let id = (7u128 << 64) | 9;
        let wire = to_uint128(id);
        assert_eq!((wire.high, wire.low), (7, 9));
        assert_eq!(from_uint128(&wire), id);
        let update = p4::MasterArbitrationUpdate {
            election_id: Some(wire),
            status: Some(rpc::Status::default()),
            ..p4::MasterArbitrationUpdate::default()
        };
        assert_eq!(arbitration_state(&update), (true, Some(id), false));
        let backup = p4::MasterArbitrationUpdate {
            status: Some(rpc::Status {
                code: tonic::Code::AlreadyExists as i32,
                ..rpc::Status::default()
            }),
            ..update
        };
        assert!(!arbitration_state(&backup).0);
    }
}
