//! The example parser → enricher chain in Wasm against the same Rust compiled natively,
//! in the same run; fresh-instance time; compile time of each example.
//!
//! `cargo bench -p weir-bench` (after scripts/build-plugins.sh). Results: BENCHMARKS.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use orders_parser::OrdersParser;
use restaurant_enricher::RestaurantEnricher;
use weir_bench::{component, order_lines, raw_record, restaurants_json, sdk_record};
use weir_runtime::{Plugin, PluginId, PluginOptions, RawRecord, Runtime, RuntimeConfig, StaticReferenceData};
use weir_sdk::host::{MapHost, set_native_host};
use weir_sdk::{Config, Enricher, Event, Parser};

fn raw_records(lines: &[String]) -> Vec<RawRecord> {
    lines.iter().map(|l| raw_record(l)).collect()
}

fn sdk_records(lines: &[String]) -> Vec<weir_sdk::RawRecord> {
    lines.iter().map(|l| sdk_record(l)).collect()
}

/// The native chain: the plugins' own Rust, called directly, a batch at a time (the
/// SDK's per-batch lookup memo applies, as in Wasm).
fn native_chain(
    parser: &mut OrdersParser,
    enricher: &mut RestaurantEnricher,
    records: &[weir_sdk::RawRecord],
) -> Vec<Event> {
    weir_sdk::host::in_batch(|| {
        let mut parsed = Vec::with_capacity(records.len());
        for record in records {
            let _ = parser.parse(record, &mut parsed);
        }
        parsed.into_iter().filter_map(|e| enricher.enrich(e).ok().flatten()).collect()
    })
}

/// The same chain through the SDK's batch drivers, natively: the plugins' Rust plus the
/// batch encoding and decoding the Wasm path also does, without Wasm. The gap between
/// this and `wasm` is what Wasm itself costs (code generation, boundary, allocator).
fn native_drivers(
    parser: &mut OrdersParser,
    enricher: &mut RestaurantEnricher,
    records: &[weir_sdk::RawRecord],
) -> usize {
    // The raw batch as the host builds it for the guest.
    let mut batch = weir_sdk::RawBatchBuilder::with_capacity(records.len(), 0);
    for r in records {
        batch.push(&r.data, r.key.as_deref(), &r.content_type, r.arrival_time).unwrap();
    }
    let parsed = weir_sdk::run_parse_batch(parser, &batch.finish());
    weir_sdk::run_enrich(enricher, &parsed.events).events.len()
}

struct WasmChain {
    parser: Plugin,
    enricher: Plugin,
}

impl WasmChain {
    async fn load(runtime: &Runtime) -> Self {
        let doc: serde_json::Value = serde_json::from_str(&restaurants_json()).unwrap();
        let reference = Arc::new(StaticReferenceData::from_json(&doc).unwrap());
        let parser = runtime
            .load(PluginId::new("orders-parser", "bench"), &component("orders_parser"), PluginOptions::default())
            .await
            .unwrap();
        let enricher = runtime
            .load(
                PluginId::new("restaurant-enricher", "bench"),
                &component("restaurant_enricher"),
                PluginOptions { reference, ..Default::default() },
            )
            .await
            .unwrap();
        Self { parser, enricher }
    }

    /// What the stream stage does: parse, hand the (validated) columns to the enricher,
    /// get validated columns back.
    async fn run(&self, records: Vec<RawRecord>) -> usize {
        let (parsed, _) = self.parser.parse("bench", records).await.unwrap();
        let (enriched, _) = self.enricher.enrich("bench", parsed.events).await.unwrap();
        enriched.events.len()
    }
}

/// Both chains, ready: the Wasm plugins loaded in a fresh runtime, the native ones
/// configured, the native host serving the same restaurants.
struct Fixture {
    tokio: tokio::runtime::Runtime,
    wasm: WasmChain,
    parser: OrdersParser,
    enricher: RestaurantEnricher,
}

impl Fixture {
    fn new() -> Self {
        let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
        let wasm = tokio.block_on(WasmChain::load(&runtime));
        set_native_host(Box::new(MapHost::from_json(&restaurants_json()).unwrap()));
        let parser = OrdersParser::configure(&Config::default()).unwrap();
        let enricher = RestaurantEnricher::configure(&Config::default()).unwrap();
        Self { tokio, wasm, parser, enricher }
    }
}

