//! The failover orchestrator: one state machine per protected pair.
//!
//! The phases and what moves a pair between them:
//!
//! - **Normal** → Preparing on a trigger (the failover policy's go, or
//!   `umbra failover`): sampling to the standby stops, replication drains
//!   into it.
//! - **Preparing** → Switching once drained (or when the drain fails or
//!   times out while the active device is unhealthy: staying is worse);
//!   → Normal when it fails with the active device healthy.
//! - **Switching** → Verifying once the selector write succeeds; → Normal
//!   when the switch refuses it; → Reconciling when its outcome is unknown.
//! - **Verifying** → Decommissioned once the checks pass (replication now
//!   runs from the new active device); on timeout → RollingBack when the
//!   old device is healthy, else Decommissioned with the new one kept.
//! - **RollingBack** → Normal once the selector points back.
//! - **Decommissioned** → Normal once the old device is back and holds the
//!   new active's state: it is the standby, sampled to. A host that gains
//!   mastership passes here too: it starts replicating then, and the
//!   standby is ready once it holds the active device's state.
//! - **Following** (another host is the P4Runtime primary) and
//!   **Reconciling** (mastership gained, or a write's outcome unknown: the
//!   selector is read back and the switch's word taken).
//!
//! The machine does no I/O: [`Orchestrator::handle`] takes an [`Event`]
//! (a trigger, the answer to a command, a health report, a clock tick, a
//! change of P4Runtime mastership) and returns the [`Command`]s to carry
//! out, each state change with an [`AuditRecord`] saying why. The host
//! daemon runs the commands (replication's drain-and-commit, the
//! P4Runtime write that flips the selector, the verification probes) and
//! feeds their outcomes back. So every path, faults included, is tested
//! here without a network, and the daemon cannot take a transition the
//! machine does not allow.
//!
//! Invariants:
//! - **One active device.** Forwarding changes only through
//!   [`Command::Flip`], one write of the selector, so every packet sees one
//!   device; the machine never asks for both.
//! - **Only the P4Runtime primary flips and replicates.** Without
//!   mastership the machine follows ([`Phase::Following`]) and commands
//!   nothing but [`Command::StopReplication`] as it loses it; when it gains
//!   mastership it first reads the selector ([`Command::ReadSelector`]) and
//!   takes the switch's word for which device is active.
//! - **One selector write at a time.** No write is commanded while an
//!   earlier one is unanswered (the daemon answers every write, a
//!   cancelled one as [`Event::FlipFailed`] with `applied_unknown`), and an
//!   answer that comes late, after a read-back, makes the machine read
//!   the selector again.
//! - **Nothing black-holed longer than the verification timeout** (plus
//!   the write's own deadline). A flip whose verification does not pass in
//!   time is rolled back while the old device is healthy; if it is not,
//!   the new one stays (it is the only candidate) and that is audited.

#![forbid(unsafe_code)]

use std::fmt;

use serde::Serialize;

/// One of the two devices of a protected pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    /// The device configured as the primary.
    A,
    /// The device configured as the shadow.
    B,
}

impl Slot {
    /// The other device of the pair.
    #[must_use]
    pub fn other(self) -> Self {
        match self {
            Self::A => Self::B,
            Self::B => Self::A,
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::A => "a",
            Self::B => "b",
        })
    }
}

/// Why a failover started.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Trigger {
    /// The failover policy said go; its explanation.
    Policy {
        /// Which signals crossed which thresholds.
        explanation: String,
    },
    /// `umbra failover`.
    Manual {
        /// Who asked (the management API's caller).
        by: String,
    },
}

/// Where a pair is.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "phase", rename_all = "kebab-case")]
pub enum Phase {
    /// The active device carries traffic; the standby is warm.
    Normal,
    /// Replication is drained into the standby; sampling towards it stopped.
    Preparing {
        /// When the drain was asked for (ms).
        since_ms: i64,
    },
    /// The selector flip is written.
    Switching {
        /// When the flip was asked for (ms).
        since_ms: i64,
    },
    /// The new active device is checked: counters both ways, health
    /// checks, probes.
    Verifying {
        /// When verification started (ms).
        since_ms: i64,
    },
    /// Verification failed in time and the old device is healthy: the flip
    /// is undone.
    RollingBack {
        /// When the flip back was asked for (ms).
        since_ms: i64,
    },
    /// The old active device is out of forwarding; replication runs from
    /// the new active to it once it is back, then it is the standby.
    Decommissioned {
        /// When it was taken out (ms).
        since_ms: i64,
    },
    /// Another host is the P4Runtime primary: nothing is commanded.
    Following,
    /// Mastership was gained: the selector is read before anything else.
    Reconciling {
        /// When the read was asked for (ms).
        since_ms: i64,
    },
}

