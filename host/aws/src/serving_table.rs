//! A serving table in DynamoDB: the newest document per key, written by
//! [`DynamoServingSink`] and read by [`DynamoServingTable::get`] (through the host's
//! cache, in the read API).
//!
//! # Items
//!
//! One item per serving key: `key` (string, the partition key), `doc` (the document
//! [`ServingDocuments`] makes, as JSON text — the same document the embedded store
//! serves), `event_time` (number, µs) and `position` (the log position, zero-padded to
//! [`MAX_POSITION_DIGITS`] digits so that DynamoDB compares positions as text in the same
//! order as the integers they are) and `source_id` (the id of the record the document
//! comes from: a batch rerun removes a key the run it replaces wrote only while the item
//! still comes from that run's record, with a conditional `DeleteItem`).
//!
//! # The newest event wins
//!
//! `write_mode = "conditional"` (the default) writes each key with `PutItem` conditioned
//! on the stored version being older or the same — `attribute_not_exists(key) OR
//! event_time < :t OR (event_time = :t AND position <= :p)` — so an older event never
//! overwrites a newer one, whichever host or shard writes it; a failed condition is
//! *stale*, counted and not an error; a replay writes the same version again. DynamoDB's
//! `BatchWriteItem` takes no conditions, so this mode sends one request per key (up to
//! [`CONCURRENT_PUTS`] at a time).
//!
//! `write_mode = "batch"` sends `BatchWriteItem` requests of at most
//! [`MAX_BATCH_WRITE_ITEMS`] items (retrying `UnprocessedItems` with jittered backoff)
//! after reading the stored versions with `BatchGetItem` and leaving out the stale events:
//! fewer requests, and the newest event wins as long as one writer writes a key at a time
//! (a key's events on one shard, partitioned by the serving key). Two hosts writing one
//! key at the same moment may interleave between the read and the write; use the
//! conditional mode when that can happen.
//!
//! In both modes a commit is first reduced to the newest event per key, and an item over
//! DynamoDB's 400 KB limit is rejected (dead-lettered with the reason) before anything is
//! sent.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue as Av, KeyType, PutRequest, WriteRequest};
use bytes::Bytes;
use tokio::sync::OnceCell;
use weir_log::MAX_POSITION_DIGITS;
use weir_serving::{DocumentCache, ServingDocuments, StoredDocument, Upsert};
use weir_sinks::{
    KeptRecord, PrepareFuture, Sink, SinkCommit, SinkError, SinkFuture, SinkRecord, WriteReport, compare_positions,
};

/// Items per `BatchWriteItem` request, at most (DynamoDB's limit).
pub const MAX_BATCH_WRITE_ITEMS: usize = 25;
/// Keys per `BatchGetItem` request, at most (DynamoDB's limit).
pub const MAX_BATCH_GET_KEYS: usize = 100;
/// Bytes of an item, at most (DynamoDB's limit: 400 KB, attribute names included).
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// Bytes of a partition key, at most (DynamoDB's limit); a longer key is rejected.
pub const MAX_KEY_BYTES: usize = 2048;
/// Conditional `PutItem` requests in flight per commit, at most.
pub const CONCURRENT_PUTS: usize = 16;
/// How many times a `BatchWriteItem`'s unprocessed items are sent again within one write
/// before they are reported failed (and retried by delivery).
const UNPROCESSED_ROUNDS: u32 = 8;

/// The attribute names of an item.
const KEY: &str = "key";
const DOC: &str = "doc";
const EVENT_TIME: &str = "event_time";
const POSITION: &str = "position";
/// The id of the record the document comes from (its `source.id`), so that removing a
/// kept record can be conditioned on it still being the one stored.
const SOURCE_ID: &str = "source_id";

/// How a [`DynamoServingSink`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DynamoWriteMode {
    /// One conditional `PutItem` per key: the newest event wins, atomically.
    #[default]
    Conditional,
    /// `BatchWriteItem` after a `BatchGetItem` version check.
    Batch,
}

