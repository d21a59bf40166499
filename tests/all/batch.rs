//! The batch layer through the real binary: `weir batch run` over a day of the raw
//! archive the stream wrote, its levels in the lake (read by DuckDB) and the warehouse,
//! the Lambda merge of `/v1/aggregates`, reruns, kill -9 mid-run and a backfill with a
//! pinned plugin version.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use weir_client::request;
use weir_e2e::ballista_cluster::{ClusterCerts, LocalCluster, tls_answer};
use weir_e2e::{Run, Server, weir, weir_bin};

use crate::streaming::{caught_up, post, rt, ts, write_config};

const DAY: i64 = 86_400;
const WINDOW: i64 = 15 * 60;

const SINKS_AND_JOB: &str = r#"
[streams.routes]
raw = ["lake"]
events = ["lake", "warehouse"]
aggregates = ["lake", "warehouse"]
dead_letters = ["dead-letters"]

[sinks.lake]
type = "lake"

[sinks.dead-letters]
type = "dead-letters"

[sinks.warehouse]
type = "warehouse"

[[jobs]]
name = "orders-daily"
stream = "orders"
lateness = "1h"
batch_size = 64

[[jobs.levels]]
name = "restaurant-window"
aggregator = "restaurant-stats"
window = "15m"
sinks = ["warehouse"]
replaces_stream_aggregates = true

[[jobs.levels]]
name = "restaurant-day"
sql = "SELECT restaurant_id AS _key, date_trunc('day', _time) AS _time, count(*) AS orders, sum(total) AS revenue FROM events GROUP BY 1, 2"
sinks = ["lake", "warehouse"]

[[jobs.levels]]
name = "zone-hour"
sql = "SELECT zone AS _key, date_trunc('hour', _time) AS _time, count(*) AS orders FROM events GROUP BY 1, 2"
sinks = ["lake", "warehouse"]

[[jobs.levels]]
name = "cuisine-day"
sql = "SELECT cuisine AS _key, date_trunc('day', _time) AS _time, count(*) AS orders, avg(total) AS mean_total FROM events GROUP BY 1, 2"
sinks = ["lake", "warehouse"]

# The stream's own events in the lake, as a second input.
[[jobs.tables]]
name = "stream_events"
path = "events/stream=orders"
partitions = ["date"]

# A reference table of the configuration, joined in SQL.
[[jobs.tables]]
name = "restaurants"
reference = "restaurants"

[[jobs.levels]]
name = "cuisine-day-joined"
sql = "SELECT r.cuisine AS _key, date_trunc('day', e._time) AS _time, count(*) AS orders FROM events e JOIN restaurants r ON e.restaurant_id = r._key GROUP BY 1, 2"
sinks = ["lake"]

[[jobs.levels]]
name = "lake-check"
sql = "SELECT count(*) AS stream_events, count(DISTINCT order_id) AS orders FROM stream_events"
sinks = ["lake"]
"#;

/// An order of today (UTC): its line, restaurant, event time (seconds), total in cents.
#[derive(Debug, Clone)]
struct Order {
    line: String,
    restaurant: String,
    placed: i64,
    cents: i64,
    valid: bool,
}

fn today() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    now.div_euclid(DAY) * DAY
}

fn order(i: usize, restaurant: &str, placed: i64) -> Order {
    let cents = 1000 + (i as i64 % 7) * 100 + 25;
    let line = format!(
        "{{\"order_id\":\"b-{i}\",\"restaurant_id\":\"{restaurant}\",\"status\":\"delivered\",\"total\":{}.{:02},\"items\":1,\"placed_at\":\"{}\",\"delivered_at\":\"{}\"}}",
        cents / 100,
        cents % 100,
        ts(placed),
        ts(placed + 20 * 60)
    );
    Order { line, restaurant: restaurant.to_owned(), placed, cents, valid: true }
}

/// 150 orders between 01:00 and 01:50 today, a malformed one among them, then one order
/// per restaurant at 04:00 (the stream's windows of 01:xx close).
fn feed(day: i64) -> Vec<Order> {
    let mut orders: Vec<Order> =
        (0..150).map(|i| order(i, &format!("r-{}", 1 + i % 5), day + 3600 + i as i64 * 20)).collect();
    orders[17] = Order {
        line: "{\"order_id\":\"broken\",\"total\":".to_owned(),
        restaurant: "r-3".into(),
        placed: day + 3600,
        cents: 0,
        valid: false,
    };
    orders.extend((1..=5).map(|r| order(1000 + r, &format!("r-{r}"), day + 4 * 3600)));
    orders
}

/// Three orders of r-1 at 01:01 sent after the 01:00 window closed: the stream
/// dead-letters them as late, the batch recomputation counts them.
fn late_orders(day: i64) -> Vec<Order> {
    (0..3).map(|i| order(2000 + i, "r-1", day + 3660)).collect()
}

