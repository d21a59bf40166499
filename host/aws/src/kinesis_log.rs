//! Kinesis as weir's stream log: [`KinesisLog`] implements the log traits of `weir-log`
//! (and passes their conformance suite against kinesalite), with checkpoints in DynamoDB.
//!
//! - Appends go out with `PutRecords` in requests of at most 500 records and 5 MiB; the
//!   entries a request reports failed (`FailedRecordCount`, throttling) are sent again,
//!   alone, with jittered backoff, and an append succeeds only when every record is
//!   accepted. As with any `PutRecords` producer, a resent record lands after records of
//!   its key that were accepted the first time: order per key holds for records accepted
//!   in one go.
//! - Reads use `GetRecords` with the shard iterator kept from the previous read when the
//!   next read continues it, at most 5 calls a second per shard (Kinesis' limit); an
//!   expired iterator is fetched again, throttling answers an empty read (the stage polls).
//! - Sequence numbers are positions (compared as integers of any length); shard ids are
//!   Kinesis' (`shardId-000000000001`); a split or merge is seen in the shard list
//!   (parents, ended shards).
//! - Kinesis keeps no content type: records read back get [`KinesisOptions::content_type`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::DisplayErrorContext;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use tokio::sync::watch;
use weir_log::{
    BoxFuture, CheckpointStore, CommitRange, LeaseRound, LogError, LogProducer, LogReader, LogRecord, NewRecord,
    Position, ReadFrom, ReadLimits, RecordPlace, ShardCheckpoint, ShardId, ShardInfo, ShardLeases, ShardRead,
};

use crate::checkpoints::DynamoCheckpoints;

/// Kinesis' limits on one `PutRecords` call, and on one record (data and key together).
const MAX_PUT_RECORDS: usize = 500;
const MAX_PUT_BYTES: usize = 5 << 20;
const MAX_RECORD_BYTES: usize = 1 << 20;
const MAX_PARTITION_KEY_CHARS: usize = 256;
/// Records one `GetRecords` call may return.
const MAX_GET_RECORDS: usize = 10_000;
/// Kinesis allows 5 `GetRecords` calls a second per shard.
const MIN_GET_INTERVAL: Duration = Duration::from_millis(200);

/// How the log names and reads its streams.
#[derive(Debug, Clone)]
pub struct KinesisOptions {
    /// Prepended to a weir stream's name to give its Kinesis stream (`""`: the same name).
    pub stream_prefix: String,
    /// The content type of records read back (Kinesis keeps none).
    pub content_type: String,
    /// Sends of one entry that Kinesis reports failed before the append fails.
    pub max_put_attempts: u32,
}

impl Default for KinesisOptions {
    fn default() -> Self {
        Self { stream_prefix: String::new(), content_type: "application/octet-stream".into(), max_put_attempts: 8 }
    }
}

/// Kinesis streams with DynamoDB checkpoints.
#[derive(Debug)]
pub struct KinesisLog {
    kinesis: Client,
    checkpoints: DynamoCheckpoints,
    options: KinesisOptions,
    appended: Mutex<HashMap<String, watch::Sender<u64>>>,
    /// Per (stream, shard): the iterator that continues a read, and the `from` that read
    /// will ask for.
    iterators: Mutex<HashMap<(String, ShardId), (ReadFrom, String)>>,
    /// Per (stream, shard): when its next `GetRecords` call may go.
    next_get: Mutex<HashMap<(String, ShardId), Instant>>,
}

fn service(operation: &'static str, stream: &str, error: impl std::error::Error) -> LogError {
    LogError::Service {
        service: "Kinesis",
        operation,
        stream: stream.to_owned(),
        reason: DisplayErrorContext(error).to_string(),
    }
}

fn bad_answer(operation: &'static str, stream: &str, reason: String) -> LogError {
    LogError::Service { service: "Kinesis", operation, stream: stream.to_owned(), reason }
}

