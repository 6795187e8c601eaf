//! Tests of the caching layer at its boundary: the pool's counts and bounds, and caches that
//! agree with the reader they wrap after every write.

mod cached;
mod pool;
