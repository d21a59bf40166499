//! The sink that keeps a serving table up to date.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use weir_events::json::{FieldsJson, serialize_id};
use weir_events::{Event, Value};
use weir_sinks::{EventItem, KeptRecord, Sink, SinkCommit, SinkError, SinkFuture, SinkItem, SinkRecord, WriteReport};

use crate::store::{ServingStore, Upsert, UpsertOutcome};

/// How a serving table's documents are made from a commit: the key of each event and
/// the document stored for it, the same whichever store keeps the table (the embedded
/// [`ServingStore`] or DynamoDB).
///
/// The key of an event is the value of its field `key_field` (text, or an integer in
/// decimal), or its event key when no field is configured. An event without one cannot
/// be served: it is skipped with a warning; it stays in the lake and the warehouse. Raw
/// records and dead letters are not served.
///
/// The document is
/// `{"table","key","time","fields","lineage","source":{"id","stream","shard","seq"}}`,
/// with `time` in RFC 3339 and `fields` in weir's JSON form of events
/// (`{"$timestamp": …}` for timestamps, see `weir_events::json`).
#[derive(Debug, Clone)]
pub struct ServingDocuments {
    /// The sink's name, for messages.
    pub sink: String,
    /// The serving table's name, as `GET /v1/serving/{table}/{key}` has it.
    pub table: String,
    /// The field holding the key; `None`: the event's key.
    pub key_field: Option<String>,
}

/// A served document as stored: written straight from the event (no JSON value built in
/// between), members in this order.
#[derive(Serialize)]
struct Document<'a> {
    table: &'a str,
    key: &'a str,
    time: String,
    fields: FieldsJson<'a>,
    lineage: &'a str,
    source: Source<'a>,
}

/// Where a served document came from: the record's id, and its stream, shard and
/// position (numbers when JSON readers hold them exactly, as `id_to_json`).
#[derive(Serialize)]
struct Source<'a> {
    id: &'a str,
    stream: &'a str,
    #[serde(serialize_with = "serialize_id")]
    shard: &'a str,
    #[serde(serialize_with = "serialize_id")]
    seq: &'a str,
}

impl ServingDocuments {
    /// The serving key of `event`, or why it has none.
    fn key_of(&self, event: &Event) -> Result<String, String> {
        match &self.key_field {
            None => event.key.clone().filter(|k| !k.is_empty()).ok_or_else(|| "the event has no key".to_owned()),
            Some(field) => match event.fields.iter().find(|(name, _)| name.as_ref() == field.as_str()) {
                Some((_, Value::Text(text))) if !text.is_empty() => Ok(text.to_string()),
                Some((_, Value::Int(number))) => Ok(number.to_string()),
                Some((_, other)) => Err(format!("its key field {field} holds {other:?}, not text or an integer")),
                None => Err(format!("it has no field {field}")),
            },
        }
    }

    fn document(&self, commit: &SinkCommit, record: &SinkRecord, item: &EventItem, key: &str) -> Vec<u8> {
        let document = Document {
            table: &self.table,
            key,
            time: weir_events::time::format_rfc3339(item.event.time),
            fields: FieldsJson(&item.event.fields),
            lineage: &item.lineage,
            source: Source {
                id: &record.id,
                stream: commit.id.source(),
                shard: commit.id.part(),
                seq: &record.position,
            },
        };
        serde_json::to_vec(&document).unwrap_or_default()
    }

    /// The serving key `record` is kept under, if it is an event or aggregate with one
    /// ([`Sink::kept_key`]).
    pub fn kept_key(&self, record: &SinkRecord) -> Option<String> {
        let (SinkItem::Event(item) | SinkItem::Aggregate(item)) = &record.item else { return None };
        self.key_of(&item.event).ok()
    }

