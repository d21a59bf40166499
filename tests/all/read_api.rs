//! The serving store, the search index and the warehouse through the real binary: events
//! in over the ingest API, read back over the read API (and the warehouse with DuckDB).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use weir_client::{HttpResponse, request, request_with_headers};
use weir_e2e::Server;

use crate::streaming::{
    Fate, Order, caught_up, direct_aggregates, orders, rt, send, send_across_a_kill_9, sentinels, ts, write_config,
};

/// Restaurant names with non-ASCII letters, written over the ones `write_config` made.
const RESTAURANTS: &str = r#"{
  "r-1": {"name": "Café Crème", "zone": "Downtown", "cuisine": "french"},
  "r-2": {"name": "São Paulo Grill", "zone": "Exchange", "cuisine": "brazilian"},
  "r-3": {"name": "Bäckerei Müller", "zone": "Wolseley", "cuisine": "bakery"},
  "r-4": {"name": "寿司 Zen", "zone": "Downtown", "cuisine": "japanese"},
  "r-5": {"name": "Pho Hà Nội", "zone": "Boniface", "cuisine": "vietnamese"}
}"#;

const READ_SINKS: &str = r#"
[streams.routes]
raw = ["lake"]
events = ["lake", "order-status", "order-search", "warehouse"]
aggregates = ["lake", "latest-stats", "warehouse"]
dead_letters = ["dead-letters"]

[sinks.lake]
type = "lake"

[sinks.dead-letters]
type = "dead-letters"

[sinks.order-status]
type = "serving"
table = "orders"
key_field = "order_id"

[sinks.latest-stats]
type = "serving"
table = "stats"

[sinks.order-search]
type = "search"
index = "orders"
text_fields = ["restaurant_name", "order_id", "status"]
numeric_fields = ["total"]

[sinks.warehouse]
type = "warehouse"
"#;

/// A pipeline over the example plugins writing every read-side sink.
pub(crate) fn write_read_config(dir: &Path, aggregator: bool) -> std::path::PathBuf {
    let config = write_config(dir, "serving_cache_ttl = \"60s\"");
    std::fs::write(dir.join("restaurants.json"), RESTAURANTS).unwrap();
    let mut text = std::fs::read_to_string(&config).unwrap();
    if !aggregator {
        let start = text.find("[streams.aggregator]").unwrap();
        text.truncate(start);
    }
    let sinks = if aggregator {
        READ_SINKS.to_owned()
    } else {
        READ_SINKS.replace("aggregates = [\"lake\", \"latest-stats\", \"warehouse\"]\n", "")
    };
    std::fs::write(&config, text + &sinks).unwrap();
    config
}

pub(crate) async fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    request(addr, "GET", path, None, b"").await.unwrap()
}

async fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let r = get(addr, path).await;
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

pub(crate) fn order_id(order: &Order) -> String {
    order.line.split('"').nth(3).unwrap().to_owned()
}

