//! The P4Runtime service of the software switch (spec §5–§16, the parts
//! `umbra.p4` uses): arbitration on StreamChannel, pipeline config, Write with
//! per-update errors, wildcard Read, packet I/O and Capabilities.
//!
//! Locking: `arbitration` and `state` are synchronous mutexes — no `.await`
//! happens while either is held. The order is `state` then the pipeline's
//! table lock ([`Pipeline::update`]); `arbitration` is never held together
//! with `state`.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use prost::Message as _;
use tokio::sync::mpsc;
use tokio::sync::watch;
use tokio_stream::wrappers::{ReceiverStream, WatchStream};
use tokio_stream::{Stream, StreamExt as _};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Code, Request, Response, Status, Streaming};
use umbra_pipeline::{PORT_COUNT, Pipeline};
use umbra_proto::google::rpc;
use umbra_proto::p4::v1::{
    self as p4, CapabilitiesRequest, CapabilitiesResponse, CloneSessionEntry, CounterData,
    CounterEntry, DirectCounterEntry, Entity, ForwardingPipelineConfig,
    GetForwardingPipelineConfigRequest, GetForwardingPipelineConfigResponse, Index, PacketIn,
    PacketOutError, PacketReplicationEngineEntry, ReadRequest, ReadResponse,
    SetForwardingPipelineConfigRequest, SetForwardingPipelineConfigResponse, StreamError,
    StreamMessageRequest, StreamMessageResponse, TableEntry, WriteRequest, WriteResponse, entity,
    get_forwarding_pipeline_config_request, packet_replication_engine_entry,
    set_forwarding_pipeline_config_request, stream_error, stream_message_request,
    stream_message_response, update, write_request,
};

use crate::arbitration::{self, Arbitration, StreamId};
use crate::dataplane::Dataplane;
use crate::program::{self, EntityError, EntityResult, EntryKey, Program, TableOp, TableWriter};

/// The P4Runtime version whose protocol this switch speaks.
pub const P4RUNTIME_API_VERSION: &str = "1.6.0";

/// Entities per ReadResponse message; large reads are streamed in chunks.
const READ_CHUNK: usize = 1024;

/// Responses queued per StreamChannel. When a controller stops reading and
/// its queue fills, packet-ins to it are dropped and counted, and stream
/// errors to it are dropped; arbitration updates are retried on the next
/// change (see [`Arbitration`]).
const STREAM_QUEUE: usize = 1024;

#[derive(Debug, Clone)]
struct Committed {
    program: Arc<Program>,
    config: ForwardingPipelineConfig,
}

/// Control-plane state that P4Runtime reads back exactly as written.
#[derive(Debug, Default)]
struct DeviceState {
    committed: Option<Committed>,
    saved: Option<Committed>,
    /// Installed entries in canonical form, without counter data (the
    /// pipeline holds the counters and the executable form).
    entries: BTreeMap<EntryKey, TableEntry>,
    /// Clone sessions as written (canonical), for reads.
    clone_sessions: BTreeMap<u32, CloneSessionEntry>,
}

struct Inner {
    device_id: u64,
    pipeline: Arc<Pipeline>,
    dataplane: Arc<Dataplane>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    arbitration: Mutex<Arbitration>,
    state: Mutex<DeviceState>,
    next_stream: AtomicU64,
    packet_ins_dropped: AtomicU64,
}

