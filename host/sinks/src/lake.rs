//! The data lake: raw archive (NDJSON), events and aggregates (Parquet) in an object store.

use std::path::Path as FsPath;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;

use crate::error::SinkError;
use crate::layout::{LakeObject, put_object};
use crate::ndjson::{Payload, RawLine, push_line};
use crate::rolling::{RollPolicy, Roller};
use crate::sink::{EventItem, PrepareFuture, Sink, SinkCommit, SinkFuture, SinkItem, SinkRecord, WriteReport};
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
///
/// With [`LakeSink::rolling`], a stream's commits are staged and rolled into one object
/// per kind, stream, date and shard by size and time (see [`crate::rolling`]).
#[derive(Debug, Clone)]
pub struct LakeSink {
    name: String,
    store: Arc<dyn ObjectStore>,
    roller: Option<Arc<Roller>>,
    /// Whether other hosts may write to the same store (a lake on S3).
    shared: bool,
}

impl LakeSink {
    /// A lake named `name` in `store`, one object per commit and kind.
    pub fn new(name: impl Into<String>, store: Arc<dyn ObjectStore>) -> Self {
        Self { name: name.into(), store, roller: None, shared: false }
    }

    /// A lake named `name` in `store` whose stream commits are rolled by `policy`. The
    /// rolling starts with [`Sink::prepare`] (which takes over what an earlier run left
    /// staged) and ends with [`Sink::flush`]. `shared`: other hosts may write to the same
    /// store (a lake on S3), so what is staged there is taken over only once no live
    /// host would still roll it (three intervals), not at once at the start.
    pub fn rolling(name: impl Into<String>, store: Arc<dyn ObjectStore>, policy: RollPolicy, shared: bool) -> Self {
        let name = name.into();
        let roller = Arc::new(Roller::new(&name, store.clone(), policy));
        Self { name, store, roller: Some(roller), shared }
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

        // Stream commits of a rolling lake are staged; a job's partitions are not.
        let staging = self.roller.as_ref().filter(|_| matches!(commit.id, crate::CommitId::Log(_)));
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
            let table: Vec<(&SinkRecord, &EventItem)> = rows.iter().map(|&(_, r, e)| (r, e.as_ref())).collect();
            let bytes = match staging {
                Some(_) => crate::rolling::staged_rows(&table),
                None => table::parquet_file(&table),
            }
            .map_err(|message| self.encode_error(&key, message))?;
            objects[slot] = Some(Object { key, indices: rows.iter().map(|&(i, _, _)| i).collect(), bytes });
        }

        // The (up to three) puts run concurrently.
        let [raw, events, aggregates] = objects;
        let (raw, events, aggregates) =
            tokio::join!(self.put(raw, staging), self.put(events, staging), self.put(aggregates, staging));
        let mut report = WriteReport::all_written();
        for failed in [raw, events, aggregates] {
            report.failed.extend(failed);
        }
        report.failed.sort_unstable_by_key(|(i, _)| *i);
        Ok(report)
    }

    /// Puts `object`, if any; returns its records as failed when the put fails.
    async fn put(&self, object: Option<Object>, staging: Option<&Arc<Roller>>) -> Vec<(usize, String)> {
        let Some(Object { key, indices, bytes }) = object else { return Vec::new() };
        let size = bytes.len();
        let written = match staging {
            Some(roller) => roller.stage(&key, bytes).await,
            None => put_object(&self.name, self.store.as_ref(), &key, bytes).await.map_err(|e| e.to_string()),
        };
        match written {
            Ok(()) => {
                tracing::debug!(sink = %self.name, %key, records = indices.len(), bytes = size, "lake object written");
                Vec::new()
            }
            Err(why) => indices.into_iter().map(|i| (i, why.clone())).collect(),
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

    fn prepare(&self) -> PrepareFuture<'_> {
        Box::pin(async move {
            let Some(roller) = &self.roller else { return Ok(()) };
            let at_once = if self.shared { roller.orphan_age() } else { std::time::Duration::ZERO };
            let recovered = roller.adopt_orphans(at_once).await.map_err(|source| SinkError::Write {
                sink: self.name.clone(),
                target: format!("{}/ (the staged commits of an earlier run)", crate::rolling::STAGING),
                source: Box::new(source),
            })?;
            if recovered > 0 {
                tracing::info!(sink = %self.name, recovered, "staged commits of an earlier run taken over; they roll when due");
            }
            // Time-based rolling, and now and then the orphans of a host that died: a
            // task that lives as long as the sink.
            let weak = Arc::downgrade(roller);
            let interval = roller.interval();
            let tick = (interval / 4).clamp(std::time::Duration::from_millis(50), std::time::Duration::from_secs(1));
            let adopt_every = roller.orphan_age();
            let name = self.name.clone();
            let shared = self.shared;
            tokio::spawn(async move {
                let mut last_adoption = std::time::Instant::now();
                loop {
                    tokio::time::sleep(tick).await;
                    let Some(roller) = weak.upgrade() else { break };
                    if shared && last_adoption.elapsed() >= adopt_every {
                        last_adoption = std::time::Instant::now();
                        if let Err(e) = roller.adopt_orphans(adopt_every).await {
                            tracing::warn!(sink = %name, "cannot list the staged commits ({e}); retrying");
                        }
                    }
                    roller.roll_due(interval).await;
                }
            });
            Ok(())
        })
    }

    fn flush(&self) -> PrepareFuture<'_> {
        Box::pin(async move {
            if let Some(roller) = &self.roller {
                roller.roll_due(std::time::Duration::ZERO).await;
            }
            Ok(())
        })
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
