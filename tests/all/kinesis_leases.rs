//! Shard leases in DynamoDB (moto) over a Kinesis stream (kinesalite), as two hosts see
//! them: they share the shards, never both hold one, take over what a host stops
//! renewing, and a host that lost a lease can no longer checkpoint the shard (fencing).

use std::collections::BTreeSet;
use std::time::Duration;

use weir_aws::{AwsSettings, DynamoCheckpoints, KinesisLog, KinesisOptions};
use weir_e2e::aws_servers::{
    AWS_ENV, create_bucket, create_kinesis_stream, download, kinesis_log_section, local_aws, s3_sink_section, servers,
};
use weir_log::{CheckpointStore, CommitRange, LogError, LogReader, Position, ShardId};

const CONSUMER: &str = "stream-stage";

/// One host's view: its own worker id over the shared table.
struct Host {
    log: KinesisLog,
}

async fn host(settings: &AwsSettings, options: &KinesisOptions, table: &str, lease_time: Duration) -> Host {
    let clients = settings.clients().await;
    let checkpoints = DynamoCheckpoints::open(clients.dynamodb.clone(), table)
        .await
        .expect("checkpoint table")
        .with_lease_time(lease_time);
    Host { log: KinesisLog::new(clients.kinesis.clone(), checkpoints, options.clone()) }
}

impl Host {
    async fn round(&self, shards: &[ShardId]) -> BTreeSet<ShardId> {
        let leases = self.log.leases().expect("Kinesis has leases");
        leases.balance(CONSUMER, "orders", shards).await.expect("a balancing round").held.into_iter().collect()
    }
}

struct Setup {
    a: Host,
    b: Host,
    shards: Vec<ShardId>,
    settings: AwsSettings,
    options: KinesisOptions,
    table: String,
}

async fn setup(lease_time: Duration) -> Setup {
    let settings = local_aws();
    let id = crate::s3_lake::unique("leases");
    let options = KinesisOptions { stream_prefix: format!("{id}-"), ..KinesisOptions::default() };
    let table = format!("{id}-checkpoints");
    create_kinesis_stream(&format!("{id}-orders"), 4).await;
    let a = host(&settings, &options, &table, lease_time).await;
    let b = host(&settings, &options, &table, lease_time).await;
    let shards: Vec<ShardId> = a.log.shards("orders").await.unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(shards.len(), 4);
    Setup { a, b, shards, settings, options, table }
}

/// A takes one lease per round up to all four; B then takes one per round from A down
/// to the fair share of two each; A's renewals of the ones B took fail, and from then on
/// they are B's alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_share_four_shards_two_each_taking_one_lease_per_round() {
    let Setup { a, b, shards, settings, options, table } = setup(Duration::from_secs(60)).await;
    let mut held_a = BTreeSet::new();
    for round in 1..=4 {
        held_a = a.round(&shards).await;
        assert_eq!(held_a.len(), round, "one more lease per round");
    }
    assert_eq!(a.round(&shards).await.len(), 4, "alone, A holds every shard");

    let mut held_b = BTreeSet::new();
    for _ in 0..4 {
        held_b = b.round(&shards).await;
        held_a = a.round(&shards).await;
    }
    assert_eq!((held_a.len(), held_b.len()), (2, 2), "A {held_a:?}, B {held_b:?}");
    assert!(held_a.is_disjoint(&held_b), "no shard is held twice: A {held_a:?}, B {held_b:?}");
    let all: BTreeSet<ShardId> = held_a.union(&held_b).cloned().collect();
    assert_eq!(all, shards.iter().cloned().collect(), "every shard is held");
    // Stable once balanced.
    assert_eq!(b.round(&shards).await, held_b);
    assert_eq!(a.round(&shards).await, held_a);

    // A third host takes one from a host holding two more than it: 2, 1, 1, none idle.
    let c = host(&settings, &options, &table, Duration::from_secs(60)).await;
    let mut held_c = BTreeSet::new();
    for _ in 0..3 {
        held_c = c.round(&shards).await;
        held_a = a.round(&shards).await;
        held_b = b.round(&shards).await;
    }
    let mut sizes = [held_a.len(), held_b.len(), held_c.len()];
    sizes.sort_unstable();
    assert_eq!(sizes, [1, 1, 2], "A {held_a:?}, B {held_b:?}, C {held_c:?}");
    let all: Vec<&ShardId> = held_a.iter().chain(&held_b).chain(&held_c).collect();
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), 4, "every shard held once: {all:?}");
}

