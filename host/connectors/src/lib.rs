//! Sink connectors: each sink type is one module here, declared below and listed in
//! [`CONNECTORS`].
//!
//! A connector says what its `type = "…"` is called, which outputs it takes, which keys
//! its `[sinks.NAME]` table allows and how they are read and checked
//! ([`weir_config::SinkKind`]), and how a sink is built from the settings it read
//! ([`Connector::build`]). The configuration loader, `weir validate`, the route checks
//! and the pipeline's wiring never name a connector: they go through this registry
//! ([`sink_types`] for loading, [`build_sinks`] for running). The read side — serving
//! lookups, search, aggregates — is behind the traits of [`stores`], registered by the
//! connectors whose sinks write what they read. `docs/connectors.md` walks through adding
//! one.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use weir_config::{OutputKind, PipelineConfig, SinkConfig, SinkKind, SinkTypes, StoreLocation};
use weir_sinks::Sink;

mod batch_view;
mod connector;
mod dead_letters;
#[cfg(feature = "aws")]
mod dynamodb;
#[cfg(feature = "aws")]
mod elasticsearch;
#[cfg(feature = "aws")]
mod firehose;
mod lake;
#[cfg(feature = "aws")]
mod redshift;
mod references;
mod search;
mod serving;
pub mod stores;
mod warehouse;

pub use batch_view::BatchView;
pub use connector::{Connector, SinkContext};
pub use dead_letters::DeadLetterSettings;
#[cfg(feature = "aws")]
pub use dynamodb::DynamoDbSettings;
#[cfg(feature = "aws")]
pub use elasticsearch::ElasticSinkSettings;
#[cfg(feature = "aws")]
pub use firehose::FirehoseSinkSettings;
pub use lake::LakeSettings;
#[cfg(feature = "aws")]
pub use redshift::RedshiftSettings;
pub use references::build_references;
pub use search::SearchSettings;
pub use serving::ServingSettings;
pub use stores::{LakeRoute, Stores};
pub use warehouse::WarehouseSettings;

/// Every sink type, in the order messages list them: the one registration of a connector.
static CONNECTORS: &[&dyn Connector] = &[
    &lake::Lake,
    &dead_letters::DeadLetters,
    &serving::Serving,
    &search::Search,
    &warehouse::WarehouseKind,
    #[cfg(feature = "aws")]
    &firehose::Firehose,
    #[cfg(feature = "aws")]
    &dynamodb::DynamoDb,
    #[cfg(feature = "aws")]
    &redshift::Redshift,
    #[cfg(feature = "aws")]
    &elasticsearch::ElasticSearch,
];

/// The sink types of [`CONNECTORS`], as the configuration is loaded with them.
static SINK_KINDS: std::sync::LazyLock<Vec<&'static dyn SinkKind>> =
    std::sync::LazyLock::new(|| CONNECTORS.iter().map(|&connector| connector as &dyn SinkKind).collect());

/// The sink types a configuration may use: every registered connector, and the default
/// sinks of a file without `[sinks]`.
pub fn sink_types() -> &'static SinkTypes {
    static TYPES: std::sync::LazyLock<SinkTypes> =
        std::sync::LazyLock::new(|| SinkTypes::new(SINK_KINDS.as_slice(), default_sinks));
    &TYPES
}

/// The sinks of a configuration without `[sinks]`: `lake` (a lake) and `dead-letters`
/// (a dead-letter sink), both in `<data_dir>/lake`.
pub fn default_sinks(data_dir: &Path) -> BTreeMap<String, SinkConfig> {
    let root = data_dir.join("lake");
    BTreeMap::from([
        ("lake".to_owned(), SinkConfig::new(LakeSettings::at(StoreLocation::Directory(root.clone())))),
        ("dead-letters".to_owned(), SinkConfig::new(DeadLetterSettings { path: StoreLocation::Directory(root) })),
    ])
}

/// The configured sinks, by name.
pub type SinksByName = BTreeMap<String, Arc<dyn Sink>>;

/// Builds every configured sink, by name, through its connector, and the stores behind
/// them.
///
/// # Errors
/// A sink that cannot be opened, naming it and its location.
pub fn build_sinks(config: &PipelineConfig) -> anyhow::Result<(SinksByName, Stores)> {
    let mut stores = Stores::default();
    let mut sinks: SinksByName = BTreeMap::new();
    {
        let mut context = SinkContext::new(config, &mut stores);
        for (name, settings) in &config.sinks {
            let type_name = settings.sink_type().as_str();
            let connector = CONNECTORS
                .iter()
                .find(|connector| connector.name() == type_name)
                .with_context(|| format!("sink {name}: no connector is registered for type {type_name:?}"))?;
            sinks.insert(name.clone(), connector.build(name, settings, &mut context)?);
        }
    }
    for stream in &config.streams {
        stores.route_aggregates(&stream.name, stream.routes.get(OutputKind::Aggregates));
        for output in OutputKind::ALL {
            stores.route_lake(&stream.name, output, stream.routes.get(output));
        }
    }
    // The Lambda merge: a job level that recomputes a stream's aggregates answers for the
    // periods its runs completed.
    for job in &config.jobs {
        for level in job.levels.iter().filter(|level| level.replaces_stream_aggregates) {
            let Some(batch) = stores.aggregates_of_sinks(&level.sinks) else {
                tracing::warn!(
                    "job {} level {}: none of its sinks ({}) can be read back, so /v1/aggregates/{} keeps answering \
                     the stream's aggregates; add a warehouse sink to the level",
                    job.name,
                    level.name,
                    level.sinks.join(", "),
                    job.stream
                );
                continue;
            };
            let manifests = lake_store(config, &job.input)?;
            let stream = stores.aggregates.get(&job.stream).cloned();
            let view = BatchView::new(&job.name, &level.name, manifests, batch, stream);
            stores.aggregates.insert(job.stream.clone(), Arc::new(view));
        }
    }
    Ok((sinks, stores))
}

/// The object store of lake sink `name`, to read what it holds (a batch job's raw archive
/// and manifests). Unlike building the sink, opening it cleans nothing up: a running
/// host may be writing to it.
///
/// # Errors
/// `name` is not a lake sink of the configuration, or its store cannot be opened.
pub fn lake_store(config: &PipelineConfig, name: &str) -> anyhow::Result<Arc<dyn object_store::ObjectStore>> {
    let settings = config.sinks.get(name).with_context(|| format!("unknown sink {name}"))?;
    let lake = connector::settings_of::<LakeSettings>(name, settings)
        .with_context(|| format!("sink {name} is not a lake sink"))?;
    match &lake.path {
        StoreLocation::Directory(path) => Ok(weir_sinks::local_store(name, path)?),
        #[cfg(feature = "aws")]
        StoreLocation::S3(s3) => weir_aws::s3_store(s3, None).with_context(|| format!("sink {name}: cannot open {s3}")),
        #[cfg(not(feature = "aws"))]
        StoreLocation::S3(s3) => anyhow::bail!("sink {name}: {s3} needs AWS support (feature \"aws\")"),
    }
}
