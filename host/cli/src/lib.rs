//! The library half of the `weir` binary: the demo (`weir demo`), which the benchmarks
//! reuse for their sample pipeline and orders.

pub mod demo;
