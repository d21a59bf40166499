//! The batch layer: one job run over a day of the raw archive — DataFusion reading the
//! NDJSON, the parser and the enricher on every record, four levels (the aggregator
//! plugin and three SQL group-bys), the lake and the warehouse written — with one plugin
//! worker and with two, alternately in the same run.
//!
//! `WEIR_BIN=… cargo run -p weir-bench --bin batch -- [ORDERS] [RUNS]` after
//! `scripts/build-plugins.sh`. Results: BENCHMARKS.md.

use std::path::Path;
use std::time::{Duration, Instant};

use weir_bench::child::weir_bin;
use weir_bench::{component_dir, order_lines, restaurants_json};

fn arg(n: usize, default: usize) -> usize {
    std::env::args().nth(n).and_then(|a| a.parse().ok()).unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let orders = arg(1, 100_000);
    let runs = arg(2, 3);
    let dir = tempfile::tempdir()?;
    let config = setup(dir.path(), orders)?;
    let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..runs {
        for (slot, workers) in [1, 2].into_iter().enumerate() {
            let started = Instant::now();
            let output = std::process::Command::new(weir_bin())
                .args(["batch", "run", "orders-daily", "--period", "2026-11-26", "--workers"])
                .arg(workers.to_string())
                .arg("--config")
                .arg(&config)
                .env("WEIR_CACHE_DIR", dir.path().join("cache"))
                .output()?;
            let elapsed = started.elapsed();
            anyhow::ensure!(output.status.success(), "the run failed: {}", String::from_utf8_lossy(&output.stderr));
            let manifest: serde_json::Value = serde_json::from_slice(&output.stdout)?;
            anyhow::ensure!(manifest["records"] == orders, "the run read {} of {orders} records", manifest["records"]);
            times[slot].push(elapsed);
        }
    }
    let median = |t: &mut Vec<Duration>| {
        t.sort();
        t[t.len() / 2]
    };
    let (one, two) = (median(&mut times[0]), median(&mut times[1]));
    for (workers, time) in [(1, one), (2, two)] {
        println!(
            "{workers} worker(s): {:.2} s per run (median of {runs}), {:.0} records/s",
            time.as_secs_f64(),
            orders as f64 / time.as_secs_f64()
        );
    }
    println!("2 workers / 1 worker: {:.2}× records/s", one.as_secs_f64() / two.as_secs_f64());
    Ok(())
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
