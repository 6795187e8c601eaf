//! Tests of store-format at its public boundary.

mod decode;
mod ids;
mod ranges;
