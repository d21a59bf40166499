//! Building a [`PipelineConfig`] from configuration text, checking every key as it goes.
//!
//! Sections are read in dependency order (server, log, plugins, reference, sinks, then
//! streams), so a stream's references are checked against the plugins and sinks as they
//! are read, with the spans of the referring values at hand.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};
use weir_runtime::{Limits, RuntimeConfig, World};

mod jobs;

use super::document::{KeyPath, Located, Report, ScalarText, Span, Table, Value, describe};
use super::{
    AdminConfig, AggregatorConfig, ByteSize, ConfigError, ConfigErrors, HumanDuration, KinesisLogSettings, LatePolicy,
    LogSettings, OutputKind, PipelineConfig, PluginConfig, Precedence, ReferenceConfig, ReferenceSource,
    RegistrySettings, Role, Routes, ServerConfig, SharedRegistrySettings, SinkConfig, SinkType, SinkTypes,
    StreamConfig, TokenConfig, base_dir_of,
};

/// How far checking goes beyond the text itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Checks {
    /// The text only: syntax, types, references between sections.
    Document,
    /// And every plugin file and reference file exists.
    Files,
    /// And every reference file holds a JSON object.
    Contents,
}

const TOP_KEYS: &[&str] = &["server", "log", "registry", "plugins", "reference", "sinks", "streams", "admin", "jobs"];
const REGISTRY_KEYS: &[&str] =
    &["type", "path", "table", "region", "endpoint", "path_style", "dynamodb_endpoint", "precedence"];
const ADMIN_KEYS: &[&str] = &["max_upload_bytes", "auto_rollback_error_percent", "auto_rollback_min_inputs", "tokens"];
const TOKEN_KEYS: &[&str] = &["role", "env"];
const SERVER_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "max_record_bytes",
    "max_request_bytes",
    "max_pending_records",
    "serving_cache_entries",
    "serving_cache_ttl",
    "require_token",
    "max_connections",
    "header_timeout",
    "body_timeout",
    "shutdown_timeout",
    "stages_yield_to_ingest",
];
const LOG_KEYS: &[&str] = &[
    "type",
    "shards",
    "retention",
    "retention_bytes",
    "region",
    "endpoint",
    "dynamodb_endpoint",
    "stream_prefix",
    "checkpoint_table",
    "content_type",
];
/// The `[log]` keys of the embedded log, and of Kinesis.
const EMBEDDED_LOG_KEYS: &[&str] = &["shards", "retention", "retention_bytes"];
const KINESIS_LOG_KEYS: &[&str] =
    &["region", "endpoint", "dynamodb_endpoint", "stream_prefix", "checkpoint_table", "content_type"];
const PLUGIN_KEYS: &[&str] = &["path", "version", "config", "limits"];
const LIMIT_KEYS: &[&str] = &[
    "cpu",
    "wall",
    "memory",
    "max_output_events",
    "max_output_bytes",
    "max_output_fields",
    "max_state",
    "max_log_bytes",
    "instances",
];
const REFERENCE_KEYS: &[&str] = &[
    "type",
    "file",
    "table",
    "key_attribute",
    "path",
    "region",
    "endpoint",
    "path_style",
    "ttl",
    "max_entries",
    "timeout",
    "reload",
];
const STREAM_KEYS: &[&str] = &[
    "name",
    "parser",
    "enrichers",
    "batch_size",
    "commit_size",
    "commit_interval",
    "max_fields",
    "aggregator",
    "routes",
];
const AGGREGATOR_KEYS: &[&str] = &["plugin", "window", "allowed_lateness", "late_events", "max_open_state"];
const ROUTE_KEYS: &[&str] = &["raw", "events", "aggregates", "dead_letters"];

/// The most shards per stream.
const MAX_SHARDS: u64 = 1024;
/// Records per plugin call, by default and at most.
const DEFAULT_BATCH_SIZE: usize = 512;
const MAX_COMMIT_SIZE: u64 = 1_000_000;
/// Records per commit by default: under a backlog a search index commit costs about
/// 25 ms of CPU whatever its size, so 4 096 (the default until 2026-12-04) spent a
/// quarter of the demo pipeline's CPU on commits (docs/streaming.md, BENCHMARKS.md).
const DEFAULT_COMMIT_SIZE: usize = 16_384;
/// The least time between two commits of a shard's stage by default, unless a full commit
/// is waiting: under a steady trickle each append would otherwise begin a commit of its
/// own and pay its fixed cost (a search index segment, a serving store fsync, a file per
/// warehouse table) for a handful of records (docs/streaming.md, BENCHMARKS.md).
const DEFAULT_COMMIT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);
/// The longest `commit_interval`: outputs wait at most this long for company.
const MAX_COMMIT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(900);
/// Distinct field names of a stream's events, by default and at most.
const DEFAULT_MAX_FIELDS: usize = 1000;
const MAX_MAX_FIELDS: u64 = 100_000;
const MAX_BATCH_SIZE: u64 = 100_000;
/// The longest name of a stream, plugin, sink or reference table.
const MAX_NAME_LEN: usize = 64;
/// Where the example plugins land, for the message about a missing plugin file.
const BUILD_HINT: &str = "build it with scripts/build-plugins.sh (the example plugins are written to \
                          target/wasm32-wasip2/plugin/), or correct the path (a relative path starts \
                          from the configuration file's directory)";

/// Reads the file at `path` and loads it.
pub(super) fn load_file(path: &Path, checks: Checks, sink_types: &SinkTypes) -> Result<PipelineConfig, ConfigErrors> {
    let origin = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => load(&text, &origin, &base_dir_of(path), checks, sink_types),
        Err(error) => Err(ConfigErrors::new(vec![ConfigError {
            origin,
            line: None,
            key: String::new(),
            message: format!("cannot read the configuration file: {error}"),
            span: None,
        }])),
    }
}

