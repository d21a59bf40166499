//! The pipeline configuration: one TOML file describing the server, the stream log, the
//! plugins, reference data, sinks and streams.
//!
//! [`PipelineConfig::from_file`] reads and checks a file and returns typed settings with
//! every default filled in and every relative path resolved, or [`ConfigErrors`] listing
//! **every** problem of the file at once, each with its line and key path:
//!
//! ```text
//! orders.toml:23: streams[0].enrichers[1]: unknown plugin "restaurant-enrichr"; defined plugins are: orders-parser, restaurant-enricher, restaurant-stats
//! orders.toml:31: streams[0].aggregator.window: "1 minute" is not a duration; expected e.g. "30s", "5m", "1h"
//! ```
//!
//! The keys, their defaults and the checks are described in `docs/configuration.md`.
//! What needs the plugin components themselves (that each is a component of the world it
//! is used as) is checked when the pipeline loads them, not here. Sink types are not
//! known here: a configuration is loaded with the [`SinkTypes`] the connectors register
//! (`weir_connectors::sink_types()`).
//!
//! # Examples
//!
//! ```
//! use weir_config::PipelineConfig;
//!
//! let config = PipelineConfig::parse(
//!     r#"
//!     [plugins.orders-parser]
//!     path = "orders_parser.wasm"
//!
//!     [[streams]]
//!     name = "orders"
//!     parser = "orders-parser"
//!     "#,
//!     "orders.toml",
//!     weir_connectors::sink_types(),
//! )
//! .unwrap();
//! let stream = config.stream("orders").unwrap();
//! assert_eq!(stream.batch_size, 512);
//! assert_eq!(stream.routes.events, ["lake"]); // the default sinks
//! assert_eq!(config.sinks["lake"].sink_type().as_str(), "lake");
//! ```

mod document;
mod error;
mod job;
mod load;
mod location;
mod sink_kind;
mod units;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use weir_runtime::{Limits, PluginId, World};

pub use self::job::{JobConfig, JobLevel, JobTable, LevelCompute, Schedule, TableFormat, civil_from_days};
pub use self::load::SinkTable;
pub use self::location::{S3_KEYS, S3Location, StoreLocation};
pub use self::sink_kind::{DynEq, SinkConfig, SinkKind, SinkSettings, SinkType, SinkTypes};

pub use self::error::{ConfigError, ConfigErrors};
pub use self::units::{ByteSize, HumanDuration, ParseUnitError};

/// Everything the pipeline runs: typed, defaulted, with relative paths resolved.
///
/// Relative paths resolve as follows: `server.data_dir`, plugin `path`s and reference
/// `file`s against the directory of the configuration file ([`base_dir`](Self::base_dir));
/// sink `path`s against `server.data_dir`. The fields hold the resolved paths.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineConfig {
    /// The directory of the configuration file (`.` for a file given without one).
    pub base_dir: PathBuf,
    /// `[server]`: the HTTP endpoint, the data directory, ingest limits.
    pub server: ServerConfig,
    /// `[log]`: how the embedded stream log shards and trims streams.
    pub log: LogSettings,
    /// `[registry]`: where uploaded versions and deployments are kept.
    pub registry: RegistrySettings,
    /// `[plugins.NAME]`: the components, by name.
    pub plugins: BTreeMap<String, PluginConfig>,
    /// `[reference.NAME]`: reference tables for plugins' lookups, by name.
    pub reference: BTreeMap<String, ReferenceConfig>,
    /// `[sinks.NAME]`: where outputs are written, by name. When the file has no `[sinks]`
    /// at all, the [`SinkTypes::defaults`].
    pub sinks: BTreeMap<String, SinkConfig>,
    /// `[[streams]]`: the streams, in the order of the file. At least one.
    pub streams: Vec<StreamConfig>,
    /// `[admin]`: the admin API (plugin registry, deployments): tokens and limits.
    pub admin: AdminConfig,
    /// `[[jobs]]`: the batch layer's jobs, in the order of the file. By default none.
    pub jobs: Vec<JobConfig>,
}

impl PipelineConfig {
    /// Reads and checks the configuration file at `path`: everything
    /// [`parse`](Self::parse) checks, and that every plugin file and reference file
    /// exists.
    ///
    /// # Errors
    ///
    /// Every problem found: the file cannot be read, a syntax error (only the first: after
    /// it the parser's position is a guess), or any number of wrong, unknown, missing or
    /// inconsistent keys and missing files.
    pub fn from_file(path: impl AsRef<Path>, sink_types: &SinkTypes) -> Result<Self, ConfigErrors> {
        load::load_file(path.as_ref(), load::Checks::Files, sink_types)
    }

