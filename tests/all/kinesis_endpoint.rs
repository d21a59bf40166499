//! The Kinesis-compatible endpoint of `weir serve`, driven by a client no one here wrote:
//! boto3, pointed at weir by its endpoint alone.

use std::process::Command;

use crate::streaming::{Fate, caught_up, orders, rt, write_config};
use weir_e2e::Server;

fn python() -> String {
    std::env::var("WEIR_TEST_PYTHON").unwrap_or_else(|_| "/var/tmp/weir-tools/test-venv/bin/python".into())
}

/// Runs `script` with boto3 (scripts/test-tools.sh installs it); its stdout.
fn boto3(script: &str, env: &[(&str, &str)]) -> String {
    let output = Command::new(python())
        .args(["-c", script])
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (scripts/test-tools.sh installs boto3): {e}", python()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// A boto3 Kinesis client for weir at `ENDPOINT`, with `KEY`/`SECRET` as credentials.
const CLIENT: &str = r#"
import base64, json, os, sys
import boto3, botocore
kinesis = boto3.client(
    "kinesis",
    endpoint_url=os.environ["ENDPOINT"],
    region_name="us-east-1",
    aws_access_key_id=os.environ["KEY"],
    aws_secret_access_key=os.environ["SECRET"],
    config=botocore.config.Config(retries={"max_attempts": 2}),
)
def error_of(call):
    try:
        call()
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    return None
"#;

#[test]
fn boto3_sends_orders_with_put_record_and_put_records_and_they_reach_the_lake() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let server = Server::start(&config);
    let sent: Vec<String> = orders(60).into_iter().filter(|o| o.fate == Fate::Event).map(|o| o.line).collect();
    let lines = dir.path().join("orders.ndjson");
    std::fs::write(&lines, sent.join("\n")).unwrap();
    let script = format!(
        "{CLIENT}{}",
        r#"
lines = open(os.environ["LINES"]).read().split("\n")
first = kinesis.put_record(StreamName="orders", Data=lines[0].encode(), PartitionKey="r-1")
assert first["ShardId"].startswith("shardId-0000000000"), first
assert first["SequenceNumber"].isdigit(), first
rest = lines[1:]
for start in range(0, len(rest), 20):
    chunk = rest[start:start + 20]
    answer = kinesis.put_records(
        StreamARN="arn:aws:kinesis:us-east-1:000000000000:stream/orders",
        Records=[{"Data": line.encode(), "PartitionKey": json.loads(line)["restaurant_id"]} for line in chunk],
    )
    assert answer["FailedRecordCount"] == 0, answer
    assert len(answer["Records"]) == len(chunk), answer
    assert all(r["SequenceNumber"].isdigit() for r in answer["Records"]), answer
print("unknown stream:", error_of(lambda: kinesis.put_record(StreamName="nope", Data=b"x", PartitionKey="k")))
print("long key:", error_of(lambda: kinesis.put_records(StreamName="orders", Records=[{"Data": b"x", "PartitionKey": "k" * 257}])))
print("other call:", error_of(lambda: kinesis.list_streams()))
print("sent", len(lines))
"#
    );
    let endpoint = format!("http://{}", server.addr);
    let lines_path = lines.display().to_string();
    let out =
        boto3(&script, &[("ENDPOINT", &endpoint), ("KEY", "anything"), ("SECRET", "anything"), ("LINES", &lines_path)]);
    assert!(out.contains("unknown stream: ResourceNotFoundException"), "{out}");
    assert!(out.contains("long key: ValidationException"), "{out}");
    assert!(out.contains("other call: UnknownOperationException"), "{out}");
    assert!(out.contains(&format!("sent {}", sent.len())), "{out}");
    rt().block_on(caught_up(server.addr));
    server.stop();
    let lake = weir_sinks::read_lake(&dir.path().join("data/lake")).unwrap();
    assert_eq!(lake.raw_records, sent.len(), "every record boto3 sent is archived once");
    assert_eq!(lake.events, sent.len(), "and parsed into an event");
    assert!(lake.dead_letters.is_empty(), "{:?}", lake.dead_letters);
}