/// A begins a commit; B takes the lease over (A stopped renewing it); A's finish is
/// refused — fenced — and B, handed the pending range, finishes it. A taking the lease
/// back later does not revive its old commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_lost_its_lease_cannot_checkpoint_and_the_new_owner_finishes_the_commit() {
    let Setup { a, b, shards, .. } = setup(Duration::from_millis(1500)).await;
    let shard = &shards[..1];
    assert_eq!(a.round(shard).await.len(), 1);
    let range = CommitRange { first: Position::parse("100").unwrap(), last: Position::parse("200").unwrap() };
    a.log.begin_commit(CONSUMER, "orders", &shard[0], range.clone()).await.expect("A holds the lease");

    // B sees A's lease unchanged for longer than the lease time, and takes it.
    assert!(b.round(shard).await.is_empty(), "A's lease is live");
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(b.round(shard).await.len(), 1, "A's lease expired: B takes it");

    let fenced = a.log.finish_commit(CONSUMER, "orders", &shard[0], range.clone(), b"A's state".to_vec()).await;
    match fenced {
        Err(LogError::InvalidCommit { reason, .. }) => assert!(reason.contains("lease"), "{reason}"),
        other => panic!("A's checkpoint after losing the lease must be refused, not {other:?}"),
    }
    // A's next round sees the loss; its writes stay refused.
    assert!(a.round(shard).await.is_empty(), "B holds it now");
    let again = a.log.begin_commit(CONSUMER, "orders", &shard[0], range.clone()).await;
    assert!(matches!(again, Err(LogError::InvalidCommit { .. })), "{again:?}");

    let pending = b
        .log
        .begin_commit(
            CONSUMER,
            "orders",
            &shard[0],
            CommitRange { first: Position::parse("100").unwrap(), last: Position::parse("300").unwrap() },
        )
        .await
        .unwrap();
    assert_eq!(pending, range, "B is handed the range A began, to process it again");
    b.log.finish_commit(CONSUMER, "orders", &shard[0], range, b"B's state".to_vec()).await.unwrap();
    let checkpoint = b.log.checkpoint(CONSUMER, "orders", &shard[0]).await.unwrap().unwrap();
    assert_eq!(checkpoint.committed, Some(Position::parse("200").unwrap()));
    assert_eq!(checkpoint.state, b"B's state");
}

/// A host that stops (killed: it never renews again) loses its shards to the other after
/// the lease time; a shard marked ended is never taken, and is reported ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_hosts_shards_are_taken_over_after_the_lease_time_and_ended_shards_are_not() {
    let Setup { a, b, shards, settings, options, table } = setup(Duration::from_millis(1500)).await;
    for _ in 0..4 {
        a.round(&shards).await;
    }
    let ended = shards[3].clone();
    a.log.leases().unwrap().shard_ended(CONSUMER, "orders", &ended).await.unwrap();
    drop(a);

    let mut held = BTreeSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while held.len() < 3 {
        assert!(std::time::Instant::now() < deadline, "B took only {held:?}");
        held = b.round(&shards).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(!held.contains(&ended), "an ended shard is not taken");
    let round = b.log.leases().unwrap().balance(CONSUMER, "orders", &shards).await.unwrap();
    assert_eq!(round.ended, [ended]);

    // B released at shutdown: a third host takes them at once, without waiting.
    for shard in &held {
        b.log.leases().unwrap().release(CONSUMER, "orders", shard).await.unwrap();
    }
    let c = host(&settings, &options, &table, Duration::from_secs(60)).await;
    let mut taken = BTreeSet::new();
    for _ in 0..3 {
        taken = c.round(&shards).await;
    }
    assert_eq!(taken, held, "released leases are taken in three rounds, no lease time waited");
}

