//! Upload → live latency of the example plugins through the admin API: the upload (the
//! host validates, compiles, stores) then the activation (it loads the version and swaps
//! it in), from a second process, against a bare axum endpoint that receives the same
//! bytes and answers at once, in the same run (the machines are noisy: compare ratios).
//!
//! `cargo build --release -p weir && cargo run --release -p weir-bench --bin deploy -- [CACHED] [COLD]`
//! (after scripts/build-plugins.sh). "Cold": every upload is a new component (a custom
//! section with a nonce is appended), so it is compiled; "cached": the same component
//! under a new version, so compiled code comes from the cache. Results: BENCHMARKS.md.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use weir_bench::child::{ChildServer, percentile};
use weir_cli::demo::{DemoOptions, demo_config};
use weir_client::request_with_headers;

const TOKEN: &str = "bench-admin-token";

/// `component` with a custom section `weir-bench` holding `nonce`: different bytes, the
/// same code.
fn with_nonce(component: &[u8], nonce: u64) -> Vec<u8> {
    let name = b"weir-bench";
    let payload = nonce.to_le_bytes();
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(&payload);
    let mut out = component.to_vec();
    out.push(0); // custom section id
    out.push(section.len() as u8); // fits one LEB128 byte
    out.extend_from_slice(&section);
    out
}

async fn post(addr: SocketAddr, path: &str, content_type: &str, body: &[u8]) -> anyhow::Result<()> {
    let auth = format!("Bearer {TOKEN}");
    let headers = [("Authorization", auth.as_str()), ("Content-Type", content_type)];
    let r = request_with_headers(addr, "POST", path, &headers, body).await?;
    anyhow::ensure!(r.status < 300, "POST {path} answered {}: {}", r.status, r.body);
    Ok(())
}

/// Uploads `bytes` as `plugin@version` and activates it; returns the time for both.
async fn upload_and_activate(addr: SocketAddr, plugin: &str, version: &str, bytes: &[u8]) -> anyhow::Result<Duration> {
    let started = Instant::now();
    post(addr, &format!("/v1/plugins/{plugin}/versions?version={version}"), "application/wasm", bytes).await?;
    let body = format!("{{\"version\":\"{version}\"}}");
    post(addr, &format!("/v1/deployments/{plugin}/activate"), "application/json", body.as_bytes()).await?;
    Ok(started.elapsed())
}

async fn bare_server() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("bare listening on http://{}", listener.local_addr()?);
    let app = axum::Router::new()
        .route("/v1/plugins/{name}/versions", axum::routing::post(|_body: axum::body::Bytes| async { "{}" }))
        .route("/v1/deployments/{name}/activate", axum::routing::post(|_body: axum::body::Bytes| async { "{}" }))
        .layer(axum::extract::DefaultBodyLimit::disable());
    axum::serve(listener, app).await?;
    Ok(())
}

fn line(name: &str, latencies: &mut [Duration], baseline: Option<(Duration, Duration)>) -> String {
    let (p50, p99) = (percentile(latencies, 0.5), percentile(latencies, 0.99));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let ratio = baseline.map_or(String::new(), |(b50, b99)| {
        format!("  p50 {:>6.1}x  p99 {:>6.1}x of baseline", ms(p50) / ms(b50), ms(p99) / ms(b99))
    });
    format!("{name:<40} n={:<4} p50 {:>8.2} ms  p99 {:>8.2} ms{ratio}", latencies.len(), ms(p50), ms(p99))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--bare-server") {
        return bare_server().await;
    }
    let cached: usize = args.get(1).map_or(Ok(50), |a| a.parse())?;
    let cold: usize = args.get(2).map_or(Ok(10), |a| a.parse())?;

    let dir = std::env::temp_dir().join(format!("weir-bench-deploy-{}", std::process::id()));
    let options = DemoOptions { plugin_dir: weir_bench::component_dir(), data_dir: dir.clone(), events: 0, seed: 7 };
    demo_config(&options)?;
    let server = ChildServer::weir(&dir.join("demo.toml"), &[("WEIR_ADMIN_TOKEN", TOKEN)])?;
    let bare = ChildServer::this_binary("--bare-server", "bare listening on http://")?;

    println!("upload → live through the admin API: {cached} cached and {cold} cold deployments per plugin");
    let mut lines = Vec::new();
    let plugins = [
        ("orders-parser", "orders_parser"),
        ("restaurant-enricher", "restaurant_enricher"),
        ("restaurant-stats", "restaurant_stats"),
    ];
    let mut nonce = 0;
    for (plugin, file) in plugins {
        let bytes = weir_bench::component(file);
        let mut baseline = Vec::new();
        for i in 0..cached {
            baseline.push(upload_and_activate(bare.addr, plugin, &format!("b{i}"), &bytes).await?);
        }
        let b = (percentile(&mut baseline, 0.5), percentile(&mut baseline, 0.99));
        lines.push(line(&format!("{plugin}: baseline (bare axum)"), &mut baseline, None));
        let mut warm = Vec::new();
        for i in 0..cached {
            warm.push(upload_and_activate(server.addr, plugin, &format!("c{i}"), &bytes).await?);
        }
        lines.push(line(&format!("{plugin}: cached ({} KiB)", bytes.len() / 1024), &mut warm, Some(b)));
        let mut compiled = Vec::new();
        for i in 0..cold {
            nonce += 1;
            let fresh = with_nonce(&bytes, nonce);
            compiled.push(upload_and_activate(server.addr, plugin, &format!("n{i}"), &fresh).await?);
        }
        lines.push(line(&format!("{plugin}: cold (compiled)"), &mut compiled, Some(b)));
    }
    server.stop();
    bare.stop();
    for l in lines {
        println!("{l}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