impl Phase {
    /// The phase's name, as the audit log and the status show it.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Preparing { .. } => "preparing",
            Self::Switching { .. } => "switching",
            Self::Verifying { .. } => "verifying",
            Self::RollingBack { .. } => "rolling-back",
            Self::Decommissioned { .. } => "decommissioned",
            Self::Following => "following",
            Self::Reconciling { .. } => "reconciling",
        }
    }
}

/// What the orchestrator is told.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Fail over now (the policy's go, or a manual request).
    Trigger(Trigger),
    /// Replication has applied everything up to the drain's revision.
    Drained,
    /// The drain failed (an agent down, a timeout).
    DrainFailed(String),
    /// The selector write succeeded.
    Flipped,
    /// The selector write failed; `applied_unknown` when the switch may
    /// have taken it (a connection lost mid-write).
    FlipFailed {
        /// The error.
        error: String,
        /// The outcome is unknown: the selector must be read back.
        applied_unknown: bool,
    },
    /// The selector, as read from the switch, points at this device.
    SelectorIs(Slot),
    /// All verification checks of the new active device passed.
    VerificationPassed,
    /// A device's health as last measured (agent health, health checks).
    Health {
        /// Which device.
        slot: Slot,
        /// Whether it is fit to carry traffic.
        healthy: bool,
    },
    /// The decommissioned device is back and holds the new active's state:
    /// it becomes the standby.
    StandbyReady,
    /// P4Runtime mastership of this host changed.
    Mastership {
        /// Whether this host is now the primary.
        primary: bool,
    },
    /// Time passed (timeouts are checked).
    Tick,
}

/// What the daemon must do.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Command {
    /// Drain replication into `to` and commit (returns once applied).
    Drain {
        /// The device that must hold everything.
        to: Slot,
    },
    /// Stop mirroring samples to this device.
    StopSampling {
        /// The device sampled to.
        to: Slot,
    },
    /// Start mirroring samples to this device.
    StartSampling {
        /// The device sampled to.
        to: Slot,
    },
    /// Write the selector so that this device is active.
    Flip {
        /// The device to make active.
        to: Slot,
    },
    /// Read the selector from the switch.
    ReadSelector,
    /// Start checking that this device carries traffic.
    Verify {
        /// The new active device.
        slot: Slot,
    },
    /// Replicate from `from` to the other device (roles swapped, or this
    /// host newly the primary).
    Replicate {
        /// The source: the active device.
        from: Slot,
    },
    /// Stop replicating: this host is no longer the primary, and only the
    /// primary's replication may write into the devices (two hosts
    /// replicating the same pair race each other's snapshots and deletes).
    StopReplication,
}

/// One state change and why: a line of the audit log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditRecord {
    /// When (ms since the Unix epoch).
    pub at_ms: i64,
    /// The phase left.
    pub from: &'static str,
    /// The phase entered.
    pub to: &'static str,
    /// The active device after the change.
    pub active: Slot,
    /// Why, in a sentence.
    pub why: String,
}

/// Timeouts of one pair.
#[derive(Clone, Debug, PartialEq)]
pub struct Timeouts {
    /// Longest drain-and-commit before the failover is abandoned (or
    /// forced, when the active device is unhealthy).
    pub drain_ms: i64,
    /// Longest wait for the selector write's answer before it is read back.
    pub flip_ms: i64,
    /// Longest verification before a rollback.
    pub verify_ms: i64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            drain_ms: 2_000,
            flip_ms: 1_000,
            verify_ms: 3_000,
        }
    }
}

/// What [`Orchestrator::handle`] gives back.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Commands, in order.
    pub commands: Vec<Command>,
    /// State changes, in order.
    pub audit: Vec<AuditRecord>,
    /// Why an event changed nothing, when it was a request that was
    /// refused (a trigger while a failover runs, without mastership, with
    /// the standby not ready).
    pub refused: Option<String>,
}

