//! Tests of the SDK as a policy crate uses it: the traits, the export
//! macros (expanded here natively, as in a policy crate), the instance
//! handling behind them, and the scaffold template.

mod export;
mod template;
