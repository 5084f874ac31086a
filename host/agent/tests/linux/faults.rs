//! Faults between the primary's and the shadow's agents while conntrack
//! entries stream through the real replicator: either agent killed and
//! restarted, the primary's agent cut off and served again. Afterwards
//! a full compare of both kernels' conntrack tables (and of the agents'
//! views) finds them identical: nothing lost, nothing duplicated, nothing
//! left behind that the primary deleted.

use std::collections::BTreeMap;
use std::net::IpAddr;

use umbra_agent::Agent;
use umbra_agent::backend::linux::{conntrack_from_netlink, same_conntrack};
use umbra_agent::model::{ConntrackKey, ConntrackValue, Key, Value};
use umbra_netlink::{ConntrackEntry, ConntrackTuple, L4Tuple, NetNs};

use crate::lab::{Agents, FirewallLab, Replication, run_in, wait_until};

/// The source of every entry these tests make.
const SOURCE: [u8; 4] = [198, 18, 9, 7];

/// Entry `i` of the stream: a UDP flow from [`SOURCE`].
fn flow(i: u16) -> ConntrackEntry {
    ConntrackEntry::new(
        ConntrackTuple {
            src: SOURCE.into(),
            dst: [198, 19, 9, 1].into(),
            protocol: 17,
            l4: L4Tuple::Ports {
                src: 20_000 + i,
                dst: 53,
            },
        },
        600,
    )
}

/// Creates flows `range` in the primary's kernel, a few at a time (as
/// traffic would), and deletes every tenth again.
fn stream(ns: &NetNs, range: std::ops::Range<u16>) {
    let flows: Vec<ConntrackEntry> = range.map(flow).collect();
    for chunk in flows.chunks(50) {
        let outcome = ns.conntrack().create_batch(chunk).expect("create flows");
        assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    for gone in flows.iter().step_by(10) {
        ns.conntrack()
            .delete(&gone.original, gone.zone)
            .expect("delete a flow");
    }
}

/// The test's flows in a kernel's conntrack table, as the model sees them.
fn kernel_flows(ns: &NetNs) -> BTreeMap<ConntrackKey, ConntrackValue> {
    let mut out = BTreeMap::new();
    for entry in ns.conntrack().dump().expect("dump") {
        if entry.original.src == IpAddr::from(SOURCE) {
            let (key, value) = conntrack_from_netlink(&entry);
            assert!(out.insert(key, value).is_none(), "{key:?} listed twice");
        }
    }
    out
}

/// The test's flows an agent holds.
fn agent_flows(agent: &Agent) -> BTreeMap<ConntrackKey, ConntrackValue> {
    agent
        .snapshot()
        .entries
        .into_iter()
        .filter_map(|e| match (e.key, e.value) {
            (Key::Conntrack(k), Some(Value::Conntrack(v)))
                if k.original.source == IpAddr::from(SOURCE) =>
            {
                Some((k, v))
            }
            _ => None,
        })
        .collect()
}

/// Whether two tables hold the same keys with the same connection state.
fn same(
    a: &BTreeMap<ConntrackKey, ConntrackValue>,
    b: &BTreeMap<ConntrackKey, ConntrackValue>,
) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, va), (kb, vb))| ka == kb && same_conntrack(va, vb))
}

