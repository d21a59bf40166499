//! The batch layer: one job run over a day of the raw archive — DataFusion reading the
//! NDJSON, the parser and the enricher on every record, four levels (the aggregator
//! plugin and three SQL group-bys), the lake and the warehouse written — with two plugin
//! workers and with one; the same SQL levels with the parser only (zone and cuisine from
//! a reference-table join instead of the Wasm enricher); and DuckDB doing the same three
//! group-bys over the same files, all alternately in the same run.
//!
//! With `cluster`, a fifth variant: the job with the Wasm plugins on a Ballista cluster
//! on loopback (`weir batch scheduler` and two `weir batch executor`s of one task each,
//! started by the benchmark and kept for all runs), planned by a `weir batch run
//! --cluster`.
//!
//! `WEIR_BIN=… cargo run -p weir-bench --bin batch -- [ORDERS] [RUNS] [cluster]` after
//! `scripts/build-plugins.sh`. Results: BENCHMARKS.md.

use std::path::Path;
use std::time::{Duration, Instant};

use weir_bench::child::weir_bin;
use weir_bench::{component_dir, order_lines, restaurants_json};
use weir_e2e::ballista_cluster::LocalCluster;

fn arg(n: usize, default: usize) -> usize {
    std::env::args().nth(n).and_then(|a| a.parse().ok()).unwrap_or(default)
}

/// The runs compared, each timed as a whole process (the cluster's only with `cluster`).
const VARIANTS: [&str; 5] = [
    "weir, parser + Wasm enricher, 2 workers",
    "weir, parser + Wasm enricher, 1 worker",
    "weir, parser only + SQL join, 2 workers",
    "DuckDB, SQL only",
    "weir, parser + Wasm enricher, cluster of 2",
];

fn main() -> anyhow::Result<()> {
    let orders = arg(1, 100_000);
    let runs = arg(2, 3);
    let with_cluster = std::env::args().nth(3).is_some_and(|a| a == "cluster");
    let dir = tempfile::tempdir()?;
    let config = setup(dir.path(), orders)?;
    let cluster = if with_cluster {
        let cluster = LocalCluster::start(dir.path(), &config, &dir.path().join("cache"), 2);
        Some(cluster.map_err(|e| anyhow::anyhow!(e))?)
    } else {
        None
    };
    let variants = if cluster.is_some() { VARIANTS.len() } else { VARIANTS.len() - 1 };
    let python = std::env::var("WEIR_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let duckdb_script = duckdb_script(dir.path());
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); variants];
    for _ in 0..runs {
        for (slot, times) in times.iter_mut().enumerate() {
            let started = Instant::now();
            if slot == 3 {
                let output = std::process::Command::new(&python).args(["-c", &duckdb_script]).output()?;
                let elapsed = started.elapsed();
                anyhow::ensure!(output.status.success(), "duckdb failed: {}", String::from_utf8_lossy(&output.stderr));
                let stdout = String::from_utf8_lossy(&output.stdout);
                let read: usize = stdout.lines().last().unwrap_or_default().trim().parse()?;
                anyhow::ensure!(read == orders, "DuckDB aggregated {read} of {orders} orders");
                eprintln!("{}: {:.2} s", VARIANTS[slot], elapsed.as_secs_f64());
                times.push(elapsed);
                continue;
            }
            let (job, workers) = match slot {
                0 | 4 => ("orders-daily", 2),
                1 => ("orders-daily", 1),
                _ => ("orders-daily-lean", 2),
            };
            let mut command = std::process::Command::new(weir_bin());
            command.args(["batch", "run", job, "--period", "2026-11-26"]);
            if let (4, Some(cluster)) = (slot, &cluster) {
                command.args(["--cluster", &cluster.url]);
            }
            let output = command
                .arg("--workers")
                .arg(workers.to_string())
                .arg("--config")
                .arg(&config)
                .env("WEIR_CACHE_DIR", dir.path().join("cache"))
                .output()?;
            let elapsed = started.elapsed();
            anyhow::ensure!(output.status.success(), "the run failed: {}", String::from_utf8_lossy(&output.stderr));
            let manifest: serde_json::Value = serde_json::from_slice(&output.stdout)?;
            anyhow::ensure!(manifest["records"] == orders, "the run read {} of {orders} records", manifest["records"]);
            eprintln!("{}: {:.2} s", VARIANTS[slot], elapsed.as_secs_f64());
            times.push(elapsed);
        }
    }
    let median = |t: &mut Vec<Duration>| {
        t.sort();
        t[t.len() / 2]
    };
    let medians: Vec<Duration> = times.iter_mut().map(median).collect();
    println!("{orders} orders, median of {runs} runs each, alternating:");
    for (name, time) in VARIANTS.iter().zip(&medians) {
        println!(
            "  {name:<42} {:>7.2} s  {:>9.0} records/s  {:.2}× DuckDB's time",
            time.as_secs_f64(),
            orders as f64 / time.as_secs_f64(),
            time.as_secs_f64() / medians[3].as_secs_f64()
        );
    }
    println!("2 workers / 1 worker: {:.2}× records/s", medians[1].as_secs_f64() / medians[0].as_secs_f64());
    if let Some(cluster) = medians.get(4) {
        println!("cluster / local (2 workers): {:.2}× records/s", medians[0].as_secs_f64() / cluster.as_secs_f64());
    }
    drop(cluster);
    Ok(())
}

