//! Measures in-process Apply throughput of the agent over the simulated
//! device (the agent's recorder of device changes running alongside, as
//! when serving): `cargo run --release -p umbra-agent --example apply-rate`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use umbra_agent::model::{
    ConntrackKey, ConntrackValue, Entry, Key, L4, TcpState, Tuple, Value, Version,
};
use umbra_agent::{Agent, AgentConfig, Backend, SimBackend, SimConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let total: u32 = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let sim = Arc::new(SimBackend::new(SimConfig {
        session_rate: 0.0,
        conntrack_max: u64::from(total) * 2,
        ..SimConfig::default()
    }));
    let agent = Agent::new(
        AgentConfig {
            node_id: 1,
            ..AgentConfig::default()
        },
        Arc::clone(&sim) as Arc<dyn Backend>,
    )?;
    let shutdown = CancellationToken::new();
    let recorder = tokio::spawn(Arc::clone(&agent).follow_backend(shutdown.clone()));
    if std::env::var_os("NO_RECORDER").is_some() {
        recorder.abort();
    }

    let clock = agent.now();
    let entries: Vec<Entry> = (0..total)
        .map(|i| {
            let original = Tuple {
                source: IpAddr::V4(Ipv4Addr::from(0xc612_0000 | (i >> 16))),
                destination: IpAddr::V4(Ipv4Addr::new(198, 19, 0, 10)),
                l4: L4::Ports {
                    protocol: 6,
                    source: (i & 0xffff) as u16,
                    destination: 443,
                },
            };
            Entry {
                key: Key::Conntrack(ConntrackKey { zone: 0, original }),
                version: Version {
                    clock: umbra_agent::hlc::Hlc {
                        node_id: 2,
                        ..clock
                    },
                    origin: 2,
                    tombstone: false,
                },
                value: Some(Value::Conntrack(ConntrackValue {
                    reply: original.inverted(),
                    mark: 0,
                    status: 0xe,
                    timeout_seconds: 432_000,
                    tcp_state: TcpState::Established,
                    labels: 0,
                })),
            }
        })
        .collect();
    let batches: Vec<Vec<Entry>> = entries.chunks(10_000).map(<[Entry]>::to_vec).collect();
    let start = Instant::now();
    let mut applied = 0;
    for batch in batches {
        let report = tokio::task::block_in_place(|| agent.apply(batch))?;
        applied += report
            .outcomes
            .iter()
            .filter(|o| **o == umbra_agent::Outcome::Applied)
            .count();
        tokio::task::yield_now().await;
    }
    let elapsed = start.elapsed();
    println!(
        "applied {applied} entries in {elapsed:?}: {:.0} entries/s",
        applied as f64 / elapsed.as_secs_f64()
    );
    shutdown.cancel();
    let _ = recorder.await;
    Ok(())
}