    /// Parses and checks configuration `text` without touching the filesystem. `origin`
    /// names the file in messages, and its directory is the [`base_dir`](Self::base_dir)
    /// relative paths resolve against (`"orders.toml"`: the current directory).
    ///
    /// # Errors
    ///
    /// As [`from_file`](Self::from_file), less the checks of files.
    pub fn parse(text: &str, origin: &str, sink_types: &SinkTypes) -> Result<Self, ConfigErrors> {
        load::load(text, origin, &base_dir_of(Path::new(origin)), load::Checks::Document, sink_types)
    }

    /// The stream named `name`.
    pub fn stream(&self, name: &str) -> Option<&StreamConfig> {
        self.streams.iter().find(|stream| stream.name == name)
    }

    /// The world the streams use plugin `name` as (`None`: no stream uses it). Loading the
    /// plugin with this expected world refuses a component of another kind. A plugin is
    /// used in one role only: the configuration is refused otherwise.
    pub fn plugin_world(&self, name: &str) -> Option<World> {
        self.streams
            .iter()
            .flat_map(StreamConfig::plugins)
            .chain(self.jobs.iter().flat_map(JobConfig::plugins))
            .find(|(plugin, _)| *plugin == name)
            .map(|(_, world)| world)
    }

    /// The job named `name`.
    pub fn job(&self, name: &str) -> Option<&JobConfig> {
        self.jobs.iter().find(|job| job.name == name)
    }
}

/// Reads and checks the configuration file at `path` as thoroughly as can be done without
/// running it: everything [`PipelineConfig::from_file`] checks, and that every reference
/// file holds a JSON object. What `weir validate --config FILE` runs.
///
/// # Errors
///
/// Every problem found, as [`PipelineConfig::from_file`], plus unreadable or malformed
/// reference files.
pub fn validate_file(path: impl AsRef<Path>, sink_types: &SinkTypes) -> Result<PipelineConfig, ConfigErrors> {
    load::load_file(path.as_ref(), load::Checks::Contents, sink_types)
}

/// The directory relative paths of the file at `path` resolve against.
fn base_dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `[server]`: the HTTP endpoint, where data lives, and what ingest accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// `listen`: the address of the ingest and admin HTTP server. By default
    /// `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// `data_dir`: where the stream log, checkpoints and local sinks live. By default
    /// `.weir`, relative to the configuration file's directory.
    pub data_dir: PathBuf,
    /// `max_record_bytes`: the largest record ingest accepts (payload bytes). By default
    /// 1 MiB, as Kinesis.
    pub max_record_bytes: ByteSize,
    /// `max_request_bytes`: the largest ingest request body. By default 5 MiB, as a
    /// Kinesis `PutRecords` call. At least `max_record_bytes`.
    pub max_request_bytes: ByteSize,
    /// `max_pending_records`: backpressure. When a stream holds more records that its
    /// consumers have not processed, ingest refuses new ones with a retryable error until
    /// they catch up. By default 100 000.
    pub max_pending_records: u64,
    /// `serving_cache_entries`: most entries of the cache in front of the serving store
    /// (present and absent keys). By default 100 000.
    pub serving_cache_entries: u64,
    /// `serving_cache_ttl`: how long a cached serving lookup is answered before it is read
    /// again; also the `max-age` of serving responses. By default 5s.
    pub serving_cache_ttl: HumanDuration,
    /// `require_token`: the ingest route and the read API take a bearer token too
    /// (`Authorization: Bearer …`): ingest needs a token with the `ingest` or `admin` role,
    /// reads one with the `read` or `admin` role. By default false (open, for a host
    /// that listens on loopback or behind an authenticating proxy; `weir serve` warns
    /// when it listens elsewhere without tokens). Tokens as for `[admin]`.
    pub require_token: bool,
    /// `max_connections`: HTTP connections served at once; more wait in the kernel's
    /// backlog until one closes. By default 1024.
    pub max_connections: u64,
    /// `header_timeout`: how long a connection may take to send a request's headers
    /// (counted from its first byte, or from the end of its previous response for a
    /// kept-alive connection) before it is closed, so stalled or slow clients cannot hold
    /// connections. By default 10s.
    pub header_timeout: HumanDuration,
    /// `body_timeout`: how long reading a request body (ingest, upload) may take before
    /// the request is answered 408. By default 60s.
    pub body_timeout: HumanDuration,
    /// `shutdown_timeout`: after SIGTERM (or Ctrl-C), how long the host waits for its
    /// stages to finish the commit in hand before it exits anyway; what was not committed
    /// is read again at the next start. By default 10s.
    pub shutdown_timeout: HumanDuration,
    /// `stages_yield_to_ingest`: the stages run on threads of lower CPU priority than
    /// ingest and the API, so a stage that cannot keep up shows as lag, not as slower
    /// acknowledgements (docs/streaming.md). By default true; false runs them on the
    /// host's threads at its priority.
    pub stages_yield_to_ingest: bool,
}

