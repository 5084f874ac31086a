//! Umbra's gRPC protocols: P4Runtime v1 (written from the specification,
//! wire-compatible with P4Runtime 1.6.0) and Umbra's own services
//! (`umbra.device.v1`, the device agent; `umbra.management.v1`, the host
//! daemon's management API).
//!
//! The `.proto` sources live next to this crate (`p4/`, `google/`) and are
//! compiled by `build.rs` with protox; the Rust code is generated into
//! `OUT_DIR` by prost and tonic and never edited by hand. Each generated
//! package is a module mirroring its protobuf package (`p4.v1` is
//! [`p4::v1`]), with the tonic client and server of every service inside it
//! (`p4::v1::p4_runtime_client`, `p4::v1::p4_runtime_server`).
//!
//! Umbra's own services get their own packages under `umbra.*` here (today
//! [`umbra::device::v1`] and [`umbra::management::v1`]), compiled by the
//! same `build.rs`.

#![forbid(unsafe_code)]

/// The P4 packages: the P4Runtime service and the P4Info schema.
pub mod p4 {
    /// P4Runtime v1 (`p4.v1`): the service, its messages and `P4Data`.
    #[allow(missing_docs, clippy::all)]
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/p4.v1.rs"));
    }

    /// P4Info (`p4.config.v1`).
    pub mod config {
        /// P4Info v1 (`p4.config.v1`): the control-plane description of a
        /// compiled P4 program and its types.
        #[allow(missing_docs, clippy::all)]
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/p4.config.v1.rs"));
        }
    }
}

/// Google packages that P4Runtime depends on. `google.protobuf` is not
/// generated here: it is `prost_types`.
pub mod google {
    /// The gRPC error model (`google.rpc`).
    #[allow(missing_docs, clippy::all)]
    pub mod rpc {
        include!(concat!(env!("OUT_DIR"), "/google.rpc.rs"));
    }
}

/// Umbra's own packages.
pub mod umbra {
    /// The device agent (`umbra.device`).
    pub mod device {
        /// Device agent v1 (`umbra.device.v1`): snapshot, change stream,
        /// apply, metrics, health and digests of a device's state.
        #[allow(missing_docs, clippy::all)]
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/umbra.device.v1.rs"));
        }
    }

    /// The host daemon's management API (`umbra.management`).
    pub mod management {
        /// Management v1 (`umbra.management.v1`): the state of the protected
        /// pairs, manual failover, policy and model reloads; the service
        /// behind `umbra status`, `umbra failover` and `umbra policy reload`.
        #[allow(missing_docs, clippy::all)]
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/umbra.management.v1.rs"));
        }
    }
}

/// Encoded `google.protobuf.FileDescriptorSet` of the P4Runtime files of
/// this crate and their imports (`google/protobuf/any.proto`), without
/// source info; Umbra's own `umbra.*` packages are not in it.
///
/// Used for reflection, e.g. to parse text-format P4Info with prost-reflect.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/umbra_descriptor_set.bin"));

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::p4::v1::{
        Entity, FieldMatch, TableAction, TableEntry, Uint128, Update, WriteRequest, entity,
        field_match, table_action, update, write_request,
    };

    /// A representative WriteRequest (nested messages, oneofs, enums, bytes,
    /// repeated fields) survives an encode/decode round trip unchanged.
    #[test]
    fn write_request_round_trips() {
        let request = WriteRequest {
            device_id: 1,
            role: "umbra".into(),
            election_id: Some(Uint128 { high: 0, low: 7 }),
            atomicity: write_request::Atomicity::RollbackOnError.into(),
            updates: vec![Update {
                r#type: update::Type::Insert.into(),
                entity: Some(Entity {
                    entity: Some(entity::Entity::TableEntry(TableEntry {
                        table_id: 0x0200_0101,
                        r#match: vec![FieldMatch {
                            field_id: 1,
                            field_match_type: Some(field_match::FieldMatchType::Exact(
                                field_match::Exact {
                                    value: vec![0x01, 0x02],
                                },
                            )),
                        }],
                        action: Some(TableAction {
                            r#type: Some(table_action::Type::Action(super::p4::v1::Action {
                                action_id: 0x0100_0201,
                                params: vec![super::p4::v1::action::Param {
                                    param_id: 1,
                                    value: vec![0x00, 0x2a],
                                }],
                            })),
                        }),
                        priority: 10,
                        ..Default::default()
                    })),
                }),
            }],
            ..Default::default()
        };
        let bytes = request.encode_to_vec();
        assert!(!bytes.is_empty());
        let decoded = WriteRequest::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(decoded, request);
        // Deprecated fields stay at their default and are not encoded.
        #[allow(deprecated)]
        let role_id = decoded.role_id;
        assert_eq!(role_id, 0);
    }
}
