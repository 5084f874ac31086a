//! A device agent over the simulated backend, served on loopback.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use umbra_agent::{Agent, AgentConfig, Backend, Security, SimBackend, SimConfig};

/// An agent with node id `node_id` over a simulated device driven by `sim`,
/// serving `umbra.device.v1` without authentication on a free loopback
/// port until `shutdown`; the agent and its address. Call it inside a
/// Tokio runtime.
///
/// # Panics
/// If the agent cannot be made or the port bound.
pub async fn sim_agent(
    node_id: u64,
    sim: SimConfig,
    shutdown: &CancellationToken,
) -> (Arc<Agent>, SocketAddr) {
    let sim = Arc::new(SimBackend::new(sim));
    let agent = Agent::new(
        AgentConfig {
            node_id,
            ..AgentConfig::default()
        },
        Arc::clone(&sim) as Arc<dyn Backend>,
    )
    .expect("agent");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(Arc::clone(&sim).drive(shutdown.clone()));
    let security = Security {
        allow_unauthenticated: true,
        ..Security::default()
    };
    tokio::spawn(umbra_agent::serve(
        listener,
        Arc::clone(&agent),
        security,
        shutdown.clone(),
    ));
    (agent, addr)
}
