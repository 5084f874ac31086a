//! Shared plumbing of the tests: a switch on `127.0.0.1:0`, controllers on
//! StreamChannel, P4Info look-ups by name, entity builders, and decoding of
//! the per-update `p4.v1.Error`s a failed Write carries.

use std::net::SocketAddr;
use std::time::Duration;

use prost::Message as _;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};
use umbra_p4info::{ActionInfo, P4Info, TableInfo, umbra_p4info, umbra_p4info_index};
use umbra_proto::google::rpc;
use umbra_proto::p4::v1::{
    self as p4, Action, CloneSessionEntry, CounterData, CounterEntry, DirectCounterEntry, Entity,
    FieldMatch, ForwardingPipelineConfig, MasterArbitrationUpdate, PacketReplicationEngineEntry,
    ReadRequest, Replica, Role, SetForwardingPipelineConfigRequest, StreamMessageRequest,
    StreamMessageResponse, TableAction, TableEntry, Uint128, Update, WriteRequest, action, entity,
    field_match, forwarding_pipeline_config, p4_runtime_client::P4RuntimeClient,
    packet_replication_engine_entry, replica, set_forwarding_pipeline_config_request,
    stream_message_request, stream_message_response, table_action, update, write_request,
};

/// The device id every test switch runs as (not the default 1, so that a
/// client relying on the default would be caught).
pub const DEVICE_ID: u64 = 7;

/// Election id of the primary that [`Session::start`] sets up.
pub const PRIMARY_ID: u128 = 1000;

/// How long any single wait on the switch may take before the test fails
/// instead of hanging. Nothing waits for time to pass: every wait ends on a
/// message or a closed stream.
pub const WAIT: Duration = Duration::from_secs(10);

/// The generated P4Runtime client over a tonic channel.
pub type Client = P4RuntimeClient<Channel>;

/// A switch serving on a fresh `127.0.0.1:0` listener, stopped on drop.
pub struct Switch {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<umbra_switch::Result<()>>,
}