/// Percent-encodes a query value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every event is in the serving table, the index and the warehouse once, with the sums a
/// direct computation gives.
async fn assert_read_side_matches(addr: SocketAddr, dir: &Path, sent: &[Order]) {
    let events: Vec<&Order> = sent.iter().filter(|o| o.fate == Fate::Event).collect();

    // Serving: one document per order, holding its event.
    for order in &events {
        let id = order_id(order);
        let doc = get_json(addr, &format!("/v1/serving/orders/{id}")).await;
        assert_eq!(doc["key"], id);
        assert_eq!(doc["time"], ts(order.placed));
        assert_eq!(doc["fields"]["restaurant_id"], order.restaurant);
    }
    let missing = get(addr, "/v1/serving/orders/o-malformed").await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    assert!(missing.body.contains("serving table \\\"orders\\\" has no value for key \\\"o-malformed\\\""));

    // Search: every event once, found by its id and by its restaurant's name without accents.
    let all = get_json(addr, "/v1/search/orders?q=*&limit=1").await;
    assert_eq!(all["total"], events.len(), "each event is indexed once");
    for order in events.iter().step_by(7) {
        let id = order_id(order);
        let found = get_json(addr, &format!("/v1/search/orders?q={}", encode(&format!("order_id:\"{id}\"")))).await;
        assert_eq!(found["total"], 1, "{id}: {found}");
        assert_eq!(found["hits"][0]["fields"]["order_id"], id);
    }
    let muller = events.iter().filter(|o| o.restaurant == "r-3").count();
    for query in ["muller", "Müller", "restaurant_name:baeckerei OR restaurant_name:backerei"] {
        let found = get_json(addr, &format!("/v1/search/orders?q={}&limit=5", encode(query))).await;
        assert_eq!(found["total"], muller, "{query}: {found}");
        assert_eq!(found["hits"][0]["fields"]["restaurant_name"], "Bäckerei Müller");
    }

    // Warehouse: the aggregates API and DuckDB both sum to the direct computation.
    let expected =
        direct_aggregates(&sent.iter().filter(|o| !o.line.contains("sentinel")).cloned().collect::<Vec<_>>());
    let rows = get_json(addr, "/v1/aggregates/orders").await["rows"].as_array().unwrap().clone();
    let mut actual: BTreeMap<(String, String), (i64, f64)> = BTreeMap::new();
    for row in &rows {
        let key = (row["time"].as_str().unwrap().to_owned(), row["key"].as_str().unwrap().to_owned());
        let previous =
            actual.insert(key, (row["fields"]["orders"].as_i64().unwrap(), row["fields"]["revenue"].as_f64().unwrap()));
        assert!(previous.is_none(), "one aggregate per window and restaurant: {row}");
    }
    assert_eq!(actual.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
    for (key, (orders, cents, _)) in &expected {
        assert_eq!(actual[key].0, *orders, "{key:?}");
        assert!((actual[key].1 - *cents as f64 / 100.0).abs() < 1e-6, "{key:?}");
    }
    let ((first_window, restaurant), (orders, _, _)) = expected.iter().next().unwrap();
    let one = get_json(
        addr,
        &format!(
            "/v1/aggregates/orders?key={restaurant}&from={first_window}&to={}",
            ts(crate::streaming::BASE + 86_400)
        ),
    )
    .await;
    let one = one["rows"].as_array().unwrap();
    assert_eq!(one[0]["fields"]["orders"], *orders);
    assert!(one.iter().all(|row| row["key"] == restaurant.as_str()));

    let bad_time = get(addr, "/v1/aggregates/orders?from=yesterday").await;
    assert_eq!(bad_time.status, 400, "{}", bad_time.body);
    assert!(bad_time.body.contains("from=\\\"yesterday\\\" is not a time"), "{}", bad_time.body);

    let total_orders: i64 = expected.values().map(|v| v.0).sum();
    let total_cents: i64 = expected.values().map(|v| v.1).sum();
    let duckdb = duckdb_sums(&dir.join("data/warehouse"));
    assert_eq!(duckdb.0, total_orders, "DuckDB reads the warehouse: orders");
    assert!((duckdb.1 - total_cents as f64 / 100.0).abs() < 1e-6, "DuckDB revenue {} vs {total_cents}", duckdb.1);
    assert_eq!(duckdb.2, events.len() as i64, "DuckDB reads every event once");

    // Serving the aggregates: each restaurant's newest finished window.
    let mut newest: BTreeMap<&str, &str> = BTreeMap::new();
    for (window, restaurant) in expected.keys() {
        newest.insert(restaurant, window);
    }
    for (restaurant, window) in newest {
        let doc = get_json(addr, &format!("/v1/serving/stats/{restaurant}")).await;
        assert_eq!(doc["time"], window, "{restaurant}: {doc}");
    }
}

/// `(sum(orders), sum(revenue))` of the aggregates and `count(*)` of the events, by DuckDB
/// over the warehouse's Parquet files (Python's duckdb package, installed by
/// `scripts/test-tools.sh`).
fn duckdb_sums(warehouse: &Path) -> (i64, f64, i64) {
    let python =
        std::env::var("WEIR_TEST_PYTHON").unwrap_or_else(|_| "/var/tmp/weir-tools/test-venv/bin/python".into());
    let script = format!(
        "import duckdb\n\
         a = duckdb.sql(\"select sum(orders), sum(revenue) from read_parquet('{w}/aggregates/orders/*/*.parquet', hive_partitioning=true, union_by_name=true)\").fetchone()\n\
         e = duckdb.sql(\"select count(*), count(distinct _id) from read_parquet('{w}/events/orders/*/*.parquet', hive_partitioning=true, union_by_name=true)\").fetchone()\n\
         assert e[0] == e[1], e\n\
         print(a[0], a[1], e[0])\n",
        w = warehouse.display()
    );
    let output = std::process::Command::new(&python).arg("-c").arg(script).output().unwrap_or_else(|e| {
        panic!("cannot run {python} (DuckDB is installed by scripts/test-tools.sh; set WEIR_TEST_PYTHON): {e}")
    });
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "duckdb: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    let mut parts = stdout.split_whitespace();
    let orders = parts.next().unwrap().parse().unwrap();
    let revenue = parts.next().unwrap().parse().unwrap();
    let events = parts.next().unwrap().parse().unwrap();
    (orders, revenue, events)
}

#[test]
fn serving_search_and_warehouse_hold_every_event_once_with_direct_sums() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_read_config(dir.path(), true);
    let server = Server::start(&config);
    let mut sent = orders(300);
    sent.extend(sentinels());
    rt().block_on(async {
        for batch in sent.chunks(40) {
            send(server.addr, batch).await;
        }
        caught_up(server.addr).await;
        assert_read_side_matches(server.addr, dir.path(), &sent).await;
    });
    assert!(server.stop().success());
}

