//! The harness: device agents over simulated devices on `127.0.0.1:0`
//! that can stop serving, serve again, or be replaced, and entry builders.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use umbra_agent::agent::PartitionDigest;
use umbra_agent::hlc::{HybridClock, system_ms};
use umbra_agent::model::{Key, Value};
use umbra_agent::{Agent, AgentConfig, Backend, Security, SimBackend, SimConfig};
use umbra_proto::umbra::device::v1 as pb;
use umbra_replicate::{AntiEntropy, AntiEntropyConfig, Peer, StreamConfig};

pub const TOKEN: &str = "replication test token";
/// Longest any single step of a test may take.
pub const WAIT: Duration = Duration::from_secs(30);
/// How far behind real time the shadow's clock runs, so its initial routes
/// and nftables table are older than the primary's and the primary's win.
pub const SHADOW_BEHIND_MS: u64 = 10_000;

/// A simulated device with no session churn.
pub fn quiet() -> SimConfig {
    SimConfig {
        session_rate: 0.0,
        ..SimConfig::default()
    }
}

/// A simulated device with fast churn (~25 000 changes/s).
pub fn busy() -> SimConfig {
    SimConfig {
        session_rate: 5_000.0,
        mean_session_lifetime: Duration::from_millis(200),
        tick: Duration::from_millis(5),
        ..SimConfig::default()
    }
}

/// Stream tunables for tests: quick reconnects.
pub fn stream_config() -> StreamConfig {
    StreamConfig {
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        head_poll: Duration::from_millis(100),
        ..StreamConfig::default()
    }
}

/// One device agent serving on a fixed loopback address.
pub struct Node {
    pub addr: SocketAddr,
    pub agent: Arc<Agent>,
    node_id: u64,
    behind_ms: u64,
    sim_config: SimConfig,
    config: AgentConfig,
    churn: CancellationToken,
    security: Security,
    serving: Option<(CancellationToken, JoinHandle<()>)>,
}

fn make_agent(
    node_id: u64,
    behind_ms: u64,
    sim: &SimConfig,
    config: &AgentConfig,
    churn: &CancellationToken,
) -> Arc<Agent> {
    let sim = Arc::new(SimBackend::new(sim.clone()));
    tokio::spawn(Arc::clone(&sim).drive(churn.clone()));
    let clock = HybridClock::with_physical(node_id, move || system_ms() - behind_ms);
    let config = AgentConfig {
        node_id,
        ..config.clone()
    };
    Agent::with_clock(config, sim as Arc<dyn Backend>, clock).expect("agent")
}

fn security() -> Security {
    Security {
        token: Some(TOKEN.into()),
        ..Security::default()
    }
}

impl Node {
    pub async fn start(node_id: u64, sim: SimConfig, config: AgentConfig, behind_ms: u64) -> Self {
        Self::start_secured(node_id, sim, config, behind_ms, security()).await
    }

    /// [`Node::start`] with `security` instead of the token.
    pub async fn start_secured(
        node_id: u64,
        sim: SimConfig,
        config: AgentConfig,
        behind_ms: u64,
        security: Security,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let churn = CancellationToken::new();
        let agent = make_agent(node_id, behind_ms, &sim, &config, &churn);
        let mut node = Self {
            addr,
            agent,
            node_id,
            behind_ms,
            sim_config: sim,
            config,
            churn,
            security,
            serving: None,
        };
        node.serve(listener);
        node
    }

    /// The primary: churning or not, on real time.
    pub async fn primary(sim: SimConfig) -> Self {
        Self::start(1, sim, AgentConfig::default(), 0).await
    }

    /// The shadow: idle, its clock behind.
    pub async fn shadow() -> Self {
        Self::start(2, quiet(), AgentConfig::default(), SHADOW_BEHIND_MS).await
    }

    fn serve(&mut self, listener: TcpListener) {
        let stop = CancellationToken::new();
        let serving = umbra_agent::serve(
            listener,
            Arc::clone(&self.agent),
            self.security.clone(),
            stop.clone(),
        );
        let task = tokio::spawn(async move {
            serving.await.expect("agent serves");
        });
        self.serving = Some((stop, task));
    }

    pub fn peer(&self, name: &str) -> Peer {
        Peer::connect_lazy(name, &self.addr.to_string(), Some(TOKEN)).expect("peer")
    }

    /// Stops serving (clients see the agent go away); the state stays.
    pub async fn stop_serving(&mut self) {
        if let Some((stop, task)) = self.serving.take() {
            stop.cancel();
            tokio::time::timeout(WAIT, task)
                .await
                .expect("agent stops")
                .expect("agent task");
        }
    }

    /// Serves the same agent again on the same address.
    pub async fn serve_again(&mut self) {
        let listener = TcpListener::bind(self.addr).await.expect("rebind");
        self.serve(listener);
    }

    /// Replaces the agent by a fresh one (new log epoch, only its initial
    /// state) on the same address, as after a crash of the shadow.
    pub async fn replace(&mut self) {
        self.stop_serving().await;
        self.churn.cancel();
        self.churn = CancellationToken::new();
        self.agent = make_agent(
            self.node_id,
            self.behind_ms,
            &self.sim_config,
            &self.config,
            &self.churn,
        );
        self.serve_again().await;
    }

    /// Stops the device's churn (changes already reported still reach
    /// the agent).
    pub fn halt(&self) {
        self.churn.cancel();
    }

