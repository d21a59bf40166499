use std::collections::HashMap;
use std::collections::btree_map::{BTreeMap, Entry};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use redb::{Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};
use tokio::sync::watch;

use crate::checkpoint::{self, Position};
use crate::migrate;
use crate::record;
use crate::retention::{self, RetentionReport};
use crate::segment::{self, SegmentWriter};
use crate::shard;
use crate::tables::{
    CHECKPOINTS, FORMAT_VERSION, FORMAT_VERSION_BEFORE_SEGMENTS, FORMAT_VERSION_KEY, Failure, MOVING_FORMAT_1_KEY,
    SEGMENTS, SETTINGS, SHARDS, SHARDS_KEY, STATES,
};
use crate::{Appended, BatchRange, Checkpoint, LogConfig, LogError, NewRecord, StoredRecord};

/// The embedded durable stream log: named streams, each split into shards, each shard an
/// append-only sequence of records; consumers keep a checkpoint per shard.
///
/// Cheap to clone (an `Arc` inside) and safe to share between threads. Every method blocks
/// on file I/O (appends and checkpoint updates wait for an fsync): call them from
/// `tokio::task::spawn_blocking` in async code.
#[derive(Clone)]
pub struct EmbeddedLog {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    path: PathBuf,
    config: LogConfig,
    /// Per stream, the count of records appended through this handle; woken on each append.
    appended: Mutex<HashMap<String, watch::Sender<u64>>>,
    /// Appends waiting for the next group commit; `group_done` wakes their callers.
    appends: Mutex<AppendQueue>,
    group_done: Condvar,
    /// Append transactions committed so far (each one fsync).
    append_transactions: AtomicU64,
}

/// Group commit: an append joins the queue; if no append transaction is running, its
/// caller becomes the leader and writes everything queued in one transaction (one fsync),
/// while later appends queue up for the next one. Each caller gets its own result.
#[derive(Default)]
struct AppendQueue {
    waiting: Vec<QueuedAppend>,
    writing: bool,
    done: HashMap<u64, Result<Vec<Appended>, LogError>>,
    next_ticket: u64,
}

/// One (stream, shard) as an append transaction writes it.
struct ShardAppend {
    /// The next sequence number to assign, and the bytes the shard's records take.
    next_seq: u64,
    bytes: u64,
    /// The sequence number of the first record in `segment`.
    first_seq: u64,
    segment: SegmentWriter,
}

struct QueuedAppend {
    ticket: u64,
    stream: String,
    records: Vec<NewRecord>,
    /// Each record's shard, computed by the appender's thread before it queued: hashing a
    /// keyless record's data is linear in its size, and inside the group's transaction it
    /// would hold up every append waiting for the next one.
    shards: Vec<u32>,
}

impl fmt::Debug for EmbeddedLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedLog").field("path", &self.inner.path).field("config", &self.inner.config).finish()
    }
}