    /// The upsert of every event and aggregate of `commit` that has a key, each with its
    /// index in `commit.records`; and how many had none (each logged).
    pub fn upserts(&self, commit: &SinkCommit) -> (Vec<(usize, Upsert)>, u64) {
        let mut upserts = Vec::new();
        let mut skipped = 0;
        for (index, record) in commit.records.iter().enumerate() {
            let (SinkItem::Event(item) | SinkItem::Aggregate(item)) = &record.item else { continue };
            match self.key_of(&item.event) {
                Ok(key) => {
                    let body = self.document(commit, record, item, &key);
                    upserts.push((
                        index,
                        Upsert {
                            key,
                            time: item.event.time,
                            position: record.position.clone(),
                            body,
                            source: record.id.clone(),
                        },
                    ));
                }
                Err(why) => {
                    skipped += 1;
                    tracing::warn!(sink = %self.sink, record = %record.id, "not served: {why}");
                }
            }
        }
        (upserts, skipped)
    }
}

/// Upserts a stream's events (or aggregates) into one table of a [`ServingStore`], as
/// [`ServingDocuments`] makes them. Events without a key are counted
/// ([`ServingSink::skipped`]); raw records and dead letters are reported as written.
#[derive(Debug)]
pub struct ServingSink {
    documents: ServingDocuments,
    store: ServingStore,
    skipped: AtomicU64,
    stale: AtomicU64,
}

impl ServingSink {
    /// A sink named `name` writing `table` of `store`, keyed by `key_field` (or the event
    /// key when `None`).
    pub fn new(
        name: impl Into<String>,
        table: impl Into<String>,
        key_field: Option<String>,
        store: ServingStore,
    ) -> Self {
        Self {
            documents: ServingDocuments { sink: name.into(), table: table.into(), key_field },
            store,
            skipped: AtomicU64::new(0),
            stale: AtomicU64::new(0),
        }
    }

    /// The table written.
    pub fn table(&self) -> &str {
        &self.documents.table
    }

    /// Events skipped because they had no key.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Events ignored because a newer event's document was already stored.
    pub fn stale(&self) -> u64 {
        self.stale.load(Ordering::Relaxed)
    }

    async fn write_commit(&self, commit: &SinkCommit) -> Result<WriteReport, SinkError> {
        let (upserts, skipped) = self.documents.upserts(commit);
        self.skipped.fetch_add(skipped, Ordering::Relaxed);
        if upserts.is_empty() {
            return Ok(WriteReport::all_written());
        }
        let upserts: Vec<Upsert> = upserts.into_iter().map(|(_, upsert)| upsert).collect();
        let store = self.store.clone();
        let table = self.documents.table.clone();
        let outcomes = tokio::task::spawn_blocking(move || store.upsert(&table, &upserts))
            .await
            .map_err(|join| self.write_error(join.to_string().into()))?
            .map_err(|e| self.write_error(Box::new(e)))?;
        let stale = outcomes.iter().filter(|o| **o == UpsertOutcome::Stale).count();
        self.stale.fetch_add(stale as u64, Ordering::Relaxed);
        Ok(WriteReport::all_written())
    }

    fn write_error(&self, source: weir_sinks::BoxError) -> SinkError {
        SinkError::Write {
            sink: self.documents.sink.clone(),
            target: format!("serving table {}", self.documents.table),
            source,
        }
    }
}

