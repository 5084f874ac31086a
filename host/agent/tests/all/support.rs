//! The harness: an agent over a simulated device on `127.0.0.1:0`, clients,
//! and entry builders.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::StreamExt as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use umbra_agent::{Agent, AgentConfig, Backend, BearerToken, Security, SimBackend, SimConfig};
use umbra_proto::umbra::device::v1 as pb;
use umbra_proto::umbra::device::v1::device_client::DeviceClient;

pub const TOKEN: &str = "correct horse battery staple";
/// Longest any single step of a test may take.
pub const WAIT: Duration = Duration::from_secs(20);

pub type Client = DeviceClient<InterceptedService<Channel, BearerToken>>;

/// A running agent.
pub struct Harness {
    pub addr: SocketAddr,
    pub agent: Arc<Agent>,
    pub sim: Arc<SimBackend>,
    churn: CancellationToken,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// A simulated device with no session churn.
pub fn quiet() -> SimConfig {
    SimConfig {
        session_rate: 0.0,
        ..SimConfig::default()
    }
}

/// A simulated device with fast churn (~25 000 changes/s: sessions live
/// 200 ms on average), kept below what a debug build on a loaded 2-core
/// machine follows, so a watcher does not fall out of the log.
pub fn busy() -> SimConfig {
    SimConfig {
        session_rate: 5_000.0,
        mean_session_lifetime: Duration::from_millis(200),
        tick: Duration::from_millis(5),
        ..SimConfig::default()
    }
}

pub fn token_only() -> Security {
    Security {
        token: Some(TOKEN.into()),
        ..Security::default()
    }
}

impl Harness {
    pub async fn start(sim: SimConfig, config: AgentConfig, security: Security) -> Self {
        let sim = Arc::new(SimBackend::new(sim));
        let agent = Agent::new(config, Arc::clone(&sim) as Arc<dyn Backend>).expect("agent");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (shutdown, tasks) = (CancellationToken::new(), TaskTracker::new());
        let churn = shutdown.child_token();
        tasks.spawn(Arc::clone(&sim).drive(churn.clone()));
        let serving = {
            let (agent, shutdown) = (Arc::clone(&agent), shutdown.clone());
            umbra_agent::serve(listener, agent, security, shutdown)
        };
        tasks.spawn(async move {
            serving.await.expect("agent serves");
        });
        Self {
            addr,
            agent,
            sim,
            churn,
            shutdown,
            tasks,
        }
    }

    pub async fn simple() -> Self {
        Self::start(quiet(), AgentConfig::default(), token_only()).await
    }

    /// Stops creating and moving sessions.
    pub fn stop_churn(&self) {
        self.churn.cancel();
    }

    pub async fn channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect")
    }

    /// A plaintext channel that connects on first use (so connecting to a
    /// TLS port fails at the call, not here).
    pub fn channel_lazy(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.addr))
            .expect("uri")
            .connect_timeout(WAIT)
            .timeout(WAIT)
            .connect_lazy()
    }

    pub async fn client_with(&self, token: &str) -> Client {
        DeviceClient::with_interceptor(self.channel().await, BearerToken::new(token).unwrap())
    }

    pub async fn client(&self) -> Client {
        self.client_with(TOKEN).await
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tasks.close();
        tokio::time::timeout(WAIT, self.tasks.wait())
            .await
            .expect("agent stops");
    }
}

/// A TLS channel to `addr` trusting `ca`, presenting `identity`.
pub async fn tls_channel(
    addr: SocketAddr,
    ca: &[u8],
    identity: Option<(&[u8], &[u8])>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(tonic::transport::Identity::from_pem(cert, key));
    }
    Endpoint::from_shared(format!("https://{addr}"))
        .expect("uri")
        .tls_config(tls)?
        .connect()
        .await
}

/// What a replica holds: entries by their wire key (the entry without
/// version, tombstone or value fields), valued by the whole entry.
pub type Replica = BTreeMap<Vec<u8>, pb::Entry>;

/// The identity of an entry on the wire (its key fields only).
pub fn wire_key(entry: &pb::Entry) -> Vec<u8> {
    use prost::Message as _;
    let key_only = match entry.entry.clone().expect("entry") {
        pb::entry::Entry::Route(r) => pb::entry::Entry::Route(pb::Route {
            table: r.table,
            destination: r.destination,
            metric: r.metric,
            ..pb::Route::default()
        }),
        pb::entry::Entry::NftTable(t) => pb::entry::Entry::NftTable(pb::NftTable {
            family: t.family,
            name: t.name,
            ..pb::NftTable::default()
        }),
        pb::entry::Entry::Conntrack(c) => pb::entry::Entry::Conntrack(pb::Conntrack {
            original: c.original,
            zone: c.zone,
            ..pb::Conntrack::default()
        }),
    };
    pb::Entry {
        version: None,
        entry: Some(key_only),
    }
    .encode_to_vec()
}

/// Applies one change to a replica.
pub fn apply_change(replica: &mut Replica, entry: pb::Entry) {
    let key = wire_key(&entry);
    if entry.version.as_ref().is_some_and(|v| v.tombstone) {
        replica.remove(&key);
    } else {
        replica.insert(key, entry);
    }
}

/// Reads a whole snapshot: (revision, epoch, replica), checking that every
/// chunk agrees on the revision and that only the last is marked last.
pub async fn snapshot(client: &mut Client) -> (u64, u64, Replica) {
    let mut stream = client
        .snapshot(pb::SnapshotRequest {
            chunk_size: 7,
            ..pb::SnapshotRequest::default()
        })
        .await
        .expect("snapshot")
        .into_inner();
    let mut replica = Replica::new();
    let mut header: Option<(u64, u64)> = None;
    let mut ended = false;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("chunk");
        assert!(!ended, "a chunk after the last one");
        let this = (chunk.revision, chunk.log_epoch);
        assert_eq!(*header.get_or_insert(this), this, "chunks disagree");
        ended = chunk.last;
        for entry in chunk.entries {
            assert!(!entry.version.unwrap().tombstone, "tombstone in a snapshot");
            let key = wire_key(&entry);
            assert!(
                replica.insert(key, entry).is_none(),
                "key twice in a snapshot"
            );
        }
    }
    assert!(ended, "the last chunk is marked");
    let (revision, epoch) = header.expect("at least one chunk");
    (revision, epoch, replica)
}

/// A version stamped `ahead_ms` after now by node `node`.
pub fn version(node: u64, ahead_ms: u64, tombstone: bool) -> pb::Version {
    let wall_ms = umbra_agent::hlc::system_ms() + ahead_ms;
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

pub fn route(table: u32, third_octet: u8, version: pb::Version) -> pb::Entry {
    pb::Entry {
        version: Some(version),
        entry: Some(pb::entry::Entry::Route(pb::Route {
            table,
            destination: Some(pb::Prefix {
                address: vec![198, 19, third_octet, 0],
                length: 24,
            }),
            gateway: vec![198, 19, 0, 254],
            output_interface: "eth1".into(),
            metric: 10,
        })),
    }
}

pub fn conntrack(port: u16, version: pb::Version) -> pb::Entry {
    let original = pb::Tuple {
        source: vec![198, 18, 7, 7].into(),
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
            mark: 1,
            status: 0xe,
            timeout_seconds: 431_000,
            tcp_state: pb::TcpState::Established.into(),
            labels: Vec::new(),
        })),
    }
}

pub fn outcomes(response: &pb::ApplyResponse) -> Vec<pb::ApplyOutcome> {
    response.results.iter().map(|r| r.outcome()).collect()
}
