//! The streaming layer through the real binary and HTTP: `weir serve` on embedded
//! defaults, records in over the ingest API, the lake read back.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use weir_client::{HttpResponse, request};
use weir_e2e::{Server, component};
use weir_sinks::read_lake;

pub(crate) const BASE: i64 = 1_795_690_800; // 2026-11-26T11:00:00Z, seconds
pub(crate) const WINDOW: i64 = 15 * 60;

pub(crate) fn ts(secs: i64) -> String {
    weir_events::time::format_rfc3339(secs * 1_000_000)
}

/// A pipeline configuration over the example plugins in `dir`.
pub(crate) fn write_config(dir: &Path, extra_server: &str) -> PathBuf {
    let restaurants = dir.join("restaurants.json");
    let rows: Vec<String> = (1..=5)
        .map(|i| format!("\"r-{i}\": {{\"name\": \"Restaurant {i}\", \"zone\": \"Z{i}\", \"cuisine\": \"c{i}\"}}"))
        .collect();
    std::fs::write(&restaurants, format!("{{{}}}", rows.join(","))).unwrap();
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
data_dir = "{data}"
{extra_server}

[log]
shards = 2

[plugins.orders-parser]
path = "{parser}"
version = "1.0.0"

[plugins.restaurant-enricher]
path = "{enricher}"
version = "1.0.0"

[plugins.restaurant-stats]
path = "{stats}"
version = "1.0.0"

[reference.restaurants]
file = "{restaurants}"

[[streams]]
name = "orders"
parser = "orders-parser"
enrichers = ["restaurant-enricher"]
batch_size = 16

[streams.aggregator]
plugin = "restaurant-stats"
window = "15m"
allowed_lateness = "5m"
"#,
        data = dir.join("data").display(),
        parser = component("orders_parser").display(),
        enricher = component("restaurant_enricher").display(),
        stats = component("restaurant_stats").display(),
        restaurants = restaurants.display(),
    );
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// One order of the test feed, and what the pipeline must make of it.
#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub(crate) line: String,
    pub(crate) restaurant: String,
    pub(crate) placed: i64,
    pub(crate) total_cents: i64,
    pub(crate) delivery_minutes: i64,
    pub(crate) fate: Fate,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Fate {
    Event,
    Malformed,
    UnknownRestaurant,
    TestOrder,
    /// An event time thousands of years ahead: refused so it cannot move the watermark.
    FarFuture,
}

pub(crate) fn orders(n: usize) -> Vec<Order> {
    (0..n)
        .map(|i| {
            let fate = match i {
                _ if i % 23 == 5 => Fate::Malformed,
                _ if i % 37 == 7 => Fate::UnknownRestaurant,
                _ if i % 41 == 9 => Fate::TestOrder,
                _ if i % 53 == 11 => Fate::FarFuture,
                _ => Fate::Event,
            };
            let restaurant = if fate == Fate::UnknownRestaurant { "r-99".to_owned() } else { format!("r-{}", 1 + i % 5) };
            let placed = if fate == Fate::FarFuture { 253_402_041_600 } else { BASE + i as i64 * 10 };
            let delivery_minutes = 15 + (i as i64 % 30);
            let total_cents = 1000 + (i as i64 % 7) * 100 + 25;
            let line = match fate {
                Fate::Malformed => format!("{{\"order_id\":\"o-{i}\",\"restaurant_id\":\"{restaurant}\",\"total\":"),
                _ => format!(
                    "{{\"order_id\":\"o-{i}\",\"restaurant_id\":\"{restaurant}\",\"customer_id\":\"c-{i}\",\"status\":\"delivered\",\"total\":{}.{:02},\"items\":2,\"placed_at\":\"{}\",\"delivered_at\":\"{}\",\"test\":{}}}",
                    total_cents / 100,
                    total_cents % 100,
                    ts(placed),
                    ts(placed + delivery_minutes * 60),
                    fate == Fate::TestOrder
                ),
            };
            Order { line, restaurant, placed, total_cents, delivery_minutes, fate }
        })
        .collect()
}

