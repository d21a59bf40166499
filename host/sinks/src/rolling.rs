//! Rolling lake files by size and time, like Firehose's buffering hints: a stream's
//! commits are staged, durably, under `_staging/` (outside every reader's glob), and each
//! group of one kind, stream, date and shard becomes **one** object in the lake once it
//! holds [`RollPolicy::size`] bytes or its oldest staged commit is
//! [`RollPolicy::interval`] old — instead of one small file per commit and shard.
//!
//! Delivery stays what it was. A commit is acknowledged once it is staged, so nothing is
//! lost to a crash; the rolled object is written whole (one `put`) before the staged
//! objects are removed, and is named by the range it covers
//! (`<first of the first commit>-<last of the last>`), which is how a restart tells what
//! was already rolled: staged objects whose range a rolled object covers are removed, not
//! rolled again, and a replayed commit whose range was rolled is not staged again. Events
//! and aggregates are staged as NDJSON of weir's event form (types kept), so the rolled
//! Parquet file types every column from all its rows, exactly as one commit of all of
//! them would be.
//!
//! Only stream commits roll; a batch job's partitions are written as they are (a job's
//! output is already one file per partition, made visible by its manifest).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use weir_events::json::{EventFromJson, EventJson};

use crate::layout::{is_interrupted_write, put_object};
use crate::objects::delete_if_present;
use crate::sink::{EventItem, SinkItem, SinkRecord};

/// The top-level prefix staged commits are kept under.
pub const STAGING: &str = "_staging";

/// When a group of staged commits becomes one lake object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollPolicy {
    /// Roll once the group's staged objects hold this many bytes.
    pub size: usize,
    /// Roll once the group's oldest staged commit is this old (checked every second or
    /// so, and at shutdown).
    pub interval: Duration,
}

impl Default for RollPolicy {
    /// 64 MiB or 60 s, Firehose's largest size hint and its shortest interval.
    fn default() -> Self {
        Self { size: 64 << 20, interval: Duration::from_secs(60) }
    }
}

/// One staged event or aggregate as written: what its row in the rolled Parquet file needs.
#[derive(Serialize)]
struct StagedRow<'a> {
    id: &'a str,
    seq: &'a str,
    lineage: &'a str,
    event: EventJson<'a>,
}

/// A [`StagedRow`] read back, its event straight into an [`weir_events::Event`] (no JSON
/// tree of it in between: that was most of a roll's CPU).
#[derive(Deserialize)]
struct StagedRowRead {
    id: String,
    seq: String,
    lineage: String,
    event: EventFromJson,
}

/// The staged NDJSON of `rows` (events or aggregates).
pub(crate) fn staged_rows(rows: &[(&SinkRecord, &EventItem)]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for (record, item) in rows {
        // Written straight from the event: no JSON value built in between.
        let row =
            StagedRow { id: &record.id, seq: &record.position, lineage: &item.lineage, event: EventJson(&item.event) };
        serde_json::to_writer(&mut out, &row).map_err(|e| e.to_string())?;
        out.push(b'\n');
    }
    Ok(out)
}

/// A group: the objects of one kind, stream, date and shard, i.e. one lake directory.
#[derive(Debug, Default)]
struct Group {
    /// Staged objects by file name (`<first>-<last>.<ext>`, log order), with their sizes.
    staged: BTreeMap<String, usize>,
    bytes: usize,
    /// When the oldest staged object was staged.
    oldest: Option<Instant>,
    /// The last position a rolled object of this directory covers, once known.
    rolled_through: Option<String>,
}

/// The staged commits of one lake sink and the rolling of them.
#[derive(Debug)]
pub(crate) struct Roller {
    sink: String,
    store: Arc<dyn ObjectStore>,
    policy: RollPolicy,
    /// By lake directory (`events/stream=orders/date=2026-12-03/shard=0001`).
    groups: tokio::sync::Mutex<BTreeMap<String, Group>>,
}

/// `<first>-<last>` of a file name, each a position key.
fn range_of(file_name: &str) -> Option<(&str, &str)> {
    let stem = file_name.rsplit_once('.').map_or(file_name, |(stem, _)| stem);
    stem.split_once('-')
}

/// Orders position keys as numbers (keys of one shard have one width, but Kinesis'
/// longer sequence numbers are compared right too).
fn position_le(a: &str, b: &str) -> bool {
    (a.len(), a) <= (b.len(), b)
}

impl Roller {
    pub(crate) fn new(sink: &str, store: Arc<dyn ObjectStore>, policy: RollPolicy) -> Self {
        Self { sink: sink.to_owned(), store, policy, groups: tokio::sync::Mutex::new(BTreeMap::new()) }
    }

