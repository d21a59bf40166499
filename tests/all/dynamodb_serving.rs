//! Serving tables in DynamoDB (moto's), read back with boto3 and through the read API:
//! the newest event per key wins in both write modes, through injected throttling and
//! unprocessed items; an item over 400 KB is rejected; a kept key is removed only while
//! its item comes from the kept record; a table with another key is
//! refused at start; `weir serve` answers `/v1/serving` from DynamoDB through its cache
//! and loses nothing across a kill -9.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use weir_aws::{DynamoServingSettings, DynamoServingSink, DynamoServingTable, DynamoWriteMode};
use weir_e2e::aws_servers::{AWS_ENV, boto3, servers};
use weir_e2e::fault_proxy::FaultProxy;
use weir_events::{Event, Name, Value};
use weir_serving::{CacheSettings, DocumentCache, ServingDocuments};
use weir_sinks::{EventItem, KeptRecord, Sink, SinkCommit, SinkItem, WriteReport};

use crate::s3_lake::unique;
use crate::streaming::{Fate, caught_up, orders, rt, send_across_a_kill_9_with_env};

fn status(order: &str, status: &str, time: i64) -> Event {
    let fields = vec![(Name::from("order_id"), Value::from(order)), (Name::from("status"), Value::from(status))];
    Event { key: Some("r-1".to_owned()), time, fields }
}

/// A commit of `events` at positions `first_seq`, `first_seq + 1`…
fn commit(first_seq: u64, events: Vec<Event>) -> SinkCommit {
    let items = events
        .into_iter()
        .map(|event| SinkItem::Event(Arc::new(EventItem { event, lineage: "orders-parser@1.0.0".to_owned() })))
        .collect();
    weir_e2e::commit_of("orders", "0", first_seq, items)
}

