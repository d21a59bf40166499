//! The data lake: raw archive (NDJSON), events and aggregates (Parquet) in an object store.

use std::path::Path as FsPath;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;

use crate::error::SinkError;
use crate::layout::{LakeObject, put_object};
use crate::ndjson::{Payload, RawLine, push_line};
use crate::sink::{EventItem, Sink, SinkCommit, SinkFuture, SinkItem, SinkRecord, WriteReport};
use crate::table;

/// Writes the raw archive, events and aggregates of each commit to an object store (the
/// local filesystem by default, S3 later through the same [`ObjectStore`] trait).
///
/// Per commit it writes at most three objects, one per kind present, at the keys of
/// [`LakeObject::Raw`], [`LakeObject::Events`] and [`LakeObject::Aggregates`]:
///
/// - `raw/stream=<s>/date=<d>/shard=<n>/<first>-<last>.ndjson`: one line per raw record,
///   `{"id","stream","shard","seq","key","content_type","arrival_time","data"}` with
///   `data` the payload as text when it is valid UTF-8, else `data_base64` instead;
/// - `events/…/<first>-<last>.parquet` and `aggregates/…/<first>-<last>.parquet`: one row
///   per event (see the crate docs for the columns and the type mapping).
///
/// Each object is written with a single `put`, all or nothing; when one fails, the
/// records of that object are reported failed (and rewritten whole on the retry).
/// Because a key depends only on the commit's stream, shard, range and arrival date, a
/// replay of the same range overwrites the same objects instead of adding duplicates.
///
/// Dead letters are left to the [`DeadLetterSink`](crate::DeadLetterSink) and reported
/// as written.
#[derive(Debug, Clone)]
pub struct LakeSink {
    name: String,
    store: Arc<dyn ObjectStore>,
}

impl LakeSink {
    /// A lake named `name` in `store`.
    pub fn new(name: impl Into<String>, store: Arc<dyn ObjectStore>) -> Self {
        Self { name: name.into(), store }
    }

    /// A lake named `name` (as in the configuration; it names the sink in logs and
    /// errors) in the directory `root` (created if missing). Writes are fsynced before
    /// they are acknowledged.
    ///
    /// # Errors
    /// [`SinkError::Open`] when the directory cannot be created or used.
    pub fn local(name: &str, root: &FsPath) -> Result<Self, SinkError> {
        Ok(Self::new(name, local_store(name, root)?))
    }

    /// The object store written to.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    async fn write_commit(&self, commit: &SinkCommit) -> Result<WriteReport, SinkError> {
        let mut raw = Vec::new();
        let mut events = Vec::new();
        let mut aggregates = Vec::new();
        for (i, record) in commit.records.iter().enumerate() {
            match &record.item {
                SinkItem::Raw(_) => raw.push(i),
                SinkItem::Event(item) => events.push((i, record, item)),
                SinkItem::Aggregate(item) => aggregates.push((i, record, item)),
                SinkItem::DeadLetter(_) => {}
            }
        }

        let mut objects: [Option<Object>; 3] = [None, None, None];
        if !raw.is_empty() {
            let key = LakeObject::Raw.key(commit);
            let bytes = raw_archive(commit, &raw).map_err(|message| self.encode_error(&key, message))?;
            objects[0] = Some(Object { key, indices: raw, bytes });
        }
        for (slot, kind, rows) in [(1, LakeObject::Events, events), (2, LakeObject::Aggregates, aggregates)] {
            if rows.is_empty() {
                continue;
            }
            let key = kind.key(commit);
            let table: Vec<(&SinkRecord, &EventItem)> = rows.iter().map(|&(_, r, e)| (r, e)).collect();
            let bytes = table::parquet_file(&table).map_err(|message| self.encode_error(&key, message))?;
            objects[slot] = Some(Object { key, indices: rows.iter().map(|&(i, _, _)| i).collect(), bytes });
        }

        // The (up to three) puts run concurrently.
        let [raw, events, aggregates] = objects;
        let (raw, events, aggregates) = tokio::join!(self.put(raw), self.put(events), self.put(aggregates));
        let mut report = WriteReport::all_written();
        for failed in [raw, events, aggregates] {
            report.failed.extend(failed);
        }
        report.failed.sort_unstable_by_key(|(i, _)| *i);
        Ok(report)
    }

    /// Puts `object`, if any; returns its records as failed when the put fails.
    async fn put(&self, object: Option<Object>) -> Vec<(usize, String)> {
        let Some(Object { key, indices, bytes }) = object else { return Vec::new() };
        let size = bytes.len();
        match put_object(&self.name, self.store.as_ref(), &key, bytes).await {
            Ok(()) => {
                tracing::debug!(sink = %self.name, %key, records = indices.len(), bytes = size, "lake object written");
                Vec::new()
            }
            Err(error) => {
                let why = error.to_string();
                indices.into_iter().map(|i| (i, why.clone())).collect()
            }
        }
    }

    fn encode_error(&self, key: &object_store::path::Path, message: String) -> SinkError {
        SinkError::Encode { sink: self.name.clone(), target: key.to_string(), message }
    }
}

impl Sink for LakeSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn write<'a>(&'a self, commit: &'a SinkCommit) -> SinkFuture<'a> {
        Box::pin(self.write_commit(commit))
    }
}

/// One object to write and the records it holds.
struct Object {
    key: object_store::path::Path,
    indices: Vec<usize>,
    bytes: Vec<u8>,
}

/// The NDJSON raw archive of the records at `indices` (all [`SinkItem::Raw`]).
fn raw_archive(commit: &SinkCommit, indices: &[usize]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for &i in indices {
        push_raw_line(&mut out, commit, &commit.records[i])?;
    }
    Ok(out)
}

/// Appends `record`'s line of the raw archive (with its `\n`) to `out`, as the lake
/// writes it: `{"id","stream","shard","seq","key","content_type","arrival_time","data"}`
/// (`data_base64` instead of `data` for a payload that is not UTF-8). Other kinds of
/// records append nothing. The Firehose archive sends the same lines, so a reader of
/// either drops duplicates by `id`.
///
/// # Errors
/// The line cannot be encoded.
pub fn push_raw_line(out: &mut Vec<u8>, commit: &SinkCommit, record: &SinkRecord) -> Result<(), String> {
    let SinkItem::Raw(raw) = &record.item else { return Ok(()) };
    let payload = Payload::of(&raw.data);
    let line = RawLine {
        id: &record.id,
        stream: commit.id.source(),
        shard: commit.id.part(),
        seq: &record.position,
        key: raw.partition_key.as_deref(),
        content_type: &raw.content_type,
        arrival_time: weir_events::time::format_rfc3339(raw.arrival_time),
        data: payload.text,
        data_base64: payload.base64,
    };
    push_line(out, &line)
}

/// A [`LocalFileSystem`] rooted at `root` (created if missing), fsyncing writes, for the
/// sink named `sink`.
///
/// # Errors
/// [`SinkError::Open`] when the directory cannot be created or used.
pub fn local_store(sink: &str, root: &FsPath) -> Result<Arc<dyn ObjectStore>, SinkError> {
    let open_error = |source: crate::error::BoxError| SinkError::Open {
        sink: sink.to_owned(),
        location: root.display().to_string(),
        source,
    };
    std::fs::create_dir_all(root).map_err(|e| open_error(Box::new(e)))?;
    let store = LocalFileSystem::new_with_prefix(root).map_err(|e| open_error(Box::new(e)))?;
    Ok(Arc::new(crate::synced_store::SyncedLocalStore::new(store)))
}
