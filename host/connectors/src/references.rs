//! The reference tables of `[reference.NAME]`, behind the runtime's `ReferenceData`:
//! local JSON files read at start, DynamoDB tables through a cache and S3 objects
//! reloaded when they change (the last two with the `aws` feature).

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context as _;
use weir_config::{PipelineConfig, ReferenceSource};
use weir_runtime::{LookupFuture, ReferenceData, StaticReferenceData};

/// One table's rows.
enum Table {
    Static,
    #[cfg(feature = "aws")]
    DynamoDb(Arc<weir_aws::DynamoReferenceTable>),
    #[cfg(feature = "aws")]
    S3(Arc<weir_aws::S3ReferenceTable>),
}

/// Every reference table, by name.
struct References {
    files: StaticReferenceData,
    tables: HashMap<String, Table>,
}

impl ReferenceData for References {
    fn lookup<'a>(&'a self, table: &'a str, key: &'a str) -> LookupFuture<'a> {
        match self.tables.get(table) {
            None | Some(Table::Static) => Box::pin(std::future::ready(Ok(self.files.get(table, key)))),
            #[cfg(feature = "aws")]
            Some(Table::DynamoDb(dynamodb)) => Box::pin(dynamodb.lookup(key)),
            #[cfg(feature = "aws")]
            Some(Table::S3(s3)) => Box::pin(std::future::ready(Ok(s3.get(key)))),
        }
    }
}

/// The reference tables `config` declares: files read now, S3 objects read now (and
/// reloaded in the background), DynamoDB tables read on demand.
///
/// # Errors
/// A file or S3 object cannot be read or is not a JSON object; a store needs AWS support
/// this build lacks.
pub async fn build_references(config: &PipelineConfig) -> anyhow::Result<Arc<dyn ReferenceData>> {
    let mut references = References { files: StaticReferenceData::default(), tables: HashMap::new() };
    for (name, reference) in &config.reference {
        let table = match &reference.source {
            ReferenceSource::File(file) => {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read reference table {name} from {}", file.display()))?;
                let rows: serde_json::Value = serde_json::from_str(&text)
                    .with_context(|| format!("reference table {name} ({}) is not JSON", file.display()))?;
                let rows = rows
                    .as_object()
                    .with_context(|| format!("reference table {name} must be a JSON object of key → value"))?;
                for (key, value) in rows {
                    references.files.insert(name, key, &value.to_string());
                }
                Table::Static
            }
            #[cfg(feature = "aws")]
            ReferenceSource::DynamoDb(settings) => {
                Table::DynamoDb(weir_aws::DynamoReferenceTable::new(name, settings.clone(), None).await)
            }
            #[cfg(feature = "aws")]
            ReferenceSource::S3 { location, reload } => Table::S3(
                weir_aws::S3ReferenceTable::load(name, location, reload.0, None).await.map_err(anyhow::Error::msg)?,
            ),
            #[cfg(not(feature = "aws"))]
            _ => anyhow::bail!(
                "reference table {name} is in an AWS store, which this build of weir-connectors leaves out (feature \"aws\"); the weir binary has it"
            ),
        };
        references.tables.insert(name.clone(), table);
    }
    Ok(Arc::new(references))
}
