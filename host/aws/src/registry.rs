//! The plugin registry shared by a fleet: components in S3 under their SHA-256, versions,
//! deployments and the audit log in one DynamoDB table (string keys `pk`, `sk`):
//!
//! | item | `pk` | `sk` | attributes |
//! | --- | --- | --- | --- |
//! | a version | `version` | `<name>/<version>` | `json` (the [`VersionRecord`]) |
//! | a deployment | `deployment` | `<plugin>` | `json` (the [`Deployment`]) |
//! | an audit entry | `audit` | the sequence number, 20 digits | `json` (the [`AuditEntry`]) |
//! | the audit counter | `counter` | `audit` | `n`, bumped atomically (`ADD`) |
//!
//! Every host reads the deployments every few seconds and runs what they name, so an
//! activation made through any host reaches all of them.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue as Av, KeyType, ReturnValue};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt as _};
use serde::Serialize;
use serde::de::DeserializeOwned;
use weir_config::SharedRegistrySettings;
use weir_registry::{AuditEntry, BoxFuture, Deployment, RegistryError, RegistryStore, VersionRecord, sha256_hex};

/// Items per `Query` page, and audit entries per call, at most.
const PAGE: i32 = 1000;

/// The registry of [`SharedRegistrySettings`]: S3 for components, DynamoDB for the rest.
#[derive(Debug, Clone)]
pub struct SharedRegistry {
    components: Arc<dyn ObjectStore>,
    location: String,
    client: Client,
    table: String,
}

impl SharedRegistry {
    /// Opens the registry of `settings` (the table is created when missing), with
    /// `static_credentials` for local servers, else the standard AWS chain.
    ///
    /// # Errors
    /// S3's settings are refused; DynamoDB refused or could not be reached; the table
    /// has other keys.
    pub async fn open(
        settings: &SharedRegistrySettings,
        static_credentials: Option<(String, String)>,
    ) -> Result<Self, RegistryError> {
        let location = settings.components.to_string();
        let components = crate::s3_store(&settings.components, static_credentials.clone())
            .map_err(|e| RegistryError::Storage { location: location.clone(), message: e.to_string() })?;
        let sdk = crate::sdk_config(settings.region.as_deref(), static_credentials.as_ref()).await;
        let mut config = aws_sdk_dynamodb::config::Builder::from(&sdk);
        if let Some(endpoint) = &settings.dynamodb_endpoint {
            config = config.endpoint_url(endpoint);
        }
        let client = Client::from_conf(config.build());
        crate::tables::ensure_table(
            &client,
            &settings.table,
            &[("pk", KeyType::Hash), ("sk", KeyType::Range)],
            "the registry table",
            true,
        )
        .await
        .map_err(|e| RegistryError::Storage {
            location: format!("DynamoDB table {}", settings.table),
            message: e.to_string(),
        })?;
        Ok(Self { components, location, client, table: settings.table.clone() })
    }

    fn table_error(&self, operation: &str, error: impl std::error::Error) -> RegistryError {
        RegistryError::Storage {
            location: format!("DynamoDB table {}", self.table),
            message: format!("{operation}: {}", aws_sdk_dynamodb::error::DisplayErrorContext(error)),
        }
    }

    fn store_error(&self, error: object_store::Error) -> RegistryError {
        RegistryError::Storage { location: self.location.clone(), message: error.to_string() }
    }

    fn decode<T: DeserializeOwned>(&self, item: &HashMap<String, Av>) -> Result<T, RegistryError> {
        let json = item.get("json").and_then(|v| v.as_s().ok()).ok_or_else(|| RegistryError::Storage {
            location: format!("DynamoDB table {}", self.table),
            message: "an item without its json attribute".into(),
        })?;
        serde_json::from_str(json).map_err(|e| RegistryError::Storage {
            location: format!("DynamoDB table {}", self.table),
            message: format!("an item that does not decode: {e}"),
        })
    }

    async fn put(&self, pk: &str, sk: String, value: &impl Serialize) -> Result<(), RegistryError> {
        let json = serde_json::to_string(value).map_err(|e| self.table_error("encode", e))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", Av::S(pk.to_owned()))
            .item("sk", Av::S(sk))
            .item("json", Av::S(json))
            .send()
            .await
            .map_err(|e| self.table_error("PutItem", e))?;
        Ok(())
    }

    /// Every item of `pk` (with `sk` starting with `prefix`, or after `after`), page by
    /// page, at most `limit`.
    async fn query(
        &self,
        pk: &str,
        prefix: Option<String>,
        after: Option<String>,
        limit: usize,
    ) -> Result<Vec<HashMap<String, Av>>, RegistryError> {
        let mut items = Vec::new();
        let mut start: Option<HashMap<String, Av>> = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .expression_attribute_values(":pk", Av::S(pk.to_owned()))
                .limit(PAGE.min(i32::try_from(limit - items.len()).unwrap_or(PAGE)))
                .set_exclusive_start_key(start.take());
            query = match (&prefix, &after) {
                (Some(prefix), _) => query
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", Av::S(prefix.clone())),
                (None, Some(after)) => query
                    .key_condition_expression("pk = :pk AND sk > :after")
                    .expression_attribute_values(":after", Av::S(after.clone())),
                (None, None) => query.key_condition_expression("pk = :pk"),
            };
            let page = query.send().await.map_err(|e| self.table_error("Query", e))?;
            items.extend(page.items().iter().cloned());
            match page.last_evaluated_key() {
                Some(key) if items.len() < limit => start = Some(key.clone()),
                _ => return Ok(items),
            }
        }
    }

    fn component_key(sha256: &str) -> Path {
        Path::from(format!("components/{sha256}.wasm"))
    }
}

