//! Black-box tests of umbra-p4info against the P4Info of umbra.p4: loading,
//! name resolution, structural comparison, and the check of the P4Info with
//! the official Python bindings; and of what the index keeps beyond names
//! (action scopes, initial default arguments, controller header names).

mod compare;
mod index;
mod python_check;
mod umbra;