/// Writes `commit` as delivery does, the failed records again until none fail, and every
/// call must reach DynamoDB (no whole-call error, which `weir_e2e::deliver_all` would
/// retry); returns the ids of the records refused, with the reasons.
async fn rejected_ids(sink: &dyn Sink, commit: &SinkCommit) -> Vec<(String, String)> {
    let mut pending: Vec<usize> = (0..commit.records.len()).collect();
    let mut rejected = Vec::new();
    for _ in 0..30 {
        let WriteReport { failed, rejected: refused } =
            sink.write(&commit.subset(&pending)).await.expect("the call reaches DynamoDB");
        rejected.extend(refused.into_iter().map(|(i, why)| (commit.records[pending[i]].id.clone(), why)));
        if failed.is_empty() {
            return rejected;
        }
        pending = failed.into_iter().map(|(i, _)| pending[i]).collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("records still failing after 30 attempts: {pending:?}");
}

fn sink(table: &str, endpoint: &str, mode: DynamoWriteMode) -> (DynamoServingSink, Arc<DynamoServingTable>) {
    let settings = DynamoServingSettings {
        table: table.to_owned(),
        region: Some("us-east-1".into()),
        endpoint: Some(endpoint.to_owned()),
        create_table: true,
        write_mode: mode,
    };
    let table = Arc::new(DynamoServingTable::new(settings, Some(("test".into(), "test".into()))));
    let documents =
        ServingDocuments { sink: "order-status".into(), table: "orders".into(), key_field: Some("order_id".into()) };
    (DynamoServingSink::new(documents, table.clone(), DocumentCache::new(CacheSettings::default())), table)
}

/// Every item of DynamoDB table `table`, by key: the served document's status and time.
fn scan(table: &str) -> BTreeMap<String, (String, String)> {
    let printed = boto3(
        "import json\n\
         d = boto3.client('dynamodb', endpoint_url=sys.argv[1], region_name='us-east-1',\n\
         \x20   aws_access_key_id='test', aws_secret_access_key='test')\n\
         for page in d.get_paginator('scan').paginate(TableName=sys.argv[2]):\n\
         \x20   for item in page['Items']:\n\
         \x20       print(json.dumps({'key': item['key']['S'], 'doc': json.loads(item['doc']['S'])}))",
        &[table],
    );
    printed
        .lines()
        .map(|line| {
            let item: serde_json::Value = serde_json::from_str(line).unwrap();
            let doc = &item["doc"];
            let status = doc["fields"]["status"].as_str().unwrap_or_default().to_owned();
            (item["key"].as_str().unwrap().to_owned(), (status, doc["time"].as_str().unwrap().to_owned()))
        })
        .collect()
}

fn at(micros: i64) -> String {
    weir_events::time::format_rfc3339(micros)
}

#[test]
fn conditional_writes_keep_the_newest_event_per_key_through_throttling_and_reject_items_over_400_kb() {
    let moto = FaultProxy::start(&servers().dynamodb);
    let table = unique("serving-conditional");
    rt().block_on(async {
        let (sink, reader) = sink(&table, &moto.url, DynamoWriteMode::Conditional);
        sink.prepare().await.expect("the table is created");
        moto.set(|faults| {
            faults.throttle_every.insert("PutItem", 3);
        });
        let mut huge = status("o-3", "placed", 10);
        huge.fields.push((Name::from("notes"), Value::from("n".repeat(500 << 10).as_str())));
        let long_key = status(&"k".repeat(3000), "placed", 10);
        let first = commit(1, vec![status("o-1", "placed", 10), status("o-2", "placed", 10), huge, long_key]);
        let rejected = rejected_ids(&sink, &first).await;
        assert_eq!(rejected.len(), 2, "{rejected:?}");
        assert_eq!(rejected[0].0, first.records[2].id, "the 500 KB document is rejected");
        assert!(rejected[0].1.contains("o-3") && rejected[0].1.contains("400 KB"), "{}", rejected[0].1);
        assert_eq!(rejected[1].0, first.records[3].id, "the 3 000-byte key is rejected");
        assert!(rejected[1].1.contains("3000 bytes") && rejected[1].1.contains("2048"), "{}", rejected[1].1);
        // A later commit: an older event for o-1, and two for o-2 (the older one second).
        let second =
            commit(10, vec![status("o-1", "created", 5), status("o-2", "delivered", 30), status("o-2", "cooking", 20)]);
        assert!(rejected_ids(&sink, &second).await.is_empty());
        // A replay of the second commit after a crash changes nothing.
        assert!(rejected_ids(&sink, &second).await.is_empty());
        moto.set(|faults| faults.throttle_every.clear());
        // The SDK retries a throttled call itself; what it gives up on, delivery retries.
        assert!(moto.seen().throttled > 0, "throttling was injected");

        let stored = scan(&table);
        let expected = BTreeMap::from([
            ("o-1".to_owned(), ("placed".to_owned(), at(10))),
            ("o-2".to_owned(), ("delivered".to_owned(), at(30))),
        ]);
        assert_eq!(stored, expected, "the newest event per key, nothing else");
        // o-1 created (older than stored) twice and o-2 cooking (older in its commit) twice.
        assert_eq!(sink.stale(), 4);
        let read = reader.get("o-2").await.unwrap().unwrap();
        assert_eq!((read.time, read.position.as_str()), (30, "11"));
        assert!(reader.get("o-404").await.unwrap().is_none());
    });
}

#[test]
fn a_kept_key_is_removed_only_while_its_item_still_comes_from_the_kept_record() {
    let moto = FaultProxy::start(&servers().dynamodb);
    let table = unique("serving-removal");
    rt().block_on(async {
        let (sink, reader) = sink(&table, &moto.url, DynamoWriteMode::Conditional);
        sink.prepare().await.unwrap();
        let earlier =
            commit(1, vec![status("o-1", "placed", 10), status("o-2", "placed", 10), status("o-3", "placed", 10)]);
        assert!(rejected_ids(&sink, &earlier).await.is_empty());
        // o-2 written since by a newer event of another record.
        assert!(rejected_ids(&sink, &commit(50, vec![status("o-2", "delivered", 30)])).await.is_empty());
        let kept_of = |i: usize| KeptRecord {
            key: sink.kept_key(&earlier.records[i]).expect("an event with its key field is kept"),
            record: earlier.records[i].id.clone(),
        };
        let mut kept = vec![kept_of(0), kept_of(1)];
        kept.push(KeptRecord { key: "o-3".into(), record: "another-record".into() });
        kept.push(KeptRecord { key: "o-404".into(), record: earlier.records[0].id.clone() });
        assert_eq!(kept[0].key, "o-1");
        moto.set(|faults| {
            faults.throttle_every.insert("DeleteItem", 2);
        });
        let mut pending = kept.clone();
        for _ in 0..30 {
            let report = sink.remove(&pending).await.expect("the calls reach DynamoDB");
            if report.failed.is_empty() {
                pending.clear();
                break;
            }
            pending = report.failed.into_iter().map(|(i, _)| pending[i].clone()).collect();
        }
        assert!(pending.is_empty(), "still failing: {pending:?}");
        moto.set(|faults| faults.throttle_every.clear());
        let stored = scan(&table);
        let expected = BTreeMap::from([
            ("o-2".to_owned(), ("delivered".to_owned(), at(30))),
            ("o-3".to_owned(), ("placed".to_owned(), at(10))),
        ]);
        assert_eq!(stored, expected, "o-1 removed; the newer o-2 and another record's o-3 stay");
        assert!(reader.get("o-1").await.unwrap().is_none());
    });
}

#[test]
fn batch_writes_resend_unprocessed_items_and_skip_stale_events() {
    let moto = FaultProxy::start(&servers().dynamodb);
    let table = unique("serving-batch");
    rt().block_on(async {
        let (sink, _) = sink(&table, &moto.url, DynamoWriteMode::Batch);
        sink.prepare().await.expect("the table is created");
        moto.set(|faults| faults.unprocess_every_other_item = true);
        let events: Vec<Event> = (0..60).map(|i| status(&format!("o-{i}"), "placed", 100 + i)).collect();
        assert!(rejected_ids(&sink, &commit(1, events)).await.is_empty());
        let seen = moto.seen();
        assert!(seen.entries_failed >= 30, "unprocessed items were injected: {seen:?}");
        // 60 items in requests of at most 25 (3), each answered half unprocessed.
        assert!(seen.calls["BatchWriteItem"] > 3, "{seen:?}");
        moto.set(|faults| faults.unprocess_every_other_item = false);
        // Older events for every even key, newer ones for o-1 and o-3.
        let mut later: Vec<Event> = (0..60).step_by(2).map(|i| status(&format!("o-{i}"), "created", 1)).collect();
        later.push(status("o-1", "delivered", 500));
        later.push(status("o-3", "delivered", 500));
        assert!(rejected_ids(&sink, &commit(100, later)).await.is_empty());
        let stored = scan(&table);
        assert_eq!(stored.len(), 60);
        for i in 0..60 {
            let expected =
                if i == 1 || i == 3 { ("delivered".to_owned(), at(500)) } else { ("placed".to_owned(), at(100 + i)) };
            assert_eq!(stored[&format!("o-{i}")], expected, "o-{i}");
        }
        assert_eq!(sink.stale(), 30);
    });
}

#[test]
fn a_table_with_another_key_or_a_missing_one_that_may_not_be_created_is_refused_at_start() {
    let table = unique("serving-other-key");
    boto3(
        "d = boto3.client('dynamodb', endpoint_url=sys.argv[1], region_name='us-east-1',\n\
         \x20   aws_access_key_id='test', aws_secret_access_key='test')\n\
         d.create_table(TableName=sys.argv[2], KeySchema=[{'AttributeName': 'id', 'KeyType': 'HASH'}],\n\
         \x20   AttributeDefinitions=[{'AttributeName': 'id', 'AttributeType': 'S'}], BillingMode='PAY_PER_REQUEST')",
        &[&table],
    );
    rt().block_on(async {
        let (other_key, _) = sink(&table, &servers().dynamodb, DynamoWriteMode::Conditional);
        let error = other_key.prepare().await.unwrap_err().to_string();
        assert!(error.contains("order-status") && error.contains(&table) && error.contains("another key"), "{error}");

        let missing = unique("serving-missing");
        let settings = DynamoServingSettings {
            table: missing.clone(),
            region: Some("us-east-1".into()),
            endpoint: Some(servers().dynamodb.clone()),
            create_table: false,
            write_mode: DynamoWriteMode::Conditional,
        };
        let table = Arc::new(DynamoServingTable::new(settings, Some(("test".into(), "test".into()))));
        let error = table.open().await.unwrap_err();
        assert!(
            error.contains(&missing) && error.contains("does not exist") && error.contains("create_table"),
            "{error}"
        );
    });
}

/// The read API's pipeline with its `orders` serving table in DynamoDB.
fn write_dynamodb_config(dir: &std::path::Path, table: &str) -> std::path::PathBuf {
    let config = crate::read_api::write_read_config(dir, false);
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[sinks.order-status]\ntype = \"serving\"\n",
        &format!(
            "[sinks.order-status]\ntype = \"dynamodb\"\ndynamodb_table = \"{table}\"\nregion = \"us-east-1\"\nendpoint = \"{}\"\n",
            servers().dynamodb
        ),
    );
    assert!(text.contains("type = \"dynamodb\""));
    std::fs::write(&config, text).unwrap();
    config
}

