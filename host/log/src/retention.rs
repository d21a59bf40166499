//! Trimming streams by age and size, as Kinesis does, and telling who lost data to it.

use std::collections::{BTreeMap, BTreeSet};

use redb::{Range, ReadableTable, Table, WriteTransaction};

use crate::LogConfig;
use crate::checkpoint;
use crate::record;
use crate::segment;
use crate::tables::{CHECKPOINTS, Failure, SEGMENTS, SHARDS};

/// What [`EmbeddedLog::apply_retention`](crate::EmbeddedLog::apply_retention) removed. Streams
/// that lost nothing are not listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Per stream, how many records were removed.
    pub removed: Vec<(String, u64)>,
    /// Per stream, how many of the removed records some consumer with a checkpoint on that
    /// stream had not committed yet: data lost to that consumer.
    pub removed_unconsumed: Vec<(String, u64)>,
}

/// Builds a [`Failure`] for a value that cannot be decoded: (what, stream, shard, detail).
pub(crate) type CorruptFn<'a> = dyn Fn(String, &str, Option<u32>, String) -> Failure + 'a;

/// The retention pass, inside the caller's write transaction.
pub(crate) fn apply(
    txn: &WriteTransaction,
    config: &LogConfig,
    now_micros: i64,
    corrupt: &CorruptFn<'_>,
) -> Result<RetentionReport, Failure> {
    let max_age = i64::try_from(config.retention_age.as_micros()).unwrap_or(i64::MAX);
    let cutoff = now_micros.saturating_sub(max_age);
    let mut shards = txn.open_table(SHARDS)?;
    let mut segments = txn.open_table(SEGMENTS)?;

    // stream → shard → (next_seq, stored_bytes)
    let mut streams: BTreeMap<String, BTreeMap<u32, (u64, u64)>> = BTreeMap::new();
    for entry in shards.iter()? {
        let (key, counter) = entry?;
        let (stream, shard) = key.value();
        streams.entry(stream.to_owned()).or_default().insert(shard, counter.value());
    }
    // stream → consumer → shard → the consumer's next_seq there
    let mut consumers: BTreeMap<String, BTreeMap<String, BTreeMap<u32, u64>>> = BTreeMap::new();
    for entry in txn.open_table(CHECKPOINTS)?.iter()? {
        let (key, value) = entry?;
        let (consumer, stream, shard) = key.value();
        let position = checkpoint::decode(value.value())
            .map_err(|detail| corrupt(format!("checkpoint of consumer `{consumer}`"), stream, Some(shard), detail))?;
        consumers
            .entry(stream.to_owned())
            .or_default()
            .entry(consumer.to_owned())
            .or_default()
            .insert(shard, position.next_seq);
    }

    let mut report = RetentionReport::default();
    for (stream, counters) in &streams {
        let stream_consumers = consumers.get(stream);
        let plan = plan(&segments, stream, counters, stream_consumers, cutoff, config.retention_bytes, corrupt)?;
        let mut removed = 0;
        let mut unconsumed = 0;
        let mut lagging = BTreeSet::new();
        for trim in plan.into_iter().filter(|trim| trim.removed > 0) {
            cut(&mut segments, stream, trim.shard, trim.keep_from, corrupt)?;
            let (next_seq, bytes) = counters[&trim.shard];
            shards.insert((stream.as_str(), trim.shard), (next_seq, bytes.saturating_sub(trim.freed_bytes)))?;
            removed += trim.removed;
            unconsumed += trim.unconsumed;
            // Consumers whose checkpoint on this shard is below the new first record.
            for (consumer, positions) in stream_consumers.into_iter().flatten() {
                if positions.get(&trim.shard).copied().unwrap_or(0) < trim.keep_from {
                    lagging.insert(consumer.as_str());
                }
            }
        }
        if removed > 0 {
            report.removed.push((stream.clone(), removed));
        }
        if unconsumed > 0 {
            let lagging = lagging.into_iter().collect::<Vec<_>>().join(", ");
            tracing::warn!(
                stream = %stream,
                removed,
                unconsumed,
                consumers = %lagging,
                "retention removed records that consumers had not processed yet; that data is lost to them"
            );
            report.removed_unconsumed.push((stream.clone(), unconsumed));
        }
    }
    Ok(report)
}

/// What retention removes from one shard: the records below `keep_from`.
#[derive(Debug)]
struct ShardTrim {
    shard: u32,
    keep_from: u64,
    removed: u64,
    freed_bytes: u64,
    unconsumed: u64,
    /// The lowest checkpoint among the stream's consumers on this shard (0 for a consumer
    /// with none here); `None` if the stream has no consumer with a checkpoint.
    slowest_consumer: Option<u64>,
}

/// The oldest record still kept in a shard, as retention walks it.
struct Head {
    seq: u64,
    arrival_time: i64,
    bytes: u64,
}

/// One shard as retention walks it from its oldest record.
struct Walk<I> {
    trim: ShardTrim,
    head: Option<Head>,
    rest: I,
}

