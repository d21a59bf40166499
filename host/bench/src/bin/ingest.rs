//! Ingest and end-to-end throughput of the streaming layer, against a bare axum endpoint
//! that discards the body, in the same run (the machines are noisy: compare ratios).
//!
//! `cargo run --release -p weir-bench --bin ingest -- [REQUESTS] [RECORDS_PER_REQUEST] [CONCURRENCY] [lake-only | sinks=NAME,NAME] [batch=N] [commit=N] [stages-at-host-priority] [rate=REQUESTS_PER_S] [interval_ms=N]`
//! (after scripts/build-plugins.sh). Results: BENCHMARKS.md.
//!
//! `rate=N` paces the clients to N requests a second in all (a steady load instead of a
//! backlog, so the stages commit what each wake-up finds) and skips the bare endpoint;
//! the CPU line then says what the pipeline costs per record at that load.
//! `interval_ms=N` sets the streams' `commit_interval` (500 ms by default).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use weir_cli::demo::{DemoOptions, demo_config, sample_orders};
use weir_client::request;
use weir_pipeline::Pipeline;

struct Run {
    latencies: Vec<Duration>,
    elapsed: Duration,
    records: usize,
}

impl Run {
    fn percentile(&self, p: f64) -> Duration {
        let mut l = self.latencies.clone();
        l.sort();
        l[((l.len() as f64 * p) as usize).min(l.len() - 1)]
    }

    fn line(&self, name: &str) -> String {
        format!(
            "{name:<28} {:>10.0} records/s  {:>8.0} requests/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
            self.records as f64 / self.elapsed.as_secs_f64(),
            self.latencies.len() as f64 / self.elapsed.as_secs_f64(),
            self.percentile(0.50).as_secs_f64() * 1e3,
            self.percentile(0.99).as_secs_f64() * 1e3,
        )
    }
}

/// Sends `bodies` to `path` from `concurrency` clients, the `i`-th body no sooner than
/// `i / rate` seconds in when paced; every answer must be 200.
async fn load(
    addr: SocketAddr,
    path: &'static str,
    bodies: Arc<Vec<String>>,
    per_body: usize,
    concurrency: usize,
    rate: Option<f64>,
) -> Run {
    let started = Instant::now();
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..concurrency {
        let bodies = bodies.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            for (i, body) in bodies.iter().enumerate().skip(client).step_by(concurrency) {
                if let Some(rate) = rate {
                    tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
                }
                let sent = Instant::now();
                let r = request(addr, "POST", path, Some("application/x-ndjson"), body.as_bytes()).await.unwrap();
                assert_eq!(r.status, 200, "{}", r.body);
                latencies.push(sent.elapsed());
            }
            latencies
        });
    }
    let mut latencies = Vec::new();
    while let Some(l) = tasks.join_next().await {
        latencies.extend(l.unwrap());
    }
    Run { latencies, elapsed: started.elapsed(), records: bodies.len() * per_body }
}

/// The CPU time the whole process has used so far (user + system), from
/// `/proc/self/stat`, in clock ticks of 1/100 s (Linux's `USER_HZ` on every platform it
/// runs on here); `None` off Linux.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after_name = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = after_name.split(' ').skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((user + system) * 10))
}

