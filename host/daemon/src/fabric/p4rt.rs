//! [`Fabric`] over P4Runtime: Umbra's switch or bmv2, names resolved
//! through the P4Info by the client.

use umbra_orchestrator::Slot;
use umbra_p4rt::{
    Atomicity, CloneSession, FieldMatch, P4RuntimeClient, P4rtError, TableEntry, Update,
};

use super::{DeviceTraffic, Fabric, FabricError, FabricResult, PairPorts, SamplingMode};

const PORT_CLASSIFY: &str = "UmbraIngress.port_classify";
const SELECTOR: &str = "UmbraIngress.service_selector";
const PORTMAP: &str = "UmbraIngress.device_portmap";
const SAMPLING: &str = "UmbraIngress.mirror_sampling";
const TRUNCATE: &str = "UmbraEgress.mirror_truncate";

/// Direction values of `umbra.p4`: client → server.
const TO_SERVER: u8 = 0;
/// Server → client.
const TO_CLIENT: u8 = 1;

/// A switch programmed over P4Runtime. The client must have pushed (or
/// adopted) the `umbra.p4` pipeline.
#[derive(Clone, Debug)]
pub struct P4rtFabric {
    client: P4RuntimeClient,
}

impl P4rtFabric {
    /// The fabric of the switch `client` talks to.
    #[must_use]
    pub fn new(client: P4RuntimeClient) -> Self {
        Self { client }
    }

    /// The P4Runtime client.
    #[must_use]
    pub fn client(&self) -> &P4RuntimeClient {
        &self.client
    }

    fn selector(&self, pair: &PairPorts, slot: Slot) -> Result<TableEntry, P4rtError> {
        self.client
            .schema()?
            .table(SELECTOR)
            .exact("service_id", pair.service)
            .action("UmbraIngress.set_active_device")
            .param("device", pair.device(slot).device)
            .build()
    }

    fn sampling_entries(
        &self,
        pair: &PairPorts,
        to: Option<Slot>,
    ) -> Result<Vec<TableEntry>, P4rtError> {
        let schema = self.client.schema()?;
        [pair.client_port, pair.server_port]
            .into_iter()
            .map(|port| {
                let entry = schema.table(SAMPLING).exact("ingress_port", port);
                match to {
                    None => entry.action("UmbraIngress.no_sampling").build(),
                    Some(slot) => {
                        let session = pair.mirror_session(slot);
                        let one_in = pair.sampling.one_in.max(1);
                        match pair.sampling.mode {
                            SamplingMode::Packet => entry
                                .action("UmbraIngress.sample_per_packet")
                                .param("one_in_n", one_in)
                                .param("session", session),
                            SamplingMode::Flow => entry
                                .action("UmbraIngress.sample_per_flow")
                                .param("threshold", u32::MAX / one_in)
                                .param("session", session),
                        }
                        .build()
                    }
                }
            })
            .collect()
    }

    /// The pair's entries other than the selector: classification of the
    /// service ports and the device legs, steering per device and
    /// direction, sampling to the standby, truncation on both monitors.
    fn steering_entries(
        &self,
        pair: &PairPorts,
        standby: Slot,
    ) -> Result<Vec<TableEntry>, P4rtError> {
        let schema = self.client.schema()?;
        let mut entries = Vec::new();
        for (port, direction) in [(pair.client_port, TO_SERVER), (pair.server_port, TO_CLIENT)] {
            entries.push(
                schema
                    .table(PORT_CLASSIFY)
                    .exact("ingress_port", port)
                    .action("UmbraIngress.set_service")
                    .param("service_id", pair.service)
                    .param("direction", direction)
                    .build()?,
            );
        }
        for device in &pair.devices {
            for (leg, towards) in [
                (device.client_leg, pair.client_port),
                (device.server_leg, pair.server_port),
            ] {
                entries.push(
                    schema
                        .table(PORT_CLASSIFY)
                        .exact("ingress_port", leg)
                        .action("UmbraIngress.forward_to_port")
                        .param("port", towards)
                        .build()?,
                );
            }
            for (direction, leg) in [
                (TO_SERVER, device.client_leg),
                (TO_CLIENT, device.server_leg),
            ] {
                entries.push(
                    schema
                        .table(PORTMAP)
                        .exact("device", device.device)
                        .exact("direction", direction)
                        .action("UmbraIngress.steer_to_port")
                        .param("port", leg)
                        .build()?,
                );
            }
            let truncate = schema.table(TRUNCATE).exact("egress_port", device.monitor);
            entries.push(if pair.sampling.truncate_bytes == 0 {
                truncate.action("UmbraEgress.no_truncate").build()?
            } else {
                truncate
                    .action("UmbraEgress.truncate_mirror")
                    .param("length", pair.sampling.truncate_bytes)
                    .build()?
            });
        }
        entries.extend(self.sampling_entries(pair, Some(standby))?);
        Ok(entries)
    }