/// Parses `text` (named `origin` in messages), resolving relative paths against
/// `base_dir`, and checks it as far as `checks` says.
pub(super) fn load(
    text: &str,
    origin: &str,
    base_dir: &Path,
    checks: Checks,
    sink_types: &SinkTypes,
) -> Result<PipelineConfig, ConfigErrors> {
    let mut report = Report::new(text, origin);
    let (root, syntax_errors) = DeTable::parse_recoverable(text);
    // After a syntax error the parser resynchronises by guessing, and one mistake (an
    // unclosed bracket) often yields a dozen errors: the first is the one to fix.
    if let Some(first) = syntax_errors.first() {
        let mut message = format!("invalid TOML: {}", first.message());
        if let Some(span) = first.span() {
            // The parser's messages are terse ("duplicate key"): show where, and what.
            message.push_str(&format!(" (column {}", report.column(&span)));
            match text.get(span) {
                Some(snippet) if !snippet.is_empty() && !snippet.contains('\n') && snippet.chars().count() <= 40 => {
                    message.push_str(&format!(": {snippet:?})"));
                }
                _ => message.push(')'),
            }
        }
        report.error(&KeyPath::root(), first.span(), message);
        return report.finish(None);
    }
    let root = Spanned::new(root.span(), DeValue::Table(root.into_inner()));
    let mut loader = Loader {
        report,
        base_dir: base_dir.to_path_buf(),
        checks,
        plugin_names: Vec::new(),
        plugin_uses: BTreeMap::new(),
        sink_types: BTreeMap::new(),
        known_sink_types: sink_types,
    };
    let config = loader.pipeline(&root);
    loader.report.finish(config)
}

struct Loader<'t> {
    report: Report<'t>,
    base_dir: PathBuf,
    checks: Checks,
    /// Every key under `[plugins]`, in order, whether or not its table is right: a
    /// reference to a plugin with a bad entry is not also reported as unknown.
    plugin_names: Vec<String>,
    /// The first use of each plugin: the world it is used as, and where.
    plugin_uses: BTreeMap<String, (World, KeyPath, Span)>,
    /// Every sink with its type (`None`: missing or unknown, already reported).
    sink_types: BTreeMap<String, Option<SinkType>>,
    /// The sink types the file may use.
    known_sink_types: &'t SinkTypes,
}

