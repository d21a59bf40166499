//! The commit protocol of batch jobs: a run's outputs count only once its manifest is
//! written, last, at `_jobs/<job>/<run>.json` in the lake the job reads.
//!
//! A run writes each level's rows to each of its sinks as one commit named by the job,
//! level and run ([`CommitId::Job`](crate::CommitId)), so a rerun of the same period
//! overwrites the same objects, item ids and document ids. Before writing, a rerun removes
//! the manifest of the earlier run of the period; after every sink acknowledged, it
//! writes the new one. Readers that honour manifests (`GET /v1/aggregates`, the job
//! listing) therefore see a period's batch results whole or not at all, and a run
//! killed midway leaves its period without a manifest until a rerun completes it.

use std::collections::{BTreeMap, BTreeSet};

use object_store::path::{Path, PathPart};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::objects::{delete_if_present, get_if_present};
use crate::sink::KeptRecord;

/// What a completed run wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunManifest {
    /// The job.
    pub job: String,
    /// The run's id: the start of its period, `20261201T000000Z`.
    pub run: String,
    /// The stream whose raw archive it read.
    pub stream: String,
    /// The event-time period it covers, `[from, to)`, microseconds since the Unix epoch.
    pub from: i64,
    /// See `from`.
    pub to: i64,
    /// When the run started and finished, RFC 3339.
    pub started: String,
    /// See `started`.
    pub finished: String,
    /// What asked for it: `schedule`, `on-demand` or `backfill`.
    pub trigger: String,
    /// The plugins the records went through, `name@version`, in order.
    pub plugins: Vec<String>,
    /// Raw records read.
    pub records: u64,
    /// Events in the period after the plugins.
    pub events: u64,
    /// Records and rows dead-lettered, with the reason.
    pub dead_letters: u64,
    /// Per level: its rows, its sinks and its lineage.
    pub levels: BTreeMap<String, LevelManifest>,
}

/// One level of a [`RunManifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelManifest {
    /// The source its rows were written under: `<job>.<level>`.
    pub source: String,
    /// Rows written.
    pub rows: u64,
    /// The sinks that acknowledged them.
    pub sinks: Vec<String>,
    /// Whether the level's rows replace the stream's aggregates for the period.
    pub replaces_stream_aggregates: bool,
}

impl RunManifest {
    /// Where the manifest of `run` of `job` lives.
    pub fn path(job: &str, run: &str) -> Path {
        Path::from_iter([PathPart::from("_jobs"), PathPart::from(job), PathPart::from(format!("{run}.json"))])
    }

    /// Writes the manifest (the run's last write).
    ///
    /// # Errors
    /// The store's error.
    pub async fn write(&self, store: &dyn ObjectStore) -> Result<(), object_store::Error> {
        put_json(store, &Self::path(&self.job, &self.run), serde_json::to_vec_pretty(self)).await
    }

    /// Removes the manifest of `run` of `job`, if any (a rerun's first write).
    ///
    /// # Errors
    /// The store's error.
    pub async fn remove(store: &dyn ObjectStore, job: &str, run: &str) -> Result<(), object_store::Error> {
        delete_if_present(store, &Self::path(job, run)).await
    }

    /// The manifests of every completed run of `job`, in run order. Unreadable manifests
    /// are skipped with a warning.
    ///
    /// # Errors
    /// The store cannot be listed.
    pub async fn list(store: &dyn ObjectStore, job: &str) -> Result<Vec<RunManifest>, object_store::Error> {
        let mut paths: Vec<Path> = Self::listed(store, job).await?.into_iter().map(|o| o.location).collect();
        paths.sort();
        Self::read(store, paths).await
    }

    /// The manifests of the `n` runs of `job` written last (a backfill of an old period
    /// counts as recent), newest first: one listing, then only `n` reads, however long
    /// the job's history (what `GET /v1/jobs` answers on every request).
    ///
    /// # Errors
    /// The store cannot be listed.
    pub async fn latest(store: &dyn ObjectStore, job: &str, n: usize) -> Result<Vec<RunManifest>, object_store::Error> {
        let mut listed = Self::listed(store, job).await?;
        listed.sort_by(|a, b| (b.last_modified, &b.location).cmp(&(a.last_modified, &a.location)));
        listed.truncate(n);
        Self::read(store, listed.into_iter().map(|o| o.location).collect()).await
    }

    /// The manifest objects of `job`.
    async fn listed(store: &dyn ObjectStore, job: &str) -> Result<Vec<object_store::ObjectMeta>, object_store::Error> {
        let prefix = Path::from_iter([PathPart::from("_jobs"), PathPart::from(job)]);
        let listed = store.list_with_delimiter(Some(&prefix)).await?;
        Ok(listed.objects.into_iter().filter(|o| o.location.extension() == Some("json")).collect())
    }

