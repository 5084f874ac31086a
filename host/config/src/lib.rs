//! The host daemon's configuration (umbra.toml): schema, validation with every problem and its location.

#![forbid(unsafe_code)]
