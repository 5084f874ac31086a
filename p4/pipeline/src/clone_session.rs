//! Clone sessions of the packet replication engine (PRE): what
//! `clone(CloneType.I2E, session)` copies a packet to.

use std::collections::HashMap;

use crate::error::{PipelineError, Result};
use crate::{DROP_PORT, PORT_BITS};

/// Most clone sessions the switch holds (bmv2's mirroring sessions are
/// bounded too); keeps a misbehaving controller from growing memory.
pub const MAX_CLONE_SESSIONS: usize = 4096;

/// One copy a clone session makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Replica {
    /// Port the copy leaves through (9 bits).
    pub egress_port: u16,
    /// Replica instance (`egress_rid`), distinguishing copies to one port.
    pub instance: u16,
}

/// A clone session as P4Runtime's `CloneSessionEntry` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneSession {
    /// The session id `clone()` names.
    pub session_id: u32,
    /// The copies to make, in order.
    pub replicas: Vec<Replica>,
    /// Class of service of the copies. Stored and read back; the software
    /// switch has no queues for it to select.
    pub class_of_service: u32,
    /// 0: copies are not truncated; otherwise copies are cut to at most this
    /// many bytes after egress (bmv2 rejects this field; we implement it).
    pub packet_length_bytes: u32,
}

/// The configured clone sessions.
#[derive(Debug, Clone, Default)]
pub struct CloneSessions {
    sessions: HashMap<u32, CloneSession>,
}

impl CloneSessions {
    /// Adds a session.
    ///
    /// # Errors
    /// [`PipelineError::CloneSessionExists`] if the id is configured,
    /// [`PipelineError::TooManyCloneSessions`] at capacity, and the errors of
    /// validation: [`PipelineError::ValueOutOfRange`] for a replica port
    /// above 511, [`PipelineError::DuplicateReplica`].
    pub fn insert(&mut self, session: CloneSession) -> Result<()> {
        validate(&session)?;
        if self.sessions.contains_key(&session.session_id) {
            return Err(PipelineError::CloneSessionExists {
                session_id: session.session_id,
            });
        }
        if self.sessions.len() >= MAX_CLONE_SESSIONS {
            return Err(PipelineError::TooManyCloneSessions {
                max: MAX_CLONE_SESSIONS,
            });
        }
        self.sessions.insert(session.session_id, session);
        Ok(())
    }

    /// Replaces a session.
    ///
    /// # Errors
    /// [`PipelineError::CloneSessionNotFound`] if the id is not configured,
    /// and the validation errors of [`CloneSessions::insert`].
    pub fn modify(&mut self, session: CloneSession) -> Result<()> {
        validate(&session)?;
        match self.sessions.get_mut(&session.session_id) {
            Some(existing) => {
                *existing = session;
                Ok(())
            }
            None => Err(PipelineError::CloneSessionNotFound {
                session_id: session.session_id,
            }),
        }
    }

    /// Removes a session.
    ///
    /// # Errors
    /// [`PipelineError::CloneSessionNotFound`] if the id is not configured.
    pub fn delete(&mut self, session_id: u32) -> Result<()> {
        self.sessions
            .remove(&session_id)
            .map(drop)
            .ok_or(PipelineError::CloneSessionNotFound { session_id })
    }

    /// Looks a session up.
    pub fn get(&self, session_id: u32) -> Option<&CloneSession> {
        self.sessions.get(&session_id)
    }

    /// Every session, ordered by id (wildcard read).
    pub fn all(&self) -> Vec<CloneSession> {
        let mut all: Vec<_> = self.sessions.values().cloned().collect();
        all.sort_by_key(|s| s.session_id);
        all
    }

    /// Number of sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is configured.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Removes every session.
    pub fn clear(&mut self) {
        self.sessions.clear();
    }
}

fn validate(session: &CloneSession) -> Result<()> {
    let mut seen = Vec::with_capacity(session.replicas.len());
    for replica in &session.replicas {
        if replica.egress_port > DROP_PORT {
            return Err(PipelineError::ValueOutOfRange {
                what: "replica.egress_port",
                value: replica.egress_port.into(),
                bits: PORT_BITS,
            });
        }
        if seen.contains(replica) {
            return Err(PipelineError::DuplicateReplica {
                session_id: session.session_id,
                egress_port: replica.egress_port,
                instance: replica.instance,
            });
        }
        seen.push(*replica);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: u32, ports: &[u16]) -> CloneSession {
        CloneSession {
            session_id: id,
            replicas: ports
                .iter()
                .map(|&p| Replica {
                    egress_port: p,
                    instance: 1,
                })
                .collect(),
            class_of_service: 0,
            packet_length_bytes: 0,
        }
    }

    #[test]
    fn insert_modify_delete_read() {
        let mut s = CloneSessions::default();
        s.insert(session(5, &[7])).unwrap();
        assert_eq!(
            s.insert(session(5, &[8])),
            Err(PipelineError::CloneSessionExists { session_id: 5 })
        );
        s.modify(session(5, &[8, 9])).unwrap();
        assert_eq!(s.get(5).unwrap().replicas.len(), 2);
        assert_eq!(
            s.modify(session(6, &[1])),
            Err(PipelineError::CloneSessionNotFound { session_id: 6 })
        );
        s.insert(session(1, &[])).unwrap();
        assert_eq!(
            s.all().iter().map(|x| x.session_id).collect::<Vec<_>>(),
            vec![1, 5]
        );
        s.delete(5).unwrap();
        assert_eq!(
            s.delete(5),
            Err(PipelineError::CloneSessionNotFound { session_id: 5 })
        );
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn validation_rejects_bad_replicas() {
        let mut s = CloneSessions::default();
        assert!(matches!(
            s.insert(session(1, &[512])),
            Err(PipelineError::ValueOutOfRange { .. })
        ));
        assert!(matches!(
            s.insert(session(1, &[3, 3])),
            Err(PipelineError::DuplicateReplica { egress_port: 3, .. })
        ));
        assert!(s.is_empty());
    }
}
