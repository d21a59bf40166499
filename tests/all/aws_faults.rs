//! Failure paths of the streaming layer on AWS, injected by a proxy in front of the local
//! servers (`weir_e2e::fault_proxy`) where they cannot produce them on demand: throttled
//! and expired reads, `PutRecords` and `PutRecordBatch` that fail every other entry, and
//! Kinesis and DynamoDB going away mid-stream and coming back. No acknowledged record may
//! be lost, and none may reach the lake twice.

use std::collections::BTreeSet;
use std::time::Duration;

use weir_aws::{AwsSettings, DynamoCheckpoints, KinesisLog, KinesisOptions};
use weir_e2e::aws_servers::{AWS_ENV, create_bucket, create_kinesis_stream, kinesis_log_section, local_aws, servers};
use weir_e2e::fault_proxy::FaultProxy;
use weir_log::{LogProducer, LogReader, NewRecord, ReadFrom, ReadLimits};

fn records(from: usize, n: usize) -> Vec<NewRecord> {
    (from..from + n)
        .map(|i| NewRecord {
            partition_key: Some(format!("key-{i}")),
            data: format!("record {i}").into_bytes().into(),
            content_type: "text/plain".into(),
            arrival_time: 0,
        })
        .collect()
}

/// Appends through `PutRecords` calls that fail every other entry, then reads every shard
/// to its end through reads that are throttled every 3rd call and find their iterator
/// expired every 4th: each record is read back exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_put_failures_throttled_reads_and_expired_iterators_lose_and_duplicate_nothing() {
    let kinesis = FaultProxy::start(&servers().kinesis);
    let id = crate::s3_lake::unique("faults");
    create_kinesis_stream(&format!("{id}-orders"), 2).await;
    let through_proxy = AwsSettings { kinesis_endpoint: Some(kinesis.url.clone()), ..local_aws() };
    let clients = through_proxy.clients().await;
    let checkpoints = DynamoCheckpoints::open(clients.dynamodb.clone(), &format!("{id}-checkpoints")).await.unwrap();
    let options = KinesisOptions { stream_prefix: format!("{id}-"), ..KinesisOptions::default() };
    let log = KinesisLog::new(clients.kinesis.clone(), checkpoints, options);
    kinesis.set(|faults| {
        faults.fail_every_other_entry = true;
        faults.throttle_every.insert("GetRecords", 3);
        faults.expire_every.insert("GetRecords", 4);
    });

    for batch in 0..6 {
        let placed = log.append("orders", records(batch * 50, 50)).await.expect("every record accepted in the end");
        assert_eq!(placed.len(), 50);
    }
    let mut read = Vec::new();
    for shard in log.shards("orders").await.unwrap() {
        let mut from = ReadFrom::Oldest;
        let mut empty_reads = 0;
        while empty_reads < 5 {
            let limits = ReadLimits { records: 40, bytes: 1 << 20 };
            let page = match log.read("orders", &shard.id, from.clone(), limits).await {
                Ok(page) => page,
                Err(error) => panic!("a read failed for good: {error}"),
            };
            if page.records.is_empty() {
                empty_reads += 1;
                continue;
            }
            empty_reads = 0;
            from = ReadFrom::After(page.records.last().unwrap().position.clone());
            read.extend(page.records.into_iter().map(|r| String::from_utf8(r.data).unwrap()));
        }
    }
    let distinct: BTreeSet<&String> = read.iter().collect();
    assert_eq!(read.len(), 300, "every record once: {} read, {} distinct", read.len(), distinct.len());
    assert_eq!(distinct.len(), 300);
    let seen = kinesis.seen();
    assert!(seen.entries_failed > 0 && seen.throttled > 0 && seen.expired > 0, "faults were injected: {seen:?}");
}