    /// How old a group's oldest staged commit may get.
    pub(crate) fn interval(&self) -> Duration {
        self.policy.interval
    }

    /// Stages `bytes`, the object the lake would write at `key`, unless a rolled object
    /// already covers its range (a replay). Rolls the group at once when it reached the
    /// size bound. `Err` (the put's error) when staging failed: the commit is not written.
    pub(crate) async fn stage(&self, key: &Path, bytes: Vec<u8>) -> Result<(), String> {
        let (dir, file) = split(key);
        {
            let mut groups = self.groups.lock().await;
            if !groups.contains_key(&dir) {
                let rolled_through = self.rolled_through(&dir).await.map_err(|e| e.to_string())?;
                groups.insert(dir.clone(), Group { rolled_through, ..Group::default() });
            }
            let group = groups.get(&dir).expect("inserted above");
            if let (Some((_, last)), Some(through)) = (range_of(&file), &group.rolled_through)
                && position_le(last, through)
            {
                return Ok(());
            }
        }
        // The put runs outside the lock, so shards stage at the same time (a shard's
        // own commits come one after the other, so its group cannot roll past this one).
        let size = bytes.len();
        put_object(&self.sink, self.store.as_ref(), &staged_key(&dir, &file), bytes)
            .await
            .map_err(|e| e.to_string())?;
        let mut groups = self.groups.lock().await;
        if !groups.contains_key(&dir) {
            // Rolled and forgotten meanwhile: what was rolled is listed again.
            let rolled_through = self.rolled_through(&dir).await.map_err(|e| e.to_string())?;
            groups.insert(dir.clone(), Group { rolled_through, ..Group::default() });
        }
        let group = groups.get_mut(&dir).expect("inserted above");
        if let Some(previous) = group.staged.insert(file, size) {
            group.bytes -= previous;
        }
        group.bytes += size;
        group.oldest.get_or_insert_with(Instant::now);
        if group.bytes >= self.policy.size
            && let Err(e) = self.roll(&dir, group).await
        {
            tracing::warn!(sink = %self.sink, %dir, "cannot roll the staged objects yet ({e}); they stay staged and are retried");
        }
        Ok(())
    }

    /// Rolls every group whose oldest staged commit is at least `interval` old (all of
    /// them with `Duration::ZERO`). Failures are logged and retried on the next call.
    pub(crate) async fn roll_due(&self, interval: Duration) {
        let mut groups = self.groups.lock().await;
        for (dir, group) in groups.iter_mut() {
            if group.oldest.is_some_and(|oldest| oldest.elapsed() >= interval)
                && let Err(e) = self.roll(dir, group).await
            {
                tracing::warn!(sink = %self.sink, %dir, "cannot roll the staged objects yet ({e}); retrying");
            }
        }
        // Groups of past dates (or idle shards) that rolled are forgotten.
        groups.retain(|_, group| !group.staged.is_empty());
    }

