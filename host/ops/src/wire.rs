//! Conversions between the plain types of [`crate::control`] and the
//! generated `umbra.management.v1` messages: into messages for the server,
//! back (checked) for the client.

use umbra_proto::umbra::management::v1 as pb;

use crate::control::{
    Decision, DeviceHealth, HostInfo, HostStatus, PairStatus, PolicyReload, ReloadOutcome,
    Replication,
};

/// Splits a 128-bit election id as P4Runtime does.
pub(crate) fn uint128(value: u128) -> pb::Uint128 {
    pb::Uint128 {
        high: (value >> 64) as u64,
        low: value as u64,
    }
}

fn from_uint128(value: &pb::Uint128) -> u128 {
    (u128::from(value.high) << 64) | u128::from(value.low)
}

impl From<PairStatus> for pb::PairStatus {
    fn from(pair: PairStatus) -> Self {
        pb::PairStatus {
            name: pair.name,
            switch: pair.switch,
            phase: pair.phase.as_str().to_owned(),
            active_device: pair.active_device,
            standby_device: pair.standby_device,
            standby_ready: pair.standby_ready,
            p4runtime_primary: pair.p4runtime_primary,
            last_decision: pair.last_decision.map(Into::into),
            failovers_total: pair.failovers_total,
            last_failover_at_ms: pair.last_failover_at_ms,
            replication: Some(pb::Replication {
                lag_ms: pair.replication.lag_ms,
                applied_total: pair.replication.applied_total,
                resnapshots: pair.replication.resnapshots,
            }),
            health: pair
                .health
                .into_iter()
                .map(|h| pb::DeviceHealth {
                    name: h.name,
                    healthy: h.healthy,
                    reason: h.reason,
                })
                .collect(),
        }
    }
}

impl From<Decision> for pb::Decision {
    fn from(d: Decision) -> Self {
        pb::Decision {
            at_ms: d.at_ms,
            go: d.go,
            explanation: d.explanation,
            drift_score: d.drift_score,
            correlation_score: d.correlation_score,
            probability: d.probability,
            probability_threshold: d.probability_threshold,
            fallback: d.fallback,
        }
    }
}

impl From<ReloadOutcome> for pb::ReloadOutcome {
    fn from(outcome: ReloadOutcome) -> Self {
        match outcome {
            ReloadOutcome::Loaded => pb::ReloadOutcome::Loaded,
            ReloadOutcome::Unchanged => pb::ReloadOutcome::Unchanged,
            ReloadOutcome::Refused => pb::ReloadOutcome::Refused,
        }
    }
}

impl From<PolicyReload> for pb::PolicyReload {
    fn from(r: PolicyReload) -> Self {
        pb::PolicyReload {
            kind: r.kind,
            source: r.source,
            version: r.version,
            outcome: pb::ReloadOutcome::from(r.outcome).into(),
            error: r.error,
        }
    }
}

/// A `StatusResponse` back into plain types.
///
/// # Errors
/// What the daemon sent that this client does not understand (an unknown
/// phase: the daemon is newer than the client).
pub(crate) fn host_status(response: pb::StatusResponse) -> Result<HostStatus, String> {
    let pairs = response
        .pairs
        .into_iter()
        .map(pair_status)
        .collect::<Result<_, _>>()?;
    Ok(HostStatus {
        host: HostInfo {
            name: response.host,
            election_id: response.election_id.as_ref().map_or(0, from_uint128),
        },
        pairs,
    })
}

fn pair_status(pair: pb::PairStatus) -> Result<PairStatus, String> {
    let phase = pair
        .phase
        .parse()
        .map_err(|e| format!("pair {:?}: {e}", pair.name))?;
    let replication = pair.replication.unwrap_or_default();
    Ok(PairStatus {
        name: pair.name,
        switch: pair.switch,
        phase,
        active_device: pair.active_device,
        standby_device: pair.standby_device,
        standby_ready: pair.standby_ready,
        p4runtime_primary: pair.p4runtime_primary,
        last_decision: pair.last_decision.map(|d| Decision {
            at_ms: d.at_ms,
            go: d.go,
            explanation: d.explanation,
            drift_score: d.drift_score,
            correlation_score: d.correlation_score,
            probability: d.probability,
            probability_threshold: d.probability_threshold,
            fallback: d.fallback,
        }),
        failovers_total: pair.failovers_total,
        last_failover_at_ms: pair.last_failover_at_ms,
        replication: Replication {
            lag_ms: replication.lag_ms,
            applied_total: replication.applied_total,
            resnapshots: replication.resnapshots,
        },
        health: pair
            .health
            .into_iter()
            .map(|h| DeviceHealth {
                name: h.name,
                healthy: h.healthy,
                reason: h.reason,
            })
            .collect(),
    })
}

/// A `PolicyReload` back into its plain type.
///
/// # Errors
/// An outcome this client does not know.
pub(crate) fn policy_reload(r: pb::PolicyReload) -> Result<PolicyReload, String> {
    let outcome = match pb::ReloadOutcome::try_from(r.outcome) {
        Ok(pb::ReloadOutcome::Loaded) => ReloadOutcome::Loaded,
        Ok(pb::ReloadOutcome::Unchanged) => ReloadOutcome::Unchanged,
        Ok(pb::ReloadOutcome::Refused) => ReloadOutcome::Refused,
        Ok(pb::ReloadOutcome::Unspecified) | Err(_) => {
            return Err(format!(
                "policy {:?}: unknown reload outcome {}",
                r.source, r.outcome
            ));
        }
    };
    Ok(PolicyReload {
        kind: r.kind,
        source: r.source,
        version: r.version,
        outcome,
        error: r.error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn election_ids_keep_all_128_bits() {
        for id in [0, 1, u128::from(u64::MAX) + 1, u128::MAX, 0x1234 << 70 | 99] {
            assert_eq!(from_uint128(&uint128(id)), id);
        }
    }
}