impl Switch {
    /// Starts a switch for [`DEVICE_ID`] without a dataplane.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let shutdown = CancellationToken::new();
        let options = umbra_switch::SwitchOptions {
            device_id: DEVICE_ID,
            ..Default::default()
        };
        let task = tokio::spawn(umbra_switch::serve(listener, options, shutdown.clone()));
        Self {
            addr,
            shutdown,
            task,
        }
    }

    /// The address the switch serves on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A new client with its own HTTP/2 connection.
    pub async fn client(&self) -> Client {
        P4RuntimeClient::connect(format!("http://{}", self.addr))
            .await
            .expect("connect to the switch")
    }

    /// Fails the test if the server task has ended (it only ends on
    /// shutdown, which the test has not asked for).
    pub fn assert_serving(&self) {
        assert!(!self.task.is_finished(), "the switch stopped serving");
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A switch with a primary controller ([`PRIMARY_ID`], default role) and
/// umbra.p4's pipeline committed: the starting point of most tests.
pub struct Session {
    /// The switch.
    pub switch: Switch,
    /// A client of the switch (the primary's connection).
    pub client: Client,
    /// The primary's StreamChannel; dropping it ends the primaryship.
    pub primary: Controller,
}

impl Session {
    /// Starts a switch, becomes primary and commits umbra.p4's P4Info.
    pub async fn start() -> Self {
        let switch = Switch::start().await;
        let mut client = switch.client().await;
        let mut primary = Controller::open(&mut client).await;
        let update = primary.arbitrate(Some(PRIMARY_ID), "").await;
        assert_eq!(arbitration_status(&update), (Code::Ok, Some(PRIMARY_ID)));
        set_pipeline(
            &mut client,
            set_forwarding_pipeline_config_request::Action::VerifyAndCommit,
            Some(config(umbra_p4info().clone(), 1)),
        )
        .await
        .expect("commit umbra.p4");
        Self {
            switch,
            client,
            primary,
        }
    }

    /// Writes `updates` as the primary with CONTINUE_ON_ERROR.
    pub async fn write(&mut self, updates: Vec<Update>) -> Result<(), Status> {
        write(
            &mut self.client,
            updates,
            write_request::Atomicity::ContinueOnError,
        )
        .await
    }

    /// Writes `updates` as the primary and fails the test unless all succeed.
    pub async fn write_ok(&mut self, updates: Vec<Update>) {
        if let Err(status) = self.write(updates).await {
            panic!("write failed: {}", describe(&status));
        }
    }

    /// Reads `entities` and fails the test on an error status.
    pub async fn read_ok(&mut self, entities: Vec<Entity>) -> Vec<Entity> {
        match read(&mut self.client, entities).await {
            Ok(found) => found,
            Err(status) => panic!("read failed: {}", describe(&status)),
        }
    }

    /// Every installed (non-default) table entry, without counters.
    pub async fn table_entries(&mut self) -> Vec<TableEntry> {
        let found = self
            .read_ok(vec![table_entry_entity(TableEntry::default())])
            .await;
        found.into_iter().map(into_table_entry).collect()
    }
}

/// A controller's StreamChannel.
pub struct Controller {
    tx: mpsc::Sender<StreamMessageRequest>,
    rx: Streaming<StreamMessageResponse>,
}

impl Controller {
    /// Opens a StreamChannel on `client`'s connection.
    pub async fn open(client: &mut Client) -> Self {
        let (tx, rx) = mpsc::channel(64);
        let response = tokio::time::timeout(WAIT, client.stream_channel(ReceiverStream::new(rx)))
            .await
            .expect("StreamChannel opens in time")
            .expect("StreamChannel opens");
        Self {
            tx,
            rx: response.into_inner(),
        }
    }

    /// Sends one message on the stream.
    pub async fn send(&self, message: StreamMessageRequest) {
        self.tx.send(message).await.expect("stream request queue");
    }

    /// Sends a MasterArbitrationUpdate for [`DEVICE_ID`] and `role`.
    pub async fn send_arbitration(&self, device_id: u64, election_id: Option<u128>, role: &str) {
        self.send(arbitration_request(device_id, election_id, role))
            .await;
    }

    /// Arbitrates and returns the switch's answer.
    pub async fn arbitrate(
        &mut self,
        election_id: Option<u128>,
        role: &str,
    ) -> MasterArbitrationUpdate {
        self.send_arbitration(DEVICE_ID, election_id, role).await;
        self.next_arbitration().await
    }

    /// The next message from the switch; fails the test if the stream ends,
    /// errs or stays silent for [`WAIT`].
    pub async fn next(&mut self) -> StreamMessageResponse {
        match tokio::time::timeout(WAIT, self.rx.message()).await {
            Ok(Ok(Some(message))) => message,
            Ok(Ok(None)) => panic!("the switch closed the StreamChannel"),
            Ok(Err(status)) => panic!("the StreamChannel failed: {}", describe(&status)),
            Err(_) => panic!("no message from the switch within {WAIT:?}"),
        }
    }

    /// The next message, which must be an arbitration update.
    pub async fn next_arbitration(&mut self) -> MasterArbitrationUpdate {
        match self.next().await.update {
            Some(stream_message_response::Update::Arbitration(update)) => update,
            other => panic!("expected an arbitration update, got {other:?}"),
        }
    }

    /// The next message, which must be a stream error.
    pub async fn next_error(&mut self) -> p4::StreamError {
        match self.next().await.update {
            Some(stream_message_response::Update::Error(error)) => error,
            other => panic!("expected a stream error, got {other:?}"),
        }
    }

    /// Waits for the switch to terminate the stream with an error status and
    /// returns it.
    pub async fn closed_with_error(&mut self) -> Status {
        match tokio::time::timeout(WAIT, self.rx.message()).await {
            Ok(Ok(Some(message))) => {
                panic!("expected the stream to be terminated, got {message:?}")
            }
            Ok(Ok(None)) => panic!("the stream was closed with OK, expected an error"),
            Ok(Err(status)) => status,
            Err(_) => panic!("the stream was not terminated within {WAIT:?}"),
        }
    }
}

/// A MasterArbitrationUpdate request.
pub fn arbitration_request(
    device_id: u64,
    election_id: Option<u128>,
    role: &str,
) -> StreamMessageRequest {
    StreamMessageRequest {
        update: Some(stream_message_request::Update::Arbitration(
            MasterArbitrationUpdate {
                device_id,
                role: (!role.is_empty()).then(|| Role {
                    name: role.to_owned(),
                    ..Role::default()
                }),
                election_id: election_id.map(uint128),
                status: None,
            },
        )),
    }
}

/// The wire form of an election id.
pub fn uint128(id: u128) -> Uint128 {
    Uint128 {
        high: (id >> 64) as u64,
        low: id as u64,
    }
}

/// The status code and election id of an arbitration update.
pub fn arbitration_status(update: &MasterArbitrationUpdate) -> (Code, Option<u128>) {
    let code = Code::from(update.status.as_ref().expect("status is set").code);
    let id = update
        .election_id
        .as_ref()
        .map(|id| (u128::from(id.high) << 64) | u128::from(id.low));
    (code, id)
}

/// A status with its code and message, for failure output.
pub fn describe(status: &Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

// ------------------------------------------------------------------ P4Info --

/// A table of umbra.p4 by (short or full) name.
pub fn table(name: &str) -> &'static TableInfo {
    umbra_p4info_index()
        .table(name)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// An action of umbra.p4 by (short or full) name.
pub fn action_info(name: &str) -> &'static ActionInfo {
    umbra_p4info_index()
        .action(name)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The id of a table's match field.
pub fn field_id(table_name: &str, field: &str) -> u32 {
    table(table_name)
        .match_field(field)
        .unwrap_or_else(|e| panic!("{e}"))
        .id
}

/// The id of an action's parameter.
pub fn param_id(action_name: &str, param: &str) -> u32 {
    action_info(action_name)
        .param(param)
        .unwrap_or_else(|e| panic!("{e}"))
        .id
}

/// The id of an indirect counter.
pub fn counter_id(name: &str) -> u32 {
    umbra_p4info_index()
        .counter(name)
        .unwrap_or_else(|e| panic!("{e}"))
        .id
}

/// The canonical bytestring of `value` (spec "Bytestrings": shortest form).
pub fn bytes(value: u64) -> Vec<u8> {
    let all = value.to_be_bytes();
    let first = all.iter().position(|b| *b != 0).unwrap_or(7);
    all[first..].to_vec()
}

/// A ForwardingPipelineConfig with `p4info` and a cookie.
pub fn config(p4info: P4Info, cookie: u64) -> ForwardingPipelineConfig {
    ForwardingPipelineConfig {
        p4info: Some(p4info),
        p4_device_config: b"umbra.p4 device config".to_vec(),
        cookie: Some(forwarding_pipeline_config::Cookie { cookie }),
    }
}

/// SetForwardingPipelineConfig as the primary of the default role.
pub async fn set_pipeline(
    client: &mut Client,
    action: set_forwarding_pipeline_config_request::Action,
    config: Option<ForwardingPipelineConfig>,
) -> Result<(), Status> {
    client
        .set_forwarding_pipeline_config(SetForwardingPipelineConfigRequest {
            device_id: DEVICE_ID,
            election_id: Some(uint128(PRIMARY_ID)),
            action: action.into(),
            config,
            ..Default::default()
        })
        .await
        .map(drop)
}

// ---------------------------------------------------------------- entities --

/// An exact match on the field `field` of `table_name`.
pub fn exact(table_name: &str, field: &str, value: Vec<u8>) -> FieldMatch {
    exact_id(field_id(table_name, field), value)
}

/// An exact match on a field id.
pub fn exact_id(field_id: u32, value: Vec<u8>) -> FieldMatch {
    FieldMatch {
        field_id,
        field_match_type: Some(field_match::FieldMatchType::Exact(field_match::Exact {
            value,
        })),
    }
}

/// A direct action call with named parameters.
pub fn call(action_name: &str, params: &[(&str, Vec<u8>)]) -> TableAction {
    let params = params
        .iter()
        .map(|(name, value)| action::Param {
            param_id: param_id(action_name, name),
            value: value.clone(),
        })
        .collect();
    TableAction {
        r#type: Some(table_action::Type::Action(Action {
            action_id: action_info(action_name).id,
            params,
        })),
    }
}

