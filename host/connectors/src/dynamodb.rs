//! `type = "dynamodb"`: a serving table kept in DynamoDB (built only with the `aws`
//! feature), answered by `GET /v1/serving/{table}/{key}` through this host's cache, the
//! same way as the embedded store's tables.

use std::sync::Arc;
use std::time::Duration;

use weir_aws::{DynamoServingSettings, DynamoServingSink, DynamoServingTable, DynamoWriteMode};
use weir_config::{OutputKind, SinkConfig, SinkKind, SinkSettings, SinkTable, SinkType};
use weir_log::BoxFuture;
use weir_serving::{CacheSettings, DocumentCache, ServingDocuments};
use weir_sinks::Sink;

use crate::connector::{Connector, SinkContext, settings_of};
use crate::stores::{Lookup, ReadError, ServedDocument, ServingReader};

pub(crate) struct DynamoDb;

const WRITE_MODES: &[&str] = &["conditional", "batch"];

impl SinkKind for DynamoDb {
    fn name(&self) -> &'static str {
        "dynamodb"
    }

    fn accepts(&self, output: OutputKind) -> bool {
        matches!(output, OutputKind::Events | OutputKind::Aggregates)
    }

    fn keys(&self) -> &'static [&'static str] {
        &["table", "dynamodb_table", "key_field", "region", "endpoint", "create_table", "write_mode"]
    }

    fn read(&self, table: &mut SinkTable<'_, '_, '_, '_>) -> SinkConfig {
        let serving_table = table.name_or_sink_name("table", "serving table");
        table.claim("serving table", &serving_table, "give each serving sink its own table");
        let dynamodb_table = table.string("dynamodb_table").unwrap_or_else(|| serving_table.clone());
        table.claim("DynamoDB table", &dynamodb_table, "give each dynamodb sink its own dynamodb_table");
        let key_field = table.string("key_field");
        let region = table.string("region");
        let endpoint = table.endpoint("endpoint");
        let create_table = table.boolean("create_table", true);
        let write_mode = match table.choice("write_mode", WRITE_MODES) {
            "batch" => DynamoWriteMode::Batch,
            _ => DynamoWriteMode::Conditional,
        };
        SinkConfig::new(DynamoDbSettings {
            serving_table,
            key_field,
            table: DynamoServingSettings { table: dynamodb_table, region, endpoint, create_table, write_mode },
        })
    }
}

/// The settings of a `dynamodb` sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoDbSettings {
    /// `table`: the table's name in `GET /v1/serving/{table}/{key}`. By default the
    /// sink's name.
    pub serving_table: String,
    /// `key_field`: the event field whose value (text or integer) is the key. By default
    /// the event's key.
    pub key_field: Option<String>,
    /// `dynamodb_table` (by default `table`), `region`, `endpoint`, `create_table` (by
    /// default `true`) and `write_mode` (`conditional`, the default, or `batch`).
    pub table: DynamoServingSettings,
}

impl SinkSettings for DynamoDbSettings {
    fn sink_type(&self) -> SinkType {
        SinkType::of(&DynamoDb)
    }
}

impl Connector for DynamoDb {
    fn build(&self, name: &str, settings: &SinkConfig, context: &mut SinkContext<'_>) -> anyhow::Result<Arc<dyn Sink>> {
        let settings = settings_of::<DynamoDbSettings>(name, settings)?;
        let cache = context.shared("serving-cache", |config| {
            Ok(DocumentCache::new(CacheSettings {
                max_entries: config.server.serving_cache_entries,
                ttl: config.server.serving_cache_ttl.0,
            }))
        })?;
        let table = Arc::new(DynamoServingTable::new(settings.table.clone(), None));
        let documents = ServingDocuments {
            sink: name.to_owned(),
            table: settings.serving_table.clone(),
            key_field: settings.key_field.clone(),
        };
        let reader =
            DynamoReader { table: table.clone(), serving_table: settings.serving_table.clone(), cache: cache.clone() };
        context.stores.add_serving_table(&settings.serving_table, Arc::new(reader));
        Ok(Arc::new(DynamoServingSink::new(documents, table, cache)))
    }
}

/// Reads a DynamoDB serving table through this host's cache.
#[derive(Debug)]
struct DynamoReader {
    table: Arc<DynamoServingTable>,
    serving_table: String,
    cache: DocumentCache,
}

impl ServingReader for DynamoReader {
    fn lookup<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Lookup, ReadError>> {
        Box::pin(async move {
            let served = |document: Option<Arc<weir_serving::StoredDocument>>, cached| Lookup {
                document: document.map(|d| ServedDocument { etag: d.etag(), body: d.body.clone() }),
                cached,
            };
            if let Some(hit) = self.cache.get(&self.serving_table, key) {
                return Ok(served(hit, true));
            }
            let document = self.table.get(key).await.map_err(ReadError::Failed)?.map(Arc::new);
            // A write of this host may have cached a newer document while the read was
            // in flight: that one stays, and is the answer.
            if let Some(Some(cached)) = self.cache.get(&self.serving_table, key) {
                let older = |d: &weir_serving::StoredDocument| {
                    d.time
                        .cmp(&cached.time)
                        .then_with(|| weir_sinks::compare_positions(&d.position, &cached.position))
                        .is_lt()
                };
                if document.as_deref().is_none_or(older) {
                    return Ok(served(Some(cached), false));
                }
            }
            self.cache.insert(&self.serving_table, key, document.clone());
            Ok(served(document, false))
        })
    }

    fn cache_ttl(&self) -> Duration {
        self.cache.settings().ttl
    }
}