#[test]
fn kill_9_mid_stream_leaves_no_duplicates_in_the_index_or_the_warehouse() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_read_config(dir.path(), true);
    let mut sent = orders(300);
    sent.extend(sentinels());
    let server = send_across_a_kill_9(&config, &sent);
    rt().block_on(assert_read_side_matches(server.addr, dir.path(), &sent));
    assert!(server.stop().success());
}

/// An order event with `status` at `placed` (seconds).
pub(crate) fn status_update(id: &str, restaurant: &str, status: &str, placed: i64) -> String {
    format!(
        "{{\"order_id\":\"{id}\",\"restaurant_id\":\"{restaurant}\",\"status\":\"{status}\",\"total\":10.00,\"placed_at\":\"{}\"}}",
        ts(placed)
    )
}

#[test]
fn an_older_event_arriving_later_does_not_overwrite_the_newer_serving_value() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_read_config(dir.path(), false);
    let server = Server::start(&config);
    let base = crate::streaming::BASE;
    rt().block_on(async {
        let post = |lines: Vec<String>| async move {
            let r = request(
                server.addr,
                "POST",
                "/v1/streams/orders/records?key_field=restaurant_id",
                Some("application/x-ndjson"),
                lines.join("\n").as_bytes(),
            )
            .await
            .unwrap();
            assert_eq!(r.status, 200, "{}", r.body);
        };
        let status = |id: &'static str| async move {
            let doc = get_json(server.addr, &format!("/v1/serving/orders/{id}")).await;
            doc["fields"]["status"].as_str().unwrap().to_owned()
        };
        post(vec![status_update("o-1", "r-1", "placed", base), status_update("o-2", "r-2", "placed", base)]).await;
        caught_up(server.addr).await;
        assert_eq!(status("o-1").await, "placed");
        // Newer events replace; the cache answers the new value at once.
        post(vec![status_update("o-1", "r-1", "delivered", base + 1800)]).await;
        caught_up(server.addr).await;
        assert_eq!(status("o-1").await, "delivered");
        // An older event for o-1 arrives late, in a batch with a newer one for o-2.
        post(vec![
            status_update("o-1", "r-1", "cooking", base + 600),
            status_update("o-2", "r-2", "cooking", base + 600),
        ])
        .await;
        caught_up(server.addr).await;
        assert_eq!(status("o-1").await, "delivered", "the older event did not overwrite");
        assert_eq!(status("o-2").await, "cooking");

        // Cache and HTTP semantics of a lookup.
        let first = get(server.addr, "/v1/serving/orders/o-2").await;
        assert_eq!(first.header("x-weir-cache"), Some("hit"), "cached by the read above");
        assert_eq!(first.header("cache-control"), Some("max-age=60"));
        let etag = first.header("etag").unwrap().to_owned();
        let headers = [("If-None-Match", etag.as_str())];
        let not_modified =
            request_with_headers(server.addr, "GET", "/v1/serving/orders/o-2", &headers, b"").await.unwrap();
        assert_eq!(not_modified.status, 304);
        let unknown = get(server.addr, "/v1/serving/nope/o-2").await;
        assert_eq!(unknown.status, 404);
        assert!(
            unknown.body.contains("unknown serving table \\\"nope\\\"; this pipeline has: orders"),
            "{}",
            unknown.body
        );
    });
    // The newest values survive a restart (and are read from disk, not the cache).
    assert!(server.stop().success());
    let server = Server::start(&config);
    rt().block_on(async {
        let r = get(server.addr, "/v1/serving/orders/o-1").await;
        assert_eq!(r.header("x-weir-cache"), Some("miss"));
        let doc: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(doc["fields"]["status"], "delivered");
    });
}

