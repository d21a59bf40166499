//! The search index in Elasticsearch, against the stand-in of `tests/elastic_standin.rs`
//! (no Elasticsearch server can run on these machines): per-item results of `_bulk` —
//! 429s retried alone, mapping errors dead-lettered, a 503 for the whole request retried
//! — kept documents removed by id, and `weir serve` answering `/v1/search` from it as
//! from the embedded index.

use std::sync::Arc;
use std::time::Duration;

use weir_aws::{ElasticIndex, ElasticSettings};
use weir_e2e::elastic_standin::ElasticStandIn;
use weir_events::{Event, Name, Value};
use weir_sinks::{EventItem, KeptRecord, Sink, SinkCommit, SinkItem, WriteReport};

use crate::streaming::{Fate, orders, rt, send_across_a_kill_9_with_env};

fn order(id: &str, restaurant: &str, total: f64) -> Event {
    let fields = vec![
        (Name::from("order_id"), Value::from(id)),
        (Name::from("restaurant_name"), Value::from(restaurant)),
        (Name::from("total"), Value::Float(total)),
    ];
    Event { key: Some("r-1".to_owned()), time: 1_795_690_800_000_000, fields }
}

fn commit(events: Vec<Event>) -> SinkCommit {
    let items = events
        .into_iter()
        .map(|event| SinkItem::Event(Arc::new(EventItem { event, lineage: "orders-parser@1.0.0".into() })))
        .collect();
    weir_e2e::commit_of("orders", "0", 1, items)
}

fn index(url: &str, name: &str) -> ElasticIndex {
    let settings = ElasticSettings {
        url: url.to_owned(),
        index: name.to_owned(),
        text_fields: vec!["restaurant_name".into(), "order_id".into()],
        numeric_fields: vec!["total".into()],
        create_index: true,
    };
    ElasticIndex::new("order-search", settings).unwrap()
}

#[test]
fn bulk_items_are_retried_alone_refused_ones_dead_lettered_and_a_503_retried() {
    let elastic = ElasticStandIn::start();
    rt().block_on(async {
        let sink = index(&elastic.url, "orders");
        sink.prepare().await.expect("the index is created");
        sink.prepare().await.expect("an existing index is used as it is");
        elastic.set(|faults| {
            faults.reject_item_every = 4;
            faults.mapping_error_when = Some(("order_id".into(), "o-bad".into()));
        });
        let mut events: Vec<Event> =
            (0..20).map(|i| order(&format!("o-{i}"), "Bäckerei Müller", 10.0 + i as f64)).collect();
        events[7] = order("o-bad", "Bäckerei Müller", 1.0);
        let commit = commit(events);
        let mut pending: Vec<usize> = (0..commit.records.len()).collect();
        let mut rejected = Vec::new();
        for _ in 0..10 {
            let WriteReport { failed, rejected: refused } = sink.write(&commit.subset(&pending)).await.unwrap();
            rejected.extend(refused.into_iter().map(|(i, why)| (pending[i], why)));
            if failed.is_empty() {
                break;
            }
            assert!(failed.iter().all(|(_, why)| why.contains("429")), "{failed:?}");
            pending = failed.into_iter().map(|(i, _)| pending[i]).collect();
        }
        assert_eq!(rejected.len(), 1, "{rejected:?}");
        assert_eq!(rejected[0].0, 7);
        assert!(
            rejected[0].1.contains("document_parsing_exception") && rejected[0].1.contains("400"),
            "{}",
            rejected[0].1
        );
        let seen = elastic.seen();
        assert!(seen.rejected_items >= 5, "{seen:?}");
        let documents = elastic.documents("orders");
        assert_eq!(documents.len(), 19, "every document but the refused one");
        // Never the whole batch again: a document answered 2xx was sent once.
        let resent = seen.received.values().filter(|&&n| n > 1).count();
        assert!(resent as u64 <= seen.rejected_items, "only items answered 429 were resent: {seen:?}");
        let doc = &documents[&commit.records[0].id];
        assert_eq!(doc["fields"]["restaurant_name"], "Bäckerei Müller");
        assert_eq!(doc["total"], 10.0);

        // A whole request answered 503: the call fails (delivery retries it) and the retry
        // writes it.
        elastic.set(|faults| {
            *faults = Default::default();
            faults.unavailable_every = 1;
        });
        let error = sink.write(&commit).await.unwrap_err();
        assert!(error.is_retryable() && error.to_string().contains("503"), "{error}");
        elastic.set(|faults| faults.unavailable_every = 0);
        let report = sink.write(&commit).await.unwrap();
        assert!(report.failed.is_empty() && report.rejected.is_empty(), "{report:?}");
        assert_eq!(elastic.documents("orders").len(), 20);

        // A write block (403) is the cluster's state, not the documents' fault: retried,
        // never dead-lettered.
        elastic.set(|faults| faults.write_block = true);
        let blocked = sink.write(&commit).await.unwrap();
        assert!(blocked.rejected.is_empty(), "{blocked:?}");
        assert_eq!(blocked.failed.len(), 20);
        assert!(blocked.failed[0].1.contains("403") && blocked.failed[0].1.contains("cluster_block_exception"));
        elastic.set(|faults| faults.write_block = false);

        // Searches in the embedded index's syntax and response shape.
        let all = sink.search("*", 5).await.unwrap();
        assert_eq!((all.total, all.hits.len()), (20, 5));
        let found = sink.search("muller restaurant_name:baeckerei OR total:>=29", 100).await.unwrap();
        assert_eq!(found.total, 1, "{found:?}");
        assert_eq!(found.hits[0]["fields"]["order_id"], "o-19");
        assert!(found.hits[0]["score"].is_number());
        let folded = sink.search("Muller", 100).await.unwrap();
        assert_eq!(folded.total, 20);
        let refused = sink.search("restaurant_name:>=3", 10).await.unwrap_err();
        assert!(
            matches!(refused, weir_aws::ElasticSearchError::BadQuery(ref why) if why.contains("query_shard_exception")),
            "{refused:?}"
        );
    });
}