/// One order a day later per shard: the watermark passes every window of the feed, so
/// all of them are finished (the sentinels' own window stays open).
pub(crate) fn sentinels() -> Vec<Order> {
    let mut by_shard = BTreeMap::new();
    for i in 1..=5 {
        let key = format!("r-{i}");
        by_shard.entry(weir_log::shard_for(Some(&key), b"", 2)).or_insert(key);
    }
    assert_eq!(by_shard.len(), 2, "restaurants r-1..r-5 cover both shards");
    by_shard
        .into_values()
        .map(|restaurant| {
            let placed = BASE + 86_400;
            Order {
                line: format!(
                    "{{\"order_id\":\"sentinel-{restaurant}\",\"restaurant_id\":\"{restaurant}\",\"status\":\"delivered\",\"total\":1.00,\"placed_at\":\"{}\"}}",
                    ts(placed)
                ),
                restaurant,
                placed,
                total_cents: 100,
                delivery_minutes: 0,
                fate: Fate::Event,
            }
        })
        .collect()
}

pub(crate) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

pub(crate) async fn post(addr: SocketAddr, path: &str, content_type: &str, body: &str) -> HttpResponse {
    request(addr, "POST", path, Some(content_type), body.as_bytes()).await.unwrap()
}

pub(crate) async fn send(addr: SocketAddr, batch: &[Order]) {
    let body: Vec<&str> = batch.iter().map(|o| o.line.as_str()).collect();
    let r = post(addr, "/v1/streams/orders/records?key_field=restaurant_id", "application/x-ndjson", &body.join("\n"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let answer: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(answer["records"], batch.len());
}

/// Waits until the stages have checkpointed everything appended. The deadline only ends
/// a test that would otherwise hang: a loaded 2-core machine took over 60 s to catch up on
/// the hostile plugins' records.
pub(crate) async fn caught_up(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let r = request(addr, "GET", "/healthz", None, b"").await.unwrap();
        let health: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        if health["pending"]["orders"] == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "not caught up: {}", r.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The aggregates computed directly from the orders: (window start, restaurant) →
/// (orders, revenue cents, mean delivery minutes).
pub(crate) fn direct_aggregates(orders: &[Order]) -> BTreeMap<(String, String), (i64, i64, f64)> {
    let mut sums: BTreeMap<(String, String), (i64, i64, i64)> = BTreeMap::new();
    for o in orders.iter().filter(|o| o.fate == Fate::Event) {
        let window = ts(o.placed.div_euclid(WINDOW) * WINDOW);
        let e = sums.entry((window, o.restaurant.clone())).or_default();
        e.0 += 1;
        e.1 += o.total_cents;
        e.2 += o.delivery_minutes;
    }
    sums.into_iter().map(|(k, (n, cents, minutes))| (k, (n, cents, minutes as f64 / n as f64))).collect()
}

fn lake(dir: &Path) -> weir_sinks::LakeContents {
    read_lake(&dir.join("data/lake")).unwrap()
}

fn raw_order_ids(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut stack = vec![dir.join("data/lake/raw")];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                stack.push(entry.path());
            } else if entry.path().extension().is_some_and(|e| e == "ndjson") {
                files.push(entry.path());
            }
        }
    }
    let mut ids = Vec::new();
    for file in files {
        for line in std::fs::read_to_string(file).unwrap().lines() {
            let raw: serde_json::Value = serde_json::from_str(line).unwrap();
            let data = raw["data"].as_str().unwrap().to_owned();
            let id = data.split('"').nth(3).unwrap_or_default().to_owned();
            ids.push(id);
        }
    }
    ids
}

