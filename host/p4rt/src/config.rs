//! How the client reaches and identifies itself to a switch.

use std::path::Path;
use std::time::Duration;

use crate::error::{P4rtError, Result};

/// Configuration of a [`P4RuntimeClient`](crate::P4RuntimeClient).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The switch's P4Runtime address: `host:port`, or a URI
    /// (`http://host:port`, `https://host:port`).
    pub address: String,
    /// P4Runtime device id of the switch.
    pub device_id: u64,
    /// Role name; empty for the default role (full access), the only one
    /// bmv2 and Umbra's switch configure.
    pub role: String,
    /// Election id; among the controllers of a role, the highest one the
    /// switch has seen is the primary, and only the primary may write.
    /// Must not be 0 (spec: a controller without an election id is a
    /// backup forever).
    pub election_id: u128,
    /// TLS towards the switch; `None` for plaintext.
    pub tls: Option<TlsConfig>,
    /// How long a TCP (and TLS) connection may take.
    pub connect_timeout: Duration,
    /// How long the switch may take to answer the arbitration request.
    pub arbitration_timeout: Duration,
    /// How long any other RPC may take (a Read of a full table included).
    pub rpc_timeout: Duration,
    /// Most updates sent in one WriteRequest; longer batches are split.
    /// Atomicity holds per request only.
    pub max_updates_per_write: usize,
    /// Largest gRPC message accepted from the switch (Read answers of big
    /// tables).
    pub max_message_bytes: usize,
    /// Capacity of the event channel; see
    /// [`ClientEvent`](crate::ClientEvent) for what happens when it is
    /// full.
    pub event_capacity: usize,
    /// Packet-outs and arbitration messages queued towards the switch;
    /// [`send_packet_out`](crate::P4RuntimeClient::send_packet_out) waits
    /// while the queue is full.
    pub outbound_capacity: usize,
    /// Reconnection delays.
    pub backoff: BackoffConfig,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            address: "127.0.0.1:9559".into(),
            device_id: 1,
            role: String::new(),
            election_id: 1,
            tls: None,
            connect_timeout: Duration::from_secs(5),
            arbitration_timeout: Duration::from_secs(5),
            rpc_timeout: Duration::from_secs(30),
            max_updates_per_write: 500,
            max_message_bytes: 64 * 1024 * 1024,
            event_capacity: 1024,
            outbound_capacity: 256,
            backoff: BackoffConfig::default(),
        }
    }
}

impl ClientConfig {
    /// The default configuration for the switch at `address`.
    #[must_use]
    pub fn new(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            ..Self::default()
        }
    }

    /// Every problem with this configuration.
    ///
    /// # Errors
    ///
    /// [`P4rtError::Config`] listing them all.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        if self.address.trim().is_empty() {
            problems.push("address is empty".to_owned());
        }
        if self.election_id == 0 {
            problems.push(
                "election_id 0 never makes a primary: use an election id of at least 1".to_owned(),
            );
        }
        for (name, value) in [
            ("connect_timeout", self.connect_timeout),
            ("arbitration_timeout", self.arbitration_timeout),
            ("rpc_timeout", self.rpc_timeout),
        ] {
            if value.is_zero() {
                problems.push(format!("{name} is zero"));
            }
        }
        for (name, value) in [
            ("max_updates_per_write", self.max_updates_per_write),
            ("max_message_bytes", self.max_message_bytes),
            ("event_capacity", self.event_capacity),
            ("outbound_capacity", self.outbound_capacity),
        ] {
            if value == 0 {
                problems.push(format!("{name} must be at least 1"));
            }
        }
        if let Some(tls) = &self.tls {
            if tls.ca_certificate_pem.is_empty() {
                problems.push("tls.ca_certificate_pem is empty".to_owned());
            }
            if tls.client_certificate_pem.is_some() != tls.client_key_pem.is_some() {
                problems.push(
                    "tls: a client certificate needs its key and a key its certificate".to_owned(),
                );
            }
            if self.address.starts_with("http://") {
                problems.push("tls is set but the address says http://".to_owned());
            }
        }
        problems.extend(self.backoff.problems());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(P4rtError::Config { problems })
        }
    }

    /// The URI to dial.
    pub(crate) fn uri(&self) -> String {
        if self.address.contains("://") {
            self.address.clone()
        } else if self.tls.is_some() {
            format!("https://{}", self.address)
        } else {
            format!("http://{}", self.address)
        }
    }
}