/// Where a DynamoDB serving table is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DynamoServingSettings {
    /// The DynamoDB table's name.
    pub table: String,
    /// The region; `None`: the standard chain's.
    pub region: Option<String>,
    /// DynamoDB's endpoint; `None`: AWS's for the region.
    pub endpoint: Option<String>,
    /// Create the table (on-demand capacity, string key `key`) when it is missing.
    pub create_table: bool,
    /// How writes are sent.
    pub write_mode: DynamoWriteMode,
}

/// A DynamoDB table holding a serving table: its client, made on first use.
#[derive(Debug)]
pub struct DynamoServingTable {
    settings: DynamoServingSettings,
    static_credentials: Option<(String, String)>,
    client: OnceCell<Client>,
}

impl DynamoServingTable {
    /// The table `settings` describe, with credentials from the standard AWS chain, else
    /// `static_credentials` (for local servers).
    pub fn new(settings: DynamoServingSettings, static_credentials: Option<(String, String)>) -> Self {
        Self { settings, static_credentials, client: OnceCell::new() }
    }

    /// Its settings.
    pub fn settings(&self) -> &DynamoServingSettings {
        &self.settings
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let sdk = crate::sdk_config(self.settings.region.as_deref(), self.static_credentials.as_ref()).await;
                let mut config = aws_sdk_dynamodb::config::Builder::from(&sdk);
                if let Some(endpoint) = &self.settings.endpoint {
                    config = config.endpoint_url(endpoint);
                }
                Client::from_conf(config.build())
            })
            .await
    }

    /// Creates the table when missing (if allowed) and checks its key.
    ///
    /// # Errors
    /// DynamoDB refused or cannot be reached; the table has another key; it is missing
    /// and may not be created.
    pub async fn open(&self) -> Result<(), String> {
        let client = self.client().await;
        crate::tables::ensure_table(
            client,
            &self.settings.table,
            &[(KEY, KeyType::Hash)],
            "a serving table",
            self.settings.create_table,
        )
        .await
        .map_err(|e| e.to_string())
    }

    /// The stored document of `key` (a strongly consistent read).
    ///
    /// # Errors
    /// DynamoDB refused or cannot be reached; the item is not one weir wrote.
    pub async fn get(&self, key: &str) -> Result<Option<StoredDocument>, String> {
        // No item has a key DynamoDB would refuse (empty, or over its limit).
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Ok(None);
        }
        let found = self
            .client()
            .await
            .get_item()
            .table_name(&self.settings.table)
            .key(KEY, Av::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| {
                format!("DynamoDB table {}: GetItem failed: {}", self.settings.table, DisplayErrorContext(e))
            })?;
        let Some(item) = found.item() else { return Ok(None) };
        decode(item).map(Some).ok_or_else(|| {
            format!(
                "DynamoDB table {}: the item of key {key:?} lacks weir's attributes ({DOC}, {EVENT_TIME}, {POSITION}); is another program writing this table?",
                self.settings.table
            )
        })
    }
}

fn padded(position: &str) -> String {
    format!("{position:0>MAX_POSITION_DIGITS$}")
}

fn decode(item: &HashMap<String, Av>) -> Option<StoredDocument> {
    let body = item.get(DOC)?.as_s().ok()?;
    let time = item.get(EVENT_TIME)?.as_n().ok()?.parse().ok()?;
    let position = item.get(POSITION)?.as_s().ok()?.trim_start_matches('0');
    let position = if position.is_empty() { "0" } else { position };
    Some(StoredDocument { time, position: position.to_owned(), body: Bytes::from(body.clone()) })
}

fn item_of(upsert: &Upsert) -> HashMap<String, Av> {
    HashMap::from([
        (KEY.to_owned(), Av::S(upsert.key.clone())),
        (DOC.to_owned(), Av::S(String::from_utf8_lossy(&upsert.body).into_owned())),
        (EVENT_TIME.to_owned(), Av::N(upsert.time.to_string())),
        (POSITION.to_owned(), Av::S(padded(&upsert.position))),
        (SOURCE_ID.to_owned(), Av::S(upsert.source.clone())),
    ])
}

