//! The raw archive through Firehose, against moto's Firehose (which writes each batch to
//! moto's S3), read back with boto3.

use std::time::Duration;

use weir_aws::{FirehoseSettings, FirehoseSink, MAX_RECORD_BYTES};
use weir_e2e::aws_servers::servers;
use weir_sinks::{CommitId, RawItem, Sink, SinkCommit, SinkItem, SinkRecord};

use crate::s3_lake::unique;
use weir_e2e::aws_servers::{boto3, create_bucket};

/// Creates a bucket and a delivery stream writing to it under `archive/`.
pub(crate) fn delivery_stream(name: &str, bucket: &str) {
    create_bucket(bucket);
    boto3(
        "firehose = boto3.client('firehose', endpoint_url=sys.argv[1], region_name='us-east-1',\n\
         \x20   aws_access_key_id='test', aws_secret_access_key='test')\n\
         firehose.create_delivery_stream(DeliveryStreamName=sys.argv[2], DeliveryStreamType='DirectPut',\n\
         \x20   ExtendedS3DestinationConfiguration={'RoleARN': 'arn:aws:iam::123456789012:role/firehose',\n\
         \x20   'BucketARN': 'arn:aws:s3:::' + sys.argv[3], 'Prefix': 'archive/'})",
        &[name, bucket],
    );
}

/// Every line Firehose archived under `archive/` in `bucket`, parsed.
pub(crate) fn archived(bucket: &str) -> Vec<serde_json::Value> {
    let printed = boto3(
        "for page in s3.get_paginator('list_objects_v2').paginate(Bucket=sys.argv[2], Prefix='archive/'):\n\
         \x20   for o in page.get('Contents', []):\n\
         \x20       sys.stdout.write(s3.get_object(Bucket=sys.argv[2], Key=o['Key'])['Body'].read().decode())",
        &[bucket],
    );
    printed.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:.200}"))).collect()
}

fn commit(sizes: &[usize]) -> SinkCommit {
    let id = CommitId::log_range("orders", "0", "1", &sizes.len().to_string());
    let records = sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| {
            let seq = (i + 1).to_string();
            SinkRecord {
                id: id.record_id(&seq, 0),
                position: seq,
                item: SinkItem::Raw(RawItem {
                    partition_key: None,
                    content_type: "text/plain".into(),
                    arrival_time: 1_780_000_000_000_000,
                    data: vec![b'r'; size],
                }),
            }
        })
        .collect();
    SinkCommit { id, arrival_time: 1_780_000_000_000_000, records }
}

/// 1 203 records (three calls' worth) with one over Firehose's 1 000 KiB: that one is
/// rejected before anything is sent, every other lands in the archive once, as its
/// lake line with its id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_archived_in_calls_of_at_most_500_and_one_over_1000_kib_is_rejected() {
    let stream = unique("archive");
    let bucket = unique("firehose");
    delivery_stream(&stream, &bucket);
    let settings = FirehoseSettings {
        delivery_stream: stream.clone(),
        region: Some("us-east-1".into()),
        endpoint: Some(servers().dynamodb.clone()),
    };
    let sink = FirehoseSink::new("archive", settings, Some(("test".into(), "test".into())));
    let mut sizes = vec![100; 1203];
    sizes[700] = MAX_RECORD_BYTES;
    let commit = commit(&sizes);
    let report = sink.write(&commit).await.expect("Firehose answered");
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.rejected.len(), 1, "{:?}", report.rejected);
    let (index, why) = &report.rejected[0];
    assert_eq!(*index, 700);
    assert!(why.contains("at most 1024000 bytes"), "{why}");

    let lines = archived(&bucket);
    assert_eq!(lines.len(), 1202, "every record but the rejected one, once");
    let ids: std::collections::BTreeSet<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1202, "each with its own id");
    assert!(!ids.contains(commit.records[700].id.as_str()));
    assert!(lines.iter().all(|l| l["stream"] == "orders" && l["data"].as_str().is_some_and(|d| d.len() == 100)));
}

/// A delivery stream that does not exist fails every record (they are retried by the
/// stage); none is reported written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_delivery_stream_fails_every_record() {
    let settings = FirehoseSettings {
        delivery_stream: unique("missing"),
        region: Some("us-east-1".into()),
        endpoint: Some(servers().dynamodb.clone()),
    };
    let sink = FirehoseSink::new("archive", settings, Some(("test".into(), "test".into())));
    let report = sink.write(&commit(&[10; 7])).await.expect("a per-record report");
    assert_eq!(report.failed.len(), 7, "{:?}", report.failed);
    assert!(report.failed[0].1.contains("ResourceNotFound"), "{}", report.failed[0].1);
}

/// `weir serve` with a Firehose archive beside the lake: every record is archived, and
/// one too large for Firehose is dead-lettered naming the sink, while the lake keeps it.
#[test]
fn weir_serve_archives_through_firehose_and_dead_letters_what_firehose_cannot_take() {
    use crate::streaming::{orders, rt, send, write_config};
    let stream = unique("serve-archive");
    let bucket = unique("serve-firehose");
    delivery_stream(&stream, &bucket);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let mut text = std::fs::read_to_string(&config).unwrap();
    // The lake (one file per commit) is read while the host runs.
    text.push_str(&format!(
        "\n[sinks.lake]\ntype = \"lake\"\nroll_interval = \"0s\"\n\n[sinks.dead-letters]\ntype = \"dead-letters\"\n\n\
         [sinks.archive]\ntype = \"firehose\"\ndelivery_stream = \"{stream}\"\nregion = \"us-east-1\"\nendpoint = \"{}\"\n",
        servers().dynamodb
    ));
    std::fs::write(&config, text).unwrap();
    let server = weir_e2e::Server::start_with_env(&config, &weir_e2e::aws_servers::AWS_ENV);
    let sent = orders(40);
    rt().block_on(async {
        send(server.addr, &sent).await;
        let big = vec![b'x'; MAX_RECORD_BYTES + 4096];
        let response =
            weir_client::request(server.addr, "POST", "/v1/streams/orders/records", Some("text/plain"), &big)
                .await
                .unwrap();
        assert_eq!(response.status, 200, "{}", response.body);
    });
    let lake = dir.path().join("data/lake");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let contents = weir_sinks::read_lake(&lake).unwrap();
        let archived = archived(&bucket).len();
        let rejected = contents.dead_letters.iter().filter(|(plugin, _)| plugin == "sink:archive").count();
        if archived >= sent.len() && rejected >= 1 && contents.raw_records > sent.len() {
            assert_eq!(archived, sent.len(), "every record Firehose can take, once");
            assert_eq!(rejected, 1);
            assert_eq!(contents.raw_records, sent.len() + 1, "the lake archives the large record too");
            let (_, reason) = contents.dead_letters.iter().find(|(plugin, _)| plugin == "sink:archive").unwrap();
            assert!(
                reason.contains("sink archive refused the raw") && reason.contains("Firehose takes at most"),
                "{reason}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{archived} archived, {rejected} rejected, lake: {:?}",
            contents.objects
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(server.stop().success());
}
