//! Reading what the lake holds of one stream, page by page: raw records, events,
//! aggregates or dead letters, oldest first, with a cursor to go on from — what
//! `GET /v1/lake/{stream}/{kind}` and `weir tail` answer from.
//!
//! Objects are visited date by date (`date=` directories ascending); within a date, shard
//! by shard, and within a shard in key order, which is log order. The cursor holds the
//! date reached and, per shard, the last object and row given out in that date, so a
//! follower polling with it sees every object committed later on that date or after,
//! whichever shard it lands in, and never one twice.
//!
//! Every page is bounded: at most [`MAX_PAGE_ROWS`] rows, at most [`MAX_PAGE_BYTES`]
//! of rows in the answer and [`MAX_SCANNED_BYTES`] of objects read; a page that stopped
//! early says so (`more`) and its cursor continues where it stopped.

use std::collections::BTreeMap;

use base64::Engine as _;
use object_store::ObjectStore;
use object_store::path::{Path, PathPart};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::layout::{LakeObject, is_interrupted_write};
use crate::objects::get_if_present;

/// Rows one page holds at most.
pub const MAX_PAGE_ROWS: usize = 1000;
/// Bytes of rows (as JSON) one page holds at most, the first row excepted.
pub const MAX_PAGE_BYTES: usize = 8 << 20;
/// Bytes of objects one page reads at most (a page filtering out most rows stops here).
pub const MAX_SCANNED_BYTES: usize = 64 << 20;
/// The longest cursor taken (a cursor holds one position per shard).
pub const MAX_CURSOR_BYTES: usize = 16 << 10;

/// Which rows of a page to keep (dead letters only; every row of other kinds).
#[derive(Debug, Clone, Default)]
pub struct RowFilter {
    /// `plugin`: the plugin's name (any version) or `name@version`.
    pub plugin: Option<String>,
    /// `stage`: `parse`, `enrich`, `aggregate`, `sink`, ….
    pub stage: Option<String>,
    /// Text the reason contains, ignoring case.
    pub reason: Option<String>,
}

impl RowFilter {
    /// Whether no filter is set.
    pub fn is_empty(&self) -> bool {
        self.plugin.is_none() && self.stage.is_none() && self.reason.is_none()
    }

    fn keeps(&self, row: &Json) -> bool {
        let text = |name: &str| row.get(name).and_then(Json::as_str).unwrap_or_default();
        if let Some(plugin) = &self.plugin {
            let found = text("plugin");
            let name = found.split_once('@').map_or(found, |(name, _)| name);
            if found != plugin && name != plugin {
                return false;
            }
        }
        if self.stage.as_deref().is_some_and(|stage| text("stage") != stage) {
            return false;
        }
        if let Some(reason) = &self.reason {
            return text("reason").to_lowercase().contains(&reason.to_lowercase());
        }
        true
    }
}

/// What one page asks for.
#[derive(Debug, Clone)]
pub struct PageQuery {
    /// Where the previous page stopped (`None`: from the start, or from `since`).
    pub after: Option<String>,
    /// The first date (`YYYY-MM-DD`) to read when there is no cursor.
    pub since: Option<String>,
    /// Rows to return at most (1 to [`MAX_PAGE_ROWS`]).
    pub limit: usize,
    /// Which rows to keep.
    pub filter: RowFilter,
}

/// One page of a stream's objects.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    /// The rows, oldest first: the NDJSON lines of raw records and dead letters as they
    /// are in the lake, events and aggregates as `{id, key, time, seq, lineage, fields}`.
    pub rows: Vec<Json>,
    /// The cursor to ask the next page with (`after`); at the end, the one to poll with.
    pub next: String,
    /// Whether the page stopped at a bound before the end of what the lake holds now.
    pub more: bool,
}

/// Why a page cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// The request is wrong (a cursor that is not one, a date that is not one).
    #[error("{0}")]
    BadRequest(String),
    /// The store failed or holds an object that cannot be decoded.
    #[error("{0}")]
    Failed(String),
}

/// Where a page stopped: the date reached and, per shard directory of that date, the
/// last object read (its file name) and the rows of it given out.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct Cursor {
    date: String,
    #[serde(default)]
    shards: BTreeMap<String, (String, usize)>,
}