fn assert_lake_matches(dir: &Path, sent: &[Order]) {
    let report = lake(dir);
    let events = sent.iter().filter(|o| o.fate == Fate::Event).count();
    assert_eq!(report.raw_records, sent.len(), "every acknowledged record is archived once");
    assert_eq!(report.events, events, "every valid, non-test order becomes one event");
    let mut ids = raw_order_ids(dir);
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before, "no record is archived twice");

    let expected =
        direct_aggregates(&sent.iter().filter(|o| !o.line.contains("sentinel")).cloned().collect::<Vec<_>>());
    let actual: BTreeMap<(String, String), (i64, f64, Option<f64>)> = report
        .aggregates
        .iter()
        .map(|a| ((a.window_start.clone(), a.restaurant.clone()), (a.orders, a.revenue, a.mean_delivery_minutes)))
        .collect();
    assert_eq!(actual.len(), report.aggregates.len(), "one aggregate per window and restaurant");
    assert_eq!(actual.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
    for (key, (orders, cents, mean)) in &expected {
        let (a_orders, a_revenue, a_mean) = actual[key];
        assert_eq!(a_orders, *orders, "{key:?}");
        assert!((a_revenue - *cents as f64 / 100.0).abs() < 1e-6, "{key:?}: {a_revenue} vs {cents}");
        assert!((a_mean.unwrap() - mean).abs() < 1e-6, "{key:?}: {a_mean:?} vs {mean}");
    }

    let mut reasons: HashMap<&str, usize> = HashMap::new();
    for (plugin, reason) in &report.dead_letters {
        let kind = if reason.starts_with("invalid JSON order") {
            assert_eq!(plugin, "orders-parser@1.0.0");
            "malformed"
        } else if reason == "unknown restaurant r-99: not in reference table restaurants" {
            assert_eq!(plugin, "restaurant-enricher@1.0.0");
            "unknown"
        } else if reason.starts_with("event time 9999-12-29T")
            && reason.contains("is more than 7 days after the record arrived")
        {
            assert_eq!(plugin, "orders-parser@1.0.0>restaurant-enricher@1.0.0");
            "future"
        } else {
            panic!("unexpected dead letter {plugin}: {reason}")
        };
        *reasons.entry(kind).or_default() += 1;
    }
    assert_eq!(
        reasons.get("malformed").copied().unwrap_or(0),
        sent.iter().filter(|o| o.fate == Fate::Malformed).count()
    );
    assert_eq!(
        reasons.get("unknown").copied().unwrap_or(0),
        sent.iter().filter(|o| o.fate == Fate::UnknownRestaurant).count()
    );
    assert_eq!(reasons.get("future").copied().unwrap_or(0), sent.iter().filter(|o| o.fate == Fate::FarFuture).count());
}

#[test]
fn ingested_events_land_in_the_lake_exactly_and_aggregates_equal_a_direct_computation() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let server = Server::start(&config);
    let mut sent = orders(400);
    sent.extend(sentinels());
    rt().block_on(async {
        for batch in sent.chunks(50) {
            send(server.addr, batch).await;
        }
        caught_up(server.addr).await;
        let metrics = request(server.addr, "GET", "/metrics", None, b"").await.unwrap();
        assert!(metrics.body.contains("weir_records_in_total{stream=\"orders\"} 402"), "{}", metrics.body);
        assert!(
            metrics.body.contains("weir_dead_letters_total{stream=\"orders\",stage=\"parse\"}"),
            "{}",
            metrics.body
        );
        assert!(metrics.body.contains("weir_shard_lag_records{stream=\"orders\",shard=\"0\"} 0"), "{}", metrics.body);
    });
    let status = server.stop();
    assert!(status.success(), "graceful shutdown: {status}");
    assert_lake_matches(dir.path(), &sent);
}

/// Sends the first half of `sent` to `weir serve --config CONFIG`, kills it with SIGKILL
/// while its stages are mid-stream, restarts it, sends the rest and waits until every
/// record is checkpointed; returns the restarted server.
pub(crate) fn send_across_a_kill_9(config: &Path, sent: &[Order]) -> Server {
    send_across_a_kill_9_with_env(config, sent, &[])
}

/// [`send_across_a_kill_9`] with `env` added to the server's environment.
pub(crate) fn send_across_a_kill_9_with_env(config: &Path, sent: &[Order], env: &[(&str, &str)]) -> Server {
    let (first, second) = sent.split_at(sent.len() / 2);
    let server = Server::start_with_env(config, env);
    rt().block_on(async {
        for batch in first.chunks(10) {
            send(server.addr, batch).await;
        }
    });
    // No waiting: the stages are mid-stream when the process dies.
    server.kill_9();
    let server = Server::start_with_env(config, env);
    rt().block_on(async {
        for batch in second.chunks(10) {
            send(server.addr, batch).await;
        }
        caught_up(server.addr).await;
    });
    server
}