/// The same three group-bys in DuckDB over the same raw archive files: the JSON of each
/// record parsed, joined with the restaurants for zone and cuisine (the enricher's work),
/// each level written as Parquet; prints the orders it read.
fn duckdb_script(dir: &Path) -> String {
    let lake = dir.join("data/lake/raw/stream=orders");
    let out = dir.join("duckdb");
    let restaurants = dir.join("restaurants.ndjson");
    format!(
        r#"import duckdb, os
os.makedirs("{out}", exist_ok=True)
con = duckdb.connect()
con.sql("SET enable_progress_bar = false")
con.sql("""CREATE TEMP TABLE events AS
  SELECT json_extract_string(data, '$.restaurant_id') AS restaurant_id,
         CAST(json_extract_string(data, '$.placed_at') AS TIMESTAMPTZ) AS _time,
         CAST(json_extract(data, '$.total') AS DOUBLE) AS total, r.zone, r.cuisine
  FROM read_json('{lake}/**/*.ndjson', format = 'newline_delimited', columns = {{'data': 'VARCHAR'}}) a
  JOIN read_json('{restaurants}', format = 'newline_delimited') r ON json_extract_string(a.data, '$.restaurant_id') = r._key""")
con.sql("COPY (SELECT restaurant_id AS _key, date_trunc('day', _time) AS _time, count(*) AS orders, sum(total) AS revenue FROM events GROUP BY 1, 2) TO '{out}/restaurant-day.parquet'")
con.sql("COPY (SELECT zone AS _key, date_trunc('hour', _time) AS _time, count(*) AS orders FROM events GROUP BY 1, 2) TO '{out}/zone-hour.parquet'")
con.sql("COPY (SELECT cuisine AS _key, date_trunc('day', _time) AS _time, count(*) AS orders FROM events GROUP BY 1, 2) TO '{out}/cuisine-day.parquet'")
print(con.sql("SELECT count(*) FROM events").fetchone()[0])
"#,
        out = out.display(),
        lake = lake.display(),
        restaurants = restaurants.display(),
    )
}

