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
    /// An embedded registry's directory whose components are read by address without
    /// opening its database (held by the host or the planner): a batch executor's.
    components: Option<std::path::PathBuf>,
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
        Self { runtime, config, registry, components: None, reference }
    }

    /// Plugins of `config` for a batch executor: components pinned by a planner are read
    /// from the embedded registry in `dir` by their address (the database is not opened:
    /// the host or the planner holds it).
    pub fn with_component_dir(
        runtime: Runtime,
        config: Arc<PipelineConfig>,
        dir: std::path::PathBuf,
        reference: Arc<dyn ReferenceData>,
    ) -> Self {
        Self { runtime, config, registry: None, components: Some(dir), reference }
    }

    /// Loads plugin `name` as `world`: `pinned` version from the registry when given,
    /// else the registry's live version, else the configured file.
    ///
    /// # Errors
    /// An unknown plugin or version, an unreadable file, a component the runtime refuses.
    pub async fn load(&self, name: &str, world: World, pinned: Option<&str>) -> Result<Plugin, BatchError> {
        let pin = self.pin(name, world, pinned).await?;
        self.load_pinned(&pin).await
    }

    /// Which component plugin `name` runs as `world` (as [`Self::load`] chooses it), named
    /// by its version (or the configured file) and its SHA-256, so another process (a
    /// cluster's executor) loads exactly it.
    ///
    /// # Errors
    /// As [`Self::load`].
    pub async fn pin(&self, name: &str, world: World, pinned: Option<&str>) -> Result<PinnedPlugin, BatchError> {
        let version = match pinned {
            Some(version) => Some(version.to_owned()),
            None => self.live_version(name).await?,
        };
        let fetched = self.fetch(name, version.as_deref()).await?;
        Ok(PinnedPlugin {
            name: name.to_owned(),
            id: fetched.id.to_string(),
            world: world.as_str().to_owned(),
            config: version.is_some().then_some(fetched.config),
            version,
            sha256: fetched.sha256,
        })
    }

    /// Loads the component `pin` names, refusing another one under its name (an executor
    /// whose registry or configured file is not the planner's).
    ///
    /// # Errors
    /// As [`Self::load`], or a component whose SHA-256 is not the pinned one.
    pub async fn load_pinned(&self, pin: &PinnedPlugin) -> Result<Plugin, BatchError> {
        let world = World::ALL
            .into_iter()
            .find(|w| w.as_str() == pin.world)
            .ok_or_else(|| BatchError::Invalid(format!("plugin {}: unknown world {:?}", pin.name, pin.world)))?;
        let configured = self.config.plugins.get(&pin.name).ok_or_else(|| {
            BatchError::Invalid(format!("plugin {} is not defined in [plugins] of this configuration", pin.name))
        })?;
        let (id, bytes) = match &pin.version {
            Some(version) => {
                let id = PluginId::new(&pin.name, version);
                let missing = |e: weir_registry::RegistryError| {
                    BatchError::Plugin(format!(
                        "{id} (component {}): {e}; every process of a run must read the same registry",
                        pin.sha256
                    ))
                };
                let bytes = match (&self.registry, &self.components) {
                    (Some(registry), _) => registry.component(pin.sha256.clone()).await.map_err(missing)?,
                    (None, Some(dir)) => weir_registry::local_component(dir, &pin.sha256).map_err(missing)?,
                    (None, None) => {
                        return Err(BatchError::Invalid(format!(
                            "{id}: there is no plugin registry to load versions from"
                        )));
                    }
                };
                (id, bytes)
            }
            None => {
                let bytes = std::fs::read(&configured.path).map_err(|e| {
                    BatchError::Plugin(format!(
                        "cannot read plugin {} from {}: {e}",
                        pin.name,
                        configured.path.display()
                    ))
                })?;
                let actual = weir_registry::sha256_hex(&bytes);
                if actual != pin.sha256 {
                    return Err(BatchError::Plugin(format!(
                        "{} here is component {actual} but the run was planned with {}: every process of a run \
                         must have the same configured plugin files",
                        configured.path.display(),
                        pin.sha256
                    )));
                }
                (configured.id(), bytes)
            }
        };
        let options = PluginOptions {
            expected_world: Some(world),
            limits: configured.limits.clone(),
            config: pin.config.clone().unwrap_or_else(|| configured.config_pairs()),
            reference: self.reference.clone(),
            ..Default::default()
        };
        self.runtime
            .load(id.clone(), &bytes, options)
            .await
            .map_err(|e| BatchError::Plugin(format!("cannot load {id}: {e}")))
    }

    /// The id, digest and (for a registry version) configuration of plugin `name`:
    /// `version` from the registry, or the configured file when `None`.
    async fn fetch(&self, name: &str, version: Option<&str>) -> Result<Fetched, BatchError> {
        let configured = self.config.plugins.get(name).ok_or_else(|| {
            BatchError::Invalid(format!("plugin {name} is not defined in [plugins] of the configuration"))
        })?;
        match version {
            Some(version) => {
                let registry = self.registry.as_ref().ok_or_else(|| {
                    BatchError::Invalid(format!("{name}@{version}: there is no plugin registry to load versions from"))
                })?;
                let record = registry
                    .version(name.to_owned(), version.to_owned())
                    .await
                    .map_err(|e| BatchError::Plugin(format!("{name}@{version}: {e}")))?
                    .ok_or_else(|| {
                        BatchError::Invalid(format!(
                            "plugin {name} has no version {version:?} in the registry; `weir plugin list {name}` \
                             shows the uploaded ones"
                        ))
                    })?;
                let config =
                    record.config.map_or_else(|| configured.config_pairs(), |config| config.into_iter().collect());
                Ok(Fetched { id: PluginId::new(name, version), sha256: record.sha256, config })
            }
            None => {
                let bytes = std::fs::read(&configured.path).map_err(|e| {
                    BatchError::Plugin(format!("cannot read plugin {name} from {}: {e}", configured.path.display()))
                })?;
                let sha256 = weir_registry::sha256_hex(&bytes);
                Ok(Fetched { id: configured.id(), sha256, config: configured.config_pairs() })
            }
        }
    }

    /// The registry's live version of `name`, if it has a deployment.
    async fn live_version(&self, name: &str) -> Result<Option<String>, BatchError> {
        let Some(registry) = &self.registry else { return Ok(None) };
        let deployments =
            registry.deployments().await.map_err(|e| BatchError::Plugin(format!("cannot read the registry: {e}")))?;
        Ok(deployments.into_iter().find(|d| d.plugin == name).map(|d| d.live))
    }
}

/// A component a job runs, as the planner chose it: what an executor loads.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PinnedPlugin {
    /// The plugin's name in `[plugins]`.
    pub name: String,
    /// `name@version` as lineage names it (the configured version for the file).
    pub id: String,
    /// `parser`, `enricher` or `aggregator`.
    pub world: String,
    /// The registry version, or `None` for the configured file.
    pub version: Option<String>,
    /// The component's SHA-256 (lowercase hex).
    pub sha256: String,
    /// The registry version's configuration (`None`: the configured `[plugins.X.config]`).
    pub config: Option<Vec<(String, String)>>,
}

struct Fetched {
    id: PluginId,
    sha256: String,
    config: Vec<(String, String)>,
}

/// One worker's instances of a job's aggregators, by plugin name.
pub(crate) type Worker = BTreeMap<String, Plugin>;