async fn send(addr: SocketAddr, orders: &[Order]) {
    let body: Vec<&str> = orders.iter().map(|o| o.line.as_str()).collect();
    let r = post(addr, "/v1/streams/orders/records?key_field=restaurant_id", "application/x-ndjson", &body.join("\n"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// (window start, restaurant) → (orders, revenue cents), straight from the orders.
fn direct(orders: &[Order]) -> BTreeMap<(String, String), (i64, i64)> {
    let mut sums = BTreeMap::new();
    for o in orders.iter().filter(|o| o.valid) {
        let e: &mut (i64, i64) =
            sums.entry((ts(o.placed.div_euclid(WINDOW) * WINDOW), o.restaurant.clone())).or_default();
        e.0 += 1;
        e.1 += o.cents;
    }
    sums
}

/// `/v1/aggregates/orders` of today: (window start, restaurant) → (orders, revenue cents,
/// layer).
async fn served(addr: SocketAddr, day: i64) -> BTreeMap<(String, String), (i64, i64, String)> {
    let path = format!("/v1/aggregates/orders?from={}&to={}", ts(day), ts(day + DAY));
    let r = request(addr, "GET", &path, None, b"").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let mut rows = BTreeMap::new();
    for row in body["rows"].as_array().unwrap() {
        let fields = &row["fields"];
        let key = (row["time"].as_str().unwrap().to_owned(), row["key"].as_str().unwrap().to_owned());
        let revenue = (fields["revenue"].as_f64().unwrap() * 100.0).round() as i64;
        let layer = row["layer"].as_str().unwrap_or("stream").to_owned();
        assert!(
            rows.insert(key.clone(), (fields["orders"].as_i64().unwrap(), revenue, layer)).is_none(),
            "{key:?} served twice: {}",
            r.body
        );
    }
    rows
}

fn batch_run(config: &Path, cache: &Path, day: i64, extra: &[&str]) -> Run {
    let period = ts(day);
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
        vec![&"batch", &"run", &"orders-daily", &"--config", &config, &"--period", &period];
    for arg in extra {
        args.push(arg);
    }
    weir(&args, cache)
}

fn duckdb(script: &str) -> String {
    let python =
        std::env::var("WEIR_TEST_PYTHON").unwrap_or_else(|_| "/var/tmp/weir-tools/test-venv/bin/python".into());
    let output = std::process::Command::new(&python).arg("-c").arg(script).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "duckdb: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// Per level, DuckDB's `count(*)` and `sum(orders)` over the level's Parquet files in the
/// lake and in the warehouse.
fn level_sums(data: &Path) -> BTreeMap<String, (i64, i64, i64, i64)> {
    let mut sums = BTreeMap::new();
    for level in ["restaurant-day", "zone-hour", "cuisine-day"] {
        let script = format!(
            "import duckdb\n\
             l = duckdb.sql(\"select count(*), sum(orders) from read_parquet('{d}/lake/aggregates/job=orders-daily.{level}/**/*.parquet')\").fetchone()\n\
             w = duckdb.sql(\"select count(*), sum(orders) from read_parquet('{d}/warehouse/aggregates/orders-daily.{level}/*/*.parquet', hive_partitioning=true)\").fetchone()\n\
             print(l[0], l[1], w[0], w[1])\n",
            d = data.display()
        );
        let out = duckdb(&script);
        let n: Vec<i64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
        sums.insert(level.to_owned(), (n[0], n[1], n[2], n[3]));
    }
    sums
}

fn config_with_job(dir: &Path) -> PathBuf {
    let config = write_config(dir, "");
    let text = std::fs::read_to_string(&config).unwrap() + SINKS_AND_JOB;
    std::fs::write(&config, text).unwrap();
    config
}

fn manifest_path(dir: &Path, day: i64) -> PathBuf {
    let run = ts(day).replace(['-', ':'], "");
    dir.join(format!("data/lake/_jobs/orders-daily/{run}.json"))
}

#[test]
fn a_daily_job_recomputes_the_day_at_three_levels_and_replaces_the_stream_aggregates() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let config = config_with_job(dir.path());
    let day = today();
    let sent = feed(day);
    let late = late_orders(day);
    let server = Server::start(&config);
    let stream_view = rt().block_on(async {
        send(server.addr, &sent).await;
        caught_up(server.addr).await;
        send(server.addr, &late).await;
        caught_up(server.addr).await;
        served(server.addr, day).await
    });
    assert!(server.stop().success());
    // The stream dropped the late orders: its 01:00 window of r-1 misses them.
    let everything: Vec<Order> = sent.iter().chain(&late).cloned().collect();
    let expected = direct(&everything);
    let key = (ts(day + 3600), "r-1".to_owned());
    assert_eq!(stream_view[&key].0 + 3, expected[&key].0, "the stream layer missed the late orders");
    assert!(stream_view.values().all(|row| row.2 == "stream"), "no batch run yet: {stream_view:?}");

    // A run that fails (a parser version the registry does not have) counts for nothing
    // and `weir batch list` says so, with the error; the next run that completes removes
    // the record.
    let failed = batch_run(&config, &cache, day, &["--plugin", "orders-parser@9.9.9"]);
    assert_ne!(failed.code, 0, "{}", failed.all());
    assert!(!manifest_path(dir.path(), day).exists());
    let list = weir(&[&"batch", &"list", &"--config", &config], &cache);
    assert_eq!(list.code, 0, "{}", list.all());
    let jobs: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let last = &jobs[0]["last_run"];
    assert_eq!((last["status"].as_str(), last["trigger"].as_str()), (Some("failed"), Some("on-demand")), "{jobs}");
    assert!(last["error"].as_str().is_some_and(|e| e.contains("9.9.9")), "{jobs}");
    let failure_record = dir.path().join("data/lake/_jobs/orders-daily/failed/last.json");
    assert!(failure_record.exists(), "{}", failure_record.display());

    let run = batch_run(&config, &cache, day, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(!failure_record.exists(), "the completed run removed the failure record");
    let manifest: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(manifest["records"], everything.len(), "every record of the day read: {manifest}");
    assert_eq!(manifest["events"], everything.len() - 1, "every valid order an event: {manifest}");
    assert_eq!(manifest["dead_letters"], 1, "the malformed order dead-lettered: {manifest}");
    assert_eq!(manifest["plugins"][0], "orders-parser@1.0.0");
    assert!(manifest_path(dir.path(), day).exists());
    // Progress (records, bytes of the archive's files, elapsed, ETA) and a summary, on
    // standard error; the manifest alone on standard output.
    let run_id = manifest["run"].as_str().unwrap();
    assert!(
        run.stderr.contains(&format!("orders-daily {run_id}: "))
            && run.stderr.contains(" MB in ")
            && run.stderr.contains("ETA"),
        "{}",
        run.stderr
    );
    let summary = format!("job orders-daily run {run_id} completed in ");
    assert!(run.stderr.contains(&summary) && run.stderr.contains("1 dead letters; "), "{}", run.stderr);
    assert!(run.stderr.contains("restaurant-day 5 rows"), "{}", run.stderr);
    // `weir batch list`: the job, its schedule and its last run.
    let list = weir(&[&"batch", &"list", &"--config", &config], &cache);
    assert_eq!(list.code, 0, "{}", list.all());
    let jobs: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let last = &jobs[0]["last_run"];
    assert_eq!((jobs[0]["job"].as_str(), last["run"].as_str()), (Some("orders-daily"), Some(run_id)), "{jobs}");
    assert_eq!((last["status"].as_str(), last["records"].as_u64()), (Some("completed"), Some(everything.len() as u64)));
    assert!(last["duration_seconds"].as_f64().is_some_and(|s| s >= 0.0), "{jobs}");
    let dead = std::fs::read_to_string(
        walk(&dir.path().join("data/lake/dead-letters/job=orders-daily")).first().expect("the job's dead letters"),
    )
    .unwrap();
    assert!(dead.contains("broken") && dead.contains("orders-parser@1.0.0"), "{dead}");

    // The Lambda merge: today's windows now come from the batch view, late orders in.
    let server = Server::start(&config);
    let merged = rt().block_on(served(server.addr, day));
    let batch_rows: BTreeMap<_, _> = merged.iter().map(|(k, v)| (k.clone(), (v.0, v.1))).collect();
    assert_eq!(batch_rows, expected, "the batch view equals the direct sums over every order");
    assert!(merged.values().all(|row| row.2 == "batch"), "{merged:?}");
    assert!(server.stop().success());

    // Three levels in the lake and the warehouse, read by DuckDB.
    let valid = (everything.len() - 1) as i64;
    let sums = level_sums(&dir.path().join("data"));
    assert_eq!(sums["restaurant-day"], (5, valid, 5, valid), "{sums:?}");
    assert_eq!(sums["cuisine-day"], (5, valid, 5, valid), "{sums:?}");
    assert_eq!(sums["zone-hour"].1, valid, "{sums:?}");
    assert_eq!(sums["zone-hour"].0, 10, "5 zones in the 01:00 hour and in the 04:00 hour: {sums:?}");
    // A [[jobs.tables]] input: the stream's events in the lake, read as Parquet.
    let check = duckdb(&format!(
        "import duckdb\nprint(*duckdb.sql(\"select stream_events, orders from read_parquet('{}/data/lake/aggregates/job=orders-daily.lake-check/**/*.parquet')\").fetchone())\n",
        dir.path().display()
    ));
    assert_eq!(check.split_whitespace().collect::<Vec<_>>(), [valid.to_string(), valid.to_string()], "{check}");
    // A reference table as an SQL table: the join gives the cuisine level again.
    let joined = duckdb(&format!(
        "import duckdb\nprint(*duckdb.sql(\"select count(*), sum(orders), count(distinct _key) from read_parquet('{}/data/lake/aggregates/job=orders-daily.cuisine-day-joined/**/*.parquet')\").fetchone())\n",
        dir.path().display()
    ));
    assert_eq!(joined.split_whitespace().collect::<Vec<_>>(), ["5", &valid.to_string(), "5"], "{joined}");

    // A rerun of the period overwrites: same rows, no doubles.
    let files_before = walk(&dir.path().join("data/lake/aggregates"));
    let rerun = batch_run(&config, &cache, day, &[]);
    assert_eq!(rerun.code, 0, "{}", rerun.all());
    assert_eq!(level_sums(&dir.path().join("data")), sums, "a rerun changes nothing");
    assert_eq!(walk(&dir.path().join("data/lake/aggregates")), files_before);

    // A period larger than the job may hold in memory is refused while it is read,
    // before anything is delivered: no object of any sink changes.
    let small = dir.path().join("small.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&small, text.replacen("batch_size = 64\n", "batch_size = 64\nmax_input_bytes = \"1KiB\"\n", 1))
        .unwrap();
    let outputs = || {
        let mut files = walk(&dir.path().join("data/lake/aggregates"));
        files.extend(walk(&dir.path().join("data/lake/events")));
        files.extend(walk(&dir.path().join("data/warehouse")));
        let mut files: Vec<_> = files.into_iter().map(|f| (std::fs::read(&f).unwrap(), f)).collect();
        files.sort_by(|a, b| a.1.cmp(&b.1));
        files
    };
    let before = outputs();
    assert!(!before.is_empty());
    let refused = batch_run(&small, &cache, day, &[]);
    assert_ne!(refused.code, 0, "{}", refused.all());
    assert!(
        refused.stderr.contains("job orders-daily period")
            && refused.stderr.contains("more than the job's max_input_bytes (1024;"),
        "the refusal names the job, the period and the limit: {}",
        refused.all()
    );
    assert!(outputs() == before, "a refused run delivers nothing");
}

/// A level served by key and indexed for search, for [`a_rerun_that_writes_fewer_rows_removes_the_others_from_the_serving_store_and_the_search_index`].
const SERVED_LEVEL: &str = r#"
[sinks.restaurant-days]
type = "serving"

[sinks.restaurant-days-search]
type = "search"
index = "restaurant-days"

[[jobs.levels]]
name = "served-day"
sql = "SELECT restaurant_id AS _key, date_trunc('day', _time) AS _time, count(*) AS orders FROM events GROUP BY 1, 2"
sinks = ["restaurant-days", "restaurant-days-search"]
"#;

/// Per restaurant r-1…r-5: the served document's (orders, `source.seq`) (`None`: 404),
/// and how many search documents have its key.
async fn served_days(addr: SocketAddr) -> BTreeMap<String, (Option<(i64, i64)>, u64)> {
    let mut found = BTreeMap::new();
    for r in 1..=5 {
        let key = format!("r-{r}");
        let doc = request(addr, "GET", &format!("/v1/serving/restaurant-days/{key}"), None, b"").await.unwrap();
        let served = match doc.status {
            200 => {
                let body: serde_json::Value = serde_json::from_str(&doc.body).unwrap();
                Some((body["fields"]["orders"].as_i64().unwrap(), body["source"]["seq"].as_i64().unwrap()))
            }
            404 => None,
            other => panic!("serving answered {other}: {}", doc.body),
        };
        let hits = request(addr, "GET", &format!("/v1/search/restaurant-days?q=key:{key}"), None, b"").await.unwrap();
        assert_eq!(hits.status, 200, "{}", hits.body);
        let hits: serde_json::Value = serde_json::from_str(&hits.body).unwrap();
        found.insert(key, (served, hits["total"].as_u64().unwrap()));
    }
    found
}

#[test]
fn a_rerun_that_writes_fewer_rows_removes_the_others_from_the_serving_store_and_the_search_index() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let config = config_with_job(dir.path());
    let text = std::fs::read_to_string(&config).unwrap() + SERVED_LEVEL;
    std::fs::write(&config, &text).unwrap();
    let day = today();
    let sent = feed(day);
    let server = Server::start(&config);
    rt().block_on(async {
        send(server.addr, &sent).await;
        caught_up(server.addr).await;
    });
    assert!(server.stop().success());
    let orders_of = |r: usize| sent.iter().filter(|o| o.valid && o.restaurant == format!("r-{r}")).count() as i64;

    let first = batch_run(&config, &cache, day, &[]);
    assert_eq!(first.code, 0, "{}", first.all());
    let server = Server::start(&config);
    let before = rt().block_on(served_days(server.addr));
    assert!(server.stop().success());
    for r in 1..=5 {
        // Rows in key order: r-N is row N-1 of the level.
        let expected = (Some((orders_of(r), r as i64 - 1)), 1);
        assert_eq!(before[&format!("r-{r}")], expected, "{before:?}");
    }

    // The data team fixes the level's SQL: r-2's orders no longer count. The rerun writes
    // four rows; r-3…r-5 move up one position.
    let fixed = text.replace(
        "count(*) AS orders FROM events GROUP BY 1, 2\"\nsinks = [\"restaurant-days\"",
        "count(*) AS orders FROM events WHERE restaurant_id <> 'r-2' GROUP BY 1, 2\"\nsinks = [\"restaurant-days\"",
    );
    assert_ne!(fixed, text);
    std::fs::write(&config, &fixed).unwrap();
    let rerun = batch_run(&config, &cache, day, &[]);
    assert_eq!(rerun.code, 0, "{}", rerun.all());
    let server = Server::start(&config);
    let after = rt().block_on(served_days(server.addr));
    assert!(server.stop().success());
    assert_eq!(after["r-2"], (None, 0), "the earlier run's r-2 is gone from both sinks: {after:?}");
    assert_eq!(after["r-1"], (Some((orders_of(1), 0)), 1));
    for r in 3..=5 {
        // Written fresh at its new position, not kept as the earlier row it replaces.
        let expected = (Some((orders_of(r), r as i64 - 2)), 1);
        assert_eq!(after[&format!("r-{r}")], expected, "{after:?}");
    }
    let run = ts(day).replace(['-', ':'], "");
    let ledger: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(format!("data/lake/_jobs/orders-daily/kept/{run}.json"))).unwrap(),
    )
    .unwrap();
    let served = ledger["sinks"]["restaurant-days"]["orders-daily.served-day"].as_array().unwrap();
    assert_eq!(served.len(), 4, "{ledger}");
    assert!(served.iter().all(|k| k["key"] != "r-2"), "{ledger}");

    // Without the level, a rerun removes everything it wrote.
    let dropped = fixed.split("\n[[jobs.levels]]\nname = \"served-day\"").next().unwrap().to_owned();
    std::fs::write(&config, &dropped).unwrap();
    let rerun = batch_run(&config, &cache, day, &[]);
    assert_eq!(rerun.code, 0, "{}", rerun.all());
    std::fs::write(&config, &fixed).unwrap();
    let server = Server::start(&config);
    let emptied = rt().block_on(served_days(server.addr));
    assert!(server.stop().success());
    assert!(emptied.values().all(|v| *v == (None, 0)), "{emptied:?}");
}

