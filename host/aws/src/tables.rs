//! DynamoDB tables weir creates when they are missing: the checkpoint table and the
//! registry table.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
};
use weir_log::LogError;

use crate::checkpoints::service;

/// Makes sure `table` exists with exactly the string keys `keys` (hash first, then range
/// if any): creates it on demand capacity when missing and `create` (another host
/// creating it first is fine) and waits until it is active; refuses a table with other
/// keys, or a missing one without `create`, saying `purpose`.
///
/// # Errors
/// DynamoDB refused or could not be reached; the table has other keys.
pub(crate) async fn ensure_table(
    client: &Client,
    table: &str,
    keys: &[(&str, KeyType)],
    purpose: &str,
    create: bool,
) -> Result<(), LogError> {
    match client.describe_table().table_name(table).send().await {
        Ok(found) => {
            let existing = found.table().map(|t| t.key_schema().to_vec()).unwrap_or_default();
            let matches = existing.len() == keys.len()
                && existing
                    .iter()
                    .zip(keys)
                    .all(|(e, (name, kind))| e.attribute_name() == *name && e.key_type() == kind);
            if !matches {
                let wanted: Vec<&str> = keys.iter().map(|(name, _)| *name).collect();
                return Err(LogError::Service {
                    service: "DynamoDB",
                    operation: "DescribeTable",
                    stream: "*".into(),
                    reason: format!(
                        "table {table} exists with another key ({existing:?}); {purpose} needs the string keys {wanted:?}: name another table"
                    ),
                });
            }
            Ok(())
        }
        Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) && !create => {
            let wanted: Vec<&str> = keys.iter().map(|(name, _)| *name).collect();
            Err(LogError::Service {
                service: "DynamoDB",
                operation: "DescribeTable",
                stream: "*".into(),
                reason: format!(
                    "table {table} does not exist; create it with the string keys {wanted:?} for {purpose}, or let weir create it (create_table = true)"
                ),
            })
        }
        Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
            let mut create = client.create_table().table_name(table).billing_mode(BillingMode::PayPerRequest);
            for (name, kind) in keys {
                create = create
                    .key_schema(
                        KeySchemaElement::builder()
                            .attribute_name(*name)
                            .key_type(kind.clone())
                            .build()
                            .map_err(|e| service("CreateTable", "*", e))?,
                    )
                    .attribute_definitions(
                        AttributeDefinition::builder()
                            .attribute_name(*name)
                            .attribute_type(ScalarAttributeType::S)
                            .build()
                            .map_err(|e| service("CreateTable", "*", e))?,
                    );
            }
            if let Err(e) = create.send().await
                && !e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception())
            {
                return Err(service("CreateTable", "*", e));
            }
            for _ in 0..120 {
                let status = client
                    .describe_table()
                    .table_name(table)
                    .send()
                    .await
                    .map_err(|e| service("DescribeTable", "*", e))?;
                if status.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Ok(())
        }
        Err(error) => Err(service("DescribeTable", "*", error)),
    }
}
