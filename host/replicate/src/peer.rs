//! One device agent replication talks to: its name (for logs and errors),
//! a lazily connected gRPC channel, and the bearer token it presents.

use std::sync::Arc;
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use umbra_proto::umbra::device::v1::device_client::DeviceClient;

use crate::error::{ReplicateError, Result};

/// Largest gRPC message replication sends or accepts (the agent's limit).
pub const MAX_MESSAGE_BYTES: usize = umbra_agent::MAX_MESSAGE_BYTES;

/// A `umbra.device.v1` client to one peer.
pub type DeviceConn = DeviceClient<InterceptedService<Channel, PeerAuth>>;

/// Client interceptor adding `authorization: Bearer TOKEN` when a token is
/// configured, and nothing otherwise.
#[derive(Clone, Default)]
pub struct PeerAuth {
    header: Option<MetadataValue<Ascii>>,
}

impl std::fmt::Debug for PeerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerAuth")
            .field("token", &self.header.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl PeerAuth {
    /// Presents `token` (none: no header).
    ///
    /// # Errors
    /// [`ReplicateError::InvalidOptions`] when the token is not visible
    /// ASCII and so cannot travel in a header.
    pub fn new(token: Option<&str>) -> Result<Self> {
        let header = match token {
            None => None,
            Some(token) => {
                let mut value: MetadataValue<Ascii> =
                    format!("Bearer {token}").parse().map_err(|_| {
                        ReplicateError::InvalidOptions(vec![
                            "the token must be visible ASCII to travel in a header".into(),
                        ])
                    })?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        Ok(Self { header })
    }
}

impl Interceptor for PeerAuth {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> std::result::Result<tonic::Request<()>, tonic::Status> {
        if let Some(header) = &self.header {
            request
                .metadata_mut()
                .insert("authorization", header.clone());
        }
        Ok(request)
    }
}

/// One device agent. Cheap to clone; every clone shares the channel, which
/// reconnects by itself after the agent comes back.
#[derive(Clone, Debug)]
pub struct Peer {
    name: Arc<str>,
    channel: Channel,
    auth: PeerAuth,
}

impl Peer {
    /// A peer at `addr` (`host:port` or an `http://` / `https://` URI)
    /// connected on first use, so a peer that is down when replication
    /// starts is retried like one that goes away later.
    ///
    /// # Errors
    /// [`ReplicateError::InvalidAddress`] for an address that is not a URI,
    /// [`ReplicateError::InvalidOptions`] for a token that cannot travel in
    /// a header.
    pub fn connect_lazy(name: &str, addr: &str, token: Option<&str>) -> Result<Self> {
        Self::connect_lazy_tls(name, addr, token, None)
    }

    /// [`Peer::connect_lazy`] over TLS when `tls` is given (a bare
    /// `host:port` then means `https://host:port`; mutual TLS when the
    /// configuration carries a client identity).
    ///
    /// # Errors
    /// As [`Peer::connect_lazy`]; [`ReplicateError::Tls`] when the TLS
    /// material is unusable.
    pub fn connect_lazy_tls(
        name: &str,
        addr: &str,
        token: Option<&str>,
        tls: Option<ClientTlsConfig>,
    ) -> Result<Self> {
        let uri = if addr.contains("://") {
            addr.to_owned()
        } else if tls.is_some() {
            format!("https://{addr}")
        } else {
            format!("http://{addr}")
        };
        let endpoint =
            Endpoint::from_shared(uri).map_err(|source| ReplicateError::InvalidAddress {
                peer: name.to_owned(),
                addr: addr.to_owned(),
                source,
            })?;
        let endpoint = match tls {
            Some(tls) => endpoint
                .tls_config(tls)
                .map_err(|source| ReplicateError::Tls {
                    peer: name.to_owned(),
                    source,
                })?,
            None => endpoint,
        };
        let channel = endpoint
            .connect_timeout(Duration::from_secs(5))
            // Small Apply round trips: without TCP_NODELAY each waits for a
            // delayed ACK.
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .keep_alive_while_idle(true)
            .connect_lazy();
        Self::from_channel(name, channel, token)
    }

    /// A peer over an existing channel (for example one with mutual TLS).
    ///
    /// # Errors
    /// [`ReplicateError::InvalidOptions`] for a token that cannot travel in
    /// a header.
    pub fn from_channel(name: &str, channel: Channel, token: Option<&str>) -> Result<Self> {
        Ok(Self {
            name: name.into(),
            channel,
            auth: PeerAuth::new(token)?,
        })
    }

    /// The peer's name, as used in logs and errors.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A client over the shared channel.
    pub fn client(&self) -> DeviceConn {
        DeviceClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}
