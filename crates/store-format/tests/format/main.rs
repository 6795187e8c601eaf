//! Tests of store-format at its public boundary.

mod checksum;
mod decode;
mod ids;
mod ranges;
mod stats;
mod text;
mod traits;