#[test]
fn weir_serve_answers_serving_lookups_from_dynamodb_through_its_cache() {
    use crate::read_api::{get, status_update};
    let dir = tempfile::tempdir().unwrap();
    let table = unique("serve-orders");
    let config = write_dynamodb_config(dir.path(), &table);
    let server = weir_e2e::Server::start_with_env(&config, &AWS_ENV);
    let base = crate::streaming::BASE;
    rt().block_on(async {
        let post = |lines: Vec<String>| async move {
            let path = "/v1/streams/orders/records?key_field=restaurant_id";
            let r = weir_client::request(
                server.addr,
                "POST",
                path,
                Some("application/x-ndjson"),
                lines.join("\n").as_bytes(),
            )
            .await
            .unwrap();
            assert_eq!(r.status, 200, "{}", r.body);
        };
        post(vec![status_update("o-1", "r-1", "placed", base), status_update("o-2", "r-2", "placed", base)]).await;
        caught_up(server.addr).await;
        post(vec![status_update("o-1", "r-1", "delivered", base + 1800)]).await;
        caught_up(server.addr).await;
        post(vec![status_update("o-1", "r-1", "cooking", base + 600)]).await;
        caught_up(server.addr).await;
        let r = get(server.addr, "/v1/serving/orders/o-1").await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.header("x-weir-cache"), Some("hit"), "this host's write refreshed its cache");
        let doc: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(doc["fields"]["status"], "delivered", "the older event did not overwrite");
        assert_eq!((doc["table"].as_str(), doc["key"].as_str()), (Some("orders"), Some("o-1")));
        assert_eq!(doc["lineage"], "orders-parser@1.0.0>restaurant-enricher@1.0.0");
        let missing = get(server.addr, "/v1/serving/orders/o-404").await;
        assert_eq!(missing.status, 404, "{}", missing.body);
    });
    assert_eq!(scan(&table)["o-1"].0, "delivered");
    assert!(server.stop().success());
    // Another host (a restart here) reads DynamoDB, not a cache.
    let server = weir_e2e::Server::start_with_env(&config, &AWS_ENV);
    rt().block_on(async {
        let r = get(server.addr, "/v1/serving/orders/o-1").await;
        assert_eq!(r.header("x-weir-cache"), Some("miss"));
        let doc: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(doc["fields"]["status"], "delivered");
        assert!(r.header("etag").is_some());
    });
    assert!(server.stop().success());
}

#[test]
fn kill_9_mid_stream_loses_no_acknowledged_event_in_the_dynamodb_table() {
    let dir = tempfile::tempdir().unwrap();
    let table = unique("serve-kill");
    let config = write_dynamodb_config(dir.path(), &table);
    let sent = orders(300);
    let server = send_across_a_kill_9_with_env(&config, &sent, &AWS_ENV);
    assert!(server.stop().success());
    let expected: std::collections::BTreeSet<String> =
        sent.iter().filter(|o| o.fate == Fate::Event).map(crate::read_api::order_id).collect();
    let stored = scan(&table);
    let keys: std::collections::BTreeSet<String> = stored.keys().cloned().collect();
    let missing: Vec<_> = expected.difference(&keys).collect();
    assert!(missing.is_empty(), "every acknowledged order is served: missing {missing:?}");
    assert_eq!(keys, expected, "one item per order event, nothing else");
}
