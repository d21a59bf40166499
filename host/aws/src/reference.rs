//! Reference tables in production stores, for the plugins' `lookup`: a DynamoDB table
//! read through a cache ([`DynamoReferenceTable`]) and a JSON object in S3 reloaded when
//! it changes ([`S3ReferenceTable`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue as Av;
use moka::sync::Cache;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, ObjectStore};
use serde_json::Value as Json;
use tokio::sync::{mpsc, oneshot};
use weir_config::{DynamoReference, S3Location};

/// How long the first lookup of a batch waits for others to join it.
const BATCH_WINDOW: Duration = Duration::from_millis(2);
/// After DynamoDB failed, how long lookups that miss the cache fail at once with the
/// same reason instead of waiting for another failure.
const FAIL_FAST_FOR: Duration = Duration::from_secs(1);
/// The longest key DynamoDB holds (2 048 bytes); a longer one cannot be there.
const MAX_KEY_BYTES: usize = 2048;
/// The largest S3 reference object read.
pub const MAX_REFERENCE_OBJECT_BYTES: u64 = 256 << 20;

type Answer = Result<Option<String>, String>;

/// A reference table in DynamoDB: one item per key, each answered as a JSON object of its
/// attributes. Lookups that miss the cache are gathered for [`BATCH_WINDOW`] and sent as
/// one `BatchGetItem` (at most 100 keys), so lookups from every shard running at once
/// share requests; rows and misses are cached for `ttl` (at most `max_entries`); a lookup
/// waits at most `timeout`, then fails with the reason. After a failure, lookups that miss
/// the cache fail at once for [`FAIL_FAST_FOR`] (a slow or failing store costs each
/// shard one timeout, not one per record).
pub struct DynamoReferenceTable {
    name: String,
    settings: DynamoReference,
    cache: Cache<String, Option<Arc<str>>>,
    requests: mpsc::UnboundedSender<(String, oneshot::Sender<Answer>)>,
    failing: Arc<Mutex<Option<(Instant, String)>>>,
}

impl std::fmt::Debug for DynamoReferenceTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoReferenceTable").field("name", &self.name).field("settings", &self.settings).finish()
    }
}

impl DynamoReferenceTable {
    /// The reference table `name` in the DynamoDB table `settings` describes, with
    /// credentials from the standard AWS chain, else `static_credentials`. Spawns the task
    /// that sends the batched reads (it ends when the table is dropped).
    pub async fn new(name: &str, settings: DynamoReference, static_credentials: Option<(String, String)>) -> Arc<Self> {
        let sdk = crate::sdk_config(settings.region.as_deref(), static_credentials.as_ref()).await;
        let mut config = aws_sdk_dynamodb::config::Builder::from(&sdk);
        if let Some(endpoint) = &settings.endpoint {
            config = config.endpoint_url(endpoint);
        }
        let client = Client::from_conf(config.build());
        let cache = Cache::builder().max_capacity(settings.max_entries).time_to_live(settings.ttl.0).build();
        let (requests, receiver) = mpsc::unbounded_channel();
        let failing = Arc::new(Mutex::new(None));
        let table = Arc::new(Self { name: name.to_owned(), settings, cache, requests, failing: failing.clone() });
        let batcher = Batcher {
            client,
            table: table.settings.table.clone(),
            key_attribute: table.settings.key_attribute.clone(),
            cache: table.cache.clone(),
            failing,
            timeout: table.settings.timeout.0,
        };
        tokio::spawn(batcher.run(receiver));
        table
    }

    /// The row of `key` as JSON text, `None` when the table has none.
    ///
    /// # Errors
    /// DynamoDB failed or did not answer in time; the message says which table and why.
    pub async fn lookup(&self, key: &str) -> Answer {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Ok(None);
        }
        if let Some(hit) = self.cache.get(key) {
            return Ok(hit.map(|row| row.to_string()));
        }
        if let Some((since, why)) = self.failing.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref()
            && since.elapsed() < FAIL_FAST_FOR
        {
            return Err(why.clone());
        }
        let (answer, answered) = oneshot::channel();
        if self.requests.send((key.to_owned(), answer)).is_err() {
            return Err(format!("DynamoDB table {}: the reader stopped", self.settings.table));
        }
        match tokio::time::timeout(self.settings.timeout.0, answered).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(format!("DynamoDB table {}: the reader stopped", self.settings.table)),
            Err(_) => Err(format!(
                "DynamoDB table {} did not answer within {:?} (timeout)",
                self.settings.table, self.settings.timeout.0
            )),
        }
    }
}

