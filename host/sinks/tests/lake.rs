//! The lake and dead-letter sinks on the local filesystem.

mod common;

use std::sync::Arc;

use arrow_array::{
    Array, BinaryArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, TimeUnit};
use base64::Engine as _;
use common::*;
use serde_json::json;
use weir_events::Event;
use weir_sinks::{CommitId, DeadLetterSink, LakeObject, LakeSink, Sink, SinkCommit, SinkError, WriteReport};

const EVENTS_KEY: &str =
    "events/stream=orders/date=2026-11-26/shard=0003/00000000000000000042-00000000000000000057.parquet";
const AGGREGATES_KEY: &str =
    "aggregates/stream=orders/date=2026-11-26/shard=0003/00000000000000000042-00000000000000000057.parquet";
const RAW_KEY: &str = "raw/stream=orders/date=2026-11-26/shard=0003/00000000000000000042-00000000000000000057.ndjson";
const DEAD_KEY: &str =
    "dead-letters/stream=orders/date=2026-11-26/shard=0003/00000000000000000042-00000000000000000057.ndjson";

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> &'a T {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name} in {:?}", batch.schema()))
        .as_any()
        .downcast_ref::<T>()
        .unwrap_or_else(|| panic!("column {name} has type {}", batch.column_by_name(name).unwrap().data_type()))
}

fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn strings(array: &StringArray) -> Vec<Option<&str>> {
    array.iter().collect()
}

