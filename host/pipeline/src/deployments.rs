//! Which version of each plugin runs: uploads into the registry, activation with a
//! fixtures gate, rollback, canary and shadow candidates, promotion, automatic rollback,
//! and the audit log of all of it. The HTTP surface is `admin_api`.
//!
//! Decisions (docs/admin.md):
//! - A deployment is per plugin name: every stream using the plugin switches together.
//! - A swap is atomic between batches (see [`crate::slot`]).
//! - Aggregators can be activated and rolled back, not canaried or shadowed (their
//!   states are per window, not per record). Open windows carry their states over a swap:
//!   the new version receives the states the old one accumulated, so a version that
//!   changes its state format must read the old one (or be deployed under a new name).
//! - On start, a plugin with a stored deployment runs its live version from the registry
//!   (and its candidate, if any); otherwise the configured file is registered under the
//!   configured version and becomes the live one.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use weir_registry::{
    AuditEntry, Candidate, CandidateMode, CandidateOutcome, Deployment, Fixtures, RegistryError, RegistryStore,
    VersionRecord,
};
use weir_runtime::{LoadError, Plugin, PluginId, PluginOptions, Runtime, World};

use crate::slot::{Active, ActiveCandidate, AutoRollback, CandidateStats, PluginSlot};

/// A refused or failed admin action, answered as `{"error": message, "code": code}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminError {
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code, e.g. `forbidden_import`.
    pub code: &'static str,
    /// What happened and what to do, for a person.
    pub message: String,
}

impl AdminError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for AdminError {}

impl From<RegistryError> for AdminError {
    fn from(e: RegistryError) -> Self {
        AdminError::new(500, "registry_error", e.to_string())
    }
}

/// The defaults of a candidate's automatic rollback.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollbackPolicy {
    pub max_error_rate: f64,
    pub min_inputs: u64,
}

/// A new candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateRequest {
    pub version: String,
    pub mode: CandidateMode,
    pub max_error_rate: Option<f64>,
    pub min_inputs: Option<u64>,
}

/// A plugin's component as the configuration names it: what is registered when no
/// deployment exists yet, and what the start warns about when the registry runs another.
#[derive(Debug, Clone)]
pub struct ConfiguredPlugin {
    /// Its `path` in `[plugins.NAME]`.
    pub path: std::path::PathBuf,
    /// The component's bytes.
    pub bytes: Vec<u8>,
    /// Whether it replaces the registry's live version at start (`[registry] precedence
    /// = "file"`) instead of the registry's winning.
    pub wins_over_registry: bool,
}

/// The deployments of a running pipeline.
pub struct Deployments {
    registry: Arc<dyn RegistryStore>,
    runtime: Runtime,
    slots: BTreeMap<String, Arc<PluginSlot>>,
    options: BTreeMap<String, PluginOptions>,
    policy: RollbackPolicy,
    /// The compiled-code cache, for the fixtures gate's harness.
    cache_dir: Option<std::path::PathBuf>,
    /// The stored deployments, and the lock that serialises admin actions.
    state: tokio::sync::Mutex<BTreeMap<String, Deployment>>,
}

impl std::fmt::Debug for Deployments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deployments").field("plugins", &self.slots.keys().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

fn now() -> String {
    weir_events::time::format_rfc3339(crate::now_micros())
}

/// Plugin and version names: 1 to 64 letters, digits, `.`, `-`, `_` or `+`.
fn valid_version(version: &str) -> bool {
    !version.is_empty()
        && version.len() <= 64
        && version.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+'))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The stable code of one reason the runtime refused a component for.
fn refusal_code(reason: &str) -> &'static str {
    if reason.contains("which the host does not provide") {
        "forbidden_import"
    } else if reason.contains("this host implements weir:plugin@") {
        "unsupported_wit_version"
    } else if reason.contains("exports no weir:plugin interface")
        || reason.contains("exports several plugin interfaces")
        || reason.contains("is expected here")
    {
        "wrong_world"
    } else if reason.starts_with("cannot be linked") {
        "mistyped_import"
    } else if reason.starts_with("its exports do not match world") {
        "mistyped_export"
    } else if reason.starts_with("its memory limit") {
        "limit_too_high"
    } else {
        "refused"
    }
}

/// A stored component this host refuses whatever its configuration: built against
/// another WIT version, or its imports or exports have other types.
fn runs_on_another_host_only(error: &AdminError) -> bool {
    matches!(error.code, "unsupported_wit_version" | "mistyped_import" | "mistyped_export")
}

/// A stored candidate this host cannot run, ended at start.
struct EndedCandidate {
    /// The deployment without it, its outcome in `last_candidate`.
    deployment: Deployment,
    /// Its version.
    version: String,
    /// Why it cannot run here, on one line.
    why: String,
}

/// Why a stored version cannot run here, on one line (the refusal lists its reasons on
/// several).
fn cannot_run_here(error: &AdminError) -> String {
    format!("it cannot run on this host: {}", error.message.lines().map(str::trim).collect::<Vec<_>>().join(" "))
}

