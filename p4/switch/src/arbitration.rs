//! Client arbitration (P4Runtime spec §5.3–5.4): which controller of a role is
//! the primary, and telling every controller about it.
//!
//! The rule, per role: the highest election id *ever seen* wins. A controller
//! whose election id is at least that high becomes primary (a re-connecting
//! primary with the same id takes its place back); when the primary goes
//! away there is no primary until some controller arbitrates with an id at
//! least as high as the highest seen. Controllers without an election id are
//! backups forever. Two live controllers of a role may not share an id.

use std::collections::{BTreeMap, HashMap};

use tokio::sync::{mpsc, watch};
use tonic::{Code, Status};
use umbra_proto::google::rpc;
use umbra_proto::p4::v1::{
    MasterArbitrationUpdate, Role, StreamMessageResponse, Uint128, stream_message_response,
};

/// A 128-bit election id.
pub type ElectionId = u128;

/// Identifies one StreamChannel for the life of the switch process.
pub type StreamId = u64;

/// Where a stream's responses go: two paths, so that a controller that
/// stops reading can neither miss its latest mastership state nor make the
/// switch buffer without bound.
#[derive(Debug, Clone)]
pub struct ResponseSender {
    /// The latest mastership update for this stream. Only the newest value
    /// is kept: a slow reader skips stale states but always gets the last.
    pub mastership: watch::Sender<Option<MasterArbitrationUpdate>>,
    /// Packet-ins and stream errors, bounded; when full, packet-ins are
    /// dropped and counted by the caller and stream errors are dropped.
    pub messages: mpsc::Sender<Result<StreamMessageResponse, Status>>,
}

impl ResponseSender {
    fn announce(&self, update: MasterArbitrationUpdate) {
        // Fails only when the stream is gone, and then nobody is listening.
        let _ = self.mastership.send(Some(update));
    }
}

/// Converts the wire form of an election id.
pub fn election_id(id: &Uint128) -> ElectionId {
    (u128::from(id.high) << 64) | u128::from(id.low)
}

/// Converts an election id to its wire form.
pub fn to_uint128(id: ElectionId) -> Uint128 {
    Uint128 {
        high: (id >> 64) as u64,
        low: id as u64,
    }
}

#[derive(Debug)]
struct Controller {
    election_id: Option<ElectionId>,
    sender: ResponseSender,
}

#[derive(Debug, Default)]
struct RoleState {
    controllers: BTreeMap<StreamId, Controller>,
    highest_seen: Option<ElectionId>,
    primary: Option<StreamId>,
}

impl RoleState {
    fn primary_election_id(&self) -> Option<ElectionId> {
        self.primary
            .and_then(|stream| self.controllers.get(&stream))
            .and_then(|controller| controller.election_id)
    }

    /// The arbitration message controller `stream` should see now.
    fn update_for(&self, device_id: u64, role: &str, stream: StreamId) -> MasterArbitrationUpdate {
        let (code, message) = match self.primary {
            Some(primary) if primary == stream => (Code::Ok, "you are the primary"),
            Some(_) => (Code::AlreadyExists, "another controller is the primary"),
            None => (Code::NotFound, "there is no primary"),
        };
        let shown = self.primary_election_id().or(self.highest_seen);
        MasterArbitrationUpdate {
            device_id,
            role: (!role.is_empty()).then(|| Role {
                name: role.to_owned(),
                ..Role::default()
            }),
            election_id: shown.map(to_uint128),
            status: Some(rpc::Status {
                code: code as i32,
                message: message.to_owned(),
                details: Vec::new(),
            }),
        }
    }

    /// Tells every controller of the role who is primary.
    fn notify_all(&self, device_id: u64, role: &str) {
        for (stream, controller) in &self.controllers {
            controller
                .sender
                .announce(self.update_for(device_id, role, *stream));
        }
    }
}

/// The StreamChannel message carrying a mastership update.
pub fn arbitration_response(update: MasterArbitrationUpdate) -> StreamMessageResponse {
    StreamMessageResponse {
        update: Some(stream_message_response::Update::Arbitration(update)),
    }
}

/// Why an arbitration request was refused; the stream is closed with it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArbitrationError {
    /// Another live controller of the role already uses this election id.
    /// The client is at fault (spec: INVALID_ARGUMENT).
    #[error("election id {0} is already used by another controller of role {1:?}")]
    DuplicateElectionId(ElectionId, String),
    /// The stream arbitrated for one role and now asks for another. The
    /// client is at fault.
    #[error("this stream arbitrated for role {0:?}; a stream cannot change its role")]
    RoleChanged(String),
}