fn chain(c: &mut Criterion) {
    let Fixture { tokio, wasm, mut parser, mut enricher } = Fixture::new();

    for batch in [1usize, 64, 1024] {
        let lines = order_lines(batch);
        // Both chains must do the same work.
        let native_out = native_chain(&mut parser, &mut enricher, &sdk_records(&lines));
        let wasm_out = tokio.block_on(wasm.run(raw_records(&lines)));
        assert_eq!(native_out.len(), wasm_out, "native and Wasm chains disagree");
        assert_eq!(native_drivers(&mut parser, &mut enricher, &sdk_records(&lines)), wasm_out);

        let mut group = c.benchmark_group(format!("parse+enrich/batch={batch}"));
        group.throughput(Throughput::Elements(batch as u64));
        if batch == 1 {
            group.sample_size(50).measurement_time(Duration::from_secs(4));
        }
        let sdk = sdk_records(&lines);
        group.bench_function("native", |b| b.iter(|| native_chain(&mut parser, &mut enricher, &sdk)));
        group.bench_function("native with batch encoding", |b| {
            b.iter(|| native_drivers(&mut parser, &mut enricher, &sdk))
        });
        group.bench_function("wasm", |b| {
            b.iter_batched(|| raw_records(&lines), |records| tokio.block_on(wasm.run(records)), BatchSize::SmallInput)
        });
        group.finish();
    }
}

/// The chain's halves apart, at batch 1024: where the time goes.
fn halves(c: &mut Criterion) {
    let Fixture { tokio, wasm, mut parser, mut enricher } = Fixture::new();
    let lines = order_lines(1024);
    let sdk = sdk_records(&lines);
    let parsed: Vec<Event> = weir_sdk::host::in_batch(|| {
        let mut out = Vec::new();
        for r in &sdk {
            parser.parse(r, &mut out).unwrap();
        }
        out
    });
    let columns = weir_events::Columns::encode(&parsed);

    let mut group = c.benchmark_group("parse/batch=1024");
    group.throughput(Throughput::Elements(1024));
    group.bench_function("native", |b| {
        b.iter(|| {
            weir_sdk::host::in_batch(|| {
                let mut out = Vec::with_capacity(sdk.len());
                for r in &sdk {
                    let _ = parser.parse(r, &mut out);
                }
                out
            })
        })
    });
    group.bench_function("wasm", |b| {
        b.iter_batched(
            || raw_records(&lines),
            |records| tokio.block_on(wasm.parser.parse("bench", records)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("enrich/batch=1024");
    group.throughput(Throughput::Elements(1024));
    group.bench_function("native", |b| {
        b.iter_batched(
            || parsed.clone(),
            |events| {
                weir_sdk::host::in_batch(|| {
                    events.into_iter().filter_map(|e| enricher.enrich(e).ok().flatten()).collect::<Vec<_>>()
                })
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("wasm", |b| {
        b.iter_batched(
            || columns.clone(),
            |columns| tokio.block_on(wasm.enricher.enrich("bench", columns)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("decode only (native)", |b| b.iter(|| columns.decode().unwrap()));
    group.bench_function("encode only (native)", |b| b.iter(|| weir_events::Columns::encode(&parsed)));
    group.finish();
}

fn instantiate(c: &mut Criterion) {
    let Fixture { tokio, wasm, .. } = Fixture::new();
    let mut group = c.benchmark_group("instance");
    group.bench_function("fresh (pooled instantiate + configure)", |b| {
        b.iter(|| tokio.block_on(wasm.enricher.start_instance()).unwrap())
    });
    group.finish();
}

fn compile(c: &mut Criterion) {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let mut group = c.benchmark_group("compile (no cache)");
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    for name in ["orders_parser", "restaurant_enricher", "restaurant_stats"] {
        let bytes = component(name);
        group.bench_function(format!("{name} ({} KB)", bytes.len() / 1000), |b| {
            b.iter(|| runtime.inspect(name, &bytes).unwrap())
        });
    }
    group.finish();
    let dir = std::env::temp_dir().join(format!("weir-bench-cache-{}", std::process::id()));
    let cached = Runtime::new(RuntimeConfig { cache_dir: Some(dir.clone()), ..Default::default() }).unwrap();
    let bytes = component("orders_parser");
    cached.inspect("warm", &bytes).unwrap();
    let mut group = c.benchmark_group("compile (from disk cache)");
    group.bench_function("orders_parser", |b| {
        b.iter(|| {
            let started = Instant::now();
            cached.inspect("orders_parser", &bytes).unwrap();
            started.elapsed()
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group!(benches, chain, halves, instantiate, compile);
criterion_main!(benches);