impl Loader<'_> {
    fn pipeline(&mut self, root: &Value<'_>) -> Option<PipelineConfig> {
        let root = self.report.table(root, KeyPath::root(), Some(TOP_KEYS))?;
        let server = self.server(root.get("server"));
        let log = self.log(root.get("log"));
        let registry = self.registry(root.get("registry"));
        let plugins = self.plugins(root.get("plugins"));
        let reference = self.references(root.get("reference"));
        let sinks = self.sinks(root.get("sinks"), &server.data_dir);
        let streams = self.streams(root.get("streams"));
        let admin = self.admin(root.get("admin"));
        let jobs = self.jobs(root.get("jobs"), &streams, &reference);
        Some(PipelineConfig {
            base_dir: self.base_dir.clone(),
            server,
            log,
            registry,
            plugins,
            reference,
            sinks,
            streams,
            admin,
            jobs,
        })
    }

    fn registry(&mut self, value: Option<&Value<'_>>) -> RegistrySettings {
        let Some(table) = value.and_then(|value| self.report.table(value, root_key("registry"), Some(REGISTRY_KEYS)))
        else {
            return RegistrySettings::default();
        };
        let kind = self.report.get::<String>(&table, "type");
        let precedence = match self.report.get::<String>(&table, "precedence") {
            None => Precedence::Registry,
            Some(p) if p.value == "registry" => Precedence::Registry,
            Some(p) if p.value == "file" => Precedence::File,
            Some(p) => {
                let message = format!(
                    "unknown precedence {:?}; expected \"registry\" (the default: uploads and activations win over the \
                     file) or \"file\" (each start makes the configured file live, for deploying by configuration)",
                    p.value
                );
                self.report.error(&p.path, Some(p.span.clone()), message);
                Precedence::Registry
            }
        };
        let settings = match kind.as_ref().map(|k| k.value.as_str()) {
            None | Some("local") => {
                for (key, span, _) in table.entries() {
                    if key != "type" && key != "precedence" {
                        let message = "only with type = \"aws\" (the local registry is <data_dir>/registry)";
                        self.report.error(&table.path.key(key), Some(span), message);
                    }
                }
                RegistrySettings::default()
            }
            Some("aws") => {
                let mut shared = SharedRegistrySettings::default();
                if let Some(url) =
                    self.report.require::<String>(&table, "path", "an s3://bucket/prefix URL for the components")
                {
                    match crate::location::parse_s3_url(&url.value) {
                        Some(Ok(location)) => shared.components = location,
                        Some(Err(problem)) => self.report.error(&url.path, Some(url.span), problem),
                        None => {
                            let message = format!("{:?} is not an s3://bucket/prefix URL", url.value);
                            self.report.error(&url.path, Some(url.span), message);
                        }
                    }
                }
                self.s3_keys(&table, &mut shared.components);
                shared.region = shared.components.region.clone();
                shared.dynamodb_endpoint = self.endpoint(&table, "dynamodb_endpoint");
                if let Some(name) = self.report.get::<String>(&table, "table") {
                    shared.table = name.value;
                }
                RegistrySettings { shared: Some(shared), ..RegistrySettings::default() }
            }
            Some(other) => {
                let at = kind.as_ref().expect("a type");
                let message = format!("unknown registry type {other:?}; expected \"local\" (the default) or \"aws\"");
                self.report.error(&at.path, Some(at.span.clone()), message);
                RegistrySettings::default()
            }
        };
        RegistrySettings { precedence, ..settings }
    }

    fn server(&mut self, value: Option<&Value<'_>>) -> ServerConfig {
        let mut server = ServerConfig::default();
        if let Some(table) = value.and_then(|value| self.report.table(value, root_key("server"), Some(SERVER_KEYS))) {
            if let Some(listen) = self.report.get::<SocketAddr>(&table, "listen") {
                server.listen = listen.value;
            }
            if let Some(dir) = self.path(&table, "data_dir") {
                server.data_dir = dir.value;
            }
            let record = self.report.get::<ByteSize>(&table, "max_record_bytes").and_then(|size| self.positive(size));
            if let Some(record) = &record {
                server.max_record_bytes = record.value;
            }
            let request = self.report.get::<ByteSize>(&table, "max_request_bytes").and_then(|size| self.positive(size));
            if let Some(request) = &request {
                server.max_request_bytes = request.value;
            }
            if let Some(pending) = self.count(&table, "max_pending_records", 1, u64::MAX) {
                server.max_pending_records = pending;
            }
            if let Some(entries) = self.count(&table, "serving_cache_entries", 0, u64::MAX) {
                server.serving_cache_entries = entries;
            }
            if let Some(ttl) = self.report.get::<HumanDuration>(&table, "serving_cache_ttl") {
                server.serving_cache_ttl = ttl.value;
            }
            if let Some(required) = self.report.get::<bool>(&table, "require_token") {
                server.require_token = required.value;
            }
            if let Some(yields) = self.report.get::<bool>(&table, "stages_yield_to_ingest") {
                server.stages_yield_to_ingest = yields.value;
            }
            if let Some(connections) = self.count(&table, "max_connections", 1, 1 << 20) {
                server.max_connections = connections;
            }
            for (key, setting) in [
                ("header_timeout", &mut server.header_timeout),
                ("body_timeout", &mut server.body_timeout),
                ("shutdown_timeout", &mut server.shutdown_timeout),
            ] {
                if let Some(timeout) = self.report.get::<HumanDuration>(&table, key).and_then(|t| self.positive(t)) {
                    *setting = timeout.value;
                }
            }
            if server.max_request_bytes < server.max_record_bytes {
                // Blame the key that was written (both, or one of them, was).
                if let Some(at) = request.as_ref().or(record.as_ref()) {
                    let message = format!(
                        "max_request_bytes ({}) is smaller than max_record_bytes ({}); a request must be able \
                         to carry the largest record",
                        server.max_request_bytes, server.max_record_bytes
                    );
                    self.report.error(&at.path, Some(at.span.clone()), message);
                }
            }
        }
        server.data_dir = self.base_dir.join(&server.data_dir);
        server
    }

    fn admin(&mut self, value: Option<&Value<'_>>) -> AdminConfig {
        let mut admin = AdminConfig::default();
        let Some(table) = value.and_then(|value| self.report.table(value, root_key("admin"), Some(ADMIN_KEYS))) else {
            return admin;
        };
        if let Some(size) = self.report.get::<ByteSize>(&table, "max_upload_bytes").and_then(|size| self.positive(size))
        {
            admin.max_upload_bytes = size.value;
        }
        if let Some(percent) = self.count(&table, "auto_rollback_error_percent", 0, 100) {
            admin.auto_rollback_error_percent = percent;
        }
        if let Some(inputs) = self.count(&table, "auto_rollback_min_inputs", 1, u64::MAX) {
            admin.auto_rollback_min_inputs = inputs;
        }
        let Some(tokens) = table.get("tokens") else { return admin };
        let Some(tokens) = self.report.table(tokens, table.path.key("tokens"), None) else { return admin };
        for (name, key_span, value) in tokens.entries() {
            let path = tokens.path.key(name);
            self.check_name(&path, &key_span, name, "token");
            let Some(token) = self.report.table(value, path, Some(TOKEN_KEYS)) else { continue };
            let role =
                self.report.require::<String>(&token, "role", "admin, read or ingest").and_then(|role| {
                    match role.value.as_str() {
                        "admin" => Some(Role::Admin),
                        "read" => Some(Role::Read),
                        "ingest" => Some(Role::Ingest),
                        other => {
                            let message = format!("unknown role {other:?}; expected admin, read or ingest");
                            self.report.error(&role.path, Some(role.span), message);
                            None
                        }
                    }
                });
            let env = self.report.require::<String>(
                &token,
                "env",
                "the environment variable holding the token, e.g. \"WEIR_CI_TOKEN\" (tokens are not written in configuration files)",
            );
            if let (Some(role), Some(env)) = (role, env) {
                admin.tokens.push(TokenConfig { name: name.to_owned(), role, env: env.value });
            }
        }
        admin
    }

    fn log(&mut self, value: Option<&Value<'_>>) -> LogSettings {
        let mut log = LogSettings::default();
        let Some(table) = value.and_then(|value| self.report.table(value, root_key("log"), Some(LOG_KEYS))) else {
            return log;
        };
        if let Some(shards) = self.count(&table, "shards", 1, MAX_SHARDS).and_then(|n| u32::try_from(n).ok()) {
            log.shards = shards;
        }
        if let Some(retention) = self.report.get::<HumanDuration>(&table, "retention").and_then(|d| self.positive(d)) {
            log.retention = retention.value;
        }
        if let Some(bytes) = self.report.get::<ByteSize>(&table, "retention_bytes").and_then(|size| self.positive(size))
        {
            log.retention_bytes = bytes.value;
        }
        let kind = self.report.get::<String>(&table, "type");
        let kinesis = match kind.as_ref().map(|k| k.value.as_str()) {
            None | Some("embedded") => false,
            Some("kinesis") => true,
            Some(other) => {
                let at = kind.as_ref().expect("a type");
                let message = format!("unknown log type {other:?}; expected \"embedded\" (the default) or \"kinesis\"");
                self.report.error(&at.path, Some(at.span.clone()), message);
                false
            }
        };
        // Keys of the other kind of log are mistakes, not settings to ignore.
        let (foreign, why) = if kinesis {
            (EMBEDDED_LOG_KEYS, "a Kinesis stream has its own shards and retention: set them on the stream in AWS")
        } else {
            (KINESIS_LOG_KEYS, "only with type = \"kinesis\"")
        };
        for (key, span, _) in table.entries() {
            if foreign.contains(&key) {
                self.report.error(&table.path.key(key), Some(span), why);
            }
        }
        if kinesis {
            let mut settings = KinesisLogSettings {
                region: self.report.get::<String>(&table, "region").map(|region| region.value),
                endpoint: self.endpoint(&table, "endpoint"),
                dynamodb_endpoint: self.endpoint(&table, "dynamodb_endpoint"),
                ..KinesisLogSettings::default()
            };
            for (key, setting) in [
                ("stream_prefix", &mut settings.stream_prefix),
                ("checkpoint_table", &mut settings.checkpoint_table),
                ("content_type", &mut settings.content_type),
            ] {
                if let Some(value) = self.report.get::<String>(&table, key) {
                    *setting = value.value;
                }
            }
            log.kinesis = Some(settings);
        }
        log
    }

    fn plugins(&mut self, value: Option<&Value<'_>>) -> BTreeMap<String, PluginConfig> {
        let mut plugins = BTreeMap::new();
        let Some(section) = value.and_then(|value| self.report.table(value, root_key("plugins"), None)) else {
            return plugins;
        };
        for (name, key_span, value) in section.entries() {
            self.plugin_names.push(name.to_owned());
            let path = section.path.key(name);
            self.check_name(&path, &key_span, name, "plugin");
            let Some(table) = self.report.table(value, path, Some(PLUGIN_KEYS)) else { continue };
            let file = self.required_path(&table, "path", "the path of the plugin's component (.wasm) file");
            let version = match self.report.get::<String>(&table, "version") {
                Some(version) => {
                    self.check_version(&version);
                    version.value
                }
                None => "local".to_owned(),
            };
            let config = self.plugin_config(&table);
            let limits = self.limits(&table);
            let Some(file) = file else { continue };
            let resolved = self.base_dir.join(&file.value);
            if self.checks >= Checks::Files {
                self.check_plugin_file(&file, &resolved);
            }
            plugins.insert(
                name.to_owned(),
                PluginConfig { name: name.to_owned(), path: resolved, version, config, limits },
            );
        }
        plugins
    }

    fn check_version(&mut self, version: &Located<String>) {
        let valid = !version.value.is_empty()
            && version.value.len() <= MAX_NAME_LEN
            && version.value.bytes().all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
        if !valid {
            let message = format!(
                "{:?} is not a valid version; expected 1 to {MAX_NAME_LEN} letters, digits, '.', '-', '_' or '+', \
                 e.g. \"1.0.0\"",
                version.value
            );
            self.report.error(&version.path, Some(version.span.clone()), message);
        }
    }

    /// `config`: a table of scalars, each passed to the plugin as text.
    fn plugin_config(&mut self, plugin: &Table<'_, '_>) -> BTreeMap<String, String> {
        let mut config = BTreeMap::new();
        let Some(table) =
            plugin.get("config").and_then(|value| self.report.table(value, plugin.path.key("config"), None))
        else {
            return config;
        };
        for (key, _, value) in table.entries() {
            if let Some(ScalarText(text)) = self.report.convert(value, &table.path.key(key)) {
                config.insert(key.to_owned(), text);
            }
        }
        config
    }

    /// `limits`: each key optional, over [`Limits::default`].
    fn limits(&mut self, plugin: &Table<'_, '_>) -> Limits {
        let mut limits = Limits::default();
        let Some(table) = plugin
            .get("limits")
            .and_then(|value| self.report.table(value, plugin.path.key("limits"), Some(LIMIT_KEYS)))
        else {
            return limits;
        };
        if let Some(cpu) = self.report.get::<HumanDuration>(&table, "cpu").and_then(|d| self.positive(d)) {
            limits.cpu = cpu.value.0;
        }
        if let Some(wall) = self.report.get::<HumanDuration>(&table, "wall").and_then(|d| self.positive(d)) {
            limits.wall = wall.value.0;
        }
        if let Some(memory) = self.report.get::<ByteSize>(&table, "memory").and_then(|size| self.positive(size)) {
            // The runtime's pool slots are this large; a larger limit could never be used.
            let max = ByteSize(RuntimeConfig::default().max_memory_per_instance as u64);
            if memory.value > max {
                let message = format!("{} is more than the {max} of memory one plugin instance may have", memory.value);
                self.report.error(&memory.path, Some(memory.span), message);
            } else {
                limits.memory_bytes = memory.value.bytes_usize();
            }
        }
        if let Some(events) = self.count(&table, "max_output_events", 1, u64::MAX) {
            limits.max_output_events = usize::try_from(events).unwrap_or(usize::MAX);
        }
        if let Some(fields) = self.count(&table, "max_output_fields", 1, u64::MAX) {
            limits.max_output_fields = usize::try_from(fields).unwrap_or(usize::MAX);
        }
        if let Some(bytes) =
            self.report.get::<ByteSize>(&table, "max_output_bytes").and_then(|size| self.positive(size))
        {
            limits.max_output_bytes = bytes.value.bytes_usize();
        }
        if let Some(bytes) = self.report.get::<ByteSize>(&table, "max_state").and_then(|size| self.positive(size)) {
            limits.max_state_bytes = bytes.value.bytes_usize();
        }
        if let Some(bytes) = self.report.get::<ByteSize>(&table, "max_log_bytes") {
            limits.max_log_bytes_per_call = bytes.value.bytes_usize();
        }
        if let Some(instances) = self.count(&table, "instances", 1, 16) {
            limits.instances = usize::try_from(instances).unwrap_or(1);
        }
        limits
    }

    fn check_plugin_file(&mut self, file: &Located<String>, resolved: &Path) {
        let problem = match std::fs::metadata(resolved) {
            Ok(metadata) if metadata.is_file() => return,
            Ok(_) => format!("{} is a directory; expected a component (.wasm) file", resolved.display()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                format!("{} does not exist; {BUILD_HINT}", resolved.display())
            }
            Err(error) => format!("cannot read {}: {error}", resolved.display()),
        };
        self.report.error(&file.path, Some(file.span.clone()), problem);
    }

    fn references(&mut self, value: Option<&Value<'_>>) -> BTreeMap<String, ReferenceConfig> {
        let mut references = BTreeMap::new();
        let Some(section) = value.and_then(|value| self.report.table(value, root_key("reference"), None)) else {
            return references;
        };
        for (name, key_span, value) in section.entries() {
            let path = section.path.key(name);
            self.check_name(&path, &key_span, name, "reference table");
            let Some(table) = self.report.table(value, path, Some(REFERENCE_KEYS)) else { continue };
            let kind = self.report.get::<String>(&table, "type");
            let source = match kind.as_ref().map(|kind| kind.value.as_str()) {
                None | Some("file") => {
                    let expected = "the path of a JSON file holding an object of key → value";
                    let Some(file) = self.required_path(&table, "file", expected) else { continue };
                    let resolved = self.base_dir.join(&file.value);
                    if self.checks >= Checks::Files {
                        self.check_reference_file(&file, &resolved);
                    }
                    ReferenceSource::File(resolved)
                }
                Some("dynamodb") => {
                    let duration = |loader: &mut Self, key: &str, default: u64| {
                        loader
                            .report
                            .get::<HumanDuration>(&table, key)
                            .map_or(HumanDuration(std::time::Duration::from_millis(default)), |found| found.value)
                    };
                    ReferenceSource::DynamoDb(crate::DynamoReference {
                        table: self.report.get::<String>(&table, "table").map_or_else(|| name.to_owned(), |t| t.value),
                        key_attribute: self
                            .report
                            .get::<String>(&table, "key_attribute")
                            .map_or_else(|| "key".to_owned(), |k| k.value),
                        region: self.report.get::<String>(&table, "region").map(|r| r.value),
                        endpoint: self.endpoint(&table, "endpoint"),
                        ttl: duration(self, "ttl", 60_000),
                        max_entries: self.count(&table, "max_entries", 1, u64::MAX).unwrap_or(100_000),
                        timeout: duration(self, "timeout", 500),
                    })
                }
                Some("s3") => {
                    let expected = "an s3://bucket/key URL of a JSON object of key → value";
                    let Some(url) = self.report.require::<String>(&table, "path", expected) else { continue };
                    let mut location = match crate::location::parse_s3_url(&url.value) {
                        Some(Ok(location)) if !location.prefix.is_empty() => location,
                        Some(Err(problem)) => {
                            self.report.error(&url.path, Some(url.span), problem);
                            continue;
                        }
                        _ => {
                            self.report.error(&url.path, Some(url.span), format!("expected {expected}"));
                            continue;
                        }
                    };
                    self.s3_keys(&table, &mut location);
                    let reload = self
                        .report
                        .get::<HumanDuration>(&table, "reload")
                        .map_or(HumanDuration(std::time::Duration::from_secs(30)), |found| found.value);
                    ReferenceSource::S3 { location, reload }
                }
                Some(other) => {
                    let kind = kind.as_ref().expect("matched a type");
                    let message = format!("unknown reference type {other:?}; expected one of: file, dynamodb, s3");
                    self.report.error(&kind.path, Some(kind.span.clone()), message);
                    continue;
                }
            };
            references.insert(name.to_owned(), ReferenceConfig { name: name.to_owned(), source });
        }
        references
    }

    fn check_reference_file(&mut self, file: &Located<String>, resolved: &Path) {
        let shown = resolved.display();
        let problem = match std::fs::metadata(resolved) {
            Ok(metadata) if metadata.is_file() => {
                if self.checks < Checks::Contents {
                    return;
                }
                match std::fs::read(resolved).map(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes)) {
                    Ok(Ok(serde_json::Value::Object(_))) => return,
                    Ok(Ok(other)) => {
                        format!("{shown} holds a JSON {}; expected an object of key → value", json_kind(&other))
                    }
                    Ok(Err(error)) => format!("{shown} is not valid JSON: {error}"),
                    Err(error) => format!("cannot read {shown}: {error}"),
                }
            }
            Ok(_) => format!("{shown} is a directory; expected a JSON file holding an object of key → value"),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => format!(
                "{shown} does not exist; expected a JSON file holding an object of key → value (a relative path \
                 starts from the configuration file's directory)"
            ),
            Err(error) => format!("cannot read {shown}: {error}"),
        };
        self.report.error(&file.path, Some(file.span.clone()), problem);
    }

    /// `[sinks]`, or the default sinks when the file has none. Each sink's keys are read
    /// by the connector of its `type` (`weir-connectors`).
    fn sinks(&mut self, value: Option<&Value<'_>>, data_dir: &Path) -> BTreeMap<String, SinkConfig> {
        let Some(value) = value else {
            let sinks = self.known_sink_types.defaults(data_dir);
            self.sink_types = sinks.iter().map(|(name, sink)| (name.clone(), Some(sink.sink_type()))).collect();
            return sinks;
        };
        let mut sinks = BTreeMap::new();
        let mut claims = BTreeMap::new();
        let Some(section) = self.report.table(value, root_key("sinks"), None) else { return sinks };
        for (name, key_span, value) in section.entries() {
            self.sink_types.insert(name.to_owned(), None);
            let path = section.path.key(name);
            self.check_name(&path, &key_span, name, "sink");
            // The keys allowed depend on the type: read it first.
            let Some(table) = self.report.table(value, path, None) else { continue };
            let types = self.known_sink_types.all().map(SinkType::as_str).collect::<Vec<_>>().join(", ");
            let Some(type_name) = self.report.require::<String>(&table, "type", &format!("one of: {types}")) else {
                continue;
            };
            let Some(sink_type) = self.known_sink_types.named(&type_name.value) else {
                let message = format!("unknown sink type {:?}; expected one of: {types}", type_name.value);
                self.report.error(&type_name.path, Some(type_name.span), message);
                continue;
            };
            self.sink_types.insert(name.to_owned(), Some(sink_type));
            let kind = sink_type.kind();
            let allowed: Vec<&str> = std::iter::once("type").chain(kind.keys().iter().copied()).collect();
            self.report.unknown_keys(&table, &allowed);
            let mut sink_table = SinkTable {
                loader: self,
                table: &table,
                name,
                key_span: key_span.clone(),
                data_dir,
                claims: &mut claims,
            };
            sinks.insert(name.to_owned(), kind.read(&mut sink_table));
        }
        sinks
    }

    fn streams(&mut self, value: Option<&Value<'_>>) -> Vec<StreamConfig> {
        let path = root_key("streams");
        let none_defined = "no stream is defined; add a [[streams]] table with a name and a parser";
        let Some(value) = value else {
            self.report.error(&path, None, none_defined);
            return Vec::new();
        };
        let DeValue::Array(array) = value.get_ref() else {
            let message = format!(
                "expected an array of tables (one [[streams]] header per stream), found {}",
                describe(value.get_ref())
            );
            self.report.error(&path, Some(value.span()), message);
            return Vec::new();
        };
        if array.is_empty() {
            self.report.error(&path, Some(value.span()), none_defined);
        }
        let mut seen = BTreeMap::new();
        array
            .iter()
            .enumerate()
            .filter_map(|(index, element)| self.stream(element, path.index(index), &mut seen))
            .collect()
    }

    /// One `[[streams]]` table; `seen` holds the names already defined, with their line.
    fn stream(&mut self, value: &Value<'_>, path: KeyPath, seen: &mut BTreeMap<String, usize>) -> Option<StreamConfig> {
        let table = self.report.table(value, path, Some(STREAM_KEYS))?;
        let name = self.report.require::<String>(&table, "name", "the stream's name, e.g. \"orders\"");
        if let Some(name) = &name
            && self.check_name(&name.path, &name.span, &name.value, "stream")
        {
            let line = self.report.line(&name.span);
            match seen.get(&name.value) {
                Some(first) => {
                    let message = format!("stream {:?} is already defined at line {first}", name.value);
                    self.report.error(&name.path, Some(name.span.clone()), message);
                }
                None => {
                    seen.insert(name.value.clone(), line);
                }
            }
        }
        let parser = self.report.require::<String>(
            &table,
            "parser",
            "the name of the [plugins] entry that parses the stream's records",
        );
        if let Some(parser) = &parser {
            self.plugin_ref(parser, World::Parser);
        }
        let enrichers = self.report.list::<String>(&table, "enrichers").unwrap_or_default();
        for enricher in &enrichers {
            self.plugin_ref(enricher, World::Enricher);
        }
        let batch_size = self
            .count(&table, "batch_size", 1, MAX_BATCH_SIZE)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(DEFAULT_BATCH_SIZE);
        let commit_size = self
            .count(&table, "commit_size", 1, MAX_COMMIT_SIZE)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(DEFAULT_COMMIT_SIZE);
        let commit_interval = match self.report.get::<HumanDuration>(&table, "commit_interval") {
            Some(found) if found.value.0 > MAX_COMMIT_INTERVAL => {
                let most = HumanDuration(MAX_COMMIT_INTERVAL);
                self.report.error(
                    &found.path,
                    Some(found.span),
                    format!("expected at most {most}, found {}", found.value),
                );
                HumanDuration(DEFAULT_COMMIT_INTERVAL)
            }
            Some(found) => found.value,
            None => HumanDuration(DEFAULT_COMMIT_INTERVAL),
        };
        let max_fields = self
            .count(&table, "max_fields", 1, MAX_MAX_FIELDS)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(DEFAULT_MAX_FIELDS);
        let aggregator_value = table.get("aggregator");
        let aggregator = aggregator_value.and_then(|value| self.aggregator(value, table.path.key("aggregator")));
        // An aggregator with errors still counts: its routes are not reported as well.
        let routes = self.routes(&table, aggregator_value.is_some());
        Some(StreamConfig {
            name: name?.value,
            parser: parser?.value,
            enrichers: enrichers.into_iter().map(|enricher| enricher.value).collect(),
            batch_size,
            commit_size,
            commit_interval,
            max_fields,
            aggregator,
            routes,
        })
    }

    fn aggregator(&mut self, value: &Value<'_>, path: KeyPath) -> Option<AggregatorConfig> {
        let table = self.report.table(value, path, Some(AGGREGATOR_KEYS))?;
        let plugin = self.report.require::<String>(
            &table,
            "plugin",
            "the name of the [plugins] entry that aggregates the stream's events",
        );
        if let Some(plugin) = &plugin {
            self.plugin_ref(plugin, World::Aggregator);
        }
        let window = self
            .report
            .require::<HumanDuration>(&table, "window", "the length of each window, e.g. \"1m\"")
            .and_then(|window| self.positive(window));
        let allowed_lateness =
            self.report.get::<HumanDuration>(&table, "allowed_lateness").map_or(HumanDuration::ZERO, |d| d.value);
        let late_events = self.report.get::<LatePolicy>(&table, "late_events").map(|p| p.value).unwrap_or_default();
        let max_open_state = self
            .report
            .get::<ByteSize>(&table, "max_open_state")
            .and_then(|size| self.positive(size))
            .map_or(ByteSize::mib(64), |size| size.value);
        Some(AggregatorConfig {
            plugin: plugin?.value,
            window: window?.value,
            allowed_lateness,
            late_events,
            max_open_state,
        })
    }

    /// `[streams.routes]`: each output's sinks as written, or by default every sink that
    /// takes it.
    fn routes(&mut self, stream: &Table<'_, '_>, has_aggregator: bool) -> Routes {
        let table = stream
            .get("routes")
            .and_then(|value| self.report.table(value, stream.path.key("routes"), Some(ROUTE_KEYS)));
        let mut routes = Routes::default();
        for output in OutputKind::ALL {
            let written = table.as_ref().and_then(|table| Some((table, table.get(output.as_str())?)));
            let sinks = routes.get_mut(output);
            let Some((table, value)) = written else {
                if output != OutputKind::Aggregates || has_aggregator {
                    *sinks = self.sinks_taking(output);
                }
                // Dead letters are how a failure stays recoverable: losing them must be
                // asked for (`dead_letters = []`), never the quiet result of the sinks
                // defined.
                if output == OutputKind::DeadLetters
                    && sinks.is_empty()
                    && self.sink_types.values().all(Option::is_some)
                {
                    self.report.error(
                        &stream.path.key("routes").key(output.as_str()),
                        Some(stream.span.clone()),
                        "no sink takes dead letters, so records a plugin fails on would be lost; add a sink of type \
                         dead-letters, or write `dead_letters = []` in [streams.routes] to drop them on purpose",
                    );
                }
                continue;
            };
            let list = self.report.list::<String>(table, output.as_str()).unwrap_or_default();
            if output == OutputKind::Aggregates && !has_aggregator && !list.is_empty() {
                self.report.error(
                    &table.path.key(output.as_str()),
                    Some(value.span()),
                    "the stream has no aggregator, so it produces no aggregates; add a [streams.aggregator] table \
                     or remove this route",
                );
            }
            for sink in list {
                self.sink_ref(&sink, output);
                if sinks.contains(&sink.value) {
                    let message = format!("sink {:?} is listed twice", sink.value);
                    self.report.error(&sink.path, Some(sink.span), message);
                } else {
                    sinks.push(sink.value);
                }
            }
        }
        routes
    }

    /// The names of the sinks that take `output`, in name order.
    fn sinks_taking(&self, output: OutputKind) -> Vec<String> {
        self.sink_types
            .iter()
            .filter(|(_, sink_type)| sink_type.is_some_and(|sink_type| sink_type.accepts(output)))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Checks a reference to a sink from the `output` route.
    fn sink_ref(&mut self, sink: &Located<String>, output: OutputKind) {
        let message = match self.sink_types.get(&sink.value) {
            None if self.sink_types.is_empty() => {
                format!("unknown sink {:?}; no sinks are defined (the [sinks] section is empty)", sink.value)
            }
            None => {
                let names: Vec<&str> = self.sink_types.keys().map(String::as_str).collect();
                format!("unknown sink {:?}; defined sinks are: {}", sink.value, names.join(", "))
            }
            Some(Some(sink_type)) if !sink_type.accepts(output) => {
                let takers = self.sinks_taking(output);
                let alternatives = if takers.is_empty() {
                    let types: Vec<&str> =
                        self.known_sink_types.all().filter(|t| t.accepts(output)).map(SinkType::as_str).collect();
                    format!("no defined sink does; add a sink of type {}", types.join(" or "))
                } else {
                    format!("sinks that do: {}", takers.join(", "))
                };
                format!(
                    "sink {:?} is a {sink_type} sink, which does not take {}; {alternatives}",
                    sink.value,
                    output.describe()
                )
            }
            Some(_) => return,
        };
        self.report.error(&sink.path, Some(sink.span.clone()), message);
    }

    /// Checks a reference to a plugin used as `world`: that it is defined, and used in
    /// one role only (a component implements one world).
    fn plugin_ref(&mut self, plugin: &Located<String>, world: World) {
        let name = &plugin.value;
        if !self.plugin_names.contains(name) {
            let message = if self.plugin_names.is_empty() {
                format!(
                    "unknown plugin {name:?}; no plugins are defined (add a [plugins.{name}] table with the path \
                     of its component)"
                )
            } else {
                format!("unknown plugin {name:?}; defined plugins are: {}", self.plugin_names.join(", "))
            };
            self.report.error(&plugin.path, Some(plugin.span.clone()), message);
            return;
        }
        match self.plugin_uses.get(name) {
            None => {
                self.plugin_uses.insert(name.clone(), (world, plugin.path.clone(), plugin.span.clone()));
            }
            Some((first_world, first_path, first_span)) if *first_world != world => {
                let message = format!(
                    "plugin {name:?} is used as {} here but as {} at {first_path} (line {}); a component \
                     implements one world: define a separate [plugins] entry for each role",
                    with_article(world),
                    with_article(*first_world),
                    self.report.line(first_span),
                );
                self.report.error(&plugin.path, Some(plugin.span.clone()), message);
            }
            Some(_) => {}
        }
    }

    /// Reports `name` unless it is a valid name of a `what`; returns whether it is.
    fn check_name(&mut self, path: &KeyPath, span: &Span, name: &str, what: &str) -> bool {
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid {
            let message = format!(
                "{name:?} is not a valid {what} name; expected 1 to {MAX_NAME_LEN} characters among a-z, 0-9, '-' \
                 and '_'"
            );
            self.report.error(path, Some(span.clone()), message);
        }
        valid
    }

    /// A path at `key`, if present and not empty.
    /// The URL at `key`, if present: an `http://` or `https://` endpoint (anything else
    /// is reported at its line).
    fn endpoint(&mut self, table: &Table<'_, '_>, key: &str) -> Option<String> {
        let endpoint = self.report.get::<String>(table, key)?;
        if !(endpoint.value.starts_with("http://") || endpoint.value.starts_with("https://")) {
            let message = format!("{:?} is not an http:// or https:// URL", endpoint.value);
            self.report.error(&endpoint.path, Some(endpoint.span.clone()), message);
        }
        Some(endpoint.value)
    }

    /// An S3 location's `region`, `endpoint` and `path_style` from `table` (an S3 sink's
    /// or the shared registry's).
    fn s3_keys(&mut self, table: &Table<'_, '_>, location: &mut crate::S3Location) {
        location.region = self.report.get::<String>(table, "region").map(|region| region.value);
        location.endpoint = self.endpoint(table, "endpoint");
        location.path_style = self.report.get::<bool>(table, "path_style").is_some_and(|flag| flag.value);
    }

    fn path(&mut self, table: &Table<'_, '_>, key: &str) -> Option<Located<PathBuf>> {
        let path = self.report.get::<String>(table, key)?;
        self.non_empty_path(path)
    }

    /// Like [`path`](Self::path), and a missing key is reported.
    fn required_path(&mut self, table: &Table<'_, '_>, key: &str, expected: &str) -> Option<Located<String>> {
        let path = self.report.require::<String>(table, key, expected)?;
        self.non_empty_path(path.clone()).map(|_| path)
    }

    fn non_empty_path(&mut self, path: Located<String>) -> Option<Located<PathBuf>> {
        if path.value.is_empty() {
            self.report.error(&path.path, Some(path.span), "the path is empty; expected a file or directory");
            return None;
        }
        Some(Located { value: PathBuf::from(path.value), span: path.span, path: path.path })
    }

    /// A whole number at `key` between `min` and `max`, if present and in range.
    fn count(&mut self, table: &Table<'_, '_>, key: &str, min: u64, max: u64) -> Option<u64> {
        let number = self.report.get::<u64>(table, key)?;
        if (min..=max).contains(&number.value) {
            return Some(number.value);
        }
        let expected = if max == u64::MAX {
            format!("expected a whole number of at least {min}")
        } else {
            format!("expected a whole number from {min} to {max}")
        };
        self.report.error(&number.path, Some(number.span), format!("{expected}, found {}", number.value));
        None
    }

    /// `value` unless it is zero (then reported).
    fn positive<T>(&mut self, value: Located<T>) -> Option<Located<T>>
    where
        T: Default + PartialEq + std::fmt::Display,
    {
        if value.value != T::default() {
            return Some(value);
        }
        self.report.error(&value.path, Some(value.span), format!("expected more than zero, found {}", value.value));
        None
    }
}