    /// The manifests at `paths`, in that order; removed ones skipped, unreadable ones
    /// skipped with a warning.
    async fn read(store: &dyn ObjectStore, paths: Vec<Path>) -> Result<Vec<RunManifest>, object_store::Error> {
        let mut manifests = Vec::with_capacity(paths.len());
        for path in paths {
            // None: removed by a rerun since the listing.
            let Some(bytes) = get_if_present(store, &path).await? else { continue };
            match serde_json::from_slice(&bytes) {
                Ok(manifest) => manifests.push(manifest),
                Err(e) => tracing::warn!("skipping the unreadable job manifest {path}: {e}"),
            }
        }
        Ok(manifests)
    }
}

/// Why the newest failed run of a job failed, at `_jobs/<job>/failed/last.json` (beside
/// the manifests, in a directory of its own so that listing manifests does not list it):
/// what `weir batch list` shows for a job whose newest run failed. A failed run's outputs
/// never count (it writes no manifest); this record only says that it failed and why.
/// Each failed run overwrites it and each completed run removes it, so a job has at most
/// one, read without a listing. A run killed with `kill -9` writes none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFailure {
    /// The job.
    pub job: String,
    /// The run's id, as a manifest's.
    pub run: String,
    /// `failed`, or `stopped` when shutdown came first (as `/metrics` counts them).
    pub status: String,
    /// The event-time period it was to cover, `[from, to)`, microseconds since the Unix
    /// epoch.
    pub from: i64,
    /// See `from`.
    pub to: i64,
    /// When the run started and ended, RFC 3339.
    pub started: String,
    /// See `started`.
    pub finished: String,
    /// What asked for it: `schedule`, `on-demand` or `backfill`.
    pub trigger: String,
    /// The error: its first [`RunFailure::MAX_ERROR_BYTES`] bytes (cut on a character),
    /// then `…` when it was longer.
    pub error: String,
}

impl RunFailure {
    /// The most bytes of an error kept in the record, before the `…` that marks a cut.
    pub const MAX_ERROR_BYTES: usize = 4096;

    /// Where the failure record of `job` lives.
    pub fn path(job: &str) -> Path {
        Path::from_iter([
            PathPart::from("_jobs"),
            PathPart::from(job),
            PathPart::from("failed"),
            PathPart::from("last.json"),
        ])
    }

    /// Writes the record over the job's earlier one, its error cut to
    /// [`RunFailure::MAX_ERROR_BYTES`] on a character boundary.
    ///
    /// # Errors
    /// The store's error.
    pub async fn write(&self, store: &dyn ObjectStore) -> Result<(), object_store::Error> {
        let mut record = self.clone();
        if record.error.len() > Self::MAX_ERROR_BYTES {
            let end = (0..=Self::MAX_ERROR_BYTES).rev().find(|&i| record.error.is_char_boundary(i)).unwrap_or(0);
            record.error.truncate(end);
            record.error.push('…');
        }
        put_json(store, &Self::path(&self.job), serde_json::to_vec_pretty(&record)).await
    }

    /// Removes the failure record of `job`, if any (a run of it completed).
    ///
    /// # Errors
    /// The store's error.
    pub async fn remove(store: &dyn ObjectStore, job: &str) -> Result<(), object_store::Error> {
        delete_if_present(store, &Self::path(job)).await
    }

    /// The failure record of `job`, if its newest run failed; an unreadable record is
    /// skipped with a warning.
    ///
    /// # Errors
    /// The store cannot be read.
    pub async fn read(store: &dyn ObjectStore, job: &str) -> Result<Option<RunFailure>, object_store::Error> {
        let path = Self::path(job);
        let Some(bytes) = get_if_present(store, &path).await? else { return Ok(None) };
        match serde_json::from_slice(&bytes) {
            Ok(failure) => Ok(Some(failure)),
            Err(e) => {
                tracing::warn!("skipping the unreadable job failure record {path}: {e}");
                Ok(None)
            }
        }
    }
}

