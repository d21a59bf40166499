//! A loaded plugin: its pre-instantiated component, limits and a small pool of warm
//! instances, and the bounded calls into them.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use wasmtime::Store;
use wasmtime::Trap;
use weir_events::{Columns, RawBatchBuilder, RawRecordRef};

use crate::batch::{AccumulateOutput, BatchOutput, FinishedGroup, RawRecord, check_errors};
use crate::bindings::{aggregator, enricher, parser, types};
use crate::capabilities::{
    CallLog, HostState, MemoryLimitExceeded, PluginLog, PluginShared, ReferenceData, StaticReferenceData, TracingLog,
};
use crate::error::{CallError, CallErrorKind, LimitKind, LoadError};
use crate::inspect::{PluginInfo, World};
use crate::limits::Limits;
pub use crate::plugin_id::PluginId;
use crate::runtime::Runtime;

/// How to load a plugin.
#[derive(Clone)]
pub struct PluginOptions {
    /// The world the caller will use it as; a component of another world is refused.
    /// Default: any world.
    pub expected_world: Option<World>,
    /// Limits of every call. Default: [`Limits::default`].
    pub limits: Limits,
    /// Configuration passed to the plugin's `configure`. Default: empty.
    pub config: Vec<(String, String)>,
    /// Reference data served to `lookup`. Default: empty.
    pub reference: Arc<dyn ReferenceData>,
    /// Destination of the plugin's log and stdout/stderr. Default: `tracing`.
    pub log: Arc<dyn PluginLog>,
}

impl Default for PluginOptions {
    fn default() -> Self {
        Self {
            expected_world: None,
            limits: Limits::default(),
            config: Vec::new(),
            reference: Arc::new(StaticReferenceData::default()),
            log: Arc::new(TracingLog),
        }
    }
}

impl fmt::Debug for PluginOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginOptions")
            .field("expected_world", &self.expected_world)
            .field("limits", &self.limits)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Measurements of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallStats {
    /// Wall time of the call, including instantiation when `fresh_instance`.
    pub elapsed: Duration,
    /// Peak linear memory of the instance that served the call.
    pub peak_memory: usize,
    /// Whether a fresh instance had to be started for this call.
    pub fresh_instance: bool,
}

pub(crate) enum Pre {
    Parser(parser::ParserPre<HostState>),
    Enricher(enricher::EnricherPre<HostState>),
    Aggregator(aggregator::AggregatorPre<HostState>),
}

enum Bound {
    Parser(parser::Parser),
    Enricher(enricher::Enricher),
    Aggregator(aggregator::Aggregator),
}

/// A Rust panic prints its message to stderr and then traps with `unreachable`: the
/// message is what the author needs, so it goes into the error.
fn with_last_output(call_log: &CallLog, trap: String) -> String {
    match call_log.last_output() {
        Some(line) => format!("{trap}; the plugin's last output: {line}"),
        None => trap,
    }
}

/// One instance and its store. Reused across calls until a call fails.
struct Live {
    store: Store<HostState>,
    bound: Bound,
}

type CallFuture<'a, T> = Pin<Box<dyn Future<Output = wasmtime::Result<T>> + Send + 'a>>;

/// A loaded, configured plugin. Calls run on a pool of up to `limits.instances` warm
/// instances, so calls from several shards run at once; an instance is started only
/// when a call finds none idle. A call that traps or exceeds a limit discards its
/// instance and a later call starts a fresh one (pooled, copy-on-write: microseconds).
/// Each instance has its own memory, CPU deadline and log budget; counters are the
/// plugin's. State a plugin keeps between calls is per instance: the contract never
/// promised it (docs/wit.md).
pub struct Plugin {
    runtime: Runtime,
    info: PluginInfo,
    pre: Pre,
    limits: Limits,
    config: Vec<(String, String)>,
    shared: Arc<PluginShared>,
    /// Warm instances no call is using.
    idle: std::sync::Mutex<Vec<Live>>,
    /// One permit per instance that may exist: a call holds one while it runs.
    permits: tokio::sync::Semaphore,
    empty_state: OnceLock<Vec<u8>>,
    compiled_from_cache: bool,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin").field("id", &self.shared.id).field("world", &self.info.world).finish_non_exhaustive()
    }
}

