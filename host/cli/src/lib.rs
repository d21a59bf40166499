//! The library half of the `weir` binary: the demo (`weir demo`), which the benchmarks
//! reuse for their sample pipeline and orders.

pub mod demo;

/// The host's allocator, for the `weir` binary and the benchmarks that run its pipeline in
/// process. Ingest allocates and frees a few small buffers per record on every request;
/// with glibc's allocator that was about a fifth of the ingest threads' CPU
/// (BENCHMARKS.md, the ingest profile). Plugins' linear memories are not affected: wasmtime
/// maps them itself. Built with `no_thp`: mimalloc does not ask for transparent huge pages,
/// with which (on kernels in THP `madvise` mode) every page it faulted in, or in again
/// after returning it, was zeroed 2 MiB at a time, the largest single cost of an append
/// (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