fn root_key(key: &str) -> KeyPath {
    KeyPath::root().key(key)
}

/// `a parser`, `an enricher`, `an aggregator`.
fn with_article(world: World) -> String {
    let name = world.as_str();
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{article} {name}")
}

/// `array`, `string`…, for messages about a reference file.
fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// What a connector's [`read`](crate::SinkKind::read) sees of
/// `[sinks.NAME]`: typed accessors that report every problem at its line and key path,
/// as the rest of the file is checked.
pub struct SinkTable<'l, 't, 'a, 'i> {
    loader: &'l mut Loader<'t>,
    table: &'l Table<'a, 'i>,
    name: &'l str,
    key_span: Span,
    data_dir: &'l Path,
    /// Names that must be unique across sinks (a search index…): (what, name) → sink.
    claims: &'l mut BTreeMap<(&'static str, String), String>,
}

impl std::fmt::Debug for SinkTable<'_, '_, '_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkTable").field("sink", &self.name).field("path", &self.table.path).finish()
    }
}

impl SinkTable<'_, '_, '_, '_> {
    /// The directory at `key`, else `default`, resolved against `server.data_dir`.
    pub fn directory(&mut self, key: &str, default: &str) -> PathBuf {
        let path = self.loader.path(self.table, key).map_or_else(|| PathBuf::from(default), |path| path.value);
        self.data_dir.join(path)
    }