/// The state machine of one protected pair.
#[derive(Clone, Debug)]
pub struct Orchestrator {
    timeouts: Timeouts,
    phase: Phase,
    active: Slot,
    healthy: [bool; 2],
    /// The standby holds the active's state and is fit to take over.
    standby_ready: bool,
    master: bool,
    /// What the current failover was started by.
    trigger: Option<Trigger>,
    /// The device the current failover moves traffic to.
    target: Slot,
    /// A selector write was commanded and its answer ([`Event::Flipped`]
    /// or [`Event::FlipFailed`]; the daemon reports one for every write,
    /// a cancelled one included) has not come: no other write is
    /// commanded meanwhile, so two can never race at the switch.
    unanswered: bool,
}

impl Orchestrator {
    /// A pair with `active` carrying traffic, both devices healthy; this
    /// host follows until it is told it holds mastership, and then
    /// replicates into the standby before it counts it ready.
    #[must_use]
    pub fn new(active: Slot, timeouts: Timeouts) -> Self {
        Self {
            timeouts,
            phase: Phase::Following,
            active,
            healthy: [true, true],
            standby_ready: false,
            master: false,
            trigger: None,
            target: active.other(),
            unanswered: false,
        }
    }

    /// The current phase.
    #[must_use]
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The device carrying traffic, as far as this host knows.
    #[must_use]
    pub fn active(&self) -> Slot {
        self.active
    }

    /// What started the failover under way, if one is.
    #[must_use]
    pub fn trigger(&self) -> Option<&Trigger> {
        self.trigger.as_ref()
    }

    fn healthy(&self, slot: Slot) -> bool {
        self.healthy[slot as usize]
    }

    /// Handles one event at `now_ms`.
    pub fn handle(&mut self, now_ms: i64, event: Event) -> Outcome {
        let mut out = Outcome::default();
        if matches!(event, Event::Flipped | Event::FlipFailed { .. }) {
            self.unanswered = false;
        }
        match event {
            Event::Mastership { primary } => self.mastership(now_ms, primary, &mut out),
            Event::Health { slot, healthy } => self.healthy[slot as usize] = healthy,
            _ if !self.master => {
                if matches!(event, Event::Trigger(_)) {
                    out.refused = Some("this host is not the P4Runtime primary".into());
                }
            }
            Event::Trigger(trigger) => self.start(now_ms, trigger, &mut out),
            Event::Drained => {
                if matches!(self.phase, Phase::Preparing { .. }) {
                    self.switch(now_ms, "replication drained into the standby", &mut out);
                }
            }
            Event::DrainFailed(error) => {
                if matches!(self.phase, Phase::Preparing { .. }) {
                    self.drain_failed(now_ms, &format!("the drain failed: {error}"), &mut out);
                }
            }
            Event::Flipped => match self.phase {
                Phase::Switching { .. } => {
                    self.active = self.active.other();
                    let why = format!("the selector now points at {}", self.active);
                    out.commands.push(Command::Verify { slot: self.active });
                    self.go(now_ms, Phase::Verifying { since_ms: now_ms }, why, &mut out);
                }
                Phase::RollingBack { .. } => {
                    self.active = self.active.other();
                    let why = format!("rolled back: the selector points at {} again", self.active);
                    self.back_to_normal(now_ms, why, &mut out);
                }
                _ => {
                    // A write answered after it was given up on (and
                    // perhaps after a read said it had not happened): the
                    // switch changed, so it is read again.
                    out.commands.push(Command::ReadSelector);
                    let why = "a selector write was answered late: reading it back".to_owned();
                    self.go(
                        now_ms,
                        Phase::Reconciling { since_ms: now_ms },
                        why,
                        &mut out,
                    );
                }
            },
            Event::FlipFailed {
                error,
                applied_unknown,
            } => {
                if matches!(
                    self.phase,
                    Phase::Switching { .. } | Phase::RollingBack { .. }
                ) {
                    self.flip_failed(now_ms, &error, applied_unknown, &mut out);
                } else if applied_unknown {
                    // A late answer that the switch may have taken.
                    out.commands.push(Command::ReadSelector);
                    let why = format!("a selector write failed late ({error}): reading it back");
                    self.go(
                        now_ms,
                        Phase::Reconciling { since_ms: now_ms },
                        why,
                        &mut out,
                    );
                }
            }
            Event::SelectorIs(slot) => self.selector_is(now_ms, slot, &mut out),
            Event::VerificationPassed => {
                if matches!(self.phase, Phase::Verifying { .. }) {
                    let old = self.active.other();
                    self.standby_ready = false;
                    self.trigger = None;
                    out.commands.push(Command::Replicate { from: self.active });
                    let why = format!(
                        "{} carries the traffic; {old} is out of forwarding",
                        self.active
                    );
                    self.go(
                        now_ms,
                        Phase::Decommissioned { since_ms: now_ms },
                        why,
                        &mut out,
                    );
                }
            }
            Event::StandbyReady => {
                if matches!(self.phase, Phase::Decommissioned { .. }) {
                    let standby = self.active.other();
                    self.standby_ready = true;
                    out.commands.push(Command::StartSampling { to: standby });
                    let why = format!("{standby} is back and replicated: the new standby");
                    self.go(now_ms, Phase::Normal, why, &mut out);
                }
            }
            Event::Tick => self.tick(now_ms, &mut out),
        }
        out
    }

