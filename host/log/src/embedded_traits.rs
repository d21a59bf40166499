//! The embedded log behind the [stream-log traits](crate::StreamLog): its shards are
//! `0..shards_per_stream`, never end and have no parents; a position is a record's
//! sequence number. Every operation runs on tokio's blocking pool, since each one waits
//! for a read transaction or an fsync.

use tokio::sync::watch;

use crate::stream_log::BoxFuture;
use crate::{
    BatchRange, CheckpointStore, CommitRange, EmbeddedLog, LogError, LogProducer, LogReader, LogRecord, NewRecord,
    Position, ReadFrom, ReadLimits, RecordPlace, ShardCheckpoint, ShardId, ShardInfo, ShardRead,
};

impl EmbeddedLog {
    /// Runs `op` on a clone of this log on the blocking pool.
    fn blocking<'a, T: Send + 'static>(
        &self,
        operation: &'static str,
        op: impl FnOnce(&EmbeddedLog) -> Result<T, LogError> + Send + 'static,
    ) -> BoxFuture<'a, Result<T, LogError>> {
        let log = self.clone();
        Box::pin(async move {
            match tokio::task::spawn_blocking(move || op(&log)).await {
                Ok(result) => result,
                Err(join) => Err(LogError::Interrupted {
                    operation,
                    reason: if join.is_panic() { format!("it panicked: {join}") } else { join.to_string() },
                }),
            }
        })
    }

    /// The number of a shard id of this log.
    fn shard_index(&self, stream: &str, shard: &ShardId) -> Result<u32, LogError> {
        shard
            .to_u32()
            .filter(|&index| index < self.shards())
            .ok_or_else(|| LogError::UnknownShard { stream: stream.to_owned(), shard: shard.to_string() })
    }
}

/// The sequence number a position of this log stands for.
fn seq_of(stream: &str, shard: &ShardId, position: &Position) -> Result<u64, LogError> {
    position.to_u64().ok_or_else(|| LogError::ForeignPosition {
        stream: stream.to_owned(),
        shard: shard.to_string(),
        position: position.to_string(),
        reason: "the embedded log's positions are 64-bit sequence numbers".to_owned(),
    })
}

/// The first sequence number after `committed`; `None` when nothing can come after it.
fn next_after(stream: &str, shard: &ShardId, committed: Option<&Position>) -> Result<Option<u64>, LogError> {
    match committed {
        None => Ok(Some(0)),
        Some(position) => Ok(seq_of(stream, shard, position)?.checked_add(1)),
    }
}

fn batch_range(stream: &str, shard: &ShardId, range: &CommitRange) -> Result<BatchRange, LogError> {
    Ok(BatchRange { first: seq_of(stream, shard, &range.first)?, last: seq_of(stream, shard, &range.last)? })
}

fn commit_range(range: BatchRange) -> CommitRange {
    CommitRange { first: range.first.into(), last: range.last.into() }
}

impl LogProducer for EmbeddedLog {
    fn append<'a>(
        &'a self,
        stream: &'a str,
        records: Vec<NewRecord>,
    ) -> BoxFuture<'a, Result<Vec<RecordPlace>, LogError>> {
        let stream = stream.to_owned();
        self.blocking("append", move |log| {
            let appended = log.append(&stream, records)?;
            Ok(appended.into_iter().map(|a| RecordPlace { shard: a.shard.into(), position: a.seq.into() }).collect())
        })
    }
}

impl LogReader for EmbeddedLog {
    fn shards<'a>(&'a self, stream: &'a str) -> BoxFuture<'a, Result<Vec<ShardInfo>, LogError>> {
        let result = if stream.is_empty() {
            Err(LogError::EmptyName { kind: "stream" })
        } else {
            Ok((0..self.shards()).map(|i| ShardInfo { id: i.into(), parents: Vec::new(), ended: false }).collect())
        };
        Box::pin(std::future::ready(result))
    }