/// The size DynamoDB counts for an item: attribute names and values.
fn item_bytes(upsert: &Upsert) -> usize {
    KEY.len()
        + DOC.len()
        + EVENT_TIME.len()
        + POSITION.len()
        + SOURCE_ID.len()
        + upsert.source.len()
        + upsert.key.len()
        + upsert.body.len()
        + 21
        + MAX_POSITION_DIGITS
}

/// Whether `upsert` is not older than the stored version `(time, position)`.
fn not_older(upsert: &Upsert, time: i64, position: &str) -> bool {
    upsert.time.cmp(&time).then_with(|| compare_positions(&upsert.position, position)).is_ge()
}

/// What one key's write came to.
enum Outcome {
    Written,
    Stale,
    Failed(String),
}

/// Upserts a stream's events (or aggregates) into a DynamoDB serving table, as
/// [`ServingDocuments`] makes them (see the module docs for how the newest event wins).
/// Writes of this host refresh its `cache`, so its reads see them at once; other hosts
/// see them when their cached entry expires.
#[derive(Debug)]
pub struct DynamoServingSink {
    documents: ServingDocuments,
    table: Arc<DynamoServingTable>,
    cache: DocumentCache,
    stale: AtomicU64,
    skipped: AtomicU64,
}

impl DynamoServingSink {
    /// A sink writing `documents` into `table`, refreshing `cache`.
    pub fn new(documents: ServingDocuments, table: Arc<DynamoServingTable>, cache: DocumentCache) -> Self {
        Self { documents, table, cache, stale: AtomicU64::new(0), skipped: AtomicU64::new(0) }
    }

    /// Events not written because a newer event of their key was stored (or in the same
    /// commit).
    pub fn stale(&self) -> u64 {
        self.stale.load(Ordering::Relaxed)
    }

