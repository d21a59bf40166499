//! The dead-letter sink: records the plugins refused, as NDJSON in the lake.

use std::path::Path as FsPath;
use std::sync::Arc;

use object_store::ObjectStore;

use crate::error::SinkError;
use crate::lake::local_store;
use crate::layout::{LakeObject, put_object};
use crate::ndjson::{DeadLetterLine, Payload, push_line};
use crate::sink::{Sink, SinkCommit, SinkFuture, SinkItem, WriteReport};

/// Writes the [`SinkItem::DeadLetter`] records of each commit as one NDJSON object at
/// [`LakeObject::DeadLetters`]' key:
/// `dead-letters/stream=<s>/date=<d>/shard=<n>/<first>-<last>.ndjson`, one line per dead
/// letter:
///
/// ```json
/// {"id":"orders-0003-00000000000000000042-0","stream":"orders","shard":3,"seq":42,
///  "plugin":"orders-parser@1.0.0","stage":"parse","reason":"line 1: expected ',' …",
///  "content_type":"text/csv","arrival_time":"2026-11-26T10:15:00Z","original":"…"}
/// ```
///
/// `original` holds the original bytes as text when they are valid UTF-8, else
/// `original_base64` holds them in base64 (standard alphabet, padded), so the record can
/// be fixed and replayed. Like the lake, the key depends only on the commit's range: a
/// replay overwrites. Every other kind of record is left to other sinks and reported as
/// written.
#[derive(Debug, Clone)]
pub struct DeadLetterSink {
    name: String,
    store: Arc<dyn ObjectStore>,
}

impl DeadLetterSink {
    /// A dead-letter sink named `name` writing to `store`.
    pub fn new(name: impl Into<String>, store: Arc<dyn ObjectStore>) -> Self {
        Self { name: name.into(), store }
    }

    /// A dead-letter sink named `name` (as in the configuration) in the lake directory
    /// `root` (created if missing). Writes are fsynced before they are acknowledged.
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
        let mut indices = Vec::new();
        let mut out = Vec::new();
        let key = LakeObject::DeadLetters.key(commit);
        for (i, record) in commit.records.iter().enumerate() {
            let SinkItem::DeadLetter(dead) = &record.item else { continue };
            let original = Payload::of(&dead.original);
            let line = DeadLetterLine {
                id: &record.id,
                stream: commit.id.source(),
                shard: commit.id.part(),
                seq: &record.position,
                plugin: &dead.plugin,
                stage: &dead.stage,
                reason: &dead.reason,
                content_type: &dead.content_type,
                arrival_time: weir_events::time::format_rfc3339(dead.arrival_time),
                original: original.text,
                original_base64: original.base64,
            };
            push_line(&mut out, &line).map_err(|message| SinkError::Encode {
                sink: self.name.clone(),
                target: key.to_string(),
                message,
            })?;
            indices.push(i);
        }
        if indices.is_empty() {
            return Ok(WriteReport::all_written());
        }
        let size = out.len();
        match put_object(&self.name, self.store.as_ref(), &key, out).await {
            Ok(()) => {
                tracing::debug!(sink = %self.name, %key, records = indices.len(), bytes = size, "dead letters written");
                Ok(WriteReport::all_written())
            }
            Err(error) => {
                let why = error.to_string();
                Ok(WriteReport {
                    failed: indices.into_iter().map(|i| (i, why.clone())).collect(),
                    rejected: Vec::new(),
                })
            }
        }
    }
}

impl Sink for DeadLetterSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn write<'a>(&'a self, commit: &'a SinkCommit) -> SinkFuture<'a> {
        Box::pin(self.write_commit(commit))
    }
}