/// The admin answer to a component the runtime would not load.
fn load_refusal(error: LoadError) -> AdminError {
    let message = error.to_string();
    match error {
        LoadError::Truncated(..) => AdminError::new(400, "truncated", message),
        LoadError::NotWasm(..) => AdminError::new(400, "not_wasm", message),
        LoadError::CoreModule(..) => AdminError::new(400, "core_module", message),
        LoadError::Invalid(..) => AdminError::new(400, "invalid_component", message),
        LoadError::Refused(_, reasons) => {
            AdminError::new(422, reasons.first().map_or("refused", |r| refusal_code(r)), message)
        }
        LoadError::ConfigRejected(..) => AdminError::new(422, "config_rejected", message),
        LoadError::Start(..) => AdminError::new(422, "start_failed", message),
        LoadError::Host(..) => AdminError::new(500, "host_error", message),
    }
}

impl Deployments {
    /// The deployments of `slots` (the plugins the streams use, with their options),
    /// restored from `registry`: a plugin with a stored deployment gets its live version
    /// (and candidate) from the registry — unless its configured file
    /// [wins](ConfiguredPlugin::wins_over_registry), when a configured file other than the live version is registered and
    /// activated, the earlier live version kept for rollback; the others register their
    /// configured component.
    /// Automatic rollbacks reported on `rollbacks` are recorded by [`Deployments::record_rollback`].
    ///
    /// # Errors
    /// When the registry fails or a stored version cannot be loaded.
    pub async fn restore(
        registry: Arc<dyn RegistryStore>,
        runtime: Runtime,
        slots: BTreeMap<String, Arc<PluginSlot>>,
        options: BTreeMap<String, PluginOptions>,
        configured: BTreeMap<String, ConfiguredPlugin>,
        policy: RollbackPolicy,
        cache_dir: Option<std::path::PathBuf>,
    ) -> anyhow::Result<Self> {
        let mut stored: BTreeMap<String, Deployment> =
            registry.deployments().await?.into_iter().map(|d| (d.plugin.clone(), d)).collect();
        let deployments = Self {
            registry,
            runtime,
            slots,
            options,
            policy,
            cache_dir,
            state: tokio::sync::Mutex::new(BTreeMap::new()),
        };
        let mut state = BTreeMap::new();
        for (name, slot) in &deployments.slots {
            let live = slot.snapshot().live.clone();
            match stored.remove(name) {
                Some(mut deployment) => {
                    // A stored version this host cannot run at all (built against another
                    // WIT version, as after an upgrade of weir) gives way to the configured
                    // file rather than stopping the host: the plugin keeps running. A
                    // candidate that cannot run is ended alone; the live version stays.
                    let (active, cannot_run) = match deployments.restorable(name, &deployment).await {
                        Ok((active, ended_candidate)) => {
                            if let Some(ended) = ended_candidate {
                                deployment = deployments.record_ended_candidate(name, ended).await?;
                            }
                            (Some(active), None)
                        }
                        Err(err) if runs_on_another_host_only(&err) && configured.contains_key(name) => {
                            (None, Some(err))
                        }
                        Err(err) => return Err(err.into()),
                    };
                    // The same component under the configured version (or the `+sha`
                    // suffix a changed file was registered with) is the file running.
                    let version = &live.id().version;
                    let same = active.as_ref().is_some_and(|active| {
                        active.live.info().sha256 == live.info().sha256
                            && (deployment.live == *version || deployment.live.starts_with(&format!("{version}+")))
                    });
                    let file_wins = configured.get(name).is_some_and(|c| c.wins_over_registry);
                    let active = match active {
                        Some(active) if same || !file_wins => active,
                        _ => {
                            // The file wins (docs/admin.md), or the registry's version cannot
                            // run here: registered, activated, audited; a canary or shadow of
                            // the registry's is ended with it.
                            let bytes = configured.get(name).map(|c| c.bytes.clone()).unwrap_or_default();
                            let version = deployments.register_configured(name, &live, bytes).await?;
                            let mut previous = deployment.previous.clone();
                            previous.push(deployment.live.clone());
                            let last_candidate = ended(
                                &deployment,
                                None,
                                "replaced",
                                "config",
                                Some(format!("the configured file was put live as {name}@{version}")),
                            )
                            .or_else(|| deployment.last_candidate.clone());
                            let applied = Deployment {
                                plugin: name.clone(),
                                live: version.clone(),
                                previous,
                                candidate: None,
                                last_candidate,
                            };
                            deployments.registry.put_deployment(applied.clone()).await?;
                            let why = match &cannot_run {
                                Some(err) => cannot_run_here(err),
                                None => "[registry] precedence = \"file\"".to_owned(),
                            };
                            deployments
                                .audit_text(
                                    "config",
                                    "activate",
                                    &format!("{name}@{version}"),
                                    format!("ok: the configured file replaced {name}@{} ({why})", deployment.live),
                                )
                                .await;
                            if cannot_run.is_some() {
                                tracing::error!(
                                    plugin = %name,
                                    "runs the configured file {name}@{version} instead of the registry's {name}@{}: \
                                     {why}. Rebuild that version against this weir's SDK, upload it as a new \
                                     version and activate it",
                                    deployment.live
                                );
                            } else {
                                tracing::warn!(
                                    plugin = %name,
                                    "runs the configured file {name}@{version} instead of the registry's {name}@{} \
                                     ({why}); `weir plugin rollback {name}` returns to it",
                                    deployment.live
                                );
                            }
                            state.insert(name.clone(), applied);
                            continue;
                        }
                    };
                    if !same {
                        // The registry wins over the file (docs/admin.md): said at the
                        // default log level, with the command that applies the file.
                        let configured_version = &live.id().version;
                        let path = configured.get(name).map_or_else(
                            || format!("<the file of [plugins.{name}]>"),
                            |c| c.path.display().to_string(),
                        );
                        tracing::warn!(
                            plugin = %name,
                            "runs {name}@{} from the registry, not the configured file ({name}@{configured_version}, {path}): \
                             the registry's live version wins once a deployment exists. To run the file: \
                             weir plugin upload {path} --name {name} --version {configured_version} && \
                             weir plugin activate {name} {configured_version}",
                            deployment.live
                        );
                    }
                    slot.swap(active);
                    state.insert(name.clone(), deployment);
                }
                None => {
                    let bytes = configured.get(name).map(|c| c.bytes.clone()).unwrap_or_default();
                    let version = deployments.register_configured(name, &live, bytes).await?;
                    let deployment = Deployment {
                        plugin: name.clone(),
                        live: version,
                        previous: Vec::new(),
                        candidate: None,
                        last_candidate: None,
                    };
                    deployments.registry.put_deployment(deployment.clone()).await?;
                    state.insert(name.clone(), deployment);
                }
            }
        }
        *deployments.state.lock().await = state;
        Ok(deployments)
    }