    /// Events skipped because they had no key.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    fn target(&self) -> String {
        format!("DynamoDB table {}", self.table.settings.table)
    }

    async fn write_commit(&self, commit: &SinkCommit) -> Result<WriteReport, SinkError> {
        let (upserts, skipped) = self.documents.upserts(commit);
        self.skipped.fetch_add(skipped, Ordering::Relaxed);
        let mut report = WriteReport::all_written();
        // The newest event per key; the older ones of the commit are stale already.
        let mut newest: HashMap<String, (usize, Upsert)> = HashMap::new();
        for (index, upsert) in upserts {
            if upsert.key.len() > MAX_KEY_BYTES {
                let why = format!(
                    "its serving key is {} bytes, over DynamoDB's partition key limit of {MAX_KEY_BYTES}; key the table by a shorter field ({})",
                    upsert.key.len(),
                    self.target()
                );
                report.rejected.push((index, why));
                continue;
            }
            if item_bytes(&upsert) > MAX_ITEM_BYTES {
                let why = format!(
                    "the serving document of key {:?} is {} bytes, over DynamoDB's item limit of 400 KB; serve fewer fields (a plugin can drop them) or keep this stream out of {}",
                    upsert.key,
                    upsert.body.len(),
                    self.target()
                );
                report.rejected.push((index, why));
                continue;
            }
            match newest.get(&upsert.key) {
                Some((_, kept)) if !not_older(&upsert, kept.time, &kept.position) => {
                    self.stale.fetch_add(1, Ordering::Relaxed);
                }
                Some(_) => {
                    self.stale.fetch_add(1, Ordering::Relaxed);
                    newest.insert(upsert.key.clone(), (index, upsert));
                }
                None => {
                    newest.insert(upsert.key.clone(), (index, upsert));
                }
            }
        }
        let mut writes: Vec<(usize, Upsert)> = newest.into_values().collect();
        writes.sort_by_key(|(index, _)| *index);
        if writes.is_empty() {
            return Ok(report);
        }
        let outcomes = match self.table.settings.write_mode {
            DynamoWriteMode::Conditional => self.put_conditionally(&writes).await,
            DynamoWriteMode::Batch => self.write_batches(&writes).await?,
        };
        for ((index, upsert), outcome) in writes.into_iter().zip(outcomes) {
            match outcome {
                Outcome::Written => {
                    // Filled, not only refreshed as the embedded store's writes do: a
                    // lookup whose GetItem was in flight keeps a newer cached document
                    // (DynamoReader::lookup), which needs the write's document cached.
                    let document =
                        StoredDocument { time: upsert.time, position: upsert.position, body: upsert.body.into() };
                    self.cache.insert(&self.documents.table, &upsert.key, Some(Arc::new(document)));
                }
                Outcome::Stale => {
                    self.stale.fetch_add(1, Ordering::Relaxed);
                    // What is stored is newer than this event: a cached answer older than
                    // it (or a cached absence) is out of date, a newer one still holds.
                    let cached = self.cache.get(&self.documents.table, &upsert.key);
                    let still_newest =
                        matches!(&cached, Some(Some(doc)) if !not_older(&upsert, doc.time, &doc.position));
                    if !still_newest {
                        self.cache.invalidate(&self.documents.table, &upsert.key);
                    }
                }
                Outcome::Failed(why) => report.failed.push((index, why)),
            }
        }
        Ok(report)
    }

    /// One `DeleteItem` per kept key, conditioned on the item still coming from the kept
    /// record (`source_id`), [`CONCURRENT_PUTS`] at a time. A failed condition — a newer
    /// write, no item, or an item written before items carried `source_id` — leaves the
    /// item and is not an error.
    async fn remove_kept(&self, kept: &[KeptRecord]) -> Result<WriteReport, SinkError> {
        let client = self.table.client().await.clone();
        let table = self.table.settings.table.clone();
        let mut report = WriteReport::all_written();
        for (group_number, group) in kept.chunks(CONCURRENT_PUTS).enumerate() {
            let mut deletes = tokio::task::JoinSet::new();
            for (slot, record) in group.iter().enumerate() {
                let request = client
                    .delete_item()
                    .table_name(&table)
                    .key(KEY, Av::S(record.key.clone()))
                    .condition_expression("#source = :source")
                    .expression_attribute_names("#source", SOURCE_ID)
                    .expression_attribute_values(":source", Av::S(record.record.clone()));
                deletes.spawn(async move { (slot, request.send().await) });
            }
            let mut done = vec![false; group.len()];
            while let Some(joined) = deletes.join_next().await {
                let Ok((slot, result)) = joined else { continue };
                let index = group_number * CONCURRENT_PUTS + slot;
                match result {
                    Ok(_) => self.cache.invalidate(&self.documents.table, &kept[index].key),
                    Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                    Err(e) => report.failed.push((index, format!("DeleteItem failed: {}", DisplayErrorContext(e)))),
                }
                done[slot] = true;
            }
            for (slot, _) in done.iter().enumerate().filter(|(_, done)| !**done) {
                report
                    .failed
                    .push((group_number * CONCURRENT_PUTS + slot, "the DeleteItem task did not complete".into()));
            }
        }
        Ok(report)
    }

    /// One conditional `PutItem` per key, [`CONCURRENT_PUTS`] at a time.
    async fn put_conditionally(&self, writes: &[(usize, Upsert)]) -> Vec<Outcome> {
        let client = self.table.client().await.clone();
        let table = self.table.settings.table.clone();
        let mut outcomes = Vec::with_capacity(writes.len());
        for group in writes.chunks(CONCURRENT_PUTS) {
            let mut puts = tokio::task::JoinSet::new();
            for (slot, (_, upsert)) in group.iter().enumerate() {
                let request = client
                    .put_item()
                    .table_name(&table)
                    .set_item(Some(item_of(upsert)))
                    .condition_expression(
                        "attribute_not_exists(#key) OR #time < :time OR (#time = :time AND #position <= :position)",
                    )
                    .expression_attribute_names("#key", KEY)
                    .expression_attribute_names("#time", EVENT_TIME)
                    .expression_attribute_names("#position", POSITION)
                    .expression_attribute_values(":time", Av::N(upsert.time.to_string()))
                    .expression_attribute_values(":position", Av::S(padded(&upsert.position)));
                puts.spawn(async move { (slot, request.send().await) });
            }
            let mut group_outcomes: Vec<Option<Outcome>> = (0..group.len()).map(|_| None).collect();
            while let Some(joined) = puts.join_next().await {
                let Ok((slot, result)) = joined else { continue };
                group_outcomes[slot] = Some(match result {
                    Ok(_) => Outcome::Written,
                    Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                        Outcome::Stale
                    }
                    Err(e) => Outcome::Failed(format!("PutItem failed: {}", DisplayErrorContext(e))),
                });
            }
            outcomes.extend(
                group_outcomes
                    .into_iter()
                    .map(|o| o.unwrap_or_else(|| Outcome::Failed("the PutItem task did not complete".to_owned()))),
            );
        }
        outcomes
    }

    /// `BatchGetItem` of the stored versions, then `BatchWriteItem` of the keys not
    /// stale, [`MAX_BATCH_WRITE_ITEMS`] at a time, unprocessed items sent again.
    async fn write_batches(&self, writes: &[(usize, Upsert)]) -> Result<Vec<Outcome>, SinkError> {
        let stored = self.stored_versions(writes).await?;
        let mut outcomes: Vec<Outcome> = writes
            .iter()
            .map(|(_, upsert)| match stored.get(&upsert.key) {
                Some((time, position)) if !not_older(upsert, *time, position) => Outcome::Stale,
                _ => Outcome::Written,
            })
            .collect();
        let to_write: Vec<usize> = (0..writes.len()).filter(|&i| matches!(outcomes[i], Outcome::Written)).collect();
        let client = self.table.client().await;
        let table = &self.table.settings.table;
        for chunk in to_write.chunks(MAX_BATCH_WRITE_ITEMS) {
            let by_key: HashMap<&str, usize> = chunk.iter().map(|&i| (writes[i].1.key.as_str(), i)).collect();
            let mut pending: Vec<WriteRequest> = Vec::with_capacity(chunk.len());
            for &i in chunk {
                let put = PutRequest::builder().set_item(Some(item_of(&writes[i].1))).build().map_err(|e| {
                    SinkError::Encode {
                        sink: self.documents.sink.clone(),
                        target: self.target(),
                        message: e.to_string(),
                    }
                })?;
                pending.push(WriteRequest::builder().put_request(put).build());
            }
            let mut round = 0;
            while !pending.is_empty() {
                if round > 0 {
                    tokio::time::sleep(crate::backoff(round - 1, Duration::from_millis(50), Duration::from_secs(2)))
                        .await;
                }
                if round == UNPROCESSED_ROUNDS {
                    break;
                }
                round += 1;
                let sent = std::mem::take(&mut pending);
                match client.batch_write_item().request_items(table, sent.clone()).send().await {
                    Ok(answer) => {
                        pending = answer
                            .unprocessed_items()
                            .and_then(|unprocessed| unprocessed.get(table))
                            .cloned()
                            .unwrap_or_default();
                        if !pending.is_empty() {
                            tracing::debug!(sink = %self.documents.sink, unprocessed = pending.len(), "BatchWriteItem left items unprocessed; sending them again");
                        }
                    }
                    Err(e) => {
                        let why = format!("BatchWriteItem failed: {}", DisplayErrorContext(e));
                        for request in &sent {
                            if let Some(&i) = key_of_request(request).and_then(|key| by_key.get(key)) {
                                outcomes[i] = Outcome::Failed(why.clone());
                            }
                        }
                    }
                }
            }
            for request in &pending {
                if let Some(&i) = key_of_request(request).and_then(|key| by_key.get(key)) {
                    outcomes[i] = Outcome::Failed(format!(
                        "DynamoDB left the item unprocessed {UNPROCESSED_ROUNDS} times (throttled)"
                    ));
                }
            }
        }
        Ok(outcomes)
    }

    /// The stored `(event_time, position)` of the keys of `writes`, by key.
    async fn stored_versions(&self, writes: &[(usize, Upsert)]) -> Result<HashMap<String, (i64, String)>, SinkError> {
        let how = crate::tables::BatchGet {
            consistent: true,
            attributes: &[KEY, EVENT_TIME, POSITION],
            backoff: (Duration::from_millis(50), Duration::from_secs(2)),
            max_rounds: Some(UNPROCESSED_ROUNDS),
        };
        let keys = writes.iter().map(|(_, upsert)| upsert.key.clone());
        let client = self.table.client().await;
        let items = crate::tables::batch_get(client, &self.table.settings.table, KEY, keys, &how)
            .await
            .map_err(|why| self.write_error(why))?;
        let mut versions = HashMap::new();
        for item in &items {
            let key = item.get(KEY).and_then(|v| v.as_s().ok());
            let time = item.get(EVENT_TIME).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok());
            let position = item.get(POSITION).and_then(|v| v.as_s().ok());
            if let (Some(key), Some(time), Some(position)) = (key, time, position) {
                versions.insert(key.clone(), (time, position.trim_start_matches('0').to_owned()));
            }
        }
        Ok(versions)
    }

    fn write_error(&self, why: String) -> SinkError {
        SinkError::Write { sink: self.documents.sink.clone(), target: self.target(), source: why.into() }
    }
}