/// The P4Runtime gRPC service of one device. Cheap to clone.
#[derive(Clone)]
pub struct P4RuntimeService {
    inner: Arc<Inner>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave these structures half
    // updated in a way later requests could not handle, so keep serving.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl P4RuntimeService {
    /// A service for `device_id` over `pipeline`, injecting packet-outs into
    /// `dataplane`. Stream tasks stop when `shutdown` is cancelled.
    pub fn new(
        device_id: u64,
        pipeline: Arc<Pipeline>,
        dataplane: Arc<Dataplane>,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                device_id,
                pipeline,
                dataplane,
                shutdown,
                tasks: TaskTracker::new(),
                arbitration: Mutex::new(Arbitration::new(device_id)),
                state: Mutex::new(DeviceState::default()),
                next_stream: AtomicU64::new(1),
                packet_ins_dropped: AtomicU64::new(0),
            }),
        }
    }

    /// Packet-ins dropped because a controller's queue was full.
    pub fn packet_ins_dropped(&self) -> u64 {
        self.inner.packet_ins_dropped.load(Ordering::Relaxed)
    }

    /// Delivers frames the pipeline sent to the CPU port to every primary
    /// controller as PacketIn, until the channel closes.
    pub async fn forward_packet_ins(self, mut frames: mpsc::Receiver<Vec<u8>>) {
        while let Some(frame) = frames.recv().await {
            let program = lock(&self.inner.state)
                .committed
                .as_ref()
                .map(|c| Arc::clone(&c.program));
            let Some((metadata, payload)) = program.and_then(|p| p.packet_in(&frame)) else {
                continue;
            };
            let message = StreamMessageResponse {
                update: Some(stream_message_response::Update::Packet(PacketIn {
                    payload,
                    metadata,
                })),
            };
            let arbitration = lock(&self.inner.arbitration);
            for sender in arbitration.primary_senders() {
                if sender.try_send(Ok(message.clone())).is_err() {
                    self.inner
                        .packet_ins_dropped
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    fn check_device(&self, device_id: u64) -> Result<(), Status> {
        if device_id == self.inner.device_id {
            Ok(())
        } else {
            Err(Status::not_found(format!(
                "device {device_id} not found; this switch is device {}",
                self.inner.device_id
            )))
        }
    }

    fn check_primary(&self, role: &str, election_id: Option<&p4::Uint128>) -> Result<(), Status> {
        lock(&self.inner.arbitration).check_primary(role, election_id.map(arbitration::election_id))
    }

    fn write_batch(&self, request: WriteRequest) -> Result<WriteResponse, Status> {
        self.check_device(request.device_id)?;
        self.check_primary(&request.role, request.election_id.as_ref())?;
        let atomicity = write_request::Atomicity::try_from(request.atomicity).map_err(|_| {
            Status::invalid_argument(format!("unknown atomicity {}", request.atomicity))
        })?;
        let mut state = lock(&self.inner.state);
        let program = state
            .committed
            .as_ref()
            .map(|c| Arc::clone(&c.program))
            .ok_or_else(no_pipeline)?;
        let all_or_nothing = !matches!(atomicity, write_request::Atomicity::ContinueOnError);
        let state = &mut *state;
        let results = self.inner.pipeline.update(|tables| {
            let mut counter_undo = CounterUndo::new();
            let rollback = all_or_nothing.then(|| {
                (
                    tables.clone(),
                    state.entries.clone(),
                    state.clone_sessions.clone(),
                )
            });
            let mut results: Vec<EntityResult<()>> = request
                .updates
                .iter()
                .map(|u| {
                    apply_update(
                        &program,
                        &self.inner.pipeline,
                        tables,
                        state,
                        &mut counter_undo,
                        u,
                    )
                })
                .collect();
            if let Some((saved_tables, saved_entries, saved_sessions)) = rollback
                && results.iter().any(Result::is_err)
            {
                *tables = saved_tables;
                // Indirect counters live outside the tables: undo their
                // writes newest first.
                for (counter, index, old) in counter_undo.iter().rev() {
                    let _ = counter_of(&self.inner.pipeline, *counter).write(*index, *old);
                }
                state.entries = saved_entries;
                state.clone_sessions = saved_sessions;
                let culprits: Vec<usize> = results
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.is_err())
                    .map(|(i, _)| i)
                    .collect();
                for result in &mut results {
                    if result.is_ok() {
                        *result = Err(EntityError::new(Code::Aborted, format!(
                                "not applied: the batch was rolled back because update(s) {culprits:?} failed"
                            )));
                    }
                }
            }
            results
        });
        if results.iter().all(Result::is_ok) {
            Ok(WriteResponse {})
        } else {
            Err(batch_failure("update", &results))
        }
    }

    /// Reads every requested entity. A request-wide problem (device,
    /// pipeline) fails the whole Read; a problem with one entity fails only
    /// that one: the others are still returned, followed by UNKNOWN with one
    /// `p4.v1.Error` per requested entity.
    fn read_entities(
        &self,
        request: &ReadRequest,
    ) -> Result<(Vec<Entity>, Option<Status>), Status> {
        self.check_device(request.device_id)?;
        let state = lock(&self.inner.state);
        let program = state
            .committed
            .as_ref()
            .map(|c| Arc::clone(&c.program))
            .ok_or_else(no_pipeline)?;
        let pipeline = &self.inner.pipeline;
        let mut out = Vec::new();
        let results: Vec<EntityResult<()>> = request
            .entities
            .iter()
            .map(|wanted| read_entity(&program, pipeline, &state, wanted, &mut out))
            .collect();
        let failure = results
            .iter()
            .any(Result::is_err)
            .then(|| batch_failure("entity", &results));
        Ok((out, failure))
    }

    fn set_pipeline(&self, request: SetForwardingPipelineConfigRequest) -> Result<(), Status> {
        use set_forwarding_pipeline_config_request::Action;
        self.check_device(request.device_id)?;
        self.check_primary(&request.role, request.election_id.as_ref())?;
        let action = Action::try_from(request.action)
            .map_err(|_| Status::invalid_argument(format!("unknown action {}", request.action)))?;
        let mut state = lock(&self.inner.state);
        match action {
            Action::Unspecified => {
                return Err(Status::invalid_argument("action must be set"));
            }
            Action::Verify => {
                verify(request.config)?;
            }
            Action::VerifyAndSave => {
                state.saved = Some(verify(request.config)?);
            }
            Action::VerifyAndCommit => {
                let committed = verify(request.config)?;
                self.commit(&mut state, committed, false);
            }
            Action::Commit => {
                if request.config.is_some() {
                    return Err(Status::invalid_argument(
                        "COMMIT takes no config: it commits the one saved by VERIFY_AND_SAVE",
                    ));
                }
                let saved = state.saved.take().ok_or_else(|| {
                    Status::not_found("COMMIT needs a config saved by VERIFY_AND_SAVE first")
                })?;
                // Writes made since the save were made against the saved
                // config (the same program), so they stay.
                self.commit(&mut state, saved, true);
            }
            Action::ReconcileAndCommit => {
                let committed = verify(request.config)?;
                self.commit(&mut state, committed, true);
            }
        }
        Ok(())
    }

    /// Makes `committed` the running pipeline. Forwarding state is kept on
    /// reconcile (the program is the same one, checked by `verify`) and
    /// cleared otherwise, as a fresh pipeline would be.
    fn commit(&self, state: &mut DeviceState, committed: Committed, keep_state: bool) {
        if !keep_state || state.committed.is_none() {
            self.inner.pipeline.reset();
            state.entries.clear();
            state.clone_sessions.clear();
        }
        state.saved = None;
        tracing::info!(
            cookie = committed.config.cookie.as_ref().map(|c| c.cookie),
            keep_state,
            "pipeline committed"
        );
        state.committed = Some(committed);
    }

    fn handle_stream_message(
        &self,
        stream: StreamId,
        message: StreamMessageRequest,
        sender: &arbitration::ResponseSender,
    ) -> Result<(), Status> {
        match message.update {
            Some(stream_message_request::Update::Arbitration(update)) => {
                if update.device_id != self.inner.device_id
                    && lock(&self.inner.arbitration).is_registered(stream)
                {
                    return Err(Status::failed_precondition(format!(
                        "this stream arbitrated for device {}; a stream cannot change its device",
                        self.inner.device_id
                    )));
                }
                self.check_device(update.device_id)?;
                let role = update
                    .role
                    .as_ref()
                    .map(|r| r.name.clone())
                    .unwrap_or_default();
                if update.role.as_ref().is_some_and(|r| r.config.is_some()) {
                    return Err(Status::invalid_argument(
                        "role configs are not supported by this switch; use a role name only",
                    ));
                }
                lock(&self.inner.arbitration).arbitrate(
                    stream,
                    &role,
                    update.election_id.as_ref().map(arbitration::election_id),
                    sender,
                )?;
            }
            Some(stream_message_request::Update::Packet(packet)) => {
                let outcome = if lock(&self.inner.arbitration).is_primary_stream(stream) {
                    let program = lock(&self.inner.state)
                        .committed
                        .as_ref()
                        .map(|c| Arc::clone(&c.program));
                    match program {
                        None => Err(EntityError::new(
                            Code::FailedPrecondition,
                            "no pipeline config is committed",
                        )),
                        Some(program) => {
                            program
                                .packet_out_header(&packet.metadata)
                                .map(|mut frame| {
                                    frame.extend_from_slice(&packet.payload);
                                    self.inner.dataplane.packet_out(&frame);
                                })
                        }
                    }
                } else {
                    Err(EntityError::new(
                        Code::PermissionDenied,
                        "only the primary controller may send packets",
                    ))
                };
                if let Err(error) = outcome {
                    let _ = sender.messages.try_send(Ok(stream_error(
                        error,
                        Some(stream_error::Details::PacketOut(PacketOutError {
                            packet_out: Some(packet),
                        })),
                    )));
                }
            }
            Some(stream_message_request::Update::DigestAck(ack)) => {
                let _ = sender.messages.try_send(Ok(stream_error(
                    EntityError::invalid("umbra.p4 has no digests"),
                    Some(stream_error::Details::DigestListAck(
                        p4::DigestListAckError {
                            digest_list_ack: Some(ack),
                        },
                    )),
                )));
            }
            Some(stream_message_request::Update::Other(other)) => {
                let _ = sender.messages.try_send(Ok(stream_error(
                    EntityError::new(Code::Unimplemented, "no extension messages are supported"),
                    Some(stream_error::Details::Other(p4::StreamOtherError {
                        other: Some(other),
                    })),
                )));
            }
            None => {
                let _ = sender.messages.try_send(Ok(stream_error(
                    EntityError::invalid("empty StreamMessageRequest"),
                    None,
                )));
            }
        }
        Ok(())
    }
}

fn no_pipeline() -> Status {
    Status::failed_precondition(
        "no forwarding pipeline config is committed; SetForwardingPipelineConfig first",
    )
}

/// Checks a pushed config: it must carry the P4Info of `umbra.p4` (names,
/// ids and bitwidths; p4c's output is accepted). The device config is
/// opaque to this switch and kept as given.
fn verify(config: Option<ForwardingPipelineConfig>) -> Result<Committed, Status> {
    let config = config.ok_or_else(|| Status::invalid_argument("config is missing"))?;
    let p4info = config
        .p4info
        .clone()
        .ok_or_else(|| Status::invalid_argument("config has no p4info"))?;
    let differences = umbra_p4info::compare(umbra_p4info::umbra_p4info(), &p4info);
    if !differences.is_empty() {
        let list: Vec<String> = differences.iter().map(ToString::to_string).collect();
        return Err(Status::invalid_argument(format!(
            "this switch runs umbra.p4 and the P4Info differs from it in {} way(s):\n- {}",
            list.len(),
            list.join("\n- ")
        )));
    }
    let program = Program::new(p4info).map_err(Status::invalid_argument)?;
    Ok(Committed {
        program: Arc::new(program),
        config,
    })
}

fn stream_error(
    error: EntityError,
    details: Option<stream_error::Details>,
) -> StreamMessageResponse {
    StreamMessageResponse {
        update: Some(stream_message_response::Update::Error(StreamError {
            canonical_code: error.code as i32,
            message: error.message,
            space: String::new(),
            code: 0,
            details,
        })),
    }
}

/// The spec's answer to a batch with failures: UNKNOWN, with one
/// `p4.v1.Error` per update (or read entity) — OK for the ones that
/// succeeded — in the status details.
fn batch_failure(what: &str, results: &[EntityResult<()>]) -> Status {
    let failed: Vec<(usize, &EntityError)> = results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_ref().err().map(|e| (i, e)))
        .collect();
    let details = results
        .iter()
        .map(|result| {
            let error = match result {
                Ok(()) => p4::Error {
                    canonical_code: Code::Ok as i32,
                    ..p4::Error::default()
                },
                Err(e) => p4::Error {
                    canonical_code: e.code as i32,
                    message: e.message.clone(),
                    ..p4::Error::default()
                },
            };
            prost_types::Any {
                type_url: "type.googleapis.com/p4.v1.Error".into(),
                value: error.encode_to_vec(),
            }
        })
        .collect();
    let (first_index, first) = failed[0];
    let message = format!(
        "{} of {} {what}(s) failed; first: {what} {first_index}: {}",
        failed.len(),
        results.len(),
        first.message
    );
    let status = rpc::Status {
        code: Code::Unknown as i32,
        message: message.clone(),
        details,
    };
    Status::with_details(Code::Unknown, message, status.encode_to_vec().into())
}

fn read_entity(
    program: &Program,
    pipeline: &Pipeline,
    state: &DeviceState,
    wanted: &Entity,
    out: &mut Vec<Entity>,
) -> EntityResult<()> {
    match &wanted.entity {
        Some(entity::Entity::TableEntry(filter)) => {
            read_table_entries(program, pipeline, state, filter, out)
        }
        Some(entity::Entity::CounterEntry(filter)) => read_counters(program, pipeline, filter, out),
        Some(entity::Entity::DirectCounterEntry(filter)) => {
            read_direct_counters(program, pipeline, state, filter, out)
        }
        Some(entity::Entity::PacketReplicationEngineEntry(pre)) => match &pre.r#type {
            Some(packet_replication_engine_entry::Type::CloneSessionEntry(filter)) => {
                if filter.session_id == 0 {
                    out.extend(state.clone_sessions.values().map(clone_session_entity));
                    return Ok(());
                }
                let session = state
                    .clone_sessions
                    .get(&filter.session_id)
                    .ok_or_else(|| {
                        EntityError::new(
                            Code::NotFound,
                            format!("clone session {} does not exist", filter.session_id),
                        )
                    })?;
                out.push(clone_session_entity(session));
                Ok(())
            }
            Some(packet_replication_engine_entry::Type::MulticastGroupEntry(_)) => {
                Err(EntityError::new(
                    Code::Unimplemented,
                    "multicast groups are not supported by this switch",
                ))
            }
            None => Err(EntityError::new(
                Code::InvalidArgument,
                "PacketReplicationEngineEntry without a type",
            )),
        },
        Some(other) => Err(EntityError::new(
            Code::Unimplemented,
            format!("umbra.p4 has no {}", entity_kind(other)),
        )),
        None => Err(EntityError::new(Code::InvalidArgument, "empty entity")),
    }
}