/// A lake holding `orders` raw records of 2026-11-26 (files of 4 096 lines, as commits
/// of a two-shard stream would leave them) and a configuration with the job.
fn setup(dir: &Path, orders: usize) -> anyhow::Result<std::path::PathBuf> {
    let lines = order_lines(orders);
    for (shard, records) in [0usize, 1].into_iter().map(|s| (s, lines.iter().enumerate().skip(s).step_by(2))) {
        let records: Vec<(usize, &String)> = records.collect();
        for chunk in records.chunks(4096) {
            let (first, last) = (chunk[0].0, chunk[chunk.len() - 1].0);
            let path = dir.join(format!(
                "data/lake/raw/stream=orders/date=2026-11-26/shard={shard:04}/{first:020}-{last:020}.ndjson"
            ));
            std::fs::create_dir_all(path.parent().expect("a parent"))?;
            let mut text = String::new();
            for (seq, data) in chunk {
                let key: serde_json::Value = serde_json::from_str::<serde_json::Value>(data)?["restaurant_id"].clone();
                let line = serde_json::json!({
                    "id": format!("orders-{shard:04}-{seq:020}-0"),
                    "stream": "orders",
                    "shard": shard,
                    "seq": seq,
                    "key": key,
                    "content_type": "application/json",
                    "arrival_time": "2026-11-26T12:00:00Z",
                    "data": data,
                });
                text.push_str(&line.to_string());
                text.push('\n');
            }
            std::fs::write(path, text)?;
        }
    }
    let reference: serde_json::Value = serde_json::from_str(&restaurants_json())?;
    std::fs::write(dir.join("restaurants.json"), reference["restaurants"].to_string())?;
    let mut rows = String::new();
    for (key, restaurant) in reference["restaurants"].as_object().into_iter().flatten() {
        let mut row = restaurant.clone();
        row["_key"] = serde_json::Value::String(key.clone());
        rows.push_str(&format!("{row}\n"));
    }
    std::fs::write(dir.join("restaurants.ndjson"), rows)?;
    let plugin = |name: &str| component_dir().join(format!("{name}.wasm")).display().to_string();
    let config = format!(
        r#"
[server]
data_dir = "{data}"

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

[sinks.lake]
type = "lake"

[sinks.dead-letters]
type = "dead-letters"

[sinks.warehouse]
type = "warehouse"

[[streams]]
name = "orders"
parser = "orders-parser"
enrichers = ["restaurant-enricher"]

[streams.aggregator]
plugin = "restaurant-stats"
window = "15m"

[[jobs]]
name = "orders-daily"
stream = "orders"

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
sql = "SELECT cuisine AS _key, date_trunc('day', _time) AS _time, count(*) AS orders FROM events GROUP BY 1, 2"
sinks = ["lake", "warehouse"]

# The same SQL levels without the Wasm enricher: the parser, then a join with the
# restaurants as a reference table.
[[jobs]]
name = "orders-daily-lean"
stream = "orders"
enrichers = []

[[jobs.tables]]
name = "restaurants"
reference = "restaurants"

[[jobs.levels]]
name = "restaurant-day"
sql = "SELECT restaurant_id AS _key, date_trunc('day', _time) AS _time, count(*) AS orders, sum(total) AS revenue FROM events GROUP BY 1, 2"
sinks = ["lake", "warehouse"]

[[jobs.levels]]
name = "zone-hour"
sql = "SELECT r.zone AS _key, date_trunc('hour', e._time) AS _time, count(*) AS orders FROM events e JOIN restaurants r ON e.restaurant_id = r._key GROUP BY 1, 2"
sinks = ["lake", "warehouse"]

[[jobs.levels]]
name = "cuisine-day"
sql = "SELECT r.cuisine AS _key, date_trunc('day', e._time) AS _time, count(*) AS orders FROM events e JOIN restaurants r ON e.restaurant_id = r._key GROUP BY 1, 2"
sinks = ["lake", "warehouse"]
"#,
        data = dir.join("data").display(),
        parser = plugin("orders_parser"),
        enricher = plugin("restaurant_enricher"),
        stats = plugin("restaurant_stats"),
        restaurants = dir.join("restaurants.json").display(),
    );
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, config)?;
    Ok(path)
}
