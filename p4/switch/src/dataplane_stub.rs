//! Temporary stand-in while the AF_PACKET dataplane is written.
#![allow(missing_docs)]
use std::sync::Arc;
use umbra_pipeline::Pipeline;
#[derive(Debug, thiserror::Error)]
#[error("stub")]
pub struct DataplaneError;
pub struct Dataplane;
impl Dataplane {
    pub fn start(
        _p: Arc<Pipeline>,
        _ports: &[(u16, String)],
        _cpu: u16,
        _tx: tokio::sync::mpsc::Sender<Vec<u8>>,
    ) -> Result<Self, DataplaneError> {
        Ok(Dataplane)
    }
    pub fn packet_out(&self, _frame: Vec<u8>) {}
    pub fn shutdown(self) {}
}