    fn read<'a>(
        &'a self,
        stream: &'a str,
        shard: &'a ShardId,
        from: ReadFrom,
        limits: ReadLimits,
    ) -> BoxFuture<'a, Result<ShardRead, LogError>> {
        Box::pin(async move {
            let index = self.shard_index(stream, shard)?;
            let from_seq = match &from {
                ReadFrom::Oldest => Some(0),
                ReadFrom::At(position) => Some(seq_of(stream, shard, position)?),
                ReadFrom::After(position) => next_after(stream, shard, Some(position))?,
            };
            let Some(from_seq) = from_seq else { return Ok(ShardRead::default()) };
            let stream = stream.to_owned();
            self.blocking("read", move |log| {
                let stored = log.read(&stream, index, from_seq, limits.records, limits.bytes)?;
                // Stopped at the count, or near the bytes: there may be more, and a read
                // that large is a full commit that should not wait for company.
                let bytes: usize = stored.iter().map(|r| r.data.len()).sum();
                let more_waiting = stored.len() >= limits.records || bytes >= limits.bytes / 2;
                let records = stored
                    .into_iter()
                    .map(|r| LogRecord {
                        position: r.seq.into(),
                        partition_key: r.partition_key,
                        data: r.data,
                        content_type: r.content_type,
                        arrival_time: r.arrival_time,
                    })
                    .collect();
                Ok(ShardRead { records, end_of_shard: false, more_waiting })
            })
            .await
        })
    }

    fn lag<'a>(
        &'a self,
        stream: &'a str,
        shard: &'a ShardId,
        committed: Option<&'a Position>,
    ) -> BoxFuture<'a, Result<Option<u64>, LogError>> {
        Box::pin(async move {
            let index = self.shard_index(stream, shard)?;
            let next = next_after(stream, shard, committed)?;
            let stream = stream.to_owned();
            self.blocking("lag", move |log| {
                let head = log.next_seq(&stream, index)?;
                Ok(Some(next.map_or(0, |next| head.saturating_sub(next))))
            })
            .await
        })
    }

    fn subscribe(&self, stream: &str) -> watch::Receiver<u64> {
        EmbeddedLog::subscribe(self, stream)
    }
}

impl CheckpointStore for EmbeddedLog {
    fn checkpoint<'a>(
        &'a self,
        consumer: &'a str,
        stream: &'a str,
        shard: &'a ShardId,
    ) -> BoxFuture<'a, Result<Option<ShardCheckpoint>, LogError>> {
        Box::pin(async move {
            let index = self.shard_index(stream, shard)?;
            let (consumer, stream) = (consumer.to_owned(), stream.to_owned());
            self.blocking("checkpoint", move |log| {
                Ok(log.checkpoint(&consumer, &stream, index)?.map(|cp| ShardCheckpoint {
                    committed: cp.next_seq.checked_sub(1).map(Position::from),
                    pending: cp.pending.map(commit_range),
                    state: cp.state,
                }))
            })
            .await
        })
    }

    fn begin_commit<'a>(
        &'a self,
        consumer: &'a str,
        stream: &'a str,
        shard: &'a ShardId,
        range: CommitRange,
    ) -> BoxFuture<'a, Result<CommitRange, LogError>> {
        Box::pin(async move {
            let index = self.shard_index(stream, shard)?;
            let range = batch_range(stream, shard, &range)?;
            let (consumer, stream) = (consumer.to_owned(), stream.to_owned());
            self.blocking("begin_commit", move |log| {
                Ok(commit_range(log.begin_batch(&consumer, &stream, index, range.first, range.last)?))
            })
            .await
        })
    }

    fn finish_commit<'a>(
        &'a self,
        consumer: &'a str,
        stream: &'a str,
        shard: &'a ShardId,
        range: CommitRange,
        state: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), LogError>> {
        Box::pin(async move {
            let index = self.shard_index(stream, shard)?;
            let range = batch_range(stream, shard, &range)?;
            let (consumer, stream) = (consumer.to_owned(), stream.to_owned());
            self.blocking("finish_commit", move |log| log.commit_batch(&consumer, &stream, index, range, state)).await
        })
    }

    fn backlog<'a>(&'a self, consumer: &'a str, stream: &'a str) -> BoxFuture<'a, Result<Option<u64>, LogError>> {
        let (consumer, stream) = (consumer.to_owned(), stream.to_owned());
        self.blocking("backlog", move |log| log.backlog(&consumer, &stream).map(Some))
    }
}