    /// Runs what the registry's deployments name where this host runs something else:
    /// the deployments another host of the fleet stored in a shared registry (an
    /// activation, a rollback, a canary started, promoted or aborted there). Returns how
    /// many plugins changed. A deployment whose versions do not load here is logged and
    /// left for the next call.
    ///
    /// # Errors
    /// The registry cannot be read.
    pub async fn follow_registry(&self) -> Result<usize, AdminError> {
        // Read under the lock: a local action committed meanwhile must not be undone by
        // an older read.
        let mut state = self.state.lock().await;
        let stored = self.registry.deployments().await?;
        let mut changed = 0;
        for deployment in stored {
            let Some(slot) = self.slots.get(&deployment.plugin) else { continue };
            if state.get(&deployment.plugin) == Some(&deployment) {
                continue;
            }
            match self.active_for(&deployment.plugin, &deployment).await {
                Ok(active) => {
                    tracing::info!(
                        plugin = %deployment.plugin,
                        live = %deployment.live,
                        candidate = ?deployment.candidate.as_ref().map(|c| &c.version),
                        "running the deployment another host stored in the shared registry"
                    );
                    slot.swap(active);
                    state.insert(deployment.plugin.clone(), deployment);
                    changed += 1;
                }
                Err(error) => tracing::warn!(
                    plugin = %deployment.plugin,
                    live = %deployment.live,
                    "cannot run the registry's deployment yet, keeping the current one: {error}"
                ),
            }
        }
        Ok(changed)
    }

    /// Registers a configured component under its configured version (or
    /// `<version>+<sha8>` when the registry holds other bytes under that version).
    async fn register_configured(&self, name: &str, plugin: &Plugin, bytes: Vec<u8>) -> Result<String, AdminError> {
        let info = plugin.info();
        let mut version = plugin.id().version.clone();
        if let Some(existing) = self.registry.version(name.to_owned(), version.clone()).await? {
            if existing.sha256 == info.sha256 {
                return Ok(version);
            }
            version = format!("{version}+{}", &info.sha256[..8]);
            if self.registry.version(name.to_owned(), version.clone()).await?.is_some() {
                return Ok(version);
            }
        }
        self.registry.put_component(bytes).await?;
        self.registry
            .put_version(VersionRecord {
                name: name.to_owned(),
                version: version.clone(),
                sha256: info.sha256.clone(),
                world: info.world.as_str().to_owned(),
                wit_version: info.wit_version.clone(),
                size: info.size as u64,
                imports: info.imports.clone(),
                description: "registered from the pipeline configuration".to_owned(),
                uploaded_by: "config".to_owned(),
                uploaded_at: now(),
                fixtures: None,
                config: None,
            })
            .await?;
        Ok(version)
    }

    /// Loads the versions a stored deployment names.
    async fn active_for(&self, name: &str, deployment: &Deployment) -> Result<Active, AdminError> {
        let live = Arc::new(self.load(name, &deployment.live).await?);
        let candidate = match &deployment.candidate {
            Some(c) => Some(self.active_candidate(name, c).await?),
            None => None,
        };
        Ok(Active { live, candidate })
    }

    /// The live version and candidate of a stored deployment, loaded at a start. A
    /// candidate this host cannot run at all (another WIT version, mistyped imports or
    /// exports) is ended rather than the whole deployment refused: the deployment without
    /// it is returned beside, with the reason, for the caller to store and report.
    async fn restorable(
        &self,
        name: &str,
        deployment: &Deployment,
    ) -> Result<(Active, Option<EndedCandidate>), AdminError> {
        let live = Arc::new(self.load(name, &deployment.live).await?);
        let Some(candidate) = &deployment.candidate else {
            return Ok((Active { live, candidate: None }, None));
        };
        match self.active_candidate(name, candidate).await {
            Ok(candidate) => Ok((Active { live, candidate: Some(candidate) }, None)),
            Err(err) if runs_on_another_host_only(&err) => {
                let why = cannot_run_here(&err);
                let without = Deployment {
                    candidate: None,
                    last_candidate: ended(deployment, None, "aborted", "config", Some(why.clone())),
                    ..deployment.clone()
                };
                let version = candidate.version.clone();
                Ok((Active { live, candidate: None }, Some(EndedCandidate { deployment: without, version, why })))
            }
            Err(err) => Err(err),
        }
    }