/// TLS towards the switch (rustls, through tonic).
#[derive(Clone)]
pub struct TlsConfig {
    /// PEM of the CA that signed the switch's certificate.
    pub ca_certificate_pem: Vec<u8>,
    /// PEM of this client's certificate, for mutual TLS.
    pub client_certificate_pem: Option<Vec<u8>>,
    /// PEM of this client's private key, for mutual TLS.
    pub client_key_pem: Option<Vec<u8>>,
    /// Name expected in the switch's certificate, when it is not the host
    /// part of the address.
    pub domain_name: Option<String>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("TlsConfig")
            .field("ca_certificate_pem", &self.ca_certificate_pem.len())
            .field("client_certificate", &self.client_certificate_pem.is_some())
            .field(
                "client_key",
                &self.client_key_pem.as_ref().map(|_| "<redacted>"),
            )
            .field("domain_name", &self.domain_name)
            .finish()
    }
}

impl TlsConfig {
    /// Reads the CA certificate and, when both are given, the client
    /// certificate and key from PEM files.
    ///
    /// # Errors
    ///
    /// [`P4rtError::Config`] naming every file that cannot be read.
    pub fn from_pem_files(
        ca_certificate: &Path,
        client_identity: Option<(&Path, &Path)>,
    ) -> Result<Self> {
        let mut problems = Vec::new();
        let mut read = |path: &Path| {
            std::fs::read(path)
                .map_err(|e| problems.push(format!("cannot read {}: {e}", path.display())))
                .ok()
        };
        let ca = read(ca_certificate);
        let identity = client_identity.map(|(cert, key)| (read(cert), read(key)));
        if !problems.is_empty() {
            return Err(P4rtError::Config { problems });
        }
        let (client_certificate_pem, client_key_pem) = match identity {
            Some((cert, key)) => (cert, key),
            None => (None, None),
        };
        Ok(Self {
            ca_certificate_pem: ca.unwrap_or_default(),
            client_certificate_pem,
            client_key_pem,
            domain_name: None,
        })
    }
}

/// Exponential backoff between reconnection attempts: the `n`-th delay is
/// `initial * multiplier^n` capped at `max`, then shortened by a random
/// share of up to `jitter` so that many clients of a restarted switch do not
/// reconnect in lockstep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffConfig {
    /// Delay before the first attempt.
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
    /// Growth factor per failed attempt (at least 1).
    pub multiplier: f64,
    /// Share of each delay that is random, in `[0, 1]`.
    pub jitter: f64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            multiplier: 2.0,
            jitter: 0.2,
        }
    }
}

impl BackoffConfig {
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.initial.is_zero() {
            problems.push("backoff.initial is zero".to_owned());
        }
        if self.max < self.initial {
            problems.push("backoff.max is shorter than backoff.initial".to_owned());
        }
        if !(self.multiplier >= 1.0 && self.multiplier.is_finite()) {
            problems.push(format!(
                "backoff.multiplier {} is not a finite number >= 1",
                self.multiplier
            ));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            problems.push(format!("backoff.jitter {} is not in [0, 1]", self.jitter));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid_and_every_problem_is_reported() {
        ClientConfig::default().validate().unwrap();
        let config = ClientConfig {
            address: "http://switch:9559".into(),
            election_id: 0,
            rpc_timeout: Duration::ZERO,
            max_updates_per_write: 0,
            tls: Some(TlsConfig {
                ca_certificate_pem: Vec::new(),
                client_certificate_pem: Some(b"cert".to_vec()),
                client_key_pem: None,
                domain_name: None,
            }),
            backoff: BackoffConfig {
                jitter: 2.0,
                ..BackoffConfig::default()
            },
            ..ClientConfig::default()
        };
        let Err(P4rtError::Config { problems }) = config.validate() else {
            panic!("invalid config accepted");
        };
        assert_eq!(problems.len(), 7, "{problems:#?}");
    }

    #[test]
    fn uri_gets_the_scheme_tls_implies() {
        let mut config = ClientConfig::new("10.0.0.1:9559");
        assert_eq!(config.uri(), "http://10.0.0.1:9559");
        config.tls = Some(TlsConfig {
            ca_certificate_pem: b"x".to_vec(),
            client_certificate_pem: None,
            client_key_pem: None,
            domain_name: None,
        });
        assert_eq!(config.uri(), "https://10.0.0.1:9559");
        config.address = "https://switch.lab:9559".into();
        assert_eq!(config.uri(), "https://switch.lab:9559");
    }

    #[test]
    fn tls_files_that_cannot_be_read_are_all_named() {
        let err = TlsConfig::from_pem_files(
            Path::new("/nonexistent/ca.pem"),
            Some((
                Path::new("/nonexistent/c.pem"),
                Path::new("/nonexistent/k.pem"),
            )),
        )
        .unwrap_err();
        let P4rtError::Config { problems } = err else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(problems.len(), 3, "{problems:#?}");
    }
}