fn entity_kind(entity: &entity::Entity) -> &'static str {
    match entity {
        entity::Entity::ExternEntry(_) => "extern entries",
        entity::Entity::TableEntry(_) => "table entries",
        entity::Entity::ActionProfileMember(_) => "action profile members",
        entity::Entity::ActionProfileGroup(_) => "action profile groups",
        entity::Entity::MeterEntry(_) => "meters",
        entity::Entity::DirectMeterEntry(_) => "direct meters",
        entity::Entity::CounterEntry(_) => "counter entries",
        entity::Entity::DirectCounterEntry(_) => "direct counter entries",
        entity::Entity::PacketReplicationEngineEntry(_) => "replication entries",
        entity::Entity::ValueSetEntry(_) => "value sets",
        entity::Entity::RegisterEntry(_) => "registers",
        entity::Entity::DigestEntry(_) => "digests",
    }
}

/// The pipeline's indirect counter of a kind.
fn counter_of(pipeline: &Pipeline, kind: program::CounterKind) -> &umbra_pipeline::IndirectCounter {
    match kind {
        program::CounterKind::PortRx => pipeline.port_rx(),
        program::CounterKind::PortTx => pipeline.port_tx(),
    }
}

/// Indirect counter cells written by a batch, with their old values, so a
/// rolled-back batch can restore them.
type CounterUndo = Vec<(program::CounterKind, u64, umbra_pipeline::CounterData)>;

