//! Sink connectors: each sink type is one module here, declared below and listed in
//! [`SINK_TYPES`].
//!
//! A connector says what its `type = "…"` is called, which outputs it takes, which keys
//! its `[sinks.NAME]` table allows and how they are read and checked ([`SinkKind`]), and
//! how a sink is built from the settings it read ([`SinkSettings::build`]). The
//! configuration loader, `weir validate`, the route checks and the pipeline's wiring
//! never name a connector: they go through this registry. `docs/connectors.md` walks
//! through adding one.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use weir_sinks::Sink;

use crate::config::{OutputKind, PipelineConfig, SinkConfig, SinkTable, SinkType};
use crate::stores::Stores;

mod dead_letters;
mod lake;
mod search;
mod serving;
mod warehouse;

pub use dead_letters::DeadLetterSettings;
pub use lake::LakeSettings;
pub use search::SearchSettings;
pub use serving::ServingSettings;
pub use warehouse::WarehouseSettings;

/// Every sink type, in the order messages list them.
pub(crate) static SINK_TYPES: &[&dyn SinkKind] =
    &[&lake::Lake, &dead_letters::DeadLetters, &serving::Serving, &search::Search, &warehouse::WarehouseKind];

/// A sink type: its name, what it takes, and how its `[sinks.NAME]` table is read.
pub trait SinkKind: Send + Sync + 'static {
    /// The name in `type = "…"`.
    fn name(&self) -> &'static str;

    /// Whether a sink of this type takes `output` (routes to it are checked against this,
    /// and the default routes use every sink that takes an output).
    fn accepts(&self, output: OutputKind) -> bool;

    /// The keys `[sinks.NAME]` may hold besides `type`; any other is reported.
    fn keys(&self) -> &'static [&'static str];

    /// Reads the settings from the sink's table. Every problem is reported through
    /// `table` at its line; what is wrong is left at its default, since the loader
    /// refuses the whole file when anything was reported.
    fn read(&self, table: &mut SinkTable<'_, '_, '_, '_>) -> SinkConfig;
}

/// A sink's settings, as its connector read them, and how to build the sink.
pub trait SinkSettings: Any + DynEq + Debug + Send + Sync {
    /// The sink's type.
    fn sink_type(&self) -> SinkType;

    /// Builds the sink named `name`; a sink with something to read back (a serving
    /// table, a search index, aggregates) registers its reader in `context.stores`.
    ///
    /// # Errors
    /// The sink cannot be opened; the message names the sink and its location.
    fn build(&self, name: &str, context: &mut SinkContext<'_>) -> anyhow::Result<Arc<dyn Sink>>;
}

/// Equality between settings behind `dyn` (settings of different types are unequal).
pub trait DynEq {
    /// Whether `other` is settings of the same type and equal.
    fn same_as(&self, other: &dyn SinkSettings) -> bool;
}

impl<T: SinkSettings + PartialEq> DynEq for T {
    fn same_as(&self, other: &dyn SinkSettings) -> bool {
        let other: &dyn Any = other;
        other.downcast_ref::<T>() == Some(self)
    }
}

/// What building a sink may use: the configuration, the read-side stores it registers
/// its readers in, and resources shared by several sinks (one serving store file).
pub struct SinkContext<'a> {
    /// The whole configuration (`server.data_dir`, cache settings…).
    pub config: &'a PipelineConfig,
    /// Where readers of what sinks write are registered.
    pub stores: &'a mut Stores,
    shared: BTreeMap<&'static str, Box<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for SinkContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkContext").field("shared", &self.shared.keys().collect::<Vec<_>>()).finish()
    }
}

impl<'a> SinkContext<'a> {
    pub(crate) fn new(config: &'a PipelineConfig, stores: &'a mut Stores) -> Self {
        Self { config, stores, shared: BTreeMap::new() }
    }

    /// The resource shared under `key` by the sinks built so far, opened by `open` for
    /// the first one that asks.
    ///
    /// # Errors
    /// What `open` returned.
    pub fn shared<T: Clone + Send + Sync + 'static>(
        &mut self,
        key: &'static str,
        open: impl FnOnce(&PipelineConfig) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        if let Some(existing) = self.shared.get(key).and_then(|shared| shared.downcast_ref::<T>()) {
            return Ok(existing.clone());
        }
        let opened = open(self.config)?;
        self.shared.insert(key, Box::new(opened.clone()));
        Ok(opened)
    }
}

/// Removes what writes a crash interrupted left in a local sink's directory.
fn clean_up(name: &str, path: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let removed = weir_sinks::remove_interrupted_writes(path)
        .with_context(|| format!("cannot clean up sink {name} at {}", path.display()))?;
    if removed > 0 {
        tracing::warn!(sink = %name, "removed {removed} files left by writes a crash interrupted");
    }
    Ok(())
}
