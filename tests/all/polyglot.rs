//! Plugins in Python and JavaScript inside the streaming pipeline, next to the Rust one:
//! three streams, one per language of the restaurant enricher, fed the same orders; the
//! serving store then holds the same enriched order in each stream's table.

use std::path::Path;

use weir_client::request;
use weir_e2e::{Server, component};

use crate::streaming::{BASE, rt, ts};

fn config(dir: &Path) -> std::path::PathBuf {
    let restaurants = dir.join("restaurants.json");
    std::fs::write(
        &restaurants,
        r#"{"r-1": {"name": "Café Crème", "zone": "Downtown", "cuisine": "french"},
            "r-2": {"name": "寿司 Zen", "zone": "Exchange", "cuisine": "japanese"}}"#,
    )
    .unwrap();
    let mut text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
data_dir = "{data}"

[log]
shards = 2

[plugins.orders-parser]
path = "{parser}"
version = "1.0.0"

[reference.restaurants]
file = "{restaurants}"

[sinks.dead-letters]
type = "dead-letters"
"#,
        data = dir.join("data").display(),
        parser = component("orders_parser").display(),
        restaurants = restaurants.display(),
    );
    for (lang, file) in
        [("rs", "restaurant_enricher"), ("py", "restaurant_enricher_py"), ("js", "restaurant_enricher_js")]
    {
        text += &format!(
            r#"
[plugins.enricher-{lang}]
path = "{path}"
version = "1.0.0"

[sinks.orders-{lang}]
type = "serving"
key_field = "order_id"

[[streams]]
name = "orders-{lang}"
parser = "orders-parser"
enrichers = ["enricher-{lang}"]
batch_size = 64

[streams.routes]
raw = []
events = ["orders-{lang}"]
dead_letters = ["dead-letters"]
"#,
            path = component(file).display()
        );
    }
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn python_and_javascript_enrichers_run_in_the_pipeline_and_agree_with_rust() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let orders: Vec<String> = (0..200)
        .map(|i| {
            let restaurant = if i % 10 == 9 { "r-99" } else if i % 2 == 0 { "r-1" } else { "r-2" };
            format!(
                "{{\"order_id\":\"o-{i}\",\"restaurant_id\":\"{restaurant}\",\"status\":\"delivered\",\"total\":12.50,\"placed_at\":\"{}\",\"delivered_at\":\"{}\",\"test\":{}}}",
                ts(BASE + i * 30),
                ts(BASE + i * 30 + 60 * (10 + i % 25)),
                i % 20 == 3
            )
        })
        .collect();
    // Compiled code is shared between test runs: these components are large.
    let cache = std::env::temp_dir().join("weir-e2e-foreign-cache");
    let server = Server::start_with_env(&config, &[("WEIR_CACHE_DIR", cache.to_str().unwrap())]);
    rt().block_on(async {
        for lang in ["rs", "py", "js"] {
            let path = format!("/v1/streams/orders-{lang}/records?key_field=restaurant_id");
            let r = request(server.addr, "POST", &path, Some("application/x-ndjson"), orders.join("\n").as_bytes())
                .await
                .unwrap();
            assert_eq!(r.status, 200, "{}", r.body);
        }
        for lang in ["rs", "py", "js"] {
            wait_for_stream(server.addr, &format!("orders-{lang}")).await;
        }
        let mut served = 0;
        for i in 0..200 {
            let mut documents = Vec::new();
            for lang in ["rs", "py", "js"] {
                let r =
                    request(server.addr, "GET", &format!("/v1/serving/orders-{lang}/o-{i}"), None, b"").await.unwrap();
                documents.push((r.status, serde_json::from_str::<serde_json::Value>(&r.body).unwrap()));
            }
            let (rust_status, rust) = &documents[0];
            for (lang, (status, document)) in ["py", "js"].iter().zip(&documents[1..]) {
                assert_eq!(status, rust_status, "o-{i} in {lang}: {document} vs {rust}");
                if *status == 200 {
                    assert_eq!(document["fields"], rust["fields"], "o-{i}: {lang} and Rust enrich alike");
                    let lineage = document["lineage"].as_str().unwrap();
                    assert_eq!(lineage, format!("orders-parser@1.0.0>enricher-{lang}@1.0.0"));
                }
            }
            if *rust_status == 200 {
                served += 1;
                assert!(rust["fields"]["restaurant_name"].is_string(), "{rust}");
            }
        }
        // 20 orders of an unknown restaurant and 10 test orders are not served.
        assert_eq!(served, 200 - 20 - 10);
    });
    assert!(server.stop().success());
}

/// Waits until `stream` has nothing pending.
async fn wait_for_stream(addr: std::net::SocketAddr, stream: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let r = request(addr, "GET", "/healthz", None, b"").await.unwrap();
        let health: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        if health["pending"][stream] == 0 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{stream} not caught up: {}", r.body);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