/// A partition key for a record without one: a hash of its bytes, so the same bytes
/// land on the same shard, as in the embedded log.
fn key_of_data(data: &[u8]) -> String {
    format!("{:016x}", weir_log::fnv1a_64(data))
}

impl KinesisLog {
    /// The log over `kinesis`, with checkpoints in `checkpoints`.
    pub fn new(kinesis: Client, checkpoints: DynamoCheckpoints, options: KinesisOptions) -> Self {
        Self {
            kinesis,
            checkpoints,
            options,
            appended: Mutex::new(HashMap::new()),
            iterators: Mutex::new(HashMap::new()),
            next_get: Mutex::new(HashMap::new()),
        }
    }

    fn kinesis_stream(&self, stream: &str) -> String {
        format!("{}{stream}", self.options.stream_prefix)
    }

    async fn put(&self, stream: &str, records: Vec<NewRecord>) -> Result<Vec<RecordPlace>, LogError> {
        let name = self.kinesis_stream(stream);
        let mut entries = Vec::with_capacity(records.len());
        for (index, record) in records.into_iter().enumerate() {
            let key = record.partition_key.unwrap_or_else(|| key_of_data(&record.data));
            let chars = key.chars().count();
            if chars == 0 || chars > MAX_PARTITION_KEY_CHARS {
                return Err(LogError::Service {
                    service: "Kinesis",
                    operation: "PutRecords",
                    stream: stream.to_owned(),
                    reason: format!(
                        "record {index}: a partition key has 1 to {MAX_PARTITION_KEY_CHARS} characters, not {chars}"
                    ),
                });
            }
            if record.data.len() + key.len() > MAX_RECORD_BYTES {
                return Err(LogError::Service {
                    service: "Kinesis",
                    operation: "PutRecords",
                    stream: stream.to_owned(),
                    reason: format!("record {index}: data and partition key are over Kinesis' 1 MiB per record"),
                });
            }
            entries.push((record.data, key));
        }
        let mut places: Vec<Option<RecordPlace>> = vec![None; entries.len()];
        let mut start = 0;
        while start < entries.len() {
            // One request: at most 500 records and 5 MiB.
            let mut end = start;
            let mut bytes = 0;
            while end < entries.len()
                && end - start < MAX_PUT_RECORDS
                && bytes + entries[end].0.len() + entries[end].1.len() <= MAX_PUT_BYTES
            {
                bytes += entries[end].0.len() + entries[end].1.len();
                end += 1;
            }
            self.put_request(stream, &name, &entries, start..end, &mut places).await?;
            start = end;
        }
        if let Some(sender) = self.appended.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(stream) {
            sender.send_modify(|n| *n += 1);
        }
        Ok(places.into_iter().flatten().collect())
    }

