//! Ingest, `/metrics` and `/healthz`: the data entry point and the probes. `app` merges
//! these routes with the read and admin APIs; one `app()` serves `weir serve`, the demo
//! and the benchmarks.

use std::borrow::Cow;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::json;
use serde_json::value::RawValue;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use weir_log::{NewRecord, RecordPlace};

use crate::api_error::ApiError;
use crate::body::{BodyError, read_body};
use weir_pipeline::IngestError;

use crate::state::Api;

/// Records one request may carry (Kinesis' PutRecords takes 500; NDJSON producers batch
/// more). A larger request is answered 413.
pub const MAX_RECORDS_PER_REQUEST: usize = 10_000;

/// `POST /v1/streams/{stream}/records`.
pub(crate) fn ingest_routes() -> OpenApiRouter<Arc<Api>> {
    OpenApiRouter::new().routes(routes!(ingest))
}

/// `/metrics` and `/healthz`: open to all, for probes and scrapers.
pub(crate) fn open_routes() -> OpenApiRouter<Arc<Api>> {
    OpenApiRouter::new().routes(routes!(metrics)).routes(routes!(healthz))
}

impl From<IngestError> for ApiError {
    fn from(err: IngestError) -> Self {
        let message = err.to_string();
        match err {
            IngestError::UnknownStream { .. } => ApiError::new(StatusCode::NOT_FOUND, "unknown_stream", message),
            IngestError::RecordTooLarge { .. }
            | IngestError::RequestTooLarge { .. }
            | IngestError::TooManyRecords { .. } => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message),
            IngestError::Backpressure { retry_after_secs, .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "backpressure", message).retry_after(retry_after_secs)
            }
            IngestError::ShuttingDown | IngestError::Log(weir_log::LogError::Interrupted { .. }) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", message).retry_after(1)
            }
            IngestError::Log(_) => ApiError::internal(message),
        }
    }
}

#[derive(Debug, Deserialize)]
struct IngestQuery {
    /// The partition key of every record of the request.
    key: Option<String>,
    /// For JSON records: the member whose (text or number) value is each record's
    /// partition key, e.g. `restaurant_id`.
    key_field: Option<String>,
}

