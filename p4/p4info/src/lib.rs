//! The P4Info of umbra.p4: loading it (text format), resolving its objects
//! by name ([`P4InfoIndex`]) and comparing P4Infos structurally
//! ([`compare`]).
//!
//! The host client and the switch never hard-code P4Runtime ids: they look
//! every table, action, field, parameter, counter and controller header up
//! by name here, in the P4Info embedded from `p4/umbra.p4info.txtpb`.

#![forbid(unsafe_code)]

mod compare;
mod error;
mod index;
mod text;

use std::sync::OnceLock;

pub use compare::{Difference, compare};
pub use error::{ObjectKind, P4InfoError, Result};
pub use index::{
    ActionArgument, ActionCallInfo, ActionInfo, ActionRefInfo, ActionScope, ControllerHeaderInfo,
    CounterInfo, CounterUnit, DirectCounterInfo, MatchFieldInfo, MatchKind, MetadataFieldInfo,
    P4InfoIndex, ParamInfo, TableInfo,
};
pub use text::parse_text;
pub use umbra_proto::p4::config::v1::P4Info;

/// The P4Info of umbra.p4, in text format, as shipped in
/// `p4/umbra.p4info.txtpb`.
pub const UMBRA_P4INFO_TXTPB: &str = include_str!("../../umbra.p4info.txtpb");

/// The P4Info of umbra.p4, parsed once.
///
/// # Panics
///
/// If [`UMBRA_P4INFO_TXTPB`] does not parse, which the crate's tests rule
/// out.
#[must_use]
pub fn umbra_p4info() -> &'static P4Info {
    static P4INFO: OnceLock<P4Info> = OnceLock::new();
    P4INFO.get_or_init(|| {
        parse_text(UMBRA_P4INFO_TXTPB).expect("p4/umbra.p4info.txtpb parses (tested)")
    })
}

/// The index of [`umbra_p4info`], built once.
///
/// # Panics
///
/// If the embedded P4Info is inconsistent, which the crate's tests rule out.
#[must_use]
pub fn umbra_p4info_index() -> &'static P4InfoIndex {
    static INDEX: OnceLock<P4InfoIndex> = OnceLock::new();
    INDEX.get_or_init(|| {
        P4InfoIndex::new(umbra_p4info()).expect("p4/umbra.p4info.txtpb is consistent (tested)")
    })
}
