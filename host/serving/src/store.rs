//! The store: one redb table keyed by `(table, key)`, and the cache in front of it.

use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use moka::sync::Cache;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use weir_sinks::{KeptRecord, compare_positions};

/// Every serving table in one redb table: `(table, key)` → stored document.
///
/// A stored value is `time` (i64, big-endian), `seq` (u64, big-endian), then the
/// document as UTF-8 JSON.
/// Documents by (table, key): each value is the event time (8 bytes, big-endian), the
/// position's length (2 bytes) and digits, then the body. (`_v2`: positions became text
/// for logs whose positions do not fit a `u64`; the `u64` table of older builds is left
/// unread.)
const DOCUMENTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("serving_documents_v2");
const TIME_BYTES: usize = 8;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum ServingError {
    /// The database file could not be opened or created.
    #[error("cannot open the serving store at {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<redb::Error>,
    },
    /// A read or write failed.
    #[error("serving store {path}: {source}")]
    Storage {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<redb::Error>,
    },
    /// A stored value is shorter than its header: the file was damaged.
    #[error("serving store {path}: the value of table {table} key {key:?} is damaged ({len} bytes)")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// The serving table.
        table: String,
        /// The key.
        key: String,
        /// Its length.
        len: usize,
    },
}

/// The cache in front of reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// Most entries held (present and absent keys); the least recently used go first.
    /// By default 100 000.
    pub max_entries: u64,
    /// How long an entry is served after it was loaded. By default 5 s.
    pub ttl: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self { max_entries: 100_000, ttl: Duration::from_secs(5) }
    }
}

/// A stored document and the version of the event that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    /// Event time of the writing event, microseconds since the Unix epoch.
    pub time: i64,
    /// Log position of the writing event (decimal digits).
    pub position: String,
    /// The document, UTF-8 JSON.
    pub body: Bytes,
}

impl StoredDocument {
    /// An entity tag for HTTP: `"<time>-<position>"`.
    pub fn etag(&self) -> String {
        format!("\"{}-{}\"", self.time, self.position)
    }

    fn encode(time: i64, position: &str, body: &[u8]) -> Vec<u8> {
        // Positions have at most 128 digits (weir_log::MAX_POSITION_DIGITS); the length
        // is saturated rather than trusted so that a longer one cannot corrupt the body.
        let position = &position.as_bytes()[..position.len().min(usize::from(u16::MAX))];
        let mut bytes = Vec::with_capacity(TIME_BYTES + 2 + position.len() + body.len());
        bytes.extend_from_slice(&time.to_be_bytes());
        bytes.extend_from_slice(&(position.len() as u16).to_be_bytes());
        bytes.extend_from_slice(position);
        bytes.extend_from_slice(body);
        bytes
    }

    /// The event time, the position and where the body starts.
    fn version_of(bytes: &[u8]) -> Option<(i64, &str, usize)> {
        let time = i64::from_be_bytes(bytes.get(..TIME_BYTES)?.try_into().ok()?);
        let length = u16::from_be_bytes(bytes.get(TIME_BYTES..TIME_BYTES + 2)?.try_into().ok()?);
        let body_start = TIME_BYTES + 2 + usize::from(length);
        let position = std::str::from_utf8(bytes.get(TIME_BYTES + 2..body_start)?).ok()?;
        Some((time, position, body_start))
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let (time, position, body_start) = Self::version_of(bytes)?;
        Some(Self { time, position: position.to_owned(), body: Bytes::copy_from_slice(&bytes[body_start..]) })
    }
}

/// The id of the record that wrote a serving document (`source.id`, see
/// [`ServingDocuments`](crate::ServingDocuments)), if the body names one. Linear in the
/// body.
pub fn written_by(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Document {
        source: Source,
    }
    #[derive(serde::Deserialize)]
    struct Source {
        id: String,
    }
    serde_json::from_slice::<Document>(body).ok().map(|doc| doc.source.id)
}