/// The partition key in member `field` of the JSON object `record`: its text, or a
/// number in its JSON form. `None` when `record` is not a JSON object or the member is
/// missing or not text or a number; a repeated member counts by its last value, as a
/// parsed object keeps it. The other members are only scanned, never built: one pass
/// over the bytes and no allocation but the key's (this runs once per ingested record).
fn key_in(record: &[u8], field: &str) -> Option<String> {
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

    /// Whether a member name equals the field.
    struct IsField<'f>(&'f str);
    impl<'de> DeserializeSeed<'de> for IsField<'_> {
        type Value = bool;
        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
            deserializer.deserialize_str(self)
        }
    }
    impl Visitor<'_> for IsField<'_> {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a member name")
        }
        fn visit_str<E>(self, name: &str) -> Result<bool, E> {
            Ok(name == self.0)
        }
    }

    /// A member's value as a partition key: text or a number.
    struct KeyValue;
    impl<'de> DeserializeSeed<'de> for KeyValue {
        type Value = Option<String>;
        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<String>, D::Error> {
            deserializer.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for KeyValue {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_str<E>(self, text: &str) -> Result<Option<String>, E> {
            Ok(Some(text.to_owned()))
        }
        fn visit_i64<E>(self, n: i64) -> Result<Option<String>, E> {
            Ok(Some(n.to_string()))
        }
        fn visit_u64<E>(self, n: u64) -> Result<Option<String>, E> {
            Ok(Some(n.to_string()))
        }
        fn visit_f64<E>(self, n: f64) -> Result<Option<String>, E> {
            Ok(serde_json::Number::from_f64(n).map(|n| n.to_string()))
        }
        fn visit_bool<E>(self, _: bool) -> Result<Option<String>, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Option<String>, E> {
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Option<String>, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }

    /// The object: the key member's value, the others skipped.
    struct Object<'f>(&'f str);
    impl<'de> Visitor<'de> for Object<'_> {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
            let mut key = None;
            while let Some(is_field) = map.next_key_seed(IsField(self.0))? {
                if is_field {
                    key = map.next_value_seed(KeyValue)?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(key)
        }
    }

    if record.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    let mut deserializer = serde_json::Deserializer::from_slice(record);
    let key = deserializer.deserialize_map(Object(field)).ok()?;
    deserializer.end().ok()?;
    key
}

/// `POST /v1/streams/{stream}/records`: NDJSON (`application/x-ndjson`), a JSON array
/// (`application/json`; a single object is one record), or any other body as one raw
/// record with its content type kept. Answers once the records are durably appended.
#[utoipa::path(
    post,
    path = "/v1/streams/{stream}/records",
    tag = "ingest",
    summary = "Ingest records: NDJSON, a JSON array, or one raw record of any content type",
    security((), ("bearer" = [])),
    params(
        ("stream" = String, Path, description = "stream name"),
        ("key" = Option<String>, Query, description = "partition key of every record"),
        ("key_field" = Option<String>, Query, description = "JSON member holding each record's partition key"),
    ),
    request_body(content((String = "application/x-ndjson"), (serde_json::Value = "application/json"), (crate::schemas::Binary = "*/*"))),
    responses(
        (status = 200, description = "OK", body = crate::schemas::JsonObject),
        crate::schemas::IngestRefusals,
    )
)]
async fn ingest(
    State(pipeline): State<Arc<Api>>,
    Path(stream): Path<String>,
    query: Result<Query<IngestQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let limit = pipeline.limits().max_request_bytes;
    let body: Bytes = read_body(body, limit, pipeline.limits().body_timeout).await.map_err(|error| match error {
        BodyError::TooLarge => ApiError::from(IngestError::RequestTooLarge { limit }),
        other => ApiError::from(other),
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_else(|| "application/octet-stream".into());
    let key = query.key.or_else(|| headers.get("x-partition-key").and_then(|v| v.to_str().ok()).map(str::to_owned));
    let arrival_time = weir_pipeline::now_micros();
    // A JSON record's key member is read from its bytes only when no key was given.
    let record = |data: Bytes, content_type: Cow<'static, str>, json: bool| NewRecord {
        partition_key: key
            .clone()
            .or_else(|| query.key_field.as_deref().filter(|_| json).and_then(|f| key_in(&data, f))),
        data,
        content_type,
        arrival_time,
    };
    let records = records_in(&body, &content_type, record)?;
    if records.is_empty() {
        return Err(ApiError::bad_request("the request holds no records"));
    }
    let appended = pipeline.ingest(&stream, records).await?;
    Ok((StatusCode::OK, axum::Json(Acknowledged(&appended))).into_response())
}

/// The records of a request body of `content_type`, each made by `record` from its data,
/// its content type and whether it is JSON. Each record's data is a slice of `body`: no
/// copy and no allocation per record. NDJSON lines and JSON array elements are counted
/// before any record is made, so a body of tiny records cannot make the host build
/// millions of them.
fn records_in(
    body: &Bytes,
    content_type: &str,
    mut record: impl FnMut(Bytes, Cow<'static, str>, bool) -> NewRecord,
) -> Result<Vec<NewRecord>, ApiError> {
    const JSON: Cow<'static, str> = Cow::Borrowed("application/json");
    let too_many = |records: usize| IngestError::TooManyRecords { records, limit: MAX_RECORDS_PER_REQUEST };
    Ok(match content_type {
        "application/x-ndjson" | "application/jsonl" | "application/ndjson" => {
            let lines = body.split(|&b| b == b'\n').filter(|line| !line.iter().all(u8::is_ascii_whitespace)).count();
            if lines > MAX_RECORDS_PER_REQUEST {
                return Err(too_many(lines).into());
            }
            body.split(|&b| b == b'\n')
                .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
                .map(|line| record(body.slice_ref(line), JSON, true))
                .collect()
        }
        "application/json" => {
            let not_json = |e: serde_json::Error| {
                ApiError::bad_request(format!(
                    "the body is not JSON ({e}); send a JSON array of records, one JSON record, or NDJSON with \
                     Content-Type: application/x-ndjson"
                ))
            };
            if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
                // Each element as the bytes that were sent (duplicate keys, big integers and
                // escapes kept), no more than the record limit held at once.
                let elements = json_array_elements(body, MAX_RECORDS_PER_REQUEST).map_err(|e| match e {
                    ArrayError::TooMany(count) => ApiError::from(too_many(count)),
                    ArrayError::Json(e) => not_json(e),
                })?;
                elements.iter().map(|element| record(body.slice_ref(element.get().as_bytes()), JSON, true)).collect()
            } else {
                serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(not_json)?;
                vec![record(body.clone(), JSON, true)]
            }
        }
        other => vec![record(body.clone(), Cow::Owned(other.to_owned()), false)],
    })
}

/// The ingest answer, `{"records": N, "sequence_numbers": [{"shard": …, "seq": …}, …]}`,
/// written straight from the appended places: no JSON tree of two maps and four strings
/// per record.
struct Acknowledged<'a>(&'a [RecordPlace]);

