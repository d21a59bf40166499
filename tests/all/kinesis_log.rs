//! Kinesis as the stream log passes the conformance suite every log is held to
//! (`weir_log::conformance`), against real local servers: kinesalite for Kinesis (real-style
//! 56-digit sequence numbers, splits) and moto for DynamoDB (the checkpoints); and
//! `weir serve` runs a pipeline on it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use weir_e2e::aws_servers::{AWS_ENV, create_kinesis_stream, kinesis_log_section, local_aws, servers, wait_active};

use weir_aws::{AwsClients, AwsSettings, DynamoCheckpoints, KinesisLog, KinesisOptions};
use weir_log::conformance::Subject;
use weir_log::{BoxFuture, ShardId, StreamLog};

const STREAM: &str = "conformance";

/// A Kinesis stream and a checkpoint table of their own per check.
struct Kinesis {
    settings: AwsSettings,
    clients: AwsClients,
    options: KinesisOptions,
    table: String,
    log: Arc<KinesisLog>,
}

async fn open(settings: &AwsSettings, options: &KinesisOptions, table: &str) -> (AwsClients, Arc<KinesisLog>) {
    let clients = settings.clients().await;
    let checkpoints = DynamoCheckpoints::open(clients.dynamodb.clone(), table).await.expect("checkpoint table");
    let log = Arc::new(KinesisLog::new(clients.kinesis.clone(), checkpoints, options.clone()));
    (clients, log)
}

async fn kinesis() -> Kinesis {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let settings = local_aws();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let prefix = format!("t{}-{n}-", std::process::id());
    let options = KinesisOptions { stream_prefix: prefix.clone(), ..KinesisOptions::default() };
    let table = format!("checkpoints-{}-{n}", std::process::id());
    let (clients, log) = open(&settings, &options, &table).await;
    create_kinesis_stream(&format!("{prefix}{STREAM}"), 2).await;
    Kinesis { settings, clients, options, table, log }
}

impl Subject for Kinesis {
    fn log(&self) -> Arc<dyn StreamLog> {
        self.log.clone()
    }

    fn reopen(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let (clients, log) = open(&self.settings, &self.options, &self.table).await;
            self.clients = clients;
            self.log = log;
        })
    }

    fn split<'a>(&'a self, stream: &'a str, shard: &'a ShardId) -> Option<BoxFuture<'a, Vec<ShardId>>> {
        Some(Box::pin(async move {
            let name = format!("{}{stream}", self.options.stream_prefix);
            let shards = self.clients.kinesis.list_shards().stream_name(&name).send().await.expect("list shards");
            let range = shards
                .shards()
                .iter()
                .find(|s| s.shard_id() == shard.as_str())
                .and_then(|s| s.hash_key_range())
                .expect("the shard's hash key range");
            let start: u128 = range.starting_hash_key().parse().unwrap();
            let end: u128 = range.ending_hash_key().parse().unwrap();
            let middle = start + (end - start) / 2 + 1;
            self.clients
                .kinesis
                .split_shard()
                .stream_name(&name)
                .shard_to_split(shard.as_str())
                .new_starting_hash_key(middle.to_string())
                .send()
                .await
                .expect("split");
            wait_active(&self.clients, &name).await;
            let shards = self.clients.kinesis.list_shards().stream_name(&name).send().await.expect("list shards");
            shards
                .shards()
                .iter()
                .filter(|s| s.parent_shard_id() == Some(shard.as_str()))
                .map(|s| ShardId::parse(s.shard_id()).unwrap())
                .collect()
        }))
    }

    /// Kinesis' retention (24 hours at least) cannot be driven from a test.
    fn expire_before<'a>(&'a self, _stream: &'a str, _arrival_time: i64) -> Option<BoxFuture<'a, ()>> {
        None
    }
}

weir_log::conformance_tests!(kinesis());

#[test]
fn weir_serve_runs_the_example_pipeline_on_kinesis_with_checkpoints_in_dynamodb() {
    use crate::streaming::{Fate, orders, rt, send, write_config};
    let servers = servers();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let prefix = format!("serve{}-", std::process::id());
    let table = format!("serve-checkpoints-{}", std::process::id());
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[log]\nshards = 2\n", &kinesis_log_section(&servers.kinesis, &servers.dynamodb, &prefix, &table));
    assert!(text.contains("type = \"kinesis\""));
    std::fs::write(&config, text).unwrap();
    rt().block_on(create_kinesis_stream(&format!("{prefix}orders"), 2));
    // The standard credential chain, from the environment, as in production.
    let env = AWS_ENV;
    let server = weir_e2e::Server::start_with_env(&config, &env);
    let sent: Vec<_> = orders(80).into_iter().filter(|o| o.fate == Fate::Event).collect();
    rt().block_on(send(server.addr, &sent));
    // Kinesis cannot count what is pending: wait for the lake to hold every event.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let lake = dir.path().join("data/lake");
    loop {
        let events = weir_sinks::read_lake(&lake).map(|l| l.events).unwrap_or(0);
        if events >= sent.len() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{events} of {} events reached the lake through Kinesis",
            sent.len()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(server.stop().success());
    let report = weir_sinks::read_lake(&lake).unwrap();
    assert_eq!(report.events, sent.len(), "every event once");
    assert_eq!(report.raw_records, sent.len(), "every record archived once");
    assert!(report.dead_letters.is_empty(), "{:?}", report.dead_letters);
}

/// A consumer state larger than a DynamoDB item (400 KB) is kept in chunk items; a later
/// commit with a small state replaces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_larger_than_a_dynamodb_item_survives_a_commit_and_is_replaced_by_the_next() {
    use weir_log::{CommitRange, NewRecord};
    let subject = kinesis().await;
    let log = subject.log();
    let record = |i: usize| NewRecord {
        partition_key: Some("big".into()),
        data: format!("r{i}").into_bytes().into(),
        content_type: "application/json".into(),
        arrival_time: 0,
    };
    let places = log.append(STREAM, (0..2).map(record).collect()).await.expect("append");
    let shard = places[0].shard.clone();
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let first = CommitRange { first: places[0].position.clone(), last: places[0].position.clone() };
    log.begin_commit("big", STREAM, &shard, first.clone()).await.expect("begin");
    log.finish_commit("big", STREAM, &shard, first, big.clone()).await.expect("finish with 1 MB of state");
    let checkpoint = log.checkpoint("big", STREAM, &shard).await.expect("checkpoint").expect("one");
    assert_eq!(checkpoint.state.len(), big.len());
    assert!(checkpoint.state == big, "the state comes back byte for byte");
    let second = CommitRange { first: places[1].position.clone(), last: places[1].position.clone() };
    log.begin_commit("big", STREAM, &shard, second.clone()).await.expect("begin");
    log.finish_commit("big", STREAM, &shard, second, b"small".to_vec()).await.expect("finish");
    let checkpoint = log.checkpoint("big", STREAM, &shard).await.expect("checkpoint").expect("one");
    assert_eq!(checkpoint.state, b"small");
    assert_eq!(checkpoint.committed.as_ref(), Some(&places[1].position));
}
