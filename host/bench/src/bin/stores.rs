//! The production stores against the embedded ones, in one run: records/s written into
//! each (the serving table in redb and in DynamoDB, conditional and batch; the search
//! index in tantivy and through the Elasticsearch sink; the warehouse as Parquet and
//! merged into PostgreSQL), and serving lookup latency p50/p99 with the cache on and off,
//! DynamoDB next to redb.
//!
//! `cargo run --release -p weir-bench --bin stores -- [EVENTS] [COMMIT]` after
//! `scripts/test-tools.sh` (moto, PostgreSQL). DynamoDB is moto's and Elasticsearch is
//! the test suite's stand-in (`tests/elastic_standin.rs`), so those figures measure weir's
//! sinks and clients against local stand-ins, not AWS or an Elasticsearch cluster.
//! Lookups are timed in process (the reader the read API calls, without HTTP).
//! Results: BENCHMARKS.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_aws::{
    DynamoServingSettings, DynamoServingSink, DynamoServingTable, DynamoWriteMode, ElasticIndex, ElasticSettings,
    SqlDialect, SqlWarehouseSettings, SqlWarehouseSink,
};
use weir_bench::child::percentile;
use weir_e2e::aws_servers::{postgres, servers};
use weir_e2e::elastic_standin::ElasticStandIn;
use weir_events::{Event, Name, Value};
use weir_serving::{CacheSettings, DocumentCache, ServingDocuments, ServingSink, ServingStore};
use weir_sinks::{EventItem, Sink, SinkCommit, SinkItem};

fn arg(n: usize, default: usize) -> usize {
    std::env::args().nth(n).and_then(|a| a.parse().ok()).unwrap_or(default)
}

/// `events` order events in commits of `size`.
fn commits(events: usize, size: usize) -> Vec<SinkCommit> {
    (0..events)
        .step_by(size)
        .map(|first| {
            let items = (first..(first + size).min(events))
                .map(|i| {
                    let event = Event {
                        key: Some(format!("r-{}", i % 50)),
                        time: 1_795_690_800_000_000 + i as i64 * 1_000_000,
                        fields: vec![
                            (Name::from("order_id"), Value::from(format!("o-{i}").as_str())),
                            (Name::from("restaurant_name"), Value::from("Bäckerei Müller")),
                            (Name::from("status"), Value::from("delivered")),
                            (Name::from("total"), Value::Float(10.0 + (i % 40) as f64)),
                        ],
                    };
                    SinkItem::Event(Arc::new(EventItem { event, lineage: "orders-parser@1.0.0".into() }))
                })
                .collect();
            weir_e2e::commit_of("orders", "0", first as u64 + 1, items)
        })
        .collect()
}

/// Delivers every commit as a stage does (`weir_e2e::deliver_all`); records/s.
async fn write_all(sink: &dyn Sink, commits: &[SinkCommit]) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut records = 0;
    for commit in commits {
        let stats = weir_e2e::deliver_all(sink, commit).await;
        anyhow::ensure!(stats.rejected.is_empty(), "{}: rejected {:?}", sink.name(), stats.rejected);
        records += commit.records.len();
    }
    Ok(records as f64 / started.elapsed().as_secs_f64())
}

/// p50 and p99 of `lookups` lookups of random keys among `keys`, 4 at a time.
async fn time_lookups<F, Fut>(keys: usize, lookups: usize, lookup: F) -> (Duration, Duration)
where
    F: Fn(String) -> Fut + Send + Sync + 'static + Clone,
    Fut: std::future::Future<Output = ()> + Send,
{
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..4 {
        let lookup = lookup.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(lookups / 4);
            for i in 0..lookups / 4 {
                let key = format!("o-{}", (i * 7919 + client * 104_729) % keys);
                let started = Instant::now();
                lookup(key).await;
                latencies.push(started.elapsed());
            }
            latencies
        });
    }
    let mut all = Vec::new();
    while let Some(latencies) = tasks.join_next().await {
        all.extend(latencies.expect("a lookup task"));
    }
    (percentile(&mut all.clone(), 0.5), percentile(&mut all, 0.99))
}

fn unique(what: &str) -> String {
    format!("bench-{what}-{}", std::process::id())
}