impl Sink for ServingSink {
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
        Box::pin(async move {
            let (store, table, kept_owned) = (self.store.clone(), self.documents.table.clone(), kept.to_vec());
            tokio::task::spawn_blocking(move || store.remove_written_by(&table, &kept_owned))
                .await
                .map_err(|join| self.write_error(join.to_string().into()))?
                .map_err(|e| self.write_error(Box::new(e)))?;
            Ok(WriteReport::all_written())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use weir_events::Name;
    use weir_sinks::{CommitId, RawItem};

    use super::*;
    use crate::store::CacheSettings;

    fn order(id: &str, status: &str, time: i64) -> Event {
        let fields = vec![(Name::from("order_id"), Value::from(id)), (Name::from("status"), Value::from(status))];
        Event { key: Some("r-1".to_owned()), time, fields }
    }

    fn commit(first_seq: u64, events: Vec<Event>) -> SinkCommit {
        let mut records: Vec<SinkRecord> = events
            .into_iter()
            .enumerate()
            .map(|(i, event)| SinkRecord {
                id: format!("orders-0000-{}-0", first_seq + i as u64),
                position: (first_seq + i as u64).to_string(),
                item: SinkItem::Event(Arc::new(EventItem { event, lineage: "p@1".to_owned() })),
            })
            .collect();
        let raw = RawItem { partition_key: None, content_type: "text/plain".to_owned(), arrival_time: 0, data: vec![] };
        records.push(SinkRecord { id: "raw".to_owned(), position: first_seq.to_string(), item: SinkItem::Raw(raw) });
        let last_seq = first_seq + records.len() as u64;
        let id = CommitId::log_range("orders", "0", &first_seq.to_string(), &last_seq.to_string());
        SinkCommit { id, arrival_time: 0, records }
    }

    fn status(store: &ServingStore, key: &str) -> Option<String> {
        let doc = store.read("orders", key).unwrap()?;
        let json: serde_json::Value = serde_json::from_slice(&doc.body).unwrap();
        Some(json["fields"]["status"].as_str().unwrap().to_owned())
    }

    #[test]
    fn a_document_is_the_event_with_its_table_key_lineage_and_source_in_a_fixed_order() {
        let mut event = order("o-1", "placed", 1_764_150_900_000_000);
        event.fields.push((Name::from("total"), Value::Float(23.5)));
        let commit = commit(12, vec![event]);
        let documents = ServingDocuments { sink: "s".into(), table: "orders".into(), key_field: None };
        let (upserts, skipped) = documents.upserts(&commit);
        assert_eq!((upserts.len(), skipped), (1, 0));
        assert_eq!(
            String::from_utf8(upserts[0].1.body.clone()).unwrap(),
            concat!(
                r#"{"table":"orders","key":"r-1","time":"2025-11-26T09:55:00Z","#,
                r#""fields":{"order_id":"o-1","status":"placed","total":23.5},"lineage":"p@1","#,
                r#""source":{"id":"orders-0000-12-0","stream":"orders","shard":0,"seq":12}}"#
            )
        );
    }

    #[tokio::test]
    async fn keeps_the_newest_status_per_order_and_skips_events_without_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = ServingStore::open(&dir.path().join("s.redb"), CacheSettings::default()).unwrap();
        let sink = ServingSink::new("order-status", "orders", Some("order_id".to_owned()), store.clone());
        let mut keyless = order("x", "placed", 5);
        keyless.fields.remove(0);
        let first = commit(1, vec![order("o-1", "placed", 10), order("o-2", "placed", 10), keyless]);
        assert!(sink.write(&first).await.unwrap().is_complete());
        // A later commit carrying an older event for o-1 and a newer one for o-2.
        let second = commit(10, vec![order("o-2", "delivered", 30), order("o-1", "created", 5)]);
        assert!(sink.write(&second).await.unwrap().is_complete());
        assert_eq!(status(&store, "o-1").as_deref(), Some("placed"));
        assert_eq!(status(&store, "o-2").as_deref(), Some("delivered"));
        assert_eq!((sink.skipped(), sink.stale()), (1, 1));
        assert_eq!(store.count("orders").unwrap(), 2);

        let doc = store.read("orders", "o-2").unwrap().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&doc.body).unwrap();
        assert_eq!(json["key"], "o-2");
        assert_eq!(json["lineage"], "p@1");
        assert_eq!(json["source"]["seq"], 10);
        assert_eq!(json["time"], weir_events::time::format_rfc3339(30));
        let _ = Arc::new(sink);
    }
}