#[test]
fn with_require_token_a_record_must_be_signed_with_an_ingest_token_as_the_secret_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "require_token = true");
    let server =
        Server::start_with_env(&config, &[("WEIR_INGEST_TOKEN", "ingest-secret"), ("WEIR_READ_TOKEN", "read-secret")]);
    let script = format!(
        "{CLIENT}{}",
        r#"
print("result:", error_of(lambda: kinesis.put_record(StreamName="orders", Data=b'{"order_id":"o-1"}', PartitionKey="r-1")))
"#
    );
    let endpoint = format!("http://{}", server.addr);
    let run = |key: &str, secret: &str| boto3(&script, &[("ENDPOINT", &endpoint), ("KEY", key), ("SECRET", secret)]);
    assert!(run("ingest", "ingest-secret").contains("result: None"), "the ingest token signs");
    assert!(run("ingest", "wrong").contains("result: InvalidSignatureException"));
    assert!(run("nobody", "ingest-secret").contains("result: UnrecognizedClientException"));
    assert!(run("read", "read-secret").contains("result: AccessDeniedException"), "a read token cannot send");
    drop(server);
}

/// The AWS SDK for Rust's Kinesis client for weir at `addr`, with any credentials.
fn sdk_settings(addr: std::net::SocketAddr) -> weir_aws::AwsSettings {
    weir_aws::AwsSettings {
        region: Some("us-east-1".into()),
        kinesis_endpoint: Some(format!("http://{addr}")),
        dynamodb_endpoint: Some(weir_e2e::aws_servers::servers().dynamodb.clone()),
        static_credentials: Some(("anything".into(), "anything".into())),
    }
}

#[test]
fn the_aws_sdk_for_rust_sends_records_to_weir_serve() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let server = Server::start(&config);
    let sent: Vec<String> = orders(30).into_iter().filter(|o| o.fate == Fate::Event).map(|o| o.line).collect();
    rt().block_on(async {
        let kinesis = sdk_settings(server.addr).clients().await.kinesis;
        let one = kinesis
            .put_record()
            .stream_name("orders")
            .data(aws_sdk_kinesis::primitives::Blob::new(sent[0].clone()))
            .partition_key("r-1")
            .send()
            .await
            .expect("PutRecord");
        assert!(one.shard_id().starts_with("shardId-"), "{one:?}");
        let entries = sent[1..]
            .iter()
            .map(|line| {
                aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
                    .data(aws_sdk_kinesis::primitives::Blob::new(line.clone()))
                    .partition_key("r-2")
                    .build()
                    .unwrap()
            })
            .collect();
        let many =
            kinesis.put_records().stream_name("orders").set_records(Some(entries)).send().await.expect("PutRecords");
        assert_eq!(many.failed_record_count(), Some(0));
        assert_eq!(many.records().len(), sent.len() - 1);
        let missing = kinesis
            .put_record()
            .stream_name("nope")
            .data(aws_sdk_kinesis::primitives::Blob::new("x"))
            .partition_key("k")
            .send()
            .await
            .expect_err("an unknown stream");
        assert!(missing.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()), "{missing:?}");
        caught_up(server.addr).await;
    });
    server.stop();
    let lake = weir_sinks::read_lake(&dir.path().join("data/lake")).unwrap();
    assert_eq!(lake.raw_records, sent.len());
    assert_eq!(lake.events, sent.len());
}

