//! DynamoDB tables: creating the ones weir needs when they are missing (checkpoints, the
//! registry, serving tables), and reading items by key in batches.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, KeysAndAttributes,
    ScalarAttributeType, TableStatus,
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

/// How [`batch_get`] reads and resends.
pub(crate) struct BatchGet<'a> {
    /// Strongly consistent reads.
    pub consistent: bool,
    /// Only these attributes (all when empty).
    pub attributes: &'a [&'a str],
    /// The wait before the first resend of unprocessed keys, doubled after each, and the
    /// longest wait.
    pub backoff: (std::time::Duration, std::time::Duration),
    /// Rounds after which keys still unprocessed fail the read; `None`: no bound (the
    /// caller bounds the time).
    pub max_rounds: Option<u32>,
}

/// The items of `table` whose string partition key `key_attribute` is one of `keys`,
/// read with `BatchGetItem` (at most 100 keys per request, DynamoDB's limit), the keys
/// DynamoDB leaves unprocessed sent again with jittered backoff; absent keys have no item.
///
/// # Errors
/// A request failed, or keys were still unprocessed after `max_rounds`; the message names
/// the table.
pub(crate) async fn batch_get(
    client: &Client,
    table: &str,
    key_attribute: &str,
    keys: impl IntoIterator<Item = String>,
    how: &BatchGet<'_>,
) -> Result<Vec<std::collections::HashMap<String, AttributeValue>>, String> {
    let keys: Vec<std::collections::HashMap<String, AttributeValue>> = keys
        .into_iter()
        .map(|key| std::collections::HashMap::from([(key_attribute.to_owned(), AttributeValue::S(key))]))
        .collect();
    let mut items = Vec::new();
    for chunk in keys.chunks(crate::MAX_BATCH_GET_KEYS) {
        let mut pending = chunk.to_vec();
        let mut round = 0;
        while !pending.is_empty() {
            if how.max_rounds.is_some_and(|max| round == max) {
                return Err(format!(
                    "DynamoDB table {table}: BatchGetItem left keys unprocessed {round} times (throttled)"
                ));
            }
            if round > 0 {
                tokio::time::sleep(crate::backoff(round - 1, how.backoff.0, how.backoff.1)).await;
            }
            round += 1;
            let mut request = KeysAndAttributes::builder().set_keys(Some(std::mem::take(&mut pending)));
            if how.consistent {
                request = request.consistent_read(true);
            }
            if !how.attributes.is_empty() {
                let names: Vec<String> = (0..how.attributes.len()).map(|i| format!("#a{i}")).collect();
                request = request.projection_expression(names.join(", "));
                for (name, attribute) in names.iter().zip(how.attributes) {
                    request = request.expression_attribute_names(name, *attribute);
                }
            }
            let request = request.build().map_err(|e| format!("DynamoDB table {table}: {e}"))?;
            let answer = client.batch_get_item().request_items(table, request).send().await.map_err(|e| {
                format!(
                    "DynamoDB table {table}: BatchGetItem failed: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(e)
                )
            })?;
            items.extend(answer.responses().and_then(|r| r.get(table)).into_iter().flatten().cloned());
            pending = answer
                .unprocessed_keys()
                .and_then(|unprocessed| unprocessed.get(table))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
        }
    }
    Ok(items)
}