impl RegistryStore for SharedRegistry {
    fn put_component(&self, bytes: Vec<u8>) -> BoxFuture<'_, Result<String, RegistryError>> {
        Box::pin(async move {
            let sha256 = sha256_hex(&bytes);
            let key = Self::component_key(&sha256);
            match self.components.head(&key).await {
                Ok(_) => {}
                Err(object_store::Error::NotFound { .. }) => {
                    self.components.put(&key, bytes.into()).await.map_err(|e| self.store_error(e))?;
                }
                Err(e) => return Err(self.store_error(e)),
            }
            Ok(sha256)
        })
    }

    fn component(&self, sha256: String) -> BoxFuture<'_, Result<Vec<u8>, RegistryError>> {
        Box::pin(async move {
            let key = Self::component_key(&sha256);
            let bytes = match self.components.get(&key).await {
                Ok(found) => found.bytes().await.map_err(|e| self.store_error(e))?.to_vec(),
                Err(object_store::Error::NotFound { .. }) => {
                    return Err(RegistryError::MissingComponent { location: self.location.clone(), sha256 });
                }
                Err(e) => return Err(self.store_error(e)),
            };
            let actual = sha256_hex(&bytes);
            if actual != sha256 {
                return Err(RegistryError::Damaged { location: self.location.clone(), sha256, actual });
            }
            Ok(bytes)
        })
    }

    fn remove_component(&self, sha256: String) -> BoxFuture<'_, Result<(), RegistryError>> {
        Box::pin(async move {
            match self.components.delete(&Self::component_key(&sha256)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(self.store_error(e)),
            }
        })
    }

    fn put_version(&self, version: VersionRecord) -> BoxFuture<'_, Result<(), RegistryError>> {
        Box::pin(async move { self.put("version", format!("{}/{}", version.name, version.version), &version).await })
    }

    fn version(&self, name: String, version: String) -> BoxFuture<'_, Result<Option<VersionRecord>, RegistryError>> {
        Box::pin(async move {
            let found = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("pk", Av::S("version".into()))
                .key("sk", Av::S(format!("{name}/{version}")))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| self.table_error("GetItem", e))?;
            found.item().map(|item| self.decode(item)).transpose()
        })
    }

    fn versions(&self, name: Option<String>) -> BoxFuture<'_, Result<Vec<VersionRecord>, RegistryError>> {
        Box::pin(async move {
            let prefix = name.map(|name| format!("{name}/"));
            let items = self.query("version", prefix, None, usize::MAX).await?;
            let mut out: Vec<VersionRecord> = items.iter().map(|item| self.decode(item)).collect::<Result<_, _>>()?;
            // As the local registry: by name, then upload order.
            out.sort_by(|a, b| (&a.name, &a.uploaded_at, &a.version).cmp(&(&b.name, &b.uploaded_at, &b.version)));
            Ok(out)
        })
    }

    fn remove_version(&self, name: String, version: String) -> BoxFuture<'_, Result<(), RegistryError>> {
        Box::pin(async move {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", Av::S("version".into()))
                .key("sk", Av::S(format!("{name}/{version}")))
                .send()
                .await
                .map_err(|e| self.table_error("DeleteItem", e))?;
            Ok(())
        })
    }

    fn put_deployment(&self, deployment: Deployment) -> BoxFuture<'_, Result<(), RegistryError>> {
        Box::pin(async move { self.put("deployment", deployment.plugin.clone(), &deployment).await })
    }

    fn deployments(&self) -> BoxFuture<'_, Result<Vec<Deployment>, RegistryError>> {
        Box::pin(async move {
            let items = self.query("deployment", None, None, usize::MAX).await?;
            items.iter().map(|item| self.decode(item)).collect()
        })
    }

    fn append_audit(&self, mut entry: AuditEntry) -> BoxFuture<'_, Result<AuditEntry, RegistryError>> {
        Box::pin(async move {
            let counted = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", Av::S("counter".into()))
                .key("sk", Av::S("audit".into()))
                .update_expression("ADD n :one")
                .expression_attribute_values(":one", Av::N("1".into()))
                .return_values(ReturnValue::UpdatedNew)
                .send()
                .await
                .map_err(|e| self.table_error("UpdateItem", e))?;
            entry.seq = counted
                .attributes()
                .and_then(|a| a.get("n"))
                .and_then(|n| n.as_n().ok())
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| {
                    self.table_error("UpdateItem", std::io::Error::other("the audit counter has no value"))
                })?;
            self.put("audit", format!("{:020}", entry.seq), &entry).await?;
            Ok(entry)
        })
    }

    fn audit(&self, after: u64, limit: usize) -> BoxFuture<'_, Result<Vec<AuditEntry>, RegistryError>> {
        Box::pin(async move {
            if limit == 0 {
                return Ok(Vec::new());
            }
            let items = self.query("audit", None, Some(format!("{after:020}")), limit).await?;
            items.iter().map(|item| self.decode(item)).collect()
        })
    }
}
