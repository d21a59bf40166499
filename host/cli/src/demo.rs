//! `weir demo`: the whole streaming layer on one machine with nothing installed. Starts
//! the pipeline with the example plugins, replays a generated sample of order events over
//! HTTP (a seeded generator: JSON and CSV orders, malformed lines, test orders, an
//! unknown restaurant, late events), waits until every batch is checkpointed, and reads
//! back what arrived in the lake.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use weir_sinks::{LakeContents, read_lake};

use weir_client::request;
use weir_config::PipelineConfig;
use weir_pipeline::Pipeline;

const DEMO_TOML: &str = include_str!("../demo/demo.toml");

/// What to run.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where the built components are (`target/wasm32-wasip2/plugin`).
    pub plugin_dir: PathBuf,
    /// The demo's data directory; emptied first.
    pub data_dir: PathBuf,
    /// Order events to send.
    pub events: usize,
    /// Generator seed.
    pub seed: u64,
}

/// One order line, and how it is sent.
#[derive(Debug, Clone)]
pub struct SampleRecord {
    pub line: String,
    pub csv: bool,
    pub restaurant: String,
}

/// A seeded sample of order records: mostly JSON, some CSV, some malformed, some test
/// orders, a few for an unknown restaurant and a few an hour late. Deterministic for a
/// seed; event times advance over two hours so windows close.
pub fn sample_orders(n: usize, seed: u64) -> Vec<SampleRecord> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move |m: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % m.max(1)
    };
    let base = 1_795_690_800i64; // 2026-11-26T11:00:00Z
    let span = 2 * 3600i64;
    (0..n)
        .map(|i| {
            let restaurant = if next(100) == 0 { "r-99".to_owned() } else { format!("r-{}", 1 + next(8)) };
            let mut placed = base + (i as i64 * span) / n.max(1) as i64 - next(120) as i64;
            if next(200) == 0 {
                placed -= 3600; // an hour late: its window has closed
            }
            let delivered = placed + 900 + next(2400) as i64;
            let cents = 900 + next(6000);
            let items = 1 + next(5);
            let test = next(50) == 0;
            let ts = |t: i64| weir_events::time::format_rfc3339(t * 1_000_000);
            let kind = next(100);
            let (line, csv) = match kind {
                0..=2 => (format!("{{\"order_id\":\"o-{i}\",\"restaurant_id\":\"{restaurant}\",\"total\":"), false),
                3 => (format!("{{\"order_id\":\"o-{i}\",\"total\":12.5,\"placed_at\":\"{}\"}}", ts(placed)), false),
                4..=8 => (
                    format!(
                        "o-{i},{restaurant},c-{},delivered,{}.{:02},{items},{},{},{test}",
                        next(5000),
                        cents / 100,
                        cents % 100,
                        ts(placed),
                        ts(delivered)
                    ),
                    true,
                ),
                _ => (
                    format!(
                        "{{\"order_id\":\"o-{i}\",\"restaurant_id\":\"{restaurant}\",\"customer_id\":\"c-{}\",\"status\":\"delivered\",\"total\":{}.{:02},\"items\":{items},\"placed_at\":\"{}\",\"delivered_at\":\"{}\",\"test\":{test}}}",
                        next(5000),
                        cents / 100,
                        cents % 100,
                        ts(placed),
                        ts(delivered)
                    ),
                    false,
                ),
            };
            SampleRecord { line, csv, restaurant }
        })
        .collect()
}

/// What the demo sent, what it found in the lake and what the read API answered.
#[derive(Debug, Clone, Default)]
pub struct DemoReport {
    pub sent: usize,
    pub accepted: usize,
    pub contents: LakeContents,
    pub elapsed: Duration,
    pub lake: PathBuf,
    /// What the read API answered: (request, summary lines).
    pub reads: Vec<(String, Vec<String>)>,
}

