//! What the daemon shows and what it can be asked to do: plain Rust mirrors
//! of the management API's messages, and the [`Control`] trait the daemon
//! implements for the API's server.

use std::{fmt, path::PathBuf, str::FromStr};

use serde::{Deserialize, Serialize};

/// The host daemon as the management API describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    /// The host's name (from its configuration).
    pub name: String,
    /// The P4Runtime election id this host arbitrates with.
    pub election_id: u128,
}

/// The whole answer to `umbra status`: the host and its pairs (the JSON
/// form of `umbra status --json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostStatus {
    /// The host.
    pub host: HostInfo,
    /// The protected pairs asked for, in configuration order.
    pub pairs: Vec<PairStatus>,
}

/// The phase of a pair's failover state machine, as operators see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The active device carries traffic; the standby is warm.
    Normal,
    /// Replication is being drained into the standby before the flip.
    Preparing,
    /// The selector flip is being written.
    Switching,
    /// The new active device is being checked.
    Verifying,
    /// Verification failed: the flip is being undone.
    RollingBack,
    /// The old active device is out of forwarding.
    Decommissioned,
    /// Another host is the P4Runtime primary: this one only watches.
    Following,
    /// The selector is being read back after a restart or a mastership
    /// change.
    Reconciling,
}

impl Phase {
    /// Every phase, in the order above.
    pub const ALL: [Phase; 8] = [
        Phase::Normal,
        Phase::Preparing,
        Phase::Switching,
        Phase::Verifying,
        Phase::RollingBack,
        Phase::Decommissioned,
        Phase::Following,
        Phase::Reconciling,
    ];

    /// The phase's name on the wire, in metrics and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Normal => "normal",
            Phase::Preparing => "preparing",
            Phase::Switching => "switching",
            Phase::Verifying => "verifying",
            Phase::RollingBack => "rolling-back",
            Phase::Decommissioned => "decommissioned",
            Phase::Following => "following",
            Phase::Reconciling => "reconciling",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Phase {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Phase::ALL
            .into_iter()
            .find(|phase| phase.as_str() == s)
            .ok_or_else(|| format!("unknown phase {s:?}"))
    }
}

/// One protected pair's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairStatus {
    /// The pair's name.
    pub name: String,
    /// The switch whose selector steers the pair's traffic.
    pub switch: String,
    /// The failover state machine's phase.
    pub phase: Phase,
    /// The device carrying the traffic.
    pub active_device: String,
    /// The warm standby.
    pub standby_device: String,
    /// Whether the standby could take over now.
    pub standby_ready: bool,
    /// Whether this host is the P4Runtime primary for the switch.
    pub p4runtime_primary: bool,
    /// The last decision evaluated; `None` before the first tick.
    pub last_decision: Option<Decision>,
    /// Failovers since the daemon started.
    pub failovers_total: u64,
    /// When the last failover started (ms since the Unix epoch).
    pub last_failover_at_ms: Option<i64>,
    /// Replication towards the standby.
    pub replication: Replication,
    /// The latest health of each device.
    pub health: Vec<DeviceHealth>,
}

/// One evaluation of the failover decision and what led to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// When it was taken (ms since the Unix epoch).
    pub at_ms: i64,
    /// Whether it said to fail over.
    pub go: bool,
    /// Which signals crossed which thresholds.
    pub explanation: String,
    /// The drift policy's score.
    pub drift_score: f64,
    /// The correlation policy's score.
    pub correlation_score: f64,
    /// The predictor's failure probability; `None` when no model serves.
    pub probability: Option<f64>,
    /// The probability above which the decision fails over.
    pub probability_threshold: f64,
    /// Whether a built-in policy answered in place of a WebAssembly policy
    /// that faulted or is quarantined.
    #[serde(default)]
    pub fallback: bool,
}

/// Replication towards the standby.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replication {
    /// How far the standby is behind, in milliseconds.
    pub lag_ms: u64,
    /// Changes applied on the standby since the daemon started.
    pub applied_total: u64,
    /// Times replication restarted from a snapshot.
    pub resnapshots: u64,
}

/// The latest health of one device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceHealth {
    /// The device's name.
    pub name: String,
    /// Whether its last health checks passed.
    pub healthy: bool,
    /// Why it is unhealthy; empty when healthy.
    pub reason: String,
}

/// What reloading one policy file did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReloadOutcome {
    /// The new version is loaded.
    Loaded,
    /// The file had not changed.
    Unchanged,
    /// The new version was refused; the previous one stays.
    Refused,
}

impl ReloadOutcome {
    /// The outcome's name, as the client prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadOutcome::Loaded => "loaded",
            ReloadOutcome::Unchanged => "unchanged",
            ReloadOutcome::Refused => "refused",
        }
    }
}

/// The result of reloading one policy file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyReload {
    /// `drift`, `correlation` or `failover`.
    pub kind: String,
    /// Where the policy came from (a path, or `builtin`).
    pub source: String,
    /// The version the policy declares; empty when refused.
    pub version: String,
    /// What the reload did.
    pub outcome: ReloadOutcome,
    /// Why it was refused.
    pub error: Option<String>,
}

/// Why a manual failover was not started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailoverRefused {
    /// There is no pair of that name (NOT_FOUND on the wire).
    NotFound,
    /// The pair cannot fail over now, and why (not primary, a failover
    /// under way, cooldown...): answered with `accepted = false`.
    Refused(String),
}

/// What the daemon offers to the management API. The daemon implements it;
/// [`crate::serve`] holds it as `Arc<dyn Control>`.
///
/// The async methods run inside gRPC handlers, whose futures are dropped
/// when the client cancels: an implementation must leave nothing half done
/// if dropped at an `.await` (hand the request to the task that owns the
/// state and await its answer, rather than doing the work in the handler).
#[tonic::async_trait]
pub trait Control: Send + Sync + 'static {
    /// The host's name and election id.
    fn host(&self) -> HostInfo;

    /// Every protected pair's state, in configuration order. Called on
    /// every `Status` request: it must be cheap and must not block.
    fn status(&self) -> Vec<PairStatus>;

    /// Starts a manual failover of `pair`, asked for by `by` (the caller's
    /// address, and whether it presented the token) because of `reason`.
    /// Returns what happens now.
    ///
    /// # Errors
    /// [`FailoverRefused::NotFound`] for an unknown pair,
    /// [`FailoverRefused::Refused`] when the pair cannot fail over now.
    async fn failover(&self, pair: &str, by: &str, reason: &str)
    -> Result<String, FailoverRefused>;

    /// Reloads the policy files now; one result per file.
    async fn reload_policies(&self) -> Vec<PolicyReload>;

    /// Reloads the failure predictor from `path` (the configured path when
    /// `None`); returns the model now serving.
    ///
    /// # Errors
    /// Why the model was refused (the previous one keeps serving).
    async fn reload_model(&self, path: Option<PathBuf>) -> Result<String, String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every phase's name parses back to it, and serde uses the same names.
    #[test]
    fn phase_names_round_trip() {
        for phase in Phase::ALL {
            assert_eq!(phase.as_str().parse::<Phase>(), Ok(phase));
            assert_eq!(
                serde_json::to_value(phase).unwrap(),
                serde_json::Value::String(phase.as_str().into())
            );
        }
        assert!("sideways".parse::<Phase>().is_err());
    }
}