    /// Sends entries `range`, then again those Kinesis reports failed, until all are
    /// accepted or the attempts run out.
    async fn put_request(
        &self,
        stream: &str,
        name: &str,
        entries: &[(bytes::Bytes, String)],
        range: std::ops::Range<usize>,
        places: &mut [Option<RecordPlace>],
    ) -> Result<(), LogError> {
        let mut todo: Vec<usize> = range.collect();
        let mut last_error = String::new();
        for attempt in 0..self.options.max_put_attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(crate::backoff(attempt - 1, Duration::from_millis(100), Duration::from_secs(5)))
                    .await;
            }
            let request: Vec<PutRecordsRequestEntry> = todo
                .iter()
                .map(|&i| {
                    PutRecordsRequestEntry::builder()
                        .data(Blob::new(entries[i].0.to_vec()))
                        .partition_key(entries[i].1.clone())
                        .build()
                        .map_err(|e| service("PutRecords", stream, e))
                })
                .collect::<Result<_, _>>()?;
            let answer = match self.kinesis.put_records().stream_name(name).set_records(Some(request)).send().await {
                Ok(answer) => answer,
                Err(e) => {
                    let throttled =
                        e.as_service_error().is_some_and(|s| s.is_provisioned_throughput_exceeded_exception());
                    if throttled || e.as_service_error().is_none() {
                        // Throttled, or the connection failed: the whole request again.
                        last_error = DisplayErrorContext(&e).to_string();
                        continue;
                    }
                    return Err(service("PutRecords", stream, e));
                }
            };
            if answer.records().len() != todo.len() {
                return Err(bad_answer(
                    "PutRecords",
                    stream,
                    format!("{} results for {} records", answer.records().len(), todo.len()),
                ));
            }
            let mut failed = Vec::new();
            for (&index, result) in todo.iter().zip(answer.records()) {
                match (result.shard_id(), result.sequence_number()) {
                    (Some(shard), Some(sequence)) if result.error_code().is_none() => {
                        let shard = ShardId::parse(shard).map_err(|e| bad_answer("PutRecords", stream, e))?;
                        let position = Position::parse(sequence).map_err(|e| bad_answer("PutRecords", stream, e))?;
                        places[index] = Some(RecordPlace { shard, position });
                    }
                    _ => {
                        last_error =
                            format!("{}: {}", result.error_code().unwrap_or("?"), result.error_message().unwrap_or(""));
                        failed.push(index);
                    }
                }
            }
            if failed.is_empty() {
                return Ok(());
            }
            tracing::debug!(%stream, failed = failed.len(), "Kinesis refused entries of a PutRecords request; sending them again: {last_error}");
            todo = failed;
        }
        Err(bad_answer(
            "PutRecords",
            stream,
            format!(
                "{} records were not accepted after {} attempts (last: {last_error}); the append failed",
                todo.len(),
                self.options.max_put_attempts
            ),
        ))
    }

    async fn list_shards(&self, stream: &str) -> Result<Vec<ShardInfo>, LogError> {
        let name = self.kinesis_stream(stream);
        let mut shards = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let request = match &next {
                Some(token) => self.kinesis.list_shards().next_token(token),
                None => self.kinesis.list_shards().stream_name(&name),
            };
            let page = request.send().await.map_err(|e| service("ListShards", stream, e))?;
            for shard in page.shards() {
                let id = ShardId::parse(shard.shard_id()).map_err(|e| bad_answer("ListShards", stream, e))?;
                let parents = [shard.parent_shard_id(), shard.adjacent_parent_shard_id()]
                    .into_iter()
                    .flatten()
                    .map(|p| ShardId::parse(p).map_err(|e| bad_answer("ListShards", stream, e)))
                    .collect::<Result<Vec<_>, _>>()?;
                let ended = shard.sequence_number_range().is_some_and(|r| r.ending_sequence_number().is_some());
                shards.push(ShardInfo { id, parents, ended });
            }
            match page.next_token() {
                Some(token) => next = Some(token.to_owned()),
                None => break,
            }
        }
        Ok(shards)
    }

    async fn iterator(&self, stream: &str, shard: &ShardId, from: &ReadFrom) -> Result<String, LogError> {
        let request =
            self.kinesis.get_shard_iterator().stream_name(self.kinesis_stream(stream)).shard_id(shard.as_str());
        let request = match from {
            ReadFrom::Oldest => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            ReadFrom::At(p) => {
                request.shard_iterator_type(ShardIteratorType::AtSequenceNumber).starting_sequence_number(p.as_str())
            }
            ReadFrom::After(p) => {
                request.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).starting_sequence_number(p.as_str())
            }
        };
        // GetShardIterator allows 5 calls a second per shard: throttling is waited out.
        let mut attempt = 0;
        let answer = loop {
            match request.clone().send().await {
                Ok(answer) => break answer,
                Err(e)
                    if attempt < 5
                        && e.as_service_error().is_some_and(|s| s.is_provisioned_throughput_exceeded_exception()) =>
                {
                    tokio::time::sleep(crate::backoff(attempt, Duration::from_millis(200), Duration::from_secs(2)))
                        .await;
                    attempt += 1;
                }
                Err(e) => return Err(service("GetShardIterator", stream, e)),
            }
        };
        answer
            .shard_iterator()
            .map(str::to_owned)
            .ok_or_else(|| bad_answer("GetShardIterator", stream, "no iterator".into()))
    }

    async fn get(
        &self,
        stream: &str,
        shard: &ShardId,
        from: ReadFrom,
        limits: ReadLimits,
    ) -> Result<ShardRead, LogError> {
        if limits.records == 0 {
            return Ok(ShardRead::default());
        }
        let key = (stream.to_owned(), shard.clone());
        // At most 5 calls a second per shard: each call takes the next free slot of its
        // shard, and waits for it without holding the lock (other shards go on).
        let slot = {
            let mut next = self.next_get.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            let slot = next.get(&key).copied().filter(|at| *at > now).unwrap_or(now);
            next.insert(key.clone(), slot + MIN_GET_INTERVAL);
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
        let cached = {
            let mut iterators = self.iterators.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            iterators.remove(&key).filter(|(continues, _)| *continues == from).map(|(_, iterator)| iterator)
        };
        let mut iterator = match cached {
            Some(iterator) => iterator,
            None => self.iterator(stream, shard, &from).await?,
        };
        let limit = i32::try_from(limits.records.min(MAX_GET_RECORDS)).unwrap_or(MAX_GET_RECORDS as i32);
        let mut expired_once = false;
        let answer = loop {
            match self.kinesis.get_records().shard_iterator(&iterator).limit(limit).send().await {
                Ok(answer) => break answer,
                Err(e) => match e.as_service_error() {
                    Some(s) if s.is_expired_iterator_exception() && !expired_once => {
                        expired_once = true;
                        iterator = self.iterator(stream, shard, &from).await?;
                    }
                    // Throttled after the client's own retries: nothing this time (the
                    // iterator stays usable); the stage reads again.
                    Some(s) if s.is_provisioned_throughput_exceeded_exception() => {
                        let mut iterators = self.iterators.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        iterators.insert(key, (from, iterator));
                        return Ok(ShardRead::default());
                    }
                    _ => return Err(service("GetRecords", stream, e)),
                },
            }
        };
        let mut records = Vec::with_capacity(answer.records().len());
        let mut bytes = 0usize;
        let mut truncated = false;
        for record in answer.records() {
            let data = record.data().as_ref();
            if !records.is_empty() && bytes + data.len() > limits.bytes {
                truncated = true;
                break;
            }
            bytes += data.len();
            let arrival_time = record
                .approximate_arrival_timestamp()
                .map(|t| t.secs().saturating_mul(1_000_000).saturating_add(i64::from(t.subsec_nanos() / 1000)))
                .unwrap_or_else(|| {
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_micros() as i64)
                });
            records.push(LogRecord {
                position: Position::parse(record.sequence_number()).map_err(|e| bad_answer("GetRecords", stream, e))?,
                partition_key: record.partition_key().map(str::to_owned),
                data: data.to_vec(),
                content_type: self.options.content_type.clone(),
                arrival_time,
            });
        }
        let next = answer.next_shard_iterator().map(str::to_owned);
        if !truncated && let Some(next) = &next {
            // The next read continues where this one stopped: keep its iterator.
            let continues = records.last().map_or(from, |r: &LogRecord| ReadFrom::After(r.position.clone()));
            self.iterators
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(key, (continues, next.clone()));
        }
        // Behind the tip: more records are waiting than this page held.
        let more_waiting = truncated || answer.millis_behind_latest().is_some_and(|behind| behind > 0);
        Ok(ShardRead { records, end_of_shard: next.is_none() && !truncated, more_waiting })
    }
}