impl Serialize for Acknowledged<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Places<'a>(&'a [RecordPlace]);
        impl Serialize for Places<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.iter().map(Place))
            }
        }
        struct Place<'a>(&'a RecordPlace);
        impl Serialize for Place<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut place = serializer.serialize_map(Some(2))?;
                place.serialize_entry("shard", &Id(self.0.shard.as_str()))?;
                place.serialize_entry("seq", &Id(self.0.position.as_str()))?;
                place.end()
            }
        }
        let mut answer = serializer.serialize_map(Some(2))?;
        answer.serialize_entry("records", &self.0.len())?;
        answer.serialize_entry("sequence_numbers", &Places(self.0))?;
        answer.end()
    }
}

/// A shard id or position: a JSON number when readers hold it exactly, else its text.
struct Id<'a>(&'a str);

impl Serialize for Id<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        weir_events::json::serialize_id(self.0, serializer)
    }
}

/// Why a JSON array body cannot be split.
enum ArrayError {
    /// More elements than the limit: how many.
    TooMany(usize),
    /// Not a JSON array.
    Json(serde_json::Error),
}

/// The elements of the JSON array `body`, each as its own bytes. Past `limit` elements
/// the rest are only counted, so a body of tiny elements never costs more than `limit`
/// element slices.
fn json_array_elements(body: &[u8], limit: usize) -> Result<Vec<&RawValue>, ArrayError> {
    struct Elements {
        limit: usize,
    }
    impl<'de> serde::de::Visitor<'de> for Elements {
        /// The elements, or how many there are when more than the limit.
        type Value = Result<Vec<&'de RawValue>, usize>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON array of records")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut elements = Vec::new();
            while let Some(element) = seq.next_element::<&RawValue>()? {
                if elements.len() == self.limit {
                    let mut count = self.limit + 1;
                    while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                        count += 1;
                    }
                    return Ok(Err(count));
                }
                elements.push(element);
            }
            Ok(Ok(elements))
        }
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let elements =
        serde::Deserializer::deserialize_seq(&mut deserializer, Elements { limit }).map_err(ArrayError::Json)?;
    deserializer.end().map_err(ArrayError::Json)?;
    elements.map_err(ArrayError::TooMany)
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "host",
    summary = "Prometheus metrics",
    responses(
        (status = 200, description = "OK"),
    )
)]
async fn metrics(State(pipeline): State<Arc<Api>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], pipeline.metrics().render())
}

/// `GET /healthz`: the streams and how many records each has waiting to be processed.
/// How long a sink must have been failing before `/healthz` reports the host degraded: a
/// single failed write that the next retry fixes is not an outage.
const DEGRADED_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

