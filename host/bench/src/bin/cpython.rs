//! The Wasm parse → enrich chain against the same work as a plain CPython function (the
//! shape of a Firehose transformation Lambda), and against the plugins' Rust compiled
//! natively, on the same orders in one run (issue 15 item 6):
//!
//! ```sh
//! scripts/build-plugins.sh
//! cargo run --release -p weir-bench --bin cpython -- 20000 7
//! ```
//!
//! - **wasm**: the production runtime — `Plugin::parse` over the raw records in batches
//!   of 1 024, the validated columnar batch handed to `Plugin::enrich`, its validated
//!   output;
//! - **native**: the plugins' own Rust types called directly, a batch at a time;
//! - **cpython**: `host/bench/python/orders_chain.py`, the same checks and fields written
//!   as one Python function over the same records, timed inside the interpreter (its
//!   start and the reading of the file left out).
//!
//! Each runs `rounds` times over every record (default 7), interleaved; the median is
//! kept. Every variant must produce the same number of events, errors and dropped
//! orders, or the run stops.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use orders_parser::OrdersParser;
use restaurant_enricher::RestaurantEnricher;
use weir_bench::{component, order_lines, raw_record, restaurants_json, sdk_record};
use weir_runtime::{Plugin, PluginId, PluginOptions, Runtime, RuntimeConfig, StaticReferenceData};
use weir_sdk::host::{MapHost, set_native_host};
use weir_sdk::{Config, Enricher, Parser};

const BATCH: usize = 1024;

/// What a variant produced: events, refused records, dropped test orders.
type Outcome = (usize, usize, usize);

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

async fn wasm_chain(parser: &Plugin, enricher: &Plugin, lines: &[String]) -> anyhow::Result<Outcome> {
    let (mut events, mut errors, mut dropped) = (0, 0, 0);
    for chunk in lines.chunks(BATCH) {
        let records = chunk.iter().map(|l| raw_record(l)).collect();
        let (parsed, _) = parser.parse("bench", records).await?;
        errors += parsed.errors.len();
        let parsed_events = parsed.events.len();
        let (enriched, _) = enricher.enrich("bench", parsed.events).await?;
        errors += enriched.errors.len();
        events += enriched.events.len();
        dropped += parsed_events - enriched.errors.len() - enriched.counts.iter().filter(|&&c| c > 0).count();
    }
    Ok((events, errors, dropped))
}

fn native_chain(parser: &mut OrdersParser, enricher: &mut RestaurantEnricher, lines: &[String]) -> Outcome {
    let (mut events, mut errors, mut dropped) = (0, 0, 0);
    for chunk in lines.chunks(BATCH) {
        weir_sdk::host::in_batch(|| {
            let mut parsed = Vec::with_capacity(chunk.len());
            for line in chunk {
                if parser.parse(&sdk_record(line), &mut parsed).is_err() {
                    errors += 1;
                }
            }
            for event in parsed {
                match enricher.enrich(event) {
                    Ok(Some(_)) => events += 1,
                    Ok(None) => dropped += 1,
                    Err(_) => errors += 1,
                }
            }
        });
    }
    (events, errors, dropped)
}

/// One CPython run of `rounds` rounds: the outcome and each round's seconds.
fn cpython(python: &str, orders: &Path, restaurants: &Path, rounds: usize) -> anyhow::Result<(Outcome, Vec<f64>)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/orders_chain.py");
    let output = std::process::Command::new(python)
        .arg(&script)
        .arg(orders)
        .arg(restaurants)
        .arg(rounds.to_string())
        .output()?;
    anyhow::ensure!(output.status.success(), "{python} failed: {}", String::from_utf8_lossy(&output.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let count = |name: &str| answer[name].as_u64().unwrap_or(u64::MAX) as usize;
    let rounds = answer["rounds_ns"].as_array().map(Vec::as_slice).unwrap_or_default();
    let seconds = rounds.iter().filter_map(serde_json::Value::as_f64).map(|ns| ns / 1e9).collect();
    Ok(((count("events"), count("errors"), count("dropped")), seconds))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(20_000);
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(7).max(1);
    let python = std::env::var("WEIR_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let lines = order_lines(n);
    let dir = tempfile::tempdir()?;
    let (orders, restaurants) = (dir.path().join("orders.ndjson"), dir.path().join("restaurants.json"));
    std::fs::write(&orders, lines.join("\n"))?;
    std::fs::write(&restaurants, restaurants_json())?;

    let runtime = Runtime::new(RuntimeConfig::default())?;
    let doc: serde_json::Value = serde_json::from_str(&restaurants_json())?;
    let reference = Arc::new(StaticReferenceData::from_json(&doc).map_err(anyhow::Error::msg)?);
    let parser = runtime
        .load(PluginId::new("orders-parser", "bench"), &component("orders_parser"), PluginOptions::default())
        .await?;
    let enricher = runtime
        .load(
            PluginId::new("restaurant-enricher", "bench"),
            &component("restaurant_enricher"),
            PluginOptions { reference, ..Default::default() },
        )
        .await?;
    set_native_host(Box::new(MapHost::from_json(&restaurants_json()).map_err(anyhow::Error::msg)?));
    let mut native_parser = OrdersParser::configure(&Config::default()).map_err(anyhow::Error::msg)?;
    let mut native_enricher = RestaurantEnricher::configure(&Config::default()).map_err(anyhow::Error::msg)?;

    let (mut wasm_times, mut native_times, mut python_times) = (Vec::new(), Vec::new(), Vec::new());
    let mut outcomes: Vec<(&str, Outcome)> = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let wasm = wasm_chain(&parser, &enricher, &lines).await?;
        wasm_times.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        let native = native_chain(&mut native_parser, &mut native_enricher, &lines);
        native_times.push(started.elapsed().as_secs_f64());
        // One interpreter run per round, a single timed pass in it: as a Lambda's warm
        // invocation over a batch of records.
        let (py, seconds) = cpython(&python, &orders, &restaurants, 1)?;
        python_times.extend(seconds);
        outcomes = vec![("wasm", wasm), ("native", native), ("cpython", py)];
        anyhow::ensure!(
            wasm == native && native == py,
            "the variants disagree (events, errors, dropped): {outcomes:?}"
        );
    }
    let (events, errors, dropped) = outcomes[0].1;
    println!(
        "{n} orders ({events} events, {errors} refused, {dropped} test orders dropped), {rounds} rounds, medians:"
    );
    let python = median(python_times);
    println!("| variant | time | records/s | against CPython |");
    println!("| --- | --- | --- | --- |");
    for (name, times) in [("cpython", Vec::from([python])), ("wasm", wasm_times), ("native", native_times)] {
        let t = median(times);
        println!("| {name} | {:.1} ms | {:.0} | {:.2}× |", t * 1e3, n as f64 / t, python / t);
    }
    Ok(())
}