impl Cursor {
    fn decode(text: &str) -> Result<Self, PageError> {
        let bad = |why: String| {
            PageError::BadRequest(format!(
                "after={text:.40?} is not a cursor of this route ({why}); pass the `next` of the previous page as it was"
            ))
        };
        if text.len() > MAX_CURSOR_BYTES {
            return Err(bad(format!("over {MAX_CURSOR_BYTES} bytes")));
        }
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).map_err(|e| bad(e.to_string()))?;
        let cursor: Self = serde_json::from_slice(&json).map_err(|e| bad(e.to_string()))?;
        if !cursor.date.is_empty() {
            check_date(&cursor.date).map_err(bad)?;
        }
        Ok(cursor)
    }

    fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }
}

fn check_date(date: &str) -> Result<(), String> {
    let digits = |range: std::ops::Range<usize>| date.get(range).is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()));
    let well_formed = date.len() == 10 && digits(0..4) && &date[4..5] == "-" && digits(5..7) && &date[7..8] == "-";
    if well_formed && digits(8..10) { Ok(()) } else { Err(format!("{date:?} is not a date (YYYY-MM-DD)")) }
}

/// The last directory level of `prefix` as `name=value`: its value.
fn level_value<'a>(prefix: &'a Path, name: &str) -> Option<&'a str> {
    prefix.filename()?.strip_prefix(name)?.strip_prefix('=')
}

/// Reads one page of the objects of kind `kind` the lake in `store` holds of `stream`.
///
/// # Errors
/// [`PageError::BadRequest`] for a cursor or date that is not one;
/// [`PageError::Failed`] when the store cannot be listed or read, or holds an object
/// that cannot be decoded (naming it).
pub async fn read_page(
    store: &dyn ObjectStore,
    kind: LakeObject,
    stream: &str,
    query: &PageQuery,
) -> Result<Page, PageError> {
    let limit = query.limit.clamp(1, MAX_PAGE_ROWS);
    let mut cursor = match &query.after {
        Some(after) => Cursor::decode(after)?,
        None => {
            let since = query.since.clone().unwrap_or_default();
            if !since.is_empty() {
                check_date(&since).map_err(|why| PageError::BadRequest(format!("since: {why}")))?;
            }
            Cursor { date: since, shards: BTreeMap::new() }
        }
    };
    let failed = |what: &Path, e: object_store::Error| PageError::Failed(format!("cannot read {what}: {e}"));
    let stream_dir = Path::from_iter([PathPart::from(kind.prefix()), PathPart::from(format!("stream={stream}"))]);
    let listed = store.list_with_delimiter(Some(&stream_dir)).await.map_err(|e| failed(&stream_dir, e))?;
    let mut dates: Vec<(String, Path)> = listed
        .common_prefixes
        .into_iter()
        .filter_map(|dir| Some((level_value(&dir, "date")?.to_owned(), dir)))
        .filter(|(date, _)| *date >= cursor.date)
        .collect();
    dates.sort();
    let mut page = Page { rows: Vec::new(), next: String::new(), more: false };
    let (mut page_bytes, mut scanned) = (0usize, 0usize);
    'dates: for (date, date_dir) in dates {
        if date != cursor.date {
            cursor = Cursor { date: date.clone(), shards: BTreeMap::new() };
        }
        let listed = store.list_with_delimiter(Some(&date_dir)).await.map_err(|e| failed(&date_dir, e))?;
        let mut shard_dirs: Vec<Path> = listed.common_prefixes;
        shard_dirs.sort();
        for shard_dir in shard_dirs {
            let Some(shard) = shard_dir.filename().map(str::to_owned) else { continue };
            let listed = store.list_with_delimiter(Some(&shard_dir)).await.map_err(|e| failed(&shard_dir, e))?;
            let mut files: Vec<(String, Path)> = listed
                .objects
                .into_iter()
                .filter_map(|object| {
                    let name = object.location.filename()?.to_owned();
                    let wanted = !is_interrupted_write(&name) && object.location.extension() == Some(kind.extension());
                    wanted.then_some((name, object.location))
                })
                .collect();
            files.sort();
            let (done_file, done_rows) = cursor.shards.get(&shard).cloned().unwrap_or_default();
            for (name, location) in files {
                let skip = match name.cmp(&done_file) {
                    std::cmp::Ordering::Less => continue,
                    std::cmp::Ordering::Equal => done_rows,
                    std::cmp::Ordering::Greater => 0,
                };
                if scanned >= MAX_SCANNED_BYTES {
                    page.more = true;
                    break 'dates;
                }
                // None: removed since the listing (a lake compaction, a rerun), nothing to give.
                let Some(bytes) = get_if_present(store, &location).await.map_err(|e| failed(&location, e))? else {
                    continue;
                };
                scanned += bytes.len();
                let rows =
                    decode(kind, bytes).map_err(|why| PageError::Failed(format!("cannot decode {location}: {why}")))?;
                let total = rows.len();
                for (index, row) in rows.into_iter().enumerate().skip(skip) {
                    if page.rows.len() == limit || (page_bytes >= MAX_PAGE_BYTES && !page.rows.is_empty()) {
                        cursor.shards.insert(shard.clone(), (name.clone(), index));
                        page.more = true;
                        break 'dates;
                    }
                    if query.filter.keeps(&row) {
                        page_bytes += row.to_string().len();
                        page.rows.push(row);
                    }
                }
                cursor.shards.insert(shard.clone(), (name, total));
            }
        }
    }
    page.next = cursor.encode();
    Ok(page)
}

