//! The sink that writes a stream's outputs into a search index.

use std::sync::Arc;

use weir_sinks::{KeptRecord, Sink, SinkCommit, SinkError, SinkFuture, SinkItem, SinkRecord, WriteReport};

use crate::index::{NewDocument, SearchIndex};

/// Indexes a commit's events and aggregates (raw records and dead letters are reported as
/// written without being indexed). One commit per commit: the documents of a commit become
/// searchable together, when the write is acknowledged. A failed commit fails the whole
/// commit, which is retried; ids make the retry and any replay replace, not duplicate.
#[derive(Debug, Clone)]
pub struct SearchSink {
    name: String,
    index: Arc<SearchIndex>,
}

impl SearchSink {
    /// A sink named `name` writing `index`.
    pub fn new(name: impl Into<String>, index: Arc<SearchIndex>) -> Self {
        Self { name: name.into(), index }
    }

    async fn write_commit(&self, commit: &SinkCommit) -> Result<WriteReport, SinkError> {
        let indexed: Vec<usize> = commit
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r.item, SinkItem::Event(_) | SinkItem::Aggregate(_)))
            .map(|(i, _)| i)
            .collect();
        if indexed.is_empty() {
            return Ok(WriteReport::all_written());
        }
        let index = self.index.clone();
        let records = commit.subset(&indexed).records;
        let written = tokio::task::spawn_blocking(move || {
            let documents: Vec<NewDocument<'_>> = records
                .iter()
                .filter_map(|record| match &record.item {
                    SinkItem::Event(item) => Some(("event", record, item)),
                    SinkItem::Aggregate(item) => Some(("aggregate", record, item)),
                    _ => None,
                })
                .map(|(kind, record, item)| NewDocument {
                    id: &record.id,
                    kind,
                    event: &item.event,
                    lineage: &item.lineage,
                })
                .collect();
            index.write(&documents)
        })
        .await;
        self.outcome(written)
    }

    /// What a blocking index change came to: written, or the index's error naming it.
    fn outcome(
        &self,
        joined: Result<Result<(), crate::SearchError>, tokio::task::JoinError>,
    ) -> Result<WriteReport, SinkError> {
        let target = format!("search index {}", self.index.name());
        match joined {
            Ok(Ok(())) => Ok(WriteReport::all_written()),
            Ok(Err(e)) => Err(SinkError::Write { sink: self.name.clone(), target, source: Box::new(e) }),
            Err(join) => Err(SinkError::Write { sink: self.name.clone(), target, source: join.to_string().into() }),
        }
    }
}

impl Sink for SearchSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn write<'a>(&'a self, commit: &'a SinkCommit) -> SinkFuture<'a> {
        Box::pin(self.write_commit(commit))
    }

    /// A document's id is its record's id.
    fn kept_key(&self, record: &SinkRecord) -> Option<String> {
        matches!(record.item, SinkItem::Event(_) | SinkItem::Aggregate(_)).then(|| record.id.clone())
    }

    /// The id is the record's, so a document under a kept id is always the kept record's.
    fn remove<'a>(&'a self, kept: &'a [KeptRecord]) -> SinkFuture<'a> {
        Box::pin(async move {
            let index = self.index.clone();
            let ids: Vec<String> = kept.iter().map(|k| k.key.clone()).collect();
            let removed = tokio::task::spawn_blocking(move || {
                let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                index.remove(&ids)
            })
            .await;
            self.outcome(removed)
        })
    }
}