    /// Stores the deployment of `name` without the candidate `ended` at start, audits it
    /// and says so in an ERROR line with what to do; returns the stored deployment.
    async fn record_ended_candidate(&self, name: &str, ended: EndedCandidate) -> anyhow::Result<Deployment> {
        let EndedCandidate { deployment, version, why } = ended;
        self.registry.put_deployment(deployment.clone()).await?;
        let target = format!("{name}@{version}");
        self.audit_text("config", "abort", &target, format!("ok: the candidate was ended ({why})")).await;
        tracing::error!(
            plugin = %name,
            "ended the canary or shadow of {target} and kept {name}@{} live: {why}. Rebuild that version against \
             this weir's SDK, upload it as a new version and start the canary again",
            deployment.live
        );
        Ok(deployment)
    }

    async fn active_candidate(&self, name: &str, candidate: &Candidate) -> Result<ActiveCandidate, AdminError> {
        Ok(ActiveCandidate {
            plugin: Arc::new(self.load(name, &candidate.version).await?),
            mode: candidate.mode,
            max_error_rate: candidate.max_error_rate,
            min_inputs: candidate.min_inputs,
            stats: Arc::new(CandidateStats::default()),
        })
    }

    /// Loads `name@version` from the registry with the plugin's options (and the
    /// version's own configuration, if it has one).
    async fn load(&self, name: &str, version: &str) -> Result<Plugin, AdminError> {
        let record = self.version_record(name, version).await?;
        let bytes = self.registry.component(record.sha256.clone()).await?;
        let options = self.options_for(&record);
        self.runtime.load(PluginId::new(name, version), &bytes, options).await.map_err(load_refusal)
    }

    /// The plugin's options, with the version's configuration in place of the plugin's
    /// when the version has one.
    fn options_for(&self, record: &VersionRecord) -> PluginOptions {
        let mut options = self.options.get(&record.name).cloned().unwrap_or_default();
        if let Some(config) = &record.config {
            options.config = config.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        }
        options
    }

    async fn version_record(&self, name: &str, version: &str) -> Result<VersionRecord, AdminError> {
        self.registry.version(name.to_owned(), version.to_owned()).await?.ok_or_else(|| {
            AdminError::new(
                404,
                "unknown_version",
                format!(
                    "plugin {name} has no version {version:?}; upload it first (GET /v1/plugins/{name} lists them)"
                ),
            )
        })
    }

    /// Why an upload under `name` cannot run on this pipeline, if no stream uses a plugin
    /// of that name (a typo, or a plugin not yet in the configuration): the upload is
    /// stored, and the answer carries this as a warning.
    pub fn unused_name_warning(&self, name: &str) -> Option<String> {
        if self.slots.contains_key(name) {
            return None;
        }
        let known: Vec<&str> = self.slots.keys().map(String::as_str).collect();
        Some(format!(
            "no stream of this pipeline uses plugin {name:?}, so this version cannot be activated, canaried or \
             shadowed here until the configuration names it; plugins the streams use: {}",
            known.join(", ")
        ))
    }