    /// Inserts every update; those refused with ALREADY_EXISTS are sent
    /// again as modifies, so installing twice (a daemon restart) converges.
    async fn upsert(&self, updates: Vec<Update>) -> Result<(), P4rtError> {
        let Err(P4rtError::Write(error)) = self
            .client
            .write(updates.clone(), Atomicity::ContinueOnError)
            .await
        else {
            return Ok(());
        };
        let mut again = Vec::new();
        for (update, status) in updates.into_iter().zip(&error.updates) {
            match (update, status.code) {
                (_, tonic::Code::Ok) => {}
                (Update::InsertEntry(entry), tonic::Code::AlreadyExists) => {
                    again.push(Update::ModifyEntry(entry));
                }
                (Update::InsertCloneSession(session), tonic::Code::AlreadyExists) => {
                    again.push(Update::ModifyCloneSession(session));
                }
                _ => return Err(P4rtError::Write(error)),
            }
        }
        if error.updates.is_empty() {
            return Err(P4rtError::Write(error));
        }
        if again.is_empty() {
            return Ok(());
        }
        self.client.write(again, Atomicity::ContinueOnError).await
    }
}

fn fabric_error(context: &str, error: &P4rtError) -> FabricError {
    let not_primary = matches!(error, P4rtError::NotPrimary(_));
    FabricError {
        message: format!("{context}: {error}"),
        // A write whose connection failed may have reached the switch.
        applied_unknown: error.is_transient(),
        not_primary,
    }
}

fn field(entry: &TableEntry, name: &str) -> Option<u64> {
    match entry.key().field(name) {
        Some(FieldMatch::Exact { value }) => value.as_u64(),
        _ => None,
    }
}

impl Fabric for P4rtFabric {
    async fn install(&self, pair: &PairPorts, active: Slot) -> FabricResult<Slot> {
        let active = match self.read_selector(pair).await? {
            Some(slot) => slot,
            None => active,
        };
        let build = || -> Result<Vec<Update>, P4rtError> {
            let mut updates = Vec::new();
            for slot in [Slot::A, Slot::B] {
                updates.push(Update::InsertCloneSession(
                    CloneSession::builder(pair.mirror_session(slot))
                        .replica(u32::from(pair.device(slot).monitor), 0)
                        .build()?,
                ));
            }
            updates.extend(
                self.steering_entries(pair, active.other())?
                    .into_iter()
                    .map(Update::InsertEntry),
            );
            Ok(updates)
        };
        let updates = build().map_err(|e| fabric_error("building the pair's entries", &e))?;
        self.upsert(updates)
            .await
            .map_err(|e| fabric_error("installing the pair's steering", &e))?;
        // The selector last, and only if the switch has none: a selector
        // already there is the switch's word on which device is active.
        let selector = self
            .selector(pair, active)
            .map_err(|e| fabric_error("building the selector", &e))?;
        match self.client.insert(selector).await {
            Ok(()) => Ok(active),
            Err(P4rtError::Write(error))
                if error
                    .updates
                    .first()
                    .is_some_and(|u| u.code == tonic::Code::AlreadyExists) =>
            {
                // Written meanwhile (another host): read it again.
                Ok(self.read_selector(pair).await?.unwrap_or(active))
            }
            Err(error) => Err(fabric_error("writing the selector", &error)),
        }
    }

    async fn flip(&self, pair: &PairPorts, to: Slot) -> FabricResult<()> {
        let entry = self
            .selector(pair, to)
            .map_err(|e| fabric_error("building the selector", &e))?;
        self.client
            .modify(entry)
            .await
            .map_err(|e| fabric_error("writing the selector", &e))
    }

    async fn read_selector(&self, pair: &PairPorts) -> FabricResult<Option<Slot>> {
        let entries = self
            .client
            .read_table(SELECTOR)
            .await
            .map_err(|e| fabric_error("reading the selector", &e))?;
        let Some(entry) = entries
            .into_iter()
            .find(|entry| field(entry, "service_id") == Some(u64::from(pair.service)))
        else {
            return Ok(None);
        };
        let device = entry.action().param("device").and_then(|v| v.as_u64());
        let slot = device
            .and_then(|d| u8::try_from(d).ok())
            .and_then(|d| pair.slot_of(d));
        if slot.is_some() {
            // The switch's word becomes this client's desired state, so a
            // reconcile after a reconnection keeps it rather than writing
            // back what this host believed before the read (and a backup
            // that has written nothing still adopts the rest on takeover).
            self.client.note_installed_entry(entry);
        }
        Ok(slot)
    }

    async fn set_sampling(&self, pair: &PairPorts, to: Option<Slot>) -> FabricResult<()> {
        let entries = self
            .sampling_entries(pair, to)
            .map_err(|e| fabric_error("building the sampling entries", &e))?;
        self.client
            .write(
                entries.into_iter().map(Update::ModifyEntry).collect(),
                Atomicity::RollbackOnError,
            )
            .await
            .map_err(|e| fabric_error("writing the sampling entries", &e))
    }

    async fn traffic(&self, pair: &PairPorts, slot: Slot) -> FabricResult<DeviceTraffic> {
        let device = u64::from(pair.device(slot).device);
        let counters = self
            .client
            .read_direct_counters(PORTMAP)
            .await
            .map_err(|e| fabric_error("reading the steering counters", &e))?;
        let mut traffic = DeviceTraffic::default();
        for (entry, data) in &counters {
            if field(entry, "device") != Some(device) {
                continue;
            }
            match field(entry, "direction") {
                Some(d) if d == u64::from(TO_SERVER) => traffic.to_server += data.packets,
                Some(d) if d == u64::from(TO_CLIENT) => traffic.to_client += data.packets,
                _ => {}
            }
        }
        Ok(traffic)
    }
}