/// Links a compiled component against the host's imports and type-checks its exports
/// against its world: what refuses a component whose names are right but whose types
/// are not (`weir plugin inspect` runs it too, so it refuses what loading would).
pub(crate) fn link(
    runtime: &Runtime,
    label: &str,
    component: &wasmtime::component::Component,
    info: &PluginInfo,
) -> Result<Pre, LoadError> {
    let instance_pre = runtime
        .linker()
        .instantiate_pre(component)
        .map_err(|e| LoadError::Refused(label.to_owned(), vec![format!("cannot be linked: {e:#}")]))?;
    let typed = |e: wasmtime::Error| {
        LoadError::Refused(label.to_owned(), vec![format!("its exports do not match world {}: {e:#}", info.world)])
    };
    Ok(match info.world {
        World::Parser => Pre::Parser(parser::ParserPre::new(instance_pre).map_err(typed)?),
        World::Enricher => Pre::Enricher(enricher::EnricherPre::new(instance_pre).map_err(typed)?),
        World::Aggregator => Pre::Aggregator(aggregator::AggregatorPre::new(instance_pre).map_err(typed)?),
    })
}

impl Plugin {
    pub(crate) async fn load(
        runtime: Runtime,
        id: PluginId,
        bytes: &[u8],
        options: PluginOptions,
    ) -> Result<Self, LoadError> {
        let label = id.to_string();
        if options.limits.memory_bytes > runtime.config().max_memory_per_instance {
            return Err(LoadError::Refused(
                label,
                vec![format!(
                    "its memory limit ({} MiB) is above the runtime's largest instance ({} MiB); lower the limit or raise max_memory_per_instance",
                    options.limits.memory_bytes >> 20,
                    runtime.config().max_memory_per_instance >> 20
                )],
            ));
        }
        let (component, info, compiled_from_cache) = runtime.compile(&label, bytes, options.expected_world)?;
        let pre = link(&runtime, &label, &component, &info)?;
        let shared = Arc::new(PluginShared::new(id, options.log, options.reference));
        let instances = options.limits.instances.max(1);
        let plugin = Self {
            runtime,
            info,
            pre,
            limits: options.limits,
            config: options.config,
            shared,
            idle: std::sync::Mutex::new(Vec::new()),
            permits: tokio::sync::Semaphore::new(instances),
            empty_state: OnceLock::new(),
            compiled_from_cache,
        };
        // Start one instance now: a plugin that rejects its configuration or cannot
        // start is refused at load, not on the first batch.
        let live = plugin.instantiate().await.map_err(|e| match e {
            StartError::Config(msg) => LoadError::ConfigRejected(label.clone(), msg),
            StartError::Failed(kind) => {
                LoadError::Start(label.clone(), CallError::new(label.clone(), "start".into(), kind).reason())
            }
        })?;
        plugin.idle().push(live);
        Ok(plugin)
    }

    /// `name@version`.
    pub fn id(&self) -> &PluginId {
        &self.shared.id
    }

    /// What the component is.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// The limits of every call.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether the compiled code came from the on-disk cache.
    pub fn compiled_from_cache(&self) -> bool {
        self.compiled_from_cache
    }

    /// How many calls hold an instance right now (at most `limits.instances`): what
    /// shows whether shards are running the plugin at once or queueing for it.
    pub fn calls_running(&self) -> usize {
        self.limits.instances.max(1).saturating_sub(self.permits.available_permits())
    }