#[test]
fn under_backpressure_weir_takes_what_fits_and_the_kinesis_log_resends_only_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "max_pending_records = 10");
    // The lake cannot write, so the records wait in the log until it is unblocked.
    let blocker = crate::streaming::block_lake_writes(dir.path());
    let server = Server::start(&config);
    let sent: Vec<String> = orders(30).into_iter().filter(|o| o.fate == Fate::Event).map(|o| o.line).take(14).collect();
    let record = |line: &String| weir_log::NewRecord {
        partition_key: Some("r-1".into()),
        data: line.clone().into_bytes().into(),
        content_type: "application/json".into(),
        arrival_time: 0,
    };
    rt().block_on(async {
        let settings = sdk_settings(server.addr);
        let clients = settings.clients().await;
        let checkpoints =
            weir_aws::DynamoCheckpoints::open(clients.dynamodb.clone(), &format!("unused-{}", std::process::id()))
                .await
                .unwrap();
        let options = weir_aws::KinesisOptions { max_put_attempts: 60, ..weir_aws::KinesisOptions::default() };
        let log = std::sync::Arc::new(weir_aws::KinesisLog::new(clients.kinesis, checkpoints, options));
        use weir_log::LogProducer as _;
        log.append("orders", sent[..6].iter().map(record).collect()).await.expect("6 of 10 fit");
        // 8 more: 4 fit, 4 are refused and resent until the lake recovers.
        let more: Vec<weir_log::NewRecord> = sent[6..].iter().map(record).collect();
        let appending = tokio::spawn({
            let log = log.clone();
            async move { log.append("orders", more).await }
        });
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        assert!(!appending.is_finished(), "the refused records wait while the lake cannot write");
        std::fs::remove_file(&blocker).unwrap();
        let places = appending.await.unwrap().expect("every record taken once the lake recovers");
        assert_eq!(places.len(), 8);
        caught_up(server.addr).await;
    });
    server.stop();
    let lake = weir_sinks::read_lake(&dir.path().join("data/lake")).unwrap();
    assert_eq!(lake.raw_records, sent.len(), "each record once: the 4 taken were not resent");
    assert_eq!(lake.events, sent.len());
}

/// Raw Kinesis calls that break its limits or its format: each refused with Kinesis'
/// error type, before any record is appended, and the host keeps serving.
#[test]
fn calls_past_kinesis_limits_or_malformed_are_refused_with_kinesis_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "max_request_bytes = \"64KiB\"\nmax_record_bytes = \"16KiB\"");
    let server = Server::start(&config);
    let call = |target: &str, body: String| {
        let addr = server.addr;
        let target = target.to_owned();
        rt().block_on(async move {
            let request = format!(
                "POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: Kinesis_20131202.{target}\r\n\
                 Content-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer).await;
            answer
        })
    };
    let entry = r#"{"Data":"eA==","PartitionKey":"k"}"#;
    let many = format!(r#"{{"StreamName":"orders","Records":[{}]}}"#, vec![entry; 501].join(","));
    let answer = call("PutRecords", many);
    assert!(answer.starts_with("HTTP/1.1 400") && answer.contains("ValidationException"), "{answer}");
    assert!(answer.contains("between 1 and 500 (it has 501)"), "{answer}");
    // Over the body allowance (records of 64 KiB base64-encoded, keys and JSON): refused
    // as it streams in.
    let huge = format!(r#"{{"StreamName":"orders","Data":"{}","PartitionKey":"k"}}"#, "A".repeat(1 << 20));
    let answer = call("PutRecord", huge);
    assert!(answer.starts_with("HTTP/1.1 400") && answer.contains("ValidationException"), "{answer}");
    assert!(answer.contains("split it"), "{answer}");
    let answer = call("PutRecord", r#"{"StreamName":"orders","Data":"not base64!","PartitionKey":"k"}"#.into());
    assert!(answer.contains("SerializationException") && answer.contains("not base64"), "{answer}");
    let answer = call("PutRecord", "{ not json".into());
    assert!(answer.starts_with("HTTP/1.1 400") && answer.contains("SerializationException"), "{answer}");
    let big_record = format!(r#"{{"StreamName":"orders","Data":"{}","PartitionKey":"k"}}"#, "A".repeat(32 << 10));
    let answer = call("PutRecord", big_record);
    assert!(answer.contains("ValidationException") && answer.contains("max_record_bytes"), "{answer}");
    rt().block_on(async {
        let health = weir_client::request(server.addr, "GET", "/healthz", None, b"").await.unwrap();
        assert_eq!(health.status, 200, "the host serves on: {}", health.body);
        let pending = serde_json::from_str::<serde_json::Value>(&health.body).unwrap()["pending"]["orders"].clone();
        assert_eq!(pending, 0, "nothing was appended");
    });
}