#[test]
fn kill_9_mid_stream_loses_no_acknowledged_event_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let mut sent = orders(300);
    sent.extend(sentinels());
    let server = send_across_a_kill_9(&config, &sent);
    server.stop();
    assert_lake_matches(dir.path(), &sent);
}

/// Puts a file where the raw archive's directory of the pipeline in `dir` must go: every
/// lake write fails (even as root) until the returned file is removed.
pub(crate) fn block_lake_writes(dir: &Path) -> PathBuf {
    let blocker = dir.join("data/lake/raw");
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(&blocker, "not a directory").unwrap();
    blocker
}

#[test]
fn a_blocked_sink_makes_ingest_answer_503_and_everything_is_delivered_after_it_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "max_pending_records = 40");
    let blocker = block_lake_writes(dir.path());
    let server = Server::start(&config);
    let sent = orders(60);
    rt().block_on(async {
        for batch in sent[..30].chunks(10) {
            send(server.addr, batch).await;
        }
        let body: Vec<&str> = sent[30..].iter().map(|o| o.line.as_str()).collect();
        let refused = post(server.addr, "/v1/streams/orders/records", "application/x-ndjson", &body.join("\n")).await;
        assert_eq!(refused.status, 503, "{}", refused.body);
        assert_eq!(refused.header("retry-after"), Some("1"));
        assert!(refused.body.contains("30 records waiting to be processed (limit 40)"), "{}", refused.body);

        // The failing sink shows in /healthz (once it has failed for 5 s), by name and reason.
        let deadline = Instant::now() + Duration::from_secs(30);
        let degraded = loop {
            let health = request(server.addr, "GET", "/healthz", None, b"").await.unwrap();
            if health.status == 503 {
                break health;
            }
            assert!(Instant::now() < deadline, "/healthz never reported the failing lake: {}", health.body);
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let body: serde_json::Value = serde_json::from_str(&degraded.body).unwrap();
        assert_eq!(body["status"], "degraded", "{}", degraded.body);
        let last_error = body["failing_sinks"]["lake"]["last_error"].as_str().unwrap_or_default();
        assert!(!last_error.is_empty(), "{}", degraded.body);
        // /healthz is open: the reason does not show where the host keeps its data.
        let data_dir = dir.path().join("data").display().to_string();
        assert!(!degraded.body.contains(&data_dir), "{}", degraded.body);
        assert!(last_error.contains("<data_dir>"), "the path is written relative to the data directory: {last_error}");

        std::fs::remove_file(&blocker).unwrap();
        caught_up(server.addr).await;
        let healthy = request(server.addr, "GET", "/healthz", None, b"").await.unwrap();
        assert_eq!(healthy.status, 200, "healthy again once the sink writes: {}", healthy.body);
        send(server.addr, &sent[30..]).await;
        caught_up(server.addr).await;
    });
    server.stop();
    let report = lake(dir.path());
    assert_eq!(report.raw_records, 60, "everything acknowledged is delivered once the sink recovers");
}

#[test]
fn malformed_requests_get_a_clear_4xx() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "max_record_bytes = \"1KiB\"\nmax_request_bytes = \"4KiB\"");
    let server = Server::start(&config);
    rt().block_on(async {
        let r = post(server.addr, "/v1/streams/nope/records", "application/x-ndjson", "{}").await;
        assert_eq!(r.status, 404, "{}", r.body);
        assert!(r.body.contains("unknown stream \\\"nope\\\"; this pipeline has: orders"), "{}", r.body);

        let r = post(server.addr, "/v1/streams/orders/records", "application/json", "[{\"a\":").await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body.contains("the body is not JSON"), "{}", r.body);

        let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(2000));
        let r = post(server.addr, "/v1/streams/orders/records", "application/x-ndjson", &format!("{{}}\n{big}")).await;
        assert_eq!(r.status, 413, "{}", r.body);
        assert!(r.body.contains("record 1 is 2010 bytes, over the limit of 1024 bytes per record"), "{}", r.body);

        let r = post(server.addr, "/v1/streams/orders/records", "application/x-ndjson", &"{}\n".repeat(3000)).await;
        assert_eq!(r.status, 413, "{}", r.body);
        assert!(r.body.contains("the request is over the limit of 4096 bytes"), "{}", r.body);
    });
}

