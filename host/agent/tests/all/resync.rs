//! Lost change reports are repaired from the device's snapshot, even when
//! reading that snapshot fails at first.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use umbra_agent::backend::{ChangeQueue, MetricsReading};
use umbra_agent::model::{ConntrackKey, ConntrackValue, Key, L4, Rejected, TcpState, Tuple, Value};
use umbra_agent::{Agent, AgentConfig, AgentError, Backend, SimBackend};

use crate::support::quiet;

/// A simulated device whose snapshots fail while `failures` is above zero
/// and whose change reports never reach the agent (they go to the sim's
/// own queue, which nobody reads): only a resync shows the agent what the
/// device holds.
struct Flaky {
    sim: SimBackend,
    failures: AtomicUsize,
    queue: Arc<ChangeQueue>,
}

impl Backend for Flaky {
    fn kind(&self) -> &'static str {
        "flaky"
    }

    fn snapshot(&self) -> umbra_agent::Result<Vec<(Key, Value)>> {
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(AgentError::Backend("the dump was interrupted".into()));
        }
        self.sim.snapshot()
    }

    fn apply(&self, key: &Key, value: Option<&Value>) -> Result<(), Rejected> {
        self.sim.apply(key, value)
    }

    fn changes(&self) -> Arc<ChangeQueue> {
        Arc::clone(&self.queue)
    }

    fn metrics(&self) -> MetricsReading {
        self.sim.metrics()
    }

    fn problems(&self) -> Vec<String> {
        Vec::new()
    }

    fn commit(&self) -> umbra_agent::Result<umbra_agent::CommitReport> {
        self.sim.commit()
    }
}

#[tokio::test]
async fn a_failed_resync_is_retried_until_the_lost_change_is_recorded() {
    let flaky = Arc::new(Flaky {
        sim: SimBackend::new(quiet()),
        failures: AtomicUsize::new(0),
        queue: Arc::new(ChangeQueue::new(16)),
    });
    let agent = Agent::new(
        AgentConfig::default(),
        Arc::clone(&flaky) as Arc<dyn Backend>,
    )
    .expect("agent");
    let original = Tuple {
        source: IpAddr::from([198, 18, 7, 1]),
        destination: IpAddr::from([198, 18, 7, 2]),
        l4: L4::Ports {
            protocol: 17,
            source: 5353,
            destination: 53,
        },
    };
    let key = Key::Conntrack(ConntrackKey { zone: 0, original });
    let value = Value::Conntrack(ConntrackValue {
        reply: original.inverted(),
        mark: 0,
        status: 0,
        timeout_seconds: 30,
        tcp_state: TcpState::None,
        labels: 0,
    });
    let holds = |agent: &Agent| agent.snapshot().entries.iter().any(|e| e.key == key);
    // The device changes, its report is lost, and the first two reads of
    // the device fail.
    flaky.sim.apply(&key, Some(&value)).expect("sim apply");
    flaky.failures.store(2, Ordering::SeqCst);
    flaky.queue.mark_lost();
    let stop = CancellationToken::new();
    let follower = tokio::spawn(Arc::clone(&agent).follow_backend(stop.clone()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !holds(&agent) {
        assert!(
            Instant::now() < deadline,
            "the lost change never reached the agent ({} failures left)",
            flaky.failures.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(flaky.failures.load(Ordering::SeqCst), 0);
    stop.cancel();
    follower.await.expect("follower stops");
}
