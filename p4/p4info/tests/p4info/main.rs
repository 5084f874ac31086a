//! Black-box tests of umbra-p4info against the P4Info of umbra.p4: loading,
//! name resolution, structural comparison, and the check of the P4Info with
//! the official Python bindings.

mod compare;
mod python_check;
mod umbra;
