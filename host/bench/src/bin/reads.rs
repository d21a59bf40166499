//! Read API latency under load from a second process: serving lookups (cached and
//! uncached), searches (one repeated query and distinct queries) and warehouse aggregates,
//! against a bare axum endpoint in a separate process in the same run (the machines are
//! noisy: compare ratios).
//!
//! `cargo build --release -p weir && cargo run --release -p weir-bench --bin reads -- [REQUESTS] [CONCURRENCY]`
//! (after scripts/build-plugins.sh). The server is `weir serve` on the demo pipeline
//! (`WEIR_BIN`, default `$CARGO_TARGET_DIR/release/weir`) loaded with 3 000 demo orders.
//! Results: BENCHMARKS.md.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_bench::child::ChildServer;
use weir_cli::demo::{DemoOptions, demo_config, sample_orders};
use weir_client::{HttpResponse, request};

const ORDERS: usize = 3000;

struct Run {
    latencies: Vec<Duration>,
    elapsed: Duration,
    hits: usize,
}

impl Run {
    fn percentile(&self, p: f64) -> Duration {
        weir_bench::child::percentile(&mut self.latencies.clone(), p)
    }

    fn line(&self, name: &str, baseline: Option<&Run>) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let ratio = baseline.map_or(String::new(), |b| {
            format!(
                "  p50 {:>5.2}x  p99 {:>5.2}x of baseline",
                ms(self.percentile(0.5)) / ms(b.percentile(0.5)),
                ms(self.percentile(0.99)) / ms(b.percentile(0.99))
            )
        });
        format!(
            "{name:<34} {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  cache hits {:>5.1}%{ratio}",
            self.latencies.len() as f64 / self.elapsed.as_secs_f64(),
            ms(self.percentile(0.5)),
            ms(self.percentile(0.99)),
            100.0 * self.hits as f64 / self.latencies.len() as f64,
        )
    }
}

/// GETs every path from `concurrency` clients; every answer must be 200.
async fn load(addr: SocketAddr, paths: Arc<Vec<String>>, concurrency: usize) -> Run {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..concurrency {
        let paths = paths.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut hits = 0;
            for path in paths.iter().skip(client).step_by(concurrency) {
                let sent = Instant::now();
                let r = request(addr, "GET", path, None, b"").await.unwrap();
                latencies.push(sent.elapsed());
                assert_eq!(r.status, 200, "GET {path}: {}", r.body);
                hits += usize::from(r.header("x-weir-cache") == Some("hit"));
            }
            (latencies, hits)
        });
    }
    let mut run = Run { latencies: Vec::new(), elapsed: Duration::ZERO, hits: 0 };
    while let Some(done) = tasks.join_next().await {
        let (latencies, hits) = done.unwrap();
        run.latencies.extend(latencies);
        run.hits += hits;
    }
    run.elapsed = started.elapsed();
    run
}

/// The bare endpoint: the same HTTP stack answering a fixed small JSON document.
async fn bare_server() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("bare listening on http://{}", listener.local_addr()?);
    let body = r#"{"table":"orders","key":"o-1","fields":{"status":"delivered"}}"#;
    let app = axum::Router::new().route("/v1/serving/{table}/{key}", axum::routing::get(move || async move { body }));
    axum::serve(listener, app).await?;
    Ok(())
}

fn serve(config: &Path) -> anyhow::Result<ChildServer> {
    ChildServer::weir(config, &[])
}