/// One document to upsert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upsert {
    /// The key within the table.
    pub key: String,
    /// Event time of the event, microseconds since the Unix epoch.
    pub time: i64,
    /// Its log position (decimal digits).
    pub position: String,
    /// The document, UTF-8 JSON.
    pub body: Vec<u8>,
    /// The id of the record it comes from (the document's `source.id`).
    pub source: String,
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertOutcome {
    /// The document is now the stored one (new key, newer event, or the same event again).
    Written,
    /// A newer event's document was already stored; this one was ignored.
    Stale,
}

/// What a read found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The document, or `None` when the key has none.
    pub document: Option<Arc<StoredDocument>>,
    /// Whether the answer came from the cache.
    pub cached: bool,
}

type CacheKey = (Arc<str>, String);

/// The bounded cache in front of a serving store's reads: per (table, key), the document
/// or its absence, for at most [`CacheSettings::ttl`]. One per host, whichever store is
/// behind it.
#[derive(Clone)]
pub struct DocumentCache {
    cache: Cache<CacheKey, Option<Arc<StoredDocument>>>,
    settings: CacheSettings,
    /// Per stripe of keys, how many writes have ended: a read from the store caches its
    /// answer only if no write to a key of its stripe ended meanwhile
    /// ([`DocumentCache::insert_read`]), so a read that raced a write cannot leave the
    /// older document cached.
    writes: Arc<[AtomicU64]>,
    stripes: RandomState,
}

/// Stripes of [`DocumentCache::writes`]: a write makes reads of about one key in this many
/// that were in flight go uncached once.
const WRITE_STRIPES: usize = 1024;

impl std::fmt::Debug for DocumentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentCache").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl DocumentCache {
    /// An empty cache bounded by `settings`.
    pub fn new(settings: CacheSettings) -> Self {
        let cache = Cache::builder().max_capacity(settings.max_entries).time_to_live(settings.ttl).build();
        let writes = (0..WRITE_STRIPES).map(|_| AtomicU64::new(0)).collect();
        Self { cache, settings, writes, stripes: RandomState::new() }
    }

    fn writes_to(&self, table: &str, key: &str) -> &AtomicU64 {
        &self.writes[(self.stripes.hash_one((table, key)) % WRITE_STRIPES as u64) as usize]
    }

    /// What a read from the store takes before it reads, for [`DocumentCache::insert_read`].
    pub fn writes_seen(&self, table: &str, key: &str) -> u64 {
        self.writes_to(table, key).load(Ordering::SeqCst)
    }

    /// Caches what a read from the store found for `key` in `table`, unless a write to it
    /// (or to a key of its stripe) ended since the read took `seen`
    /// ([`DocumentCache::writes_seen`]): then the answer may be older than the store's,
    /// and the next read goes to the store. Checked again after inserting, since a write
    /// ending between the check and the insert finds no entry to replace.
    pub fn insert_read(&self, table: &str, key: &str, document: Option<Arc<StoredDocument>>, seen: u64) {
        if self.writes_seen(table, key) != seen {
            return;
        }
        self.insert(table, key, document);
        if self.writes_seen(table, key) != seen {
            self.invalidate(table, key);
        }
    }

    /// Its settings.
    pub fn settings(&self) -> CacheSettings {
        self.settings
    }

    /// The cached answer for `key` in `table`: `Some(None)` is a cached absence.
    pub fn get(&self, table: &str, key: &str) -> Option<Option<Arc<StoredDocument>>> {
        self.cache.get(&(Arc::from(table), key.to_owned()))
    }

    /// Forgets the answer for `key` in `table`.
    pub fn invalidate(&self, table: &str, key: &str) {
        self.cache.invalidate(&(Arc::from(table), key.to_owned()));
    }

    /// Caches `document` (or its absence) as the answer for `key` in `table`.
    pub fn insert(&self, table: &str, key: &str, document: Option<Arc<StoredDocument>>) {
        self.cache.insert((Arc::from(table), key.to_owned()), document);
    }

    /// After `key` in `table` was written: replaces the cached answer with `document`
    /// (made only then) when one is cached, a cached absence too; leaves an uncached key
    /// uncached, since its next read goes to the store, which has the write.
    ///
    /// Writes do not fill the cache (decided 2026-12-04): inserting every written document
    /// cost more than the store's own commit, about 7 % of the demo pipeline's CPU (BENCHMARKS.md),
    /// for keys most of which are never read while cached.
    pub fn refresh(&self, table: &str, key: &str, document: impl FnOnce() -> StoredDocument) {
        self.writes_to(table, key).fetch_add(1, Ordering::SeqCst);
        let cache_key = (Arc::from(table), key.to_owned());
        if self.cache.contains_key(&cache_key) {
            self.cache.insert(cache_key, Some(Arc::new(document())));
        }
    }

    /// After `key` in `table` was removed: caches its absence.
    pub fn removed(&self, table: &str, key: &str) {
        self.writes_to(table, key).fetch_add(1, Ordering::SeqCst);
        self.insert(table, key, None);
    }
}