fn key_of_request(request: &WriteRequest) -> Option<&str> {
    request.put_request()?.item().get(KEY)?.as_s().ok().map(String::as_str)
}

impl Sink for DynamoServingSink {
    fn name(&self) -> &str {
        &self.documents.sink
    }

    fn write<'a>(&'a self, commit: &'a SinkCommit) -> SinkFuture<'a> {
        Box::pin(self.write_commit(commit))
    }

    fn kept_key(&self, record: &SinkRecord) -> Option<String> {
        self.documents.kept_key(record)
    }

    fn remove<'a>(&'a self, kept: &'a [KeptRecord]) -> SinkFuture<'a> {
        Box::pin(self.remove_kept(kept))
    }

    fn prepare(&self) -> PrepareFuture<'_> {
        Box::pin(async move {
            self.table.open().await.map_err(|why| SinkError::Open {
                sink: self.documents.sink.clone(),
                location: self.target(),
                source: why.into(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert(key: &str, time: i64, position: &str) -> Upsert {
        Upsert {
            key: key.to_owned(),
            time,
            position: position.to_owned(),
            body: b"{}".to_vec(),
            source: "daily-run-0".to_owned(),
        }
    }

    #[test]
    fn padded_positions_order_as_the_integers_they_are() {
        let positions = ["9", "10", "99", "100", "49590338271490256608559692538361571095921575989136588898"];
        for pair in positions.windows(2) {
            assert!(padded(pair[0]) < padded(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        let item = item_of(&upsert("k", 5, "42"));
        assert_eq!(decode(&item).unwrap().position, "42");
        assert_eq!(decode(&item_of(&upsert("k", 5, "0"))).unwrap().position, "0");
    }

    #[test]
    fn a_version_is_older_by_time_then_by_position() {
        assert!(not_older(&upsert("k", 5, "10"), 5, "9"));
        assert!(not_older(&upsert("k", 5, "10"), 5, "10"));
        assert!(!not_older(&upsert("k", 5, "9"), 5, "10"));
        assert!(!not_older(&upsert("k", 4, "99"), 5, "1"));
    }
}
