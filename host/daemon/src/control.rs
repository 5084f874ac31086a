//! The management API's view of a running daemon: [`DaemonControl`]
//! answers `umbra status` from the pairs' views and last decisions, and
//! hands `umbra failover` to the pair's driver, `umbra policy reload` to
//! the policy task and a reloaded model to the engine task (each its own
//! task: the handler may be dropped when the caller gives up, the work
//! goes on).

use std::path::PathBuf;

use tokio::sync::oneshot;
use umbra_model::Predictor;
use umbra_ops::{
    Control, Decision, DeviceHealth, FailoverRefused, HostInfo, PairStatus, PolicyReload,
    ReloadOutcome, Replication,
};
use umbra_orchestrator::{Phase, Slot, Trigger};

use crate::pair::PairInput;
use crate::policies::PolicyCommand;
use crate::run::{EngineCommand, PairRuntime, Running};

/// The orchestrator's phase as the management API names it.
#[must_use]
pub fn ops_phase(phase: &Phase) -> umbra_ops::Phase {
    phase
        .name()
        .parse()
        .unwrap_or(umbra_ops::Phase::Reconciling)
}

/// The management API over a running daemon.
pub struct DaemonControl {
    running: Running,
}

impl DaemonControl {
    /// Control of `running`.
    #[must_use]
    pub fn new(running: Running) -> Self {
        Self { running }
    }
}

fn pair_status(pair: &PairRuntime) -> PairStatus {
    let view = pair.handle.view.borrow().clone();
    let decision = pair.last_decision.borrow().clone();
    let active = view.active;
    let replication = pair
        .replication
        .as_ref()
        .and_then(|r| r.status())
        .map_or_else(Replication::default, |(_, status)| Replication {
            lag_ms: u64::try_from(status.forward.time_lag.as_millis()).unwrap_or(u64::MAX),
            applied_total: status.forward.forwarded,
            resnapshots: status.forward.resnapshots,
        });
    PairStatus {
        name: pair.name.clone(),
        switch: pair.switch.clone(),
        phase: ops_phase(&view.phase),
        active_device: pair.devices[active as usize].clone(),
        standby_device: pair.devices[active.other() as usize].clone(),
        standby_ready: view.phase == Phase::Normal,
        p4runtime_primary: view.master,
        last_decision: decision.map(|d| Decision {
            at_ms: d.at_ms,
            go: d.go,
            explanation: d.explanation,
            drift_score: d.drift_score,
            correlation_score: d.correlation_score,
            probability: d.probability,
            probability_threshold: d.probability_threshold,
            fallback: d.fallback,
        }),
        failovers_total: view.failovers,
        last_failover_at_ms: view.last_failover_at_ms,
        replication,
        health: [Slot::A, Slot::B]
            .into_iter()
            .map(|slot| {
                let (healthy, reason) = view.health[slot as usize].clone();
                DeviceHealth {
                    name: pair.devices[slot as usize].clone(),
                    healthy,
                    reason,
                }
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl Control for DaemonControl {
    fn host(&self) -> HostInfo {
        HostInfo {
            name: self.running.host.clone(),
            election_id: u128::from(self.running.election_id),
        }
    }

    fn status(&self) -> Vec<PairStatus> {
        self.running.pairs.iter().map(pair_status).collect()
    }

    async fn failover(
        &self,
        pair: &str,
        by: &str,
        reason: &str,
    ) -> Result<String, FailoverRefused> {
        let pair = self.running.pair(pair).ok_or(FailoverRefused::NotFound)?;
        let view = pair.handle.view.borrow().clone();
        if !view.master {
            return Err(FailoverRefused::Refused(
                "this host is not the P4Runtime primary of the pair's switch".into(),
            ));
        }
        if view.phase != Phase::Normal {
            return Err(FailoverRefused::Refused(format!(
                "the pair is {}: a failover is under way or the standby is not back",
                view.phase.name()
            )));
        }
        let trigger = Trigger::Manual {
            by: format!("{by} ({reason})"),
        };
        pair.handle
            .inputs
            .send(PairInput::Trigger(trigger))
            .await
            .map_err(|_| FailoverRefused::Refused("the pair's driver has stopped".into()))?;
        Ok(format!(
            "failover of {} from {} to {} started",
            pair.name,
            pair.devices[view.active as usize],
            pair.devices[view.active.other() as usize]
        ))
    }

    async fn reload_policies(&self) -> Vec<PolicyReload> {
        let Some(policies) = &self.running.commands.policies else {
            return vec![PolicyReload {
                kind: "all".into(),
                source: "builtin".into(),
                version: String::new(),
                // Refused so that clients print why: there is nothing to
                // reload, and the built-in policies keep deciding.
                outcome: ReloadOutcome::Refused,
                error: Some(
                    "no [policies] dir is configured: the built-in policies decide; \
                     nothing to reload"
                        .into(),
                ),
            }];
        };
        let refused = |error: &str| {
            vec![PolicyReload {
                kind: "all".into(),
                source: String::new(),
                version: String::new(),
                outcome: ReloadOutcome::Refused,
                error: Some(error.to_owned()),
            }]
        };
        // The policy task does the work: if this handler is dropped, the
        // reload still completes there.
        let (reply, answer) = oneshot::channel();
        if policies.try_send(PolicyCommand::Reload(reply)).is_err() {
            return refused("the policy task is busy or stopped; try again");
        }
        answer
            .await
            .unwrap_or_else(|_| refused("the policy task stopped before answering"))
    }

    async fn reload_model(&self, path: Option<PathBuf>) -> Result<String, String> {
        let path = path.unwrap_or_else(|| self.running.commands.model.clone());
        // Loading (reading, ONNX Runtime building its session) happens
        // here, off the engine task; dropping this handler drops a model
        // that was never swapped in. The swap is the engine task's.
        let load = path.clone();
        let predictor = tokio::task::spawn_blocking(move || Predictor::load(&load))
            .await
            .map_err(|e| format!("loading {}: {e}", path.display()))?
            .map_err(|e| format!("{}: {e}; the running model keeps serving", path.display()))?;
        let (reply, answer) = oneshot::channel();
        self.running
            .commands
            .engine
            .send(EngineCommand::SwapModel {
                predictor: Box::new(predictor),
                path,
                reply,
            })
            .await
            .map_err(|_| "the engine has stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the engine stopped before answering".to_owned())?
    }
}