#[test]
fn a_run_killed_midway_shows_nothing_and_its_rerun_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let config = config_with_job(dir.path());
    let day = today();
    let sent = feed(day);
    let server = Server::start(&config);
    rt().block_on(async {
        send(server.addr, &sent).await;
        caught_up(server.addr).await;
    });
    assert!(server.stop().success());
    let first = batch_run(&config, &cache, day, &[]);
    assert_eq!(first.code, 0, "{}", first.all());
    let complete = level_sums(&dir.path().join("data"));

    // Kill reruns at different moments after each removed the earlier run's manifest (a
    // rerun's first write), counted from that removal rather than from the start, which
    // takes however long a loaded machine makes it: after each kill, the period either
    // has its manifest and the complete figures, or no manifest (readers fall back to the
    // stream).
    let mut killed_before_the_manifest = 0;
    for delay_ms in [0, 20, 80, 200, 500] {
        let mut child = std::process::Command::new(weir_bin())
            .args(["batch", "run", "orders-daily", "--config"])
            .arg(&config)
            .args(["--period", &ts(day)])
            .env("WEIR_CACHE_DIR", &cache)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while manifest_path(dir.path(), day).exists() && child.try_wait().unwrap().is_none() {
            assert!(started.elapsed() < Duration::from_secs(120), "the rerun never removed the earlier manifest");
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        let _ = child.wait();
        if !finished && !manifest_path(dir.path(), day).exists() {
            killed_before_the_manifest += 1;
            let server = Server::start(&config);
            let view = rt().block_on(served(server.addr, day));
            assert!(view.values().all(|row| row.2 == "stream"), "a killed run shows nothing: {view:?}");
            assert!(server.stop().success());
        } else if manifest_path(dir.path(), day).exists() {
            assert_eq!(level_sums(&dir.path().join("data")), complete, "a manifest stands for complete output");
        }
    }
    assert!(killed_before_the_manifest > 0, "no kill landed before the manifest; the test proves nothing");
    let rerun = batch_run(&config, &cache, day, &[]);
    assert_eq!(rerun.code, 0, "{}", rerun.all());
    assert_eq!(level_sums(&dir.path().join("data")), complete, "the rerun after the kills is complete, no doubles");
    let server = Server::start(&config);
    let view = rt().block_on(served(server.addr, day));
    assert!(view.values().all(|row| row.2 == "batch"), "{view:?}");
}