fn main() -> anyhow::Result<()> {
    let events = arg(1, 20_000);
    let size = arg(2, 1000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let commits = commits(events, size);
    let dir = tempfile::tempdir()?;
    let credentials = Some(("test".to_owned(), "test".to_owned()));
    let documents =
        |sink: &str| ServingDocuments { sink: sink.into(), table: "orders".into(), key_field: Some("order_id".into()) };
    rt.block_on(async {
        println!(
            "{events} events in commits of {size}; records/s written (ratio to the embedded store of the same kind)"
        );
        // Serving tables.
        let store = ServingStore::open(
            &dir.path().join("serving.redb"),
            CacheSettings { max_entries: 100_000, ttl: Duration::from_secs(3600) },
        )?;
        let embedded = ServingSink::new("serving", "orders", Some("order_id".into()), store.clone());
        let redb = write_all(&embedded, &commits).await?;
        println!("serving  redb (embedded)            {redb:>9.0}");
        let mut dynamo_tables = Vec::new();
        for mode in [DynamoWriteMode::Conditional, DynamoWriteMode::Batch] {
            let settings = DynamoServingSettings {
                table: unique(&format!("{mode:?}").to_lowercase()),
                region: Some("us-east-1".into()),
                endpoint: Some(servers().dynamodb.clone()),
                create_table: true,
                write_mode: mode,
            };
            let table = Arc::new(DynamoServingTable::new(settings, credentials.clone()));
            let sink = DynamoServingSink::new(
                documents("dynamodb"),
                table.clone(),
                DocumentCache::new(CacheSettings::default()),
            );
            sink.prepare().await?;
            let rate = write_all(&sink, &commits).await?;
            println!("serving  DynamoDB {mode:<12?} (moto) {rate:>9.0}  {:.2}x", rate / redb);
            dynamo_tables.push(table);
        }
        // Search indexes.
        let index_settings = weir_search::IndexSettings {
            text_fields: vec!["restaurant_name".into(), "order_id".into()],
            numeric_fields: vec!["total".into()],
        };
        let tantivy = Arc::new(weir_search::SearchIndex::open("orders", &dir.path().join("search"), &index_settings)?);
        let tantivy_rate = write_all(&weir_search::SearchSink::new("search", tantivy), &commits).await?;
        println!("search   tantivy (embedded)         {tantivy_rate:>9.0}");
        let standin = ElasticStandIn::start();
        let elastic = ElasticIndex::new(
            "search",
            ElasticSettings {
                url: standin.url.clone(),
                index: "orders".into(),
                text_fields: index_settings.text_fields.clone(),
                numeric_fields: index_settings.numeric_fields.clone(),
                create_index: true,
            },
        )
        .map_err(anyhow::Error::msg)?;
        elastic.prepare().await?;
        let elastic_rate = write_all(&elastic, &commits).await?;
        println!("search   Elasticsearch (stand-in)   {elastic_rate:>9.0}  {:.2}x", elastic_rate / tantivy_rate);
        // Warehouses.
        let parquet = weir_sinks::Warehouse::new("warehouse", weir_sinks::local_store("warehouse", dir.path())?);
        let parquet_rate = write_all(&parquet, &commits).await?;
        println!("warehouse Parquet (embedded)        {parquet_rate:>9.0}");
        let sql = SqlWarehouseSink::new(
            "warehouse",
            SqlWarehouseSettings {
                url: postgres().url.clone(),
                table: unique("orders").replace('-', "_"),
                dialect: SqlDialect::Postgres,
                staging: None,
                iam_role: None,
                create_table: true,
            },
            None,
        );
        sql.prepare().await?;
        let sql_rate = write_all(&sql, &commits).await?;
        println!("warehouse PostgreSQL merge          {sql_rate:>9.0}  {:.2}x", sql_rate / parquet_rate);

        // Serving lookups: 8 000 of random keys, 4 concurrent, cache on (warmed) and off.
        let lookups = 8000;
        println!("\nserving lookups, {lookups} over {events} keys, 4 at a time: p50 / p99 (ratio to redb's)");
        let on = store.clone();
        let redb_lookup = move |key: String| {
            let store = on.clone();
            async move {
                store.get("orders", &key).expect("redb lookup");
            }
        };
        time_lookups(events, lookups, redb_lookup.clone()).await;
        let (redb_on_50, redb_on_99) = time_lookups(events, lookups, redb_lookup).await;
        let off = store.clone();
        let (redb_off_50, redb_off_99) = time_lookups(events, lookups, move |key| {
            let store = off.clone();
            async move {
                tokio::task::spawn_blocking(move || store.read("orders", &key).expect("redb read"))
                    .await
                    .expect("a read");
            }
        })
        .await;
        let table = dynamo_tables[0].clone();
        // A TTL longer than the run: "cache on" measures the cache's hits, after a pass
        // over the same keys that fills it.
        let cache = DocumentCache::new(CacheSettings { max_entries: 100_000, ttl: Duration::from_secs(3600) });
        let cached_lookup = {
            let (table, cache) = (table.clone(), cache.clone());
            move |key: String| {
                let (table, cache) = (table.clone(), cache.clone());
                async move {
                    if cache.get("orders", &key).is_none() {
                        let found = table.get(&key).await.expect("DynamoDB lookup").map(Arc::new);
                        cache.insert("orders", &key, found);
                    }
                }
            }
        };
        time_lookups(events, lookups, cached_lookup.clone()).await;
        let (dyn_on_50, dyn_on_99) = time_lookups(events, lookups, cached_lookup).await;
        let (dyn_off_50, dyn_off_99) = time_lookups(events, lookups, move |key| {
            let table = table.clone();
            async move {
                table.get(&key).await.expect("DynamoDB lookup");
            }
        })
        .await;
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!("redb      cache on   {:>8.1} µs / {:>8.1} µs", us(redb_on_50), us(redb_on_99));
        println!("redb      cache off  {:>8.1} µs / {:>8.1} µs", us(redb_off_50), us(redb_off_99));
        println!(
            "DynamoDB  cache on   {:>8.1} µs / {:>8.1} µs  {:.2}x / {:.2}x",
            us(dyn_on_50),
            us(dyn_on_99),
            us(dyn_on_50) / us(redb_on_50),
            us(dyn_on_99) / us(redb_on_99)
        );
        println!(
            "DynamoDB  cache off  {:>8.1} µs / {:>8.1} µs  {:.2}x / {:.2}x",
            us(dyn_off_50),
            us(dyn_off_99),
            us(dyn_off_50) / us(redb_off_50),
            us(dyn_off_99) / us(redb_off_99)
        );
        anyhow::Ok(())
    })
}
