//! P4Runtime table inserts per second over loopback gRPC, in batches, into
//! Umbra's software switch (target ≥ 100,000/s; the IPDK/Stratum reference is
//! ~107,000/s).
//!
//! Each measured iteration is one Write of `BATCH` INSERTs into
//! `device_portmap` (512 entries in `umbra.p4`); the entries are deleted again
//! outside the measured time so that every iteration inserts into the same,
//! empty table. Ids are resolved by name through the P4Info.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use umbra_proto::p4::v1::p4_runtime_client::P4RuntimeClient;
use umbra_proto::p4::v1::{
    Action, Entity, FieldMatch, ForwardingPipelineConfig, MasterArbitrationUpdate,
    SetForwardingPipelineConfigRequest, StreamMessageRequest, TableAction, TableEntry, Uint128,
    Update, WriteRequest, action, entity, field_match, set_forwarding_pipeline_config_request,
    stream_message_request, table_action, update,
};

const BATCH: usize = 500;

fn entry(index: &umbra_p4info::P4InfoIndex, device: u8, direction: u8, port: u16) -> Entity {
    let table = index.table("UmbraIngress.device_portmap").expect("table");
    let action_info = index
        .table_action("UmbraIngress.device_portmap", "UmbraIngress.steer_to_port")
        .expect("action");
    let exact = |name: &str, value: Vec<u8>| FieldMatch {
        field_id: table.match_field(name).expect("field").id,
        field_match_type: Some(field_match::FieldMatchType::Exact(field_match::Exact {
            value,
        })),
    };
    Entity {
        entity: Some(entity::Entity::TableEntry(TableEntry {
            table_id: table.id,
            r#match: vec![
                exact("device", vec![device]),
                exact("direction", vec![direction]),
            ],
            action: Some(TableAction {
                r#type: Some(table_action::Type::Action(Action {
                    action_id: action_info.id,
                    params: vec![action::Param {
                        param_id: action_info.param("port").expect("param").id,
                        value: port.to_be_bytes().to_vec(),
                    }],
                })),
            }),
            ..TableEntry::default()
        })),
    }
}

fn batch(kind: update::Type, entities: &[Entity]) -> WriteRequest {
    WriteRequest {
        device_id: 1,
        election_id: Some(Uint128 { high: 0, low: 1 }),
        updates: entities
            .iter()
            .map(|e| Update {
                r#type: kind as i32,
                entity: Some(e.clone()),
            })
            .collect(),
        ..WriteRequest::default()
    }
}

fn p4runtime_write(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let shutdown = CancellationToken::new();
    let (mut client, _stream_tx) = runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(umbra_switch::serve(
            listener,
            umbra_switch::SwitchOptions::default(),
            shutdown.clone(),
        ));
        let mut client = P4RuntimeClient::connect(format!("http://{addr}"))
            .await
            .expect("connect")
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20);
        let (stream_tx, stream_rx) = mpsc::channel(4);
        stream_tx
            .send(StreamMessageRequest {
                update: Some(stream_message_request::Update::Arbitration(
                    MasterArbitrationUpdate {
                        device_id: 1,
                        election_id: Some(Uint128 { high: 0, low: 1 }),
                        ..MasterArbitrationUpdate::default()
                    },
                )),
            })
            .await
            .expect("arbitrate");
        let mut responses = client
            .stream_channel(ReceiverStream::new(stream_rx))
            .await
            .expect("stream")
            .into_inner();
        responses.message().await.expect("arbitration answer");
        client
            .set_forwarding_pipeline_config(SetForwardingPipelineConfigRequest {
                device_id: 1,
                election_id: Some(Uint128 { high: 0, low: 1 }),
                action: set_forwarding_pipeline_config_request::Action::VerifyAndCommit as i32,
                config: Some(ForwardingPipelineConfig {
                    p4info: Some(umbra_p4info::umbra_p4info().clone()),
                    ..ForwardingPipelineConfig::default()
                }),
                ..SetForwardingPipelineConfigRequest::default()
            })
            .await
            .expect("pipeline");
        tokio::spawn(async move { while let Ok(Some(_)) = responses.message().await {} });
        (client, stream_tx)
    });

    let index = umbra_p4info::umbra_p4info_index();
    let entities: Vec<Entity> = (0..BATCH)
        .map(|i| entry(index, (i / 2) as u8, (i % 2) as u8, (i % 500) as u16))
        .collect();
    let inserts = batch(update::Type::Insert, &entities);
    let deletes = batch(update::Type::Delete, &entities);

    let mut group = c.benchmark_group("p4runtime_write");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("table_insert_batch_500", |b| {
        b.iter_custom(|iterations| {
            runtime.block_on(async {
                let mut measured = Duration::ZERO;
                for _ in 0..iterations {
                    let started = Instant::now();
                    client.write(inserts.clone()).await.expect("inserts");
                    measured += started.elapsed();
                    client.write(deletes.clone()).await.expect("deletes");
                }
                measured
            })
        });
    });
    group.finish();
    shutdown.cancel();
}

criterion_group!(benches, p4runtime_write);
criterion_main!(benches);