    /// Where an object-store sink writes: `path` (`key`) as an `s3://bucket/prefix` URL,
    /// with the table's `region`, `endpoint` and `path_style` ([`S3_KEYS`](crate::S3_KEYS)),
    /// or as a directory like [`directory`](Self::directory) (then those keys are
    /// reported: they would be ignored).
    pub fn location(&mut self, key: &str, default: &str) -> crate::StoreLocation {
        let s3 = match self.loader.report.get::<String>(self.table, key) {
            Some(url) => match crate::location::parse_s3_url(&url.value) {
                Some(Ok(location)) => Some(location),
                Some(Err(problem)) => {
                    self.loader.report.error(&url.path, Some(url.span), problem);
                    Some(crate::S3Location::default())
                }
                None => None,
            },
            None => None,
        };
        let Some(mut s3) = s3 else {
            for (entry, span, _) in self.table.entries() {
                if crate::S3_KEYS.contains(&entry) {
                    let message = format!(
                        "{entry} applies only to an s3:// {key}; remove it or write {key} = \"s3://bucket/prefix\""
                    );
                    self.loader.report.error(&self.table.path.key(entry), Some(span), message);
                }
            }
            return crate::StoreLocation::Directory(self.directory(key, default));
        };
        self.loader.s3_keys(self.table, &mut s3);
        crate::StoreLocation::S3(s3)
    }