/// Writes the demo configuration for `options` and loads it.
///
/// # Errors
/// When the files cannot be written or the configuration is invalid.
pub fn demo_config(options: &DemoOptions) -> anyhow::Result<PipelineConfig> {
    // Absolute, because relative paths in a configuration start from the file's directory.
    let data_dir = std::path::absolute(&options.data_dir)?;
    let plugin_dir = std::path::absolute(&options.plugin_dir)?;
    let demo_dir = data_dir.join("demo-input");
    std::fs::create_dir_all(&demo_dir)?;
    std::fs::write(demo_dir.join("restaurants.json"), include_str!("../demo/restaurants.json"))?;
    let text = DEMO_TOML
        .replace("PLUGIN_DIR", &plugin_dir.display().to_string())
        .replace("DATA_DIR", &data_dir.display().to_string())
        .replace("DEMO_DIR", &demo_dir.display().to_string());
    let path = data_dir.join("demo.toml");
    std::fs::write(&path, text)?;
    PipelineConfig::from_file(&path, weir_connectors::sink_types()).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Runs the demo and reads back the lake.
///
/// # Errors
/// When the pipeline cannot start (e.g. the plugins are not built) or does not catch up.
pub async fn run(options: &DemoOptions) -> anyhow::Result<DemoReport> {
    let started = Instant::now();
    if options.data_dir.exists() {
        std::fs::remove_dir_all(&options.data_dir)
            .with_context(|| format!("cannot empty {}", options.data_dir.display()))?;
    }
    let config = demo_config(options)?;
    let access = weir_api::AdminAccess::from_config(&config.admin, config.server.require_token)?;
    let pipeline = Pipeline::start(&config).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(axum::serve(listener, weir_api::app(pipeline.clone(), access)).into_future());

    let sample = sample_orders(options.events, options.seed);
    let mut accepted = 0;
    // In generation order, so event time advances as a real feed's would: runs of JSON
    // lines as NDJSON requests (partitioned by restaurant), each CSV line on its own.
    let mut pending_json: Vec<&str> = Vec::new();
    let flush = |lines: &mut Vec<&str>| {
        let body = lines.join("\n");
        lines.clear();
        async move {
            let path = "/v1/streams/orders/records?key_field=restaurant_id";
            request(addr, "POST", path, Some("application/x-ndjson"), body.as_bytes()).await
        }
    };
    for record in &sample {
        if record.csv {
            if !pending_json.is_empty() {
                let n = pending_json.len();
                let r = flush(&mut pending_json).await?;
                anyhow::ensure!(r.status == 200, "ingest answered {}: {}", r.status, r.body);
                accepted += n;
            }
            let path = format!("/v1/streams/orders/records?key={}", record.restaurant);
            let r = request(addr, "POST", &path, Some("text/csv"), record.line.as_bytes()).await?;
            anyhow::ensure!(r.status == 200, "ingest answered {}: {}", r.status, r.body);
            accepted += 1;
        } else {
            pending_json.push(&record.line);
        }
    }
    if !pending_json.is_empty() {
        let n = pending_json.len();
        let r = flush(&mut pending_json).await?;
        anyhow::ensure!(r.status == 200, "ingest answered {}: {}", r.status, r.body);
        accepted += n;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while !pipeline.caught_up().await {
        anyhow::ensure!(Instant::now() < deadline, "the pipeline did not catch up within 120 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reads = read_api_tour(addr, &sample).await?;
    pipeline.shutdown().await;
    server.abort();
    let lake = options.data_dir.join("lake");
    let contents = read_lake(&lake).with_context(|| format!("cannot read the lake at {}", lake.display()))?;
    Ok(DemoReport { sent: sample.len(), accepted, contents, elapsed: started.elapsed(), lake, reads })
}

/// Asks the read API what a data team would: an order's status, a restaurant's latest
/// statistics, a free-text search with non-ASCII text, and the warehouse's aggregates of
/// one restaurant.
async fn read_api_tour(
    addr: std::net::SocketAddr,
    sample: &[SampleRecord],
) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let get = |path: String| async move {
        let r = request(addr, "GET", &path, None, b"").await?;
        anyhow::ensure!(r.status == 200, "GET {path} answered {}: {}", r.status, r.body);
        let body: serde_json::Value = serde_json::from_str(&r.body)?;
        Ok::<_, anyhow::Error>((path, body))
    };
    let mut reads = Vec::new();

    // The first order that made it through (a complete JSON order of a known restaurant).
    let order = sample
        .iter()
        .filter(|r| !r.csv && r.restaurant != "r-99" && r.line.contains("\"test\":false"))
        .find_map(|r| serde_json::from_str::<serde_json::Value>(&r.line).ok())
        .and_then(|v| v["order_id"].as_str().map(str::to_owned))
        .context("the sample holds no complete order")?;
    let (path, doc) = get(format!("/v1/serving/orders/{order}")).await?;
    let f = &doc["fields"];
    reads.push((
        path,
        vec![format!(
            "{} at {}: {} from {} ({}), total {}, delivered in {:.1} min",
            doc["key"].as_str().unwrap_or_default(),
            doc["time"].as_str().unwrap_or_default(),
            f["status"].as_str().unwrap_or_default(),
            f["restaurant_name"].as_str().unwrap_or_default(),
            f["zone"].as_str().unwrap_or_default(),
            f["total"],
            f["delivery_minutes"].as_f64().unwrap_or(f64::NAN),
        )],
    ));

    let (path, doc) = get("/v1/serving/restaurant-stats/r-7".to_owned()).await?;
    let f = &doc["fields"];
    reads.push((
        path,
        vec![format!(
            "window from {}: {} orders, revenue {}, mean delivery {:.1} min",
            f["window_start"]["$timestamp"].as_str().unwrap_or_default(),
            f["orders"],
            f["revenue"],
            f["mean_delivery_minutes"].as_f64().unwrap_or(f64::NAN),
        )],
    ));

    let (path, doc) = get("/v1/search/orders?q=m%C3%BCller&limit=3".to_owned()).await?;
    let mut lines = vec![format!("{} orders match \"müller\"; the best 3:", doc["total"])];
    for hit in doc["hits"].as_array().into_iter().flatten() {
        let f = &hit["fields"];
        lines.push(format!(
            "{}  {}  total {}  score {:.2}",
            f["order_id"].as_str().unwrap_or_default(),
            f["restaurant_name"].as_str().unwrap_or_default(),
            f["total"],
            hit["score"].as_f64().unwrap_or_default(),
        ));
    }
    reads.push((path, lines));

    let (path, doc) = get("/v1/aggregates/orders?key=r-7".to_owned()).await?;
    let rows = doc["rows"].as_array().cloned().unwrap_or_default();
    let orders: i64 = rows.iter().filter_map(|r| r["fields"]["orders"].as_i64()).sum();
    let revenue: f64 = rows.iter().filter_map(|r| r["fields"]["revenue"].as_f64()).sum();
    let mut lines = vec![format!("{} windows, {orders} orders, revenue {revenue:.2} in all", rows.len())];
    for row in rows.iter().take(3) {
        lines.push(format!(
            "{}  {} orders  revenue {}",
            row["time"].as_str().unwrap_or_default(),
            row["fields"]["orders"],
            row["fields"]["revenue"]
        ));
    }
    reads.push((path, lines));
    Ok(reads)
}

impl std::fmt::Display for DemoReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "weir demo: {} order records sent over HTTP, {} acknowledged (durably appended)",
            self.sent, self.accepted
        );
        let _ = writeln!(s, "lake at {} ({:.1} s end to end)", self.lake.display(), self.elapsed.as_secs_f64());
        let objects: Vec<String> = self.contents.objects.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let _ = writeln!(s, "  objects      {}", objects.join(", "));
        let _ = writeln!(s, "  raw archive  {} records (NDJSON)", self.contents.raw_records);
        let _ = writeln!(s, "  events       {} enriched orders (Parquet)", self.contents.events);
        let _ =
            writeln!(s, "  aggregates   {} restaurant × 15-minute windows (Parquet)", self.contents.aggregates.len());
        let _ = writeln!(s, "  dead letters {}", self.contents.dead_letters.len());
        let _ = writeln!(s, "\naggregates per restaurant and window (first 16):");
        let _ = writeln!(
            s,
            "  {:<8} {:<22} {:>6} {:>10} {:>14}",
            "restaurant", "window start", "orders", "revenue", "mean delivery"
        );
        for a in self.contents.aggregates.iter().take(16) {
            let mean = a.mean_delivery_minutes.map_or("-".to_owned(), |m| format!("{m:.1} min"));
            let _ = writeln!(
                s,
                "  {:<10} {:<22} {:>6} {:>10.2} {:>14}",
                a.restaurant, a.window_start, a.orders, a.revenue, mean
            );
        }
        if !self.reads.is_empty() {
            let _ = writeln!(s, "\nread API (serving store, search index, warehouse):");
            for (request, lines) in &self.reads {
                let _ = writeln!(s, "  GET {request}");
                for line in lines {
                    let _ = writeln!(s, "      {line}");
                }
            }
        }
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for (plugin, reason) in &self.contents.dead_letters {
            // Group by the reason's shape: digits and quoted values vary.
            let shape: String = reason.chars().take(70).collect();
            *reasons.entry(format!("{plugin}: {shape}")).or_default() += 1;
        }
        let mut reasons: Vec<_> = reasons.into_iter().collect();
        reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
        let _ = writeln!(s, "\ndead letters by reason (first 12):");
        for (reason, n) in reasons.iter().take(12) {
            let _ = writeln!(s, "  {n:>4} × {reason}");
        }
        f.write_str(&s)
    }
}