#[test]
fn a_record_that_crashes_a_plugin_is_isolated_and_dead_lettered_alone() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    with_misbehaving(&config, "panic_on_order = \"o-12\"", "");
    let server = Server::start(&config);
    let sent: Vec<Order> = orders(40).into_iter().filter(|o| o.fate == Fate::Event).collect();
    assert!(sent.iter().any(|o| o.line.contains("\"o-12\"")));
    rt().block_on(async {
        send(server.addr, &sent).await;
        caught_up(server.addr).await;
    });
    server.stop();
    let report = lake(dir.path());
    assert_eq!(report.events, sent.len() - 1, "every order but the poison one is delivered");
    assert_eq!(report.dead_letters.len(), 1, "{:?}", report.dead_letters);
    let (plugin, reason) = &report.dead_letters[0];
    assert_eq!(plugin, "misbehaving@0.0.1");
    assert!(reason.contains("told to panic on order o-12"), "{reason}");
    assert!(reason.contains("isolated: this record fails the call on its own"), "{reason}");
}

/// Configures the misbehaving enricher in front of the example one with `plugin_config`,
/// and `limits` for it.
fn with_misbehaving(config: &Path, plugin_config: &str, limits: &str) {
    let text = std::fs::read_to_string(config)
        .unwrap()
        .replace("enrichers = [\"restaurant-enricher\"]", "enrichers = [\"misbehaving\", \"restaurant-enricher\"]")
        + &format!(
            "\n[plugins.misbehaving]\npath = \"{}\"\nversion = \"0.0.1\"\nconfig = {{ {plugin_config} }}\nlimits = {{ {limits} }}\n",
            component("misbehaving_enricher").display()
        );
    std::fs::write(config, text).unwrap();
}

#[test]
fn sigterm_stops_the_host_within_its_shutdown_timeout_while_a_plugin_call_spins_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "shutdown_timeout = \"2s\"");
    // A call that spins until its 60 s CPU limit: without the bound, SIGTERM would wait
    // for it.
    with_misbehaving(&config, "loop_on_order = \"o-3\"", "cpu = \"60s\", wall = \"60s\"");
    let server = Server::start(&config);
    let sent: Vec<Order> = orders(40).into_iter().filter(|o| o.fate == Fate::Event).collect();
    assert!(sent.iter().any(|o| o.line.contains("\"o-3\"")));
    rt().block_on(async {
        send(server.addr, &sent).await;
        // The call reaches o-3 at once; give it time to be well inside its spin.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    });
    let signalled = Instant::now();
    let status = server.stop();
    let took = signalled.elapsed();
    assert!(status.success(), "{status:?}");
    // 2 s of timeout plus what a loaded machine takes to drain and flush the rest; far
    // below the 58 s the spinning call had left, which is what the bound is about.
    assert!(
        took < Duration::from_secs(20),
        "SIGTERM took {took:?} with shutdown_timeout 2s (the spinning call had 58 s left)"
    );

    // Every acknowledged record is still there: restarted without the spin, the host
    // delivers all of them.
    let text = std::fs::read_to_string(&config).unwrap().replace("loop_on_order", "unused");
    std::fs::write(&config, text).unwrap();
    let server = Server::start(&config);
    rt().block_on(caught_up(server.addr));
    server.stop();
    let report = lake(dir.path());
    assert_eq!(report.events, sent.len(), "every acknowledged order is delivered after the restart");
    assert!(report.dead_letters.is_empty(), "{:?}", report.dead_letters);
}

/// The column names of every Parquet file under `dir`.
fn parquet_columns(dir: &Path) -> std::collections::BTreeSet<String> {
    use parquet::file::reader::FileReader as _;
    let mut columns = std::collections::BTreeSet::new();
    for path in weir_e2e::parquet_files(dir) {
        let reader = parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        for column in reader.metadata().file_metadata().schema_descr().columns() {
            columns.insert(column.name().to_owned());
        }
    }
    columns
}

#[test]
fn a_plugin_that_names_a_field_per_event_cannot_grow_the_lake_past_the_streams_max_fields() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    // Every event gets a field of its own (`field-<time>`): within each call's limit,
    // but without a bound across calls the lake would get a column per event.
    with_misbehaving(&config, "mode = \"unique-field\"", "");
    let text = std::fs::read_to_string(&config).unwrap().replace("batch_size = 16", "batch_size = 16\nmax_fields = 24");
    std::fs::write(&config, text).unwrap();
    let server = Server::start(&config);
    let sent: Vec<Order> = orders(60).into_iter().filter(|o| o.fate == Fate::Event).collect();
    rt().block_on(async {
        send(server.addr, &sent).await;
        caught_up(server.addr).await;
    });
    server.stop();
    let report = lake(dir.path());
    let refused: Vec<&String> = report
        .dead_letters
        .iter()
        .filter(|(plugin, _)| plugin.ends_with("restaurant-enricher@1.0.0"))
        .map(|(_, reason)| reason)
        .collect();
    assert_eq!(refused.len(), report.dead_letters.len(), "{:?}", report.dead_letters);
    assert!(!refused.is_empty() && report.events > 0, "some events fit, the rest do not");
    assert_eq!(report.events + refused.len(), sent.len(), "every order is delivered or dead-lettered");
    for reason in &refused {
        assert!(reason.contains("of stream orders's events, over its limit of 24 (streams.max_fields)"), "{reason}");
    }
    let per_event: Vec<String> =
        parquet_columns(&dir.path().join("data/lake/events")).into_iter().filter(|c| c.starts_with("field-")).collect();
    assert_eq!(per_event.len(), report.events, "a column per delivered event, and none for the refused: {per_event:?}");
}