impl Default for ServerConfig {
    /// The defaults, with `data_dir` not yet resolved (`.weir`).
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            data_dir: PathBuf::from(".weir"),
            max_record_bytes: ByteSize::mib(1),
            max_request_bytes: ByteSize::mib(5),
            max_pending_records: 100_000,
            serving_cache_entries: 100_000,
            serving_cache_ttl: HumanDuration(std::time::Duration::from_secs(5)),
            require_token: false,
            max_connections: 1024,
            header_timeout: HumanDuration(std::time::Duration::from_secs(10)),
            body_timeout: HumanDuration(std::time::Duration::from_secs(60)),
            shutdown_timeout: HumanDuration(std::time::Duration::from_secs(10)),
            stages_yield_to_ingest: true,
        }
    }
}

/// `[admin]`: who may use the admin API, and its limits.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminConfig {
    /// `max_upload_bytes`: the largest component an upload may carry. By default 64 MiB.
    pub max_upload_bytes: ByteSize,
    /// `auto_rollback_error_percent`: a canary or shadow version is rolled back
    /// automatically when more than this percentage of its inputs fail. By default 5.
    pub auto_rollback_error_percent: u64,
    /// `auto_rollback_min_inputs`: inputs a candidate must have seen before its error
    /// rate is judged. By default 50.
    pub auto_rollback_min_inputs: u64,
    /// `[admin.tokens.NAME]`: bearer tokens by name. Without any, the tokens come from
    /// the environment: `WEIR_ADMIN_TOKEN` (admin role) and `WEIR_READ_TOKEN` (read role).
    pub tokens: Vec<TokenConfig>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            max_upload_bytes: ByteSize::mib(64),
            auto_rollback_error_percent: 5,
            auto_rollback_min_inputs: 50,
            tokens: Vec::new(),
        }
    }
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `read`: list and get plugins, deployments and the audit log; with
    /// `server.require_token`, the read API (serving, search, aggregates).
    Read,
    /// `ingest`: with `server.require_token`, send records to streams; nothing else.
    Ingest,
    /// `admin`: everything, uploads and deployments included.
    Admin,
}

impl Role {
    /// `read`, `ingest` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Ingest => "ingest",
            Role::Admin => "admin",
        }
    }

    /// Whether a token with this role may do what `needed` allows.
    pub fn allows(self, needed: Role) -> bool {
        self == Role::Admin || self == needed
    }
}

/// `[admin.tokens.NAME]`: one bearer token. The name is recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenConfig {
    /// The token's name (its key).
    pub name: String,
    /// `role`: `admin` or `read`. Required.
    pub role: Role,
    /// `env`: the environment variable holding the token (read when the host starts).
    /// Required: tokens are not written in configuration files.
    pub env: String,
}

/// `[registry]`: where uploaded plugin versions, deployments and the audit log are kept.
/// By default (`type = "local"`) in `<data_dir>/registry`, for this host alone; with
/// `type = "aws"` ([`SharedRegistrySettings`]) shared by every host of a fleet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegistrySettings {
    /// `type = "aws"`: the registry shared through S3 and DynamoDB; `None` for the local one.
    pub shared: Option<SharedRegistrySettings>,
    /// `precedence`: what runs when the registry's live version of a plugin is not the
    /// configured file. By default [`Precedence::Registry`].
    pub precedence: Precedence,
}

/// Whether the registry or the configuration file decides a plugin's live version at
/// start (`[registry] precedence`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precedence {
    /// `registry`: once a plugin has a deployment, uploads and activations win; a start
    /// whose configured file differs warns with the commands that put the file live.
    #[default]
    Registry,
    /// `file`: each start makes the configured file live (registered under its version and
    /// activated, the earlier live version kept for rollback), as teams that deploy by
    /// configuration (GitOps) expect.
    File,
}