#[tokio::test]
async fn lake_writes_events_as_parquet_that_reads_back_with_the_same_values() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeSink::local("lake", dir.path()).unwrap();
    let t0 = ARRIVAL;
    let mut batch = commit();
    push(
        &mut batch,
        42,
        0,
        event(
            Event::new(t0)
                .with_key("r-7")
                .with("order_id", "o-1")
                .with("paid", true)
                .with("items", 3i64)
                .with("total", 23.5)
                .with("tip", 2i64)
                .with("raw", vec![0u8, 255, 1])
                .with("placed_at", weir_events::Value::Timestamp(t0 - 1_500_000))
                .with("lines", weir_events::Value::Json(r#"[{"sku":"a"}]"#.into())),
        ),
    );
    // Second event: no key, a null, `tip` as a float (int + float → Float64), `raw`
    // missing, and a new field seen only here.
    push(
        &mut batch,
        43,
        0,
        event(
            Event::new(t0 + 250)
                .with("order_id", "o-2")
                .with("paid", false)
                .with("items", weir_events::Value::Null)
                .with("total", 7.25)
                .with("tip", 0.5)
                .with("placed_at", weir_events::Value::Timestamp(t0))
                .with("lines", weir_events::Value::Json("{}".into()))
                .with("coupon", "FREE"),
        ),
    );
    push(&mut batch, 44, 0, aggregate(Event::new(t0).with_key("r-7").with("orders", 2i64)));

    let report = lake.write(&batch).await.unwrap();
    assert_eq!(report, WriteReport::all_written());
    assert_eq!(files(dir.path()), [AGGREGATES_KEY, EVENTS_KEY]);
    assert_eq!(LakeObject::Events.key(&batch).as_ref(), EVENTS_KEY);

    let rows = read_parquet(&dir.path().join(EVENTS_KEY));
    let schema = rows.schema();
    let columns: Vec<(&str, &DataType, bool)> =
        schema.fields().iter().map(|f| (f.name().as_str(), f.data_type(), f.is_nullable())).collect();
    assert_eq!(
        columns,
        [
            ("_id", &DataType::Utf8, false),
            ("_key", &DataType::Utf8, true),
            ("_time", &utc_micros(), false),
            ("_seq", &DataType::Utf8, false),
            ("_lineage", &DataType::Utf8, false),
            ("order_id", &DataType::Utf8, true),
            ("paid", &DataType::Boolean, true),
            ("items", &DataType::Int64, true),
            ("total", &DataType::Float64, true),
            ("tip", &DataType::Float64, true),
            ("raw", &DataType::Binary, true),
            ("placed_at", &utc_micros(), true),
            ("lines", &DataType::Utf8, true),
            ("coupon", &DataType::Utf8, true),
        ]
    );
    assert_eq!(rows.num_rows(), 2);
    assert_eq!(
        strings(column(&rows, "_id")),
        [Some("orders-0003-00000000000000000042-0"), Some("orders-0003-00000000000000000043-0")]
    );
    assert_eq!(strings(column(&rows, "_key")), [Some("r-7"), None]);
    let time: &TimestampMicrosecondArray = column(&rows, "_time");
    assert_eq!(time.values().to_vec(), [t0, t0 + 250]);
    assert_eq!(column::<StringArray>(&rows, "_seq").iter().collect::<Vec<_>>(), [Some("42"), Some("43")]);
    assert_eq!(strings(column(&rows, "_lineage")), [Some("orders-parser@1.0.0>restaurant-enricher@2.1.0"); 2]);
    assert_eq!(strings(column(&rows, "order_id")), [Some("o-1"), Some("o-2")]);
    assert_eq!(column::<BooleanArray>(&rows, "paid").iter().collect::<Vec<_>>(), [Some(true), Some(false)]);
    assert_eq!(column::<Int64Array>(&rows, "items").iter().collect::<Vec<_>>(), [Some(3), None]);
    assert_eq!(column::<Float64Array>(&rows, "total").iter().collect::<Vec<_>>(), [Some(23.5), Some(7.25)]);
    assert_eq!(column::<Float64Array>(&rows, "tip").iter().collect::<Vec<_>>(), [Some(2.0), Some(0.5)]);
    assert_eq!(column::<BinaryArray>(&rows, "raw").iter().collect::<Vec<_>>(), [Some(&[0u8, 255, 1][..]), None]);
    let placed: &TimestampMicrosecondArray = column(&rows, "placed_at");
    assert_eq!(placed.iter().collect::<Vec<_>>(), [Some(t0 - 1_500_000), Some(t0)]);
    assert_eq!(placed.timezone(), Some("UTC"));
    assert_eq!(strings(column(&rows, "lines")), [Some(r#"[{"sku":"a"}]"#), Some("{}")]);
    assert_eq!(strings(column(&rows, "coupon")), [None, Some("FREE")]);

    let aggregates = read_parquet(&dir.path().join(AGGREGATES_KEY));
    assert_eq!(aggregates.num_rows(), 1);
    assert_eq!(strings(column(&aggregates, "_lineage")), [Some("restaurant-stats@1.0.0")]);
    assert_eq!(column::<Int64Array>(&aggregates, "orders").values().to_vec(), [2]);
    assert_eq!(column::<StringArray>(&aggregates, "_seq").iter().collect::<Vec<_>>(), [Some("44")]);
}

#[tokio::test]
async fn mixed_kinds_of_one_field_become_text_columns() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeSink::local("lake", dir.path()).unwrap();
    let mut batch = commit();
    let values = [
        weir_events::Value::Int(5),
        weir_events::Value::Text("five".into()),
        weir_events::Value::Bool(true),
        weir_events::Value::Null,
        weir_events::Value::Json(r#"{"n":5}"#.into()),
        weir_events::Value::Timestamp(ARRIVAL),
    ];
    for (i, value) in values.into_iter().enumerate() {
        let e = Event::new(ARRIVAL).with("v", value).with("nothing", weir_events::Value::Null);
        push(&mut batch, 42 + i as u64, 0, event(e));
    }
    // A field named like a metadata column keeps its data under another name.
    push(&mut batch, 48, 0, event(Event::new(ARRIVAL).with("_id", "mine")));

    assert!(lake.write(&batch).await.unwrap().is_complete());
    let rows = read_parquet(&dir.path().join(EVENTS_KEY));
    assert_eq!(rows.schema().field_with_name("v").unwrap().data_type(), &DataType::Utf8);
    assert_eq!(
        strings(column(&rows, "v")),
        [
            Some("5"),
            Some(r#""five""#),
            Some("true"),
            None,
            Some(r#"{"n":5}"#),
            Some(r#"{"$timestamp":"2026-11-26T10:15:00Z"}"#),
            None
        ]
    );
    let nothing: &StringArray = column(&rows, "nothing");
    assert_eq!(nothing.null_count(), rows.num_rows());
    assert_eq!(strings(column(&rows, "__id"))[6], Some("mine"));
    assert_eq!(strings(column(&rows, "_id"))[6], Some("orders-0003-00000000000000000048-0"));
}

#[tokio::test]
async fn replaying_the_same_range_overwrites_the_same_objects() {
    let dir = tempfile::tempdir().unwrap();
    let mut batch = commit();
    push(&mut batch, 42, 0, raw(Some("r-7"), b"o-1,r-7,23.5"));
    push(&mut batch, 42, 0, event(Event::new(ARRIVAL).with("order_id", "o-1")));
    push(&mut batch, 43, 0, raw(None, b"o-2,r-9,7.25"));
    push(&mut batch, 43, 0, event(Event::new(ARRIVAL).with("order_id", "o-2")));
    push(&mut batch, 44, 0, dead_letter("bad line", b"???"));

    let lake = LakeSink::local("lake", dir.path()).unwrap();
    let dead = DeadLetterSink::local("dead-letters", dir.path()).unwrap();
    assert!(lake.write(&batch).await.unwrap().is_complete());
    assert!(dead.write(&batch).await.unwrap().is_complete());
    let first = files(dir.path());
    assert_eq!(first, [DEAD_KEY, EVENTS_KEY, RAW_KEY]);
    let events_before = read_parquet(&dir.path().join(EVENTS_KEY));
    let raw_before = read_ndjson(&dir.path().join(RAW_KEY));

    // A crash before the checkpoint: another host replays the same range.
    let lake = LakeSink::local("lake", dir.path()).unwrap();
    let dead = DeadLetterSink::local("dead-letters", dir.path()).unwrap();
    assert!(lake.write(&batch).await.unwrap().is_complete());
    assert!(dead.write(&batch).await.unwrap().is_complete());
    assert_eq!(files(dir.path()), first, "the replay wrote the same keys, nothing more");
    assert_eq!(read_parquet(&dir.path().join(EVENTS_KEY)), events_before);
    assert_eq!(read_ndjson(&dir.path().join(RAW_KEY)), raw_before);
    assert_eq!(read_ndjson(&dir.path().join(DEAD_KEY)).len(), 1);
}

#[tokio::test]
async fn a_batch_job_partition_has_its_own_keys_and_a_rerun_overwrites_them() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeSink::local("lake", dir.path()).unwrap();
    let commit = |partition: u32, total: f64| {
        let mut commit = SinkCommit {
            id: CommitId::job_partition("daily-stats", "20261126T000000Z", partition),
            arrival_time: ARRIVAL,
            records: Vec::new(),
        };
        for row in 0..2 {
            push(&mut commit, row, 0, event(Event::new(ARRIVAL).with_key("r-7").with("total", total)));
        }
        commit
    };
    assert!(lake.write(&commit(3, 1.0)).await.unwrap().is_complete());
    assert!(lake.write(&commit(4, 1.0)).await.unwrap().is_complete());
    let keys = [
        "events/job=daily-stats/date=2026-11-26/run=20261126T000000Z/part-00003.parquet",
        "events/job=daily-stats/date=2026-11-26/run=20261126T000000Z/part-00004.parquet",
    ];
    assert_eq!(files(dir.path()), keys);

    // The run is redone (its first attempt failed half-way): the same keys, new contents.
    assert!(lake.write(&commit(3, 2.0)).await.unwrap().is_complete());
    assert_eq!(files(dir.path()), keys, "the rerun wrote the same keys, nothing more");
    let rows = read_parquet(&dir.path().join(keys[0]));
    assert_eq!(column::<Float64Array>(&rows, "total").values().to_vec(), [2.0, 2.0]);
    assert_eq!(
        strings(column::<StringArray>(&rows, "_id")),
        [
            Some("daily-stats-20261126T000000Z-00003-00000000000000000000-0"),
            Some("daily-stats-20261126T000000Z-00003-00000000000000000001-0")
        ]
    );
}

#[tokio::test]
async fn raw_archive_is_ndjson_with_the_original_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeSink::local("lake", dir.path()).unwrap();
    let mut batch = commit();
    push(&mut batch, 42, 0, raw(Some("r-7"), "o-1,r-7,23.5,\"crème\"\n".as_bytes()));
    let binary = [0xffu8, 0x00, 0xfe, b'a'];
    push(&mut batch, 43, 0, raw(None, &binary));

    assert!(lake.write(&batch).await.unwrap().is_complete());
    assert_eq!(files(dir.path()), [RAW_KEY]);
    let lines = read_ndjson(&dir.path().join(RAW_KEY));
    assert_eq!(
        lines,
        [
            json!({
                "id": "orders-0003-00000000000000000042-0", "stream": "orders", "shard": 3, "seq": 42,
                "key": "r-7", "content_type": "text/csv", "arrival_time": "2026-11-26T10:15:00Z",
                "data": "o-1,r-7,23.5,\"crème\"\n"
            }),
            json!({
                "id": "orders-0003-00000000000000000043-0", "stream": "orders", "shard": 3, "seq": 43,
                "key": null, "content_type": "text/csv", "arrival_time": "2026-11-26T10:15:00Z",
                "data_base64": "/wD+YQ=="
            }),
        ]
    );
    let decoded = base64::engine::general_purpose::STANDARD.decode(lines[1]["data_base64"].as_str().unwrap()).unwrap();
    assert_eq!(decoded, binary);
    // One JSON document per line, in record order.
    let text = std::fs::read_to_string(dir.path().join(RAW_KEY)).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(text.ends_with('\n'));
}

#[tokio::test]
async fn dead_letters_carry_plugin_reason_and_original_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let dead = DeadLetterSink::local("dead-letters", dir.path()).unwrap();
    assert_eq!(dead.name(), "dead-letters");
    let mut batch = commit();
    push(&mut batch, 42, 0, raw(None, b"o-1"));
    push(&mut batch, 42, 0, event(Event::new(ARRIVAL)));
    push(&mut batch, 43, 0, dead_letter("line 1: expected 4 columns, got 2", b"o-2,r-9"));
    push(&mut batch, 44, 1, dead_letter("not UTF-8", &[0xc3, 0x28]));

    // Only dead letters are written; the rest is reported as written (other sinks' job).
    assert!(dead.write(&batch).await.unwrap().is_complete());
    assert_eq!(files(dir.path()), [DEAD_KEY]);
    assert_eq!(
        read_ndjson(&dir.path().join(DEAD_KEY)),
        [
            json!({
                "id": "orders-0003-00000000000000000043-0", "stream": "orders", "shard": 3, "seq": 43,
                "plugin": "orders-parser@1.0.0", "stage": "parse", "reason": "line 1: expected 4 columns, got 2",
                "content_type": "text/csv", "arrival_time": "2026-11-26T10:15:00Z", "original": "o-2,r-9"
            }),
            json!({
                "id": "orders-0003-00000000000000000044-1", "stream": "orders", "shard": 3, "seq": 44,
                "plugin": "orders-parser@1.0.0", "stage": "parse", "reason": "not UTF-8",
                "content_type": "text/csv", "arrival_time": "2026-11-26T10:15:00Z", "original_base64": "wyg="
            }),
        ]
    );

    // And the lake leaves dead letters alone.
    let other = tempfile::tempdir().unwrap();
    let lake = LakeSink::local("lake", other.path()).unwrap();
    let mut only_dead = common::commit();
    push(&mut only_dead, 43, 0, dead_letter("bad", b"x"));
    assert!(lake.write(&only_dead).await.unwrap().is_complete());
    assert!(files(other.path()).is_empty());
}

#[tokio::test]
async fn a_failed_object_fails_only_its_own_records() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the events prefix should be a directory: every events put fails.
    std::fs::write(dir.path().join("events"), b"in the way").unwrap();
    let lake = LakeSink::local("lake", dir.path()).unwrap();
    let mut batch = commit();
    push(&mut batch, 42, 0, raw(None, b"o-1"));
    push(&mut batch, 42, 0, event(Event::new(ARRIVAL).with("order_id", "o-1")));
    push(&mut batch, 43, 0, raw(None, b"o-2"));
    push(&mut batch, 43, 0, event(Event::new(ARRIVAL).with("order_id", "o-2")));

    let report = lake.write(&batch).await.unwrap();
    let failed: Vec<usize> = report.failed.iter().map(|(i, _)| *i).collect();
    assert_eq!(failed, [1, 3]);
    let why = &report.failed[0].1;
    assert!(why.contains("sink lake") && why.contains(EVENTS_KEY) && why.contains("retried"), "{why}");
    assert_eq!(files(dir.path()), ["events", RAW_KEY]);
}

#[test]
fn a_lake_root_that_cannot_be_a_directory_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"").unwrap();
    let error = LakeSink::local("lake", &file).unwrap_err();
    assert!(matches!(error, SinkError::Open { .. }));
    assert!(!error.is_retryable());
    let message = error.to_string();
    assert!(message.contains("sink lake") && message.contains("not-a-dir"), "{message}");
}

#[tokio::test]
async fn lake_and_dead_letter_sinks_take_any_object_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let lake = LakeSink::new("s3-lake", store.clone());
    let dead = DeadLetterSink::new("s3-dead-letters", store);
    assert_eq!((lake.name(), dead.name()), ("s3-lake", "s3-dead-letters"));
    let mut batch = commit();
    push(&mut batch, 42, 0, raw(None, b"o-1"));
    push(&mut batch, 43, 0, dead_letter("bad", b"x"));
    assert!(lake.write(&batch).await.unwrap().is_complete());
    assert!(dead.write(&batch).await.unwrap().is_complete());
    assert_eq!(files(dir.path()), [DEAD_KEY, RAW_KEY]);
}