/// `GET /healthz`: `200 {"status": "ok", …}`, or `503 {"status": "degraded", …}` while a
/// sink has been failing for 5 s or more, naming it, since how long and why.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "host",
    summary = "Health and pending records per stream",
    responses(
        (status = 200, description = "OK: no sink has been failing for 5 s or more, and every live plugin starts"),
        (status = 503, description = "Degraded: failing_sinks names each sink that has been failing for 5 s or more, failing_plugins each live plugin that cannot start a fresh instance (its shards are held), each with failing_for_seconds, failed_attempts and last_error"),
    )
)]
async fn healthz(State(pipeline): State<Arc<Api>>) -> impl IntoResponse {
    let mut pending = serde_json::Map::new();
    for stream in pipeline.stream_names() {
        let n = pipeline.pending(&stream).await.ok().flatten().map_or(serde_json::Value::Null, |p| json!(p));
        pending.insert(stream, n);
    }
    let failing = |failures: Vec<(String, weir_pipeline::Outage)>| -> serde_json::Map<String, serde_json::Value> {
        failures
            .into_iter()
            .map(|(name, failure)| {
                let failing = json!({
                    "failing_for_seconds": failure.since.elapsed().as_secs(),
                    "failed_attempts": failure.attempts,
                    "last_error": failure.last_error,
                });
                (name, failing)
            })
            .collect()
    };
    let failing_sinks = failing(pipeline.failing_sinks(DEGRADED_AFTER));
    // A plugin that cannot start holds its shards at once: reported from the first try.
    let failing_plugins = failing(pipeline.failing_plugins());
    let (status, word) = if failing_sinks.is_empty() && failing_plugins.is_empty() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "degraded")
    };
    let body = json!({
        "status": word,
        "streams": pipeline.stream_names(),
        "pending": pending,
        "failing_sinks": failing_sinks,
        "failing_plugins": failing_plugins,
    });
    (status, axum::Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_log::{Position, ShardId};

    /// The records of `body` as (data, content type), checking that each one's data lies
    /// inside the body's memory: a slice, not a copy.
    fn split(body: &'static [u8], content_type: &str) -> Vec<(String, String)> {
        let body = Bytes::from_static(body);
        let inside = body.as_ptr_range();
        let record = |data: Bytes, content_type: Cow<'static, str>, _json: bool| {
            let range = data.as_ptr_range();
            assert!(inside.start <= range.start && range.end <= inside.end, "{data:?} was copied out of the body");
            NewRecord { partition_key: None, data, content_type, arrival_time: 0 }
        };
        let records = records_in(&body, content_type, record).unwrap_or_else(|e| panic!("{e:?}"));
        records
            .into_iter()
            .map(|r| (String::from_utf8(r.data.to_vec()).unwrap(), r.content_type.into_owned()))
            .collect()
    }

    #[test]
    fn records_are_slices_of_the_body_as_sent() {
        let json = |data: &str| (data.to_owned(), "application/json".to_owned());
        assert_eq!(
            split(b"{\"a\":1}\n\n  \n{\"a\": 2}\r\n", "application/x-ndjson"),
            [json("{\"a\":1}"), json("{\"a\": 2}\r")]
        );
        assert_eq!(
            split(b" [{\"a\":1,\"a\":2}, 12345678901234567890123 ,\"\\u00e9\"] ", "application/json"),
            [json("{\"a\":1,\"a\":2}"), json("12345678901234567890123"), json("\"\\u00e9\"")]
        );
        assert_eq!(split(b"{\"a\":1}", "application/json"), [json("{\"a\":1}")]);
        assert_eq!(split(b"a,b\n1,2\n", "text/csv"), [("a,b\n1,2\n".to_owned(), "text/csv".to_owned())]);
    }

    #[test]
    fn a_body_over_the_record_limit_is_refused_before_any_record_is_made() {
        let body = Bytes::from("{}\n".repeat(MAX_RECORDS_PER_REQUEST + 1));
        let mut made = 0;
        let record = |data: Bytes, content_type: Cow<'static, str>, _: bool| {
            made += 1;
            NewRecord { partition_key: None, data, content_type, arrival_time: 0 }
        };
        let refused = records_in(&body, "application/x-ndjson", record).unwrap_err();
        assert_eq!(refused.into_response().status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(made, 0);
    }

    #[test]
    fn the_ingest_answer_is_the_json_it_always_was() {
        let places = [
            RecordPlace { shard: ShardId::from(0), position: Position::from(0) },
            RecordPlace { shard: ShardId::from(3), position: Position::from(9_007_199_254_740_991) },
            RecordPlace { shard: ShardId::from(1), position: Position::from(9_007_199_254_740_992) },
            RecordPlace {
                shard: ShardId::parse("shardId-000000000001").unwrap(),
                position: Position::parse("49680801738104294031600700856251671832112477711022161938").unwrap(),
            },
        ];
        let answer = serde_json::to_string(&Acknowledged(&places)).unwrap();
        let tree = json!({
            "records": places.len(),
            "sequence_numbers": places.iter().map(|p| json!({
                "shard": weir_events::json::id_to_json(p.shard.as_str()),
                "seq": weir_events::json::id_to_json(p.position.as_str()),
            })).collect::<Vec<_>>(),
        });
        assert_eq!(answer, tree.to_string());
        assert!(answer.starts_with(r#"{"records":4,"sequence_numbers":[{"shard":0,"seq":0},"#), "{answer}");
        assert!(answer.contains(r#"{"shard":1,"seq":"9007199254740992"}"#), "{answer}");
        assert_eq!(serde_json::to_string(&Acknowledged(&[])).unwrap(), r#"{"records":0,"sequence_numbers":[]}"#);
    }

    #[test]
    fn the_key_member_is_read_as_a_parsed_object_would_give_it() {
        let records: &[&[u8]] = &[
            br#"{"restaurant_id":"r-7","total":23.5}"#,
            br#" {"nested":{"restaurant_id":"no"},"restaurant_id":42} "#,
            br#"{"restaurant_id":1.50}"#,
            br#"{"restaurant_id":"caf\u00e9"}"#,
            br#"{"restaurant_id":"first","restaurant_id":"last"}"#,
            br#"{"restaurant_id":true}"#,
            br#"{"restaurant_id":null}"#,
            br#"{"restaurant_id":["r-1"]}"#,
            br#"{"other":"r-7"}"#,
            br#"["restaurant_id","r-7"]"#,
            br#"{"restaurant_id":"r-7"} trailing"#,
            br#"{"restaurant_id":"r-7""#,
            br#"18446744073709551616"#,
            b"",
        ];
        for record in records {
            let parsed = serde_json::from_slice::<serde_json::Value>(record).ok();
            let expected = parsed.and_then(|value| match value.get("restaurant_id")? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
            assert_eq!(key_in(record, "restaurant_id"), expected, "{}", String::from_utf8_lossy(record));
        }
        assert_eq!(key_in(br#"{"restaurant_id":"caf\u00e9"}"#, "restaurant_id").as_deref(), Some("café"));
        assert_eq!(
            key_in(br#"{"restaurant_id":"first","restaurant_id":"last"}"#, "restaurant_id").as_deref(),
            Some("last")
        );
    }

    #[test]
    fn array_elements_are_the_bytes_that_were_sent() {
        let body = br#" [ {"a":1,"a":2}, 123456789012345678901234567890 , "caf\u00e9" ,{"n":1.50}] "#;
        let elements = json_array_elements(body, 10).unwrap_or_else(|_| panic!("a JSON array"));
        let texts: Vec<&str> = elements.iter().map(|e| e.get()).collect();
        assert_eq!(texts, [r#"{"a":1,"a":2}"#, "123456789012345678901234567890", r#""caf\u00e9""#, r#"{"n":1.50}"#]);
    }

    #[test]
    fn an_array_over_the_limit_is_counted_not_kept() {
        let body = format!("[{}1]", "1,".repeat(20));
        assert!(matches!(json_array_elements(body.as_bytes(), 5), Err(ArrayError::TooMany(21))));
        assert!(json_array_elements(body.as_bytes(), 21).is_ok_and(|elements| elements.len() == 21));
    }

    #[test]
    fn a_body_that_is_not_one_json_array_is_refused() {
        for body in [&b"[1, 2"[..], b"[1] [2]", b"[1,]", b"{\"a\": 1}"] {
            assert!(
                matches!(json_array_elements(body, 10), Err(ArrayError::Json(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