#[test]
fn kept_documents_are_removed_by_id_and_missing_ones_count_as_removed() {
    let elastic = ElasticStandIn::start();
    rt().block_on(async {
        let sink = index(&elastic.url, "orders");
        sink.prepare().await.unwrap();
        let commit = commit((0..6).map(|i| order(&format!("o-{i}"), "Dim Sum", 5.0)).collect());
        assert!(sink.write(&commit).await.unwrap().is_complete());
        let mut kept: Vec<KeptRecord> = commit.records[..3]
            .iter()
            .map(|r| KeptRecord { key: sink.kept_key(r).expect("an event is kept by its id"), record: r.id.clone() })
            .collect();
        assert_eq!(kept[0].key, commit.records[0].id);
        kept.push(KeptRecord { key: "never-written".into(), record: "never-written".into() });
        let report = sink.remove(&kept).await.unwrap();
        assert!(report.is_complete(), "a 404 is removed already: {report:?}");
        assert_eq!(elastic.seen().deleted, 4);
        let left: Vec<String> = elastic.documents("orders").into_keys().collect();
        let expected: Vec<String> = commit.records[3..].iter().map(|r| r.id.clone()).collect();
        assert_eq!(left, expected);
    });
}

/// The read API's pipeline with its `orders` index in Elasticsearch at `url`.
fn write_elastic_config(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    let config = crate::read_api::write_read_config(dir, false);
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[sinks.order-search]\ntype = \"search\"\n",
        &format!("[sinks.order-search]\ntype = \"elasticsearch\"\nurl = \"{url}\"\n"),
    );
    assert!(text.contains("type = \"elasticsearch\""));
    std::fs::write(&config, text).unwrap();
    config
}

#[test]
fn weir_serve_searches_elasticsearch_dead_letters_refused_documents_and_survives_a_kill_9() {
    let elastic = ElasticStandIn::start();
    elastic.set(|faults| {
        faults.reject_item_every = 7;
        faults.mapping_error_when = Some(("order_id".into(), "o-3".into()));
    });
    let dir = tempfile::tempdir().unwrap();
    let config = write_elastic_config(dir.path(), &elastic.url);
    let sent = orders(200);
    let credentials = [("WEIR_ELASTICSEARCH_USERNAME", "weir"), ("WEIR_ELASTICSEARCH_PASSWORD", "s3cret")];
    let server = send_across_a_kill_9_with_env(&config, &sent, &credentials);
    assert_eq!(
        elastic.seen().authorization.as_deref(),
        Some("Basic d2VpcjpzM2NyZXQ="),
        "basic auth from the environment"
    );
    let events: Vec<String> = sent.iter().filter(|o| o.fate == Fate::Event).map(crate::read_api::order_id).collect();
    let documents = elastic.documents("orders");
    let indexed: std::collections::BTreeSet<String> =
        documents.values().map(|d| d["fields"]["order_id"].as_str().unwrap().to_owned()).collect();
    let expected: std::collections::BTreeSet<String> = events.iter().filter(|id| *id != "o-3").cloned().collect();
    assert_eq!(indexed, expected, "every acknowledged event but the refused one, once (documents by id)");
    assert_eq!(documents.len(), expected.len());
    rt().block_on(async {
        let all = crate::read_api::get(server.addr, "/v1/search/orders?q=*&limit=1").await;
        assert_eq!(all.status, 200, "{}", all.body);
        let all: serde_json::Value = serde_json::from_str(&all.body).unwrap();
        assert_eq!(all["total"], expected.len());
        assert_eq!(all["index"], "orders");
        let one = crate::read_api::get(server.addr, "/v1/search/orders?q=order_id:%22o-1%22").await;
        let one: serde_json::Value = serde_json::from_str(&one.body).unwrap();
        assert_eq!(one["total"], 1, "{one}");
        assert_eq!(one["hits"][0]["fields"]["order_id"], "o-1");
        assert_eq!(one["hits"][0]["lineage"], "orders-parser@1.0.0>restaurant-enricher@1.0.0");
        let deep = format!("/v1/search/orders?q={}a{}", "%28".repeat(9), "%29".repeat(9));
        let refused = crate::read_api::get(server.addr, &deep).await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert!(refused.body.contains("deeper than 8"), "{}", refused.body);
    });
    assert!(server.stop().success());
    // The refused document is a dead letter naming the sink and Elasticsearch's reason.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let lake = weir_sinks::read_lake(&dir.path().join("data/lake")).unwrap();
        let from_index: Vec<_> = lake.dead_letters.iter().filter(|(plugin, _)| plugin == "sink:order-search").collect();
        if let [(_, reason)] = from_index.as_slice() {
            assert!(reason.contains("document_parsing_exception") && reason.contains("order_id"), "{reason}");
            break;
        }
        assert!(from_index.len() < 2, "one dead letter for the one refused document: {from_index:?}");
        assert!(std::time::Instant::now() < deadline, "no dead letter from the index: {:?}", lake.dead_letters);
        std::thread::sleep(Duration::from_millis(200));
    }
}
