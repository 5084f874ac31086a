//! One protected pair at run time: the orchestrator's state machine, and
//! the I/O it commands (replication drains, selector writes and reads,
//! sampling, verification), each answered back to the machine as an event.
//!
//! The driver is one task per pair. Commands run as tracked operations;
//! their outcomes come back through the same `select!` as the inputs
//! (triggers, health, mastership) and a clock tick, so the machine sees one
//! event at a time and every command is answered — a selector write that
//! hangs past its deadline is answered as failed with its outcome unknown,
//! and the machine reads the selector back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use umbra_orchestrator::{
    AuditRecord, Command, Event, Orchestrator, Outcome, Phase, Slot, Timeouts, Trigger,
};

use crate::fabric::{DeviceTraffic, Fabric, PairPorts};
use crate::replication::Replication;

/// What the daemon knows of a pair before it starts.
#[derive(Clone, Debug)]
pub struct PairSpec {
    /// The pair's name (configuration, audit log, metrics).
    pub name: String,
    /// The devices' names, by slot.
    pub device_names: [String; 2],
    /// Switch ports and selector values.
    pub ports: PairPorts,
    /// The orchestrator's timeouts.
    pub timeouts: Timeouts,
    /// Packets each way the new active device must carry for the
    /// verification to pass.
    pub verify_min_packets: u64,
}

impl PairSpec {
    /// The name of the device in `slot`.
    #[must_use]
    pub fn device_name(&self, slot: Slot) -> &str {
        &self.device_names[slot as usize]
    }
}

/// What the driver is told from outside.
#[derive(Clone, Debug, PartialEq)]
pub enum PairInput {
    /// Fail over (the policy's go or `umbra failover`).
    Trigger(Trigger),
    /// A device's health changed.
    Health {
        /// Which device.
        slot: Slot,
        /// Fit to carry traffic.
        healthy: bool,
        /// Why, when it is not.
        reason: String,
    },
    /// This host's P4Runtime mastership on the pair's switch.
    Mastership {
        /// Whether this host is the primary.
        primary: bool,
    },
}

/// Where a pair is, as the management API and the metrics show it.
#[derive(Clone, Debug, Serialize)]
pub struct PairView {
    /// The orchestrator's phase.
    pub phase: Phase,
    /// The device carrying traffic.
    pub active: Slot,
    /// Whether this host is the P4Runtime primary for the pair's switch.
    pub master: bool,
    /// Health by slot, with the reason when unhealthy.
    pub health: [(bool, String); 2],
    /// Failovers completed (the selector moved and stayed).
    pub failovers: u64,
    /// When the last one was verified (ms since the Unix epoch).
    pub last_failover_at_ms: Option<i64>,
    /// Trigger to selector written, of the last failover.
    pub last_decision_to_redirect_ms: Option<f64>,
    /// The last state change.
    pub last_audit: Option<AuditRecord>,
}

/// Receives every state change of every pair, in order, as it happens.
/// Called from the pair's task: it must not block for long (the audit log
/// writes one line).
pub trait AuditSink: Send + Sync + 'static {
    /// `record` of pair `pair`.
    fn record(&self, pair: &str, record: &AuditRecord);
}

impl<F: Fn(&str, &AuditRecord) + Send + Sync + 'static> AuditSink for F {
    fn record(&self, pair: &str, record: &AuditRecord) {
        self(pair, record);
    }
}

/// The inputs and the view of a running pair.
#[derive(Clone, Debug)]
pub struct PairHandle {
    /// Send inputs here (bounded: a sender waits while the driver catches
    /// up).
    pub inputs: mpsc::Sender<PairInput>,
    /// The latest view.
    pub view: watch::Receiver<PairView>,
}

/// Runs one pair.
pub struct PairDriver<F, R> {
    spec: Arc<PairSpec>,
    fabric: F,
    replication: R,
    machine: Orchestrator,
    inputs: mpsc::Receiver<PairInput>,
    view: watch::Sender<PairView>,
    audit: Arc<dyn AuditSink>,
    /// How often timeouts and verification are checked.
    poll: Duration,
}

/// An operation's answer to the machine.
enum Done {
    Event(Event),
    /// The standby is back (or not yet: retried).
    Nothing,
}

/// Milliseconds since the Unix epoch: the clock of audit records and
/// decisions.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A verification under way: counters at its start.
struct Verification {
    slot: Slot,
    before: Option<DeviceTraffic>,
}