    /// Stops the device's churn and waits (at most [`WAIT`]) until the
    /// agent's log stops growing.
    pub async fn stop_churn(&self) {
        self.churn.cancel();
        let settled = async {
            let mut last = u64::MAX;
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let head = self.agent.head_revision();
                if head == last {
                    return;
                }
                last = head;
            }
        };
        tokio::time::timeout(WAIT, settled)
            .await
            .expect("the agent's log stops growing");
    }

    pub fn digests(&self) -> Vec<PartitionDigest> {
        self.agent.digest(64, &[]).expect("digest").partitions
    }

    /// Panics, saying how they differ, unless both agents hold the same
    /// entries (keys, versions and values).
    pub fn assert_same(&self, other: &Node, what: &str) {
        let (mine, theirs) = (self.digests(), other.digests());
        let differing: Vec<(u32, u64, u64)> = mine
            .iter()
            .zip(&theirs)
            .filter(|(a, b)| a != b)
            .map(|(a, b)| (a.partition, a.count, b.count))
            .collect();
        assert!(
            differing.is_empty(),
            "{what}: {} partitions differ (partition, count here, count there): {:?}; entries {} vs {}",
            differing.len(),
            &differing[..differing.len().min(8)],
            self.entries(),
            other.entries(),
        );
    }

    /// Panics, saying how they differ, unless both agents hold the same
    /// live keys with the same values (versions aside).
    pub fn assert_same_state(&self, other: &Node, what: &str) {
        let state = |node: &Node| -> BTreeMap<Key, Option<Value>> {
            node.agent
                .snapshot()
                .entries
                .into_iter()
                .map(|e| (e.key, e.value))
                .collect()
        };
        let (mine, theirs) = (state(self), state(other));
        let only_here = mine.keys().filter(|k| !theirs.contains_key(*k)).count();
        let only_there = theirs.keys().filter(|k| !mine.contains_key(*k)).count();
        let different = mine
            .iter()
            .filter(|(k, v)| theirs.get(*k).is_some_and(|w| w != *v))
            .count();
        assert!(
            (only_here, only_there, different) == (0, 0, 0),
            "{what}: {only_here} keys only here, {only_there} only there, {different} with other values"
        );
    }

    pub fn entries(&self) -> u64 {
        self.agent.health().entries
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.churn.cancel();
        if let Some((stop, _)) = &self.serving {
            stop.cancel();
        }
    }
}

/// A version at `wall_ms` by node `node`.
pub fn version(wall_ms: u64, node: u64, tombstone: bool) -> pb::Version {
    pb::Version {
        clock: Some(pb::Hlc {
            wall_ms,
            logical: 0,
            node_id: node,
        }),
        origin: node,
        tombstone,
    }
}

/// A conntrack entry for TCP source port `port` marked `mark`.
pub fn conntrack(port: u16, mark: u32, version: pb::Version) -> pb::Entry {
    let original = pb::Tuple {
        source: vec![198, 18, 9, 9].into(),
        destination: vec![198, 19, 0, 10].into(),
        protocol: 6,
        source_port: u32::from(port),
        destination_port: 443,
        ..pb::Tuple::default()
    };
    let reply = pb::Tuple {
        source: original.destination.clone(),
        destination: original.source.clone(),
        source_port: 443,
        destination_port: u32::from(port),
        ..original.clone()
    };
    pb::Entry {
        version: Some(version),
        entry: Some(pb::entry::Entry::Conntrack(pb::Conntrack {
            original: Some(original),
            reply: Some(reply),
            zone: 0,
            mark,
            status: 0xe,
            timeout_seconds: 431_000,
            tcp_state: pb::TcpState::Established.into(),
            labels: Vec::new(),
        })),
    }
}

/// Applies entries through the peer's gRPC API; returns the outcomes.
pub async fn apply(peer: &Peer, entries: Vec<pb::Entry>) -> Vec<pb::ApplyOutcome> {
    peer.client()
        .apply(pb::ApplyRequest { entries })
        .await
        .expect("apply")
        .into_inner()
        .results
        .iter()
        .map(pb::EntryResult::outcome)
        .collect()
}

pub fn count(outcomes: &[pb::ApplyOutcome], which: pb::ApplyOutcome) -> u64 {
    outcomes.iter().filter(|o| **o == which).count() as u64
}

/// The mark of the conntrack entry for `port` the agent holds, if live.
pub fn mark_of(agent: &Agent, port: u16) -> Option<u32> {
    agent.snapshot().entries.iter().find_map(|e| match (&e.key, &e.value) {
        (
            umbra_agent::model::Key::Conntrack(k),
            Some(umbra_agent::model::Value::Conntrack(v)),
        ) if k.original.source == std::net::IpAddr::from([198, 18, 9, 9])
            && matches!(k.original.l4, umbra_agent::model::L4::Ports { source, .. } if source == port) =>
        {
            Some(v.mark)
        }
        _ => None,
    })
}

/// After a drain: both agents hold identical entries (keys, values and
/// versions), and an anti-entropy round agrees that nothing differs.
pub async fn assert_converged(primary: &Node, shadow: &Node) {
    primary.assert_same_state(shadow, "same keys and values after draining");
    primary.assert_same(shadow, "identical digests after draining");
    let anti_entropy = AntiEntropy::new(
        primary.peer("primary"),
        shadow.peer("shadow"),
        AntiEntropyConfig {
            partitions: 64,
            ..AntiEntropyConfig::default()
        },
    );
    let round = anti_entropy.round().await.expect("anti-entropy round");
    assert!(round.mismatched.is_empty(), "{round:?}");
}
