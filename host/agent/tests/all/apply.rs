//! Apply: idempotence, conflict resolution by version, per-entry
//! rejections that leave the rest applied, the batch limit, and digests.

use tonic::Code;
use umbra_agent::AgentConfig;
use umbra_proto::umbra::device::v1 as pb;
use umbra_proto::umbra::device::v1::ApplyOutcome::{Applied, Rejected, Superseded, Unchanged};

use crate::support::{
    Client, Harness, conntrack, outcomes, quiet, route, snapshot, token_only, version, wire_key,
};

#[tokio::test]
async fn the_same_batch_twice_is_applied_then_unchanged_and_older_versions_lose() {
    let harness = Harness::simple().await;
    let mut client = harness.client().await;
    let v = version(42, 0, false);
    let batch = vec![
        route(100, 5, v),
        conntrack(40_001, v),
        conntrack(40_002, v),
        pb::Entry {
            version: Some(version(42, 0, true)),
            ..conntrack(40_003, v)
        },
    ];
    let first = client
        .apply(pb::ApplyRequest {
            entries: batch.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(outcomes(&first), [Applied; 4], "{first:?}");
    let second = client
        .apply(pb::ApplyRequest { entries: batch })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(outcomes(&second), [Unchanged; 4], "{second:?}");
    assert_eq!(second.revision, first.revision, "nothing recorded twice");

    // An older write of the same key loses; a newer one wins.
    let mut older = conntrack(40_001, version(42, 0, false));
    older
        .version
        .as_mut()
        .unwrap()
        .clock
        .as_mut()
        .unwrap()
        .wall_ms -= 10_000;
    let newer_delete = pb::Entry {
        version: Some(version(42, 1_000, true)),
        ..conntrack(40_002, v)
    };
    let third = client
        .apply(pb::ApplyRequest {
            entries: vec![older, newer_delete],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(outcomes(&third), [Superseded, Applied]);

    let (_, _, state) = snapshot(&mut client).await;
    assert!(state.contains_key(&wire_key(&conntrack(40_001, v))));
    assert!(
        !state.contains_key(&wire_key(&conntrack(40_002, v))),
        "deleted"
    );
    assert!(
        !state.contains_key(&wire_key(&conntrack(40_003, v))),
        "tombstone only"
    );
    assert!(state.contains_key(&wire_key(&route(100, 5, v))));
    // A version far in the future would drag the clock along: refused.
    let future = client
        .apply(pb::ApplyRequest {
            entries: vec![conntrack(40_009, version(42, 3_600_000, false))],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(outcomes(&future), [Rejected]);
    assert!(future.results[0].reason.contains("ahead"), "{future:?}");
    harness.stop().await;
}

#[tokio::test]
async fn bad_entries_are_rejected_one_by_one_and_the_rest_is_applied() {
    let harness = Harness::simple().await;
    let mut client = harness.client().await;
    let (_, _, before) = snapshot(&mut client).await;
    let v = version(42, 0, false);

    let mut malformed = conntrack(41_000, v);
    if let Some(pb::entry::Entry::Conntrack(c)) = malformed.entry.as_mut() {
        c.original.as_mut().unwrap().source = vec![198, 18, 7].into();
    }
    let unknown_table = route(77, 6, v);
    let mut bad_prefix = route(100, 7, v);
    if let Some(pb::entry::Entry::Route(r)) = bad_prefix.entry.as_mut() {
        r.destination.as_mut().unwrap().length = 16;
    }
    let mut bad_json = pb::Entry {
        version: Some(v),
        entry: Some(pb::entry::Entry::NftTable(pb::NftTable {
            family: pb::NftFamily::Inet.into(),
            name: "nat".into(),
            ruleset_json: "{not json".into(),
        })),
    };
    let response = client
        .apply(pb::ApplyRequest {
            entries: vec![
                conntrack(41_001, v),
                malformed,
                unknown_table,
                bad_prefix,
                bad_json.clone(),
                route(100, 8, v),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        outcomes(&response),
        [Applied, Rejected, Rejected, Rejected, Rejected, Applied]
    );
    let reasons: Vec<&str> = response.results.iter().map(|r| r.reason.as_str()).collect();
    assert!(reasons[1].contains("malformed address"), "{reasons:?}");
    assert!(
        reasons[2].contains("unknown routing table 77"),
        "{reasons:?}"
    );
    assert!(reasons[3].contains("host bits"), "{reasons:?}");
    assert!(reasons[4].contains("does not parse"), "{reasons:?}");

    let (_, _, after) = snapshot(&mut client).await;
    assert_eq!(
        after.len(),
        before.len() + 2,
        "exactly the two good entries"
    );
    assert!(after.contains_key(&wire_key(&conntrack(41_001, v))));
    assert!(after.contains_key(&wire_key(&route(100, 8, v))));
    for (key, entry) in &before {
        assert_eq!(after.get(key), Some(entry), "existing entries untouched");
    }
    // The device holds what the agent says.
    assert_eq!(harness.sim.session_count(), 1);

    // Corrected, the rejected table applies.
    if let Some(pb::entry::Entry::NftTable(t)) = bad_json.entry.as_mut() {
        t.ruleset_json = r#"{"nftables": []}"#.into();
    }
    let fixed = client
        .apply(pb::ApplyRequest {
            entries: vec![bad_json],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(outcomes(&fixed), [Applied]);
    harness.stop().await;
}

#[tokio::test]
async fn an_oversized_batch_is_refused_whole() {
    let harness = Harness::start(
        quiet(),
        AgentConfig {
            max_apply_batch: 10,
            ..AgentConfig::default()
        },
        token_only(),
    )
    .await;
    let mut client = harness.client().await;
    let (revision, _, before) = snapshot(&mut client).await;
    let v = version(42, 0, false);
    let entries: Vec<_> = (0..11).map(|i| conntrack(42_000 + i, v)).collect();
    let status = client
        .apply(pb::ApplyRequest {
            entries: entries.clone(),
        })
        .await
        .expect_err("too large");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("limit of 10"), "{status:?}");
    let (after_revision, _, after) = snapshot(&mut client).await;
    assert_eq!((after_revision, after.len()), (revision, before.len()));
    assert_eq!(harness.sim.session_count(), 0);
    // At the limit it goes through.
    let ok = client
        .apply(pb::ApplyRequest {
            entries: entries[..10].to_vec(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(outcomes(&ok), [Applied; 10]);
    harness.stop().await;
}

async fn digests(client: &mut Client, count: u32) -> Vec<pb::PartitionDigest> {
    client
        .digest(pb::DigestRequest {
            partition_count: count,
            partitions: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .partitions
}

#[tokio::test]
async fn digests_are_equal_for_equal_states_and_pinpoint_one_change() {
    let (a, b) = (Harness::simple().await, Harness::simple().await);
    let (mut ca, mut cb) = (a.client().await, b.client().await);
    // Both devices start with the same entries, versioned by each agent:
    // overwrite them all with one common version, and add sessions.
    let (_, _, initial) = snapshot(&mut ca).await;
    let common = version(77, 1_000, false);
    let mut entries: Vec<pb::Entry> = initial
        .into_values()
        .map(|e| pb::Entry {
            version: Some(common),
            ..e
        })
        .collect();
    entries.extend((0..500).map(|i| conntrack(43_000 + i, common)));
    for client in [&mut ca, &mut cb] {
        let r = client
            .apply(pb::ApplyRequest {
                entries: entries.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(outcomes(&r).iter().all(|o| *o == Applied), "{r:?}");
    }
    let (da, db) = (digests(&mut ca, 16).await, digests(&mut cb, 16).await);
    assert_eq!(da.len(), 16);
    assert_eq!(da.iter().map(|d| d.count).sum::<u64>(), 505);
    assert!(da.iter().all(|d| d.digest.len() == 32));
    assert_eq!(da, db, "equal states, equal digests");

    // One changed session on b: exactly its partition differs.
    let changed = conntrack(43_007, version(77, 2_000, false));
    cb.apply(pb::ApplyRequest {
        entries: vec![changed.clone()],
    })
    .await
    .unwrap();
    let db = digests(&mut cb, 16).await;
    let differing: Vec<u32> = da
        .iter()
        .zip(&db)
        .filter(|(x, y)| x != y)
        .map(|(x, _)| x.partition)
        .collect();
    assert_eq!(differing.len(), 1, "{differing:?}");
    // Asking for that partition alone gives the same answer.
    let single = cb
        .digest(pb::DigestRequest {
            partition_count: 16,
            partitions: differing.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(single.partitions, vec![db[differing[0] as usize].clone()]);
    // A snapshot of that partition: its entries and nothing else, the
    // changed session among them.
    let mut chunks = cb
        .snapshot(pb::SnapshotRequest {
            chunk_size: 3,
            partition_count: 16,
            partitions: differing.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut partial = Vec::new();
    while let Some(chunk) = chunks.message().await.unwrap() {
        partial.extend(chunk.entries);
    }
    assert_eq!(partial.len() as u64, db[differing[0] as usize].count);
    assert!(partial.contains(&changed), "{partial:?}");
    let (_, _, whole) = snapshot(&mut cb).await;
    for entry in &partial {
        assert_eq!(whole.get(&wire_key(entry)), Some(entry));
    }
    for (partition_count, partitions) in [(0, vec![3]), (16, vec![16]), (70_000, vec![])] {
        let status = cb
            .snapshot(pb::SnapshotRequest {
                chunk_size: 0,
                partition_count,
                partitions,
            })
            .await
            .expect_err("invalid");
        assert_eq!(status.code(), Code::InvalidArgument);
    }
    // Bad requests are refused whole.
    for (partition_count, partitions) in [(0, vec![]), (16, vec![16])] {
        let status = cb
            .digest(pb::DigestRequest {
                partition_count,
                partitions,
            })
            .await
            .expect_err("invalid");
        assert_eq!(status.code(), Code::InvalidArgument);
    }
    a.stop().await;
    b.stop().await;
}

/// Two versions of one key in one batch: the device reports both writes,
/// and neither report may come back as a change of the agent's own (it
/// would be re-stamped with this node's origin, outrank the primary's next
/// update and echo back in a bidirectional set-up).
#[tokio::test]
async fn the_echoes_of_two_applies_to_one_key_are_not_local_changes() {
    use std::sync::Arc;
    use umbra_agent::{Agent, Backend, SimBackend, SimConfig};

    let sim = Arc::new(SimBackend::new(SimConfig {
        session_rate: 0.0,
        ..SimConfig::default()
    }));
    let agent = Agent::new(
        AgentConfig {
            node_id: 2,
            ..AgentConfig::default()
        },
        Arc::clone(&sim) as Arc<dyn Backend>,
    )
    .unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(Arc::clone(&agent).follow_backend(stop.clone()));
    let t = umbra_agent::hlc::system_ms();
    let entry = |mark: u32, logical: u32| {
        let tuple = |a: [u8; 4], b: [u8; 4], sp: u32, dp: u32| pb::Tuple {
            source: a.to_vec().into(),
            destination: b.to_vec().into(),
            protocol: 6,
            source_port: sp,
            destination_port: dp,
            ..Default::default()
        };
        umbra_agent::wire::entry_from_wire(&pb::Entry {
            version: Some(pb::Version {
                clock: Some(pb::Hlc {
                    wall_ms: t,
                    logical,
                    node_id: 1,
                }),
                origin: 1,
                tombstone: false,
            }),
            entry: Some(pb::entry::Entry::Conntrack(pb::Conntrack {
                original: Some(tuple([198, 18, 0, 1], [198, 19, 0, 1], 1000, 80)),
                reply: Some(tuple([198, 19, 0, 1], [198, 18, 0, 1], 80, 1000)),
                mark,
                status: 0xe,
                timeout_seconds: 100,
                tcp_state: 3,
                ..Default::default()
            })),
        })
        .unwrap()
    };
    let before = agent.head_revision();
    let report = agent.apply(vec![entry(1, 0), entry(2, 1)]).unwrap();
    assert_eq!(report.revision, before + 2);
    // Let the agent take the device's reports.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(agent.head_revision(), before + 2, "an echo was recorded");
    let snapshot = agent.snapshot();
    let held = snapshot
        .entries
        .iter()
        .find(|e| matches!(e.key, umbra_agent::model::Key::Conntrack(_)))
        .unwrap();
    assert_eq!(held.version.origin, 1, "re-stamped by the agent");
    assert_eq!(held.version.clock.logical, 1);
    stop.cancel();
}