/// Dead letters a request may look up by id at once.
pub const MAX_DEAD_LETTER_IDS: usize = 100;

/// The dead letters of `stream` with the given ids (`orders-0003-00000000000000000042-0`),
/// found by the shard and position each id names (only the objects whose range holds
/// that position are read), and the ids not found.
///
/// # Errors
/// [`PageError::BadRequest`] for too many ids; [`PageError::Failed`] when the store
/// cannot be read or holds a line that is not JSON.
pub async fn find_dead_letters(
    store: &dyn ObjectStore,
    stream: &str,
    ids: &[String],
) -> Result<(Vec<Json>, Vec<String>), PageError> {
    if ids.len() > MAX_DEAD_LETTER_IDS {
        return Err(PageError::BadRequest(format!("{} ids; at most {MAX_DEAD_LETTER_IDS} per request", ids.len())));
    }
    let failed = |what: &Path, e: object_store::Error| PageError::Failed(format!("cannot read {what}: {e}"));
    // id → (shard directory, position key)
    let mut wanted: Vec<(String, String, String)> = Vec::new();
    let mut not_found = Vec::new();
    for id in ids {
        match parse_record_id(id, stream) {
            Some((shard, position)) => wanted.push((id.clone(), format!("shard={shard}"), position)),
            None => not_found.push(id.clone()),
        }
    }
    let stream_dir =
        Path::from_iter([PathPart::from(LakeObject::DeadLetters.prefix()), PathPart::from(format!("stream={stream}"))]);
    let dates = store.list_with_delimiter(Some(&stream_dir)).await.map_err(|e| failed(&stream_dir, e))?;
    let mut found: Vec<Json> = Vec::new();
    let mut remaining = wanted;
    for date_dir in dates.common_prefixes {
        if remaining.is_empty() {
            break;
        }
        let mut shards: Vec<&str> = remaining.iter().map(|(_, shard, _)| shard.as_str()).collect();
        shards.sort_unstable();
        shards.dedup();
        let shards: Vec<String> = shards.into_iter().map(str::to_owned).collect();
        for shard in shards {
            let dir = Path::from(format!("{date_dir}/{shard}"));
            let listed = store.list_with_delimiter(Some(&dir)).await.map_err(|e| failed(&dir, e))?;
            for object in listed.objects {
                let Some(name) = object.location.filename() else { continue };
                let Some((first, last)) = name.strip_suffix(".ndjson").and_then(|stem| stem.split_once('-')) else {
                    continue;
                };
                let holds = |position: &str| {
                    let key = |p: &str| (p.len(), p.to_owned());
                    key(first) <= key(position) && key(position) <= key(last)
                };
                if !remaining.iter().any(|(_, s, position)| *s == shard && holds(position)) {
                    continue;
                }
                let Some(bytes) =
                    get_if_present(store, &object.location).await.map_err(|e| failed(&object.location, e))?
                else {
                    continue;
                };
                for row in decode(LakeObject::DeadLetters, bytes)
                    .map_err(|why| PageError::Failed(format!("cannot decode {}: {why}", object.location)))?
                {
                    let id = row.get("id").and_then(Json::as_str).unwrap_or_default().to_owned();
                    if let Some(at) = remaining.iter().position(|(wanted, _, _)| *wanted == id) {
                        remaining.remove(at);
                        found.push(row);
                    }
                }
            }
        }
    }
    not_found.extend(remaining.into_iter().map(|(id, _, _)| id));
    Ok((found, not_found))
}