/// What the sinks of one run keep under keys of their own ([`Sink::kept_key`](crate::Sink::kept_key)),
/// per sink and per commit source (`<job>` for its events, `<job>.<level>` for a level),
/// at `_jobs/<job>/kept/<run>.json`: how a rerun finds what the run it replaces wrote to
/// the serving store, DynamoDB or a search index and does not write again.
///
/// A rerun reads the ledger of its period first. Before each delivery it writes the union
/// of that ledger and what it is about to write, then removes from the sink what the
/// earlier run kept for the same source and this commit does not write again
/// ([`remove_kept`](crate::remove_kept)) — before writing, so that a row that moved to
/// another position (an older version under the serving store's newest-wins rule) is
/// written fresh instead of losing to the row it replaces. At the end it removes whatever
/// the earlier run kept for sources it no longer writes, writes its own ledger, then the
/// manifest. A run killed midway leaves a ledger naming everything either run may have
/// written, so the next rerun still removes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptLedger {
    /// Per sink name, per commit source, the records it keeps.
    pub sinks: BTreeMap<String, BTreeMap<String, BTreeSet<KeptRecord>>>,
}

impl KeptLedger {
    /// Where the ledger of `run` of `job` lives (beside its manifest, in a directory of
    /// its own so that listing manifests does not list ledgers).
    pub fn path(job: &str, run: &str) -> Path {
        Path::from_iter([
            PathPart::from("_jobs"),
            PathPart::from(job),
            PathPart::from("kept"),
            PathPart::from(format!("{run}.json")),
        ])
    }

    /// The ledger of `run` of `job`; empty when there is none (a first run) or it cannot
    /// be read (logged: the keys it named cannot be removed then).
    ///
    /// # Errors
    /// The store's error.
    pub async fn read(store: &dyn ObjectStore, job: &str, run: &str) -> Result<Self, object_store::Error> {
        let path = Self::path(job, run);
        let Some(bytes) = get_if_present(store, &path).await? else { return Ok(Self::default()) };
        Ok(serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!("the kept-records ledger {path} is unreadable ({e}); what it named stays in its sinks");
            Self::default()
        }))
    }

    /// Writes the ledger of `run` of `job`.
    ///
    /// # Errors
    /// The store's error.
    pub async fn write(&self, store: &dyn ObjectStore, job: &str, run: &str) -> Result<(), object_store::Error> {
        put_json(store, &Self::path(job, run), serde_json::to_vec(self)).await
    }

    /// What `sink` keeps of `source`.
    pub fn kept(&self, sink: &str, source: &str) -> Option<&BTreeSet<KeptRecord>> {
        self.sinks.get(sink)?.get(source)
    }

    /// Adds what `sink` keeps of `source`.
    pub fn add(&mut self, sink: &str, source: &str, kept: impl IntoIterator<Item = KeptRecord>) {
        self.sinks.entry(sink.to_owned()).or_default().entry(source.to_owned()).or_default().extend(kept);
    }

    /// Both ledgers' records.
    pub fn union(&self, other: &Self) -> Self {
        let mut union = self.clone();
        for (sink, sources) in &other.sinks {
            for (source, kept) in sources {
                union.add(sink, source, kept.iter().cloned());
            }
        }
        union
    }

    /// What this ledger names for `sink` and `source` and `newer` does not.
    pub fn left_out(&self, sink: &str, source: &str, newer: &BTreeSet<KeptRecord>) -> Vec<KeptRecord> {
        self.kept(sink, source).map(|kept| kept.difference(newer).cloned().collect()).unwrap_or_default()
    }

    /// Per sink, everything this ledger names for the sources `newer` has nothing of in
    /// that sink: what a rerun that no longer writes them must remove.
    pub fn sources_left_out(&self, newer: &Self) -> BTreeMap<String, Vec<KeptRecord>> {
        let mut gone: BTreeMap<String, Vec<KeptRecord>> = BTreeMap::new();
        for (sink, sources) in &self.sinks {
            for (source, kept) in sources {
                if newer.kept(sink, source).is_none() && !kept.is_empty() {
                    gone.entry(sink.clone()).or_default().extend(kept.iter().cloned());
                }
            }
        }
        gone
    }
}