    fn slot(&self, name: &str) -> Result<&Arc<PluginSlot>, AdminError> {
        self.slots.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.slots.keys().map(String::as_str).collect();
            AdminError::new(
                404,
                "not_deployed",
                format!("no stream of this pipeline uses plugin {name:?}; deployable plugins: {}", known.join(", ")),
            )
        })
    }

    async fn audit(&self, actor: &str, action: &str, target: &str, result: &Result<impl Sized, AdminError>) {
        let result = match result {
            Ok(_) => "ok".to_owned(),
            Err(e) => format!("refused: {} {}: {}", e.status, e.code, e.message),
        };
        self.audit_text(actor, action, target, result).await;
    }

    /// Records an action the HTTP layer refused before it reached here (an upload over
    /// the size limit, say).
    pub async fn audit_refusal(&self, actor: &str, action: &str, target: &str, error: &AdminError) {
        self.audit(actor, action, target, &Err::<(), _>(error.clone())).await;
    }

    /// Appends an audit entry for an action taken outside the registry (a batch run
    /// started through the API), with its result text (`ok: …` or why it failed).
    pub async fn record_action(&self, actor: &str, action: &str, target: &str, result: String) {
        self.audit_text(actor, action, target, result).await;
    }

    async fn audit_text(&self, actor: &str, action: &str, target: &str, result: String) {
        let entry = AuditEntry {
            seq: 0,
            at: now(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            result,
        };
        if let Err(e) = self.registry.append_audit(entry).await {
            tracing::error!("the audit log could not be written: {e}");
        }
    }

    /// Stores an uploaded component as `name@version` (the next integer when `version`
    /// is `None`) after checking that the host would run it: a component, of a known
    /// world and WIT version, importing only what the host provides, compiling, and
    /// accepting the plugin's configuration. Returns the record and whether it is new
    /// (the same bytes under the same version again is not an error).
    ///
    /// # Errors
    /// An [`AdminError`] with a 4xx status naming what is wrong.
    pub async fn upload(
        &self,
        actor: &str,
        name: &str,
        version: Option<&str>,
        description: &str,
        bytes: &[u8],
    ) -> Result<(VersionRecord, bool), AdminError> {
        let _guard = self.state.lock().await;
        let result = self.upload_locked(actor, name, version, description, bytes).await;
        let target = match &result {
            Ok((record, _)) => format!("{name}@{}", record.version),
            Err(_) => format!("{name}@{}", version.unwrap_or("?")),
        };
        self.audit(actor, "upload", &target, &result).await;
        result
    }

    async fn upload_locked(
        &self,
        actor: &str,
        name: &str,
        version: Option<&str>,
        description: &str,
        bytes: &[u8],
    ) -> Result<(VersionRecord, bool), AdminError> {
        if !valid_name(name) {
            return Err(AdminError::new(
                400,
                "invalid_name",
                format!("{name:?} is not a plugin name; use 1 to 64 characters among a-z, 0-9, '-' and '_'"),
            ));
        }
        let sha256 = weir_registry::sha256_hex(bytes);
        let existing = self.registry.versions(Some(name.to_owned())).await?;
        let version = match version {
            Some(v) if !valid_version(v) => {
                return Err(AdminError::new(
                    400,
                    "invalid_version",
                    format!("{v:?} is not a version; use 1 to 64 letters, digits, '.', '-', '_' or '+'"),
                ));
            }
            Some(v) => v.to_owned(),
            None => {
                let highest = existing.iter().filter_map(|r| r.version.parse::<u64>().ok()).max().unwrap_or(0);
                (highest + 1).to_string()
            }
        };
        if let Some(record) = existing.iter().find(|r| r.version == version) {
            if record.sha256 == sha256 {
                return Ok((record.clone(), false));
            }
            return Err(AdminError::new(
                409,
                "version_exists",
                format!(
                    "{name}@{version} already exists with other bytes (sha256 {}); versions are immutable, upload under a new version",
                    record.sha256
                ),
            ));
        }
        let mut options = self.options.get(name).cloned().unwrap_or_default();
        if options.expected_world.is_none() {
            options.expected_world = self.slots.get(name).map(|slot| slot.world());
        }
        let plugin = self.runtime.load(PluginId::new(name, &version), bytes, options).await.map_err(load_refusal)?;
        let info = plugin.info();
        self.registry.put_component(bytes.to_vec()).await?;
        let record = VersionRecord {
            name: name.to_owned(),
            version,
            sha256,
            world: info.world.as_str().to_owned(),
            wit_version: info.wit_version.clone(),
            size: bytes.len() as u64,
            imports: info.imports.clone(),
            description: description.to_owned(),
            uploaded_by: actor.to_owned(),
            uploaded_at: now(),
            fixtures: None,
            config: None,
        };
        self.registry.put_version(record.clone()).await?;
        Ok((record, true))
    }

    /// Runs `fixtures` against a version now, with its configuration, and attaches them
    /// when they pass: from then on they gate its activation, canary and shadow too
    /// (its configuration may still change). Fixtures that fail are not attached (the
    /// version keeps the ones it had).
    ///
    /// # Errors
    /// An unknown version; fixtures that fail (422 `fixtures_failed`, with the harness's
    /// report naming the uploader's files); a registry failure.
    pub async fn set_fixtures(
        &self,
        actor: &str,
        name: &str,
        version: &str,
        fixtures: Fixtures,
    ) -> Result<VersionRecord, AdminError> {
        let _guard = self.state.lock().await;
        let result = async {
            let mut record = self.version_record(name, version).await?;
            record.fixtures = Some(fixtures);
            self.gate(&record, Gated::Attach).await?;
            self.registry.put_version(record.clone()).await?;
            Ok(record)
        }
        .await;
        self.audit(actor, "fixtures", &format!("{name}@{version}"), &result).await;
        result
    }

    /// Sets the configuration a version runs with (its `configure` pairs), in place of the
    /// plugin's. The plugin checks it when the version is activated or tried (a refused
    /// configuration refuses the activation, with the plugin's reason).
    ///
    /// # Errors
    /// An unknown version; a version that is live or the candidate (its configuration
    /// cannot change under it: upload it as a new version); a registry failure.
    pub async fn set_config(
        &self,
        actor: &str,
        name: &str,
        version: &str,
        config: BTreeMap<String, String>,
    ) -> Result<VersionRecord, AdminError> {
        let state = self.state.lock().await;
        let result = async {
            let mut record = self.version_record(name, version).await?;
            if state.get(name).and_then(|deployment| running_as(deployment, version)).is_some() {
                return Err(AdminError::new(
                    409,
                    "in_use",
                    format!(
                        "{name}@{version} is running, so its configuration cannot change under it; upload the component again as a new version with this configuration"
                    ),
                ));
            }
            record.config = Some(config);
            self.registry.put_version(record.clone()).await?;
            Ok(record)
        }
        .await;
        self.audit(actor, "config", &format!("{name}@{version}"), &result).await;
        result
    }

    /// Runs a version's fixtures in the harness; `Err` with the diff when they fail,
    /// saying what was refused because of it.
    async fn gate(&self, record: &VersionRecord, action: Gated) -> Result<(), AdminError> {
        let Some(fixtures) = &record.fixtures else { return Ok(()) };
        let bytes = self.registry.component(record.sha256.clone()).await?;
        let options = self.options_for(record);
        let fixtures = fixtures.clone();
        let label = format!("{}@{}", record.name, record.version);
        let report = crate::fixtures::run(self.cache_dir.clone(), &label, bytes, options, fixtures).await;
        match report {
            Ok(()) => Ok(()),
            Err(diff) => {
                let files = fixtures_named(record);
                let (refused, next) = match action {
                    Gated::Attach => (
                        "so they were not attached",
                        "fix the plugin (or the expected output, if the plugin is right) and upload again",
                    ),
                    Gated::Activate => (
                        "so it was not activated",
                        "upload a fixed version, or attach fixtures it passes (weir plugin upload with --input/--expect)",
                    ),
                    Gated::Canary => ("so its canary was not started (nothing changed)", "upload a fixed version"),
                    Gated::Shadow => ("so its shadow was not started (nothing changed)", "upload a fixed version"),
                };
                Err(AdminError::new(
                    422,
                    "fixtures_failed",
                    format!("{label} does not pass its fixtures ({files}), {refused}:\n{diff}\nnext: {next}"),
                ))
            }
        }
    }

    /// Makes `name@version` live (after its fixtures pass); the live version becomes the
    /// one rollback returns to; any candidate is dropped.
    ///
    /// # Errors
    /// Unknown plugin or version, failing fixtures, a component that does not load.
    pub async fn activate(&self, actor: &str, name: &str, version: &str) -> Result<Deployment, AdminError> {
        let mut state = self.state.lock().await;
        let result = self.activate_locked(&mut state, actor, name, version).await;
        self.audit(actor, "activate", &format!("{name}@{version}"), &result).await;
        result
    }

    async fn activate_locked(
        &self,
        state: &mut BTreeMap<String, Deployment>,
        actor: &str,
        name: &str,
        version: &str,
    ) -> Result<Deployment, AdminError> {
        let slot = self.slot(name)?;
        let record = self.version_record(name, version).await?;
        self.gate(&record, Gated::Activate).await?;
        let plugin = Arc::new(self.load(name, version).await?);
        let mut deployment = current(state, slot);
        if deployment.live != version {
            deployment.previous.push(std::mem::replace(&mut deployment.live, version.to_owned()));
        }
        let why = format!("{name}@{version} was activated");
        if let Some(outcome) = ended(&deployment, slot.snapshot().candidate.as_ref(), "replaced", actor, Some(why)) {
            deployment.last_candidate = Some(outcome);
        }
        deployment.candidate = None;
        self.commit(state, slot, deployment, Active { live: plugin, candidate: None }).await
    }

    /// Stores `deployment`, swaps `active` into the slot (the next batch of every shard
    /// runs it) and remembers the deployment: every change of versions ends here.
    async fn commit(
        &self,
        state: &mut BTreeMap<String, Deployment>,
        slot: &PluginSlot,
        deployment: Deployment,
        active: Active,
    ) -> Result<Deployment, AdminError> {
        self.registry.put_deployment(deployment.clone()).await?;
        slot.swap(active);
        state.insert(slot.name().to_owned(), deployment.clone());
        Ok(deployment)
    }

    /// Makes the previous live version live again.
    ///
    /// # Errors
    /// Unknown plugin, nothing to roll back to, a version that no longer loads.
    pub async fn rollback(&self, actor: &str, name: &str) -> Result<Deployment, AdminError> {
        let mut state = self.state.lock().await;
        let result = async {
            let slot = self.slot(name)?;
            let mut deployment = state.get(name).cloned().ok_or_else(|| nothing_to_roll_back(name))?;
            let previous = deployment.previous.pop().ok_or_else(|| nothing_to_roll_back(name))?;
            let plugin = Arc::new(self.load(name, &previous).await?);
            let why = format!("a rollback to {name}@{previous}");
            if let Some(outcome) = ended(&deployment, slot.snapshot().candidate.as_ref(), "replaced", actor, Some(why))
            {
                deployment.last_candidate = Some(outcome);
            }
            deployment.live = previous;
            deployment.candidate = None;
            self.commit(&mut state, slot, deployment, Active { live: plugin, candidate: None }).await
        }
        .await;
        let target = live_target(name, &result);
        self.audit(actor, "rollback", &target, &result).await;
        result
    }

    /// Starts a canary or shadow of `request.version` beside the live version.
    ///
    /// # Errors
    /// Unknown plugin or version, an aggregator, a bad percentage, a version that does
    /// not load or fails its fixtures.
    pub async fn start_candidate(
        &self,
        actor: &str,
        name: &str,
        request: CandidateRequest,
    ) -> Result<Deployment, AdminError> {
        let mut state = self.state.lock().await;
        let action = match request.mode {
            CandidateMode::Canary { .. } => "canary",
            CandidateMode::Shadow => "shadow",
        };
        let target = format!("{name}@{}", request.version);
        let result = async {
            let slot = self.slot(name)?;
            if slot.world() == World::Aggregator {
                return Err(AdminError::new(
                    409,
                    "not_supported",
                    format!(
                        "{name} is an aggregator: its state is per window, so it cannot take a share of the records; activate the version instead (open windows carry their states over)"
                    ),
                ));
            }
            if let CandidateMode::Canary { percent } = request.mode
                && percent > 100
            {
                return Err(AdminError::new(400, "invalid_percent", format!("percent {percent} is not 0 to 100")));
            }
            let max_error_rate = request.max_error_rate.unwrap_or(self.policy.max_error_rate);
            if !(0.0..=1.0).contains(&max_error_rate) {
                return Err(AdminError::new(
                    400,
                    "invalid_error_rate",
                    format!("max_error_rate {max_error_rate} is not a share from 0 to 1"),
                ));
            }
            let record = self.version_record(name, &request.version).await?;
            let gated = if request.mode == CandidateMode::Shadow { Gated::Shadow } else { Gated::Canary };
            self.gate(&record, gated).await?;
            let candidate = Candidate {
                version: request.version.clone(),
                mode: request.mode,
                max_error_rate,
                min_inputs: request.min_inputs.unwrap_or(self.policy.min_inputs).max(1),
                since: now(),
            };
            let active_candidate = self.active_candidate(name, &candidate).await?;
            let mut deployment = current(&state, slot);
            deployment.candidate = Some(candidate);
            self.commit(&mut state, slot, deployment, Active { live: slot.snapshot().live.clone(), candidate: Some(active_candidate) }).await
        }
        .await;
        self.audit(actor, action, &target, &result).await;
        result
    }

    /// Makes the candidate live.
    ///
    /// # Errors
    /// Unknown plugin, no candidate.
    pub async fn promote(&self, actor: &str, name: &str) -> Result<Deployment, AdminError> {
        let mut state = self.state.lock().await;
        let result = async {
            let slot = self.slot(name)?;
            let active = slot.snapshot();
            let (Some(candidate), Some(mut deployment)) = (&active.candidate, state.get(name).cloned()) else {
                return Err(no_candidate(name));
            };
            deployment.last_candidate = ended(&deployment, Some(candidate), "promoted", actor, None);
            let Some(stored) = deployment.candidate.take() else { return Err(no_candidate(name)) };
            deployment.previous.push(std::mem::replace(&mut deployment.live, stored.version));
            self.commit(&mut state, slot, deployment, Active { live: candidate.plugin.clone(), candidate: None }).await
        }
        .await;
        let target = live_target(name, &result);
        self.audit(actor, "promote", &target, &result).await;
        result
    }

    /// Stops the candidate; the live version takes all records again.
    ///
    /// # Errors
    /// Unknown plugin, no candidate.
    pub async fn abort(&self, actor: &str, name: &str) -> Result<Deployment, AdminError> {
        let mut state = self.state.lock().await;
        let result = self.drop_candidate(&mut state, actor, name).await;
        self.audit(actor, "abort", name, &result).await;
        result
    }

    async fn drop_candidate(
        &self,
        state: &mut BTreeMap<String, Deployment>,
        actor: &str,
        name: &str,
    ) -> Result<Deployment, AdminError> {
        let slot = self.slot(name)?;
        let mut deployment = state.get(name).cloned().ok_or_else(|| no_candidate(name))?;
        if let Some(outcome) = ended(&deployment, slot.snapshot().candidate.as_ref(), "aborted", actor, None) {
            deployment.last_candidate = Some(outcome);
        }
        if deployment.candidate.take().is_none() {
            return Err(no_candidate(name));
        }
        self.commit(state, slot, deployment, Active { live: slot.snapshot().live.clone(), candidate: None }).await
    }

    /// Records an automatic rollback a stage made (the slot already dropped the
    /// candidate): the stored deployment and the audit log.
    pub async fn record_rollback(&self, event: AutoRollback) {
        let mut state = self.state.lock().await;
        let Some(mut deployment) = state.get(&event.plugin).cloned() else { return };
        if deployment.candidate.as_ref().is_some_and(|c| c.version == event.version) {
            let mut outcome = ended(&deployment, None, "rolled_back", "weir", Some(event.reason.clone()));
            if let Some(outcome) = &mut outcome {
                [outcome.inputs, outcome.failed, outcome.compared, outcome.differing] = event.counts;
            }
            deployment.last_candidate = outcome;
            deployment.candidate = None;
            if let Err(e) = self.registry.put_deployment(deployment.clone()).await {
                tracing::error!("the deployment of {} could not be stored: {e}", event.plugin);
            }
            state.insert(event.plugin.clone(), deployment);
        }
        let target = format!("{}@{}", event.plugin, event.version);
        self.audit_text("weir", "auto-rollback", &target, format!("ok: {}", event.reason)).await;
    }

    /// Deletes a version that is not in use (live or candidate).
    ///
    /// # Errors
    /// Unknown version, a version in use.
    pub async fn delete(&self, actor: &str, name: &str, version: &str) -> Result<(), AdminError> {
        let mut state = self.state.lock().await;
        let result = async {
            let record = self.version_record(name, version).await?;
            if let Some(role) = state.get(name).and_then(|deployment| running_as(deployment, version)) {
                return Err(AdminError::new(
                    409,
                    "in_use",
                    format!("{name}@{version} is {role}; activate or abort first, then delete it"),
                ));
            }
            self.registry.remove_version(name.to_owned(), version.to_owned()).await?;
            if let Some(deployment) = state.get_mut(name) {
                deployment.previous.retain(|v| v != version);
                self.registry.put_deployment(deployment.clone()).await?;
            }
            let shared = self.registry.versions(None).await?.iter().any(|r| r.sha256 == record.sha256);
            if !shared {
                self.registry.remove_component(record.sha256.clone()).await?;
            }
            Ok(())
        }
        .await;
        self.audit(actor, "delete", &format!("{name}@{version}"), &result).await;
        result
    }

    /// Every version of `name` (or of every plugin).
    ///
    /// # Errors
    /// A registry failure.
    pub async fn versions(&self, name: Option<&str>) -> Result<Vec<VersionRecord>, AdminError> {
        Ok(self.registry.versions(name.map(str::to_owned)).await?)
    }

    /// One version's metadata.
    ///
    /// # Errors
    /// Unknown version, a registry failure.
    pub async fn version(&self, name: &str, version: &str) -> Result<VersionRecord, AdminError> {
        self.version_record(name, version).await
    }

    /// The deployment of each deployable plugin, with its candidate's counters.
    pub async fn status(&self, name: Option<&str>) -> Result<Vec<serde_json::Value>, AdminError> {
        if let Some(name) = name {
            self.slot(name)?;
        }
        let state = self.state.lock().await;
        let mut out = Vec::new();
        for (plugin, slot) in &self.slots {
            if name.is_some_and(|n| n != plugin) {
                continue;
            }
            let active = slot.snapshot();
            let deployment = state.get(plugin);
            let candidate = match (deployment.and_then(|d| d.candidate.as_ref()), &active.candidate) {
                (Some(stored), Some(running)) => {
                    let mut value = serde_json::to_value(stored).unwrap_or_default();
                    if let Some(object) = value.as_object_mut() {
                        object.insert("stats".into(), running.stats.to_json());
                    }
                    value
                }
                _ => serde_json::Value::Null,
            };
            out.push(json!({
                "plugin": plugin,
                "world": slot.world().as_str(),
                "live": active.live.id().version,
                "previous": deployment.map(|d| d.previous.clone()).unwrap_or_default(),
                "candidate": candidate,
                "last_candidate": deployment.and_then(|d| d.last_candidate.clone()),
            }));
        }
        Ok(out)
    }

    /// Audit entries after `after`, at most `limit`.
    ///
    /// # Errors
    /// A registry failure.
    pub async fn audit_log(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, AdminError> {
        Ok(self.registry.audit(after, limit).await?)
    }
}

/// The deployment of `slot`'s plugin as stored, or, before any, its live version alone.
/// How `version` runs in `deployment`: "live", "the candidate", or not at all.
fn running_as(deployment: &Deployment, version: &str) -> Option<&'static str> {
    if deployment.live == version {
        Some("live")
    } else if deployment.candidate.as_ref().is_some_and(|c| c.version == version) {
        Some("the candidate")
    } else {
        None
    }
}