#[test]
fn a_backfill_with_a_pinned_parser_version_replaces_the_period_and_names_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let config = config_with_job(dir.path());
    let day = today();
    let sent = feed(day);
    let token = "backfill-admin-token";
    let server = Server::start_with_env(&config, &[("WEIR_ADMIN_TOKEN", token)]);
    rt().block_on(async {
        send(server.addr, &sent).await;
        caught_up(server.addr).await;
        let bytes = std::fs::read(weir_e2e::component("orders_parser")).unwrap();
        let auth = format!("Bearer {token}");
        let r = weir_client::request_with_headers(
            server.addr,
            "POST",
            "/v1/plugins/orders-parser/versions?version=3.0.0",
            &[("Content-Type", "application/octet-stream"), ("Authorization", auth.as_str())],
            &bytes,
        )
        .await
        .unwrap();
        assert!(r.status == 200 || r.status == 201, "{}", r.body);
    });
    assert!(server.stop().success());
    let first = batch_run(&config, &cache, day, &[]);
    assert_eq!(first.code, 0, "{}", first.all());
    let sums = level_sums(&dir.path().join("data"));

    let from = ts(day);
    let to = ts(day + DAY);
    let backfill = weir(
        &[
            &"batch",
            &"backfill",
            &"--config",
            &config,
            &"--stream",
            &"orders",
            &"--from",
            &from,
            &"--to",
            &to,
            &"--plugin",
            &"orders-parser@3.0.0",
        ],
        &cache,
    );
    assert_eq!(backfill.code, 0, "{}", backfill.all());
    assert!(backfill.stdout.contains("orders-parser@3.0.0"), "{}", backfill.all());
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(manifest_path(dir.path(), day)).unwrap()).unwrap();
    assert_eq!(manifest["trigger"], "backfill");
    assert_eq!(manifest["plugins"][0], "orders-parser@3.0.0", "{manifest}");
    assert_eq!(level_sums(&dir.path().join("data")), sums, "the backfill replaced the period: none doubled");
    let lineage = duckdb(&format!(
        "import duckdb\nprint(duckdb.sql(\"select distinct _lineage from read_parquet('{}/data/lake/aggregates/job=orders-daily.restaurant-day/**/*.parquet')\").fetchall())\n",
        dir.path().display()
    ));
    assert!(lineage.contains("orders-parser@3.0.0") && !lineage.contains("orders-parser@1.0.0"), "{lineage}");

    let unknown =
        weir(&[&"batch", &"run", &"orders-daily", &"--config", &config, &"--plugin", &"orders-parser@9.9.9"], &cache);
    assert_ne!(unknown.code, 0);
    assert!(unknown.stderr.contains("no version \"9.9.9\""), "{}", unknown.all());
}