/// `[registry]` with `type = "aws"`: components in S3 under `path`
/// (`s3://bucket/prefix`, with `region`, `endpoint`, `path_style` as for an S3 sink),
/// versions, deployments and the audit log in the DynamoDB table `table`. Hosts watch the
/// deployments, so an activation on one host reaches every host within seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedRegistrySettings {
    /// `path`: where the components are stored, by their SHA-256.
    pub components: S3Location,
    /// `table`: the DynamoDB table (created when missing). By default `weir-registry`.
    pub table: String,
    /// `region`: by default the standard chain's.
    pub region: Option<String>,
    /// `dynamodb_endpoint`: DynamoDB's endpoint URL; by default AWS's for the region.
    pub dynamodb_endpoint: Option<String>,
}

impl Default for SharedRegistrySettings {
    fn default() -> Self {
        Self { components: S3Location::default(), table: "weir-registry".into(), region: None, dynamodb_endpoint: None }
    }
}

/// `[log]`: the stream log. By default the embedded log (the local stand-in for Kinesis),
/// with how it shards and trims every stream (the fields of `weir_log::LogConfig`);
/// with `type = "kinesis"`, Kinesis ([`KinesisLogSettings`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// `type = "kinesis"`: the streams are Kinesis streams; `None` for the embedded log.
    pub kinesis: Option<KinesisLogSettings>,
    /// `shards`: shards per stream, 1 to 1024. Records with the same partition key land on
    /// the same shard and keep their order there. The count is written into the log when
    /// it is created and cannot change afterwards. By default 4.
    pub shards: u32,
    /// `retention`: records older than this are removed. By default 24 hours.
    pub retention: HumanDuration,
    /// `retention_bytes`: most bytes kept per stream (all shards together); the oldest
    /// records beyond it are removed. By default 1 GiB.
    pub retention_bytes: ByteSize,
}

/// `[log]` with `type = "kinesis"`: each weir stream is the Kinesis stream
/// `<stream_prefix><name>`, and each consumer's checkpoints are items in a DynamoDB
/// table. Credentials come from the standard AWS chain (environment, profile, web
/// identity, ECS, instance metadata), never from this file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KinesisLogSettings {
    /// `region`: by default the standard chain's (`AWS_REGION`, the profile).
    pub region: Option<String>,
    /// `endpoint`: Kinesis' endpoint URL, for local servers or VPC endpoints; by default
    /// AWS's for the region.
    pub endpoint: Option<String>,
    /// `dynamodb_endpoint`: DynamoDB's endpoint URL; by default AWS's for the region.
    pub dynamodb_endpoint: Option<String>,
    /// `stream_prefix`: prepended to a weir stream's name to name its Kinesis stream. By
    /// default none.
    pub stream_prefix: String,
    /// `checkpoint_table`: the DynamoDB table of checkpoints, created when missing. By
    /// default `weir-checkpoints`.
    pub checkpoint_table: String,
    /// `content_type`: the content type records read from Kinesis get (Kinesis keeps
    /// none). By default `application/octet-stream`.
    pub content_type: String,
}

impl Default for KinesisLogSettings {
    fn default() -> Self {
        Self {
            region: None,
            endpoint: None,
            dynamodb_endpoint: None,
            stream_prefix: String::new(),
            checkpoint_table: "weir-checkpoints".into(),
            content_type: "application/octet-stream".into(),
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            kinesis: None,
            shards: 4,
            retention: HumanDuration(Duration::from_secs(24 * 60 * 60)),
            retention_bytes: ByteSize::gib(1),
        }
    }
}

/// `[plugins.NAME]`: one component and how to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    /// The plugin's name (its key under `[plugins]`).
    pub name: String,
    /// `path`: the component file, resolved against the configuration file's directory.
    /// Required.
    pub path: PathBuf,
    /// `version`: shown with the name in errors, logs and dead letters
    /// (`orders-parser@1.0.0`). By default `local`.
    pub version: String,
    /// `config`: passed to the plugin's `configure`. Values are strings; numbers,
    /// booleans and datetimes in the file are turned into their text. By default empty.
    pub config: BTreeMap<String, String>,
    /// `limits`: bounds on every call, each key defaulting to [`Limits::default`].
    pub limits: Limits,
}

impl PluginConfig {
    /// The plugin's `name@version`.
    pub fn id(&self) -> PluginId {
        PluginId::new(&self.name, &self.version)
    }