impl EmbeddedLog {
    /// Opens the log file at `path`, creating it (and its directory) if needed.
    ///
    /// A new file records `config.shards_per_stream`; an existing one must have been
    /// created with the same count.
    ///
    /// # Errors
    ///
    /// [`LogError::Open`] if the file cannot be created or opened (another process has it
    /// open, it is not a log file...), [`LogError::InvalidConfig`] for zero shards,
    /// [`LogError::ShardCountMismatch`] and [`LogError::UnsupportedFormat`] for an existing
    /// file that does not match.
    pub fn open(path: &Path, config: LogConfig) -> Result<Self, LogError> {
        let open_error =
            |source: Box<dyn std::error::Error + Send + Sync>| LogError::Open { path: path.to_owned(), source };
        if config.shards_per_stream == 0 {
            return Err(LogError::InvalidConfig {
                path: path.to_owned(),
                reason: "shards_per_stream is 0; a stream needs at least one shard".to_owned(),
            });
        }
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open_error(e.into()))?;
        }
        let db = Database::create(path).map_err(|e| open_error(e.into()))?;
        let log = Self {
            inner: Arc::new(Inner {
                db,
                path: path.to_owned(),
                config,
                appended: Mutex::new(HashMap::new()),
                appends: Mutex::new(AppendQueue::default()),
                group_done: Condvar::new(),
                append_transactions: AtomicU64::new(0),
            }),
        };
        log.move_format_1_into_segments()?;
        log.write("open", "*", None, |txn| {
            // Creates every table, so that readers never meet a missing one.
            txn.open_table(SEGMENTS)?;
            txn.open_table(SHARDS)?;
            txn.open_table(CHECKPOINTS)?;
            txn.open_table(STATES)?;
            let mut settings = txn.open_table(SETTINGS)?;
            let found = settings.get(FORMAT_VERSION_KEY)?.map(|v| v.value());
            match found {
                None => {
                    settings.insert(FORMAT_VERSION_KEY, FORMAT_VERSION)?;
                }
                Some(FORMAT_VERSION) => {}
                Some(found) => {
                    return Err(LogError::UnsupportedFormat {
                        path: path.to_owned(),
                        found,
                        supported: FORMAT_VERSION,
                    }
                    .into());
                }
            }
            let configured = log.inner.config.shards_per_stream;
            let stored = settings.get(SHARDS_KEY)?.map(|v| v.value());
            match stored {
                None => {
                    settings.insert(SHARDS_KEY, u64::from(configured))?;
                }
                Some(stored) if stored == u64::from(configured) => {}
                Some(stored) => {
                    let stored = u32::try_from(stored).unwrap_or(u32::MAX);
                    return Err(LogError::ShardCountMismatch { path: path.to_owned(), stored, configured }.into());
                }
            }
            Ok(())
        })?;
        Ok(log)
    }

    /// If the file is of format 1 (one value per record), moves its records into segments,
    /// in transactions of [`migrate::CHUNK_BYTES`] each, then records format 2; see
    /// [`migrate`]. Nothing to do for a new file or one of format 2.
    fn move_format_1_into_segments(&self) -> Result<(), LogError> {
        let setting = |settings: &redb::ReadOnlyTable<&str, u64>, key| -> Result<Option<u64>, Failure> {
            Ok(settings.get(key)?.map(|v| v.value()))
        };
        let found = self.read_txn("open", "*", None, |txn| match txn.open_table(SETTINGS) {
            Ok(settings) => Ok((
                setting(&settings, FORMAT_VERSION_KEY)?,
                setting(&settings, MOVING_FORMAT_1_KEY)?,
                setting(&settings, SHARDS_KEY)?,
            )),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok((None, None, None)),
            Err(error) => Err(error.into()),
        })?;
        let (version, moving, shards) = found;
        if version != Some(FORMAT_VERSION_BEFORE_SEGMENTS) && moving.is_none() {
            return Ok(());
        }
        // Checked before anything moves: a file opened with the wrong count stays as it was.
        let configured = self.inner.config.shards_per_stream;
        if let Some(stored) = shards.filter(|&stored| stored != u64::from(configured)) {
            let stored = u32::try_from(stored).unwrap_or(u32::MAX);
            return Err(LogError::ShardCountMismatch { path: self.inner.path.clone(), stored, configured });
        }
        let path = self.inner.path.display().to_string();
        tracing::info!(path = %path, "moving the stream log's records into segments (log format 1 to 2), once");
        let started = std::time::Instant::now();
        let mut moved = 0;
        loop {
            let chunk = self.write("open", "*", None, |txn| migrate::move_chunk(txn, migrate::CHUNK_BYTES))?;
            if chunk == 0 {
                break;
            }
            moved += chunk;
        }
        self.write("open", "*", None, migrate::finish)?;
        tracing::info!(
            path = %path,
            records = moved,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "moved the stream log's records into segments (log format 1 to 2)"
        );
        Ok(())
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Shards per stream.
    pub fn shards(&self) -> u32 {
        self.inner.config.shards_per_stream
    }

    /// The shard a record lands on: FNV-1a 64 of its partition key modulo the shard count,
    /// or without a key of its data, so that a replayed request lands on the same shard. Stable
    /// across processes and versions (see [`shard_for`](crate::shard_for)).
    pub fn shard_for(&self, partition_key: Option<&str>, data: &[u8]) -> u32 {
        shard::shard_for(partition_key, data, self.shards())
    }

    /// Appends `records` to `stream` in one write transaction and returns, per record in the
    /// order given, its shard and sequence number.
    ///
    /// Sequence numbers are per (stream, shard): they start at 0, increase by one per record
    /// and are never reused, even after retention removed the records. When this returns `Ok`
    /// the records are on disk (fsync) and survive a crash of the process or the machine;
    /// when it returns an error none of them was appended.
    ///
    /// Concurrent appends share fsyncs (group commit): the appends that arrive while one
    /// transaction is being written go together into the next, each keeping its records in
    /// order and contiguous per shard. If that transaction fails, every append in it fails
    /// and none of their records is stored.
    ///
    /// # Errors
    ///
    /// [`LogError::EmptyName`] for an empty stream name, [`LogError::Storage`] if the
    /// transaction failed.
    pub fn append(&self, stream: &str, records: Vec<NewRecord>) -> Result<Vec<Appended>, LogError> {
        check_name("stream", stream)?;
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let shards = records.iter().map(|r| self.shard_for(r.partition_key.as_deref(), &r.data)).collect();
        let mut queue = self.inner.appends.lock().unwrap_or_else(PoisonError::into_inner);
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        queue.waiting.push(QueuedAppend { ticket, stream: stream.to_owned(), records, shards });
        loop {
            if let Some(result) = queue.done.remove(&ticket) {
                return result;
            }
            if queue.writing {
                queue = self.inner.group_done.wait(queue).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            // Lead: write everything queued (this append included) in one transaction.
            queue.writing = true;
            let group = std::mem::take(&mut queue.waiting);
            drop(queue);
            let tickets: Vec<u64> = group.iter().map(|a| a.ticket).collect();
            let results = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.append_group(group)))
                .unwrap_or_else(|_| {
                    tickets.iter().map(|_| Err(self.group_error("the append transaction panicked"))).collect()
                });
            queue = self.inner.appends.lock().unwrap_or_else(PoisonError::into_inner);
            queue.writing = false;
            queue.done.extend(tickets.into_iter().zip(results));
            self.inner.group_done.notify_all();
        }
    }

    /// Writes a group of appends in one transaction; one result per append, in order.
    fn append_group(&self, group: Vec<QueuedAppend>) -> Vec<Result<Vec<Appended>, LogError>> {
        let label = match group.first() {
            Some(first) if group.iter().all(|a| a.stream == first.stream) => first.stream.clone(),
            _ => "*".to_owned(),
        };
        let written = self.write("append", &label, None, |txn| {
            let mut segments = txn.open_table(SEGMENTS)?;
            let mut heads = txn.open_table(SHARDS)?;
            // Each (stream, shard) the group touches: its counters and the segment being
            // written, which holds the records from `first_seq` on.
            let mut shards: BTreeMap<(&str, u32), ShardAppend> = BTreeMap::new();
            let mut all = Vec::with_capacity(group.len());
            for append in &group {
                let stream = append.stream.as_str();
                let mut appended = Vec::with_capacity(append.records.len());
                for (record, &shard) in append.records.iter().zip(&append.shards) {
                    let open = match shards.entry((stream, shard)) {
                        Entry::Occupied(entry) => entry.into_mut(),
                        Entry::Vacant(entry) => {
                            let (next_seq, bytes) = heads.get((stream, shard))?.map_or((0, 0), |head| head.value());
                            entry.insert(ShardAppend {
                                next_seq,
                                bytes,
                                first_seq: next_seq,
                                segment: SegmentWriter::new(),
                            })
                        }
                    };
                    if open.segment.is_full() {
                        segments.insert((stream, shard, open.first_seq), open.segment.finish())?;
                        open.segment.clear();
                        open.first_seq = open.next_seq;
                    }
                    let seq = open.next_seq;
                    open.bytes += open.segment.push(record);
                    open.next_seq += 1;
                    appended.push(Appended { shard, seq });
                }
                all.push(appended);
            }
            for ((stream, shard), mut open) in shards {
                if !open.segment.is_empty() {
                    segments.insert((stream, shard, open.first_seq), open.segment.finish())?;
                }
                heads.insert((stream, shard), (open.next_seq, open.bytes))?;
            }
            Ok(all)
        });
        self.inner.append_transactions.fetch_add(1, Ordering::Relaxed);
        match written {
            Ok(all) => {
                for (append, appended) in group.iter().zip(&all) {
                    self.announce(&append.stream, appended.len() as u64);
                }
                all.into_iter().map(Ok).collect()
            }
            Err(error) => {
                // The first append gets the error itself, the others what it said.
                let reason = match &error {
                    LogError::Storage { source, .. } => source.to_string(),
                    other => other.to_string(),
                };
                let mut results = vec![Err(error)];
                results.extend(group.iter().skip(1).map(|_| Err(self.group_error(&reason))));
                results
            }
        }
    }

    /// The error an append gets when the transaction it shared with others failed.
    fn group_error(&self, reason: &str) -> LogError {
        LogError::Storage {
            path: self.inner.path.clone(),
            operation: "append",
            stream: "*".to_owned(),
            shard: None,
            source: Box::new(redb::Error::Io(std::io::Error::other(format!(
                "the transaction this append shared with others failed: {reason}"
            )))),
        }
    }

    /// How many append transactions (each one fsync) this handle has committed or tried:
    /// fewer than its appends when group commit shared fsyncs.
    pub fn append_transactions(&self) -> u64 {
        self.inner.append_transactions.load(Ordering::Relaxed)
    }

    /// The records of `shard` whose sequence number is `from_seq` or more, in order: at most
    /// `max_records`, and no more than `max_bytes` of data, except that the first record is
    /// always returned, however large (so a consumer never stalls on a big record). Empty
    /// when there is nothing from `from_seq` on, or when `max_records` is 0.
    ///
    /// Records removed by retention are skipped: the first record returned may have a
    /// sequence number above `from_seq`.
    ///
    /// # Errors
    ///
    /// [`LogError::NoSuchShard`], [`LogError::Storage`], or [`LogError::Corrupt`] for a
    /// record that cannot be decoded.
    pub fn read(
        &self,
        stream: &str,
        shard: u32,
        from_seq: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredRecord>, LogError> {
        self.check_shard(stream, shard)?;
        if max_records == 0 {
            return Ok(Vec::new());
        }
        self.read_txn("read", stream, Some(shard), |txn| {
            let segments = txn.open_table(SEGMENTS)?;
            // The segment holding `from_seq` begins at it or before it.
            let start = match segments.range((stream, shard, 0)..=(stream, shard, from_seq))?.next_back() {
                Some(entry) => entry?.0.value().2,
                None => from_seq,
            };
            let mut records = Vec::new();
            let mut bytes = 0;
            'segments: for entry in segments.range((stream, shard, start)..=(stream, shard, u64::MAX))? {
                let (key, value) = entry?;
                let first = key.value().2;
                let corrupt = |detail| self.corrupt(format!("segment {first}"), stream, Some(shard), detail);
                let walked = segment::records(first, value.value()).map_err(corrupt)?;
                if walked.end() <= from_seq {
                    continue;
                }
                for stored in walked {
                    let (seq, encoded) = stored.map_err(corrupt)?;
                    if seq < from_seq {
                        continue;
                    }
                    let record = record::decode(shard, seq, encoded)
                        .map_err(|detail| self.corrupt(format!("record {seq}"), stream, Some(shard), detail))?;
                    if !records.is_empty() && bytes + record.data.len() > max_bytes {
                        break 'segments;
                    }
                    bytes += record.data.len();
                    records.push(record);
                    if records.len() >= max_records {
                        break 'segments;
                    }
                }
            }
            Ok(records)
        })
    }

    /// The sequence number the next record appended to (stream, shard) will get; 0 for a
    /// shard never written. A consumer's lag is `next_seq - checkpoint.next_seq`.
    ///
    /// # Errors
    ///
    /// [`LogError::NoSuchShard`], [`LogError::Storage`].
    pub fn next_seq(&self, stream: &str, shard: u32) -> Result<u64, LogError> {
        self.check_shard(stream, shard)?;
        self.read_txn("next_seq", stream, Some(shard), |txn| {
            Ok(txn.open_table(SHARDS)?.get((stream, shard))?.map_or(0, |counter| counter.value().0))
        })
    }

    /// The records of `stream` that `consumer` has not checkpointed yet, summed over its
    /// shards, in one read transaction and without the consumer's states (ingest asks this
    /// before every append, for its backpressure limit).
    ///
    /// # Errors
    ///
    /// [`LogError::EmptyName`], [`LogError::Storage`], [`LogError::Corrupt`].
    pub fn backlog(&self, consumer: &str, stream: &str) -> Result<u64, LogError> {
        check_name("consumer", consumer)?;
        check_name("stream", stream)?;
        self.read_txn("backlog", stream, None, |txn| {
            let (heads, checkpoints) = (txn.open_table(SHARDS)?, txn.open_table(CHECKPOINTS)?);
            let mut backlog = 0;
            for shard in 0..self.shards() {
                let head = heads.get((stream, shard))?.map_or(0, |counter| counter.value().0);
                let done = match checkpoints.get((consumer, stream, shard))? {
                    Some(position) => self.decode_position(consumer, stream, shard, position.value())?.next_seq,
                    None => 0,
                };
                backlog += head.saturating_sub(done);
            }
            Ok(backlog)
        })
    }

    /// `consumer`'s checkpoint in (stream, shard), or `None` if it never began a batch there.
    ///
    /// # Errors
    ///
    /// [`LogError::NoSuchShard`], [`LogError::EmptyName`], [`LogError::Storage`],
    /// [`LogError::Corrupt`].
    pub fn checkpoint(&self, consumer: &str, stream: &str, shard: u32) -> Result<Option<Checkpoint>, LogError> {
        check_name("consumer", consumer)?;
        self.check_shard(stream, shard)?;
        self.read_txn("checkpoint", stream, Some(shard), |txn| {
            let key = (consumer, stream, shard);
            let Some(position) = txn.open_table(CHECKPOINTS)?.get(key)? else {
                return Ok(None);
            };
            let position = self.decode_position(consumer, stream, shard, position.value())?;
            let state = txn.open_table(STATES)?.get(key)?.map(|state| state.value().to_vec()).unwrap_or_default();
            Ok(Some(Checkpoint { next_seq: position.next_seq, pending: position.pending, state }))
        })
    }

    /// Records that `consumer` is about to process `first..=last` of (stream, shard), durably,
    /// so that after a crash it processes exactly the same range again before anything else
    /// (sinks derive object keys and document ids from the range, so the replay overwrites
    /// what the first attempt may have written instead of duplicating it).
    ///
    /// If a batch is already pending, nothing is recorded and that pending range is returned
    /// instead, whatever `first` and `last` are: the caller must redo it (read it with
    /// [`read`](Self::read)) and commit it first. Otherwise the new range is recorded and
    /// returned.
    ///
    /// `first` may be above the checkpoint's `next_seq` (records in between were removed by
    /// retention, or the consumer skips them); committing the batch then skips them for good.
    ///
    /// # Errors
    ///
    /// [`LogError::InvalidBatch`] if `first > last`, if `first` is below the checkpoint (those
    /// records were already committed), or if `last` is not yet appended;
    /// [`LogError::NoSuchShard`], [`LogError::EmptyName`], [`LogError::Storage`],
    /// [`LogError::Corrupt`].
    pub fn begin_batch(
        &self,
        consumer: &str,
        stream: &str,
        shard: u32,
        first: u64,
        last: u64,
    ) -> Result<BatchRange, LogError> {
        check_name("consumer", consumer)?;
        self.check_shard(stream, shard)?;
        let range = BatchRange { first, last };
        let invalid = |reason: String| -> Failure {
            LogError::InvalidBatch { consumer: consumer.to_owned(), stream: stream.to_owned(), shard, range, reason }
                .into()
        };
        self.write("begin_batch", stream, Some(shard), |txn| {
            let key = (consumer, stream, shard);
            let mut checkpoints = txn.open_table(CHECKPOINTS)?;
            let position = match checkpoints.get(key)? {
                Some(value) => self.decode_position(consumer, stream, shard, value.value())?,
                None => Position::default(),
            };
            if let Some(pending) = position.pending {
                return Ok(pending);
            }
            if first > last {
                return Err(invalid("first is after last".to_owned()));
            }
            if first < position.next_seq {
                return Err(invalid(format!(
                    "records before {} were already committed; begin at the checkpoint",
                    position.next_seq
                )));
            }
            let next_seq = txn.open_table(SHARDS)?.get((stream, shard))?.map_or(0, |counter| counter.value().0);
            if last >= next_seq {
                return Err(invalid(match next_seq {
                    0 => "the shard holds no record yet".to_owned(),
                    _ => format!("the shard's last record is {}", next_seq - 1),
                }));
            }
            checkpoints.insert(key, checkpoint::encode(Position { pending: Some(range), ..position }).as_slice())?;
            Ok(range)
        })
    }

    /// Completes the pending batch `range` once every sink acknowledged it: in one durable
    /// transaction, moves the checkpoint to `range.last + 1`, stores `state` (the consumer's
    /// opaque state as of that point, e.g. aggregator states) and clears the pending range.
    ///
    /// # Errors
    ///
    /// [`LogError::InvalidBatch`] if `range` is not the pending batch (none is pending, or
    /// another one is); [`LogError::NoSuchShard`], [`LogError::EmptyName`],
    /// [`LogError::Storage`], [`LogError::Corrupt`].
    pub fn commit_batch(
        &self,
        consumer: &str,
        stream: &str,
        shard: u32,
        range: BatchRange,
        state: Vec<u8>,
    ) -> Result<(), LogError> {
        check_name("consumer", consumer)?;
        self.check_shard(stream, shard)?;
        self.write("commit_batch", stream, Some(shard), |txn| {
            let key = (consumer, stream, shard);
            let mut checkpoints = txn.open_table(CHECKPOINTS)?;
            let position = match checkpoints.get(key)? {
                Some(value) => Some(self.decode_position(consumer, stream, shard, value.value())?),
                None => None,
            };
            let reason = match position.and_then(|position| position.pending) {
                Some(pending) if pending == range => None,
                Some(pending) => Some(format!("the pending batch is {}..={}", pending.first, pending.last)),
                None => Some("no batch is pending (begin_batch first; or it was already committed)".to_owned()),
            };
            if let Some(reason) = reason {
                let (consumer, stream) = (consumer.to_owned(), stream.to_owned());
                return Err(LogError::InvalidBatch { consumer, stream, shard, range, reason }.into());
            }
            let committed = Position { next_seq: range.last + 1, pending: None };
            checkpoints.insert(key, checkpoint::encode(committed).as_slice())?;
            txn.open_table(STATES)?.insert(key, state.as_slice())?;
            Ok(())
        })
    }

    /// A receiver that changes whenever records are appended to `stream` through this log (or
    /// a clone of it), so consumers wait instead of polling. Its value counts the records
    /// appended since the log was opened; use it as a wake-up signal only.
    ///
    /// Subscribe before reading, then wait with `changed()` when a read comes back empty: an
    /// append between the read and the wait then still wakes the consumer.
    pub fn subscribe(&self, stream: &str) -> watch::Receiver<u64> {
        let mut appended = self.inner.appended.lock().unwrap_or_else(PoisonError::into_inner);
        appended.entry(stream.to_owned()).or_insert_with(|| watch::channel(0).0).subscribe()
    }

    /// Removes, in every stream, the records that arrived before `now_micros - retention_age`,
    /// then the oldest records beyond `retention_bytes` per stream, in one durable transaction.
    ///
    /// Each shard loses a prefix of its records: a record is only removed with every older
    /// one of its shard. By size, the records with the oldest arrival time across the
    /// stream's shards go first. Sequence numbers are not reused.
    ///
    /// Records removed before every consumer with a checkpoint on the stream had committed
    /// them are counted in [`RetentionReport::removed_unconsumed`] and logged with a warning
    /// naming the consumers: that data is lost to them, as with Kinesis.
    ///
    /// # Errors
    ///
    /// [`LogError::Storage`], [`LogError::Corrupt`]; on an error nothing is removed.
    pub fn apply_retention(&self, now_micros: i64) -> Result<RetentionReport, LogError> {
        self.write("apply_retention", "*", None, |txn| {
            retention::apply(txn, &self.inner.config, now_micros, &|what, stream, shard, detail| {
                self.corrupt(what, stream, shard, detail)
            })
        })
    }

    /// The bytes stored for `stream`, all shards together: the size of its encoded records
    /// (payload plus a few bytes of metadata each), not counting the storage engine's
    /// overhead. Retention by size measures the same.
    ///
    /// # Errors
    ///
    /// [`LogError::Storage`].
    pub fn stored_bytes(&self, stream: &str) -> Result<u64, LogError> {
        self.read_txn("stored_bytes", stream, None, |txn| {
            let shards = txn.open_table(SHARDS)?;
            let mut total = 0;
            for entry in shards.range((stream, 0)..=(stream, u32::MAX))? {
                total += entry?.1.value().1;
            }
            Ok(total)
        })
    }

    fn announce(&self, stream: &str, records: u64) {
        let mut appended = self.inner.appended.lock().unwrap_or_else(PoisonError::into_inner);
        let sender = appended.entry(stream.to_owned()).or_insert_with(|| watch::channel(0).0);
        sender.send_modify(|count| *count = count.wrapping_add(records));
    }

    fn check_shard(&self, stream: &str, shard: u32) -> Result<(), LogError> {
        check_name("stream", stream)?;
        if shard >= self.shards() {
            return Err(LogError::NoSuchShard { stream: stream.to_owned(), shard, shards: self.shards() });
        }
        Ok(())
    }

    /// Runs `body` in a write transaction committed with an fsync.
    fn write<T>(
        &self,
        operation: &'static str,
        stream: &str,
        shard: Option<u32>,
        body: impl FnOnce(&WriteTransaction) -> Result<T, Failure>,
    ) -> Result<T, LogError> {
        let run = || {
            let mut txn = self.inner.db.begin_write()?;
            txn.set_durability(Durability::Immediate)?;
            let value = body(&txn)?;
            txn.commit()?;
            Ok(value)
        };
        run().map_err(|failure| self.failed(failure, operation, stream, shard))
    }

    fn read_txn<T>(
        &self,
        operation: &'static str,
        stream: &str,
        shard: Option<u32>,
        body: impl FnOnce(&ReadTransaction) -> Result<T, Failure>,
    ) -> Result<T, LogError> {
        let run = || body(&self.inner.db.begin_read()?);
        run().map_err(|failure| self.failed(failure, operation, stream, shard))
    }

    fn failed(&self, failure: Failure, operation: &'static str, stream: &str, shard: Option<u32>) -> LogError {
        match failure {
            Failure::Log(error) => error,
            Failure::Storage(source) => LogError::Storage {
                path: self.inner.path.clone(),
                operation,
                stream: stream.to_owned(),
                shard,
                source: Box::new(source),
            },
        }
    }

    fn corrupt(&self, what: String, stream: &str, shard: Option<u32>, detail: String) -> Failure {
        LogError::Corrupt { path: self.inner.path.clone(), what, stream: stream.to_owned(), shard, detail }.into()
    }

    fn decode_position(&self, consumer: &str, stream: &str, shard: u32, value: &[u8]) -> Result<Position, Failure> {
        checkpoint::decode(value)
            .map_err(|detail| self.corrupt(format!("checkpoint of consumer `{consumer}`"), stream, Some(shard), detail))
    }
}

fn check_name(kind: &'static str, name: &str) -> Result<(), LogError> {
    if name.is_empty() {
        return Err(LogError::EmptyName { kind });
    }
    Ok(())
}