impl LogProducer for KinesisLog {
    fn append<'a>(
        &'a self,
        stream: &'a str,
        records: Vec<NewRecord>,
    ) -> BoxFuture<'a, Result<Vec<RecordPlace>, LogError>> {
        Box::pin(self.put(stream, records))
    }
}

impl LogReader for KinesisLog {
    fn shards<'a>(&'a self, stream: &'a str) -> BoxFuture<'a, Result<Vec<ShardInfo>, LogError>> {
        Box::pin(self.list_shards(stream))
    }

    fn read<'a>(
        &'a self,
        stream: &'a str,
        shard: &'a ShardId,
        from: ReadFrom,
        limits: ReadLimits,
    ) -> BoxFuture<'a, Result<ShardRead, LogError>> {
        Box::pin(self.get(stream, shard, from, limits))
    }

    /// Kinesis cannot count the records after a position cheaply.
    fn lag<'a>(
        &'a self,
        _stream: &'a str,
        _shard: &'a ShardId,
        _committed: Option<&'a Position>,
    ) -> BoxFuture<'a, Result<Option<u64>, LogError>> {
        Box::pin(async { Ok(None) })
    }

    fn subscribe(&self, stream: &str) -> watch::Receiver<u64> {
        let mut appended = self.appended.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        appended.entry(stream.to_owned()).or_insert_with(|| watch::channel(0).0).subscribe()
    }

    /// Hosts sharing the checkpoint table share the shards through leases in it.
    fn leases(&self) -> Option<&dyn ShardLeases> {
        Some(self)
    }
}