    fn go(&mut self, now_ms: i64, to: Phase, why: String, out: &mut Outcome) {
        let from = self.phase.name();
        self.phase = to;
        out.audit.push(AuditRecord {
            at_ms: now_ms,
            from,
            to: self.phase.name(),
            active: self.active,
            why,
        });
    }

    fn back_to_normal(&mut self, now_ms: i64, why: String, out: &mut Outcome) {
        self.trigger = None;
        out.commands.push(Command::StartSampling {
            to: self.active.other(),
        });
        self.go(now_ms, Phase::Normal, why, out);
    }

    fn start(&mut self, now_ms: i64, trigger: Trigger, out: &mut Outcome) {
        if self.phase != Phase::Normal {
            out.refused = Some(format!(
                "a failover is not possible while {}",
                self.phase.name()
            ));
            return;
        }
        let standby = self.active.other();
        if self.unanswered {
            out.refused = Some("an earlier selector write is unanswered".into());
            return;
        }
        if !self.standby_ready || !self.healthy(standby) {
            out.refused = Some(format!("the standby {standby} is not ready"));
            return;
        }
        let why = match &trigger {
            Trigger::Policy { explanation } => format!("the failover policy: {explanation}"),
            Trigger::Manual { by } => format!("manual failover by {by}"),
        };
        self.trigger = Some(trigger);
        self.target = standby;
        out.commands.push(Command::StopSampling { to: standby });
        out.commands.push(Command::Drain { to: standby });
        self.go(now_ms, Phase::Preparing { since_ms: now_ms }, why, out);
    }

    fn switch(&mut self, now_ms: i64, why: &str, out: &mut Outcome) {
        self.unanswered = true;
        out.commands.push(Command::Flip {
            to: self.active.other(),
        });
        self.go(
            now_ms,
            Phase::Switching { since_ms: now_ms },
            why.to_owned(),
            out,
        );
    }

    /// The drain failed or timed out: with the active device still
    /// healthy the failover is abandoned (nothing changed in forwarding);
    /// with it unhealthy the flip goes ahead, since staying is worse.
    fn drain_failed(&mut self, now_ms: i64, why: &str, out: &mut Outcome) {
        if self.healthy(self.active) {
            let why = format!("{why}; {} is healthy, failover abandoned", self.active);
            self.back_to_normal(now_ms, why, out);
        } else {
            let why = format!(
                "{why}; {} is unhealthy, switching without a complete drain",
                self.active
            );
            self.switch(now_ms, &why, out);
        }
    }

    fn flip_failed(&mut self, now_ms: i64, error: &str, unknown: bool, out: &mut Outcome) {
        if unknown {
            out.commands.push(Command::ReadSelector);
            let why = format!("the selector write failed ({error}); reading it back");
            self.go(now_ms, Phase::Reconciling { since_ms: now_ms }, why, out);
        } else if matches!(self.phase, Phase::Switching { .. }) {
            let why = format!(
                "the selector write was refused ({error}); {} stays active",
                self.active
            );
            self.back_to_normal(now_ms, why, out);
        } else {
            // A refused rollback: the new device stays; it may be retried.
            let why = format!(
                "the rollback write was refused ({error}); {} stays active",
                self.active
            );
            self.trigger = None;
            self.standby_ready = false;
            out.commands.push(Command::Replicate { from: self.active });
            self.go(now_ms, Phase::Decommissioned { since_ms: now_ms }, why, out);
        }
    }