    /// The plugin's counters (`counter-add`), summed since load.
    pub fn counters(&self) -> Vec<(String, i64)> {
        let counters = self.shared.counters.lock().unwrap_or_else(PoisonError::into_inner);
        counters.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Replaces the warm instance with a fresh, configured one (what happens after a
    /// failed call): resets any state the plugin kept between batches. Also what the
    /// benchmarks time as "fresh instance".
    ///
    /// # Errors
    /// A [`CallError`] when the fresh instance fails to start or rejects its configuration.
    pub async fn start_instance(&self) -> Result<(), CallError> {
        let live = self
            .instantiate()
            .await
            .map_err(|e| CallError::new(self.shared.id.to_string(), "start".into(), e.into_kind()))?;
        let mut idle = self.idle();
        idle.clear();
        idle.push(live);
        Ok(())
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Live>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a fresh instance and configures it, within the plugin's limits.
    async fn instantiate(&self) -> Result<Live, StartError> {
        let mut store =
            Store::new(self.runtime.engine(), HostState::new(self.shared.clone(), self.limits.memory_bytes));
        store.limiter(|state| &mut state.limiter);
        self.arm(&mut store);
        let call_log = store.data().call_log.clone();
        let config = &self.config;
        let start = async {
            Ok::<_, wasmtime::Error>(match &self.pre {
                Pre::Parser(pre) => {
                    let bound = pre.instantiate_async(&mut store).await?;
                    (bound.weir_plugin_parse().call_configure(&mut store, config).await?, Bound::Parser(bound))
                }
                Pre::Enricher(pre) => {
                    let bound = pre.instantiate_async(&mut store).await?;
                    (bound.weir_plugin_enrich().call_configure(&mut store, config).await?, Bound::Enricher(bound))
                }
                Pre::Aggregator(pre) => {
                    let bound = pre.instantiate_async(&mut store).await?;
                    let configured = bound.weir_plugin_aggregate().call_configure(&mut store, config).await?;
                    if configured.is_ok() && self.empty_state.get().is_none() {
                        let empty = bound.weir_plugin_aggregate().call_init(&mut store).await?;
                        if empty.len() > self.limits.max_state_bytes {
                            return Err(wasmtime::Error::msg(format!(
                                "init returned an empty state of {} bytes; the state limit is {} bytes per group",
                                empty.len(),
                                self.limits.max_state_bytes
                            )));
                        }
                        let _ = self.empty_state.set(empty);
                    }
                    (configured, Bound::Aggregator(bound))
                }
            })
        };
        let outcome = tokio::time::timeout(self.limits.wall, start).await;
        call_log.finish_call_log();
        match outcome {
            Err(_) => Err(StartError::Failed(CallErrorKind::Limit(LimitKind::WallClock { limit: self.limits.wall }))),
            Ok(Err(err)) => Err(StartError::Failed(self.classify(err, &call_log))),
            Ok(Ok((Err(msg), _))) => Err(StartError::Config(crate::batch::bounded_message(msg))),
            Ok(Ok((Ok(()), bound))) => Ok(Live { store, bound }),
        }
    }

    /// Sets the CPU deadline and the log budget for one call.
    fn arm(&self, store: &mut Store<HostState>) {
        let tick = self.runtime.config().epoch_tick.as_nanos().max(1);
        let ticks = self.limits.cpu.as_nanos().div_ceil(tick) as u64;
        // One extra tick: the deadline counts from the current epoch, which may be about
        // to advance.
        store.set_epoch_deadline(ticks + 1);
        store.epoch_deadline_trap();
        store.data().call_log.reset_log_budget(self.limits.max_log_bytes_per_call);
    }

    fn classify(&self, err: wasmtime::Error, call_log: &CallLog) -> CallErrorKind {
        if let Some(m) = err.downcast_ref::<MemoryLimitExceeded>() {
            return CallErrorKind::Limit(LimitKind::Memory { limit: m.limit, requested: m.requested });
        }
        if let Some(failed) = err.downcast_ref::<crate::capabilities::LookupFailed>() {
            return CallErrorKind::Lookup(failed.0.clone());
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => CallErrorKind::Limit(LimitKind::Cpu { limit: self.limits.cpu }),
            Some(Trap::StackOverflow) => CallErrorKind::Limit(LimitKind::Stack),
            Some(trap) => CallErrorKind::Trap(with_last_output(call_log, trap.to_string())),
            None => CallErrorKind::Trap(with_last_output(call_log, format!("{err:#}"))),
        }
    }

    /// Runs one call on the warm instance (or a fresh one), bounded by the limits, and
    /// checks what it returned before the instance is kept for the next call.
    async fn call<T: Send, U>(
        &self,
        batch: &str,
        run: impl for<'a> FnOnce(&'a mut Store<HostState>, &'a Bound) -> CallFuture<'a, T>,
        check: impl FnOnce(T) -> Result<U, CallErrorKind>,
    ) -> Result<(U, CallStats), CallError> {
        let started = Instant::now();
        let error = |kind| CallError::new(self.shared.id.to_string(), batch.to_owned(), kind);
        // The semaphore is never closed, so acquiring fails only if it were.
        let Ok(_permit) = self.permits.acquire().await else {
            return Err(error(CallErrorKind::Contract("the plugin was unloaded".to_owned())));
        };
        let warm = self.idle().pop();
        let (mut live, fresh_instance) = match warm {
            Some(live) => (live, false),
            None => match self.instantiate().await {
                Ok(live) => (live, true),
                Err(start) => return Err(error(start.into_kind())),
            },
        };
        self.arm(&mut live.store);
        let call_log = live.store.data().call_log.clone();
        call_log.clear_last_output();
        let Live { store, bound } = &mut live;
        let outcome = tokio::time::timeout(self.limits.wall, run(store, bound)).await;
        call_log.finish_call_log();
        let stats =
            CallStats { elapsed: started.elapsed(), peak_memory: live.store.data().limiter.peak, fresh_instance };
        let value = match outcome {
            Err(_) => return Err(error(CallErrorKind::Limit(LimitKind::WallClock { limit: self.limits.wall }))),
            Ok(Err(err)) => return Err(error(self.classify(err, &call_log))),
            Ok(Ok(value)) => value,
        };
        let value = check(value).map_err(error)?;
        self.idle().push(live);
        Ok((value, stats))
    }

    /// A parser's, enricher's or `finish`'s answer, unpacked and checked against the
    /// limits and the contract.
    fn checked_output(
        &self,
        output: types::BatchOutput,
        inputs: usize,
        max_per_input: Option<u32>,
    ) -> Result<BatchOutput, CallErrorKind> {
        let output = BatchOutput::try_from(output).map_err(|err| CallErrorKind::Contract(err.to_string()))?;
        self.check_output(&output, inputs, max_per_input)?;
        Ok(output)
    }

    fn check_output(
        &self,
        output: &BatchOutput,
        inputs: usize,
        max_per_input: Option<u32>,
    ) -> Result<(), CallErrorKind> {
        let events = output.events.len();
        if events > self.limits.max_output_events {
            return Err(CallErrorKind::Limit(LimitKind::OutputEvents {
                limit: self.limits.max_output_events,
                produced: events,
            }));
        }
        let fields = output.events.field_names();
        if fields > self.limits.max_output_fields {
            return Err(CallErrorKind::Limit(LimitKind::OutputFields {
                limit: self.limits.max_output_fields,
                produced: fields,
            }));
        }
        // Reasons count too: a call cannot hand the host more than the limit by failing.
        let reasons: usize = output.errors.iter().map(|e| e.message.len()).sum();
        let bytes = output.events.payload_bytes().saturating_add(reasons);
        if bytes > self.limits.max_output_bytes {
            return Err(CallErrorKind::Limit(LimitKind::OutputBytes {
                limit: self.limits.max_output_bytes,
                produced: bytes,
            }));
        }
        output.check(inputs, max_per_input).map_err(CallErrorKind::Contract)
    }

    /// Group states returned by a call: each within `max_state_bytes`, all of them
    /// together within `max_output_bytes` (the host keeps them), checked in one pass.
    fn check_states<'s>(&self, states: impl Iterator<Item = &'s [u8]>) -> Result<(), CallErrorKind> {
        let mut total = 0usize;
        for state in states {
            if state.len() > self.limits.max_state_bytes {
                return Err(CallErrorKind::Limit(LimitKind::StateBytes {
                    limit: self.limits.max_state_bytes,
                    produced: state.len(),
                }));
            }
            total = total.saturating_add(state.len());
        }
        if total > self.limits.max_output_bytes {
            return Err(CallErrorKind::Limit(LimitKind::OutputBytes {
                limit: self.limits.max_output_bytes,
                produced: total,
            }));
        }
        Ok(())
    }

    fn wrong_world(&self, wanted: World) -> CallError {
        CallError::new(
            self.shared.id.to_string(),
            "call".into(),
            CallErrorKind::Contract(format!("the plugin is a {}, not a {wanted}", self.info.world)),
        )
    }

    /// Parses a batch of raw records. `batch` describes the batch in errors.
    ///
    /// # Errors
    /// A [`CallError`] when the call trapped, exceeded a limit or broke the contract.
    pub async fn parse(&self, batch: &str, records: Vec<RawRecord>) -> Result<(BatchOutput, CallStats), CallError> {
        let records = records.iter().map(RawRecord::borrowed);
        self.parse_records(batch, records).await
    }

    /// Parses the records, borrowed: they are copied once, into the batch that crosses
    /// the boundary (`raw-batch`: every payload in one buffer). `batch` describes the
    /// batch in errors.
    ///
    /// # Errors
    /// A [`CallError`] when the call trapped, exceeded a limit or broke the contract, or
    /// when the payloads pass 4 GiB, which one batch cannot carry.
    pub async fn parse_records<'a>(
        &self,
        batch: &str,
        records: impl ExactSizeIterator<Item = RawRecordRef<'a>> + Clone,
    ) -> Result<(BatchOutput, CallStats), CallError> {
        if !matches!(self.pre, Pre::Parser(_)) {
            return Err(self.wrong_world(World::Parser));
        }
        let inputs = records.len();
        let mut builder = RawBatchBuilder::with_capacity(inputs, records.clone().map(|r| r.data.len()).sum());
        for r in records {
            builder.push(r.data, r.key, r.content_type, r.arrival_time).map_err(|err| {
                let reason = format!("{err}: lower the stage's batch size so that a batch stays under 4 GiB");
                CallError::new(self.shared.id.to_string(), batch.into(), CallErrorKind::Contract(reason))
            })?;
        }
        let records = types::RawBatch::from(builder.finish());
        self.call(
            batch,
            move |store, bound| {
                Box::pin(async move {
                    let Bound::Parser(p) = bound else { unreachable!("checked above") };
                    p.weir_plugin_parse().call_parse(store, &records).await
                })
            },
            |out| self.checked_output(out, inputs, None),
        )
        .await
    }

    /// Enriches (or filters) a batch of events.
    ///
    /// # Errors
    /// A [`CallError`] when the call trapped, exceeded a limit or broke the contract.
    pub async fn enrich(&self, batch: &str, events: Columns) -> Result<(BatchOutput, CallStats), CallError> {
        if !matches!(self.pre, Pre::Enricher(_)) {
            return Err(self.wrong_world(World::Enricher));
        }
        let inputs = events.len();
        let events = types::EventBatch::from(events);
        self.call(
            batch,
            move |store, bound| {
                Box::pin(async move {
                    let Bound::Enricher(p) = bound else { unreachable!("checked above") };
                    p.weir_plugin_enrich().call_enrich(store, &events).await
                })
            },
            |out| self.checked_output(out, inputs, Some(1)),
        )
        .await
    }

    /// The state of an empty group (the answer of `init`, cached at load).
    pub fn empty_state(&self) -> Option<&[u8]> {
        self.empty_state.get().map(Vec::as_slice)
    }

    /// Folds `events` into `states`; event `i` belongs to `states[groups[i]]`.
    ///
    /// # Errors
    /// A [`CallError`] when the call trapped, exceeded a limit or broke the contract.
    pub async fn accumulate(
        &self,
        batch: &str,
        states: Vec<Vec<u8>>,
        events: Columns,
        groups: Vec<u32>,
    ) -> Result<(AccumulateOutput, CallStats), CallError> {
        if !matches!(self.pre, Pre::Aggregator(_)) {
            return Err(self.wrong_world(World::Aggregator));
        }
        let (n_states, n_events) = (states.len(), events.len());
        let events = types::EventBatch::from(events);
        self.call(
            batch,
            move |store, bound| {
                Box::pin(async move {
                    let Bound::Aggregator(p) = bound else { unreachable!("checked above") };
                    Ok(AccumulateOutput::from(
                        p.weir_plugin_aggregate().call_accumulate(store, &states, &events, &groups).await?,
                    ))
                })
            },
            |out| {
                if out.states.len() != n_states {
                    return Err(CallErrorKind::Contract(format!(
                        "returned {} states for {n_states}",
                        out.states.len()
                    )));
                }
                self.check_states(out.states.iter().map(Vec::as_slice))?;
                check_errors(&out.errors, n_events).map_err(CallErrorKind::Contract)?;
                Ok(out)
            },
        )
        .await
    }

    /// Merges pairs of partial states of the same group.
    ///
    /// # Errors
    /// A [`CallError`] when the call trapped, exceeded a limit or broke the contract.
    pub async fn merge(
        &self,
        batch: &str,
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<(Vec<Result<Vec<u8>, String>>, CallStats), CallError> {
        if !matches!(self.pre, Pre::Aggregator(_)) {
            return Err(self.wrong_world(World::Aggregator));
        }
        let n = pairs.len();
        self.call(
            batch,
            move |store, bound| {
                Box::pin(async move {
                    let Bound::Aggregator(p) = bound else { unreachable!("checked above") };
                    p.weir_plugin_aggregate().call_merge(store, &pairs).await
                })
            },
            |out| {
                if out.len() != n {
                    return Err(CallErrorKind::Contract(format!("returned {} merged states for {n} pairs", out.len())));
                }
                self.check_states(out.iter().filter_map(|merged| merged.as_deref().ok()))?;
                Ok(out)
            },
        )
        .await
    }

    /// Turns finished groups into output events (`counts` has one entry per group).
    ///
    /// # Errors
    /// A [`CallError`] when the call trapped, exceeded a limit or broke the contract.
    pub async fn finish(&self, batch: &str, groups: Vec<FinishedGroup>) -> Result<(BatchOutput, CallStats), CallError> {
        if !matches!(self.pre, Pre::Aggregator(_)) {
            return Err(self.wrong_world(World::Aggregator));
        }
        let inputs = groups.len();
        let groups: Vec<types::FinishedGroup> = groups.into_iter().map(Into::into).collect();
        self.call(
            batch,
            move |store, bound| {
                Box::pin(async move {
                    let Bound::Aggregator(p) = bound else { unreachable!("checked above") };
                    p.weir_plugin_aggregate().call_finish(store, &groups).await
                })
            },
            |out| self.checked_output(out, inputs, None),
        )
        .await
    }
}

enum StartError {
    Config(String),
    Failed(CallErrorKind),
}

impl StartError {
    /// As the error of the call that needed the instance.
    fn into_kind(self) -> CallErrorKind {
        CallErrorKind::Start(match self {
            StartError::Config(msg) => format!("it rejected its configuration: {msg}"),
            StartError::Failed(kind) => kind.describe(),
        })
    }
}

// Loading belongs with the plugin; `Runtime` only compiles and links.
impl Runtime {
    /// Loads a plugin: checks it against the contract (and the world the caller
    /// expects), links it, starts one instance and configures it.
    ///
    /// # Errors
    /// A [`LoadError`]: the bytes, the contract, the linking, or the plugin's own
    /// rejection of its configuration.
    pub async fn load(&self, id: PluginId, bytes: &[u8], options: PluginOptions) -> Result<Plugin, LoadError> {
        Plugin::load(self.clone(), id, bytes, options).await
    }
}