impl ShardLeases for KinesisLog {
    fn balance<'a>(
        &'a self,
        consumer: &'a str,
        stream: &'a str,
        shards: &'a [ShardId],
    ) -> BoxFuture<'a, Result<LeaseRound, LogError>> {
        Box::pin(async move { self.checkpoints.balance(consumer, &self.kinesis_stream(stream), shards).await })
    }

    fn shard_ended<'a>(
        &'a self,
        consumer: &'a str,
        stream: &'a str,
        shard: &'a ShardId,
    ) -> BoxFuture<'a, Result<(), LogError>> {
        Box::pin(async move { self.checkpoints.shard_ended(consumer, &self.kinesis_stream(stream), shard).await })
    }

    fn release<'a>(
        &'a self,
        consumer: &'a str,
        stream: &'a str,
        shard: &'a ShardId,
    ) -> BoxFuture<'a, Result<(), LogError>> {
        Box::pin(async move { self.checkpoints.release(consumer, &self.kinesis_stream(stream), shard).await })
    }
}

impl CheckpointStore for KinesisLog {
    fn checkpoint<'a>(
        &'a self,
        consumer: &'a str,
        stream: &'a str,
        shard: &'a ShardId,
    ) -> BoxFuture<'a, Result<Option<ShardCheckpoint>, LogError>> {
        Box::pin(async move { self.checkpoints.checkpoint(consumer, &self.kinesis_stream(stream), shard).await })
    }

    fn begin_commit<'a>(
        &'a self,
        consumer: &'a str,
        stream: &'a str,
        shard: &'a ShardId,
        range: CommitRange,
    ) -> BoxFuture<'a, Result<CommitRange, LogError>> {
        Box::pin(
            async move { self.checkpoints.begin_commit(consumer, &self.kinesis_stream(stream), shard, range).await },
        )
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
            self.checkpoints.finish_commit(consumer, &self.kinesis_stream(stream), shard, range, state).await
        })
    }

    /// Kinesis cannot count a stream's records after a position cheaply: ingest is held
    /// back by Kinesis' own throttling instead.
    fn backlog<'a>(&'a self, _consumer: &'a str, _stream: &'a str) -> BoxFuture<'a, Result<Option<u64>, LogError>> {
        Box::pin(async { Ok(None) })
    }
}
