//! Scale-out of the streaming layer on AWS's local stand-ins: records/s from ingest
//! through Kinesis (kinesalite) to the lake on S3 (moto), with one `weir serve` host and
//! with two sharing a 4-shard stream through their leases, in the same run; and the
//! latency from a record's arrival in Kinesis to its raw-archive object on S3.
//!
//! `cargo run -p weir-bench --bin kinesis_scale -- [RECORDS] [CONCURRENCY]` after
//! `scripts/build-plugins.sh` and `scripts/test-tools.sh` (kinesalite, moto), with
//! `WEIR_BIN` the `weir` to run. Results: BENCHMARKS.md.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use object_store::{ObjectStore as _, ObjectStoreExt as _};
use weir_bench::child::{ChildServer, percentile};
use weir_config::S3Location;
use weir_e2e::aws_servers::{
    AWS_ENV, create_bucket, create_kinesis_stream, kinesis_log_section, s3_sink_section, servers,
};

const SHARDS: i32 = 4;

struct Figures {
    records: usize,
    ingest: Duration,
    end_to_end: Duration,
    latencies: Vec<Duration>,
}

fn arg(n: usize, default: usize) -> usize {
    std::env::args().nth(n).and_then(|a| a.parse().ok()).unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let records = arg(1, 8000);
    let concurrency = arg(2, 4);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut results = Vec::new();
    for hosts in [1, 2] {
        let figures = rt.block_on(run(hosts, records, concurrency))?;
        let mut latencies = figures.latencies.clone();
        println!(
            "{hosts} host(s): {:>7.0} records/s end to end ({} records in {:.2} s; ingest {:.2} s), arrival → S3 p50 {:.0} ms, p99 {:.0} ms",
            figures.records as f64 / figures.end_to_end.as_secs_f64(),
            figures.records,
            figures.end_to_end.as_secs_f64(),
            figures.ingest.as_secs_f64(),
            percentile(&mut latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&mut latencies, 0.99).as_secs_f64() * 1e3,
        );
        results.push(figures.records as f64 / figures.end_to_end.as_secs_f64());
    }
    println!("2 hosts / 1 host: {:.2}×", results[1] / results[0]);
    Ok(())
}

fn config(dir: &Path, id: &str, bucket: &str) -> anyhow::Result<std::path::PathBuf> {
    let servers = servers();
    let plugins = weir_bench::component_dir();
    let reference: serde_json::Value = serde_json::from_str(&weir_bench::restaurants_json())?;
    std::fs::write(dir.join("restaurants.json"), reference["restaurants"].to_string())?;
    let mut text = format!(
        r#"[server]
listen = "127.0.0.1:0"
data_dir = "{data}"

{log}
[plugins.orders-parser]
path = "{plugins}/orders_parser.wasm"

[plugins.restaurant-enricher]
path = "{plugins}/restaurant_enricher.wasm"

[reference.restaurants]
file = "{restaurants}"

[[streams]]
name = "orders"
parser = "orders-parser"
enrichers = ["restaurant-enricher"]
"#,
        data = dir.join("data").display(),
        log = kinesis_log_section(&servers.kinesis, &servers.dynamodb, &format!("{id}-"), &format!("{id}-checkpoints")),
        plugins = plugins.display(),
        restaurants = dir.join("restaurants.json").display(),
    );
    for kind in ["lake", "dead-letters"] {
        text.push_str(&s3_sink_section(kind, bucket, "lake"));
    }
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

async fn run(hosts: usize, records: usize, concurrency: usize) -> anyhow::Result<Figures> {
    let servers = servers();
    let id = format!("bench{}-{hosts}", std::process::id());
    let bucket = format!("{id}-lake");
    create_bucket(&bucket);
    create_kinesis_stream(&format!("{id}-orders"), SHARDS).await;
    let dirs: Vec<tempfile::TempDir> = (0..hosts).map(|_| tempfile::tempdir()).collect::<Result<_, _>>()?;
    let mut servers_up = Vec::new();
    for dir in &dirs {
        servers_up.push(ChildServer::weir(&config(dir.path(), &id, &bucket)?, &AWS_ENV)?);
    }
    // One lease per host per 2 s round: 4 rounds and both hosts hold their two shards.
    tokio::time::sleep(Duration::from_secs(12)).await;

    let lines = weir_bench::order_lines(records);
    let bodies: Arc<Vec<String>> = Arc::new(lines.chunks(100).map(|chunk| chunk.join("\n")).collect());
    let addrs: Vec<SocketAddr> = servers_up.iter().map(|s| s.addr).collect();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..concurrency {
        let (bodies, addr) = (bodies.clone(), addrs[client % addrs.len()]);
        tasks.spawn(async move {
            for body in bodies.iter().skip(client).step_by(concurrency) {
                let path = "/v1/streams/orders/records?key_field=order_id";
                let r = weir_client::request(addr, "POST", path, Some("application/x-ndjson"), body.as_bytes()).await;
                let r = r.expect("ingest answers");
                assert_eq!(r.status, 200, "{}", r.body);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done?;
    }
    let ingest = started.elapsed();

    // Watch the raw archive on S3: each new object's lines are records landed, and their
    // arrival times (Kinesis') against when the object was first seen give the latency.
    let lake = S3Location {
        bucket: bucket.clone(),
        prefix: "lake".into(),
        region: Some("us-east-1".into()),
        endpoint: Some(servers.dynamodb.clone()),
        path_style: true,
    };
    let store = weir_aws::s3_store(&lake, Some(("test".into(), "test".into())))?;
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut landed = 0;
    let mut latencies = Vec::with_capacity(records);
    let deadline = Instant::now() + Duration::from_secs(600);
    while landed < records {
        anyhow::ensure!(Instant::now() < deadline, "only {landed} of {records} records reached the lake");
        let listed: Vec<object_store::ObjectMeta> = {
            use futures_util::TryStreamExt as _;
            store.list(Some(&"raw".into())).try_collect().await?
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros() as i64;
        for meta in listed {
            if !seen.insert(meta.location.to_string()) {
                continue;
            }
            let bytes = store.get(&meta.location).await?.bytes().await?;
            for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let line: serde_json::Value = serde_json::from_slice(line)?;
                let arrival = line["arrival_time"].as_str().and_then(|t| weir_events::time::parse_rfc3339(t).ok());
                if let Some(arrival) = arrival {
                    latencies.push(Duration::from_micros((now - arrival).max(0) as u64));
                }
                landed += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let end_to_end = started.elapsed();
    for server in servers_up {
        server.stop();
    }
    Ok(Figures { records: landed, ingest, end_to_end, latencies })
}