    /// The configuration as the runtime's `PluginOptions::config` takes it, in key order.
    pub fn config_pairs(&self) -> Vec<(String, String)> {
        self.config.iter().map(|(key, value)| (key.clone(), value.clone())).collect()
    }
}

/// `[reference.NAME]`: a reference table plugins look up by name: a local JSON file (the
/// default), a DynamoDB table or an S3 object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceConfig {
    /// The table's name (its key under `[reference]`), as plugins pass it to `lookup`.
    pub name: String,
    /// Where its rows are.
    pub source: ReferenceSource,
}

/// Where a reference table's rows are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceSource {
    /// `file`: a JSON object, key → value, resolved against the configuration file's
    /// directory; read at start.
    File(PathBuf),
    /// `type = "dynamodb"`: one item per key, read through a cache.
    DynamoDb(DynamoReference),
    /// `type = "s3"`: a JSON object (key → value) in S3, reloaded when it changes.
    S3 {
        /// `path = "s3://bucket/key.json"`, with `region`, `endpoint`, `path_style`.
        location: S3Location,
        /// `reload`: how often the object's ETag is checked. By default 30s.
        reload: HumanDuration,
    },
}

/// A reference table in DynamoDB (`[reference.NAME] type = "dynamodb"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoReference {
    /// `table`: the DynamoDB table. By default the reference table's name.
    pub table: String,
    /// `key_attribute`: its partition key, a string. By default `key`.
    pub key_attribute: String,
    /// `region`; by default the standard chain's.
    pub region: Option<String>,
    /// `endpoint`; by default AWS's.
    pub endpoint: Option<String>,
    /// `ttl`: how long a row (or its absence) is answered from the cache. By default 60s.
    pub ttl: HumanDuration,
    /// `max_entries`: most rows cached. By default 100 000.
    pub max_entries: u64,
    /// `timeout`: how long a lookup waits for DynamoDB before it fails. By default 500ms.
    pub timeout: HumanDuration,
}

/// What a stream produces, each routed to its own sinks (`[streams.routes]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutputKind {
    /// `raw`: the records as ingested (the raw archive).
    Raw,
    /// `events`: the events after parsing and enrichment.
    Events,
    /// `aggregates`: the results of the stream's aggregator, one per group and window.
    Aggregates,
    /// `dead_letters`: records a plugin failed on, and late events under
    /// [`LatePolicy::DeadLetter`].
    DeadLetters,
}

impl OutputKind {
    /// Every output, in pipeline order.
    pub const ALL: [OutputKind; 4] =
        [OutputKind::Raw, OutputKind::Events, OutputKind::Aggregates, OutputKind::DeadLetters];

    /// The output's key in `[streams.routes]`: `raw`, `events`, `aggregates`,
    /// `dead_letters`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputKind::Raw => "raw",
            OutputKind::Events => "events",
            OutputKind::Aggregates => "aggregates",
            OutputKind::DeadLetters => "dead_letters",
        }
    }

    /// The output in prose, for messages: `raw records`, `dead letters`.
    pub fn describe(self) -> &'static str {
        match self {
            OutputKind::Raw => "raw records",
            OutputKind::Events => "events",
            OutputKind::Aggregates => "aggregates",
            OutputKind::DeadLetters => "dead letters",
        }
    }
}