/// What a run's manifest says of its data, without its times and trigger.
fn manifest_figures(manifest: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "records": manifest["records"],
        "events": manifest["events"],
        "dead_letters": manifest["dead_letters"],
        "plugins": manifest["plugins"],
        "levels": manifest["levels"],
    })
}

#[test]
fn a_run_on_a_ballista_cluster_of_two_executors_equals_the_local_run() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, _, _) = cluster_run_equals_local_run(dir.path(), None);
    // Ballista logs through the `log` crate; weir routes it into its own log, so the
    // scheduler's record of each executor registering (at info, which LocalCluster
    // turns on for that module) is there.
    let registered = cluster.logs().matches("Received register executor request").count();
    assert_eq!(registered, 2, "{}", cluster.logs());
}

#[test]
fn over_mutual_tls_the_cluster_run_equals_the_local_run_and_a_planner_without_a_certificate_of_its_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let certs = ClusterCerts::from_docs(dir.path());
    let (cluster, config, day) = cluster_run_equals_local_run(dir.path(), Some(certs.clone()));
    assert!(cluster.logs().contains("listening on df://127.0.0.1") && cluster.logs().contains("over mutual TLS"));
    let cache = dir.path().join("cache");
    let plain = batch_run(&config, &cache, day, &["--cluster", &cluster.url]);
    assert_ne!(plain.code, 0, "a planner without TLS got through: {}", plain.all());
    assert!(plain.stderr.contains(&cluster.url), "the error names the cluster: {}", plain.all());
    let foreign = ClusterCerts::generate(dir.path(), "foreign");
    let foreign_args = foreign.args();
    let mut args = vec!["--cluster", &cluster.url];
    args.extend(foreign_args.iter().map(String::as_str));
    let refused = batch_run(&config, &cache, day, &args);
    assert_ne!(refused.code, 0, "a certificate of another CA got through: {}", refused.all());
    assert!(
        refused.stderr.contains(&format!("on cluster {}", cluster.url)) && refused.stderr.contains("Certificate"),
        "the error names the cluster and the certificate: {}",
        refused.all()
    );
    // A planner that trusts the cluster's CA but presents another CA's certificate stops
    // at start, before it connects: its own certificate would be refused.
    let impostor = ClusterCerts { ca: certs.ca.clone(), ..foreign.clone() };
    let impostor_args = impostor.args();
    let mut args = vec!["--cluster", &cluster.url];
    args.extend(impostor_args.iter().map(String::as_str));
    let refused = batch_run(&config, &cache, day, &args);
    assert_ne!(refused.code, 0, "a client certificate of another CA got through: {}", refused.all());
    assert!(
        refused.stderr.contains("foreign-cert.pem") && refused.stderr.contains("not signed by this CA"),
        "{}",
        refused.all()
    );
    // And the scheduler checks a client's certificate, not only that it speaks TLS: a bare
    // TLS client with the cluster's certificate is answered, with another CA's refused.
    let scheduler = cluster.url.trim_start_matches("df://");
    rt().block_on(async {
        let answered = tls_answer(scheduler, &certs.ca, &certs.cert, &certs.key).await;
        assert!(matches!(answered, Ok(bytes) if bytes > 0), "{answered:?}");
        let refused = tls_answer(scheduler, &certs.ca, &foreign.cert, &foreign.key).await;
        // Refused by the server (an alert or a closed connection, whichever comes first),
        // not unreachable or silent.
        let reason = refused.expect_err("the scheduler answered a certificate of another CA");
        assert!(["read:", "write:", "handshake:", "closed"].iter().any(|r| reason.starts_with(r)), "{reason}");
    });
}

