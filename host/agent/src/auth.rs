//! Who may talk to the agent: a bearer token (compared in constant time)
//! and/or mutual TLS (rustls through tonic; the client's certificate must
//! chain to the configured CA, or the handshake fails). Every RPC requires
//! what is configured; running with neither takes an explicit opt-in.

use sha2::{Digest as _, Sha256};
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tonic::{Request, Status};

/// The agent's TLS material (PEM).
#[derive(Clone)]
pub struct ServerTls {
    /// The agent's certificate chain.
    pub certificate_pem: Vec<u8>,
    /// The agent's private key.
    pub key_pem: Vec<u8>,
    /// CA that client certificates must chain to; `None` serves TLS
    /// without client certificates (the token then authenticates).
    pub client_ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("certificate_pem", &self.certificate_pem.len())
            .field("key_pem", &"<redacted>")
            .field("client_ca", &self.client_ca_pem.is_some())
            .finish()
    }
}

impl ServerTls {
    /// tonic's server TLS configuration: client certificates required when
    /// a client CA is set.
    pub fn server_config(&self) -> ServerTlsConfig {
        let config = ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.certificate_pem, &self.key_pem));
        match &self.client_ca_pem {
            Some(ca) => config.client_ca_root(Certificate::from_pem(ca)),
            None => config,
        }
    }
}

/// How clients authenticate.
#[derive(Clone, Default)]
pub struct Security {
    /// Required bearer token (`authorization: Bearer TOKEN`).
    pub token: Option<String>,
    /// TLS, with client certificates when it has a client CA.
    pub tls: Option<ServerTls>,
    /// Serve with neither a token nor client certificates (labs only).
    pub allow_unauthenticated: bool,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("allow_unauthenticated", &self.allow_unauthenticated)
            .finish()
    }
}

impl Security {
    /// Every problem with this configuration; none if usable.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.token.as_ref().is_some_and(|t| t.is_empty()) {
            problems.push("the token is empty".into());
        }
        let mutual = self.tls.as_ref().is_some_and(|t| t.client_ca_pem.is_some());
        if self.token.is_none() && !mutual && !self.allow_unauthenticated {
            problems.push(
                "no authentication: give a token file, a client CA (mutual TLS), or both \
                 (or explicitly allow unauthenticated access)"
                    .into(),
            );
        }
        problems
    }

    /// The interceptor enforcing the token part.
    pub fn interceptor(&self) -> TokenCheck {
        TokenCheck {
            expected: self.token.as_deref().map(token_digest),
        }
    }
}

fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares two digests without an early exit, so the time taken does not
/// tell how much of a guessed token was right. Hashing first makes the
/// lengths equal and hides the token's length.
fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Server-side interceptor: refuses calls without the configured bearer
/// token with UNAUTHENTICATED (and lets every call through when no token
/// is configured).
#[derive(Clone)]
pub struct TokenCheck {
    expected: Option<[u8; 32]>,
}

impl std::fmt::Debug for TokenCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCheck")
            .field("required", &self.expected.is_some())
            .finish()
    }
}

impl Interceptor for TokenCheck {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.expected else {
            return Ok(request);
        };
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match presented {
            None => Err(Status::unauthenticated(
                "missing bearer token (authorization: Bearer TOKEN)",
            )),
            Some(token) if same_digest(&token_digest(token), expected) => Ok(request),
            Some(_) => Err(Status::unauthenticated("invalid bearer token")),
        }
    }
}

/// Client-side interceptor adding `authorization: Bearer TOKEN` to every
/// call, for `DeviceClient::with_interceptor`.
#[derive(Clone)]
pub struct BearerToken {
    header: MetadataValue<tonic::metadata::Ascii>,
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

impl BearerToken {
    /// An interceptor presenting `token`.
    ///
    /// # Errors
    /// [`crate::AgentError::InvalidOptions`] when the token is not visible
    /// ASCII (it could not travel in a header).
    pub fn new(token: &str) -> crate::Result<Self> {
        let mut header: MetadataValue<_> = format!("Bearer {token}").parse().map_err(|_| {
            crate::AgentError::InvalidOptions(vec![
                "the token must be visible ASCII to travel in a header".into(),
            ])
        })?;
        header.set_sensitive(true);
        Ok(Self { header })
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.header.clone());
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(check: &mut TokenCheck, header: Option<&str>) -> Result<(), tonic::Code> {
        let mut request = Request::new(());
        if let Some(h) = header {
            request
                .metadata_mut()
                .insert("authorization", h.parse().unwrap());
        }
        check.call(request).map(drop).map_err(|s| s.code())
    }

    #[test]
    fn the_token_check_accepts_only_the_exact_token() {
        let security = Security {
            token: Some("s3cret".into()),
            ..Security::default()
        };
        let mut check = security.interceptor();
        assert_eq!(call(&mut check, Some("Bearer s3cret")), Ok(()));
        for bad in [
            None,
            Some("Bearer s3cre"),
            Some("Bearer s3cret2"),
            Some("s3cret"),
            Some("Basic s3cret"),
        ] {
            assert_eq!(
                call(&mut check, bad),
                Err(tonic::Code::Unauthenticated),
                "{bad:?}"
            );
        }
        let mut open = Security::default().interceptor();
        assert_eq!(call(&mut open, None), Ok(()));
        let mut client = BearerToken::new("s3cret").unwrap();
        let request = client.call(Request::new(())).unwrap();
        assert!(check.call(request).is_ok());
        assert!(BearerToken::new("bad\ntoken").is_err());
    }

    #[test]
    fn no_authentication_needs_an_explicit_opt_in() {
        assert_eq!(Security::default().validate().len(), 1);
        assert!(
            Security {
                allow_unauthenticated: true,
                ..Security::default()
            }
            .validate()
            .is_empty()
        );
        // TLS without client certificates does not authenticate anyone.
        let server_only = Security {
            tls: Some(ServerTls {
                certificate_pem: Vec::new(),
                key_pem: Vec::new(),
                client_ca_pem: None,
            }),
            ..Security::default()
        };
        assert_eq!(server_only.validate().len(), 1);
        assert_eq!(
            Security {
                token: Some(String::new()),
                ..Security::default()
            }
            .validate()
            .len(),
            1
        );
    }
}