/// How many commits the stages of stream `orders` have made once caught up, from
/// `/metrics` (read until two reads agree: a stage counts its commit just after the
/// checkpoint `caught_up` sees).
async fn commits(addr: SocketAddr) -> u64 {
    caught_up(addr).await;
    let read = || async {
        let metrics = request(addr, "GET", "/metrics", None, b"").await.unwrap();
        let line = metrics.body.lines().find(|l| l.starts_with("weir_commit_seconds_count{stream=\"orders\"}"));
        line.and_then(|l| l.rsplit(' ').next()).map_or(0, |n| n.parse::<u64>().unwrap())
    };
    let mut last = read().await;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = read().await;
        if now == last {
            return now;
        }
        last = now;
    }
}

/// One shard (so one stage commits), `server_keys` added to `[server]` and `stream_keys`
/// to the stream.
fn one_shard_config(dir: &Path, server_keys: &str, stream_keys: &str) -> PathBuf {
    let config = write_config(dir, server_keys);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("shards = 2", "shards = 1")
        .replace("batch_size = 16", &format!("batch_size = 16\n{stream_keys}"));
    std::fs::write(&config, text).unwrap();
    config
}

#[test]
fn appends_that_trickle_in_within_the_commit_interval_are_committed_together() {
    let dir = tempfile::tempdir().unwrap();
    let interval = Duration::from_secs(4);
    let server = Server::start(&one_shard_config(dir.path(), "", "commit_interval = \"4s\""));
    let sent = orders(5);
    rt().block_on(async {
        send(server.addr, &sent[..1]).await;
        assert_eq!(commits(server.addr).await, 1, "after a quiet spell an append is committed at once");
        // A second commit with the plugins warm, so the next appends come within its interval.
        let second_sent = Instant::now();
        send(server.addr, &sent[1..2]).await;
        assert_eq!(commits(server.addr).await, 2);
        // Three appends, 150 ms apart, within the interval of that commit: one commit,
        // which begins no sooner than the interval after the second did.
        for order in &sent[2..] {
            tokio::time::sleep(Duration::from_millis(150)).await;
            send(server.addr, std::slice::from_ref(order)).await;
        }
        assert_eq!(commits(server.addr).await, 3);
        assert!(second_sent.elapsed() >= interval, "{:?}", second_sent.elapsed());
    });
    server.stop();
    assert_raw_records_and_events_delivered_once(dir.path(), &sent);
}