/// The process's CPU time since `before` (a [`process_cpu`] reading).
fn cpu_since(before: Option<Duration>) -> Option<Duration> {
    before.zip(process_cpu()).map(|(before, after)| after.saturating_sub(before))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let requests = args.first().copied().unwrap_or(400);
    let per_request = args.get(1).copied().unwrap_or(100);
    let concurrency = args.get(2).copied().unwrap_or(8);

    let plugin_dir = weir_bench::component_dir();
    let data_dir: PathBuf = std::env::temp_dir().join(format!("weir-ingest-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let options = DemoOptions { plugin_dir, data_dir: data_dir.clone(), events: 0, seed: 1 };
    let mut config = demo_config(&options)?;
    config.server.max_pending_records = u64::MAX;
    // `lake-only`: events and aggregates to the lake alone, as the demo pipeline was
    // before it grew the serving store, search index and warehouse (a like-for-like
    // figure for the stages themselves).
    // `sinks=lake,order-search`: those sinks alone, to see what each one costs.
    let kept: Option<Vec<String>> = std::env::args().find_map(|a| {
        if a == "lake-only" {
            Some(vec!["lake".to_owned()])
        } else {
            a.strip_prefix("sinks=").map(|names| names.split(',').map(str::to_owned).collect())
        }
    });
    if let Some(kept) = kept {
        for stream in &mut config.streams {
            stream.routes.events.retain(|sink| kept.contains(sink));
            stream.routes.aggregates.retain(|sink| kept.contains(sink));
        }
    }
    // `batch=N`, `commit=N`: records per plugin call and per commit (the demo's
    // batch_size and commit_size otherwise).
    let number = |prefix: &str| std::env::args().find_map(|a| a.strip_prefix(prefix).and_then(|n| n.parse().ok()));
    for stream in &mut config.streams {
        stream.batch_size = number("batch=").unwrap_or(stream.batch_size);
        stream.commit_size = number("commit=").unwrap_or(stream.commit_size);
        if let Some(ms) = number("interval_ms=") {
            stream.commit_interval = weir_config::HumanDuration(Duration::from_millis(ms as u64));
        }
    }
    // `stages-at-host-priority`: the stages on the host's threads, as before they yielded
    // the cores to ingest (`[server] stages_yield_to_ingest = false`).
    if std::env::args().any(|a| a == "stages-at-host-priority") {
        config.server.stages_yield_to_ingest = false;
    }
    let access = weir_api::AdminAccess::from_config(&config.admin, config.server.require_token)?;
    let pipeline = Pipeline::start(&config).await?;

    let app = weir_api::app(pipeline.clone(), access)
        .route("/discard", post(|body: axum::body::Bytes| async move { std::hint::black_box(body.len()).to_string() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(axum::serve(listener, app).into_future());

    let orders = sample_orders(requests * per_request, 11);
    let bodies: Arc<Vec<String>> = Arc::new(
        orders.chunks(per_request).map(|c| c.iter().map(|o| o.line.as_str()).collect::<Vec<_>>().join("\n")).collect(),
    );
    let bytes: usize = bodies.iter().map(String::len).sum();
    println!(
        "{requests} requests × {per_request} records ({:.1} MB), {concurrency} concurrent clients, 127.0.0.1",
        bytes as f64 / 1e6
    );

    let rate: Option<f64> = std::env::args().find_map(|a| a.strip_prefix("rate=").and_then(|n| n.parse().ok()));
    let bare = match rate {
        None => Some(load(addr, "/discard", bodies.clone(), per_request, concurrency, None).await),
        Some(_) => None,
    };
    let started = Instant::now();
    let cpu_before = process_cpu();
    let ingest = load(
        addr,
        "/v1/streams/orders/records?key_field=restaurant_id",
        bodies.clone(),
        per_request,
        concurrency,
        rate,
    )
    .await;
    while !pipeline.caught_up().await {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let end_to_end = started.elapsed();
    let cpu = cpu_since(cpu_before);
    let metrics = pipeline.metrics().render();
    let commits: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("weir_commit_seconds_count{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    // The lake rolls what it staged when the pipeline stops (200 000 orders stay under
    // its 64 MiB roll size), so the shutdown is where a roll's cost shows.
    let shutdown_started = Instant::now();
    let cpu_before_shutdown = process_cpu();
    pipeline.shutdown().await;
    let shutdown = shutdown_started.elapsed();
    let shutdown_cpu = cpu_since(cpu_before_shutdown);

    if let Some(bare) = &bare {
        println!("{}", bare.line("bare axum (discard body)"));
    }
    println!("{}", ingest.line("weir ingest (fsync'd append)"));
    if let Some(bare) = &bare {
        println!(
            "ingest / bare throughput: {:.2}",
            (ingest.records as f64 / ingest.elapsed.as_secs_f64()) / (bare.records as f64 / bare.elapsed.as_secs_f64())
        );
    }
    println!(
        "end to end (ingest -> parse -> enrich -> aggregate -> lake, all checkpointed): {:.0} records/s ({} records in {:.2} s)",
        ingest.records as f64 / end_to_end.as_secs_f64(),
        ingest.records,
        end_to_end.as_secs_f64()
    );
    println!("commits: {commits} (every shard's stages)");
    if let Some(cpu) = cpu {
        println!(
            "end to end CPU: {:.2} s user + system, {:.2} cores busy on average, {:.1} µs per record",
            cpu.as_secs_f64(),
            cpu.as_secs_f64() / end_to_end.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / ingest.records as f64
        );
    }
    println!(
        "shutdown (the lake rolls its staged commits): {:.2} s{}",
        shutdown.as_secs_f64(),
        shutdown_cpu.map_or(String::new(), |cpu| format!(", {:.2} s CPU", cpu.as_secs_f64()))
    );
    let _ = std::fs::remove_dir_all(&data_dir);
    Ok(())
}
