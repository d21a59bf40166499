use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ProfilingStrategy};

use crate::bindings;
use crate::cache::{CacheOutcome, CodeCache};
use crate::capabilities::HostState;
use crate::error::LoadError;
use crate::inspect::{self, PluginInfo, World};

/// How the runtime is set up. `RuntimeConfig::default()` suits one host process.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Directory for compiled code. Default: none (compile on every load).
    pub cache_dir: Option<PathBuf>,
    /// Use the pooling allocator (pre-reserved slots, copy-on-write memory
    /// initialisation). When the machine cannot reserve the address space, the runtime
    /// falls back to on-demand allocation and logs a warning. Default: true.
    pub pooling: bool,
    /// Instances alive at once, across all plugins (pool size). Default: 64.
    pub max_instances: u32,
    /// The largest linear memory one instance may have; a plugin's memory limit may not
    /// exceed it. Default: 1 GiB.
    pub max_memory_per_instance: usize,
    /// How often the epoch advances; CPU limits are rounded up to it. Default: 5 ms.
    pub epoch_tick: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            pooling: true,
            max_instances: 64,
            max_memory_per_instance: 1 << 30,
            epoch_tick: Duration::from_millis(5),
        }
    }
}

/// The one wasmtime engine of a process, its linker and its compiled-code cache.
/// Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("config", &self.inner.config).field("pooling", &self.inner.pooling).finish()
    }
}

struct RuntimeInner {
    engine: Engine,
    linker: Linker<HostState>,
    cache: CodeCache,
    config: RuntimeConfig,
    pooling: bool,
}

/// When set (to anything), the engine names the guests' compiled code for `perf`.
const PERF_MAP_VARIABLE: &str = "WEIR_WASM_PERF_MAP";

fn engine_config(config: &RuntimeConfig, pooling: bool) -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true);
    c.epoch_interruption(true);
    // Concurrent component-model calls cost about 4x per call and no plugin world uses them.
    c.concurrency_support(false);
    // For profiling plugins with `perf` (BENCHMARKS.md): wasmtime then writes
    // /tmp/perf-<pid>.map, naming the guest's compiled functions in `perf report`.
    if std::env::var_os(PERF_MAP_VARIABLE).is_some() {
        c.profiler(ProfilingStrategy::PerfMap);
    }
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        let n = config.max_instances;
        pool.total_component_instances(n)
            .total_core_instances(n * 8)
            .total_memories(n * 4)
            .total_tables(n * 4)
            .total_stacks(n)
            .max_memories_per_component(8)
            .max_memory_size(config.max_memory_per_instance);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        c.memory_init_cow(true);
    }
    c
}

impl Runtime {
    /// Creates the engine (with the pooling allocator when configured and possible), the
    /// linker with `weir:plugin/host` and capability-less WASI, and the epoch ticker.
    ///
    /// # Errors
    /// When the engine cannot be created at all, or the compiled-code cache directory
    /// cannot be created or can be written by others than this host's user.
    pub fn new(config: RuntimeConfig) -> anyhow::Result<Self> {
        let (engine, pooling) = match config.pooling {
            true => match Engine::new(&engine_config(&config, true)) {
                Ok(engine) => (engine, true),
                Err(err) => {
                    tracing::warn!(
                        "pooling allocator unavailable ({err}); falling back to on-demand instance allocation"
                    );
                    (Engine::new(&engine_config(&config, false))?, false)
                }
            },
            false => (Engine::new(&engine_config(&config, false))?, false),
        };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        bindings::parser::Parser::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
        spawn_epoch_ticker(&engine, config.epoch_tick)?;
        let cache = CodeCache::new(config.cache_dir.clone(), &engine).map_err(anyhow::Error::msg)?;
        Ok(Self { inner: Arc::new(RuntimeInner { engine, linker, cache, config, pooling }) })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Whether the pooling allocator is in use.
    pub fn pooling(&self) -> bool {
        self.inner.pooling
    }

    pub(crate) fn linker(&self) -> &Linker<HostState> {
        &self.inner.linker
    }

    pub(crate) fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Checks and compiles `bytes` (through the cache), links it against the host and
    /// type-checks its exports, as loading does, and describes the component.
    /// `label` names it in errors (a file name or `name@version`).
    ///
    /// # Errors
    /// A [`LoadError`] saying everything that is wrong with it.
    pub fn inspect(&self, label: &str, bytes: &[u8]) -> Result<PluginInfo, LoadError> {
        let (component, info, _) = self.compile(label, bytes, None)?;
        crate::plugin::link(self, label, &component, &info)?;
        Ok(info)
    }

    pub(crate) fn compile(
        &self,
        label: &str,
        bytes: &[u8],
        expected: Option<World>,
    ) -> Result<(wasmtime::component::Component, PluginInfo, bool), LoadError> {
        inspect::check_header(label, bytes)?;
        let sha256 = inspect::sha256_hex(bytes);
        let (component, outcome) = self
            .inner
            .cache
            .load_or_compile(&self.inner.engine, bytes, &sha256)
            .map_err(|e| LoadError::Invalid(label.to_owned(), format!("{e:#}")))?;
        let info = inspect::describe(label, &self.inner.engine, &component, bytes, expected)?;
        Ok((component, info, outcome == CacheOutcome::Hit))
    }
}

fn spawn_epoch_ticker(engine: &Engine, tick: Duration) -> std::io::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new().name("weir-epoch-ticker".into()).spawn(move || {
        while let Some(engine) = weak.upgrade() {
            engine.increment_epoch();
            drop(engine);
            std::thread::sleep(tick);
        }
    })?;
    Ok(())
}