#[test]
fn search_answers_400_with_the_reason_for_a_bad_query_and_404_for_an_unknown_index() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_read_config(dir.path(), false);
    let server = Server::start(&config);
    rt().block_on(async {
        for (query, reason) in
            [("nosuchfield:x", "nosuchfield"), ("total:abc", "total:abc"), ("(unclosed", "(unclosed")]
        {
            let r = get(server.addr, &format!("/v1/search/orders?q={}", encode(query))).await;
            assert_eq!(r.status, 400, "{query}: {}", r.body);
            assert!(r.body.contains("invalid query") && r.body.contains(reason), "{query}: {}", r.body);
        }
        let r = get(server.addr, "/v1/search/orders").await;
        assert_eq!(r.status, 400);
        assert!(r.body.contains("give a query"), "{}", r.body);
        let r = get(server.addr, "/v1/search/orders?q=x&limit=5000").await;
        assert_eq!(r.status, 400);
        assert!(r.body.contains("not a number from 1 to 1000"), "{}", r.body);
        let r = get(server.addr, "/v1/search/nope?q=x").await;
        assert_eq!(r.status, 404);
        assert!(r.body.contains("unknown search index \\\"nope\\\"; this pipeline has: orders"), "{}", r.body);
        let r = get(server.addr, "/v1/aggregates/orders").await;
        assert_eq!(r.status, 404, "no aggregator, so no aggregates: {}", r.body);
        assert!(r.body.contains("no warehouse holds aggregates of stream \\\"orders\\\""), "{}", r.body);
    });
}

#[test]
fn hostile_search_queries_are_refused_with_their_bound_and_the_host_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_read_config(dir.path(), false);
    let server = Server::start(&config);
    rt().block_on(async {
        let hostile = [
            (format!("{}a{}", "(".repeat(3000), ")".repeat(3000)), "more than 1024"),
            (format!("{}a{}", "(".repeat(200), ")".repeat(200)), "deeper than 8"),
            (format!("{}a", "NOT ".repeat(200)), "more than 64 terms and operators"),
        ];
        for (query, bound) in &hostile {
            let r = get(server.addr, &format!("/v1/search/orders?q={}", encode(query))).await;
            assert_eq!(r.status, 400, "{bound}: {}", r.body);
            let body: serde_json::Value = serde_json::from_str(&r.body).expect("a JSON error");
            assert_eq!(body["code"], "bad_request", "{}", r.body);
            assert!(body["error"].as_str().is_some_and(|e| e.contains(bound)), "{bound}: {}", r.body);
            assert!(r.body.len() < 1024, "the answer does not echo the whole query: {} bytes", r.body.len());
        }
        for path in ["/healthz", "/v1/search/orders?q=x"] {
            assert_eq!(get(server.addr, path).await.status, 200, "{path} after the hostile queries");
        }
        let r = get(server.addr, "/v1/search/orders?q=x&q=y").await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(
            serde_json::from_str::<serde_json::Value>(&r.body).is_ok(),
            "a bad query string answers JSON: {}",
            r.body
        );
    });
}
