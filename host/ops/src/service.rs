//! The management API's server: `umbra.management.v1.Management` over a
//! [`Control`], with the optional bearer token check. Request errors become
//! `tonic::Status` here, in `impl From<OpsError> for Status` and nowhere else.

use std::{path::PathBuf, sync::Arc};

use sha2::{Digest as _, Sha256};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, metadata::MetadataMap};
use umbra_proto::umbra::management::v1::{
    self as pb,
    management_server::{Management, ManagementServer},
};

use crate::{
    OpsError, Result,
    control::{Control, FailoverRefused},
    wire,
};

/// Serves the management API on `listener` until `shutdown` is cancelled,
/// then lets the calls in progress finish.
///
/// With a `token`, every call must carry `authorization: Bearer TOKEN`
/// (compared in constant time); the others end with UNAUTHENTICATED.
///
/// # Errors
/// [`OpsError::InvalidToken`] for an empty or non-ASCII token (before
/// serving anything); [`OpsError::Grpc`] when the server fails.
pub async fn serve(
    listener: TcpListener,
    control: Arc<dyn Control>,
    token: Option<String>,
    shutdown: CancellationToken,
) -> Result<()> {
    let expected_token = match token {
        None => None,
        Some(token) if token.is_empty() => return Err(OpsError::InvalidToken("it is empty")),
        Some(token) if !token.bytes().all(|b| b.is_ascii_graphic()) => {
            return Err(OpsError::InvalidToken(
                "it must be visible ASCII to travel in a header",
            ));
        }
        Some(token) => Some(token_digest(&token)),
    };
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, token = expected_token.is_some(), "management API listening");
    }
    let service = ManagementService {
        control,
        expected_token,
    };
    tonic::transport::Server::builder()
        .add_service(ManagementServer::new(service))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown.cancelled_owned())
        .await
        .map_err(OpsError::Grpc)
}

/// The one place where request errors become gRPC statuses.
impl From<OpsError> for Status {
    fn from(error: OpsError) -> Self {
        match &error {
            OpsError::Unauthenticated(_) => Status::unauthenticated(error.to_string()),
            OpsError::UnknownPair(_) => Status::not_found(error.to_string()),
            OpsError::InvalidRequest(_) => Status::invalid_argument(error.to_string()),
            _ => Status::internal(error.to_string()),
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

struct ManagementService {
    control: Arc<dyn Control>,
    /// SHA-256 of the configured token; `None` lets every call through.
    expected_token: Option<[u8; 32]>,
}

impl ManagementService {
    /// Checks the token and returns who is calling: the peer's address,
    /// plus "with token" when it presented the (right) token. That is the
    /// `by` of a manual failover in the audit log.
    fn authorize<T>(&self, request: &Request<T>) -> Result<String> {
        let peer = request
            .remote_addr()
            .map_or_else(|| "unknown peer".to_owned(), |addr| addr.to_string());
        let Some(expected) = &self.expected_token else {
            return Ok(peer);
        };
        match bearer_token(request.metadata()) {
            None => Err(OpsError::Unauthenticated(
                "missing bearer token (authorization: Bearer TOKEN)",
            )),
            Some(token) if same_digest(&token_digest(token), expected) => {
                Ok(format!("{peer} with token"))
            }
            Some(_) => Err(OpsError::Unauthenticated("invalid bearer token")),
        }
    }
}

fn bearer_token(metadata: &MetadataMap) -> Option<&str> {
    metadata
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

#[tonic::async_trait]
impl Management for ManagementService {
    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        self.authorize(&request)?;
        let filter = request.into_inner().pair;
        let host = self.control.host();
        let mut pairs = self.control.status();
        if let Some(name) = &filter {
            pairs.retain(|pair| &pair.name == name);
            if pairs.is_empty() {
                return Err(OpsError::UnknownPair(name.clone()).into());
            }
        }
        Ok(Response::new(pb::StatusResponse {
            host: host.name,
            election_id: Some(wire::uint128(host.election_id)),
            pairs: pairs.into_iter().map(Into::into).collect(),
        }))
    }

    async fn failover(
        &self,
        request: Request<pb::FailoverRequest>,
    ) -> Result<Response<pb::FailoverResponse>, Status> {
        let by = self.authorize(&request)?;
        let pb::FailoverRequest { pair, reason } = request.into_inner();
        if pair.is_empty() {
            return Err(OpsError::InvalidRequest("the pair name is empty".into()).into());
        }
        tracing::info!(%pair, %by, %reason, "manual failover asked for");
        let response = match self.control.failover(&pair, &by, &reason).await {
            Ok(message) => pb::FailoverResponse {
                accepted: true,
                message,
            },
            Err(FailoverRefused::Refused(message)) => pb::FailoverResponse {
                accepted: false,
                message,
            },
            Err(FailoverRefused::NotFound) => return Err(OpsError::UnknownPair(pair).into()),
        };
        Ok(Response::new(response))
    }

    async fn reload_policies(
        &self,
        request: Request<pb::ReloadPoliciesRequest>,
    ) -> Result<Response<pb::ReloadPoliciesResponse>, Status> {
        let by = self.authorize(&request)?;
        tracing::info!(%by, "policy reload asked for");
        let reloads = self.control.reload_policies().await;
        Ok(Response::new(pb::ReloadPoliciesResponse {
            reloads: reloads.into_iter().map(Into::into).collect(),
        }))
    }

    async fn reload_model(
        &self,
        request: Request<pb::ReloadModelRequest>,
    ) -> Result<Response<pb::ReloadModelResponse>, Status> {
        let by = self.authorize(&request)?;
        let path = request.into_inner().path;
        if path.as_deref() == Some("") {
            return Err(OpsError::InvalidRequest("the model path is empty".into()).into());
        }
        tracing::info!(%by, ?path, "model reload asked for");
        let response = match self.control.reload_model(path.map(PathBuf::from)).await {
            Ok(model) => pb::ReloadModelResponse {
                ok: true,
                model,
                error: String::new(),
            },
            Err(error) => pb::ReloadModelResponse {
                ok: false,
                model: String::new(),
                error,
            },
        };
        Ok(Response::new(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_compare_equal_only_for_the_same_token() {
        let expected = token_digest("s3cret");
        assert!(same_digest(&token_digest("s3cret"), &expected));
        for other in ["s3cre", "s3cret2", "S3cret", ""] {
            assert!(!same_digest(&token_digest(other), &expected), "{other}");
        }
    }

    #[test]
    fn request_errors_map_to_their_grpc_codes() {
        let code = |e: OpsError| Status::from(e).code();
        assert_eq!(
            code(OpsError::Unauthenticated("x")),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            code(OpsError::UnknownPair("web".into())),
            tonic::Code::NotFound
        );
        assert_eq!(
            code(OpsError::InvalidRequest("x".into())),
            tonic::Code::InvalidArgument
        );
    }
}