/// The task sending a reference table's batched `BatchGetItem`s.
struct Batcher {
    client: Client,
    table: String,
    key_attribute: String,
    cache: Cache<String, Option<Arc<str>>>,
    failing: Arc<Mutex<Option<(Instant, String)>>>,
    timeout: Duration,
}

impl Batcher {
    async fn run(self, mut receiver: mpsc::UnboundedReceiver<(String, oneshot::Sender<Answer>)>) {
        while let Some(first) = receiver.recv().await {
            let mut waiting: HashMap<String, Vec<oneshot::Sender<Answer>>> = HashMap::new();
            waiting.entry(first.0).or_default().push(first.1);
            let deadline = tokio::time::Instant::now() + BATCH_WINDOW;
            while waiting.len() < crate::MAX_BATCH_GET_KEYS {
                match tokio::time::timeout_at(deadline, receiver.recv()).await {
                    Ok(Some((key, answer))) => waiting.entry(key).or_default().push(answer),
                    _ => break,
                }
            }
            let keys: Vec<String> = waiting.keys().cloned().collect();
            let answers = match tokio::time::timeout(self.timeout, self.fetch(&keys)).await {
                Ok(Ok(rows)) => {
                    *self.failing.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
                    let mut rows = rows;
                    keys.iter()
                        .map(|key| {
                            let row: Option<Arc<str>> = rows.remove(key).map(Arc::from);
                            self.cache.insert(key.clone(), row.clone());
                            (key.clone(), Ok(row.map(|r| r.to_string())))
                        })
                        .collect::<Vec<_>>()
                }
                outcome => {
                    let why = match outcome {
                        Ok(Err(why)) => why,
                        _ => {
                            format!("DynamoDB table {} did not answer within {:?} (timeout)", self.table, self.timeout)
                        }
                    };
                    tracing::warn!(table = %self.table, "reference lookups failed: {why}");
                    *self.failing.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                        Some((Instant::now(), why.clone()));
                    keys.iter().map(|key| (key.clone(), Err(why.clone()))).collect()
                }
            };
            for (key, answer) in answers {
                for waiter in waiting.remove(&key).unwrap_or_default() {
                    let _ = waiter.send(answer.clone());
                }
            }
        }
    }

    /// The rows of `keys` (absent keys left out), as JSON text.
    async fn fetch(&self, keys: &[String]) -> Result<HashMap<String, String>, String> {
        // No round bound: the lookups' timeout bounds the time.
        let how = crate::tables::BatchGet {
            consistent: false,
            attributes: &[],
            backoff: (Duration::from_millis(10), Duration::from_millis(200)),
            max_rounds: None,
        };
        let items =
            crate::tables::batch_get(&self.client, &self.table, &self.key_attribute, keys.iter().cloned(), &how)
                .await?;
        let mut rows = HashMap::new();
        for item in &items {
            if let Some(key) = item.get(&self.key_attribute).and_then(|v| v.as_s().ok()) {
                let row: serde_json::Map<String, Json> =
                    item.iter().map(|(name, value)| (name.clone(), json_of(value))).collect();
                rows.insert(key.clone(), Json::Object(row).to_string());
            }
        }
        Ok(rows)
    }
}