/// A table entry of `table_name` with the given match and action.
pub fn entry(
    table_name: &str,
    r#match: Vec<FieldMatch>,
    action: Option<TableAction>,
) -> TableEntry {
    TableEntry {
        table_id: table(table_name).id,
        r#match,
        action,
        ..TableEntry::default()
    }
}

/// `port_classify[ingress_port = port] -> set_service(service, direction)`.
pub fn classify(port: u64, service: u64, direction: u64) -> TableEntry {
    entry(
        "port_classify",
        vec![exact("port_classify", "ingress_port", bytes(port))],
        Some(call(
            "set_service",
            &[
                ("service_id", bytes(service)),
                ("direction", bytes(direction)),
            ],
        )),
    )
}

/// `service_selector[service_id = service] -> set_active_device(device)`.
pub fn select(service: u64, device: u64) -> TableEntry {
    entry(
        "service_selector",
        vec![exact("service_selector", "service_id", bytes(service))],
        Some(call("set_active_device", &[("device", bytes(device))])),
    )
}

/// `device_portmap[device, direction] -> steer_to_port(port)`.
pub fn steer(device: u64, direction: u64, port: u64) -> TableEntry {
    entry(
        "device_portmap",
        vec![
            exact("device_portmap", "device", bytes(device)),
            exact("device_portmap", "direction", bytes(direction)),
        ],
        Some(call("steer_to_port", &[("port", bytes(port))])),
    )
}