fn apply_update(
    program: &Program,
    pipeline: &Pipeline,
    tables: &mut umbra_pipeline::Tables,
    state: &mut DeviceState,
    counter_undo: &mut CounterUndo,
    update: &p4::Update,
) -> EntityResult<()> {
    let op = match update::Type::try_from(update.r#type) {
        Ok(update::Type::Insert) => TableOp::Insert,
        Ok(update::Type::Modify) => TableOp::Modify,
        Ok(update::Type::Delete) => TableOp::Delete,
        Ok(update::Type::Unspecified) | Err(_) => {
            return Err(EntityError::invalid(format!(
                "update type {} is not valid",
                update.r#type
            )));
        }
    };
    let entity = update
        .entity
        .as_ref()
        .and_then(|e| e.entity.as_ref())
        .ok_or_else(|| EntityError::invalid("update has no entity"))?;
    let mut writer = TableWriter { tables };
    match entity {
        entity::Entity::TableEntry(entry) => {
            apply_table_entry(program, &mut writer, state, op, entry)
        }
        entity::Entity::CounterEntry(entry) => {
            if op != TableOp::Modify {
                return Err(EntityError::invalid("counter entries can only be modified"));
            }
            let kind = program.counter(entry.counter_id)?;
            let counter = counter_of(pipeline, kind);
            // No data: nothing to change (spec: MODIFY without data is a no-op).
            let Some(data) = entry.data else {
                return Ok(());
            };
            check_counter_data(&data)?;
            let indexes: Vec<u64> = match &entry.index {
                Some(Index { index }) => vec![u64::try_from(*index).map_err(|_| {
                    EntityError::invalid(format!("counter index {index} is negative"))
                })?],
                // No index: every cell of the counter.
                None => (0..counter.size() as u64).collect(),
            };
            let value = umbra_pipeline::CounterData {
                packets: data.packet_count as u64,
                bytes: data.byte_count as u64,
            };
            for index in indexes {
                let old = counter.read(index).map_err(program::pipeline_error)?;
                counter
                    .write(index, value)
                    .map_err(program::pipeline_error)?;
                counter_undo.push((kind, index, old));
            }
            Ok(())
        }
        entity::Entity::DirectCounterEntry(entry) => {
            if op != TableOp::Modify {
                return Err(EntityError::invalid(
                    "direct counter entries can only be modified",
                ));
            }
            let table_entry = entry
                .table_entry
                .as_ref()
                .ok_or_else(|| EntityError::invalid("direct counter entry without table_entry"))?;
            if !program.has_direct_counter(table_entry.table_id) {
                program.table_kind(table_entry.table_id)?;
                return Err(EntityError::invalid(format!(
                    "table {:?} has no direct counter",
                    program.table_name(table_entry.table_id)
                )));
            }
            let key = program.entry_key(table_entry)?;
            match &entry.data {
                Some(data) => {
                    check_counter_data(data)?;
                    writer.set_direct_counter(key, data)
                }
                // No data: nothing to change, but the entry must exist.
                None => program::installed(writer.tables, &key)
                    .map(|_| ())
                    .ok_or_else(|| {
                        EntityError::new(
                            Code::NotFound,
                            format!(
                                "no such entry in table {:?}",
                                program.table_name(key.table_id)
                            ),
                        )
                    }),
            }
        }
        entity::Entity::PacketReplicationEngineEntry(pre) => match &pre.r#type {
            Some(packet_replication_engine_entry::Type::CloneSessionEntry(entry)) => {
                let sessions = &mut writer.tables.clone_sessions;
                match op {
                    TableOp::Delete => {
                        sessions
                            .delete(entry.session_id)
                            .map_err(program::pipeline_error)?;
                        state.clone_sessions.remove(&entry.session_id);
                    }
                    TableOp::Insert | TableOp::Modify => {
                        let session = program::clone_session(entry)?;
                        if op == TableOp::Insert {
                            sessions.insert(session).map_err(program::pipeline_error)?;
                        } else {
                            sessions.modify(session).map_err(program::pipeline_error)?;
                        }
                        state
                            .clone_sessions
                            .insert(entry.session_id, program::canonical_clone_session(entry));
                    }
                }
                Ok(())
            }
            Some(packet_replication_engine_entry::Type::MulticastGroupEntry(_)) => {
                Err(EntityError::new(
                    Code::Unimplemented,
                    "multicast groups are not supported by this switch",
                ))
            }
            None => Err(EntityError::invalid(
                "PacketReplicationEngineEntry without a type",
            )),
        },
        other => Err(EntityError::new(
            Code::Unimplemented,
            format!("umbra.p4 has no {}", entity_kind(other)),
        )),
    }
}