async fn ingest_demo_orders(addr: SocketAddr) -> anyhow::Result<()> {
    let lines: Vec<String> = sample_orders(ORDERS, 7).into_iter().filter(|r| !r.csv).map(|r| r.line).collect();
    for chunk in lines.chunks(500) {
        let path = "/v1/streams/orders/records?key_field=restaurant_id";
        let r = request(addr, "POST", path, Some("application/x-ndjson"), chunk.join("\n").as_bytes()).await?;
        anyhow::ensure!(r.status == 200, "ingest answered {}: {}", r.status, r.body);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r: HttpResponse = request(addr, "GET", "/healthz", None, b"").await?;
        if r.body.contains("\"orders\":0") {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "not caught up: {}", r.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Order ids that reached the serving table (complete JSON orders of known restaurants).
fn served_order_ids() -> Vec<String> {
    sample_orders(ORDERS, 7)
        .into_iter()
        .filter(|r| !r.csv && r.restaurant != "r-99" && r.line.contains("\"test\":false"))
        .filter_map(|r| serde_json::from_str::<serde_json::Value>(&r.line).ok())
        .filter_map(|v| v["order_id"].as_str().map(str::to_owned))
        .collect()
}

fn repeat(paths: &[String], n: usize) -> Arc<Vec<String>> {
    Arc::new(paths.iter().cycle().take(n).cloned().collect())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--bare-server") {
        return bare_server().await;
    }
    let requests: usize = args.get(1).map_or(Ok(4000), |a| a.parse())?;
    let concurrency: usize = args.get(2).map_or(Ok(8), |a| a.parse())?;

    let dir = std::env::temp_dir().join(format!("weir-bench-reads-{}", std::process::id()));
    let options =
        DemoOptions { plugin_dir: weir_bench::component_dir(), data_dir: dir.clone(), events: ORDERS, seed: 7 };
    let config = demo_config(&options)?;
    let config_path = dir.join("demo.toml");
    let text = std::fs::read_to_string(&config_path)?;
    let cached = dir.join("cached.toml");
    let uncached = dir.join("uncached.toml");
    std::fs::write(&cached, text.replace("[server]\n", "[server]\nserving_cache_ttl = \"1h\"\n"))?;
    std::fs::write(&uncached, text.replace("[server]\n", "[server]\nserving_cache_entries = 0\n"))?;
    drop(config);

    let bare = ChildServer::this_binary("--bare-server", "bare listening on http://")?;
    let ids = served_order_ids();
    let serving_paths: Vec<String> = ids.iter().map(|id| format!("/v1/serving/orders/{id}")).collect();
    let hot: Vec<String> = serving_paths.iter().take(100).cloned().collect();
    let distinct_searches: Vec<String> =
        ids.iter().map(|id| format!("/v1/search/orders?q=order_id:%22{id}%22&limit=10")).collect();
    let aggregates: Vec<String> = (1..=8).map(|r| format!("/v1/aggregates/orders?key=r-{r}")).collect();

    println!(
        "read API under load: {requests} requests per scenario, {concurrency} concurrent clients, one connection per request"
    );
    let baseline = load(bare.addr, repeat(&hot, requests), concurrency).await;
    let mut lines = vec![baseline.line("baseline: bare axum GET", None)];

    let server = serve(&cached)?;
    ingest_demo_orders(server.addr).await?;
    load(server.addr, repeat(&hot, hot.len()), concurrency).await; // warm the cache
    let run = load(server.addr, repeat(&hot, requests), concurrency).await;
    lines.push(run.line("serving lookup, cached (100 keys)", Some(&baseline)));
    let run =
        load(server.addr, repeat(&["/v1/search/orders?q=m%C3%BCller&limit=10".to_owned()], requests), concurrency)
            .await;
    lines.push(run.line("search, one repeated query", Some(&baseline)));
    let run = load(server.addr, repeat(&distinct_searches, requests), concurrency).await;
    lines.push(run.line("search, distinct queries (by id)", Some(&baseline)));
    let run = load(server.addr, repeat(&aggregates, requests / 4), concurrency).await;
    lines.push(run.line("warehouse aggregates by key", Some(&baseline)));
    server.stop();

    let server = serve(&uncached)?;
    let run = load(server.addr, repeat(&serving_paths, requests), concurrency).await;
    lines.push(run.line("serving lookup, uncached (no cache)", Some(&baseline)));
    server.stop();
    let baseline_again = load(bare.addr, repeat(&hot, requests), concurrency).await;
    lines.push(baseline_again.line("baseline again", None));
    bare.stop();

    for line in lines {
        println!("{line}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
