//! The embedded log's durable append alone, as ingest uses it: is the log the ceiling of
//! ingest (issue 15 item 4), or the work around it?
//!
//! ```sh
//! cargo run --release -p weir-bench --bin log_append -- [APPENDS] [RECORDS_PER_APPEND] [CONCURRENCY] [ROUNDS]
//! ```
//!
//! `CONCURRENCY` threads each append `APPENDS / CONCURRENCY` times `RECORDS_PER_APPEND`
//! demo orders (the ingest benchmark's records, keyed by order id) to a fresh log of 2
//! shards, each append acknowledged only once durable (fsync'd, group commit). Prints
//! records/s, appends/s, the appends' p50/p99 and how many transactions (fsyncs) the
//! group commit needed, each round; then the same appends from one thread, for the ratio.

use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_cli::demo::sample_orders;
use weir_log::{EmbeddedLog, LogConfig, NewRecord};

struct Round {
    elapsed: Duration,
    latencies: Vec<Duration>,
    transactions: u64,
}

fn round(records: &Arc<Vec<Vec<NewRecord>>>, concurrency: usize) -> Round {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = LogConfig { shards_per_stream: 2, ..LogConfig::default() };
    let log = EmbeddedLog::open(&dir.path().join("log.redb"), config).expect("the log opens");
    let started = Instant::now();
    let threads: Vec<_> = (0..concurrency)
        .map(|client| {
            let (log, records) = (log.clone(), records.clone());
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                for append in records.iter().skip(client).step_by(concurrency) {
                    let sent = Instant::now();
                    log.append("orders", append.clone()).expect("the append succeeds");
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = threads.into_iter().flat_map(|t| t.join().expect("no panic")).collect();
    let elapsed = started.elapsed();
    latencies.sort();
    Round { elapsed, latencies, transactions: log.append_transactions() }
}

fn main() {
    let arg = |i: usize, default: usize| std::env::args().nth(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (appends, per_append, concurrency, rounds) = (arg(1, 2000), arg(2, 100), arg(3, 8), arg(4, 3));
    let orders: Vec<String> = sample_orders(appends * per_append, 11).into_iter().map(|o| o.line).collect();
    let now = weir_pipeline::now_micros();
    let records: Arc<Vec<Vec<NewRecord>>> = Arc::new(
        orders
            .chunks(per_append)
            .map(|chunk| {
                chunk
                    .iter()
                    .map(|line| NewRecord {
                        partition_key: None,
                        data: line.clone().into_bytes().into(),
                        content_type: "application/json".into(),
                        arrival_time: now,
                    })
                    .collect()
            })
            .collect(),
    );
    let bytes: usize = orders.iter().map(String::len).sum();
    println!(
        "{appends} appends × {per_append} records ({:.1} MB), {concurrency} threads against 1, {rounds} rounds",
        bytes as f64 / 1e6
    );
    let show = |name: &str, r: &Round| {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let n = r.latencies.len();
        println!(
            "{name:<12} {:>9.0} records/s  {:>7.0} appends/s  p50 {:>6.2} ms  p99 {:>6.2} ms  {} transactions ({:.1} appends each)",
            (n * per_append) as f64 / r.elapsed.as_secs_f64(),
            n as f64 / r.elapsed.as_secs_f64(),
            ms(r.latencies[n / 2]),
            ms(r.latencies[(n * 99 / 100).min(n - 1)]),
            r.transactions,
            n as f64 / r.transactions.max(1) as f64,
        );
    };
    for _ in 0..rounds {
        show(&format!("{concurrency} threads"), &round(&records, concurrency));
        show("1 thread", &round(&records, 1));
    }
}
