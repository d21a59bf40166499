//! The pipeline configuration: typed settings from TOML, defaults, and every problem of a
//! file reported at once with its line and key path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;
use weir_config::validate_file;
use weir_config::{
    AdminConfig, AggregatorConfig, ByteSize, ConfigErrors, HumanDuration, KinesisLogSettings, LatePolicy, LogSettings,
    OutputKind, PipelineConfig, PluginConfig, ReferenceConfig, Role, Routes, S3Location, ServerConfig, SinkConfig,
    SinkType, StoreLocation, StreamConfig, TokenConfig,
};
use weir_connectors::{
    DeadLetterSettings, LakeSettings, SearchSettings, ServingSettings, WarehouseSettings, sink_types,
};
use weir_runtime::{Limits, World};

const FULL: &str = include_str!("fixtures/full.toml");

/// The smallest useful configuration: one plugin, one stream.
const MINIMAL: &str = r#"
[plugins.orders-parser]
path = "orders_parser.wasm"

[[streams]]
name = "orders"
parser = "orders-parser"
"#;

/// Writes `config` as `dir/pipeline.toml`, and empty files at `files` (relative to `dir`).
fn write_config(dir: &Path, config: &str, files: &[(&str, &str)]) -> PathBuf {
    for (file, contents) in files {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// The files `fixtures/full.toml` refers to.
const FULL_FILES: &[(&str, &str)] = &[
    ("plugins/orders_parser.wasm", ""),
    ("plugins/restaurant_enricher.wasm", ""),
    ("plugins/restaurant_stats.wasm", ""),
    ("plugins/clicks_parser.wasm", ""),
    ("data/restaurants.json", r#"{"r-1": {"name": "Pho 99", "zone": "north"}}"#),
];

/// Parses `text` as `orders.toml`, expecting problems; returns them one per line.
fn problems(text: &str) -> Vec<String> {
    let errors =
        PipelineConfig::parse(text, "orders.toml", sink_types()).expect_err("the configuration should be refused");
    errors.to_string().lines().map(str::to_owned).collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

fn plugin(dir: &Path, name: &str, file: &str) -> PluginConfig {
    PluginConfig {
        name: name.to_owned(),
        path: dir.join(file),
        version: "local".to_owned(),
        config: BTreeMap::new(),
        limits: Limits::default(),
    }
}

#[test]
fn a_full_configuration_parses_into_typed_settings() {
    let dir = TempDir::new().unwrap();
    let path = write_config(dir.path(), FULL, FULL_FILES);
    let config = validate_file(&path, sink_types()).unwrap_or_else(|errors| panic!("{errors}"));

    let dir = dir.path();
    let data_dir = dir.join("state");
    let orders_parser = PluginConfig {
        version: "1.0.0".to_owned(),
        config: BTreeMap::from([
            ("default_content_type".to_owned(), "auto".to_owned()),
            ("max_fields".to_owned(), "40".to_owned()),
            ("ratio".to_owned(), "0.5".to_owned()),
            ("strict".to_owned(), "true".to_owned()),
        ]),
        limits: Limits {
            cpu: Duration::from_millis(500),
            wall: Duration::from_secs(2),
            memory_bytes: 64 << 20,
            max_output_events: 10_000,
            max_output_bytes: 8 << 20,
            max_output_fields: 200,
            max_state_bytes: 16 << 10,
            max_log_bytes_per_call: 16 << 10,
            instances: 2,
        },
        ..plugin(dir, "orders-parser", "plugins/orders_parser.wasm")
    };
    let restaurant_enricher = PluginConfig {
        version: "2.1.0".to_owned(),
        config: BTreeMap::from([
            ("drop_test_orders".to_owned(), "false".to_owned()),
            ("table".to_owned(), "restaurants".to_owned()),
        ]),
        limits: Limits { cpu: Duration::from_secs(90 * 60), ..Limits::default() },
        ..plugin(dir, "restaurant-enricher", "plugins/restaurant_enricher.wasm")
    };
    let clicks_parser = PluginConfig {
        version: "0.3.0-beta.1".to_owned(),
        ..plugin(dir, "clicks-parser", "plugins/clicks_parser.wasm")
    };
    let expected = PipelineConfig {
        base_dir: dir.to_path_buf(),
        server: ServerConfig {
            listen: "0.0.0.0:9090".parse().unwrap(),
            data_dir: data_dir.clone(),
            max_record_bytes: ByteSize::kib(512),
            max_request_bytes: ByteSize::mib(4),
            max_pending_records: 5000,
            serving_cache_entries: 100_000,
            serving_cache_ttl: HumanDuration(Duration::from_secs(5)),
            require_token: true,
            max_connections: 256,
            header_timeout: HumanDuration(Duration::from_secs(5)),
            body_timeout: HumanDuration(Duration::from_secs(120)),
            shutdown_timeout: HumanDuration(Duration::from_secs(30)),
            stages_yield_to_ingest: false,
        },
        registry: weir_config::RegistrySettings::default(),
        log: LogSettings {
            kinesis: None,
            shards: 8,
            retention: HumanDuration(Duration::from_secs(7 * 24 * 3600)),
            retention_bytes: ByteSize::gib(2),
        },
        plugins: BTreeMap::from([
            ("clicks-parser".to_owned(), clicks_parser),
            ("orders-parser".to_owned(), orders_parser),
            ("restaurant-enricher".to_owned(), restaurant_enricher),
            ("restaurant-stats".to_owned(), plugin(dir, "restaurant-stats", "plugins/restaurant_stats.wasm")),
        ]),
        reference: BTreeMap::from([(
            "restaurants".to_owned(),
            ReferenceConfig {
                name: "restaurants".to_owned(),
                source: weir_config::ReferenceSource::File(dir.join("data/restaurants.json")),
            },
        )]),
        sinks: BTreeMap::from([
            (
                "archive".to_owned(),
                SinkConfig::new(LakeSettings::at(StoreLocation::Directory(PathBuf::from("/srv/archive")))),
            ),
            (
                "dead-letters".to_owned(),
                SinkConfig::new(DeadLetterSettings { path: StoreLocation::Directory(data_dir.join("lake")) }),
            ),
            ("lake".to_owned(), SinkConfig::new(LakeSettings::at(StoreLocation::Directory(data_dir.join("lake"))))),
        ]),
        streams: vec![
            StreamConfig {
                name: "orders".to_owned(),
                parser: "orders-parser".to_owned(),
                enrichers: strings(&["restaurant-enricher"]),
                batch_size: 256,
                commit_size: 1024,
                commit_interval: HumanDuration(Duration::from_secs(1)),
                max_fields: 1000,
                aggregator: Some(AggregatorConfig {
                    plugin: "restaurant-stats".to_owned(),
                    window: HumanDuration(Duration::from_secs(60)),
                    allowed_lateness: HumanDuration(Duration::from_secs(30)),
                    late_events: LatePolicy::Drop,
                    max_open_state: ByteSize::mib(64),
                }),
                routes: Routes {
                    raw: strings(&["archive"]),
                    events: strings(&["lake", "archive"]),
                    aggregates: strings(&["lake"]),
                    dead_letters: strings(&["dead-letters"]),
                },
            },
            StreamConfig {
                name: "clicks".to_owned(),
                parser: "clicks-parser".to_owned(),
                enrichers: Vec::new(),
                batch_size: 512,
                commit_size: 16_384,
                commit_interval: HumanDuration(Duration::from_millis(500)),
                max_fields: 1000,
                aggregator: None,
                routes: Routes {
                    raw: Vec::new(),
                    events: strings(&["archive", "lake"]),
                    aggregates: Vec::new(),
                    dead_letters: strings(&["dead-letters"]),
                },
            },
        ],
        admin: AdminConfig::default(),
        jobs: Vec::new(),
    };
    assert_eq!(config, expected);

    assert_eq!(config.plugins["orders-parser"].id().to_string(), "orders-parser@1.0.0");
    assert_eq!(config.server.max_request_bytes.to_string(), "4MiB");
    assert_eq!(config.log.retention.to_string(), "7d");
}

#[test]
fn defaults_fill_everything_that_is_left_out() {
    let config =
        PipelineConfig::parse(MINIMAL, "orders.toml", sink_types()).unwrap_or_else(|errors| panic!("{errors}"));
    let base = PathBuf::from(".");
    let data_dir = base.join(".weir");

    assert_eq!(config.base_dir, base);
    assert_eq!(config.server, ServerConfig { data_dir: data_dir.clone(), ..ServerConfig::default() });
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.server.max_record_bytes, ByteSize::mib(1));
    assert_eq!(config.server.max_request_bytes, ByteSize::mib(5));
    assert_eq!(config.server.max_pending_records, 100_000);
    assert_eq!(
        config.log,
        LogSettings {
            kinesis: None,
            shards: 4,
            retention: HumanDuration(Duration::from_secs(24 * 3600)),
            retention_bytes: ByteSize::gib(1)
        }
    );
    assert_eq!(config.plugins["orders-parser"], plugin(&base, "orders-parser", "orders_parser.wasm"));
    assert!(config.reference.is_empty());
    // Without [sinks], a lake and a dead-letter sink in <data_dir>/lake.
    assert_eq!(config.sinks, sink_types().defaults(&data_dir));
    assert_eq!(
        config.sinks["lake"],
        SinkConfig::new(LakeSettings::at(StoreLocation::Directory(data_dir.join("lake"))))
    );
    assert_eq!(
        config.sinks["dead-letters"],
        SinkConfig::new(DeadLetterSettings { path: StoreLocation::Directory(data_dir.join("lake")) })
    );
    assert_eq!(
        config.streams,
        [StreamConfig {
            name: "orders".to_owned(),
            parser: "orders-parser".to_owned(),
            enrichers: Vec::new(),
            batch_size: 512,
            commit_size: 16_384,
            commit_interval: HumanDuration(Duration::from_millis(500)),
            max_fields: 1000,
            aggregator: None,
            routes: Routes {
                raw: strings(&["lake"]),
                events: strings(&["lake"]),
                aggregates: Vec::new(),
                dead_letters: strings(&["dead-letters"]),
            },
        }]
    );
}

#[test]
fn an_aggregator_defaults_to_no_lateness_and_dead_letters_its_late_events() {
    let text = format!(
        "{MINIMAL}\n[streams.aggregator]\nplugin = \"stats\"\nwindow = \"5m\"\n\n\
         [plugins.stats]\npath = \"stats.wasm\"\n"
    );
    let config = PipelineConfig::parse(&text, "orders.toml", sink_types()).unwrap_or_else(|errors| panic!("{errors}"));
    let stream = config.stream("orders").unwrap();
    assert_eq!(
        stream.aggregator,
        Some(AggregatorConfig {
            plugin: "stats".to_owned(),
            window: HumanDuration(Duration::from_secs(300)),
            allowed_lateness: HumanDuration::ZERO,
            late_events: LatePolicy::DeadLetter,
            max_open_state: ByteSize::mib(64),
        })
    );
    // With an aggregator, aggregates go to every sink that takes them by default.
    assert_eq!(stream.routes.get(OutputKind::Aggregates), ["lake"]);
}

#[test]
fn every_error_is_reported_at_once_with_its_key_path_and_line() {
    let text = r#"[server]
listen = "localhost:8080"
max_record_bytes = "1 meg"

[plugins.orders-parser]
path = "orders_parser.wasm"
limits = { cpu = 0, memory = "2GiB" }

[plugins.restaurant-enricher]
path = "restaurant_enricher.wasm"

[plugins.restaurant-stats]
path = "restaurant_stats.wasm"

[sinks.lake]
type = "lake"

[sinks.dead-letters]
type = "dead-letters"

[[streams]]
name = "orders"
parser = "orders-parser"
enrichers = ["restaurant-enricher", "restaurant-enrichr"]
batch_size = 0

[streams.aggregator]
plugin = "restaurant-stats"
window = "1 minute"

[streams.routes]
raw = ["dead-letters"]

[[streams]]
name = "orders"
parser = "restaurant-enricher"
"#;
    assert_eq!(
        problems(text),
        [
            r#"orders.toml:2: server.listen: "localhost:8080" is not an IP address and port; expected e.g. "127.0.0.1:8080""#,
            r#"orders.toml:3: server.max_record_bytes: "1 meg" is not a size; expected e.g. "64KiB", "1MiB", "5MiB" or a number of bytes"#,
            r#"orders.toml:7: plugins.orders-parser.limits.cpu: 0 has no unit; expected a duration such as "500ms", "30s", "5m" or "1h""#,
            r#"orders.toml:7: plugins.orders-parser.limits.memory: 2GiB is more than the 1GiB of memory one plugin instance may have"#,
            r#"orders.toml:24: streams[0].enrichers[1]: unknown plugin "restaurant-enrichr"; defined plugins are: orders-parser, restaurant-enricher, restaurant-stats"#,
            r#"orders.toml:25: streams[0].batch_size: expected a whole number from 1 to 100000, found 0"#,
            r#"orders.toml:29: streams[0].aggregator.window: "1 minute" is not a duration; expected e.g. "30s", "5m", "1h""#,
            r#"orders.toml:32: streams[0].routes.raw[0]: sink "dead-letters" is a dead-letters sink, which does not take raw records; sinks that do: lake"#,
            r#"orders.toml:35: streams[1].name: stream "orders" is already defined at line 22"#,
            r#"orders.toml:36: streams[1].parser: plugin "restaurant-enricher" is used as a parser here but as an enricher at streams[0].enrichers[0] (line 24); a component implements one world: define a separate [plugins] entry for each role"#,
        ]
    );

    // The structured form carries the same facts.
    let errors = PipelineConfig::parse(text, "orders.toml", sink_types()).unwrap_err();
    let window = errors.iter().find(|error| error.key == "streams[0].aggregator.window").unwrap();
    assert_eq!(window.origin, "orders.toml");
    assert_eq!(window.line, Some(29));
    assert_eq!(&text[window.span.clone().unwrap()], "\"1 minute\"");
}

#[test]
fn an_unknown_key_names_the_allowed_keys() {
    let text = format!(
        "[stream]\nname = \"x\"\n{MINIMAL}\n[streams.aggregator]\nplugin = \"orders-parser\"\nwindw = \"1m\"\n"
    );
    assert_eq!(
        problems(&text),
        [
            r#"orders.toml:1: stream: unknown key "stream"; allowed keys are: server, log, registry, plugins, reference, sinks, streams, admin, jobs"#,
            r#"orders.toml:11: streams[0].aggregator.window: missing; expected the length of each window, e.g. "1m""#,
            r#"orders.toml:12: streams[0].aggregator.plugin: plugin "orders-parser" is used as an aggregator here but as a parser at streams[0].parser (line 9); a component implements one world: define a separate [plugins] entry for each role"#,
            r#"orders.toml:13: streams[0].aggregator.windw: unknown key "windw"; allowed keys are: plugin, window, allowed_lateness, late_events, max_open_state"#,
        ]
    );

    // Inline tables and sinks (whose keys depend on their type) are checked the same way.
    let text = format!(
        "{MINIMAL}\n[plugins.orders-parser.limits]\ncpus = \"1s\"\n\n[sinks.dead-letters]\ntype = \"dead-letters\"\nroot = \"x\"\n"
    );
    assert_eq!(
        problems(&text),
        [
            r#"orders.toml:10: plugins.orders-parser.limits.cpus: unknown key "cpus"; allowed keys are: cpu, wall, memory, max_output_events, max_output_bytes, max_output_fields, max_state, max_log_bytes, instances"#,
            r#"orders.toml:14: sinks.dead-letters.root: unknown key "root"; allowed keys are: type, path, region, endpoint, path_style"#,
        ]
    );
}

#[test]
fn a_syntax_error_reports_its_line() {
    let text = "[server]\nlisten = \"127.0.0.1:8080\"\n\n[log]\nshards = [1, 2\nretention = \"1h\"\n";
    let errors = PipelineConfig::parse(text, "orders.toml", sink_types()).unwrap_err();
    // One mistake, one message: the parser's guesses after it are not reported.
    assert_eq!(errors.len(), 1, "{errors}");
    let error = &errors.errors()[0];
    assert_eq!(error.line, Some(6), "{errors}");
    assert_eq!(error.key, "");
    assert!(errors.to_string().starts_with("orders.toml:6: invalid TOML: "), "{errors}");

    let errors = PipelineConfig::parse("[server]\nlisten = 127.0.0.1:8080\n", "orders.toml", sink_types()).unwrap_err();
    assert!(errors.to_string().starts_with("orders.toml:2: invalid TOML: "), "{errors}");

    let duplicated = format!("{MINIMAL}\n[plugins.orders-parser]\npath = \"other.wasm\"\n");
    let errors = PipelineConfig::parse(&duplicated, "orders.toml", sink_types()).unwrap_err();
    assert_eq!(errors.to_string(), r#"orders.toml:9: invalid TOML: duplicate key (column 10: "orders-parser")"#);
}

#[test]
fn a_missing_plugin_file_says_how_to_build_it() {
    let dir = TempDir::new().unwrap();
    let text = "[plugins.orders-parser]\npath = \"target/wasm32-wasip2/plugin/orders_parser.wasm\"\n\n\
                [[streams]]\nname = \"orders\"\nparser = \"orders-parser\"\n";
    let path = write_config(dir.path(), text, &[]);

    let errors = PipelineConfig::from_file(&path, sink_types()).unwrap_err();
    let missing = dir.path().join("target/wasm32-wasip2/plugin/orders_parser.wasm");
    assert_eq!(
        errors.to_string(),
        format!(
            "{}:2: plugins.orders-parser.path: {} does not exist; build it with scripts/build-plugins.sh (the example \
             plugins are written to target/wasm32-wasip2/plugin/), or correct the path (a relative path starts from \
             the configuration file's directory)",
            path.display(),
            missing.display()
        )
    );

    // Once built, the same file loads; parse alone never looks at the filesystem.
    write_config(dir.path(), text, &[("target/wasm32-wasip2/plugin/orders_parser.wasm", "")]);
    let config = PipelineConfig::from_file(&path, sink_types()).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(config.plugins["orders-parser"].path, missing);
    assert!(PipelineConfig::parse(text, "elsewhere/orders.toml", sink_types()).is_ok());
}

#[test]
fn relative_paths_resolve_against_the_config_directory_and_sinks_against_the_data_dir() {
    let text = format!(
        "{MINIMAL}\n[server]\ndata_dir = \"/var/lib/weir\"\n\n[reference.restaurants]\nfile = \"data/r.json\"\n\n\
         [sinks.lake]\ntype = \"lake\"\n\n[sinks.failures]\ntype = \"dead-letters\"\npath = \"failed\"\n"
    );
    let config = PipelineConfig::parse(&text, "conf/pipeline/orders.toml", sink_types()).unwrap();
    assert_eq!(config.base_dir, Path::new("conf/pipeline"));
    assert_eq!(config.plugins["orders-parser"].path, Path::new("conf/pipeline/orders_parser.wasm"));
    assert_eq!(
        config.reference["restaurants"].source,
        weir_config::ReferenceSource::File(Path::new("conf/pipeline/data/r.json").into())
    );
    assert_eq!(config.server.data_dir, Path::new("/var/lib/weir"));
    // A sink's path defaults to `lake`, under the data directory.
    assert_eq!(
        config.sinks["lake"],
        SinkConfig::new(LakeSettings::at(StoreLocation::Directory(PathBuf::from("/var/lib/weir/lake"))))
    );
    assert_eq!(
        config.sinks["failures"],
        SinkConfig::new(DeadLetterSettings { path: StoreLocation::Directory(PathBuf::from("/var/lib/weir/failed")) })
    );
    // With [sinks] written, only those sinks exist.
    assert_eq!(config.sinks.len(), 2);
    assert_eq!(config.streams[0].routes.dead_letters, ["failures"]);
}

#[test]
fn dead_letters_are_dropped_only_when_asked_for() {
    let lake_only = format!("{MINIMAL}\n[sinks.lake]\ntype = \"lake\"\n");
    assert_eq!(
        problems(&lake_only),
        ["orders.toml:5: streams[0].routes.dead_letters: no sink takes dead letters, so records a plugin fails on \
             would be lost; add a sink of type dead-letters, or write `dead_letters = []` in [streams.routes] to drop \
             them on purpose",]
    );
    let on_purpose = format!("{lake_only}\n[streams.routes]\ndead_letters = []\n");
    let config =
        PipelineConfig::parse(&on_purpose, "orders.toml", sink_types()).unwrap_or_else(|errors| panic!("{errors}"));
    assert!(config.streams[0].routes.dead_letters.is_empty());
}

#[test]
fn routes_must_name_defined_sinks_of_the_right_type() {
    let text = format!(
        "{MINIMAL}\n[streams.routes]\nevents = [\"lake\", \"lake\", \"lak\"]\ndead_letters = [\"lake\"]\n\
         aggregates = [\"lake\"]\n"
    );
    assert_eq!(
        problems(&text),
        [
            r#"orders.toml:10: streams[0].routes.events[1]: sink "lake" is listed twice"#,
            r#"orders.toml:10: streams[0].routes.events[2]: unknown sink "lak"; defined sinks are: dead-letters, lake"#,
            r#"orders.toml:11: streams[0].routes.dead_letters[0]: sink "lake" is a lake sink, which does not take dead letters; sinks that do: dead-letters"#,
            r#"orders.toml:12: streams[0].routes.aggregates: the stream has no aggregator, so it produces no aggregates; add a [streams.aggregator] table or remove this route"#,
        ]
    );

    let text = format!(
        "{MINIMAL}\n[sinks.lake]\ntype = \"lake\"\n[sinks.s3]\ntype = \"s4\"\n[streams.routes]\ndead_letters = [\"lake\"]\n"
    );
    assert_eq!(
        problems(&text),
        [
            r#"orders.toml:12: sinks.s3.type: unknown sink type "s4"; expected one of: lake, dead-letters, serving, search, warehouse, firehose, dynamodb, redshift, elasticsearch"#,
            r#"orders.toml:14: streams[0].routes.dead_letters[0]: sink "lake" is a lake sink, which does not take dead letters; no defined sink does; add a sink of type dead-letters"#,
        ]
    );
}

#[test]
fn names_values_and_sections_are_checked() {
    let text = r#"
[log]
shards = 0
retention = "0s"
retention_bytes = -1

[server]
max_record_bytes = "4MiB"
max_request_bytes = "1MiB"
max_pending_records = "many"

[plugins."Orders Parser"]
path = ""
version = "1.0 beta"
config = { nested = { a = 1 } }

[reference.restaurants]

[[streams]]
name = "Orders!"
parser = "Orders Parser"
enrichers = "restaurant-enricher"
commit_size = 2000000
commit_interval = "1h"
[streams.aggregator]
plugin = "nope"
window = "0s"
late_events = "ignore"
"#;
    assert_eq!(
        problems(text),
        [
            r#"orders.toml:3: log.shards: expected a whole number from 1 to 1024, found 0"#,
            r#"orders.toml:4: log.retention: expected more than zero, found 0s"#,
            r#"orders.toml:5: log.retention_bytes: a size cannot be negative; expected a size such as "64KiB" or "1MiB", or a number of bytes"#,
            r#"orders.toml:9: server.max_request_bytes: max_request_bytes (1MiB) is smaller than max_record_bytes (4MiB); a request must be able to carry the largest record"#,
            r#"orders.toml:10: server.max_pending_records: expected a whole number, found the string "many""#,
            r#"orders.toml:12: plugins."Orders Parser": "Orders Parser" is not a valid plugin name; expected 1 to 64 characters among a-z, 0-9, '-' and '_'"#,
            r#"orders.toml:13: plugins."Orders Parser".path: the path is empty; expected a file or directory"#,
            r#"orders.toml:14: plugins."Orders Parser".version: "1.0 beta" is not a valid version; expected 1 to 64 letters, digits, '.', '-', '_' or '+', e.g. "1.0.0""#,
            r#"orders.toml:15: plugins."Orders Parser".config.nested: expected a string, number or boolean, found a table"#,
            r#"orders.toml:17: reference.restaurants.file: missing; expected the path of a JSON file holding an object of key → value"#,
            r#"orders.toml:20: streams[0].name: "Orders!" is not a valid stream name; expected 1 to 64 characters among a-z, 0-9, '-' and '_'"#,
            r#"orders.toml:22: streams[0].enrichers: expected an array, found the string "restaurant-enricher"; write ["restaurant-enricher"]"#,
            r#"orders.toml:23: streams[0].commit_size: expected a whole number from 1 to 1000000, found 2000000"#,
            r#"orders.toml:24: streams[0].commit_interval: expected at most 15m, found 1h"#,
            r#"orders.toml:26: streams[0].aggregator.plugin: unknown plugin "nope"; defined plugins are: Orders Parser"#,
            r#"orders.toml:27: streams[0].aggregator.window: expected more than zero, found 0s"#,
            r#"orders.toml:28: streams[0].aggregator.late_events: unknown policy "ignore"; expected "dead-letter" or "drop""#,
        ]
    );
}

#[test]
fn a_configuration_without_streams_is_refused_without_a_line() {
    assert_eq!(
        problems("[plugins.p]\npath = \"p.wasm\"\n"),
        ["orders.toml: streams: no stream is defined; add a [[streams]] table with a name and a parser"]
    );
    assert_eq!(
        problems("[streams.orders]\nparser = \"p\"\n"),
        ["orders.toml:1: streams: expected an array of tables (one [[streams]] header per stream), found a table",]
    );
    assert_eq!(
        problems("[[streams]]\nname = \"orders\"\nparser = \"p\"\n"),
        ["orders.toml:3: streams[0].parser: unknown plugin \"p\"; no plugins are defined (add a [plugins.p] table \
             with the path of its component)",]
    );
}

#[test]
fn an_unreadable_file_is_reported_without_a_line() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("absent.toml");
    let errors = PipelineConfig::from_file(&path, sink_types()).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors.errors()[0].line, None);
    assert!(
        errors.to_string().starts_with(&format!("{}: cannot read the configuration file: ", path.display())),
        "{errors}"
    );
}

#[test]
fn validation_checks_that_reference_files_hold_a_json_object() {
    let dir = TempDir::new().unwrap();
    let text = format!(
        "{MINIMAL}\n[reference.restaurants]\nfile = \"restaurants.json\"\n\n\
         [reference.zones]\nfile = \"zones.json\"\n\n[reference.cuisines]\nfile = \"cuisines.json\"\n"
    );
    let files = [("orders_parser.wasm", ""), ("restaurants.json", "[1, 2]"), ("zones.json", "{\"a\": ")];
    let path = write_config(dir.path(), &text, &files);

    // from_file checks that the files exist...
    let errors: ConfigErrors = PipelineConfig::from_file(&path, sink_types()).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors}");
    assert_eq!(errors.errors()[0].key, "reference.cuisines.file");
    assert!(errors.errors()[0].message.ends_with("cuisines.json does not exist; expected a JSON file holding an object of key → value (a relative path starts from the configuration file's directory)"), "{errors}");

    // ...validate_file also reads them.
    let errors = validate_file(&path, sink_types()).unwrap_err();
    let messages: Vec<(&str, &str)> =
        errors.iter().map(|error| (error.key.as_str(), error.message.rsplit(".json ").next().unwrap())).collect();
    assert_eq!(
        messages,
        [
            ("reference.restaurants.file", "holds a JSON array; expected an object of key → value"),
            ("reference.zones.file", "is not valid JSON: EOF while parsing a value at line 1 column 6"),
            (
                "reference.cuisines.file",
                "does not exist; expected a JSON file holding an object of key → value (a relative path starts from the configuration file's directory)"
            ),
        ]
    );
}

#[test]
fn each_plugin_is_loaded_as_the_world_its_stream_uses_it_as() {
    let dir = TempDir::new().unwrap();
    let path = write_config(dir.path(), FULL, FULL_FILES);
    let config = PipelineConfig::from_file(path, sink_types()).unwrap();
    assert_eq!(config.plugin_world("orders-parser"), Some(World::Parser));
    assert_eq!(config.plugin_world("clicks-parser"), Some(World::Parser));
    assert_eq!(config.plugin_world("restaurant-enricher"), Some(World::Enricher));
    assert_eq!(config.plugin_world("restaurant-stats"), Some(World::Aggregator));
    assert_eq!(config.plugin_world("unknown"), None);
    let orders: Vec<(&str, World)> = config.streams[0].plugins().collect();
    assert_eq!(
        orders,
        [
            ("orders-parser", World::Parser),
            ("restaurant-enricher", World::Enricher),
            ("restaurant-stats", World::Aggregator)
        ]
    );
    assert_eq!(
        config.plugins["orders-parser"].config_pairs()[0],
        ("default_content_type".to_owned(), "auto".to_owned())
    );
}

#[test]
fn sinks_take_only_the_outputs_they_can_write() {
    let (lake, dead_letters) = (sink_type("lake"), sink_type("dead-letters"));
    assert!(lake.accepts(OutputKind::Raw));
    assert!(lake.accepts(OutputKind::Events));
    assert!(lake.accepts(OutputKind::Aggregates));
    assert!(!lake.accepts(OutputKind::DeadLetters));
    assert!(dead_letters.accepts(OutputKind::DeadLetters));
    assert!(!dead_letters.accepts(OutputKind::Events));
    let names: Vec<&str> = sink_types().all().map(SinkType::as_str).collect();
    assert_eq!(
        names,
        ["lake", "dead-letters", "serving", "search", "warehouse", "firehose", "dynamodb", "redshift", "elasticsearch"],
        "every registered type"
    );
    let dynamodb = sink_type("dynamodb");
    assert!(dynamodb.accepts(OutputKind::Events) && dynamodb.accepts(OutputKind::Aggregates));
    assert!(!dynamodb.accepts(OutputKind::Raw));
    let firehose = sink_type("firehose");
    assert!(firehose.accepts(OutputKind::Raw) && !firehose.accepts(OutputKind::Events));
    assert!(sink_types().named("s3").is_none());
}

#[test]
fn sizes_and_durations_read_from_any_serde_format() {
    #[derive(serde::Deserialize)]
    struct Settings {
        size: ByteSize,
        bytes: ByteSize,
        wait: HumanDuration,
    }
    let settings: Settings = serde_json::from_str(r#"{"size": "64KiB", "bytes": 100, "wait": "1m30s"}"#).unwrap();
    assert_eq!(settings.size, ByteSize::kib(64));
    assert_eq!(settings.bytes, ByteSize(100));
    assert_eq!(settings.wait.as_duration(), Duration::from_secs(90));
    let error = serde_json::from_str::<Settings>(r#"{"size": "1KiB", "bytes": 1, "wait": "1 minute"}"#)
        .err()
        .unwrap()
        .to_string();
    assert!(error.starts_with(r#""1 minute" is not a duration; expected e.g. "30s", "5m", "1h""#), "{error}");
    assert_eq!(serde_json::to_string(&ByteSize::mib(5)).unwrap(), r#""5MiB""#);
}

#[test]
fn the_examples_in_the_documentation_are_valid() {
    let doc = include_str!("../../../docs/configuration.md");
    let examples: Vec<&str> = doc.split("```toml\n").skip(1).map(|rest| rest.split("```").next().unwrap()).collect();
    assert_eq!(examples.len(), 5);
    for example in examples {
        // The examples of one section alone get a stream to be a whole file.
        let example = if example.contains("[[streams]]") {
            example.to_owned()
        } else {
            format!("{MINIMAL}\n[streams.routes]\ndead_letters = []\n\n{example}")
        };
        PipelineConfig::parse(&example, "docs/configuration.md", sink_types())
            .unwrap_or_else(|errors| panic!("{errors}"));
    }
}

#[test]
fn serving_search_and_warehouse_sinks_take_events_and_aggregates() {
    let text = format!(
        r#"
[server]
data_dir = "/srv/weir"
serving_cache_entries = 500
serving_cache_ttl = "250ms"
{MINIMAL}
[sinks.order-status]
type = "serving"
table = "orders"
key_field = "order_id"

[sinks.stats]
type = "serving"

[sinks.order-search]
type = "search"
index = "orders"
text_fields = ["restaurant_name"]
numeric_fields = ["total"]

[sinks.warehouse]
type = "warehouse"

[streams.routes]
events = ["order-status", "order-search", "warehouse"]
dead_letters = []
"#
    );
    let config = PipelineConfig::parse(&text, "orders.toml", sink_types()).unwrap();
    assert_eq!(config.server.serving_cache_entries, 500);
    assert_eq!(config.server.serving_cache_ttl, HumanDuration(Duration::from_millis(250)));
    assert_eq!(
        config.sinks["order-status"],
        SinkConfig::new(ServingSettings { table: "orders".to_owned(), key_field: Some("order_id".to_owned()) })
    );
    assert_eq!(config.sinks["stats"], SinkConfig::new(ServingSettings { table: "stats".to_owned(), key_field: None }));
    assert_eq!(
        config.sinks["order-search"],
        SinkConfig::new(SearchSettings {
            index: "orders".to_owned(),
            text_fields: strings(&["restaurant_name"]),
            numeric_fields: strings(&["total"]),
        })
    );
    assert_eq!(
        config.sinks["warehouse"],
        SinkConfig::new(WarehouseSettings { path: StoreLocation::Directory(PathBuf::from("/srv/weir/warehouse")) })
    );
    for sink_type in ["serving", "search", "warehouse"].map(sink_type) {
        assert!(sink_type.accepts(OutputKind::Events) && sink_type.accepts(OutputKind::Aggregates));
        assert!(!sink_type.accepts(OutputKind::Raw) && !sink_type.accepts(OutputKind::DeadLetters));
    }
}

#[test]
fn search_sink_fields_and_indexes_are_checked() {
    let text = format!(
        r#"{MINIMAL}
[sinks.a]
type = "search"
index = "orders"
text_fields = ["restaurant name", "time", "zone"]
numeric_fields = ["zone"]

[sinks.b]
type = "search"
index = "orders"
colour = "blue"

[sinks.c]
type = "serving"
table = "Orders!"

[sinks.d]
type = "warehouse"

[streams.routes]
raw = ["d"]
dead_letters = []
"#
    );
    assert_eq!(
        problems(&text),
        [
            r#"orders.toml:12: sinks.a.text_fields[0]: "restaurant name" cannot be a search field; use letters, digits and '_'"#,
            r#"orders.toml:12: sinks.a.text_fields[1]: "time" is a field every index has (id, key, kind, time, text); rename the event field in a plugin"#,
            r#"orders.toml:13: sinks.a.numeric_fields[0]: "zone" is listed twice; a field is either text or numeric"#,
            r#"orders.toml:15: sinks.b: search index "orders" is already written by sink a; give each search sink its own index"#,
            r#"orders.toml:18: sinks.b.colour: unknown key "colour"; allowed keys are: type, index, text_fields, numeric_fields"#,
            r#"orders.toml:22: sinks.c.table: "Orders!" is not a valid serving table name; expected 1 to 64 characters among a-z, 0-9, '-' and '_'"#,
            r#"orders.toml:28: streams[0].routes.raw[0]: sink "d" is a warehouse sink, which does not take raw records; no defined sink does; add a sink of type lake or firehose"#,
        ]
    );
}

#[test]
fn admin_tokens_name_an_environment_variable_and_a_role() {
    let text = format!(
        r#"{MINIMAL}
[admin]
max_upload_bytes = "16MiB"
auto_rollback_error_percent = 10
[admin.tokens.ci]
role = "admin"
env = "WEIR_CI_TOKEN"
[admin.tokens.dashboard]
role = "read"
env = "WEIR_DASHBOARD_TOKEN"
[admin.tokens.shop]
role = "ingest"
env = "WEIR_SHOP_TOKEN"
"#
    );
    let config = PipelineConfig::parse(&text, "orders.toml", sink_types()).unwrap();
    assert_eq!(config.admin.max_upload_bytes, ByteSize::mib(16));
    assert_eq!(config.admin.auto_rollback_error_percent, 10);
    assert_eq!(config.admin.auto_rollback_min_inputs, 50);
    assert_eq!(
        config.admin.tokens,
        [
            TokenConfig { name: "ci".into(), role: Role::Admin, env: "WEIR_CI_TOKEN".into() },
            TokenConfig { name: "dashboard".into(), role: Role::Read, env: "WEIR_DASHBOARD_TOKEN".into() },
            TokenConfig { name: "shop".into(), role: Role::Ingest, env: "WEIR_SHOP_TOKEN".into() },
        ]
    );

    let text = format!(
        "{MINIMAL}\n[admin.tokens.ci]\nrole = \"root\"\ntoken = \"s3cret\"\n[admin.tokens.x]\nrole = \"read\"\n"
    );
    assert_eq!(
        problems(&text),
        [
            r#"orders.toml:9: admin.tokens.ci.env: missing; expected the environment variable holding the token, e.g. "WEIR_CI_TOKEN" (tokens are not written in configuration files)"#,
            r#"orders.toml:10: admin.tokens.ci.role: unknown role "root"; expected admin, read or ingest"#,
            r#"orders.toml:11: admin.tokens.ci.token: unknown key "token"; allowed keys are: role, env"#,
            r#"orders.toml:12: admin.tokens.x.env: missing; expected the environment variable holding the token, e.g. "WEIR_CI_TOKEN" (tokens are not written in configuration files)"#,
        ]
    );
}

/// The registered sink type named `name`.
fn sink_type(name: &str) -> SinkType {
    sink_types().named(name).unwrap_or_else(|| panic!("sink type {name} is registered"))
}

#[test]
fn a_kinesis_log_reads_its_settings_and_refuses_the_embedded_logs_keys() {
    let text = format!(
        "[log]\ntype = \"kinesis\"\nregion = \"eu-west-1\"\nendpoint = \"http://127.0.0.1:4567\"\nstream_prefix = \"prod-\"\n{MINIMAL}"
    );
    let config = PipelineConfig::parse(&text, "orders.toml", sink_types()).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(
        config.log.kinesis,
        Some(KinesisLogSettings {
            region: Some("eu-west-1".into()),
            endpoint: Some("http://127.0.0.1:4567".into()),
            stream_prefix: "prod-".into(),
            ..KinesisLogSettings::default()
        })
    );
    let text = format!("[log]\ntype = \"kinesis\"\nshards = 4\ndynamodb_endpoint = \"localhost:8000\"\n{MINIMAL}");
    assert_eq!(
        problems(&text),
        [
            "orders.toml:3: log.shards: a Kinesis stream has its own shards and retention: set them on the stream in AWS",
            r#"orders.toml:4: log.dynamodb_endpoint: "localhost:8000" is not an http:// or https:// URL"#,
        ]
    );
    assert_eq!(
        problems(&format!("[log]\nstream_prefix = \"prod-\"\n{MINIMAL}")),
        [r#"orders.toml:2: log.stream_prefix: only with type = "kinesis""#]
    );
    assert_eq!(
        problems(&format!("[log]\ntype = \"kafka\"\n{MINIMAL}")),
        [r#"orders.toml:2: log.type: unknown log type "kafka"; expected "embedded" (the default) or "kinesis""#]
    );
}

#[test]
fn object_store_sinks_take_an_s3_location_checked_at_its_line() {
    let text = format!(
        r#"{MINIMAL}
[sinks.lake]
type = "lake"
path = "s3://weir-lake/prod/"
region = "eu-west-1"
endpoint = "http://127.0.0.1:5000"
path_style = true

[sinks.dead-letters]
type = "dead-letters"
path = "s3://weir-lake/prod"
"#
    );
    let config = PipelineConfig::parse(&text, "orders.toml", sink_types()).unwrap_or_else(|errors| panic!("{errors}"));
    let lake = S3Location {
        bucket: "weir-lake".into(),
        prefix: "prod".into(),
        region: Some("eu-west-1".into()),
        endpoint: Some("http://127.0.0.1:5000".into()),
        path_style: true,
    };
    assert_eq!(config.sinks["lake"], SinkConfig::new(LakeSettings::at(StoreLocation::S3(lake))));
    let dead_letters = S3Location { bucket: "weir-lake".into(), prefix: "prod".into(), ..S3Location::default() };
    assert_eq!(
        config.sinks["dead-letters"],
        SinkConfig::new(DeadLetterSettings { path: StoreLocation::S3(dead_letters) })
    );

    let text = format!(
        r#"{MINIMAL}
[sinks.lake]
type = "lake"
path = "s3://Weir_Lake/prod"
endpoint = "127.0.0.1:5000"

[sinks.dead-letters]
type = "dead-letters"
path = "lake"
region = "eu-west-1"

[sinks.warehouse]
type = "warehouse"
path = "s3://weir-lake/a//b"
"#
    );
    let errors = PipelineConfig::parse(&text, "orders.toml", sink_types()).unwrap_err();
    let lines: Vec<String> = errors.to_string().lines().map(str::to_owned).collect();
    assert_eq!(
        lines,
        [
            r#"orders.toml:11: sinks.lake.path: "s3://Weir_Lake/prod": a bucket name has only lowercase letters, digits, '-' and '.'"#,
            r#"orders.toml:12: sinks.lake.endpoint: "127.0.0.1:5000" is not an http:// or https:// URL"#,
            r#"orders.toml:17: sinks.dead-letters.region: region applies only to an s3:// path; remove it or write path = "s3://bucket/prefix""#,
            r#"orders.toml:21: sinks.warehouse.path: "s3://weir-lake/a//b": the prefix has an empty, '.' or '..' part; write it as a/b/c"#,
        ]
    );
}

#[test]
fn a_shared_registry_keeps_components_in_s3_and_the_rest_in_dynamodb() {
    let text = format!(
        r#"{MINIMAL}
[registry]
type = "aws"
path = "s3://weir-registry/prod"
table = "weir-prod-registry"
region = "eu-west-1"
endpoint = "http://127.0.0.1:5000"
path_style = true
dynamodb_endpoint = "http://127.0.0.1:5000"
"#
    );
    let config = PipelineConfig::parse(&text, "orders.toml", sink_types()).unwrap_or_else(|errors| panic!("{errors}"));
    let shared = config.registry.shared.expect("a shared registry");
    assert_eq!(shared.components.to_string(), "s3://weir-registry/prod");
    assert!(shared.components.path_style);
    assert_eq!(shared.components.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
    assert_eq!((shared.table.as_str(), shared.region.as_deref()), ("weir-prod-registry", Some("eu-west-1")));

    let text = format!("{MINIMAL}\n[registry]\ntype = \"aws\"\ntable = \"t\"\n\n[log]\nshards = 2\n");
    let errors = PipelineConfig::parse(&text, "orders.toml", sink_types()).unwrap_err().to_string();
    assert!(errors.contains("registry.path") && errors.contains("s3://bucket/prefix"), "{errors}");
    let text = format!("{MINIMAL}\n[registry]\ntable = \"t\"\n");
    let errors = PipelineConfig::parse(&text, "orders.toml", sink_types()).unwrap_err().to_string();
    assert!(errors.contains("orders.toml:10: registry.table: only with type = \"aws\""), "{errors}");
}

#[test]
fn a_dynamodb_sink_checks_its_write_mode_flag_and_table() {
    let text = format!(
        "{MINIMAL}\n[sinks.lake]\ntype = \"lake\"\n[sinks.status]\ntype = \"dynamodb\"\nwrite_mode = \"fast\"\ncreate_table = \"yes\"\n\
         [sinks.again]\ntype = \"serving\"\ntable = \"status\"\n[streams.routes]\nevents = [\"status\", \"again\"]\n"
    );
    let found = problems(&text);
    assert!(
        found
            .iter()
            .any(|p| p.contains("sinks.status.write_mode") && p.contains("\"fast\" is not one of conditional, batch")),
        "{found:?}"
    );
    assert!(found.iter().any(|p| p.contains("sinks.status.create_table")), "{found:?}");
    assert!(found.iter().any(|p| p.contains("serving table \"status\" is already written by sink")), "{found:?}");
}

#[test]
fn a_redshift_sink_needs_a_postgres_url_and_for_redshift_its_s3_staging() {
    let text = format!(
        "{MINIMAL}\n[sinks.lake]\ntype = \"lake\"\n[sinks.wh]\ntype = \"redshift\"\nurl = \"mysql://x\"\n\
         [streams.routes]\nevents = [\"wh\"]\n"
    );
    let found = problems(&text);
    assert!(
        found.iter().any(|p| p.contains("sinks.wh.url") && p.contains("postgres://user@host:5439/database")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|p| p.contains("sinks.wh") && p.contains("staging = \"s3://bucket/prefix\" and the iam_role")),
        "{found:?}"
    );
    let text = format!(
        "{MINIMAL}\n[sinks.lake]\ntype = \"lake\"\n[sinks.wh]\ntype = \"redshift\"\ndialect = \"postgres\"\nurl = \"postgres://weir@127.0.0.1:5432/db\"\n\
         [streams.routes]\nevents = [\"wh\"]\ndead_letters = []\n"
    );
    let config = PipelineConfig::parse(&text, "orders.toml", sink_types()).unwrap();
    assert_eq!(config.sinks["wh"].sink_type().as_str(), "redshift");
}

#[test]
fn an_elasticsearch_sink_needs_its_url_and_keeps_the_documents_own_field_names() {
    let text = format!(
        "{MINIMAL}\n[sinks.lake]\ntype = \"lake\"\n[sinks.es]\ntype = \"elasticsearch\"\ntext_fields = [\"lineage\"]\n\
         [streams.routes]\nevents = [\"es\"]\n"
    );
    let found = problems(&text);
    assert!(found.iter().any(|p| p.contains("sinks.es") && p.contains("url = \"https://host:9200\"")), "{found:?}");
    assert!(
        found.iter().any(|p| p.contains("text_fields[0]") && p.contains("\"lineage\" is a field every index has")),
        "{found:?}"
    );
}

#[test]
fn reference_tables_can_live_in_dynamodb_or_s3() {
    let text = format!(
        "{MINIMAL}\n[reference.restaurants]\ntype = \"dynamodb\"\nendpoint = \"http://127.0.0.1:8000\"\nttl = \"10s\"\n\
         [reference.zones]\ntype = \"s3\"\npath = \"s3://ref-bucket/zones.json\"\nreload = \"1m\"\n\
         [streams.routes]\ndead_letters = []\n"
    );
    let config = PipelineConfig::parse(&text, "orders.toml", sink_types()).unwrap();
    let weir_config::ReferenceSource::DynamoDb(dynamodb) = &config.reference["restaurants"].source else {
        panic!("{:?}", config.reference)
    };
    assert_eq!((dynamodb.table.as_str(), dynamodb.key_attribute.as_str()), ("restaurants", "key"));
    assert_eq!(
        (dynamodb.ttl.0, dynamodb.timeout.0, dynamodb.max_entries),
        (Duration::from_secs(10), Duration::from_millis(500), 100_000)
    );
    let weir_config::ReferenceSource::S3 { location, reload } = &config.reference["zones"].source else { panic!() };
    assert_eq!(
        (location.bucket.as_str(), location.prefix.as_str(), reload.0),
        ("ref-bucket", "zones.json", Duration::from_secs(60))
    );

    let text = format!(
        "{MINIMAL}\n[reference.a]\ntype = \"redis\"\n[reference.b]\ntype = \"s3\"\npath = \"s3://only-a-bucket\"\n\
         [reference.c]\ntype = \"dynamodb\"\nendpoint = \"ftp://x\"\n[streams.routes]\ndead_letters = []\n"
    );
    let found = problems(&text);
    assert!(
        found.iter().any(|p| p.contains("reference.a.type")
            && p.contains("unknown reference type \"redis\"; expected one of: file, dynamodb, s3")),
        "{found:?}"
    );
    assert!(found.iter().any(|p| p.contains("reference.b.path") && p.contains("s3://bucket/key")), "{found:?}");
    assert!(
        found.iter().any(|p| p.contains("reference.c.endpoint") && p.contains("not an http:// or https:// URL")),
        "{found:?}"
    );
}