/// The default entry of `table_name` with `action` (None: reset).
pub fn default_entry(table_name: &str, action: Option<TableAction>) -> TableEntry {
    TableEntry {
        table_id: table(table_name).id,
        action,
        is_default_action: true,
        ..TableEntry::default()
    }
}

/// A clone session with replicas given as (port, instance).
pub fn clone_session(session_id: u32, replicas: &[(u64, u32)]) -> CloneSessionEntry {
    CloneSessionEntry {
        session_id,
        replicas: replicas
            .iter()
            .map(|(port, instance)| Replica {
                instance: *instance,
                backup_replicas: Vec::new(),
                port_kind: Some(replica::PortKind::Port(bytes(*port))),
            })
            .collect(),
        class_of_service: 0,
        packet_length_bytes: 0,
    }
}

/// A counter value.
pub fn counts(packets: i64, bytes: i64) -> CounterData {
    CounterData {
        byte_count: bytes,
        packet_count: packets,
    }
}

/// Wraps a table entry as an Entity.
pub fn table_entry_entity(entry: TableEntry) -> Entity {
    Entity {
        entity: Some(entity::Entity::TableEntry(entry)),
    }
}

/// Wraps a counter entry as an Entity.
pub fn counter_entity(entry: CounterEntry) -> Entity {
    Entity {
        entity: Some(entity::Entity::CounterEntry(entry)),
    }
}

/// Wraps a direct counter entry as an Entity.
pub fn direct_counter_entity(entry: DirectCounterEntry) -> Entity {
    Entity {
        entity: Some(entity::Entity::DirectCounterEntry(entry)),
    }
}

/// Wraps a clone session as an Entity.
pub fn clone_session_entity(entry: CloneSessionEntry) -> Entity {
    Entity {
        entity: Some(entity::Entity::PacketReplicationEngineEntry(
            PacketReplicationEngineEntry {
                r#type: Some(packet_replication_engine_entry::Type::CloneSessionEntry(
                    entry,
                )),
            },
        )),
    }
}

/// An update of `kind` on an entity.
pub fn update(kind: update::Type, entity: Entity) -> Update {
    Update {
        r#type: kind.into(),
        entity: Some(entity),
    }
}

/// INSERT of a table entry.
pub fn insert(entry: TableEntry) -> Update {
    update(update::Type::Insert, table_entry_entity(entry))
}

/// MODIFY of a table entry.
pub fn modify(entry: TableEntry) -> Update {
    update(update::Type::Modify, table_entry_entity(entry))
}

/// DELETE of a table entry.
pub fn delete(entry: TableEntry) -> Update {
    update(update::Type::Delete, table_entry_entity(entry))
}