/// What a failing fixtures gate refuses.
#[derive(Debug, Clone, Copy)]
enum Gated {
    /// Attaching them (at upload).
    Attach,
    Activate,
    Canary,
    Shadow,
}

/// The files a version's fixtures came from, as the uploader named them.
fn fixtures_named(record: &VersionRecord) -> String {
    let files = record.fixtures.as_ref().and_then(|f| f.files.clone()).unwrap_or_default();
    let named: Vec<String> = [("input", files.input), ("expected", files.expected), ("lookup", files.lookup)]
        .into_iter()
        .filter_map(|(role, file)| Some(format!("{role} {}", file?)))
        .collect();
    if named.is_empty() { "uploaded without file names".to_owned() } else { named.join(", ") }
}

fn current(state: &BTreeMap<String, Deployment>, slot: &PluginSlot) -> Deployment {
    state.get(slot.name()).cloned().unwrap_or_else(|| Deployment {
        plugin: slot.name().to_owned(),
        live: slot.snapshot().live.id().version.clone(),
        previous: Vec::new(),
        candidate: None,
        last_candidate: None,
    })
}

/// How the candidate stored in `deployment` ended, with `running`'s counters (`None`:
/// counters of the reason only), or `None` when it has no candidate.
fn ended(
    deployment: &Deployment,
    running: Option<&ActiveCandidate>,
    outcome: &str,
    actor: &str,
    reason: Option<String>,
) -> Option<CandidateOutcome> {
    let stored = deployment.candidate.as_ref()?;
    let [inputs, failed, compared, differing] = running.map_or([0; 4], |c| c.stats.counts());
    Some(CandidateOutcome {
        version: stored.version.clone(),
        mode: stored.mode,
        outcome: outcome.to_owned(),
        at: now(),
        actor: actor.to_owned(),
        reason,
        inputs,
        failed,
        compared,
        differing,
    })
}

