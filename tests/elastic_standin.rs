//! A stand-in for Elasticsearch — no Elasticsearch or OpenSearch server can be installed
//! on these machines — answering what weir's sink and search call, as Elasticsearch's
//! REST API documents it:
//!
//! - `PUT /{index}` creates an index from its `mappings` (`400
//!   resource_already_exists_exception` when it exists);
//! - `POST /_bulk` and `POST /{index}/_bulk` take NDJSON `index` actions and answer `200`
//!   with `errors` and one item per action, each with its own `status`: `201`/`200`,
//!   `400 strict_dynamic_mapping_exception` for a field the strict mapping lacks,
//!   `400 document_parsing_exception` for a non-number in a `double` field — and, injected
//!   on demand, `429 es_rejected_execution_exception` for some items, a mapping error for
//!   chosen documents, `503` for a whole request;
//! - `GET|POST /{index}/_search` answers `match_all` and the part of `query_string` weir's
//!   tests use (terms and phrases, `field:value`, `field:>=N` ranges, `OR`, AND by
//!   default, text lowercased and folded to ASCII) with `hits.total.value` and `_source`;
//!   a number range on a text value is `400 query_shard_exception`.
//!
//! It speaks HTTP/1.1 with `Content-Length` bodies (as the `elasticsearch` crate sends
//! them) and always answers `Content-Type: application/json`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::{Value as Json, json};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::fault_proxy::{Message, read_message};

/// Faults injected, changed while it runs.
#[derive(Debug, Default, Clone)]
pub struct ElasticFaults {
    /// Every Nth `_bulk` request is answered `503` as a whole, nothing stored.
    pub unavailable_every: u64,
    /// Every Nth item (counted across requests) is answered `429` and not stored.
    pub reject_item_every: u64,
    /// Documents whose `fields.<name>` is this text are refused with a mapping error.
    pub mapping_error_when: Option<(String, String)>,
    /// Every item is answered `403 cluster_block_exception` (a write block, as when the
    /// disk watermark is passed), nothing stored.
    pub write_block: bool,
}

/// What it saw.
#[derive(Debug, Default, Clone)]
pub struct ElasticSeen {
    /// `_bulk` requests, all.
    pub bulk_requests: u64,
    /// `_bulk` requests answered `503`.
    pub unavailable: u64,
    /// Items answered `429`.
    pub rejected_items: u64,
    /// Items refused for their content.
    pub mapping_errors: u64,
    /// `delete` actions.
    pub deleted: u64,
    /// Per document id, how many times an index action for it arrived.
    pub received: HashMap<String, u64>,
    /// `_search` requests.
    pub searches: u64,
    /// The `Authorization` header of the last request, if it had one.
    pub authorization: Option<String>,
}

#[derive(Debug, Default)]
struct Index {
    /// `mappings.properties`.
    properties: serde_json::Map<String, Json>,
    documents: BTreeMap<String, Json>,
}

#[derive(Debug, Default)]
struct State {
    faults: ElasticFaults,
    seen: ElasticSeen,
    indices: BTreeMap<String, Index>,
    items: u64,
}

/// A running stand-in.
#[derive(Debug, Clone)]
pub struct ElasticStandIn {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl ElasticStandIn {
    /// Starts one on a thread of its own; it runs until the test process ends.
    pub fn start() -> ElasticStandIn {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((client, _)) = listener.accept().await else { continue };
                    let state = shared.clone();
                    tokio::spawn(async move {
                        let _ = serve(client, &state).await;
                    });
                }
            });
        });
        ElasticStandIn { url, state }
    }

    /// Changes the faults.
    pub fn set(&self, change: impl FnOnce(&mut ElasticFaults)) {
        change(&mut self.state.lock().unwrap().faults);
    }

    /// What it saw so far.
    pub fn seen(&self) -> ElasticSeen {
        self.state.lock().unwrap().seen.clone()
    }

    /// The documents of `index`, by id.
    pub fn documents(&self, index: &str) -> BTreeMap<String, Json> {
        self.state.lock().unwrap().indices.get(index).map(|i| i.documents.clone()).unwrap_or_default()
    }
}

fn respond(status: u16, body: &Json) -> Message {
    let body = body.to_string().into_bytes();
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        503 => "Service Unavailable",
        _ => "Status",
    };
    Message {
        head: format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nX-Elastic-Product: Elasticsearch\r\nContent-Length: {}",
            body.len()
        ),
        body,
    }
}