/// Runs the day's job locally and then on a cluster of a scheduler and two executors
/// (over mutual TLS with `tls`), and checks that both give the same outputs; returns the
/// cluster, still running, the configuration and the day.
fn cluster_run_equals_local_run(dir: &Path, tls: Option<ClusterCerts>) -> (LocalCluster, PathBuf, i64) {
    let cache = dir.join("cache");
    let config = config_with_job(dir);
    let day = today();
    let sent = feed(day);
    let server = Server::start(&config);
    rt().block_on(async {
        send(server.addr, &sent).await;
        caught_up(server.addr).await;
    });
    assert!(server.stop().success());
    let local = batch_run(&config, &cache, day, &["--workers", "3"]);
    assert_eq!(local.code, 0, "{}", local.all());
    let local_manifest: serde_json::Value = serde_json::from_str(&local.stdout).unwrap();
    let local_sums = level_sums(&dir.join("data"));
    let local_dead = walk(&dir.join("data/lake/dead-letters/job=orders-daily"))
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect::<Vec<_>>();

    // One scheduler and two executors of one task each, on loopback.
    let cluster = LocalCluster::start_with_tls(dir, &config, &cache, 2, tls.as_ref()).unwrap_or_else(|e| panic!("{e}"));
    let tls_args = tls.as_ref().map(ClusterCerts::args).unwrap_or_default();
    let mut args = vec!["--cluster", &cluster.url, "--workers", "4"];
    args.extend(tls_args.iter().map(String::as_str));
    let clustered = batch_run(&config, &cache, day, &args);
    let logs = || cluster.logs();
    assert_eq!(clustered.code, 0, "{}\n{}", clustered.all(), logs());
    let cluster_manifest: serde_json::Value = serde_json::from_str(&clustered.stdout).unwrap();
    assert_eq!(manifest_figures(&cluster_manifest), manifest_figures(&local_manifest), "{}", logs());
    assert_eq!(level_sums(&dir.join("data")), local_sums, "the cluster's levels equal the local run's");
    let cluster_dead = walk(&dir.join("data/lake/dead-letters/job=orders-daily"))
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect::<Vec<_>>();
    assert_eq!(cluster_dead, local_dead, "the same dead letters, under the same names");
    // The planner never loads the parser in cluster mode (its plan refuses to run
    // outside an executor), so the records went through the executors: together they ran
    // each of the plugin step's partitions once and kept
    // its output (`JOB/STAGE/PARTITION/data-PARTITION.arrow`) for the planner to fetch.
    let ran: Vec<Vec<String>> = cluster
        .work_dirs
        .iter()
        .map(|work| walk(work).iter().filter_map(|f| Some(f.file_name()?.to_str()?.to_owned())).collect())
        .collect();
    let mut partitions: Vec<&String> = ran.iter().flatten().collect();
    partitions.sort();
    // One partition per archive file, at most --workers 4.
    let archive = walk(&dir.join("data/lake/raw/stream=orders"));
    let files = archive.iter().filter(|f| f.extension().is_some_and(|e| e == "ndjson")).count().min(4);
    let expected: Vec<String> = (0..files).map(|n| format!("data-{n}.arrow")).collect();
    assert!(files >= 2, "the day's archive is at least one file per shard");
    assert_eq!(partitions, expected.iter().collect::<Vec<_>>(), "{ran:?}\n{}", logs());
    // Pushed tasks go to every executor with a free slot. Polled ones (with TLS) go to
    // whichever executor asks first, so one busy executor may take them all.
    if tls.is_none() {
        for (n, files) in ran.iter().enumerate() {
            assert!(!files.is_empty(), "executor {n} ran no task: {ran:?}\n{}", logs());
        }
    }
    (cluster, config, day)
}