/// Two `weir serve` hosts on one 4-shard Kinesis stream and one lake on S3: they share
/// the shards through the leases; one is killed with SIGKILL mid-stream, the other takes
/// its shards over after the lease time, and every event lands in the lake exactly once.
#[test]
fn two_hosts_share_a_stream_and_one_killed_midstream_loses_no_record() {
    use crate::streaming::{Fate, orders, rt, send};
    let id = crate::s3_lake::unique("scale");
    let bucket = crate::s3_lake::unique("scale-lake");
    create_bucket(&bucket);
    rt().block_on(create_kinesis_stream(&format!("{id}-orders"), 4));
    let host_config = |dir: &std::path::Path| host_on_s3_lake(dir, &id, &bucket);
    let env = AWS_ENV;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = weir_e2e::Server::start_with_env(&host_config(dir_a.path()), &env);
    let b = weir_e2e::Server::start_with_env(&host_config(dir_b.path()), &env);
    // The hosts take one lease per round (every 2 s) until they hold two each.
    std::thread::sleep(Duration::from_secs(12));
    let events_in = |contents: &weir_sinks::LakeContents| contents.events;
    let lake = || lake_on_s3(&bucket);
    let sent: Vec<_> = orders(240).into_iter().filter(|o| o.fate == Fate::Event).collect();
    let (first, second) = sent.split_at(sent.len() / 2);
    rt().block_on(send(a.addr, first));
    // Wait until both hosts are consuming (the first half lands), then kill B.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while events_in(&lake()) < first.len() {
        assert!(std::time::Instant::now() < deadline, "the first half did not reach the lake: {:?}", lake().objects);
        std::thread::sleep(Duration::from_millis(500));
    }
    // B consumed part of it: it held shards when it is killed.
    let processed = events_out(b.addr);
    assert!(processed > 0 && processed < first.len() as u64, "B processed {processed} of {}", first.len());
    b.kill_9();
    rt().block_on(send(a.addr, second));
    // A takes B's shards over once their leases expire (10 s) and consumes the rest.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while events_in(&lake()) < sent.len() {
        assert!(std::time::Instant::now() < deadline, "{} of {} events after the kill", events_in(&lake()), sent.len());
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(3));
    let contents = lake();
    assert_eq!(contents.events, sent.len(), "every event exactly once");
    assert_eq!(contents.raw_records, sent.len(), "every record archived exactly once");
    assert!(a.stop().success());
}