fn apply_table_entry(
    program: &Program,
    writer: &mut TableWriter<'_>,
    state: &mut DeviceState,
    op: TableOp,
    entry: &TableEntry,
) -> EntityResult<()> {
    // Read-only fields have no meaning in a write (spec §9.1).
    if entry.is_const {
        return Err(EntityError::invalid(
            "is_const is read-only and cannot be written",
        ));
    }
    if entry.time_since_last_hit.is_some() {
        return Err(EntityError::invalid(
            "time_since_last_hit is read-only and cannot be written",
        ));
    }
    if entry.is_default_action {
        let kind = program.table_kind(entry.table_id)?;
        if !entry.r#match.is_empty() {
            return Err(EntityError::invalid(
                "the default entry has no match fields",
            ));
        }
        if entry.priority != 0 || entry.idle_timeout_ns != 0 {
            return Err(EntityError::invalid(
                "the default entry has no priority and no idle timeout",
            ));
        }
        if op != TableOp::Modify {
            return Err(EntityError::invalid(format!(
                "the default entry of table {:?} can only be modified (MODIFY), not inserted or deleted",
                program.table_name(entry.table_id)
            )));
        }
        let action = match &entry.action {
            Some(action) => Some(program.entry_action(entry.table_id, Some(action))?),
            None => None,
        };
        return writer.set_default(kind, action);
    }
    let key = program.entry_key(entry)?;
    if op == TableOp::Delete {
        // Only the key identifies what to delete; every other field is
        // ignored (spec §9.1).
        writer.apply(TableOp::Delete, key, None)?;
        state.entries.remove(&key);
        return Ok(());
    }
    if entry.idle_timeout_ns != 0 {
        return Err(EntityError::invalid(format!(
            "table {:?} does not support idle timeouts",
            program.table_name(entry.table_id)
        )));
    }
    if entry.meter_config.is_some() || entry.meter_counter_data.is_some() {
        return Err(EntityError::invalid(format!(
            "table {:?} has no direct meter",
            program.table_name(entry.table_id)
        )));
    }
    if let Some(data) = &entry.counter_data {
        if !program.has_direct_counter(entry.table_id) {
            return Err(EntityError::invalid(format!(
                "table {:?} has no direct counter",
                program.table_name(entry.table_id)
            )));
        }
        check_counter_data(data)?;
    }
    let action = match (&entry.action, op) {
        // MODIFY without an action changes only what it carries (counter
        // data) and keeps the installed action.
        (None, TableOp::Modify) => program::installed(writer.tables, &key)
            .map(|(action, _)| action)
            .ok_or_else(|| {
                EntityError::new(
                    Code::NotFound,
                    format!(
                        "no such entry in table {:?}",
                        program.table_name(entry.table_id)
                    ),
                )
            })?,
        _ => program.entry_action(entry.table_id, entry.action.as_ref())?,
    };
    writer.apply(op, key, Some(action))?;
    if let Some(data) = &entry.counter_data {
        writer.set_direct_counter(key, data)?;
    }
    let metadata = match (&entry.action, state.entries.get(&key)) {
        (None, Some(installed)) => installed.metadata.clone(),
        _ => entry.metadata.clone(),
    };
    state.entries.insert(
        key,
        TableEntry {
            table_id: entry.table_id,
            r#match: program.match_message(&key),
            action: Some(program.action_message(action)),
            metadata,
            ..TableEntry::default()
        },
    );
    Ok(())
}

