//! The streaming layer on 1 shard against 2, and a plugin's calls on one instance against
//! a pool (issue 15 item 3), in one run:
//!
//! ```sh
//! scripts/build-plugins.sh
//! cargo run --release -p weir-bench --bin shards -- 200000
//! ```
//!
//! The demo pipeline (parser → enricher → 15-minute aggregator) with its events and
//! aggregates to the local lake only, in process. The records are appended straight into
//! the log in requests of 2 000 (one fsync each, no HTTP), so the stages, not ingest, set
//! the pace; the figure is records per second from the first append to the last
//! checkpoint. Variants, each on a fresh data directory:
//! - 1 shard, 1 instance per plugin: one stage, its calls in turn (the baseline);
//! - 2 shards, 1 instance per plugin: two stages taking turns on each plugin (how every
//!   plugin ran before the pool);
//! - 2 shards, instances = cores: two stages calling each plugin at once.
//!
//! Each variant runs `rounds` times (default 3), interleaved, and the median is kept.
//! With `python`, the enricher is its Python port (`restaurant_enricher_py.wasm`,
//! scripts/build-foreign-plugins.sh), about 10× the Rust one's time per event: a stage
//! whose time is mostly the plugin's.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use weir_cli::demo::{DemoOptions, demo_config, sample_orders};
use weir_log::NewRecord;
use weir_pipeline::Pipeline;

async fn run(records: &[String], shards: u32, instances: usize, round: usize, python: bool) -> anyhow::Result<f64> {
    let data_dir: PathBuf =
        std::env::temp_dir().join(format!("weir-shards-bench-{}-{shards}-{instances}-{round}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let options =
        DemoOptions { plugin_dir: weir_bench::component_dir(), data_dir: data_dir.clone(), events: 0, seed: 1 };
    let mut config = demo_config(&options)?;
    config.server.max_pending_records = u64::MAX;
    config.log.shards = shards;
    for plugin in config.plugins.values_mut() {
        plugin.limits.instances = instances;
    }
    if python {
        // The same enricher in Python: a plugin-bound stage.
        let enricher = config.plugins.get_mut("restaurant-enricher").expect("the demo's enricher");
        enricher.path = weir_bench::component_dir().join("restaurant_enricher_py.wasm");
    }
    for stream in &mut config.streams {
        stream.routes.events.retain(|sink| sink == "lake");
        stream.routes.aggregates.retain(|sink| sink == "lake");
    }
    config.jobs.clear();
    let pipeline = Pipeline::start(&config).await?;
    let now = weir_pipeline::now_micros();
    let started = Instant::now();
    for chunk in records.chunks(2_000) {
        let batch = chunk
            .iter()
            .enumerate()
            .map(|(i, line)| NewRecord {
                partition_key: Some(format!("k-{i}")),
                data: line.as_bytes().to_vec().into(),
                content_type: "application/json".into(),
                arrival_time: now,
            })
            .collect();
        pipeline.ingest("orders", batch).await?;
    }
    while !pipeline.caught_up().await {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    pipeline.shutdown().await;
    let _ = std::fs::remove_dir_all(&data_dir);
    Ok(records.len() as f64 / elapsed.as_secs_f64())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let n = args.first().copied().unwrap_or(200_000);
    let rounds = args.get(1).copied().unwrap_or(3).max(1);
    let python = std::env::args().any(|a| a == "python");
    let cores = weir_runtime::default_instances();
    // JSON orders only (the sample's CSV lines would go to the parser as JSON here).
    let records: Vec<String> = sample_orders(n * 2, 5).into_iter().filter(|o| !o.csv).map(|o| o.line).take(n).collect();
    println!(
        "{} records, {rounds} rounds per variant, {cores} instances per plugin in the pool variant",
        records.len()
    );
    let variants = [(1u32, 1usize), (2, 1), (2, cores)];
    let mut figures = vec![Vec::new(); variants.len()];
    for round in 0..rounds {
        for (k, (shards, instances)) in variants.iter().enumerate() {
            figures[k].push(run(&records, *shards, *instances, round, python).await?);
        }
    }
    let medians: Vec<f64> = figures.into_iter().map(median).collect();
    for ((shards, instances), rate) in variants.iter().zip(&medians) {
        println!(
            "{shards} shard(s), {instances} instance(s) per plugin: {rate:>10.0} records/s  ({:.2}× the 1-shard run)",
            rate / medians[0]
        );
    }
    Ok(())
}
