//! What a connector is ([`Connector`]) and what building a sink may use
//! ([`SinkContext`]).

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use object_store::ObjectStore;
use weir_config::{PipelineConfig, SinkConfig, SinkKind, SinkSettings, StoreLocation};
use weir_sinks::Sink;

use crate::stores::Stores;

/// A sink type of the host: how its `[sinks.NAME]` table is read ([`SinkKind`], used by
/// the configuration loader) and how a sink is built from the settings read.
pub trait Connector: SinkKind {
    /// Builds the sink named `name` from `settings` (as [`SinkKind::read`] made them); a
    /// sink with something to read back (a serving table, a search index, aggregates)
    /// registers its reader in `context.stores`.
    ///
    /// # Errors
    /// The sink cannot be opened; the message names the sink and its location.
    fn build(&self, name: &str, settings: &SinkConfig, context: &mut SinkContext<'_>) -> anyhow::Result<Arc<dyn Sink>>;
}

/// The settings of sink `name` as their connector's type `T`.
///
/// # Errors
/// The settings are of another connector's type: a sink built by the wrong connector.
pub(crate) fn settings_of<'a, T: SinkSettings>(name: &str, settings: &'a SinkConfig) -> anyhow::Result<&'a T> {
    settings.settings::<T>().with_context(|| {
        format!(
            "sink {name}: its settings are of another sink type ({settings:?}); this is a bug in weir, please report it"
        )
    })
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

/// The object store of a sink at `location`: a local directory (created if missing, with
/// what writes a crash interrupted removed first) or an S3 bucket and prefix.
///
/// # Errors
/// The directory cannot be created or cleaned up; S3 is asked for in a build without
/// AWS support; the S3 settings are refused.
pub(crate) fn open_store(name: &str, location: &StoreLocation) -> anyhow::Result<Arc<dyn ObjectStore>> {
    match location {
        StoreLocation::Directory(path) => {
            clean_up(name, path)?;
            Ok(weir_sinks::local_store(name, path)?)
        }
        #[cfg(feature = "aws")]
        StoreLocation::S3(s3) => weir_aws::s3_store(s3, None).with_context(|| format!("sink {name}: cannot open {s3}")),
        #[cfg(not(feature = "aws"))]
        StoreLocation::S3(s3) => anyhow::bail!(
            "sink {name}: {s3} needs AWS support, which this build of weir-connectors leaves out (feature \"aws\"); the weir binary has it"
        ),
    }
}

/// Removes what writes a crash interrupted left in a local sink's directory.
fn clean_up(name: &str, path: &std::path::Path) -> anyhow::Result<()> {
    let removed = weir_sinks::remove_interrupted_writes(path)
        .with_context(|| format!("cannot clean up sink {name} at {}", path.display()))?;
    if removed > 0 {
        tracing::warn!(sink = %name, "removed {removed} files left by writes a crash interrupted");
    }
    Ok(())
}