impl fmt::Display for OutputKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[[streams]]`: one named stream and the plugins its records go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    /// `name`: 1 to 64 characters among `a-z`, `0-9`, `-` and `_`; unique. Required.
    pub name: String,
    /// `parser`: the plugin (a `parser` component) that turns records into events.
    /// Required.
    pub parser: String,
    /// `enrichers`: the plugins (`enricher` components) each event goes through, in order.
    /// By default none.
    pub enrichers: Vec<String>,
    /// `batch_size`: records per plugin call, 1 to 100 000. By default 512.
    pub batch_size: usize,
    /// `commit_size`: records per commit, 1 to 1 000 000; by default 16 384. A stage reads
    /// up to this many records at once (when that many are waiting), runs them through
    /// the plugins in calls of `batch_size`, hands each sink one batch of the outputs and
    /// checkpoints once: sinks that commit per batch (search index, serving store,
    /// warehouse) pay their commit once per `commit_size` records instead of once per
    /// call.
    pub commit_size: usize,
    /// `commit_interval`: the least time from one commit's start to the next one's, 0 to
    /// 15 minutes; by default 500 ms. A stage that finds less than a full commit waiting
    /// (`commit_size` records, or half a shard's share of `max_pending_records` when that
    /// is less, or a read the log says more records follow) less than this after its last
    /// commit began waits out the rest and takes everything that came meanwhile, so a
    /// steady trickle is committed a few times a second instead of once per append (each
    /// commit costs the sinks about the same for 10 records as for 10 000). An append
    /// after a quiet spell is committed at once, and so is a wait cut short by ingest
    /// refusing records for backpressure; `"0s"` commits every append as soon as the
    /// stage is free.
    pub commit_interval: HumanDuration,
    /// `max_fields`: distinct field names the stream's events (and, apart, its aggregates)
    /// may have, 1 to 100 000; by default 1 000. The lake and the warehouse keep a column
    /// per name: an event that would bring the stream past it is dead-lettered, naming
    /// the field, instead of growing every file by a column.
    pub max_fields: usize,
    /// `[streams.aggregator]`: the windowed aggregation of the stream's events, if any.
    pub aggregator: Option<AggregatorConfig>,
    /// `[streams.routes]`: which sinks get each output.
    pub routes: Routes,
}

impl StreamConfig {
    /// The plugins the stream runs, in order, with the world each is used as.
    pub fn plugins(&self) -> impl Iterator<Item = (&str, World)> {
        std::iter::once((self.parser.as_str(), World::Parser))
            .chain(self.enrichers.iter().map(|name| (name.as_str(), World::Enricher)))
            .chain(self.aggregator.iter().map(|aggregator| (aggregator.plugin.as_str(), World::Aggregator)))
    }
}

/// `[streams.aggregator]`: tumbling event-time windows over the stream's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregatorConfig {
    /// `plugin`: the plugin (an `aggregator` component). Required.
    pub plugin: String,
    /// `window`: the length of each tumbling window, aligned to the Unix epoch. Required,
    /// more than zero.
    pub window: HumanDuration,
    /// `allowed_lateness`: how long after a window's end (in event time) events for it are
    /// still accepted; the window's aggregates are emitted when it passes. By default 0s.
    pub allowed_lateness: HumanDuration,
    /// `late_events`: what happens to an event whose window was already emitted. By
    /// default [`LatePolicy::DeadLetter`].
    pub late_events: LatePolicy,
    /// `max_open_state`: the bytes of open groups' states one shard's stage may hold
    /// (they are kept between calls and checkpointed with every commit). Past it, an
    /// event that would open a new group is dead-lettered with the reason; events of open
    /// groups still count. By default 64 MiB.
    pub max_open_state: ByteSize,
}

/// What to do with an event that arrives after its window was emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LatePolicy {
    /// `dead-letter`: send it to the stream's dead-letter route, with the reason. The
    /// default.
    #[default]
    DeadLetter,
    /// `drop`: drop it (it is counted).
    Drop,
}

impl LatePolicy {
    /// Every policy.
    pub const ALL: [LatePolicy; 2] = [LatePolicy::DeadLetter, LatePolicy::Drop];

    /// The policy as written in the configuration: `dead-letter`, `drop`.
    pub fn as_str(self) -> &'static str {
        match self {
            LatePolicy::DeadLetter => "dead-letter",
            LatePolicy::Drop => "drop",
        }
    }
}

impl fmt::Display for LatePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[streams.routes]`: the sinks each output of a stream is written to, by sink name.
///
/// A key left out defaults to every sink that takes that output (see
/// [`SinkType::accepts`]), in name order; `aggregates` defaults to none when the stream
/// has no aggregator. An empty list sends the output nowhere.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Routes {
    /// `raw`: sinks for the records as ingested.
    pub raw: Vec<String>,
    /// `events`: sinks for the parsed and enriched events.
    pub events: Vec<String>,
    /// `aggregates`: sinks for the aggregator's results.
    pub aggregates: Vec<String>,
    /// `dead_letters`: sinks for records that failed and late events.
    pub dead_letters: Vec<String>,
}

impl Routes {
    /// The sinks of `output`.
    pub fn get(&self, output: OutputKind) -> &[String] {
        match output {
            OutputKind::Raw => &self.raw,
            OutputKind::Events => &self.events,
            OutputKind::Aggregates => &self.aggregates,
            OutputKind::DeadLetters => &self.dead_letters,
        }
    }

    fn get_mut(&mut self, output: OutputKind) -> &mut Vec<String> {
        match output {
            OutputKind::Raw => &mut self.raw,
            OutputKind::Events => &mut self.events,
            OutputKind::Aggregates => &mut self.aggregates,
            OutputKind::DeadLetters => &mut self.dead_letters,
        }
    }
}