impl<F: Fabric + Clone, R: Replication + Clone> PairDriver<F, R> {
    /// A driver for `spec` with `active` carrying traffic, following until
    /// told it holds mastership.
    pub fn new(
        spec: PairSpec,
        active: Slot,
        fabric: F,
        replication: R,
        audit: Arc<dyn AuditSink>,
    ) -> (Self, PairHandle) {
        let (inputs_tx, inputs) = mpsc::channel(64);
        let machine = Orchestrator::new(active, spec.timeouts.clone());
        let (view, view_rx) = watch::channel(PairView {
            phase: machine.phase().clone(),
            active,
            master: false,
            health: [(true, String::new()), (true, String::new())],
            failovers: 0,
            last_failover_at_ms: None,
            last_decision_to_redirect_ms: None,
            last_audit: None,
        });
        let driver = Self {
            spec: Arc::new(spec),
            fabric,
            replication,
            machine,
            inputs,
            view,
            audit,
            poll: Duration::from_millis(20),
        };
        let handle = PairHandle {
            inputs: inputs_tx,
            view: view_rx,
        };
        (driver, handle)
    }

    /// Runs until `shutdown` is cancelled; operations under way are
    /// waited for (each has its own deadline).
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut ops: JoinSet<Done> = JoinSet::new();
        let mut tick = tokio::time::interval(self.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut verification: Option<Verification> = None;
        let mut triggered_at: Option<Instant> = None;
        loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => break,
                input = self.inputs.recv() => match input {
                    None => break,
                    Some(PairInput::Trigger(trigger)) => {
                        if self.machine.phase() == &Phase::Normal {
                            triggered_at = Some(Instant::now());
                        }
                        Event::Trigger(trigger)
                    }
                    Some(PairInput::Health { slot, healthy, reason }) => {
                        self.view.send_modify(|v| v.health[slot as usize] = (healthy, reason.clone()));
                        if !healthy && slot == self.machine.active()
                            && self.machine.phase() == &Phase::Normal
                        {
                            // Reactive: the active device failed before
                            // any prediction; the standby takes over.
                            let outcome = self.machine.handle(now_ms(), Event::Health { slot, healthy });
                            self.apply(outcome, &mut ops, &mut verification);
                            triggered_at = Some(Instant::now());
                            Event::Trigger(Trigger::Policy {
                                explanation: format!(
                                    "the active device {} is unhealthy: {reason}",
                                    self.spec.device_name(slot)
                                ),
                            })
                        } else {
                            Event::Health { slot, healthy }
                        }
                    }
                    Some(PairInput::Mastership { primary }) => {
                        self.view.send_modify(|v| v.master = primary);
                        Event::Mastership { primary }
                    }
                },
                Some(done) = ops.join_next(), if !ops.is_empty() => match done {
                    Ok(Done::Event(event)) => event,
                    Ok(Done::Nothing) => continue,
                    Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
                    Err(_) => continue,
                },
                _ = tick.tick() => {
                    if let Some(v) = &mut verification {
                        if self.verified(v).await {
                            verification = None;
                            Event::VerificationPassed
                        } else {
                            Event::Tick
                        }
                    } else {
                        Event::Tick
                    }
                }
            };
            if matches!(event, Event::Flipped)
                && matches!(self.machine.phase(), Phase::Switching { .. })
            {
                let elapsed = triggered_at.take().map(|t| t.elapsed().as_secs_f64() * 1e3);
                self.view
                    .send_modify(|v| v.last_decision_to_redirect_ms = elapsed);
            }
            let passed = matches!(event, Event::VerificationPassed);
            let outcome = self.machine.handle(now_ms(), event);
            if let Some(refused) = &outcome.refused {
                tracing::info!(pair = %self.spec.name, %refused, "request refused");
                // A refused trigger starts nothing: a later flip is not
                // its redirect.
                if !matches!(self.machine.phase(), Phase::Preparing { .. }) {
                    triggered_at = None;
                }
            }
            if passed && matches!(self.machine.phase(), Phase::Decommissioned { .. }) {
                self.view.send_modify(|v| {
                    v.failovers += 1;
                    v.last_failover_at_ms = Some(now_ms());
                });
            }
            if !matches!(self.machine.phase(), Phase::Verifying { .. }) {
                verification = None;
            }
            self.apply(outcome, &mut ops, &mut verification);
        }
        while ops.join_next().await.is_some() {}
    }

    /// Audits the outcome's state changes, publishes the view and starts
    /// its commands.
    fn apply(
        &mut self,
        outcome: Outcome,
        ops: &mut JoinSet<Done>,
        verification: &mut Option<Verification>,
    ) {
        for record in &outcome.audit {
            tracing::info!(pair = %self.spec.name, from = record.from, to = record.to, why = %record.why, "pair state changed");
            self.audit.record(&self.spec.name, record);
        }
        let phase = self.machine.phase().clone();
        let active = self.machine.active();
        let last = outcome.audit.last().cloned();
        self.view.send_modify(|v| {
            v.phase = phase;
            v.active = active;
            if last.is_some() {
                v.last_audit = last;
            }
        });
        for command in outcome.commands {
            self.start(command, ops, verification);
        }
    }

    fn start(
        &self,
        command: Command,
        ops: &mut JoinSet<Done>,
        verification: &mut Option<Verification>,
    ) {
        let spec = Arc::clone(&self.spec);
        let fabric = self.fabric.clone();
        let replication = self.replication.clone();
        let timeouts = self.spec.timeouts.clone();
        match command {
            Command::Drain { to } => {
                ops.spawn(async move {
                    let deadline = Duration::from_millis(timeouts.drain_ms.unsigned_abs());
                    Done::Event(match replication.drain(to, deadline).await {
                        Ok(()) => Event::Drained,
                        Err(error) => Event::DrainFailed(error),
                    })
                });
            }
            Command::StopSampling { .. } | Command::StartSampling { .. } => {
                let to = match command {
                    Command::StartSampling { to } => Some(to),
                    _ => None,
                };
                ops.spawn(async move {
                    if let Err(error) = fabric.set_sampling(&spec.ports, to).await {
                        // Sampling is not forwarding: a failed change is
                        // logged and the failover goes on.
                        tracing::warn!(pair = %spec.name, %error, "sampling change failed");
                    }
                    Done::Nothing
                });
            }
            Command::Flip { to } => {
                ops.spawn(async move {
                    let deadline = Duration::from_millis(timeouts.flip_ms.unsigned_abs());
                    let event =
                        match tokio::time::timeout(deadline, fabric.flip(&spec.ports, to)).await {
                            Ok(Ok(())) => Event::Flipped,
                            Ok(Err(error)) => Event::FlipFailed {
                                error: error.message,
                                applied_unknown: error.applied_unknown,
                            },
                            Err(_) => Event::FlipFailed {
                                error: format!("no answer in {} ms", deadline.as_millis()),
                                applied_unknown: true,
                            },
                        };
                    Done::Event(event)
                });
            }
            Command::ReadSelector => {
                let active = self.machine.active();
                ops.spawn(async move {
                    match fabric.read_selector(&spec.ports).await {
                        Ok(Some(slot)) => Done::Event(Event::SelectorIs(slot)),
                        // The switch lost its entries (it restarted):
                        // install the pair again with the device this host
                        // knows as active.
                        Ok(None) => match fabric.install(&spec.ports, active).await {
                            Ok(slot) => Done::Event(Event::SelectorIs(slot)),
                            Err(error) => {
                                tracing::warn!(pair = %spec.name, %error, "reinstalling the pair failed");
                                Done::Nothing
                            }
                        },
                        Err(error) => {
                            // The machine asks again after its timeout.
                            tracing::warn!(pair = %spec.name, %error, "selector read failed");
                            Done::Nothing
                        }
                    }
                });
            }
            Command::Verify { slot } => {
                *verification = Some(Verification { slot, before: None });
            }
            Command::StopReplication => replication.stop(),
            Command::Replicate { from } => {
                ops.spawn(async move {
                    match replication.reverse(from).await {
                        Ok(()) => Done::Event(Event::StandbyReady),
                        Err(error) => {
                            tracing::warn!(pair = %spec.name, %error, "the standby is not back yet");
                            Done::Nothing
                        }
                    }
                });
            }
        }
    }

    /// Whether the device under verification carries traffic both ways
    /// since verification started and is healthy.
    async fn verified(&self, verification: &mut Verification) -> bool {
        let Ok(now) = self
            .fabric
            .traffic(&self.spec.ports, verification.slot)
            .await
        else {
            return false;
        };
        let Some(before) = verification.before else {
            verification.before = Some(now);
            return false;
        };
        let min = self.spec.verify_min_packets;
        let healthy = self.view.borrow().health[verification.slot as usize].0;
        healthy
            && now.to_server.saturating_sub(before.to_server) >= min
            && now.to_client.saturating_sub(before.to_client) >= min
    }
}