/// How the audit log names the outcome of an action that changes the live version.
fn live_target(name: &str, result: &Result<Deployment, AdminError>) -> String {
    match result {
        Ok(d) => format!("{name}@{}", d.live),
        Err(_) => name.to_owned(),
    }
}

fn nothing_to_roll_back(name: &str) -> AdminError {
    AdminError::new(409, "nothing_to_roll_back", format!("{name} has no previous version to roll back to"))
}

fn no_candidate(name: &str) -> AdminError {
    AdminError::new(409, "no_candidate", format!("{name} has no canary or shadow running; start one first"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_get_stable_codes() {
        assert_eq!(
            refusal_code("imports acme:net/raw-socket@1.0.0, which the host does not provide (plugins may …)"),
            "forbidden_import"
        );
        assert_eq!(
            refusal_code("was built against weir:plugin@0.9.0, but this host implements weir:plugin@0.3.0; rebuild"),
            "unsupported_wit_version"
        );
        assert_eq!(
            refusal_code("is a parser plugin (weir:plugin/parse), but a enricher is expected here"),
            "wrong_world"
        );
        assert_eq!(refusal_code("exports no weir:plugin interface: it exports nothing"), "wrong_world");
        assert_eq!(
            refusal_code("cannot be linked: component imports instance `weir:plugin/host@0.3.0`, but …"),
            "mistyped_import"
        );
        assert_eq!(refusal_code("its exports do not match world enricher: type mismatch"), "mistyped_export");
        assert_eq!(
            refusal_code("its memory limit (4096 MiB) is above the runtime's largest instance"),
            "limit_too_high"
        );
    }

    #[test]
    fn names_and_versions_are_checked() {
        assert!(valid_name("restaurant-enricher") && !valid_name("Restaurant") && !valid_name(""));
        assert!(valid_version("2.1.0-rc.1+build.5") && !valid_version("2 1") && !valid_version(""));
    }
}