#[test]
fn a_full_commit_waiting_does_not_wait_out_the_commit_interval() {
    let dir = tempfile::tempdir().unwrap();
    // Ten minutes between commits unless `commit_size` records are waiting: catching up
    // on 3 full commits within `caught_up`'s deadline means none of them waited.
    let server = Server::start(&one_shard_config(dir.path(), "", "commit_size = 2\ncommit_interval = \"10m\""));
    let sent = orders(6);
    rt().block_on(async {
        send(server.addr, &sent).await;
        assert_eq!(commits(server.addr).await, 3);
    });
    server.stop();
    assert_raw_records_and_events_delivered_once(dir.path(), &sent);
}

#[test]
fn ingest_refused_for_backpressure_ends_a_stage_s_wait_for_the_commit_interval() {
    let dir = tempfile::tempdir().unwrap();
    // At most 10 records pending: a full commit is 5 (half the shard's share), so 4
    // waiting records wait out the ten minutes, unless a refusal cuts the wait short.
    let config = one_shard_config(dir.path(), "max_pending_records = 10", "commit_interval = \"10m\"");
    let server = Server::start(&config);
    let sent = orders(12);
    rt().block_on(async {
        send(server.addr, &sent[..1]).await;
        assert_eq!(commits(server.addr).await, 1);
        send(server.addr, &sent[1..5]).await;
        let lines: Vec<&str> = sent[5..].iter().map(|o| o.line.as_str()).collect();
        let path = "/v1/streams/orders/records?key_field=restaurant_id";
        let mut refusals = 0;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let r = post(server.addr, path, "application/x-ndjson", &lines.join("\n")).await;
            if r.status == 200 {
                break;
            }
            assert_eq!(r.status, 503, "{}", r.body);
            refusals += 1;
            assert!(Instant::now() < deadline, "still refused after {refusals} tries: {}", r.body);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(refusals >= 1, "7 more records than the 10 pending allowed with 4 waiting");
        assert_eq!(commits(server.addr).await, 3, "the waiting 4, then the 7");
    });
    server.stop();
    assert_raw_records_and_events_delivered_once(dir.path(), &sent);
}

fn assert_raw_records_and_events_delivered_once(dir: &Path, sent: &[Order]) {
    let report = lake(dir);
    assert_eq!(report.raw_records, sent.len());
    assert_eq!(report.events, sent.iter().filter(|o| o.fate == Fate::Event).count());
}

#[test]
fn an_aggregation_whose_open_groups_reach_max_open_state_dead_letters_events_of_new_groups_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("window = \"15m\"", "window = \"15m\"\nmax_open_state = \"64B\"");
    assert!(text.contains("max_open_state"));
    std::fs::write(&config, text).unwrap();
    let server = Server::start(&config);
    let sent: Vec<Order> = orders(200).into_iter().filter(|o| o.fate == Fate::Event).collect();
    rt().block_on(async {
        send(server.addr, &sent).await;
        caught_up(server.addr).await;
        let health = request(server.addr, "GET", "/healthz", None, b"").await.unwrap();
        assert_eq!(health.status, 200, "the host stays healthy: {}", health.body);
    });
    server.stop();
    let report = lake(dir.path());
    assert_eq!(report.events, sent.len(), "the events themselves are all delivered");
    assert!(!report.dead_letters.is_empty(), "64 bytes of open state fill at once");
    for (plugin, reason) in &report.dead_letters {
        assert_eq!(plugin, "restaurant-stats@1.0.0");
        assert!(reason.contains("at its limit of 64 (streams.aggregator.max_open_state)"), "{reason}");
        assert!(reason.contains("cannot open group 2026-11-26T"), "{reason}");
    }
    assert!(report.dead_letters.len() < sent.len(), "events of the groups already open still count");
}

#[test]
fn the_demo_runs_end_to_end_and_reports_the_lake() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let plugins = component("orders_parser").parent().unwrap().to_path_buf();
    let run = weir_e2e::weir(&[&"demo", &"--events", &"300", &"--data-dir", &data, &"--plugins", &plugins], dir.path());
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("300 order records sent over HTTP, 300 acknowledged"), "{}", run.all());
    assert!(run.stdout.contains("raw archive  300 records"), "{}", run.all());
    assert!(
        run.stdout.contains("unknown restaurant r-99") || run.stdout.contains("invalid JSON order"),
        "{}",
        run.all()
    );
    assert!(run.stdout.contains("aggregates per restaurant and window"), "{}", run.all());
}