/// A host killed while the shard it consumes is split, with records it had not finished
/// in the parent and new ones already in the children: the other host takes the parent
/// over after the lease time, reads it to its end and marks it ended, then consumes the
/// children; every event lands in the lake exactly once.
#[test]
fn a_host_killed_during_a_split_loses_and_duplicates_nothing() {
    use crate::streaming::{Fate, orders, rt, send};
    let id = crate::s3_lake::unique("split");
    let bucket = crate::s3_lake::unique("split-lake");
    create_bucket(&bucket);
    let settings = local_aws();
    let stream = format!("{id}-orders");
    rt().block_on(create_kinesis_stream(&stream, 1));
    let host_config = |dir: &std::path::Path| host_on_s3_lake(dir, &id, &bucket);
    let env = AWS_ENV;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = weir_e2e::Server::start_with_env(&host_config(dir_a.path()), &env);
    let b = weir_e2e::Server::start_with_env(&host_config(dir_b.path()), &env);
    let lake = || lake_on_s3(&bucket);
    let wait_for = |events: usize, within: u64| {
        let deadline = std::time::Instant::now() + Duration::from_secs(within);
        while lake().events < events {
            assert!(std::time::Instant::now() < deadline, "{} of {events} events reached the lake", lake().events);
            std::thread::sleep(Duration::from_millis(500));
        }
    };
    let sent: Vec<_> = orders(180).into_iter().filter(|o| o.fate == Fate::Event).collect();
    let (first, rest) = sent.split_at(sent.len() / 3);
    let (second, third) = rest.split_at(rest.len() / 2);
    rt().block_on(send(a.addr, first));
    wait_for(first.len(), 60);
    // The one shard's consumer is the host that processed the first third.
    let (holder, survivor) = if events_out(a.addr) > 0 { (a, b) } else { (b, a) };
    // The second third into the parent, then at once: split, and kill the holder.
    rt().block_on(send(holder.addr, second));
    rt().block_on(async {
        let clients = settings.clients().await;
        let shards = clients.kinesis.list_shards().stream_name(&stream).send().await.unwrap();
        let parent = &shards.shards()[0];
        let range = parent.hash_key_range().unwrap();
        let (start, end): (u128, u128) =
            (range.starting_hash_key().parse().unwrap(), range.ending_hash_key().parse().unwrap());
        clients
            .kinesis
            .split_shard()
            .stream_name(&stream)
            .shard_to_split(parent.shard_id())
            .new_starting_hash_key((start + (end - start) / 2 + 1).to_string())
            .send()
            .await
            .expect("split");
        weir_e2e::aws_servers::wait_active(&clients, &stream).await;
    });
    holder.kill_9();
    // The last third goes into the children; the survivor takes the parent over once
    // its lease expires (10 s), ends it, then takes both children.
    rt().block_on(send(survivor.addr, third));
    wait_for(sent.len(), 120);
    std::thread::sleep(Duration::from_secs(3));
    let contents = lake();
    assert_eq!(contents.events, sent.len(), "every event exactly once");
    assert_eq!(contents.raw_records, sent.len(), "every record archived exactly once");
    assert!(survivor.stop().success());
}

/// A `weir serve` configuration in `dir`: the example pipeline on the Kinesis streams
/// `<id>-…` with checkpoints in `<id>-checkpoints`, the lake and dead letters at
/// `s3://bucket/lake`.
fn host_on_s3_lake(dir: &std::path::Path, id: &str, bucket: &str) -> std::path::PathBuf {
    let servers = servers();
    let config = crate::streaming::write_config(dir, "");
    let log = kinesis_log_section(&servers.kinesis, &servers.dynamodb, &format!("{id}-"), &format!("{id}-checkpoints"));
    let mut text = std::fs::read_to_string(&config).unwrap().replace("[log]\nshards = 2\n", &log);
    for kind in ["lake", "dead-letters"] {
        text.push_str(&s3_sink_section(kind, bucket, "lake"));
    }
    // One lake file per commit: what a killed host acknowledged is read while the
    // survivor runs (the rolling of a shared lake is tested in weir-sinks).
    text = text.replacen("type = \"lake\"\n", "type = \"lake\"\nroll_interval = \"0s\"\n", 1);
    std::fs::write(&config, text).unwrap();
    config
}

/// What the lake under `s3://bucket/lake` holds, read back with boto3.
fn lake_on_s3(bucket: &str) -> weir_sinks::LakeContents {
    let copy = tempfile::tempdir().unwrap();
    download(bucket, "lake/", copy.path());
    weir_sinks::read_lake(copy.path()).unwrap()
}

/// The events a host's stage wrote out (`weir_events_out_total` of its `/metrics`).
fn events_out(addr: std::net::SocketAddr) -> u64 {
    let metrics =
        crate::streaming::rt().block_on(weir_client::request(addr, "GET", "/metrics", None, b"")).unwrap().body;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("weir_events_out_total{stream=\"orders\"} "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}