/// Counter values are counts: a negative one is a client error.
fn check_counter_data(data: &CounterData) -> EntityResult<()> {
    if data.packet_count < 0 || data.byte_count < 0 {
        return Err(EntityError::invalid(format!(
            "counter values cannot be negative (packets {}, bytes {})",
            data.packet_count, data.byte_count
        )));
    }
    Ok(())
}

fn read_table_entries(
    program: &Program,
    pipeline: &Pipeline,
    state: &DeviceState,
    filter: &TableEntry,
    out: &mut Vec<Entity>,
) -> EntityResult<()> {
    let wrap = |entry: TableEntry| Entity {
        entity: Some(entity::Entity::TableEntry(entry)),
    };
    if filter.table_id != 0 {
        program.table_kind(filter.table_id)?;
    }
    if filter.is_default_action {
        let ids = if filter.table_id == 0 {
            program.table_ids()
        } else {
            vec![filter.table_id]
        };
        pipeline.read(|tables| {
            for id in ids {
                let kind = program.table_kind(id).expect("ids come from the program");
                out.push(wrap(TableEntry {
                    table_id: id,
                    action: Some(program.action_message(program::default_action(tables, kind))),
                    is_default_action: true,
                    ..TableEntry::default()
                }));
            }
        });
        return Ok(());
    }
    let exact = if filter.r#match.is_empty() {
        None
    } else {
        Some(program.entry_key(filter)?)
    };
    let with_counters = filter.counter_data.is_some();
    if with_counters && filter.table_id != 0 && !program.has_direct_counter(filter.table_id) {
        return Err(EntityError::invalid(format!(
            "table {:?} has no direct counter to read",
            program.table_name(filter.table_id)
        )));
    }
    // Optional filters besides the key (spec §11.1): the action and the
    // metadata, compared in canonical form.
    let action_filter = filter.action.as_ref().map(canonical_action);
    pipeline.read(|tables| {
        let selected = state.entries.iter().filter(|(key, entry)| {
            let key_matches = match exact {
                Some(wanted) => **key == wanted,
                None => filter.table_id == 0 || key.table_id == filter.table_id,
            };
            key_matches
                && action_filter
                    .as_ref()
                    .is_none_or(|wanted| entry.action.as_ref() == Some(wanted))
                && (filter.metadata.is_empty() || entry.metadata == filter.metadata)
        });
        for (key, entry) in selected {
            let mut entry = entry.clone();
            if with_counters && program.has_direct_counter(key.table_id) {
                entry.counter_data = program::installed(tables, key).and_then(|(_, c)| c);
            }
            out.push(wrap(entry));
        }
    });
    // A full key that is not installed reads as nothing ("at most one
    // entry will be returned"), not as an error.
    Ok(())
}

