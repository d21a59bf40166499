//! The library half of the `weir` binary: the demo (`weir demo`), which the benchmarks
//! reuse for their sample pipeline and orders.

pub mod demo;

/// The host's allocator, for the `weir` binary and the benchmarks that run its pipeline in
/// process. Ingest allocates and frees a few small buffers per record on every request;
/// with glibc's allocator that was about a fifth of the ingest threads' CPU
/// (BENCHMARKS.md, the ingest profile). Plugins' linear memories are not affected: wasmtime
/// maps them itself.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
