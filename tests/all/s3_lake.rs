//! The lake, the dead letters and the warehouse on S3 (moto's server), through
//! `object_store`'s S3 client, read back with boto3 — the client a data team reads the
//! lake with — as the local lake is read: same keys, same objects.

use std::time::Duration;

use weir_config::S3Location;
use weir_e2e::aws_servers::{create_bucket, download, servers};
use weir_sinks::{CommitId, LakeSink, RawItem, Sink, SinkCommit, SinkItem, SinkRecord};

pub(crate) fn unique(what: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{what}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

fn location(bucket: &str, prefix: &str) -> S3Location {
    S3Location {
        bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
        region: Some("us-east-1".to_owned()),
        endpoint: Some(servers().dynamodb.clone()),
        path_style: true,
    }
}

fn raw_commit(records: usize, bytes_each: usize) -> SinkCommit {
    let id = CommitId::log_range("orders", "0", "1", &records.to_string());
    let records = (1..=records)
        .map(|seq| SinkRecord {
            id: id.record_id(&seq.to_string(), 0),
            position: seq.to_string(),
            item: SinkItem::Raw(RawItem {
                partition_key: Some(format!("k{seq}")),
                content_type: "text/plain".into(),
                arrival_time: 1_780_000_000_000_000,
                data: vec![b'a' + (seq % 26) as u8; bytes_each],
            }),
        })
        .collect();
    SinkCommit { id, arrival_time: 1_780_000_000_000_000, records }
}

/// A commit larger than the multipart threshold is uploaded in parts and appears as one
/// object, whole; nothing is left in progress. A write to a bucket that does not exist
/// fails every record of the object (they are retried), and nothing appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_commit_lands_on_s3_as_one_whole_object_and_a_failed_one_leaves_nothing() {
    let bucket = unique("lake");
    create_bucket(&bucket);
    let store = weir_aws::s3_store(&location(&bucket, "prod/lake"), Some(("test".into(), "test".into()))).unwrap();
    let lake = LakeSink::new("lake", store);
    // 20 records of 600 KiB: 12 MiB of raw archive, over the 8 MiB threshold.
    let commit = raw_commit(20, 600 << 10);
    assert!(commit.records.len() * (600 << 10) > weir_sinks::MULTIPART_THRESHOLD);
    let report = lake.write(&commit).await.expect("the write reached S3");
    assert!(report.is_complete(), "{:?}", report.failed);

    let copy = tempfile::tempdir().unwrap();
    let in_progress = download(&bucket, "prod/lake/", copy.path());
    assert_eq!(in_progress, 0, "the multipart upload was completed");
    let contents = weir_sinks::read_lake(copy.path()).unwrap();
    assert_eq!(contents.objects.get("raw"), Some(&1), "one object for the commit: {:?}", contents.objects);
    assert_eq!(contents.raw_records, 20, "every record, once");
    let key = copy
        .path()
        .join("raw/stream=orders/date=2026-05-28/shard=0000/00000000000000000001-00000000000000000020.ndjson");
    let lines = std::fs::read_to_string(&key).unwrap_or_else(|e| panic!("{}: {e}", key.display()));
    for (n, line) in lines.lines().enumerate() {
        let line: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(line["seq"], n + 1);
        assert_eq!(line["data"].as_str().unwrap().len(), 600 << 10, "record {} whole", n + 1);
    }

    // The same commit again (a replay) overwrites the same key: still one object.
    assert!(lake.write(&commit).await.unwrap().is_complete());
    let again = tempfile::tempdir().unwrap();
    download(&bucket, "prod/lake/", again.path());
    assert_eq!(weir_sinks::read_lake(again.path()).unwrap().raw_records, 20);

    let missing = unique("missing");
    let store = weir_aws::s3_store(&location(&missing, ""), Some(("test".into(), "test".into()))).unwrap();
    let nowhere = LakeSink::new("lake", store);
    for records in [3, 20] {
        let commit = raw_commit(records, 600 << 10);
        let failed = match nowhere.write(&commit).await {
            Ok(report) => report.failed.len(),
            Err(error) => panic!("a per-object failure is reported per record, not as {error}"),
        };
        assert_eq!(failed, records, "every record of the object that was not written is reported failed");
    }
}

/// `weir serve` with the lake, the dead letters and the warehouse on S3: every event,
/// raw record and dead letter lands under the configured prefixes as in a local lake,
/// and the aggregates are served from the warehouse's objects on S3.
#[test]
fn weir_serve_writes_the_lake_the_dead_letters_and_the_warehouse_to_s3() {
    use crate::streaming::{Fate, orders, rt, send, sentinels, write_config};
    let bucket = unique("serve");
    create_bucket(&bucket);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let s3 = |kind: &str, prefix: &str| weir_e2e::aws_servers::s3_sink_section(kind, &bucket, prefix);
    let mut text = std::fs::read_to_string(&config).unwrap();
    // Rolled every 2 s: the lake's staging and rolls run on S3 too.
    text.push_str(&s3("lake", "prod/lake").replace("type = \"lake\"\n", "type = \"lake\"\nroll_interval = \"2s\"\n"));
    text.push_str(&s3("dead-letters", "prod/lake"));
    text.push_str(&s3("warehouse", "prod/warehouse"));
    std::fs::write(&config, text).unwrap();
    // Credentials from the standard chain (the environment here), as in production.
    let server = weir_e2e::Server::start_with_env(&config, &weir_e2e::aws_servers::AWS_ENV);
    // The sentinels, a day later, close every window of the orders: aggregates follow.
    let sent: Vec<_> = orders(60).into_iter().chain(sentinels()).collect();
    let events = sent.iter().filter(|o| o.fate == Fate::Event).count();
    let dead =
        sent.iter().filter(|o| matches!(o.fate, Fate::Malformed | Fate::UnknownRestaurant | Fate::FarFuture)).count();
    rt().block_on(send(server.addr, &sent));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let contents = loop {
        let copy = tempfile::tempdir().unwrap();
        download(&bucket, "prod/lake/", copy.path());
        let contents = weir_sinks::read_lake(copy.path()).unwrap();
        if contents.raw_records >= sent.len() && contents.events >= events && contents.dead_letters.len() >= dead {
            break contents;
        }
        assert!(std::time::Instant::now() < deadline, "not everything reached the lake on S3: {contents:?}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!((contents.raw_records, contents.events, contents.dead_letters.len()), (sent.len(), events, dead));
    let local = weir_sinks::read_lake(&dir.path().join("data/lake")).unwrap();
    assert!(local.objects.is_empty(), "nothing written to a local lake: {:?}", local.objects);

    // The warehouse's tables and commit markers are on S3, and the read API queries them.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows = rt().block_on(async {
            let response = weir_client::request(server.addr, "GET", "/v1/aggregates/orders", None, b"").await.unwrap();
            assert_eq!(response.status, 200, "{}", response.body);
            let body: serde_json::Value = serde_json::from_str(&response.body).unwrap();
            body["rows"].as_array().unwrap().len()
        });
        if rows > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no aggregates served from the warehouse on S3");
        std::thread::sleep(Duration::from_millis(500));
    }
    let warehouse = tempfile::tempdir().unwrap();
    download(&bucket, "prod/warehouse/", warehouse.path());
    assert!(!weir_e2e::parquet_files(warehouse.path()).is_empty(), "warehouse tables on S3");
    assert!(server.stop().success());
}