/// Every file under `dir`, sorted.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// A request to the jobs routes with `token`: (status, JSON body).
async fn jobs_call(addr: SocketAddr, method: &str, path: &str, token: &str, body: &str) -> (u16, serde_json::Value) {
    let auth = format!("Bearer {token}");
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let r = weir_client::request_with_headers(addr, method, path, &headers, body.as_bytes()).await.unwrap();
    (r.status, serde_json::from_str(&r.body).unwrap_or_default())
}

#[test]
fn an_on_demand_run_through_the_api_recomputes_the_day_inside_serve_and_shows_in_the_job_status() {
    const ADMIN: &str = "jobs-admin-token";
    const READER: &str = "jobs-read-token";
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_job(dir.path());
    // The run reads the raw archive while the host runs: one lake file per commit.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[sinks.lake]\ntype = \"lake\"\n", "[sinks.lake]\ntype = \"lake\"\nroll_interval = \"0s\"\n");
    std::fs::write(&config, text).unwrap();
    let day = today();
    let sent = feed(day);
    // A run that failed earlier, outside this process (as `weir batch run` records it).
    let failure_record = dir.path().join("data/lake/_jobs/orders-daily/failed/last.json");
    std::fs::create_dir_all(failure_record.parent().unwrap()).unwrap();
    let failure = serde_json::json!({
        "job": "orders-daily", "run": "20261130T000000Z", "status": "failed", "from": 0, "to": 86_400_000_000i64,
        "started": "2026-12-01T01:30:00Z", "finished": "2026-12-01T01:30:02Z", "trigger": "schedule",
        "error": "sink lake refused the run",
    });
    std::fs::write(&failure_record, failure.to_string()).unwrap();
    let server = Server::start_with_env(&config, &[("WEIR_ADMIN_TOKEN", ADMIN), ("WEIR_READ_TOKEN", READER)]);
    let addr = server.addr;
    rt().block_on(async {
        send(addr, &sent).await;
        caught_up(addr).await;
        let (status, body) = jobs_call(addr, "GET", "/v1/jobs", READER, "").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["jobs"][0]["name"], "orders-daily", "{body}");
        assert_eq!(body["jobs"][0]["runs"].as_array().map(Vec::len), Some(0), "no run yet: {body}");
        assert_eq!(body["jobs"][0]["last_failure"], failure, "the earlier failure, read from the lake: {body}");

        // Refusals: a read token cannot start a run; an unknown job; a period that is not one.
        let runs = "/v1/jobs/orders-daily/runs";
        let period = format!("{{\"period\": \"{}\"}}", ts(day + 3600));
        assert_eq!(jobs_call(addr, "POST", runs, READER, &period).await.0, 403);
        let (status, body) = jobs_call(addr, "POST", "/v1/jobs/nightly/runs", ADMIN, "").await;
        assert_eq!(status, 404, "{body}");
        assert!(body["error"].as_str().unwrap().contains("defined jobs are: orders-daily"), "{body}");
        let (status, body) = jobs_call(addr, "POST", runs, ADMIN, r#"{"period": "yesterday"}"#).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("invalid_period")), "{body}");

        // Two at once: one starts, the other is told a run is in progress.
        let (first, second) =
            tokio::join!(jobs_call(addr, "POST", runs, ADMIN, &period), jobs_call(addr, "POST", runs, ADMIN, &period));
        let (started, busy) = if first.0 == 202 { (first, second) } else { (second, first) };
        assert_eq!(started.0, 202, "{}", started.1);
        assert_eq!(started.1["from"], ts(day), "the period containing the time given: {}", started.1);
        assert_eq!((busy.0, busy.1["code"].as_str()), (409, Some("run_in_progress")), "{}", busy.1);

        let deadline = std::time::Instant::now() + Duration::from_secs(180);
        let job = loop {
            let (_, job) = jobs_call(addr, "GET", "/v1/jobs/orders-daily", READER, "").await;
            if job["last_outcome"]["status"].is_string() {
                break job;
            }
            assert!(std::time::Instant::now() < deadline, "the run never ended: {job}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        assert_eq!(job["last_outcome"]["status"], "completed", "{job}");
        assert!(job["running"].is_null(), "{job}");
        assert!(job["last_failure"].is_null() && !failure_record.exists(), "the completed run removed it: {job}");
        let run = &job["runs"][0];
        assert_eq!(
            (run["records"].as_u64(), run["trigger"].as_str()),
            (Some(sent.len() as u64), Some("on-demand")),
            "{job}"
        );
        assert_eq!(run["dead_letters"], 1, "{job}");

        // The Lambda merge answers from the run at once, and the audit log names who ran it.
        let merged = served(addr, day).await;
        assert_eq!(
            merged.values().map(|v| (v.0, v.1)).collect::<Vec<_>>(),
            direct(&sent).into_values().collect::<Vec<_>>()
        );
        assert!(merged.values().all(|row| row.2 == "batch"), "{merged:?}");
        let (_, audit) = jobs_call(addr, "GET", "/v1/audit", READER, "").await;
        let runs_audited: Vec<&str> = audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "run")
            .filter_map(|e| e["result"].as_str())
            .collect();
        assert!(
            runs_audited.len() == 2
                && runs_audited[0] == "ok: started"
                && runs_audited[1].starts_with(&format!("ok: {} records", sent.len())),
            "{audit}"
        );

        // The run is counted in /metrics.
        let auth = format!("Bearer {READER}");
        let metrics =
            weir_client::request_with_headers(addr, "GET", "/metrics", &[("Authorization", auth.as_str())], b"")
                .await
                .unwrap()
                .body;
        let counted = [
            "weir_job_runs_total{job=\"orders-daily\",trigger=\"on-demand\",status=\"completed\"} 1".to_owned(),
            format!("weir_job_records_total{{job=\"orders-daily\"}} {}", sent.len()),
            "weir_job_dead_letters_total{job=\"orders-daily\"} 1".to_owned(),
        ];
        for line in &counted {
            assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
        }
        assert!(metrics.contains("weir_job_last_run_milliseconds{job=\"orders-daily\"} "), "{metrics}");
    });
    assert!(server.stop().success());
}