/// The serving store. Cheap to share (`Arc` inside); all methods block on disk I/O, so
/// async callers run them with `spawn_blocking`, except cache hits, which do not touch
/// the disk ([`ServingStore::cached`]).
#[derive(Clone)]
pub struct ServingStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    db: Database,
    cache: DocumentCache,
}

impl std::fmt::Debug for ServingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingStore")
            .field("path", &self.inner.path)
            .field("cache", &self.inner.cache.settings())
            .finish_non_exhaustive()
    }
}

impl ServingStore {
    /// Opens (or creates) the store in the file `path`.
    ///
    /// # Errors
    /// [`ServingError::Open`] when the file cannot be opened or created.
    pub fn open(path: &Path, settings: CacheSettings) -> Result<Self, ServingError> {
        let open_error = |source: redb::Error| ServingError::Open { path: path.to_owned(), source: Box::new(source) };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| open_error(redb::Error::Io(e)))?;
        }
        let db = Database::create(path).map_err(|e| open_error(e.into()))?;
        let txn = db.begin_write().map_err(|e| open_error(e.into()))?;
        txn.open_table(DOCUMENTS).map_err(|e| open_error(e.into()))?;
        txn.commit().map_err(|e| open_error(e.into()))?;
        Ok(Self { inner: Arc::new(Inner { path: path.to_owned(), db, cache: DocumentCache::new(settings) }) })
    }

    /// The cache settings.
    pub fn cache_settings(&self) -> CacheSettings {
        self.inner.cache.settings()
    }

    /// The cached answer for `key` in `table`, without touching the disk.
    pub fn cached(&self, table: &str, key: &str) -> Option<Lookup> {
        let document = self.inner.cache.get(table, key)?;
        Some(Lookup { document, cached: true })
    }

    /// The document for `key` in `table`: from the cache, else from the store (and then
    /// cached, absent keys too).
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn get(&self, table: &str, key: &str) -> Result<Lookup, ServingError> {
        if let Some(hit) = self.cached(table, key) {
            return Ok(hit);
        }
        let seen = self.inner.cache.writes_seen(table, key);
        let document = self.read(table, key)?.map(Arc::new);
        self.inner.cache.insert_read(table, key, document.clone(), seen);
        Ok(Lookup { document, cached: false })
    }

    /// Reads `key` in `table` from the store, bypassing the cache.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn read(&self, table: &str, key: &str) -> Result<Option<StoredDocument>, ServingError> {
        let storage = |e: redb::Error| self.storage_error(e);
        let txn = self.inner.db.begin_read().map_err(|e| storage(e.into()))?;
        let documents = txn.open_table(DOCUMENTS).map_err(|e| storage(e.into()))?;
        let Some(stored) = documents.get((table, key)).map_err(|e| storage(e.into()))? else { return Ok(None) };
        let bytes = stored.value();
        StoredDocument::decode(bytes).map(Some).ok_or_else(|| ServingError::Damaged {
            path: self.inner.path.clone(),
            table: table.to_owned(),
            key: key.to_owned(),
            len: bytes.len(),
        })
    }

    /// Upserts `documents` into `table` in one durable transaction: each replaces the
    /// stored document unless that one was written by a newer event (see the crate docs).
    /// Returns one outcome per document, in order. After the commit a cached answer for a
    /// written key is the document written ([`DocumentCache::refresh`]).
    ///
    /// # Errors
    /// When the transaction fails; nothing of it was written then.
    pub fn upsert(&self, table: &str, documents: &[Upsert]) -> Result<Vec<UpsertOutcome>, ServingError> {
        let storage = |e: redb::Error| self.storage_error(e);
        let txn = self.inner.db.begin_write().map_err(|e| storage(e.into()))?;
        let mut outcomes = Vec::with_capacity(documents.len());
        {
            let mut stored = txn.open_table(DOCUMENTS).map_err(|e| storage(e.into()))?;
            for doc in documents {
                // Written first and put back when the replaced document was newer: one
                // walk down the tree for the usual write instead of a `get` and an
                // `insert` (stale writes are rare: replays and out-of-order updates).
                let value = StoredDocument::encode(doc.time, &doc.position, &doc.body);
                let newer_one_replaced = {
                    let replaced =
                        stored.insert((table, doc.key.as_str()), value.as_slice()).map_err(|e| storage(e.into()))?;
                    replaced.and_then(|previous| {
                        let bytes = previous.value();
                        let newer_or_same = StoredDocument::version_of(bytes).is_none_or(|(time, position, _)| {
                            doc.time.cmp(&time).then_with(|| compare_positions(&doc.position, position)).is_ge()
                        });
                        (!newer_or_same).then(|| bytes.to_vec())
                    })
                };
                match newer_one_replaced {
                    None => outcomes.push(UpsertOutcome::Written),
                    Some(previous) => {
                        stored.insert((table, doc.key.as_str()), previous.as_slice()).map_err(|e| storage(e.into()))?;
                        outcomes.push(UpsertOutcome::Stale);
                    }
                }
            }
        }
        txn.commit().map_err(|e| storage(e.into()))?;
        for (doc, outcome) in documents.iter().zip(&outcomes) {
            match outcome {
                UpsertOutcome::Written => {
                    self.inner.cache.refresh(table, &doc.key, || StoredDocument {
                        time: doc.time,
                        position: doc.position.clone(),
                        body: Bytes::from(doc.body.clone()),
                    });
                }
                // A stale write leaves the stored document, which a cached miss no longer
                // describes if this key was absent before the transaction: never, as a
                // stale write needs a stored document. Nothing to do.
                UpsertOutcome::Stale => {}
            }
        }
        Ok(outcomes)
    }

    /// Removes each of `kept` from `table` whose stored document the record
    /// `kept.record` wrote (its `source.id`), in one durable transaction; a key holding
    /// another record's document (a newer write) or nothing is left as it is. Returns how
    /// many were removed. Afterwards the cache knows the removed keys as absent.
    ///
    /// # Errors
    /// When the transaction fails; nothing of it was removed then.
    pub fn remove_written_by(&self, table: &str, kept: &[KeptRecord]) -> Result<usize, ServingError> {
        let storage = |e: redb::Error| self.storage_error(e);
        let txn = self.inner.db.begin_write().map_err(|e| storage(e.into()))?;
        let mut removed = Vec::new();
        {
            let mut stored = txn.open_table(DOCUMENTS).map_err(|e| storage(e.into()))?;
            for record in kept {
                let written_by_it = {
                    let current = stored.get((table, record.key.as_str())).map_err(|e| storage(e.into()))?;
                    current
                        .as_ref()
                        .and_then(|value| StoredDocument::decode(value.value()))
                        .is_some_and(|doc| written_by(&doc.body).as_deref() == Some(record.record.as_str()))
                };
                if written_by_it {
                    stored.remove((table, record.key.as_str())).map_err(|e| storage(e.into()))?;
                    removed.push(record.key.as_str());
                }
            }
        }
        txn.commit().map_err(|e| storage(e.into()))?;
        for key in &removed {
            self.inner.cache.removed(table, key);
        }
        Ok(removed.len())
    }

    /// How many documents `table` holds (a scan; for tests and tools).
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn count(&self, table: &str) -> Result<u64, ServingError> {
        let storage = |e: redb::Error| self.storage_error(e);
        let txn = self.inner.db.begin_read().map_err(|e| storage(e.into()))?;
        let documents = txn.open_table(DOCUMENTS).map_err(|e| storage(e.into()))?;
        let range = documents.range((table, "")..).map_err(|e| storage(e.into()))?;
        let mut count = 0;
        for entry in range {
            let entry = entry.map_err(|e| storage(e.into()))?;
            if entry.0.value().0 != table {
                break;
            }
            count += 1;
        }
        Ok(count)
    }

    fn storage_error(&self, source: redb::Error) -> ServingError {
        ServingError::Storage { path: self.inner.path.clone(), source: Box::new(source) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert(key: &str, time: i64, seq: u64, body: &str) -> Upsert {
        Upsert {
            key: key.to_owned(),
            time,
            position: seq.to_string(),
            body: body.as_bytes().to_vec(),
            source: String::new(),
        }
    }

    fn body(store: &ServingStore, table: &str, key: &str) -> Option<String> {
        store.read(table, key).unwrap().map(|d| String::from_utf8(d.body.to_vec()).unwrap())
    }

    #[test]
    fn a_kept_key_is_removed_only_while_the_record_that_wrote_it_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = ServingStore::open(&dir.path().join("serving.redb"), CacheSettings::default()).unwrap();
        let doc = |record: &str| format!(r#"{{"fields":{{}},"source":{{"id":"{record}","stream":"daily"}}}}"#);
        store
            .upsert(
                "daily",
                &[
                    upsert("r-1", 100, 0, &doc("run-0")),
                    upsert("r-2", 100, 1, &doc("run-1")),
                    upsert("r-3", 100, 2, &doc("run-2")),
                ],
            )
            .unwrap();
        // r-2 was written again since, by a newer record.
        store.upsert("daily", &[upsert("r-2", 200, 0, &doc("stream-7"))]).unwrap();
        assert!(store.get("daily", "r-1").unwrap().document.is_some(), "cached before the removal");
        let kept = |key: &str, record: &str| KeptRecord { key: key.into(), record: record.into() };
        let removed = store
            .remove_written_by(
                "daily",
                &[kept("r-1", "run-0"), kept("r-2", "run-1"), kept("r-4", "run-3"), kept("r-3", "other")],
            )
            .unwrap();
        assert_eq!(removed, 1);
        assert_eq!(store.get("daily", "r-1").unwrap().document, None, "removed, and the cache knows");
        assert_eq!(body(&store, "daily", "r-2").unwrap(), doc("stream-7"), "a newer write stays");
        assert_eq!(body(&store, "daily", "r-3").unwrap(), doc("run-2"), "another record's document stays");
        assert_eq!(store.remove_written_by("daily", &[kept("r-1", "run-0")]).unwrap(), 0, "removing again is a no-op");
        assert_eq!(written_by(b"not json"), None);
    }

    #[test]
    fn an_older_event_does_not_overwrite_a_newer_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = ServingStore::open(&dir.path().join("serving.redb"), CacheSettings::default()).unwrap();
        let outcomes = store.upsert("orders", &[upsert("o-1", 200, 5, "delivered")]).unwrap();
        assert_eq!(outcomes, [UpsertOutcome::Written]);
        let outcomes = store.upsert("orders", &[upsert("o-1", 100, 9, "placed")]).unwrap();
        assert_eq!(outcomes, [UpsertOutcome::Stale]);
        assert_eq!(body(&store, "orders", "o-1").as_deref(), Some("delivered"));
        assert_eq!(store.get("orders", "o-1").unwrap().document.unwrap().body, "delivered");
    }

    #[test]
    fn writes_to_one_key_within_a_batch_apply_in_order_and_are_answered_in_the_batch_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = ServingStore::open(&dir.path().join("serving.redb"), CacheSettings::default()).unwrap();
        let batch = [
            upsert("o-9", 100, 1, "nine"),
            upsert("o-1", 200, 2, "delivered"),
            upsert("o-5", 100, 3, "five"),
            upsert("o-1", 100, 4, "placed, late"),
            upsert("o-1", 300, 5, "refunded"),
        ];
        let outcomes = store.upsert("orders", &batch).unwrap();
        use UpsertOutcome::{Stale, Written};
        assert_eq!(outcomes, [Written, Written, Written, Stale, Written]);
        assert_eq!(body(&store, "orders", "o-1").as_deref(), Some("refunded"));
        assert_eq!(store.get("orders", "o-1").unwrap().document.unwrap().body, "refunded", "and in the cache");
        assert_eq!(body(&store, "orders", "o-9").as_deref(), Some("nine"));
        assert_eq!(body(&store, "orders", "o-5").as_deref(), Some("five"));
    }

    #[test]
    fn same_time_orders_by_sequence_and_a_replay_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let store = ServingStore::open(&dir.path().join("serving.redb"), CacheSettings::default()).unwrap();
        let batch = [upsert("o-1", 100, 1, "a"), upsert("o-1", 100, 2, "b"), upsert("o-1", 100, 1, "a")];
        let outcomes = store.upsert("orders", &batch).unwrap();
        assert_eq!(outcomes, [UpsertOutcome::Written, UpsertOutcome::Written, UpsertOutcome::Stale]);
        assert_eq!(body(&store, "orders", "o-1").as_deref(), Some("b"));
        assert_eq!(store.upsert("orders", &[upsert("o-1", 100, 2, "b")]).unwrap(), [UpsertOutcome::Written]);
        assert_eq!(store.count("orders").unwrap(), 1);
    }

    #[test]
    fn positions_order_as_integers_of_any_length_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serving.redb");
        let kinesis = "49590338271490256608559692538361571095921575989136588898";
        {
            let store = ServingStore::open(&path, CacheSettings::default()).unwrap();
            let nine = upsert("o-1", 100, 9, "nine");
            let ten = upsert("o-1", 100, 10, "ten");
            assert_eq!(store.upsert("orders", &[ten, nine]).unwrap(), [UpsertOutcome::Written, UpsertOutcome::Stale]);
            let long = Upsert { position: kinesis.to_owned(), ..upsert("o-2", 100, 0, "long") };
            assert_eq!(store.upsert("orders", &[long]).unwrap(), [UpsertOutcome::Written]);
            let shorter = upsert("o-2", 100, u64::MAX, "shorter");
            assert_eq!(store.upsert("orders", &[shorter]).unwrap(), [UpsertOutcome::Stale]);
        }
        let store = ServingStore::open(&path, CacheSettings::default()).unwrap();
        assert_eq!(body(&store, "orders", "o-1").as_deref(), Some("ten"));
        let long = store.read("orders", "o-2").unwrap().unwrap();
        assert_eq!((long.position.as_str(), &long.body[..]), (kinesis, &b"long"[..]));
        assert_eq!(long.etag(), format!("\"100-{kinesis}\""));
    }

    #[test]
    fn tables_are_separate_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serving.redb");
        {
            let store = ServingStore::open(&path, CacheSettings::default()).unwrap();
            store.upsert("orders", &[upsert("k", 1, 1, "order")]).unwrap();
            store.upsert("stats", &[upsert("k", 1, 1, "stats"), upsert("k2", 1, 2, "x")]).unwrap();
        }
        let store = ServingStore::open(&path, CacheSettings::default()).unwrap();
        assert_eq!(body(&store, "orders", "k").as_deref(), Some("order"));
        assert_eq!(body(&store, "stats", "k").as_deref(), Some("stats"));
        assert_eq!((store.count("orders").unwrap(), store.count("stats").unwrap()), (1, 2));
        assert_eq!(body(&store, "other", "k"), None);
    }

    #[test]
    fn reads_are_cached_absent_keys_too_and_writes_refresh_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let store = ServingStore::open(&dir.path().join("serving.redb"), CacheSettings::default()).unwrap();
        let first = store.get("orders", "o-1").unwrap();
        assert_eq!(first, Lookup { document: None, cached: false });
        assert_eq!(store.get("orders", "o-1").unwrap(), Lookup { document: None, cached: true });
        store.upsert("orders", &[upsert("o-1", 1, 1, "new")]).unwrap();
        let after = store.get("orders", "o-1").unwrap();
        assert!(after.cached, "the cached absence was replaced by the write");
        assert_eq!(after.document.unwrap().body, "new");
        store.upsert("orders", &[upsert("o-1", 2, 2, "newer")]).unwrap();
        assert_eq!(store.cached("orders", "o-1").unwrap().document.unwrap().body, "newer", "a cached document too");
    }

    #[test]
    fn a_read_that_raced_a_write_does_not_leave_the_older_document_cached() {
        let dir = tempfile::tempdir().unwrap();
        let store = ServingStore::open(&dir.path().join("serving.redb"), CacheSettings::default()).unwrap();
        store.upsert("orders", &[upsert("o-1", 1, 1, "old")]).unwrap();
        // A lookup misses and reads the store; a write commits before it caches its answer.
        let seen = store.inner.cache.writes_seen("orders", "o-1");
        let read = store.read("orders", "o-1").unwrap().map(Arc::new);
        store.upsert("orders", &[upsert("o-1", 2, 2, "new")]).unwrap();
        store.inner.cache.insert_read("orders", "o-1", read, seen);
        assert_eq!(store.cached("orders", "o-1"), None, "the older answer was not cached");
        assert_eq!(store.get("orders", "o-1").unwrap().document.unwrap().body, "new");
        // Without a write meanwhile, a read's answer is cached.
        let seen = store.inner.cache.writes_seen("orders", "o-2");
        store.inner.cache.insert_read("orders", "o-2", None, seen);
        assert_eq!(store.cached("orders", "o-2").unwrap().document, None, "a cached absence");
    }

    #[test]
    fn a_write_leaves_an_uncached_key_uncached_and_its_read_finds_the_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = ServingStore::open(&dir.path().join("serving.redb"), CacheSettings::default()).unwrap();
        store.upsert("orders", &[upsert("o-1", 1, 1, "new")]).unwrap();
        assert_eq!(store.cached("orders", "o-1"), None, "writes do not fill the cache");
        let read = store.get("orders", "o-1").unwrap();
        assert!(!read.cached);
        assert_eq!(read.document.unwrap().body, "new");
        assert!(store.get("orders", "o-1").unwrap().cached, "the read did");
    }

    #[test]
    fn cache_entries_expire_after_the_ttl() {
        let dir = tempfile::tempdir().unwrap();
        // A TTL long enough that the read right after the write is still within it on a
        // loaded machine (the tests share two cores).
        let settings = CacheSettings { max_entries: 10, ttl: Duration::from_secs(1) };
        let store = ServingStore::open(&dir.path().join("serving.redb"), settings).unwrap();
        store.upsert("t", &[upsert("k", 1, 1, "v")]).unwrap();
        assert!(!store.get("t", "k").unwrap().cached, "the first read goes to the store");
        assert!(store.get("t", "k").unwrap().cached);
        std::thread::sleep(Duration::from_millis(1500));
        assert!(!store.get("t", "k").unwrap().cached);
    }
}