/// Puts `body`, a JSON document as serialised, at `path`.
async fn put_json(
    store: &dyn ObjectStore,
    path: &Path,
    body: serde_json::Result<Vec<u8>>,
) -> Result<(), object_store::Error> {
    let body = body.map_err(|e| object_store::Error::Generic { store: "lake", source: Box::new(e) })?;
    store.put(path, PutPayload::from(body)).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(run: &str) -> RunManifest {
        RunManifest {
            job: "daily".into(),
            run: run.into(),
            stream: "orders".into(),
            from: 0,
            to: 1,
            started: String::new(),
            finished: String::new(),
            trigger: "schedule".into(),
            plugins: Vec::new(),
            records: 0,
            events: 0,
            dead_letters: 0,
            levels: BTreeMap::new(),
        }
    }

    fn kept(key: &str, record: &str) -> KeptRecord {
        KeptRecord { key: key.into(), record: record.into() }
    }

    fn failure(run: &str, error: &str) -> RunFailure {
        RunFailure {
            job: "daily".into(),
            run: run.into(),
            status: "failed".into(),
            from: 0,
            to: 86_400_000_000,
            started: "2026-12-02T01:30:00Z".into(),
            finished: "2026-12-02T01:30:02Z".into(),
            trigger: "schedule".into(),
            error: error.into(),
        }
    }

    #[tokio::test]
    async fn a_failure_record_is_the_newest_failure_cut_to_its_bound_and_is_not_a_manifest() {
        let store = object_store::memory::InMemory::new();
        assert_eq!(RunFailure::read(&store, "daily").await.unwrap(), None);
        failure("20261201T000000Z", "first").write(&store).await.unwrap();
        // One byte, then two-byte characters: the bound falls inside one.
        let long = format!("x{}", "é".repeat(RunFailure::MAX_ERROR_BYTES));
        failure("20261130T000000Z", &long).write(&store).await.unwrap();
        let newest = RunFailure::read(&store, "daily").await.unwrap().unwrap();
        assert_eq!(newest.run, "20261130T000000Z", "the one written last, not the latest period");
        assert_eq!(newest.error.len(), RunFailure::MAX_ERROR_BYTES - 1 + '…'.len_utf8());
        assert!(newest.error.starts_with("xé") && newest.error.ends_with("é…"));
        assert!(RunManifest::list(&store, "daily").await.unwrap().is_empty(), "failure records are not manifests");
        RunFailure::remove(&store, "daily").await.unwrap();
        RunFailure::remove(&store, "daily").await.unwrap();
        assert_eq!(RunFailure::read(&store, "daily").await.unwrap(), None);
        assert_eq!(RunFailure::read(&store, "other").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_ledger_names_what_a_rerun_left_out_per_sink_and_source_and_survives_the_store() {
        let store = object_store::memory::InMemory::new();
        let run = "20261201T000000Z";
        assert_eq!(KeptLedger::read(&store, "daily", run).await.unwrap(), KeptLedger::default(), "a first run");
        let mut earlier = KeptLedger::default();
        earlier.add("serving", "daily.day", [kept("r-1", "a-0"), kept("r-2", "a-1"), kept("r-3", "a-2")]);
        earlier.add("serving", "daily.hour", [kept("z-1", "h-0")]);
        earlier.add("search", "daily.day", [kept("a-0", "a-0")]);
        earlier.write(&store, "daily", run).await.unwrap();
        let earlier = KeptLedger::read(&store, "daily", run).await.unwrap();

        // The rerun writes r-1 with the same record, r-3 with another one (rows moved), no
        // r-2; and no longer writes the hour level, nor the day level to search.
        let rerun_day = BTreeSet::from([kept("r-1", "a-0"), kept("r-3", "a-1")]);
        assert_eq!(earlier.left_out("serving", "daily.day", &rerun_day), [kept("r-2", "a-1"), kept("r-3", "a-2")]);
        assert!(earlier.left_out("serving", "daily.week", &rerun_day).is_empty(), "a source never written");
        let mut rerun = KeptLedger::default();
        rerun.add("serving", "daily.day", rerun_day);
        let gone = earlier.sources_left_out(&rerun);
        assert_eq!(gone["serving"], [kept("z-1", "h-0")]);
        assert_eq!(gone["search"], [kept("a-0", "a-0")]);
        let union = earlier.union(&rerun);
        assert_eq!(union.kept("serving", "daily.day").unwrap().len(), 4);
        assert!(union.sources_left_out(&union).is_empty());
        assert_eq!(RunManifest::list(&store, "daily").await.unwrap(), Vec::new(), "ledgers are not manifests");
    }

    #[tokio::test]
    async fn latest_reads_only_the_runs_written_last_a_backfill_of_an_old_period_among_them() {
        let store = object_store::memory::InMemory::new();
        for run in ["20261201T000000Z", "20261202T000000Z", "20261203T000000Z", "20261204T000000Z"] {
            manifest(run).write(&store).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        // A backfill of the first day, written last.
        manifest("20261201T000000Z").write(&store).await.unwrap();
        let runs: Vec<String> =
            RunManifest::latest(&store, "daily", 2).await.unwrap().into_iter().map(|m| m.run).collect();
        assert_eq!(runs, ["20261201T000000Z", "20261204T000000Z"]);
        assert_eq!(
            RunManifest::list(&store, "daily").await.unwrap().len(),
            4,
            "list still reads them all, in run order"
        );
        assert!(RunManifest::latest(&store, "other", 2).await.unwrap().is_empty());
    }
}