    /// Takes over staged objects no one rolled — left by an earlier run of this host, or
    /// by a host that died (several hosts may share a lake on S3) — that are at least
    /// `min_age` old (for a shared lake [`orphan_age`](Self::orphan_age): a live host
    /// rolls its own well before):
    /// objects a rolled object covers are removed, the others roll with this host's.
    pub(crate) async fn adopt_orphans(&self, min_age: Duration) -> Result<usize, object_store::Error> {
        let mut listing = self.store.list(Some(&Path::from(STAGING)));
        let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
        let mut found: BTreeMap<String, Vec<(String, usize, Duration)>> = BTreeMap::new();
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            let Some(file) = meta.location.filename().map(str::to_owned) else { continue };
            if is_interrupted_write(&file) {
                continue;
            }
            let parts: Vec<String> = meta.location.parts().skip(1).map(|p| p.as_ref().to_owned()).collect();
            let Some((_, dir_parts)) = parts.split_last() else { continue };
            let dir = dir_parts.join("/");
            let modified_ms = u128::try_from(meta.last_modified.timestamp_millis()).unwrap_or(0);
            let age = Duration::from_millis(u64::try_from(now_ms.saturating_sub(modified_ms)).unwrap_or(u64::MAX));
            if age < min_age {
                continue;
            }
            found.entry(dir).or_default().push((file, usize::try_from(meta.size).unwrap_or(usize::MAX), age));
        }
        let mut groups = self.groups.lock().await;
        let mut recovered = 0;
        for (dir, files) in found {
            let rolled_through = self.rolled_through(&dir).await?;
            let group = groups.entry(dir.clone()).or_insert_with(|| Group { rolled_through, ..Group::default() });
            for (file, size, age) in files {
                if group.staged.contains_key(&file) {
                    continue;
                }
                let covered = range_of(&file)
                    .zip(group.rolled_through.as_deref())
                    .is_some_and(|((_, last), through)| position_le(last, through));
                if covered {
                    delete_if_present(self.store.as_ref(), &staged_key(&dir, &file)).await?;
                    continue;
                }
                group.bytes += size;
                group.staged.insert(file, size);
                let staged_at = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
                group.oldest = Some(group.oldest.map_or(staged_at, |oldest| oldest.min(staged_at)));
                recovered += 1;
            }
        }
        groups.retain(|_, group| !group.staged.is_empty());
        Ok(recovered)
    }

    /// How old a staged object no one tracks must be before this host takes it over:
    /// three intervals (and at least a second), well past when its own host rolls it.
    pub(crate) fn orphan_age(&self) -> Duration {
        (self.policy.interval * 3).max(Duration::from_secs(1))
    }

    /// The last position the objects already in `dir` cover.
    async fn rolled_through(&self, dir: &str) -> Result<Option<String>, object_store::Error> {
        let listed = self.store.list_with_delimiter(Some(&Path::from(dir))).await?;
        Ok(listed
            .objects
            .iter()
            .filter_map(|meta| meta.location.filename())
            .filter(|file| !is_interrupted_write(file))
            .filter_map(|file| range_of(file).map(|(_, last)| last.to_owned()))
            .reduce(|a, b| if position_le(&a, &b) { b } else { a }))
    }

    /// Writes the group's staged objects as one object in `dir`, then removes them.
    async fn roll(&self, dir: &str, group: &mut Group) -> Result<(), String> {
        let (Some(first), Some(last)) = (group.staged.keys().next(), group.staged.keys().next_back()) else {
            return Ok(());
        };
        let (Some((from, _)), Some((_, to))) = (range_of(first), range_of(last)) else {
            return Err(format!("staged objects with names that are not log ranges: {first}, {last}"));
        };
        let extension = first.rsplit_once('.').map_or("", |(_, ext)| ext).to_owned();
        let rolled_name = format!("{from}-{to}.{extension}");
        let to = to.to_owned();
        let mut contents = Vec::with_capacity(group.staged.len());
        for file in group.staged.keys() {
            let key = staged_key(dir, file);
            let got = self.store.get(&key).await.map_err(|e| format!("reading {key}: {e}"))?;
            contents.push(got.bytes().await.map_err(|e| format!("reading {key}: {e}"))?);
        }
        let bytes = if extension == "parquet" { parquet_of(&contents)? } else { contents.concat() };
        let key = Path::from(format!("{dir}/{rolled_name}"));
        put_object(&self.sink, self.store.as_ref(), &key, bytes).await.map_err(|e| e.to_string())?;
        tracing::debug!(sink = %self.sink, %key, objects = group.staged.len(), "staged commits rolled into one lake object");
        for file in std::mem::take(&mut group.staged).into_keys() {
            delete_if_present(self.store.as_ref(), &staged_key(dir, &file)).await.map_err(|e| e.to_string())?;
        }
        group.bytes = 0;
        group.oldest = None;
        group.rolled_through = Some(to);
        Ok(())
    }
}

/// The Parquet file of staged events: every row of every staged object, in order, typed
/// together.
fn parquet_of(staged: &[bytes::Bytes]) -> Result<Vec<u8>, String> {
    let mut rows: Vec<(SinkRecord, Arc<EventItem>)> = Vec::new();
    for object in staged {
        for line in object.split(|&b| b == b'\n').filter(|line| !line.is_empty()) {
            let row: StagedRowRead = serde_json::from_slice(line).map_err(|e| format!("a staged row: {e}"))?;
            let item = Arc::new(EventItem { event: row.event.0, lineage: row.lineage });
            let record = SinkRecord { id: row.id, position: row.seq, item: SinkItem::Event(item.clone()) };
            rows.push((record, item));
        }
    }
    let table: Vec<(&SinkRecord, &EventItem)> = rows.iter().map(|(r, e)| (r, e.as_ref())).collect();
    crate::table::parquet_file(&table)
}

/// The directory and file name of a lake key.
fn split(key: &Path) -> (String, String) {
    let text = key.as_ref();
    match text.rsplit_once('/') {
        Some((dir, file)) => (dir.to_owned(), file.to_owned()),
        None => (String::new(), text.to_owned()),
    }
}

fn staged_key(dir: &str, file: &str) -> Path {
    Path::from(format!("{STAGING}/{dir}/{file}"))
}