/// The full compare: both kernels and both agents hold exactly the
/// primary's flows, which are `expected` in number.
fn assert_identical(lab: &FirewallLab, agents: &Agents, expected: usize) {
    let primary = NetNs::named(&lab.primary).expect("primary");
    let shadow = NetNs::named(&lab.shadow).expect("shadow");
    let converged = wait_until(|| {
        let p = kernel_flows(&primary);
        p.len() == expected
            && same(&p, &kernel_flows(&shadow))
            && same(&p, &agent_flows(&agents.primary))
            && same(&p, &agent_flows(&agents.shadow))
    });
    let (p, s) = (kernel_flows(&primary), kernel_flows(&shadow));
    let missing: Vec<_> = p.keys().filter(|k| !s.contains_key(k)).collect();
    let extra: Vec<_> = s.keys().filter(|k| !p.contains_key(k)).collect();
    assert!(
        converged,
        "primary kernel {} (expected {expected}), shadow kernel {}, primary agent {}, \
         shadow agent {}; missing on the shadow {missing:?}; extra on the shadow {extra:?}",
        p.len(),
        s.len(),
        agent_flows(&agents.primary).len(),
        agent_flows(&agents.shadow).len(),
    );
    // The kernel's own count agrees: nothing duplicated anywhere.
    let count = |ns: &str| {
        run_in(ns, &["conntrack", "-L", "-s", "198.18.9.7"])
            .lines()
            .filter(|l| l.contains("src=198.18.9.7"))
            .count()
    };
    assert_eq!(count(&lab.primary), expected);
    assert_eq!(count(&lab.shadow), expected);
}

/// Flows left after [`stream`] over `n` flows.
fn surviving(n: usize) -> usize {
    n - n.div_ceil(10)
}

#[test]
fn the_shadow_agent_killed_mid_stream_and_restarted_converges() {
    let lab = FirewallLab::build();
    let mut agents = Agents::start(&lab);
    let replication = Replication::start(&agents);
    let primary = NetNs::named(&lab.primary).expect("primary");

    stream(&primary, 0..500);
    // Killed mid-stream: the primary goes on changing while the shadow's
    // agent is gone, then a new agent (new epoch, state read from the
    // kernel) comes up on the same address.
    agents.restart_shadow(&lab, || stream(&primary, 500..1000));
    stream(&primary, 1000..1500);
    replication.drain(&agents);
    assert_identical(&lab, &agents, 3 * surviving(500));
    assert_eq!(
        replication.rejected(),
        0,
        "{:#?}",
        replication.handle.status()
    );
    assert!(
        replication.handle.status().forward.resnapshots >= 1,
        "the new shadow epoch took a fresh snapshot: {:#?}",
        replication.handle.status()
    );
}

#[test]
fn a_cut_link_to_the_primary_agent_resumes_and_converges() {
    let lab = FirewallLab::build();
    let mut agents = Agents::start(&lab);
    let replication = Replication::start(&agents);
    let primary = NetNs::named(&lab.primary).expect("primary");

    stream(&primary, 0..500);
    // The replicator loses the primary: its gRPC server stops, the agent
    // and its log stay, and the kernel's changes wait in the backend's
    // queue until the agent is served again on the same address.
    agents.cut_primary(|| stream(&primary, 500..1000));
    stream(&primary, 1000..1500);
    replication.drain(&agents);
    assert_identical(&lab, &agents, 3 * surviving(500));
    let status = replication.handle.status();
    assert_eq!(status.forward.rejected, 0, "{status:#?}");
    assert!(
        status.forward.errors >= 1,
        "the cut was noticed: {status:#?}"
    );
    assert_eq!(
        status.forward.resnapshots, 0,
        "same log, so the stream resumed instead of taking a snapshot: {status:#?}"
    );
}

#[test]
fn the_primary_agent_killed_mid_stream_and_restarted_converges() {
    let lab = FirewallLab::build();
    let mut agents = Agents::start(&lab);
    let replication = Replication::start(&agents);
    let primary = NetNs::named(&lab.primary).expect("primary");

    stream(&primary, 0..500);
    // A new primary agent has a new log (new epoch): the stream cannot
    // resume and takes a fresh snapshot, in which the entries deleted
    // while it was down are missing, so the mirror deletes them.
    agents.restart_primary(&lab, || stream(&primary, 500..1000));
    stream(&primary, 1000..1500);
    replication.drain(&agents);
    assert_identical(&lab, &agents, 3 * surviving(500));
    let status = replication.handle.status();
    assert_eq!(status.forward.rejected, 0, "{status:#?}");
    assert!(status.forward.resnapshots >= 1, "{status:#?}");
}