fn error(status: u16, kind: &str, reason: &str) -> Message {
    respond(
        status,
        &json!({"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason}, "status": status}),
    )
}

async fn serve(mut client: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    loop {
        let Some(request) = read_message(&mut client, &mut buffer).await? else { return Ok(()) };
        if let Some(authorization) = request.header("authorization") {
            state.lock().unwrap().seen.authorization = Some(authorization.to_owned());
        }
        let start = request.head.lines().next().unwrap_or_default().to_owned();
        let mut parts = start.split(' ');
        let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let response = {
            let mut state = state.lock().unwrap();
            match (method, segments.as_slice()) {
                ("PUT", [index]) => create_index(&mut state, index, &request.body),
                ("POST", ["_bulk"]) | ("POST", [_, "_bulk"]) => bulk(&mut state, &request.body),
                ("GET" | "POST", [index, "_search"]) => search(&mut state, index, query, &request.body),
                _ => error(404, "not_found", &format!("the stand-in does not answer {method} {path}")),
            }
        };
        client.write_all(&response.bytes()).await?;
    }
}

fn create_index(state: &mut State, index: &str, body: &[u8]) -> Message {
    if state.indices.contains_key(index) {
        return error(400, "resource_already_exists_exception", &format!("index [{index}/uuid] already exists"));
    }
    let body: Json = serde_json::from_slice(body).unwrap_or_default();
    let properties = body["mappings"]["properties"].as_object().cloned().unwrap_or_default();
    state.indices.insert(index.to_owned(), Index { properties, documents: BTreeMap::new() });
    respond(200, &json!({"acknowledged": true, "shards_acknowledged": true, "index": index}))
}

fn bulk(state: &mut State, body: &[u8]) -> Message {
    state.seen.bulk_requests += 1;
    if state.faults.unavailable_every > 0 && state.seen.bulk_requests.is_multiple_of(state.faults.unavailable_every) {
        state.seen.unavailable += 1;
        return error(503, "unavailable_shards_exception", "primary shard is not active (injected by the stand-in)");
    }
    let text = String::from_utf8_lossy(body);
    let mut lines = text.lines().filter(|line| !line.trim().is_empty());
    let mut items = Vec::new();
    let mut errors = false;
    while let Some(action) = lines.next() {
        let action: Json = serde_json::from_str(action).unwrap_or_default();
        if let Some(meta) = action.get("delete") {
            // A delete action has no document line; a missing document answers 404.
            let (index, id) = (meta["_index"].as_str().unwrap_or_default(), meta["_id"].as_str().unwrap_or_default());
            state.seen.deleted += 1;
            let removed = state.indices.get_mut(index).and_then(|target| target.documents.remove(id)).is_some();
            let (status, result) = if removed { (200, "deleted") } else { (404, "not_found") };
            items.push(json!({"delete": {"_index": index, "_id": id, "status": status, "result": result}}));
            continue;
        }
        let Some(document) = lines.next() else { break };
        let document: Json = serde_json::from_str(document).unwrap_or_default();
        let meta = &action["index"];
        let (index, id) = (
            meta["_index"].as_str().unwrap_or_default().to_owned(),
            meta["_id"].as_str().unwrap_or_default().to_owned(),
        );
        *state.seen.received.entry(id.clone()).or_default() += 1;
        state.items += 1;
        let result = |status: u16, error: Option<(&str, String)>| {
            let mut item = json!({"_index": index, "_id": id, "status": status});
            if let Some((kind, reason)) = error {
                item["error"] = json!({"type": kind, "reason": reason});
            } else {
                item["result"] = json!(if status == 201 { "created" } else { "updated" });
            }
            json!({"index": item})
        };
        if state.faults.write_block {
            errors = true;
            items.push(result(
                403,
                Some((
                    "cluster_block_exception",
                    "index [orders] blocked by: [FORBIDDEN/8/index write (api)] (injected by the stand-in)".into(),
                )),
            ));
            continue;
        }
        if state.faults.reject_item_every > 0 && state.items.is_multiple_of(state.faults.reject_item_every) {
            state.seen.rejected_items += 1;
            errors = true;
            items.push(result(
                429,
                Some((
                    "es_rejected_execution_exception",
                    "rejected execution of coordinating operation (injected by the stand-in)".into(),
                )),
            ));
            continue;
        }
        if let Some((field, value)) = &state.faults.mapping_error_when
            && document["fields"][field].as_str() == Some(value)
        {
            state.seen.mapping_errors += 1;
            errors = true;
            items.push(result(
                400,
                Some((
                    "document_parsing_exception",
                    format!("[1:42] failed to parse field [{field}] (injected by the stand-in)"),
                )),
            ));
            continue;
        }
        let Some(target) = state.indices.get_mut(&index) else {
            errors = true;
            items.push(result(404, Some(("index_not_found_exception", format!("no such index [{index}]")))));
            continue;
        };
        if let Some(problem) = mapping_problem(&target.properties, &document) {
            state.seen.mapping_errors += 1;
            errors = true;
            items.push(result(400, Some(problem)));
            continue;
        }
        let created = target.documents.insert(id.clone(), document).is_none();
        items.push(result(if created { 201 } else { 200 }, None));
    }
    respond(200, &json!({"took": 3, "errors": errors, "items": items}))
}

/// What a strict mapping refuses in `document`.
fn mapping_problem(properties: &serde_json::Map<String, Json>, document: &Json) -> Option<(&'static str, String)> {
    for (name, value) in document.as_object()? {
        let Some(mapping) = properties.get(name) else {
            return Some((
                "strict_dynamic_mapping_exception",
                format!("[1:2] mapping set to strict, dynamic introduction of [{name}] within [_doc] is not allowed"),
            ));
        };
        if mapping["type"] == "double" && !value.is_number() {
            return Some((
                "document_parsing_exception",
                format!("[1:2] failed to parse field [{name}] of type [double]"),
            ));
        }
    }
    None
}

/// Lowercased words, folded to ASCII.
fn words(text: &str) -> Vec<String> {
    let folded: String = text
        .to_lowercase()
        .chars()
        .map(|c| match c {
            'à' | 'á' | 'â' | 'ä' | 'ã' | 'å' => "a".to_owned(),
            'ç' => "c".to_owned(),
            'è' | 'é' | 'ê' | 'ë' => "e".to_owned(),
            'ì' | 'í' | 'î' | 'ï' => "i".to_owned(),
            'ñ' => "n".to_owned(),
            'ò' | 'ó' | 'ô' | 'ö' | 'õ' => "o".to_owned(),
            'ù' | 'ú' | 'û' | 'ü' => "u".to_owned(),
            'ß' => "ss".to_owned(),
            other => other.to_string(),
        })
        .collect();
    folded.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_owned).collect()
}

/// The clauses of a query string: whitespace-separated, quotes kept together.
fn clauses(query: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut current, mut quoted) = (String::new(), false);
    for c in query.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Whether `clause` (`term`, `"phrase"`, `field:…`, `field:>=N`) matches `document`.
fn matches(clause: &str, default_field: &str, document: &Json) -> Result<bool, String> {
    let (field, value) = match clause.split_once(':') {
        Some((field, value)) if !clause.starts_with('"') => (field, value),
        _ => (default_field, clause),
    };
    let stored = &document[field];
    for (op, ordering) in [
        (">=", [true, true, false]),
        ("<=", [false, true, true]),
        (">", [true, false, false]),
        ("<", [false, false, true]),
    ] {
        if let Some(bound) = value.strip_prefix(op) {
            let bound: f64 =
                bound.parse().map_err(|_| format!("failed to create query: For input string: \"{bound}\""))?;
            let Some(number) = stored.as_f64() else {
                if stored.is_string() {
                    return Err(format!("failed to create query: a range of numbers on the text field [{field}]"));
                }
                return Ok(false);
            };
            let [greater, equal, less] = ordering;
            return Ok((greater && number > bound) || (equal && number == bound) || (less && number < bound));
        }
    }
    let wanted = words(value.trim_matches('"'));
    if value == "*" {
        return Ok(!stored.is_null());
    }
    let texts: Vec<String> = match stored {
        Json::Array(items) => items.iter().filter_map(Json::as_str).map(str::to_owned).collect(),
        Json::String(text) => vec![text.clone()],
        Json::Number(n) => vec![n.to_string()],
        _ => Vec::new(),
    };
    Ok(texts.iter().any(|text| {
        let have = words(text);
        !wanted.is_empty() && have.windows(wanted.len()).any(|window| window == wanted.as_slice())
    }))
}

fn search(state: &mut State, index: &str, query: &str, body: &[u8]) -> Message {
    state.seen.searches += 1;
    let Some(target) = state.indices.get(index) else {
        return error(404, "index_not_found_exception", &format!("no such index [{index}]"));
    };
    let body: Json = serde_json::from_slice(body).unwrap_or_default();
    let size: usize =
        query.split('&').find_map(|pair| pair.strip_prefix("size=")).and_then(|size| size.parse().ok()).unwrap_or(10);
    let mut found = Vec::new();
    if body["query"].get("match_all").is_some() {
        found.extend(target.documents.iter());
    } else {
        let query_string = &body["query"]["query_string"];
        let Some(text) = query_string["query"].as_str() else {
            return error(400, "parsing_exception", "the stand-in answers match_all and query_string only");
        };
        let default_field = query_string["default_field"].as_str().unwrap_or("text");
        // OR between groups of clauses that must all match.
        let mut groups: Vec<Vec<String>> = vec![Vec::new()];
        for clause in clauses(text) {
            if clause == "OR" {
                groups.push(Vec::new());
            } else if clause.starts_with('(') || clause.starts_with('[') || clause == "NOT" {
                return error(400, "query_shard_exception", &format!("the stand-in does not implement {clause:?}"));
            } else {
                groups.last_mut().unwrap().push(clause);
            }
        }
        for (id, document) in &target.documents {
            let mut any = false;
            for group in &groups {
                let mut all = !group.is_empty();
                for clause in group {
                    match matches(clause, default_field, document) {
                        Ok(true) => {}
                        Ok(false) => all = false,
                        Err(reason) => return error(400, "query_shard_exception", &reason),
                    }
                }
                any |= all;
            }
            if any {
                found.push((id, document));
            }
        }
    }
    let hits: Vec<Json> = found
        .iter()
        .take(size)
        .map(|(id, source)| json!({"_index": index, "_id": id, "_score": 1.0, "_source": source}))
        .collect();
    respond(
        200,
        &json!({"took": 2, "timed_out": false, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
                "hits": {"total": {"value": found.len(), "relation": "eq"}, "max_score": 1.0, "hits": hits}}),
    )
}