impl From<ArbitrationError> for Status {
    fn from(error: ArbitrationError) -> Self {
        match error {
            ArbitrationError::DuplicateElectionId(..) => {
                Status::invalid_argument(error.to_string())
            }
            ArbitrationError::RoleChanged(_) => Status::failed_precondition(error.to_string()),
        }
    }
}

/// Arbitration state of one device: every role's controllers and primary.
#[derive(Debug)]
pub struct Arbitration {
    device_id: u64,
    roles: HashMap<String, RoleState>,
    stream_roles: HashMap<StreamId, String>,
}

impl Arbitration {
    /// No controllers yet.
    pub fn new(device_id: u64) -> Self {
        Self {
            device_id,
            roles: HashMap::new(),
            stream_roles: HashMap::new(),
        }
    }

    /// Handles a MasterArbitrationUpdate from `stream`: records the
    /// controller, elects, and notifies every controller of the role (the
    /// requester always gets an answer).
    ///
    /// # Errors
    /// [`ArbitrationError`] when the id is taken or the role changes.
    pub fn arbitrate(
        &mut self,
        stream: StreamId,
        role: &str,
        election_id: Option<ElectionId>,
        sender: &ResponseSender,
    ) -> Result<(), ArbitrationError> {
        if let Some(previous) = self.stream_roles.get(&stream)
            && previous != role
        {
            return Err(ArbitrationError::RoleChanged(previous.clone()));
        }
        let state = self.roles.entry(role.to_owned()).or_default();
        if let Some(id) = election_id
            && state
                .controllers
                .iter()
                .any(|(other, c)| *other != stream && c.election_id == Some(id))
        {
            return Err(ArbitrationError::DuplicateElectionId(id, role.to_owned()));
        }
        self.stream_roles.insert(stream, role.to_owned());
        state.controllers.insert(
            stream,
            Controller {
                election_id,
                sender: sender.clone(),
            },
        );

        let before = state.primary;
        if let Some(id) = election_id {
            if state.highest_seen.is_none_or(|highest| id >= highest) {
                state.highest_seen = Some(id);
                state.primary = Some(stream);
            } else if state.primary == Some(stream) {
                // The primary lowered its own id below the highest seen.
                state.primary = None;
            }
        } else if state.primary == Some(stream) {
            state.primary = None;
        }

        // Everyone hears of a new primary, and of the primary re-asserting
        // itself (an advisory to the backups); otherwise only the requester
        // is answered.
        if state.primary != before || state.primary == Some(stream) {
            state.notify_all(self.device_id, role);
        } else {
            sender.announce(state.update_for(self.device_id, role, stream));
        }
        Ok(())
    }

    /// Forgets a stream that ended; if it was the primary, every remaining
    /// controller of its role is told there is none.
    pub fn disconnect(&mut self, stream: StreamId) {
        let Some(role) = self.stream_roles.remove(&stream) else {
            return;
        };
        let Some(state) = self.roles.get_mut(&role) else {
            return;
        };
        state.controllers.remove(&stream);
        if state.primary == Some(stream) {
            state.primary = None;
            state.notify_all(self.device_id, &role);
        }
    }

    /// Whether a request of `role` carrying `election_id` comes from that
    /// role's primary (what Write and SetForwardingPipelineConfig require).
    ///
    /// # Errors
    /// PERMISSION_DENIED saying who the primary is, if anyone.
    pub fn check_primary(&self, role: &str, election_id: Option<ElectionId>) -> Result<(), Status> {
        let state = self.roles.get(role);
        let primary = state.and_then(RoleState::primary_election_id);
        match (primary, election_id) {
            (Some(primary), Some(id)) if primary == id => Ok(()),
            (Some(primary), Some(id)) => Err(Status::permission_denied(format!(
                "election id {id} is not the primary of role {role:?} (the primary has {primary})"
            ))),
            (Some(_), None) => Err(Status::permission_denied(format!(
                "request has no election id; only the primary of role {role:?} may write"
            ))),
            (None, _) => Err(Status::permission_denied(format!(
                "role {role:?} has no primary controller; arbitrate on StreamChannel first"
            ))),
        }
    }

    /// Whether `stream` has arbitrated (and not disconnected).
    pub fn is_registered(&self, stream: StreamId) -> bool {
        self.stream_roles.contains_key(&stream)
    }

    /// Whether `stream` is currently the primary of its role.
    pub fn is_primary_stream(&self, stream: StreamId) -> bool {
        self.stream_roles
            .get(&stream)
            .and_then(|role| self.roles.get(role))
            .is_some_and(|state| state.primary == Some(stream))
    }

