//! [`Fabric`] that fails on purpose: each operation fails with a set
//! probability, and a failed write is, half the time, applied with its
//! answer lost (the outcome the daemon must read back). Seeded, so a
//! failing run can be replayed.

use std::sync::{Arc, Mutex, PoisonError};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use umbra_orchestrator::Slot;

use super::{DeviceTraffic, Fabric, FabricError, FabricResult, PairPorts};

/// Wraps a fabric and injects failures.
#[derive(Clone, Debug)]
pub struct ChaosFabric<F> {
    inner: F,
    probability: f64,
    // A synchronous mutex: no `.await` while it is held.
    rng: Arc<Mutex<StdRng>>,
}

/// What the dice said for one operation.
enum Fate {
    Pass,
    Fail,
    /// Applied, then the answer is lost.
    LoseAnswer,
}

impl<F: Fabric> ChaosFabric<F> {
    /// `inner`, failing each operation with `probability` (0..=1).
    #[must_use]
    pub fn new(inner: F, probability: f64, seed: u64) -> Self {
        Self {
            inner,
            probability: probability.clamp(0.0, 1.0),
            rng: Arc::new(Mutex::new(StdRng::seed_from_u64(seed))),
        }
    }

    /// The wrapped fabric.
    pub fn inner(&self) -> &F {
        &self.inner
    }

    fn fate(&self) -> Fate {
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        if !rng.random_bool(self.probability) {
            Fate::Pass
        } else if rng.random_bool(0.5) {
            Fate::Fail
        } else {
            Fate::LoseAnswer
        }
    }

    async fn write<T>(
        &self,
        what: &str,
        op: impl Future<Output = FabricResult<T>>,
    ) -> FabricResult<T> {
        match self.fate() {
            Fate::Pass => op.await,
            Fate::Fail => Err(FabricError::refused(format!("chaos: {what} refused"))),
            Fate::LoseAnswer => {
                let _ = op.await;
                Err(FabricError {
                    message: format!("chaos: {what}: connection lost before the answer"),
                    applied_unknown: true,
                    not_primary: false,
                })
            }
        }
    }

    async fn read<T>(
        &self,
        what: &str,
        op: impl Future<Output = FabricResult<T>>,
    ) -> FabricResult<T> {
        match self.fate() {
            Fate::Pass => op.await,
            Fate::Fail | Fate::LoseAnswer => {
                Err(FabricError::refused(format!("chaos: {what} failed")))
            }
        }
    }
}

impl<F: Fabric + Clone> Fabric for ChaosFabric<F> {
    async fn install(&self, pair: &PairPorts, active: Slot) -> FabricResult<Slot> {
        self.write("install", self.inner.install(pair, active))
            .await
    }

    async fn flip(&self, pair: &PairPorts, to: Slot) -> FabricResult<()> {
        self.write("selector write", self.inner.flip(pair, to))
            .await
    }

    async fn read_selector(&self, pair: &PairPorts) -> FabricResult<Option<Slot>> {
        self.read("selector read", self.inner.read_selector(pair))
            .await
    }

    async fn set_sampling(&self, pair: &PairPorts, to: Option<Slot>) -> FabricResult<()> {
        self.write("sampling write", self.inner.set_sampling(pair, to))
            .await
    }

    async fn traffic(&self, pair: &PairPorts, slot: Slot) -> FabricResult<DeviceTraffic> {
        self.read("counter read", self.inner.traffic(pair, slot))
            .await
    }
}
