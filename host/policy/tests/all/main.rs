//! Integration tests of umbra-policy-runtime, in one binary: hostile
//! policies, load-time refusals, the default policies against their native
//! fallbacks, hot reload under load, and shadow mode.

mod defaults;
mod hostile;
mod load;
mod reload;
mod shadow;
mod support;
