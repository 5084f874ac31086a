//! Fixtures of the unit tests: the schema of umbra.p4.

use crate::schema::P4Schema;

/// The schema of `p4/umbra.p4info.txtpb`.
pub(crate) fn umbra_schema() -> P4Schema {
    P4Schema::new(umbra_p4info::umbra_p4info().clone()).expect("umbra.p4's P4Info is consistent")
}