/// An action with its params in id order and canonical bytestrings, the
/// form installed entries are kept in.
fn canonical_action(action: &p4::TableAction) -> p4::TableAction {
    let mut action = action.clone();
    if let Some(p4::table_action::Type::Action(a)) = &mut action.r#type {
        for param in &mut a.params {
            if let Ok(value) = crate::codec::decode(&param.value, 64) {
                param.value = crate::codec::encode(value);
            }
        }
        a.params.sort_by_key(|p| p.param_id);
    }
    action
}

fn read_counters(
    program: &Program,
    pipeline: &Pipeline,
    filter: &CounterEntry,
    out: &mut Vec<Entity>,
) -> EntityResult<()> {
    let ids = if filter.counter_id == 0 {
        program.counter_ids()
    } else {
        program.counter(filter.counter_id)?;
        vec![filter.counter_id]
    };
    for id in ids {
        let counter = counter_of(pipeline, program.counter(id)?);
        let indexes: Vec<u64> = match &filter.index {
            Some(Index { index }) => {
                let index = u64::try_from(*index).map_err(|_| {
                    EntityError::new(
                        Code::OutOfRange,
                        format!("counter index {index} is negative"),
                    )
                })?;
                vec![index]
            }
            None => (0..PORT_COUNT as u64).collect(),
        };
        for index in indexes {
            let data = counter.read(index).map_err(program::pipeline_error)?;
            out.push(Entity {
                entity: Some(entity::Entity::CounterEntry(CounterEntry {
                    counter_id: id,
                    index: Some(Index {
                        index: index as i64,
                    }),
                    data: Some(program::counter_data(data)),
                })),
            });
        }
    }
    Ok(())
}

fn read_direct_counters(
    program: &Program,
    pipeline: &Pipeline,
    state: &DeviceState,
    filter: &DirectCounterEntry,
    out: &mut Vec<Entity>,
) -> EntityResult<()> {
    let table_filter = filter.table_entry.clone().unwrap_or_default();
    if table_filter.table_id != 0 && !program.has_direct_counter(table_filter.table_id) {
        program.table_kind(table_filter.table_id)?;
        return Err(EntityError::invalid(format!(
            "table {:?} has no direct counter",
            program.table_name(table_filter.table_id)
        )));
    }
    let exact = if table_filter.r#match.is_empty() {
        None
    } else {
        let key = program.entry_key(&table_filter)?;
        if !state.entries.contains_key(&key) {
            return Err(EntityError::new(
                Code::NotFound,
                format!(
                    "no such entry in table {:?}",
                    program.table_name(key.table_id)
                ),
            ));
        }
        Some(key)
    };
    pipeline.read(|tables| {
        for (key, entry) in &state.entries {
            let selected = match exact {
                Some(wanted) => *key == wanted,
                None => table_filter.table_id == 0 || key.table_id == table_filter.table_id,
            };
            if !selected || !program.has_direct_counter(key.table_id) {
                continue;
            }
            let data = program::installed(tables, key).and_then(|(_, c)| c);
            out.push(Entity {
                entity: Some(entity::Entity::DirectCounterEntry(DirectCounterEntry {
                    table_entry: Some(TableEntry {
                        table_id: entry.table_id,
                        r#match: entry.r#match.clone(),
                        ..TableEntry::default()
                    }),
                    data,
                })),
            });
        }
    });
    Ok(())
}