    /// The URL at `key`, if present: an `http://` or `https://` endpoint (anything else
    /// is reported).
    pub fn endpoint(&mut self, key: &str) -> Option<String> {
        self.loader.endpoint(self.table, key)
    }

    /// The text at `key`, if present (a value of another type is reported).
    pub fn string(&mut self, key: &str) -> Option<String> {
        self.loader.report.get::<String>(self.table, key).map(|text| text.value)
    }

    /// Reports `message` about `key` of this sink's table (at the key when present, else
    /// at the table).
    pub fn problem(&mut self, key: &str, message: impl Into<String>) {
        let span = self.table.entries().find(|(entry, _, _)| *entry == key).map(|(_, span, _)| span);
        let path = if span.is_some() { self.table.path.key(key) } else { self.table.path.clone() };
        let span = span.or_else(|| Some(self.key_span.clone()));
        self.loader.report.error(&path, span, message);
    }

    /// The size at `key` (`"64MiB"`, `"512KiB"` or a number of bytes), else `default`
    /// (a value that is not one is reported).
    pub fn byte_size(&mut self, key: &str, default: crate::ByteSize) -> crate::ByteSize {
        self.loader.report.get::<crate::ByteSize>(self.table, key).map_or(default, |value| value.value)
    }

    /// The duration at `key` (`"60s"`, `"5m"`), else `default` (a value that is not one
    /// is reported).
    pub fn duration(&mut self, key: &str, default: crate::HumanDuration) -> crate::HumanDuration {
        self.loader.report.get::<crate::HumanDuration>(self.table, key).map_or(default, |value| value.value)
    }

