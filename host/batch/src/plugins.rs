//! Which component each plugin of a job runs: the version a backfill pins, else the
//! registry's live version, else the configured file — loaded once per worker, with the
//! limits the host gives the plugin.

use std::collections::BTreeMap;
use std::sync::Arc;

use weir_config::PipelineConfig;
use weir_registry::RegistryStore;
use weir_runtime::{Plugin, PluginId, PluginOptions, ReferenceData, Runtime, World};

use crate::error::BatchError;

/// Where a job's plugins come from.
#[derive(Clone)]
pub struct PluginSource {
    runtime: Runtime,
    config: Arc<PipelineConfig>,
    registry: Option<Arc<dyn RegistryStore>>,
    reference: Arc<dyn ReferenceData>,
}

impl std::fmt::Debug for PluginSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginSource").field("registry", &self.registry).finish_non_exhaustive()
    }
}

impl PluginSource {
    /// Plugins of `config`, from `registry` when there is one (versions uploaded and
    /// activated through the admin API), with `reference` for their lookups.
    pub fn new(
        runtime: Runtime,
        config: Arc<PipelineConfig>,
        registry: Option<Arc<dyn RegistryStore>>,
        reference: Arc<dyn ReferenceData>,
    ) -> Self {
        Self { runtime, config, registry, reference }
    }

    /// Loads plugin `name` as `world`: `pinned` version from the registry when given,
    /// else the registry's live version, else the configured file.
    ///
    /// # Errors
    /// An unknown plugin or version, an unreadable file, a component the runtime refuses.
    pub async fn load(&self, name: &str, world: World, pinned: Option<&str>) -> Result<Plugin, BatchError> {
        let configured = self.config.plugins.get(name).ok_or_else(|| {
            BatchError::Invalid(format!("plugin {name} is not defined in [plugins] of the configuration"))
        })?;
        let mut options = PluginOptions {
            expected_world: Some(world),
            limits: configured.limits.clone(),
            config: configured.config_pairs(),
            reference: self.reference.clone(),
            ..Default::default()
        };
        let version = match pinned {
            Some(version) => Some(version.to_owned()),
            None => self.live_version(name).await?,
        };
        let (id, bytes) = match version {
            Some(version) => {
                let registry = self.registry.as_ref().ok_or_else(|| {
                    BatchError::Invalid(format!("{name}@{version}: there is no plugin registry to load versions from"))
                })?;
                let record = registry
                    .version(name.to_owned(), version.clone())
                    .await
                    .map_err(|e| BatchError::Plugin(format!("{name}@{version}: {e}")))?
                    .ok_or_else(|| {
                        BatchError::Invalid(format!(
                            "plugin {name} has no version {version:?} in the registry; `weir plugin list {name}` \
                             shows the uploaded ones"
                        ))
                    })?;
                if let Some(config) = &record.config {
                    options.config = config.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                }
                let bytes = registry
                    .component(record.sha256.clone())
                    .await
                    .map_err(|e| BatchError::Plugin(format!("{name}@{version}: {e}")))?;
                (PluginId::new(name, &version), bytes)
            }
            None => {
                let bytes = std::fs::read(&configured.path).map_err(|e| {
                    BatchError::Plugin(format!("cannot read plugin {name} from {}: {e}", configured.path.display()))
                })?;
                (configured.id(), bytes)
            }
        };
        self.runtime
            .load(id.clone(), &bytes, options)
            .await
            .map_err(|e| BatchError::Plugin(format!("cannot load {id}: {e}")))
    }

    /// The registry's live version of `name`, if it has a deployment.
    async fn live_version(&self, name: &str) -> Result<Option<String>, BatchError> {
        let Some(registry) = &self.registry else { return Ok(None) };
        let deployments =
            registry.deployments().await.map_err(|e| BatchError::Plugin(format!("cannot read the registry: {e}")))?;
        Ok(deployments.into_iter().find(|d| d.plugin == name).map(|d| d.live))
    }
}

/// One worker's instances of a job's plugins.
#[derive(Debug)]
pub(crate) struct Worker {
    pub(crate) parser: Plugin,
    pub(crate) enrichers: Vec<Plugin>,
    pub(crate) aggregators: BTreeMap<String, Plugin>,
}

impl Worker {
    /// `name@version` of each plugin the records go through, `>`-joined.
    pub(crate) fn lineage(&self) -> String {
        std::iter::once(&self.parser).chain(&self.enrichers).map(|p| p.id().to_string()).collect::<Vec<_>>().join(">")
    }
}