/// Entries in a stable order (by table and key), to compare sets of
/// entries: the spec does not order a Read's results.
pub fn sorted(mut entries: Vec<TableEntry>) -> Vec<TableEntry> {
    entries.sort_by_cached_key(|e| {
        TableEntry {
            table_id: e.table_id,
            r#match: e.r#match.clone(),
            ..TableEntry::default()
        }
        .encode_to_vec()
    });
    entries
}

/// The table entry inside an Entity read back.
pub fn into_table_entry(entity: Entity) -> TableEntry {
    match entity.entity {
        Some(entity::Entity::TableEntry(entry)) => entry,
        other => panic!("expected a table entry, got {other:?}"),
    }
}

// ------------------------------------------------------------ Write / Read --

/// A Write as the primary of the default role.
pub async fn write(
    client: &mut Client,
    updates: Vec<Update>,
    atomicity: write_request::Atomicity,
) -> Result<(), Status> {
    client
        .write(WriteRequest {
            device_id: DEVICE_ID,
            election_id: Some(uint128(PRIMARY_ID)),
            updates,
            atomicity: atomicity.into(),
            ..Default::default()
        })
        .await
        .map(drop)
}

/// A Read of `entities`, every response message collected.
pub async fn read(client: &mut Client, entities: Vec<Entity>) -> Result<Vec<Entity>, Status> {
    let mut stream = client
        .read(ReadRequest {
            device_id: DEVICE_ID,
            entities,
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut found = Vec::new();
    while let Some(response) = tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("Read answers in time")
    {
        found.extend(response?.entities);
    }
    Ok(found)
}

/// The `p4.v1.Error`s of a failed batch (Write, or Read: spec "Error
/// Reporting" of both RPCs),
/// checking the envelope the spec requires: code UNKNOWN, a
/// `google.rpc.Status` with the same code and message in
/// `grpc-status-details-bin`, and exactly `updates` errors.
pub fn batch_errors(status: &Status, updates: usize) -> Vec<p4::Error> {
    assert_eq!(
        status.code(),
        Code::Unknown,
        "a failed batch is UNKNOWN, got {}",
        describe(status)
    );
    let details = rpc::Status::decode(status.details())
        .unwrap_or_else(|e| panic!("grpc-status-details-bin is not a google.rpc.Status: {e}"));
    assert_eq!(details.code, Code::Unknown as i32, "google.rpc.Status code");
    assert_eq!(
        details.message,
        status.message(),
        "google.rpc.Status message"
    );
    assert_eq!(
        details.details.len(),
        updates,
        "one p4.v1.Error per update: {details:?}"
    );
    details
        .details
        .iter()
        .map(|any| {
            assert_eq!(any.type_url, "type.googleapis.com/p4.v1.Error");
            p4::Error::decode(any.value.as_slice()).expect("a p4.v1.Error")
        })
        .collect()
}

/// The code of every update of a Write that sent `updates` updates.
pub fn update_codes(result: &Result<(), Status>, updates: usize) -> Vec<Code> {
    match result {
        Ok(()) => vec![Code::Ok; updates],
        Err(status) => batch_errors(status, updates)
            .iter()
            .map(|e| Code::from(e.canonical_code))
            .collect(),
    }
}

/// Asserts the per-update codes of a Write, and that a successful update's
/// `p4.v1.Error` is bare (spec Write "Error Reporting": "set the code to OK
/// and omit other fields") while a failed one explains itself.
pub fn assert_codes(result: &Result<(), Status>, expected: &[Code]) {
    let codes = update_codes(result, expected.len());
    if let Err(status) = result {
        for (error, code) in batch_errors(status, expected.len()).iter().zip(expected) {
            if *code == Code::Ok {
                assert_eq!(error, &p4::Error::default(), "OK errors carry nothing");
            } else {
                assert!(
                    !error.message.is_empty(),
                    "error without message: {error:?}"
                );
            }
        }
    }
    assert_eq!(
        codes,
        expected,
        "per-update codes; status: {:?}",
        result.as_ref().err().map(describe)
    );
}