    fn selector_is(&mut self, now_ms: i64, slot: Slot, out: &mut Outcome) {
        if !matches!(self.phase, Phase::Reconciling { .. }) {
            return;
        }
        let changed = slot != self.active;
        self.active = slot;
        // A failover under way: the switch says whether its flip happened.
        let flipped = match self.trigger {
            Some(_) => Some(slot == self.target),
            None => None,
        };
        if flipped == Some(true) || (flipped.is_none() && changed) {
            // The switch forwards to the failover's target, or to a device
            // this host did not think active: verify it as after a flip.
            out.commands.push(Command::Verify { slot });
            let why = format!("the switch forwards to {slot}: verifying it");
            self.go(now_ms, Phase::Verifying { since_ms: now_ms }, why, out);
        } else if flipped == Some(false) {
            let why = format!("the switch still forwards to {slot}: failover abandoned");
            self.back_to_normal(now_ms, why, out);
        } else if !self.standby_ready {
            out.commands.push(Command::Replicate { from: slot });
            let why = format!(
                "the switch forwards to {slot}; replicating: {} is the standby once it holds {slot}'s state",
                slot.other()
            );
            self.go(now_ms, Phase::Decommissioned { since_ms: now_ms }, why, out);
        } else {
            let why = format!("the switch forwards to {slot}, as expected");
            self.back_to_normal(now_ms, why, out);
        }
    }

    fn mastership(&mut self, now_ms: i64, primary: bool, out: &mut Outcome) {
        if primary == self.master {
            return;
        }
        self.master = primary;
        if primary {
            out.commands.push(Command::ReadSelector);
            let why = "this host is the P4Runtime primary: reading the selector".to_owned();
            self.go(now_ms, Phase::Reconciling { since_ms: now_ms }, why, out);
        } else {
            // Replication is the primary's: this host's stops, and the
            // standby is not known ready when this host commands again.
            self.standby_ready = false;
            out.commands.push(Command::StopReplication);
            let why = "another host is the P4Runtime primary".to_owned();
            self.go(now_ms, Phase::Following, why, out);
        }
    }

    fn tick(&mut self, now_ms: i64, out: &mut Outcome) {
        match self.phase {
            Phase::Preparing { since_ms } if now_ms - since_ms >= self.timeouts.drain_ms => {
                let why = format!("the drain took longer than {} ms", self.timeouts.drain_ms);
                self.drain_failed(now_ms, &why, out);
            }
            Phase::Switching { since_ms } | Phase::RollingBack { since_ms }
                if now_ms - since_ms >= self.timeouts.flip_ms =>
            {
                let error = format!("no answer in {} ms", self.timeouts.flip_ms);
                self.flip_failed(now_ms, &error, true, out);
            }
            Phase::Reconciling { since_ms } if now_ms - since_ms >= self.timeouts.flip_ms => {
                // Ask again: nothing is decided without the switch's word.
                out.commands.push(Command::ReadSelector);
                let why = format!(
                    "no selector read in {} ms: asking again",
                    self.timeouts.flip_ms
                );
                self.go(now_ms, Phase::Reconciling { since_ms: now_ms }, why, out);
            }
            Phase::Verifying { since_ms }
                if now_ms - since_ms >= self.timeouts.verify_ms && !self.unanswered =>
            {
                let old = self.active.other();
                if self.healthy(old) {
                    self.unanswered = true;
                    out.commands.push(Command::Flip { to: old });
                    let why = format!(
                        "{} did not pass verification in {} ms and {old} is healthy: rolling back",
                        self.active, self.timeouts.verify_ms
                    );
                    self.go(now_ms, Phase::RollingBack { since_ms: now_ms }, why, out);
                } else {
                    self.trigger = None;
                    self.standby_ready = false;
                    out.commands.push(Command::Replicate { from: self.active });
                    let why = format!(
                        "{} did not pass verification in {} ms, but {old} is unhealthy: {} stays",
                        self.active, self.timeouts.verify_ms, self.active
                    );
                    self.go(now_ms, Phase::Decommissioned { since_ms: now_ms }, why, out);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