/// The shard and the position (as in object keys) a record id of `stream` names:
/// `<stream>-<shard>-<position:20>-<output>`, with `-dead-<n>` for a dead letter.
fn parse_record_id(id: &str, stream: &str) -> Option<(String, String)> {
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    // A dead letter's id is its record's output id and `-dead-<n>`.
    let id = match id.rsplit_once("-dead-") {
        Some((record, n)) if numeric(n) => record,
        _ => id,
    };
    let rest = id.strip_prefix(stream)?.strip_prefix('-')?;
    let (rest, output) = rest.rsplit_once('-')?;
    let (shard, position) = rest.rsplit_once('-')?;
    (numeric(output) && numeric(position) && !shard.is_empty() && !shard.contains('/'))
        .then(|| (shard.to_owned(), position.to_owned()))
}

/// The rows of one object: NDJSON lines as they are, Parquet rows as JSON.
fn decode(kind: LakeObject, bytes: bytes::Bytes) -> Result<Vec<Json>, String> {
    match kind {
        LakeObject::Raw | LakeObject::DeadLetters => bytes
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| serde_json::from_slice(line).map_err(|e| e.to_string()))
            .collect(),
        LakeObject::Events | LakeObject::Aggregates => {
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .and_then(|builder| builder.build())
                .map_err(|e| e.to_string())?;
            let mut rows = Vec::new();
            for batch in reader {
                let batch = batch.map_err(|e| e.to_string())?;
                rows.extend(crate::warehouse::json_rows_of(&batch)?);
            }
            Ok(rows)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_survives_its_round_trip_and_garbage_is_refused_with_what_to_do() {
        let cursor = Cursor {
            date: "2026-12-03".into(),
            shards: BTreeMap::from([(
                "shard=0001".into(),
                ("00000000000000000004-00000000000000000009.ndjson".into(), 2),
            )]),
        };
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        for bad in ["", "not base64 !", &"A".repeat(MAX_CURSOR_BYTES + 1)] {
            let Err(PageError::BadRequest(why)) = Cursor::decode(bad) else { panic!("{bad:.20} accepted") };
            assert!(why.contains("pass the `next` of the previous page"), "{why}");
        }
        let not_a_date = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"date":"../../etc"}"#);
        assert!(matches!(Cursor::decode(&not_a_date), Err(PageError::BadRequest(_))));
    }

    #[test]
    fn a_record_id_names_its_shard_and_position_even_when_the_stream_name_has_dashes() {
        assert_eq!(
            parse_record_id("web-clicks-0003-00000000000000000042-1", "web-clicks"),
            Some(("0003".to_owned(), "00000000000000000042".to_owned()))
        );
        assert_eq!(
            parse_record_id("orders-0000-00000000000000000003-0-dead-0", "orders"),
            Some(("0000".to_owned(), "00000000000000000003".to_owned()))
        );
        assert_eq!(parse_record_id("orders-0003-00000000000000000042-0", "web-clicks"), None);
        assert_eq!(parse_record_id("orders-../x-42-0", "orders"), None);
        assert_eq!(parse_record_id("orders-0003-4x-0", "orders"), None);
    }

    #[test]
    fn a_dead_letter_filter_matches_the_plugin_by_name_or_version_the_stage_and_reason_text() {
        let row =
            serde_json::json!({"plugin": "orders-parser@2.0.0", "stage": "parse", "reason": "Missing Field total"});
        let filter = |plugin: Option<&str>, stage: Option<&str>, reason: Option<&str>| RowFilter {
            plugin: plugin.map(Into::into),
            stage: stage.map(Into::into),
            reason: reason.map(Into::into),
        };
        assert!(filter(Some("orders-parser"), Some("parse"), Some("missing field")).keeps(&row));
        assert!(filter(Some("orders-parser@2.0.0"), None, None).keeps(&row));
        assert!(!filter(Some("orders-parser@1.0.0"), None, None).keeps(&row));
        assert!(!filter(Some("orders"), None, None).keeps(&row));
        assert!(!filter(None, Some("enrich"), None).keeps(&row));
        assert!(!filter(None, None, Some("timeout")).keeps(&row));
    }
}