    /// The message queues of every role's primary (packet-in goes there).
    pub fn primary_senders(
        &self,
    ) -> impl Iterator<Item = &mpsc::Sender<Result<StreamMessageResponse, Status>>> {
        self.roles.values().filter_map(|state| {
            state
                .primary
                .and_then(|stream| state.controllers.get(&stream))
                .map(|controller| &controller.sender.messages)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Mastership = watch::Receiver<Option<MasterArbitrationUpdate>>;

    fn channel() -> (ResponseSender, Mastership) {
        let (mastership, rx) = watch::channel(None);
        let (messages, _) = mpsc::channel(16);
        let sender = ResponseSender {
            mastership,
            messages,
        };
        (sender, rx)
    }

    fn last_status(rx: &mut Mastership) -> (i32, u128) {
        let update = rx
            .borrow_and_update()
            .clone()
            .expect("an arbitration update");
        (
            update.status.expect("status").code,
            update.election_id.as_ref().map(election_id).unwrap_or(0),
        )
    }

    #[test]
    fn highest_election_id_is_primary_and_everyone_is_told() {
        let mut arb = Arbitration::new(1);
        let (a, mut ra) = channel();
        let (b, mut rb) = channel();
        arb.arbitrate(1, "", Some(10), &a).unwrap();
        assert_eq!(last_status(&mut ra), (Code::Ok as i32, 10));
        arb.arbitrate(2, "", Some(5), &b).unwrap();
        assert_eq!(last_status(&mut rb), (Code::AlreadyExists as i32, 10));
        assert!(arb.check_primary("", Some(10)).is_ok());
        assert_eq!(
            arb.check_primary("", Some(5)).unwrap_err().code(),
            Code::PermissionDenied
        );

        // A higher id takes over; the old primary hears about it.
        let (c, mut rc) = channel();
        arb.arbitrate(3, "", Some(20), &c).unwrap();
        assert_eq!(last_status(&mut rc), (Code::Ok as i32, 20));
        assert_eq!(last_status(&mut ra), (Code::AlreadyExists as i32, 20));
        assert!(!arb.is_primary_stream(1));
        assert!(arb.is_primary_stream(3));
    }

    #[test]
    fn primary_leaving_leaves_no_primary_until_the_highest_id_returns() {
        let mut arb = Arbitration::new(1);
        let (a, _ra) = channel();
        let (b, mut rb) = channel();
        arb.arbitrate(1, "", Some(10), &a).unwrap();
        arb.arbitrate(2, "", Some(5), &b).unwrap();
        arb.disconnect(1);
        assert_eq!(last_status(&mut rb), (Code::NotFound as i32, 10));
        assert_eq!(
            arb.check_primary("", Some(5)).unwrap_err().code(),
            Code::PermissionDenied
        );
        // The backup re-arbitrating with its lower id stays a backup.
        arb.arbitrate(2, "", Some(5), &b).unwrap();
        assert_eq!(last_status(&mut rb), (Code::NotFound as i32, 10));
        // The old primary reconnecting with the same id is primary again.
        let (a2, mut ra2) = channel();
        arb.arbitrate(3, "", Some(10), &a2).unwrap();
        assert_eq!(last_status(&mut ra2), (Code::Ok as i32, 10));
        assert_eq!(last_status(&mut rb), (Code::AlreadyExists as i32, 10));
    }

    #[test]
    fn duplicate_ids_and_role_changes_are_refused_roles_are_independent() {
        let mut arb = Arbitration::new(1);
        let (a, _ra) = channel();
        let (b, _rb) = channel();
        arb.arbitrate(1, "", Some(7), &a).unwrap();
        assert_eq!(
            arb.arbitrate(2, "", Some(7), &b),
            Err(ArbitrationError::DuplicateElectionId(7, String::new()))
        );
        arb.arbitrate(2, "telemetry", Some(7), &b).unwrap();
        assert!(arb.check_primary("telemetry", Some(7)).is_ok());
        assert!(arb.check_primary("", Some(7)).is_ok());
        assert_eq!(
            arb.arbitrate(2, "", Some(8), &b),
            Err(ArbitrationError::RoleChanged("telemetry".into()))
        );
        assert_eq!(arb.primary_senders().count(), 2);
    }

    #[test]
    fn controllers_without_election_id_are_backups() {
        let mut arb = Arbitration::new(1);
        let (a, mut ra) = channel();
        arb.arbitrate(1, "", None, &a).unwrap();
        assert_eq!(last_status(&mut ra), (Code::NotFound as i32, 0));
        assert!(arb.check_primary("", None).is_err());
        assert_eq!(
            election_id(&to_uint128((3u128 << 64) | 9)),
            (3u128 << 64) | 9
        );
    }
}