/// A DynamoDB value as JSON: strings, numbers (as JSON numbers when they are ones),
/// booleans, null, lists, maps and sets (as arrays); binary as base64 text.
fn json_of(value: &Av) -> Json {
    match value {
        Av::S(text) => Json::from(text.as_str()),
        Av::N(number) => serde_json::from_str::<serde_json::Number>(number)
            .map_or_else(|_| Json::from(number.as_str()), Json::Number),
        Av::Bool(flag) => Json::Bool(*flag),
        Av::Null(_) => Json::Null,
        Av::L(items) => Json::Array(items.iter().map(json_of).collect()),
        Av::M(map) => Json::Object(map.iter().map(|(k, v)| (k.clone(), json_of(v))).collect()),
        Av::Ss(items) => Json::Array(items.iter().map(|s| Json::from(s.as_str())).collect()),
        Av::Ns(items) => Json::Array(items.iter().map(|n| json_of(&Av::N(n.clone()))).collect()),
        Av::B(blob) => Json::from(base64_of(blob.as_ref())),
        Av::Bs(blobs) => Json::Array(blobs.iter().map(|b| Json::from(base64_of(b.as_ref()))).collect()),
        _ => Json::Null,
    }
}

fn base64_of(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A reference table held in an S3 object (a JSON object, key → value): read at start,
/// then its ETag checked every `reload`; a changed object is read and replaces the rows
/// whole (lookups see the old rows or the new ones, never a mix). A failed reload keeps
/// the rows it had, with a warning. Lookups are answered from memory.
#[derive(Debug)]
pub struct S3ReferenceTable {
    name: String,
    rows: RwLock<Arc<HashMap<String, String>>>,
}

impl S3ReferenceTable {
    /// Reads the table `name` from `location` (its prefix is the object's key) and starts
    /// the reload task (it ends when the table is dropped).
    ///
    /// # Errors
    /// The object cannot be read or is not a JSON object.
    pub async fn load(
        name: &str,
        location: &S3Location,
        reload: Duration,
        static_credentials: Option<(String, String)>,
    ) -> Result<Arc<Self>, String> {
        let key = ObjectPath::from(location.prefix.trim_matches('/'));
        let store = crate::s3_store(&S3Location { prefix: String::new(), ..location.clone() }, static_credentials)
            .map_err(|e| format!("reference table {name}: {location}: {e}"))?;
        let (rows, etag) = read(&store, &key, None)
            .await
            .map_err(|e| format!("reference table {name}: {location}: {e}"))?
            .ok_or_else(|| format!("reference table {name}: {location} answered not modified to a first read"))?;
        let table = Arc::new(Self { name: name.to_owned(), rows: RwLock::new(Arc::new(rows)) });
        let weak = Arc::downgrade(&table);
        let shown = location.to_string();
        tokio::spawn(async move {
            let mut etag = etag;
            loop {
                tokio::time::sleep(reload).await;
                let Some(table) = weak.upgrade() else { return };
                match read(&store, &key, etag.clone()).await {
                    Ok(Some((rows, new_etag))) => {
                        tracing::info!(table = %table.name, rows = rows.len(), "reference table reloaded from {shown}");
                        *table.rows.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(rows);
                        etag = new_etag;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(table = %table.name, "reference table not reloaded from {shown} (the rows read before stay): {e}")
                    }
                }
            }
        });
        Ok(table)
    }

    /// The row of `key` as JSON text.
    pub fn get(&self, key: &str) -> Option<String> {
        self.rows.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(key).cloned()
    }

    /// How many rows it holds.
    pub fn len(&self) -> usize {
        self.rows.read().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    /// Whether it holds no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The object's rows and ETag, or `None` when its ETag is still `etag`.
async fn read(
    store: &Arc<dyn ObjectStore>,
    key: &ObjectPath,
    etag: Option<String>,
) -> Result<Option<(HashMap<String, String>, Option<String>)>, String> {
    let options = GetOptions { if_none_match: etag, ..GetOptions::default() };
    let found = match store.get_opts(key, options).await {
        Ok(found) => found,
        Err(object_store::Error::NotModified { .. }) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    if found.meta.size > MAX_REFERENCE_OBJECT_BYTES {
        return Err(format!(
            "the object is {} bytes, over the {MAX_REFERENCE_OBJECT_BYTES} a reference table may hold",
            found.meta.size
        ));
    }
    let etag = found.meta.e_tag.clone();
    let bytes = found.bytes().await.map_err(|e| e.to_string())?;
    let document: Json = serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))?;
    let Json::Object(rows) = document else { return Err("not a JSON object of key → value".to_owned()) };
    Ok(Some((rows.into_iter().map(|(key, value)| (key, value.to_string())).collect(), etag)))
}