fn clone_session_entity(entry: &CloneSessionEntry) -> Entity {
    Entity {
        entity: Some(entity::Entity::PacketReplicationEngineEntry(
            PacketReplicationEngineEntry {
                r#type: Some(packet_replication_engine_entry::Type::CloneSessionEntry(
                    entry.clone(),
                )),
            },
        )),
    }
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl p4::p4_runtime_server::P4Runtime for P4RuntimeService {
    async fn write(
        &self,
        request: Request<WriteRequest>,
    ) -> Result<Response<WriteResponse>, Status> {
        self.write_batch(request.into_inner()).map(Response::new)
    }

    type ReadStream = ResponseStream<ReadResponse>;

    async fn read(
        &self,
        request: Request<ReadRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        let (entities, failure) = self.read_entities(&request.into_inner())?;
        let mut chunks: Vec<Result<ReadResponse, Status>> = entities
            .chunks(READ_CHUNK)
            .map(|chunk| {
                Ok(ReadResponse {
                    entities: chunk.to_vec(),
                })
            })
            .collect();
        if chunks.is_empty() && failure.is_none() {
            chunks.push(Ok(ReadResponse::default()));
        }
        chunks.extend(failure.map(Err));
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }

    async fn set_forwarding_pipeline_config(
        &self,
        request: Request<SetForwardingPipelineConfigRequest>,
    ) -> Result<Response<SetForwardingPipelineConfigResponse>, Status> {
        self.set_pipeline(request.into_inner())?;
        Ok(Response::new(SetForwardingPipelineConfigResponse {}))
    }

    async fn get_forwarding_pipeline_config(
        &self,
        request: Request<GetForwardingPipelineConfigRequest>,
    ) -> Result<Response<GetForwardingPipelineConfigResponse>, Status> {
        use get_forwarding_pipeline_config_request::ResponseType;
        let request = request.into_inner();
        self.check_device(request.device_id)?;
        let response_type = ResponseType::try_from(request.response_type).map_err(|_| {
            Status::invalid_argument(format!("unknown response type {}", request.response_type))
        })?;
        let state = lock(&self.inner.state);
        let Some(committed) = state.committed.as_ref() else {
            // No pipeline yet: an answer without a config (spec §14.2).
            return Ok(Response::new(GetForwardingPipelineConfigResponse {
                config: None,
            }));
        };
        let full = &committed.config;
        let config = match response_type {
            ResponseType::All => full.clone(),
            ResponseType::CookieOnly => ForwardingPipelineConfig {
                cookie: full.cookie,
                ..ForwardingPipelineConfig::default()
            },
            ResponseType::P4infoAndCookie => ForwardingPipelineConfig {
                p4info: full.p4info.clone(),
                cookie: full.cookie,
                ..ForwardingPipelineConfig::default()
            },
            ResponseType::DeviceConfigAndCookie => ForwardingPipelineConfig {
                p4_device_config: full.p4_device_config.clone(),
                cookie: full.cookie,
                ..ForwardingPipelineConfig::default()
            },
        };
        Ok(Response::new(GetForwardingPipelineConfigResponse {
            config: Some(config),
        }))
    }

    type StreamChannelStream = ResponseStream<StreamMessageResponse>;

    async fn stream_channel(
        &self,
        request: Request<Streaming<StreamMessageRequest>>,
    ) -> Result<Response<Self::StreamChannelStream>, Status> {
        let mut inbound = request.into_inner();
        let (messages, receiver) = mpsc::channel(STREAM_QUEUE);
        let (mastership, mastership_rx) = watch::channel(None);
        let sender = arbitration::ResponseSender {
            mastership,
            messages,
        };
        let stream = self.inner.next_stream.fetch_add(1, Ordering::Relaxed);
        let service = self.clone();
        let shutdown = self.inner.shutdown.clone();
        self.inner.tasks.spawn(async move {
            loop {
                let message = tokio::select! {
                    () = shutdown.cancelled() => {
                        let _ = sender
                            .messages
                            .try_send(Err(Status::unavailable("the switch is shutting down")));
                        break;
                    }
                    () = sender.messages.closed() => break,
                    message = inbound.message() => message,
                };
                match message {
                    Ok(Some(message)) => {
                        if let Err(status) = service.handle_stream_message(stream, message, &sender)
                        {
                            tracing::debug!(stream, %status, "closing StreamChannel");
                            let _ = sender.messages.send(Err(status)).await;
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(status) => {
                        // Undecodable bytes or a broken connection: this
                        // stream ends (telling the client why, if it still
                        // listens), the switch carries on.
                        tracing::debug!(stream, %status, "StreamChannel read failed");
                        let _ = sender
                            .messages
                            .try_send(Err(Status::invalid_argument(format!(
                                "StreamChannel message could not be read: {}",
                                status.message()
                            ))));
                        break;
                    }
                }
            }
            lock(&service.inner.arbitration).disconnect(stream);
        });
        let mastership = WatchStream::from_changes(mastership_rx)
            .filter_map(|update| update.map(|u| Ok(arbitration::arbitration_response(u))));
        let responses = mastership.merge(ReceiverStream::new(receiver));
        Ok(Response::new(Box::pin(responses)))
    }

    async fn capabilities(
        &self,
        _request: Request<CapabilitiesRequest>,
    ) -> Result<Response<CapabilitiesResponse>, Status> {
        Ok(Response::new(CapabilitiesResponse {
            p4runtime_api_version: P4RUNTIME_API_VERSION.into(),
            ..CapabilitiesResponse::default()
        }))
    }
}
