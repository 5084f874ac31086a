//! Replication as the pair driver needs it: drain into the standby before a
//! flip, run from the active device once this host is the primary and after
//! every flip, and stop when this host stops being the primary (only the
//! P4Runtime primary's replication writes into the devices: two hosts'
//! replicators race each other's snapshots, and a snapshot's deletes took
//! fresh connections off a standby in the lab).
//!
//! [`AgentReplication`] runs Umbra's replicator between the pair's two
//! agents (snapshot, ordered change stream, anti-entropy) in the direction
//! of the roles; [`NoReplication`] is the control with replication off
//! (a drain succeeds at once, so sessions the standby never learnt of are
//! lost on a failover: what the lab measures).

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use umbra_orchestrator::Slot;
use umbra_replicate::{Peer, Replicator, ReplicatorConfig, ReplicatorHandle};

/// What the pair driver asks of replication.
pub trait Replication: Send + Sync + 'static {
    /// Waits until `to` (the standby) holds everything the active device
    /// had when asked, at most `timeout`.
    fn drain(&self, to: Slot, timeout: Duration)
    -> impl Future<Output = Result<(), String>> + Send;

    /// Replicates from `from` (the new active device) to the other, and
    /// returns once the other holds `from`'s state: it is the standby again.
    /// Keeps trying while the other device is away.
    fn reverse(&self, from: Slot) -> impl Future<Output = Result<(), String>> + Send;

    /// Stops replicating (this host is no longer the primary).
    fn stop(&self);
}

/// Replication off.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoReplication;

impl Replication for NoReplication {
    async fn drain(&self, _to: Slot, _timeout: Duration) -> Result<(), String> {
        Ok(())
    }

    async fn reverse(&self, _from: Slot) -> Result<(), String> {
        Ok(())
    }

    fn stop(&self) {}
}

struct Running {
    from: Slot,
    handle: ReplicatorHandle,
    stop: CancellationToken,
}

/// Umbra's replicator between the two agents of a pair.
#[derive(Clone)]
pub struct AgentReplication {
    peers: Arc<[Peer; 2]>,
    config: ReplicatorConfig,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    // A synchronous mutex: no `.await` while it is held.
    running: Arc<Mutex<Option<Running>>>,
}

impl std::fmt::Debug for AgentReplication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentReplication").finish_non_exhaustive()
    }
}

impl AgentReplication {
    /// Replication between `peers`, on `tasks`; nothing runs until the
    /// pair driver asks ([`Replication::reverse`], once this host is the
    /// primary).
    #[must_use]
    pub fn new(
        peers: [Peer; 2],
        config: ReplicatorConfig,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            peers: Arc::new(peers),
            config,
            tasks,
            shutdown,
            running: Arc::new(Mutex::new(None)),
        }
    }

    /// Stops what runs and replicates from `from`; the new replicator's
    /// handle and stop token.
    fn run_from(&self, from: Slot) -> (ReplicatorHandle, CancellationToken) {
        let source = self.peers[from as usize].clone();
        let target = self.peers[from.other() as usize].clone();
        let replicator = Replicator::new(source, target, self.config.clone());
        let handle = replicator.handle();
        let stop = self.shutdown.child_token();
        self.tasks.spawn({
            let stop = stop.clone();
            async move {
                if let Err(error) = replicator.run(stop).await {
                    tracing::error!(%error, "replication stopped");
                }
            }
        });
        let previous = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(Running {
                from,
                handle: handle.clone(),
                stop: stop.clone(),
            });
        if let Some(previous) = previous {
            previous.stop.cancel();
        }
        (handle, stop)
    }

    /// The running replicator's handle and direction.
    #[must_use]
    pub fn status(&self) -> Option<(Slot, umbra_replicate::ReplicationStatus)> {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.as_ref().map(|r| (r.from, r.handle.status()))
    }

    fn handle_towards(&self, to: Slot) -> Result<(ReplicatorHandle, CancellationToken), String> {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        match running.as_ref() {
            Some(r) if r.from.other() == to => Ok((r.handle.clone(), r.stop.clone())),
            _ => Err(format!("replication does not run towards {to}")),
        }
    }
}

impl Replication for AgentReplication {
    async fn drain(&self, to: Slot, timeout: Duration) -> Result<(), String> {
        let (handle, _) = self.handle_towards(to)?;
        handle
            .drain_and_commit(None, timeout)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn reverse(&self, from: Slot) -> Result<(), String> {
        let (handle, stopped) = match self.handle_towards(from.other()) {
            Ok(running) => running,
            Err(_) => self.run_from(from),
        };
        // The old active device may be down (that is why it was replaced):
        // keep draining until it is back and holds the new active's state.
        loop {
            match handle.drain_and_commit(None, Duration::from_secs(2)).await {
                Ok(_) => return Ok(()),
                Err(error) => tracing::debug!(%error, "the new standby is not caught up yet"),
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return Err("shutting down".into()),
                () = stopped.cancelled() => return Err("replication stopped".into()),
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    fn stop(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(running) = running {
            tracing::info!(from = %running.from, "replication stopped: this host is not the primary");
            running.stop.cancel();
        }
    }
}