    /// The boolean at `key`, else `default` (a value of another type is reported).
    pub fn boolean(&mut self, key: &str, default: bool) -> bool {
        self.loader.report.get::<bool>(self.table, key).map_or(default, |value| value.value)
    }

    /// The text at `key`, one of `choices` (another is reported, listing them); else the
    /// first choice, the default.
    pub fn choice(&mut self, key: &str, choices: &[&'static str]) -> &'static str {
        let default = choices.first().copied().unwrap_or_default();
        let Some(text) = self.loader.report.get::<String>(self.table, key) else { return default };
        match choices.iter().find(|&&choice| choice == text.value) {
            Some(choice) => choice,
            None => {
                let message = format!("{:?} is not one of {}", text.value, choices.join(", "));
                self.loader.report.error(&text.path, Some(text.span), message);
                default
            }
        }
    }

    /// The name at `key`, checked like every name (`what` names it in the message); by
    /// default the sink's own name.
    pub fn name_or_sink_name(&mut self, key: &str, what: &str) -> String {
        match self.loader.report.get::<String>(self.table, key) {
            Some(name) => {
                self.loader.check_name(&name.path, &name.span, &name.value, what);
                name.value
            }
            None => self.name.to_owned(),
        }
    }

    /// The list of field names at `key`: each a name a query can use (letters, digits and
    /// `_`), none in `reserved`, none repeated, none also in `taken`.
    pub fn field_names(&mut self, key: &str, reserved: &[&str], taken: &[String]) -> Vec<String> {
        let mut fields: Vec<String> = Vec::new();
        for field in self.loader.report.list::<String>(self.table, key).unwrap_or_default() {
            let name = &field.value;
            let problem = if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                Some(format!("{name:?} cannot be a search field; use letters, digits and '_'"))
            } else if reserved.contains(&name.as_str()) {
                Some(format!(
                    "{name:?} is a field every index has ({}); rename the event field in a plugin",
                    reserved.join(", ")
                ))
            } else if fields.contains(name) || taken.contains(name) {
                Some(format!("{name:?} is listed twice; a field is either text or numeric"))
            } else {
                None
            };
            match problem {
                Some(message) => self.loader.report.error(&field.path, Some(field.span), message),
                None => fields.push(field.value),
            }
        }
        fields
    }

    /// Claims `value` as a `what` (a search index, a table…) only this sink writes;
    /// reports it when another sink claimed it first, with `advice`.
    pub fn claim(&mut self, what: &'static str, value: &str, advice: &str) {
        match self.claims.get(&(what, value.to_owned())) {
            Some(other) => {
                let message = format!("{what} {value:?} is already written by sink {other}; {advice}");
                self.loader.report.error(&self.table.path, Some(self.key_span.clone()), message);
            }
            None => {
                self.claims.insert((what, value.to_owned()), self.name.to_owned());
            }
        }
    }
}
