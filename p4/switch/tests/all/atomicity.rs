//! Batch atomicity (spec "Batch Atomicity"): CONTINUE_ON_ERROR applies what
//! it can; ROLLBACK_ON_ERROR and DATAPLANE_ATOMIC apply all or nothing and
//! report the failing updates with their codes and every other one as
//! ABORTED.

use tonic::Code;
use umbra_proto::p4::v1::{
    CounterEntry, DirectCounterEntry, Entity, Index, TableEntry, entity, update, write_request,
};

use crate::harness::{
    Session, assert_codes, call, classify, clone_session, clone_session_entity, counter_entity,
    counter_id, counts, default_entry, direct_counter_entity, insert, modify, select, sorted,
    write,
};

/// Everything a batch below can touch, as read back.
async fn snapshot(session: &mut Session) -> Vec<Entity> {
    session
        .read_ok(vec![
            crate::harness::table_entry_entity(TableEntry {
                counter_data: Some(counts(0, 0)),
                ..Default::default()
            }),
            crate::harness::table_entry_entity(TableEntry {
                is_default_action: true,
                ..Default::default()
            }),
            clone_session_entity(clone_session(0, &[])),
            counter_entity(CounterEntry {
                counter_id: counter_id("port_rx"),
                index: Some(Index { index: 5 }),
                data: None,
            }),
        ])
        .await
}

async fn prepared() -> Session {
    let mut session = Session::start().await;
    session
        .write_ok(vec![
            insert(select(1, 1)),
            insert(TableEntry {
                counter_data: Some(counts(1, 100)),
                ..classify(2, 20, 0)
            }),
            crate::harness::update(
                update::Type::Insert,
                clone_session_entity(clone_session(3, &[(4, 0)])),
            ),
        ])
        .await;
    session
}

/// A batch touching every kind of state, with the updates at `bad` replaced
/// by ones that fail (MODIFY of a missing entry: NOT_FOUND).
fn batch(bad: &[usize]) -> Vec<umbra_proto::p4::v1::Update> {
    let updates = vec![
        insert(select(10, 2)),
        modify(select(1, 7)),
        crate::harness::delete(classify(2, 0, 0)),
        modify(default_entry(
            "service_selector",
            Some(call("set_active_device", &[("device", vec![9])])),
        )),
        crate::harness::update(
            update::Type::Insert,
            clone_session_entity(clone_session(6, &[(8, 1)])),
        ),
        crate::harness::update(
            update::Type::Modify,
            clone_session_entity(clone_session(3, &[(5, 0)])),
        ),
        insert(classify(11, 1, 1)),
    ];
    updates
        .into_iter()
        .enumerate()
        .map(|(i, u)| {
            if bad.contains(&i) {
                modify(select(200 + i as u64, 1))
            } else {
                u
            }
        })
        .collect()
}

#[tokio::test]
async fn continue_on_error_applies_the_good_updates() {
    let mut session = prepared().await;
    let result = write(
        &mut session.client,
        batch(&[1, 4]),
        write_request::Atomicity::ContinueOnError,
    )
    .await;
    let mut expected = vec![Code::Ok; 7];
    expected[1] = Code::NotFound;
    expected[4] = Code::NotFound;
    assert_codes(&result, &expected);

    assert_eq!(
        sorted(session.table_entries().await),
        sorted(vec![select(1, 1), select(10, 2), classify(11, 1, 1)])
    );
}

#[tokio::test]
async fn all_or_nothing_modes_apply_nothing_when_one_update_fails() {
    for atomicity in [
        write_request::Atomicity::RollbackOnError,
        write_request::Atomicity::DataplaneAtomic,
    ] {
        for bad in [&[0][..], &[6], &[2, 5]] {
            let mut session = prepared().await;
            let before = snapshot(&mut session).await;
            let result = write(&mut session.client, batch(bad), atomicity).await;
            let expected: Vec<Code> = (0..7)
                .map(|i| {
                    if bad.contains(&i) {
                        Code::NotFound
                    } else {
                        Code::Aborted
                    }
                })
                .collect();
            assert_codes(&result, &expected);
            assert_eq!(
                snapshot(&mut session).await,
                before,
                "{atomicity:?} with {bad:?} failing left the state unchanged"
            );
        }
    }
}

#[tokio::test]
async fn all_or_nothing_modes_apply_everything_when_all_succeed() {
    for atomicity in [
        write_request::Atomicity::RollbackOnError,
        write_request::Atomicity::DataplaneAtomic,
    ] {
        let mut session = prepared().await;
        write(&mut session.client, batch(&[]), atomicity)
            .await
            .unwrap_or_else(|s| panic!("{atomicity:?}: {}", crate::harness::describe(&s)));
        assert_eq!(session.table_entries().await.len(), 3, "{atomicity:?}");
        let sessions = session
            .read_ok(vec![clone_session_entity(clone_session(0, &[]))])
            .await;
        assert_eq!(sessions.len(), 2, "{atomicity:?}");
    }
}

/// Counters are state too: a rolled-back batch must not leave a counter
/// written (spec "Batch Atomicity": "roll back the operations such that both
/// software and data plane state is consistent with the state before the
/// batch was attempted").
#[tokio::test]
async fn rollback_restores_counter_writes() {
    for atomicity in [
        write_request::Atomicity::RollbackOnError,
        write_request::Atomicity::DataplaneAtomic,
    ] {
        let mut session = prepared().await;
        let before = snapshot(&mut session).await;
        let result = write(
            &mut session.client,
            vec![
                crate::harness::update(
                    update::Type::Modify,
                    counter_entity(CounterEntry {
                        counter_id: counter_id("port_rx"),
                        index: Some(Index { index: 5 }),
                        data: Some(counts(100, 6400)),
                    }),
                ),
                crate::harness::update(
                    update::Type::Modify,
                    direct_counter_entity(DirectCounterEntry {
                        table_entry: Some(classify(2, 0, 0)),
                        data: Some(counts(50, 50)),
                    }),
                ),
                modify(select(99, 1)),
            ],
            atomicity,
        )
        .await;
        assert_codes(&result, &[Code::Aborted, Code::Aborted, Code::NotFound]);
        let after = snapshot(&mut session).await;
        let port_rx_5 = |entities: &[Entity]| {
            entities.iter().find_map(|e| match &e.entity {
                Some(entity::Entity::CounterEntry(c)) => c.data,
                _ => None,
            })
        };
        assert_eq!(
            port_rx_5(&after),
            port_rx_5(&before),
            "{atomicity:?}: port_rx[5] was rolled back"
        );
        assert_eq!(after, before, "{atomicity:?}");
    }
}
