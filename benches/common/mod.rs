//! Code the benchmarks share.

pub mod load;