/// `weir serve` on Kinesis with its checkpoints in DynamoDB and a Firehose archive, all
/// behind fault proxies: reads throttled and expired, every other entry of `PutRecords`
/// and `PutRecordBatch` failed, and then Kinesis and DynamoDB gone for 4 s mid-stream.
/// Every acknowledged record reaches the lake exactly once, and the archive holds each
/// record's id.
#[test]
fn weir_serve_rides_out_faults_and_an_outage_of_kinesis_and_dynamodb() {
    use crate::streaming::{Fate, orders, rt, send, write_config};
    let kinesis = FaultProxy::start(&servers().kinesis);
    let moto = FaultProxy::start(&servers().dynamodb);
    let id = crate::s3_lake::unique("outage");
    let bucket = crate::s3_lake::unique("outage-archive");
    crate::firehose::delivery_stream(&format!("{id}-archive"), &bucket);
    rt().block_on(create_kinesis_stream(&format!("{id}-orders"), 2));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let log = kinesis_log_section(&kinesis.url, &moto.url, &format!("{id}-"), &format!("{id}-checkpoints"));
    let mut text = std::fs::read_to_string(&config).unwrap().replace("[log]\nshards = 2\n", &log);
    text.push_str(&format!(
        "\n[sinks.lake]\ntype = \"lake\"\n\n[sinks.dead-letters]\ntype = \"dead-letters\"\n\n\
         [sinks.archive]\ntype = \"firehose\"\ndelivery_stream = \"{id}-archive\"\nregion = \"us-east-1\"\nendpoint = \"{}\"\n",
        moto.url
    ));
    std::fs::write(&config, text).unwrap();
    kinesis.set(|faults| {
        faults.fail_every_other_entry = true;
        faults.throttle_every.insert("GetRecords", 5);
        faults.expire_every.insert("GetRecords", 7);
    });
    moto.set(|faults| faults.fail_every_other_entry = true);
    let server = weir_e2e::Server::start_with_env(&config, &AWS_ENV);
    let sent: Vec<_> = orders(160).into_iter().filter(|o| o.fate == Fate::Event).collect();
    let (first, second) = sent.split_at(sent.len() / 2);
    let lake = dir.path().join("data/lake");
    let wait_for = |events: usize, within: u64| {
        let deadline = std::time::Instant::now() + Duration::from_secs(within);
        loop {
            let landed = weir_sinks::read_lake(&lake).map(|l| l.events).unwrap_or(0);
            if landed >= events {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{landed} of {events} events reached the lake");
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    rt().block_on(send(server.addr, first));
    wait_for(first.len(), 60);
    // Kinesis and DynamoDB go away mid-stream: reads, checkpoints and the archive fail.
    kinesis.set(|faults| faults.down = true);
    moto.set(|faults| faults.down = true);
    std::thread::sleep(Duration::from_secs(4));
    kinesis.set(|faults| faults.down = false);
    moto.set(|faults| faults.down = false);
    rt().block_on(send(server.addr, second));
    wait_for(sent.len(), 90);
    std::thread::sleep(Duration::from_secs(2));
    let contents = weir_sinks::read_lake(&lake).unwrap();
    assert_eq!(contents.events, sent.len(), "every event exactly once");
    assert_eq!(contents.raw_records, sent.len(), "every record archived in the lake exactly once");

    // Firehose picks its own keys, so replays may repeat lines: the ids tell them apart.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ids: BTreeSet<String> =
            crate::firehose::archived(&bucket).iter().map(|line| line["id"].as_str().unwrap().to_owned()).collect();
        if ids.len() >= sent.len() {
            assert_eq!(ids.len(), sent.len(), "each record's id in the archive");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{} of {} ids archived", ids.len(), sent.len());
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(server.stop().success());
    let (k, m) = (kinesis.seen(), moto.seen());
    assert!(
        k.entries_failed > 0 && k.throttled > 0 && k.expired > 0 && k.refused_connections > 0,
        "Kinesis faults: {k:?}"
    );
    assert!(m.entries_failed > 0, "Firehose partial failures: {m:?}");
}

/// S3 answering `SlowDown` (503) to every other `PUT`: the lake's writes are retried by
/// the S3 client and every commit lands as its one object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_slow_down_answers_are_retried_and_every_commit_lands_once() {
    let s3 = FaultProxy::start(&servers().dynamodb);
    let bucket = crate::s3_lake::unique("slowdown");
    create_bucket(&bucket);
    s3.set(|faults| faults.s3_slow_down_every = 2);
    let location = weir_config::S3Location {
        bucket: bucket.clone(),
        prefix: "lake".into(),
        region: Some("us-east-1".into()),
        endpoint: Some(s3.url.clone()),
        path_style: true,
    };
    let store = weir_aws::s3_store(&location, Some(("test".into(), "test".into()))).unwrap();
    let lake = weir_sinks::LakeSink::new("lake", store);
    for first in 0..8u64 {
        let (from, to) = (first * 10 + 1, first * 10 + 10);
        let id = weir_sinks::CommitId::log_range("orders", "0", &from.to_string(), &to.to_string());
        let records = (from..=to)
            .map(|seq| weir_sinks::SinkRecord {
                id: id.record_id(&seq.to_string(), 0),
                position: seq.to_string(),
                item: weir_sinks::SinkItem::Raw(weir_sinks::RawItem {
                    partition_key: None,
                    content_type: "text/plain".into(),
                    arrival_time: 1_780_000_000_000_000,
                    data: format!("record {seq}").into_bytes(),
                }),
            })
            .collect();
        let commit = weir_sinks::SinkCommit { id, arrival_time: 1_780_000_000_000_000, records };
        let report = weir_sinks::Sink::write(&lake, &commit).await.expect("written in the end");
        assert!(report.is_complete(), "{:?}", report.failed);
    }
    let copy = tempfile::tempdir().unwrap();
    weir_e2e::aws_servers::download(&bucket, "lake/", copy.path());
    let contents = weir_sinks::read_lake(copy.path()).unwrap();
    assert_eq!((contents.objects.get("raw"), contents.raw_records), (Some(&8), 80));
    let seen = s3.seen();
    assert!(seen.throttled >= 4, "SlowDown was answered: {seen:?}");
}