impl<I: Iterator<Item = Result<Head, Failure>>> Walk<I> {
    /// Removes the head record (in the plan) and moves to the next one.
    fn remove_head(&mut self, total_bytes: &mut u64) -> Result<(), Failure> {
        let Some(removed) = self.head.take() else { return Ok(()) };
        let trim = &mut self.trim;
        trim.keep_from = removed.seq + 1;
        trim.removed += 1;
        trim.freed_bytes += removed.bytes;
        if trim.slowest_consumer.is_some_and(|slowest| removed.seq >= slowest) {
            trim.unconsumed += 1;
        }
        *total_bytes = total_bytes.saturating_sub(removed.bytes);
        self.head = self.rest.next().transpose()?;
        Ok(())
    }
}

/// Decides, for one stream, how many records each shard loses: first those older than
/// `cutoff`, then, while the stream holds more than `max_bytes`, the record with the oldest
/// arrival time among the shards' first records.
fn plan(
    segments: &Table<'_, (&str, u32, u64), &[u8]>,
    stream: &str,
    counters: &BTreeMap<u32, (u64, u64)>,
    consumers: Option<&BTreeMap<String, BTreeMap<u32, u64>>>,
    cutoff: i64,
    max_bytes: u64,
    corrupt: &CorruptFn<'_>,
) -> Result<Vec<ShardTrim>, Failure> {
    let mut total_bytes: u64 = counters.values().map(|(_, bytes)| bytes).sum();
    let mut walks = Vec::with_capacity(counters.len());
    for &shard in counters.keys() {
        let slowest_consumer = consumers.map(|consumers| {
            consumers.values().map(|positions| positions.get(&shard).copied().unwrap_or(0)).min().unwrap_or(0)
        });
        let trim = ShardTrim { shard, keep_from: 0, removed: 0, freed_bytes: 0, unconsumed: 0, slowest_consumer };
        let segments = segments.range((stream, shard, 0)..=(stream, shard, u64::MAX))?;
        let mut rest = Heads { segments, walked: Vec::new().into_iter(), stream, shard, corrupt };
        let head = rest.next().transpose()?;
        walks.push(Walk { trim, head, rest });
    }

    // By age: each shard's prefix that arrived before the cutoff.
    for walk in &mut walks {
        while walk.head.as_ref().is_some_and(|head| head.arrival_time < cutoff) {
            walk.remove_head(&mut total_bytes)?;
        }
    }
    // By size: the oldest first records across shards, until the stream fits.
    while total_bytes > max_bytes {
        let oldest = walks
            .iter_mut()
            .filter_map(|walk| walk.head.as_ref().map(|head| (head.arrival_time, head.seq)).map(|order| (order, walk)))
            .min_by_key(|(order, _)| *order);
        let Some((_, oldest)) = oldest else { break };
        oldest.remove_head(&mut total_bytes)?;
    }
    Ok(walks.into_iter().map(|walk| walk.trim).collect())
}

/// A shard's records from its oldest, segment by segment, as retention walks them: only
/// each record's sequence number, arrival time and size are kept, one segment at a time.
struct Heads<'r, 's, 'c> {
    segments: Range<'r, (&'static str, u32, u64), &'static [u8]>,
    walked: std::vec::IntoIter<Result<Head, Failure>>,
    stream: &'s str,
    shard: u32,
    corrupt: &'c CorruptFn<'c>,
}

impl Iterator for Heads<'_, '_, '_> {
    type Item = Result<Head, Failure>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(head) = self.walked.next() {
                return Some(head);
            }
            let (key, value) = match self.segments.next()? {
                Ok(entry) => entry,
                Err(error) => return Some(Err(error.into())),
            };
            let first = key.value().2;
            let (stream, shard, corrupt) = (self.stream, self.shard, self.corrupt);
            let heads: Vec<Result<Head, Failure>> = match segment::records(first, value.value()) {
                Err(detail) => vec![Err(corrupt(format!("segment {first}"), stream, Some(shard), detail))],
                Ok(records) => records
                    .map(|entry| {
                        let (seq, encoded) =
                            entry.map_err(|detail| corrupt(format!("segment {first}"), stream, Some(shard), detail))?;
                        let arrival_time = record::arrival_time(encoded)
                            .map_err(|detail| corrupt(format!("record {seq}"), stream, Some(shard), detail))?;
                        Ok(Head { seq, arrival_time, bytes: encoded.len() as u64 })
                    })
                    .collect(),
            };
            self.walked = heads.into_iter();
        }
    }
}

/// Removes the records of (stream, shard) below `keep_from`: the segments wholly below it,
/// and the one it falls inside is stored again as its kept tail, under `keep_from`.
fn cut(
    segments: &mut Table<'_, (&str, u32, u64), &[u8]>,
    stream: &str,
    shard: u32,
    keep_from: u64,
    corrupt: &CorruptFn<'_>,
) -> Result<(), Failure> {
    let straddling = match segments.range((stream, shard, 0)..(stream, shard, keep_from))?.next_back() {
        Some(entry) => {
            let (key, value) = entry?;
            let first = key.value().2;
            segment::tail(first, value.value(), keep_from)
                .map_err(|detail| corrupt(format!("segment {first}"), stream, Some(shard), detail))?
        }
        None => None,
    };
    segments.retain_in((stream, shard, 0)..(stream, shard, keep_from), |_, _| false)?;
    if let Some(tail) = straddling {
        segments.insert((stream, shard, keep_from), tail.as_slice())?;
    }
    Ok(())
}
