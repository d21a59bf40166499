//! The plugin registry, the admin API and hot swap through the real binary: uploads and
//! their refusals, tokens, activation while events stream in, canary, shadow,
//! auto-rollback, restart.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use weir_client::{HttpResponse, request_with_headers};
use weir_e2e::{Server, component};
use weir_log::canary_bucket;

use crate::streaming::{BASE, caught_up, rt, ts, write_config};

const ADMIN: &str = "admin-secret-token";
const READER: &str = "read-only-token";
const ENV: [(&str, &str); 2] = [("WEIR_ADMIN_TOKEN", ADMIN), ("WEIR_READ_TOKEN", READER)];

async fn call(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> HttpResponse {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/octet-stream")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth.as_str()));
    }
    request_with_headers(addr, method, path, &headers, body).await.unwrap()
}

fn json(r: &HttpResponse) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.body))
}

async fn upload(addr: SocketAddr, name: &str, version: &str, file: &str) -> HttpResponse {
    let bytes = std::fs::read(component(file)).unwrap();
    call(addr, "POST", &format!("/v1/plugins/{name}/versions?version={version}"), Some(ADMIN), &bytes).await
}

async fn action(addr: SocketAddr, name: &str, verb: &str, body: serde_json::Value) -> HttpResponse {
    let path = format!("/v1/deployments/{name}/{verb}");
    call(addr, "POST", &path, Some(ADMIN), body.to_string().as_bytes()).await
}

/// One event of the lake: shard, sequence number, partition key, lineage.
#[derive(Debug, Clone)]
struct LakeEvent {
    shard: u32,
    seq: u64,
    customer: String,
    lineage: String,
}

fn lake_events(dir: &Path) -> Vec<LakeEvent> {
    let files = weir_e2e::parquet_files(&dir.join("data/lake/events"));
    let mut events = Vec::new();
    for file in files {
        let shard: u32 = file
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("shard="))
            .unwrap()
            .parse()
            .unwrap();
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap())
                .unwrap()
                .build()
                .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let seqs = batch.column_by_name("_seq").unwrap().as_string::<i32>().clone();
            let lineages = batch.column_by_name("_lineage").unwrap().as_string::<i32>().clone();
            let customers = batch.column_by_name("customer_id").unwrap().as_string::<i32>().clone();
            for row in 0..batch.num_rows() {
                events.push(LakeEvent {
                    shard,
                    seq: seqs.value(row).parse().expect("the embedded log's positions are sequence numbers"),
                    customer: customers.value(row).to_owned(),
                    lineage: lineages.value(row).to_owned(),
                });
            }
        }
    }
    events.sort_by_key(|e| (e.shard, e.seq));
    events
}

/// A complete order of restaurant `restaurant` for customer `c-{i}`.
fn order(i: usize, restaurant: &str) -> String {
    let placed = BASE + i as i64;
    format!(
        "{{\"order_id\":\"o-{i}\",\"restaurant_id\":\"{restaurant}\",\"customer_id\":\"c-{i}\",\"status\":\"delivered\",\"total\":10.00,\"items\":1,\"placed_at\":\"{}\",\"delivered_at\":\"{}\",\"test\":false}}",
        ts(placed),
        ts(placed + 600)
    )
}

/// Sends orders `range` (restaurants r-1..r-5), partitioned by customer.
async fn send_orders(addr: SocketAddr, range: std::ops::Range<usize>) {
    let lines: Vec<String> = range.map(|i| order(i, &format!("r-{}", 1 + i % 5))).collect();
    send_lines(addr, &lines).await;
}

async fn send_lines(addr: SocketAddr, lines: &[String]) {
    let path = "/v1/streams/orders/records?key_field=customer_id";
    let r = request_with_headers(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/x-ndjson")],
        lines.join("\n").as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
}

/// A pipeline with a `chaos` enricher (the misbehaving test plugin, passing events
/// through) before the restaurant enricher, and no aggregator.
fn admin_config(dir: &Path, extra_server: &str) -> PathBuf {
    let config = write_config(dir, extra_server);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.truncate(text.find("[streams.aggregator]").unwrap());
    let text = text
        .replace("enrichers = [\"restaurant-enricher\"]", "enrichers = [\"chaos\", \"restaurant-enricher\"]")
        .replace("batch_size = 16", "batch_size = 32")
        + &format!(
            "\n[plugins.chaos]\npath = \"{}\"\nversion = \"1.0.0\"\n",
            component("misbehaving_enricher").display()
        )
        // One lake file per commit: these tests read the lake while the host runs.
        + "\n[sinks.lake]\ntype = \"lake\"\nroll_interval = \"0s\"\n\n[sinks.dead-letters]\ntype = \"dead-letters\"\n";
    // `[plugins.chaos]` must come before `[[streams]]` in spirit only: TOML tables may follow.
    std::fs::write(&config, text).unwrap();
    config
}

#[test]
fn every_bad_upload_and_every_bad_token_gets_its_4xx() {
    let dir = tempfile::tempdir().unwrap();
    let config = admin_config(dir.path(), "");
    std::fs::write(&config, std::fs::read_to_string(&config).unwrap() + "\n[admin]\nmax_upload_bytes = \"1MiB\"\n")
        .unwrap();
    let server = Server::start_with_env(&config, &ENV);
    let addr = server.addr;
    rt().block_on(async {
        let enricher = std::fs::read(component("restaurant_enricher")).unwrap();
        let path = "/v1/plugins/restaurant-enricher/versions?version=2";

        // Tokens.
        let r = call(addr, "GET", "/v1/plugins", None, b"").await;
        assert_eq!((r.status, json(&r)["code"].as_str()), (401, Some("unauthorized")), "{}", r.body);
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        let r = call(addr, "GET", "/v1/plugins", Some("wrong-token"), b"").await;
        assert_eq!(r.status, 401, "{}", r.body);
        let r = call(addr, "POST", path, Some(READER), &enricher).await;
        assert_eq!((r.status, json(&r)["code"].as_str()), (403, Some("forbidden")), "{}", r.body);
        assert!(r.body.contains("token read has the read role; this needs the admin role"), "{}", r.body);
        let r = call(addr, "GET", "/v1/plugins", Some(READER), b"").await;
        assert_eq!(r.status, 200, "a read token reads: {}", r.body);
        let r = call(addr, "GET", "/v1/openapi.json", None, b"").await;
        assert_eq!(r.status, 200);
        assert!(json(&r)["paths"]["/v1/plugins/{name}/versions"]["post"].is_object());
        // Every route the document describes is served (the answer is the route's own,
        // never the fallback's "no route serves" 404 or a 405).
        let document = json(&r);
        let paths = document["paths"].as_object().unwrap();
        assert!(paths.len() >= 20, "{paths:?}");
        for (template, item) in paths {
            let path = template.split('/').map(|s| if s.starts_with('{') { "x" } else { s }).collect::<Vec<_>>();
            let path = path.join("/");
            for method in item.as_object().unwrap().keys() {
                let method = method.to_ascii_uppercase();
                let r = call(addr, &method, &path, None, b"").await;
                assert_ne!(r.status, 405, "{method} {path}: {}", r.body);
                assert!(!r.body.contains("no route serves"), "{method} {path}: {}", r.body);
            }
        }

        // Uploads the host would not run.
        let core_module = wat::parse_str("(module)").unwrap();
        let forbidden_import = wat::parse_str(
            r#"(component
                 (import "acme:net/raw-socket@1.0.0" (instance))
                 (instance $none)
                 (export "weir:plugin/enrich@0.3.0" (instance $none)))"#,
        )
        .unwrap();
        let parser = std::fs::read(component("orders_parser")).unwrap();
        let future = std::fs::read(component("future_version")).unwrap();
        let mistyped = std::fs::read(component("mistyped_host")).unwrap();
        let too_large = vec![0u8; 2 << 20];
        let cases: [(&str, &[u8], u16, &str, &str); 9] = [
            ("not wasm", b"{\"hello\": \"world\"}", 400, "not_wasm", "not a WebAssembly component"),
            ("truncated header", b"\0asm", 400, "truncated", "truncated"),
            ("cut-off download", &enricher[..enricher.len() / 2], 400, "invalid_component", "truncated or corrupt"),
            ("core module", &core_module, 400, "core_module", "core WebAssembly module"),
            ("wrong world", &parser, 422, "wrong_world", "is a parser plugin"),
            ("unknown WIT version", &future, 422, "unsupported_wit_version", "weir:plugin@0.9.0"),
            ("forbidden import", &forbidden_import, 422, "forbidden_import", "imports acme:net/raw-socket@1.0.0"),
            ("mistyped host import", &mistyped, 422, "mistyped_import", "`counter-add` has the wrong type"),
            ("too large", &too_large, 413, "too_large", "over the upload limit of 1048576 bytes"),
        ];
        for (what, bytes, status, code, message) in cases {
            let r = call(addr, "POST", path, Some(ADMIN), bytes).await;
            assert_eq!(r.status, status, "{what}: {}", r.body);
            let body = json(&r);
            assert_eq!(body["code"], code, "{what}: {}", r.body);
            assert!(body["error"].as_str().unwrap().contains(message), "{what}: {}", r.body);
        }

        // A good upload, the same again, other bytes under the same version.
        let r = call(addr, "POST", path, Some(ADMIN), &enricher).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let record = json(&r);
        assert_eq!((record["name"].as_str(), record["version"].as_str()), (Some("restaurant-enricher"), Some("2")));
        assert_eq!(record["world"], "enricher");
        assert_eq!(record["uploaded_by"], "admin");
        assert_eq!(record["sha256"].as_str().unwrap().len(), 64);
        assert_eq!(call(addr, "POST", path, Some(ADMIN), &enricher).await.status, 200, "idempotent");
        let misbehaving = std::fs::read(component("misbehaving_enricher")).unwrap();
        let r = call(addr, "POST", path, Some(ADMIN), &misbehaving).await;
        assert_eq!((r.status, json(&r)["code"].as_str()), (409, Some("version_exists")), "{}", r.body);

        // A version in use cannot be deleted; an unused one can.
        let r = call(addr, "DELETE", "/v1/plugins/restaurant-enricher/versions/1.0.0", Some(ADMIN), b"").await;
        assert_eq!((r.status, json(&r)["code"].as_str()), (409, Some("in_use")), "{}", r.body);
        let r = call(addr, "DELETE", "/v1/plugins/restaurant-enricher/versions/2", Some(ADMIN), b"").await;
        assert_eq!(r.status, 204, "{}", r.body);

        // Every action is in the audit log, refusals included.
        let r = call(addr, "GET", "/v1/audit?limit=1000", Some(READER), b"").await;
        let entries = json(&r)["entries"].as_array().unwrap().clone();
        let uploads = entries.iter().filter(|e| e["action"] == "upload").count();
        assert_eq!(uploads, 12, "{entries:?}");
        let refused = entries.iter().filter(|e| e["result"].as_str().unwrap().starts_with("refused")).count();
        assert_eq!(refused, 9 + 1 + 1, "9 bad uploads, the conflicting version, the delete in use");
        assert!(entries.iter().all(|e| e["actor"] == "admin" && e["at"].as_str().is_some()));
    });
}

#[test]
fn a_swap_while_events_stream_in_loses_nothing_and_switches_once_per_shard() {
    let dir = tempfile::tempdir().unwrap();
    let config = admin_config(dir.path(), "");
    let server = Server::start_with_env(&config, &ENV);
    let addr = server.addr;
    let total = 1200;
    rt().block_on(async {
        let r = upload(addr, "restaurant-enricher", "2.0.0", "restaurant_enricher").await;
        assert_eq!(r.status, 201, "{}", r.body);
        // The sender streams the orders in chunks; the swap comes once half of them are
        // sent and some processed by 1.0.0, and the last quarter waits for it, so that
        // both versions see events however fast or slow the machine is.
        let half_sent = Arc::new(tokio::sync::Notify::new());
        let activated = Arc::new(tokio::sync::Notify::new());
        let sender = {
            let (half_sent, activated) = (half_sent.clone(), activated.clone());
            tokio::spawn(async move {
                for chunk in (0..total).collect::<Vec<_>>().chunks(20) {
                    if chunk[0] == total / 2 {
                        half_sent.notify_one();
                    }
                    if chunk[0] == total * 3 / 4 {
                        activated.notified().await;
                    }
                    send_orders(addr, chunk[0]..chunk[0] + chunk.len()).await;
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            })
        };
        half_sent.notified().await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let health = json(&call(addr, "GET", "/healthz", None, b"").await);
            if health["pending"]["orders"].as_u64().is_some_and(|pending| pending < total as u64 / 2) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "nothing processed before the swap: {health}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let r = action(addr, "restaurant-enricher", "activate", serde_json::json!({"version": "2.0.0"})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        activated.notify_one();
        sender.await.unwrap();
        caught_up(addr).await;
    });
    server.stop();
    let events = lake_events(dir.path());
    assert_eq!(events.len(), total, "every order delivered once");
    let mut customers: Vec<&str> = events.iter().map(|e| e.customer.as_str()).collect();
    customers.sort();
    customers.dedup();
    assert_eq!(customers.len(), total, "no order processed twice");
    let v1 = "orders-parser@1.0.0>chaos@1.0.0>restaurant-enricher@1.0.0";
    let v2 = "orders-parser@1.0.0>chaos@1.0.0>restaurant-enricher@2.0.0";
    let mut switched_shards = 0;
    for shard in 0..2 {
        let lineages: Vec<&str> = events.iter().filter(|e| e.shard == shard).map(|e| e.lineage.as_str()).collect();
        assert!(lineages.iter().all(|l| *l == v1 || *l == v2), "{lineages:?}");
        let first_v2 = lineages.iter().position(|l| *l == v2).unwrap_or(lineages.len());
        assert!(lineages[first_v2..].iter().all(|l| *l == v2), "shard {shard}: back to v1 after v2");
        switched_shards += usize::from(first_v2 > 0 && first_v2 < lineages.len());
    }
    assert!(switched_shards >= 1, "the swap landed mid-stream on at least one shard");
}

#[test]
fn canary_takes_its_share_of_keys_shadow_reports_differences_and_a_failing_canary_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let config = admin_config(dir.path(), "");
    let server = Server::start_with_env(&config, &ENV);
    let addr = server.addr;
    rt().block_on(async {
        // Canary: 10 % of partition keys through orders-parser 2.
        assert_eq!(upload(addr, "orders-parser", "2", "orders_parser").await.status, 201);
        let r = action(addr, "orders-parser", "canary", serde_json::json!({"version": "2", "percent": 10})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        send_orders(addr, 0..1000).await;
        caught_up(addr).await;
        let r = action(addr, "orders-parser", "promote", serde_json::json!({})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(json(&r)["live"], "2");

        // Shadow: the same component finds no difference; another finds one per order.
        assert_eq!(upload(addr, "chaos", "same", "misbehaving_enricher").await.status, 201);
        assert_eq!(upload(addr, "chaos", "enriching", "restaurant_enricher").await.status, 201);
        let r = action(addr, "chaos", "shadow", serde_json::json!({"version": "same"})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        send_orders(addr, 1000..1100).await;
        caught_up(addr).await;
        let status = json(&call(addr, "GET", "/v1/deployments/chaos", Some(READER), b"").await);
        let stats = &status["candidate"]["stats"];
        assert_eq!((stats["compared"].as_u64(), stats["differing"].as_u64()), (Some(100), Some(0)), "{status}");
        let r = action(addr, "chaos", "shadow", serde_json::json!({"version": "enriching"})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        send_orders(addr, 1100..1200).await;
        caught_up(addr).await;
        let status = json(&call(addr, "GET", "/v1/deployments/chaos", Some(READER), b"").await);
        let stats = &status["candidate"]["stats"];
        assert_eq!((stats["compared"].as_u64(), stats["differing"].as_u64()), (Some(100), Some(100)), "{status}");
        let sample = &stats["samples"][0];
        assert!(sample["live"][0]["fields"]["restaurant_name"].is_null(), "{sample}");
        let name = sample["candidate"][0]["fields"]["restaurant_name"].as_str().unwrap_or_default();
        assert!(name.starts_with("Restaurant "), "{sample}");
        assert!(sample["record"].as_str().unwrap().starts_with("orders/"), "{sample}");
        let changes: Vec<&str> = sample["changes"].as_array().unwrap().iter().filter_map(|c| c.as_str()).collect();
        assert!(changes.iter().any(|c| c.starts_with("+restaurant_name: \"Restaurant ")), "field-level diff: {sample}");
        assert_eq!(action(addr, "chaos", "abort", serde_json::json!({})).await.status, 200);
        let status = json(&call(addr, "GET", "/v1/deployments/chaos", Some(READER), b"").await);
        let last = &status["last_candidate"];
        assert_eq!(
            (last["version"].as_str(), last["outcome"].as_str()),
            (Some("enriching"), Some("aborted")),
            "{status}"
        );
        assert_eq!((last["mode"].as_str(), last["compared"].as_u64()), (Some("shadow"), Some(100)), "{status}");

        // A canary that fails: orders of an unknown restaurant are record errors for the
        // enriching version, so it is rolled back after 20 inputs.
        let body = serde_json::json!({"version": "enriching", "percent": 100, "min_inputs": 20});
        assert_eq!(action(addr, "chaos", "canary", body).await.status, 200);
        let unknown: Vec<String> = (1200..1300).map(|i| order(i, "r-99")).collect();
        send_lines(addr, &unknown).await;
        caught_up(addr).await;
        let status = json(&call(addr, "GET", "/v1/deployments/chaos", Some(READER), b"").await);
        assert!(status["candidate"].is_null(), "rolled back: {status}");
        assert_eq!(status["live"], "1.0.0");
        let audit = json(&call(addr, "GET", "/v1/audit", Some(READER), b"").await);
        let rollback = audit["entries"].as_array().unwrap().iter().find(|e| e["action"] == "auto-rollback").cloned();
        let rollback = rollback.expect("an auto-rollback entry");
        assert_eq!((rollback["actor"].as_str(), rollback["target"].as_str()), (Some("weir"), Some("chaos@enriching")));
        assert!(rollback["result"].as_str().unwrap().contains("over the threshold of 5.0%"), "{rollback}");
        // The status says what happened to it, after the fact.
        let status = json(&call(addr, "GET", "/v1/deployments/chaos", Some(READER), b"").await);
        let last = &status["last_candidate"];
        assert_eq!((last["outcome"].as_str(), last["actor"].as_str()), (Some("rolled_back"), Some("weir")), "{status}");
        assert!(last["reason"].as_str().unwrap().contains("over the threshold of 5.0%"), "{status}");
        assert!(last["inputs"].as_u64().unwrap() >= 20 && last["failed"].as_u64().unwrap() > 0, "{status}");
        let output = std::process::Command::new(weir_e2e::weir_bin())
            .args(["plugin", "status", "chaos", "--admin", &format!("http://{addr}")])
            .env("WEIR_ADMIN_TOKEN", ADMIN)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&output.stdout);
        assert!(
            out.contains("last candidate: enriching (canary on 100% of keys) rolled back automatically at ")
                && out.contains("by weir: ")
                && out.contains("over the threshold of 5.0%"),
            "{out}"
        );
        send_orders(addr, 1300..1310).await;
        caught_up(addr).await;
    });
    server.stop();

    let events = lake_events(dir.path());
    let canary: BTreeMap<&str, &str> = events
        .iter()
        .filter(|e| e.customer["c-".len()..].parse::<usize>().unwrap_or(usize::MAX) < 1000)
        .map(|e| (e.customer.as_str(), e.lineage.split('>').next().unwrap()))
        .collect();
    assert_eq!(canary.len(), 1000);
    for (customer, parser) in &canary {
        let expected = if canary_bucket(Some(customer)) < 10 { "orders-parser@2" } else { "orders-parser@1.0.0" };
        assert_eq!(*parser, expected, "{customer}");
    }
    let share = canary.values().filter(|p| **p == "orders-parser@2").count();
    assert!((60..=140).contains(&share), "about 10% of 1000 keys took the canary: {share}");
    // Nothing of the shadows was delivered; after the rollback the live chaos runs again.
    assert!(events.iter().all(|e| !e.lineage.contains("chaos@same") && !e.lineage.contains("chaos@enriching")));
    let number = |e: &LakeEvent| e.customer["c-".len()..].parse::<usize>().unwrap();
    let after: Vec<&LakeEvent> = events.iter().filter(|e| number(e) >= 1300).collect();
    assert_eq!(after.len(), 10);
    assert!(after.iter().all(|e| e.lineage == "orders-parser@2>chaos@1.0.0>restaurant-enricher@1.0.0"));
}

#[test]
fn a_restart_keeps_the_registry_and_the_active_versions() {
    let dir = tempfile::tempdir().unwrap();
    let config = admin_config(dir.path(), "");
    let server = Server::start_with_env(&config, &ENV);
    rt().block_on(async {
        assert_eq!(upload(server.addr, "restaurant-enricher", "2", "restaurant_enricher").await.status, 201);
        let r = action(server.addr, "restaurant-enricher", "activate", serde_json::json!({"version": "2"})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(upload(server.addr, "orders-parser", "2", "orders_parser").await.status, 201);
        let r =
            action(server.addr, "orders-parser", "canary", serde_json::json!({"version": "2", "percent": 50})).await;
        assert_eq!(r.status, 200, "{}", r.body);
    });
    server.kill_9();
    let log = dir.path().join("stderr.log");
    let server = Server::start_logging_to(&config, &ENV, Some(&log));
    // The file and the registry disagree: said at the default level, with the command.
    let log = std::fs::read_to_string(&log).unwrap();
    let warning = log.lines().find(|l| l.contains("WARN") && l.contains("restaurant-enricher@2 from the registry"));
    let warning = warning.unwrap_or_else(|| panic!("no warning naming both versions: {log}"));
    assert!(warning.contains("not the configured file (restaurant-enricher@1.0.0"), "{warning}");
    assert!(
        warning
            .contains("--name restaurant-enricher --version 1.0.0 && weir plugin activate restaurant-enricher 1.0.0"),
        "{warning}"
    );
    rt().block_on(async {
        let r = call(server.addr, "GET", "/v1/deployments", Some(READER), b"").await;
        let deployments = json(&r)["deployments"].as_array().unwrap().clone();
        let by_name: BTreeMap<&str, &serde_json::Value> =
            deployments.iter().map(|d| (d["plugin"].as_str().unwrap(), d)).collect();
        assert_eq!(by_name["restaurant-enricher"]["live"], "2");
        assert_eq!(by_name["restaurant-enricher"]["previous"], serde_json::json!(["1.0.0"]));
        assert_eq!(by_name["orders-parser"]["candidate"]["percent"], 50);
        assert_eq!(by_name["chaos"]["live"], "1.0.0");
        let r = call(server.addr, "GET", "/v1/plugins/restaurant-enricher", Some(READER), b"").await;
        let versions: Vec<String> = json(&r)["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(versions.len(), 2, "{versions:?}");
        send_orders(server.addr, 0..40).await;
        caught_up(server.addr).await;
        let r = action(server.addr, "restaurant-enricher", "rollback", serde_json::json!({})).await;
        assert_eq!(json(&r)["live"], "1.0.0", "{}", r.body);
    });
    server.stop();
    let events = lake_events(dir.path());
    assert_eq!(events.len(), 40);
    assert!(events.iter().all(|e| e.lineage.ends_with("restaurant-enricher@2")), "the restored version ran");
}

#[test]
fn a_live_version_this_host_cannot_run_gives_way_to_the_configured_file_and_the_host_starts() {
    use weir_registry::Deployment;
    let dir = tempfile::tempdir().unwrap();
    let config = admin_config(dir.path(), "");
    // A first start writes the deployments of the configured files.
    Server::start_with_env(&config, &ENV).stop();
    // What an upgrade of weir leaves behind: the registry's live enricher was built against
    // a WIT version this host does not implement.
    store_future_enricher(
        dir.path(),
        Deployment {
            plugin: "restaurant-enricher".into(),
            live: "0.9-build".into(),
            previous: vec!["1.0.0".into()],
            candidate: None,
            last_candidate: None,
        },
    );
    // Validate, with the host stopped, says what a start will do and why.
    let validate = validate_stderr(&config);
    assert!(
        validate.contains(
            "the registry's live restaurant-enricher@0.9-build was built against weir:plugin@0.9.0, which this weir"
        ) && validate.contains("a start makes the configured file live (restaurant-enricher@1.0.0"),
        "{validate}"
    );
    let (server, error) = start_with_error_about_future_enricher(dir.path(), &config);
    assert!(error.contains("runs the configured file restaurant-enricher@1.0.0"), "{error}");
    assert!(error.contains("Rebuild that version"), "what to do: {error}");
    rt().block_on(async {
        let r = call(server.addr, "GET", "/v1/deployments", Some(READER), b"").await;
        let deployments = json(&r)["deployments"].as_array().unwrap().clone();
        let enricher = deployments.iter().find(|d| d["plugin"] == "restaurant-enricher").unwrap();
        assert_eq!(enricher["live"], "1.0.0", "{enricher}");
        assert_eq!(enricher["previous"], serde_json::json!(["1.0.0", "0.9-build"]), "{enricher}");
    });
    // The plugin kept running, on the configured file.
    orders_go_through_enricher_1_0_0(server, dir.path());
}

/// `weir validate --config CONFIG` with the host stopped: its stderr, once it succeeded.
fn validate_stderr(config: &std::path::Path) -> String {
    let cache = tempfile::tempdir().unwrap();
    let validate = weir_e2e::weir(&[&"validate", &"--config", &config], cache.path());
    assert_eq!(validate.code, 0, "{}", validate.all());
    validate.stderr
}

/// Starts the pipeline under `dir` logging to a file; returns it and the ERROR line of
/// its start that names `restaurant-enricher@0.9-build` (see [`store_future_enricher`]).
fn start_with_error_about_future_enricher(dir: &std::path::Path, config: &std::path::Path) -> (Server, String) {
    let log = dir.join("stderr.log");
    let server = Server::start_logging_to(config, &ENV, Some(&log));
    let log = std::fs::read_to_string(&log).unwrap();
    let error = log.lines().find(|l| l.contains("ERROR") && l.contains("restaurant-enricher@0.9-build"));
    let error = error.unwrap_or_else(|| panic!("no error naming the version that cannot run: {log}"));
    assert!(error.contains("was built against weir:plugin@0.9.0"), "the reason: {error}");
    (server, error.to_owned())
}

/// Sends 20 orders, stops the host, and checks that each became an event of the lake
/// enriched by `restaurant-enricher@1.0.0`.
fn orders_go_through_enricher_1_0_0(server: Server, dir: &std::path::Path) {
    rt().block_on(async {
        send_orders(server.addr, 0..20).await;
        caught_up(server.addr).await;
    });
    assert!(server.stop().success());
    let events = lake_events(dir);
    assert_eq!(events.len(), 20, "the plugin kept running");
    assert!(events.iter().all(|e| e.lineage.ends_with("restaurant-enricher@1.0.0")), "{events:?}");
}

/// Stores in the registry of the pipeline under `dir` (stopped) the enricher version
/// `0.9-build`, built against `weir:plugin@0.9.0`, and `deployment`.
fn store_future_enricher(dir: &std::path::Path, deployment: weir_registry::Deployment) {
    use weir_registry::{LocalRegistry, RegistryStore, VersionRecord};
    rt().block_on(async {
        let registry = LocalRegistry::open(&dir.join("data/registry")).unwrap();
        let bytes = std::fs::read(component("future_version")).unwrap();
        let sha256 = registry.put_component(bytes.clone()).await.unwrap();
        let record = VersionRecord {
            wit_version: "0.9.0".into(),
            size: bytes.len() as u64,
            ..crate::shared_registry::version("restaurant-enricher", "0.9-build", &sha256, "2026-11-01T00:00:00Z")
        };
        registry.put_version(record).await.unwrap();
        registry.put_deployment(deployment).await.unwrap();
    });
}

#[test]
fn a_candidate_this_host_cannot_run_is_ended_and_the_live_version_keeps_running() {
    use weir_registry::{Candidate, CandidateMode, Deployment};
    let dir = tempfile::tempdir().unwrap();
    let config = admin_config(dir.path(), "");
    Server::start_with_env(&config, &ENV).stop();
    // A shadow left running across an upgrade of weir, of a version built for the old WIT.
    store_future_enricher(
        dir.path(),
        Deployment {
            plugin: "restaurant-enricher".into(),
            live: "1.0.0".into(),
            previous: Vec::new(),
            candidate: Some(Candidate {
                version: "0.9-build".into(),
                mode: CandidateMode::Shadow,
                max_error_rate: 0.5,
                min_inputs: 10,
                since: "2026-11-01T00:00:00Z".into(),
            }),
            last_candidate: None,
        },
    );
    // Validate, with the host stopped, says what a start will do.
    let validate = validate_stderr(&config);
    assert!(
        validate.contains(
            "the registry's candidate restaurant-enricher@0.9-build was built against weir:plugin@0.9.0, which this"
        ) && validate.contains("a start ends it and keeps restaurant-enricher@1.0.0 live"),
        "{validate}"
    );
    let (server, error) = start_with_error_about_future_enricher(dir.path(), &config);
    assert!(error.contains("kept restaurant-enricher@1.0.0 live"), "{error}");
    rt().block_on(async {
        let r = call(server.addr, "GET", "/v1/deployments/restaurant-enricher", Some(READER), b"").await;
        let deployment = json(&r);
        assert_eq!(deployment["live"], "1.0.0", "{deployment}");
        assert_eq!(deployment["previous"], serde_json::json!([]), "the live version was not replaced: {deployment}");
        assert!(deployment["candidate"].is_null(), "{deployment}");
        let ended = &deployment["last_candidate"];
        assert_eq!((&ended["version"], &ended["outcome"]), (&"0.9-build".into(), &"aborted".into()), "{deployment}");
        assert!(ended["reason"].as_str().unwrap().contains("weir:plugin@0.9.0"), "{deployment}");
        let r = call(server.addr, "GET", "/v1/audit", Some(READER), b"").await;
        assert!(r.body.contains("the candidate was ended"), "audited: {}", r.body);
    });
    // The live version kept running.
    orders_go_through_enricher_1_0_0(server, dir.path());
}

#[test]
fn validate_tells_which_version_will_run_and_precedence_file_makes_the_file_live() {
    let dir = tempfile::tempdir().unwrap();
    let config = admin_config(dir.path(), "");
    let cache = dir.path().join("cache");
    let server = Server::start_with_env(&config, &ENV);
    rt().block_on(async {
        assert_eq!(upload(server.addr, "restaurant-enricher", "2", "restaurant_enricher").await.status, 201);
        let r = action(server.addr, "restaurant-enricher", "activate", serde_json::json!({"version": "2"})).await;
        assert_eq!(r.status, 200, "{}", r.body);
    });
    server.stop();

    // With the host stopped, validate reads the registry and says what a start will run.
    let validate = weir_e2e::weir(&[&"validate", &"--config", &config], &cache);
    assert_eq!(validate.code, 0, "{}", validate.all());
    assert!(
        validate
            .stderr
            .contains("restaurant-enricher: the registry runs restaurant-enricher@2, not the configured file"),
        "{}",
        validate.all()
    );
    assert!(validate.stderr.contains("weir plugin activate restaurant-enricher 1.0.0"), "{}", validate.all());
    assert!(validate.stdout.contains("4 plugins checked"), "{}", validate.all());

    // A component of the wrong world is refused by validate, as serve would refuse it.
    let text = std::fs::read_to_string(&config).unwrap();
    let wrong = dir.path().join("wrong.toml");
    std::fs::write(
        &wrong,
        text.replacen(
            &component("misbehaving_enricher").display().to_string(),
            &component("orders_parser").display().to_string(),
            1,
        ),
    )
    .unwrap();
    let refused = weir_e2e::weir(&[&"validate", &"--config", &wrong], &cache);
    assert_eq!(refused.code, 2, "{}", refused.all());
    assert!(refused.stderr.contains("plugins.chaos") && refused.stderr.contains("parser"), "{}", refused.all());

    // precedence = "file": the start makes the configured file live, the old one kept.
    std::fs::write(&config, text + "\n[registry]\nprecedence = \"file\"\n").unwrap();
    let note = weir_e2e::weir(&[&"validate", &"--config", &config], &cache);
    assert!(note.stderr.contains("a start makes the file live"), "{}", note.all());
    let log = dir.path().join("stderr.log");
    let server = Server::start_logging_to(&config, &ENV, Some(&log));
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains(
            "runs the configured file restaurant-enricher@1.0.0 instead of the registry's restaurant-enricher@2"
        ),
        "{log}"
    );
    rt().block_on(async {
        let r = call(server.addr, "GET", "/v1/deployments/restaurant-enricher", Some(READER), b"").await;
        let deployment = json(&r);
        assert_eq!(deployment["live"], "1.0.0", "{deployment}");
        assert_eq!(deployment["previous"], serde_json::json!(["1.0.0", "2"]), "{deployment}");
        let r = call(server.addr, "GET", "/v1/audit", Some(READER), b"").await;
        assert!(r.body.contains("the configured file replaced restaurant-enricher@2"), "{}", r.body);
        send_orders(server.addr, 0..10).await;
        caught_up(server.addr).await;
    });
    server.stop();
    let events = lake_events(dir.path());
    assert!(events.iter().all(|e| e.lineage.ends_with("restaurant-enricher@1.0.0")), "the file ran");
}

#[test]
fn fixtures_gate_activation_and_the_cli_drives_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let config = admin_config(dir.path(), "");
    let server = Server::start_with_env(&config, &ENV);
    let addr = server.addr;
    let fixtures = weir_e2e::plugin_file("restaurant-enricher/fixtures");
    let admin_url = format!("http://{addr}");
    let cli = |args: &[&str]| {
        let output = std::process::Command::new(weir_e2e::weir_bin())
            .args(["plugin"])
            .args(args)
            .args(["--admin", &admin_url])
            .env("WEIR_ADMIN_TOKEN", ADMIN)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
        (output.status.code(), text)
    };
    let component_path = component("restaurant_enricher").display().to_string();
    let input = fixtures.join("input.ndjson").display().to_string();
    let lookup = fixtures.join("lookup.json").display().to_string();
    // Fixtures whose expected output is wrong: they run at upload, and the upload is
    // refused, naming the user's files (not the host's copies) and the next step.
    let wrong = dir.path().join("wrong.ndjson");
    let expected = std::fs::read_to_string(fixtures.join("expected.ndjson")).unwrap();
    std::fs::write(&wrong, expected.replacen("delivered", "cancelled", 1)).unwrap();
    let wrong = wrong.display().to_string();
    let upload = ["upload", &component_path, "--name", "restaurant-enricher", "--version", "3"];
    let (code, out) = cli(&[&upload[..], &["--input", &input, "--expect", &wrong, "--lookup", &lookup]].concat());
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "restaurant-enricher@3 does not pass its fixtures (input {input}, expected {wrong}, lookup {lookup}), so they were not attached"
        )),
        "{out}"
    );
    assert!(out.contains("(422 fixtures_failed)") && out.contains("next: fix the plugin"), "{out}");
    assert!(out.contains("- ") && out.contains("+ "), "the diff is shown: {out}");
    assert!(out.contains(&format!("output differs from {wrong}")), "{out}");
    assert!(!out.contains("component.wasm") && !out.contains("input.txt"), "no host paths: {out}");
    assert!(out.contains("the upload was refused: restaurant-enricher@3 was not kept"), "{out}");
    let (code, out) = cli(&["activate", "restaurant-enricher", "3"]);
    assert_eq!(code, Some(1), "{out}");

    let good = fixtures.join("expected.ndjson").display().to_string();
    let upload = ["upload", &component_path, "--name", "restaurant-enricher", "--version", "4"];
    let (code, out) = cli(&[&upload[..], &["--set", "drop_test_orders"]].concat());
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("expected KEY=VALUE"), "{out}");
    let fixtures_args = ["--input", &input, "--expect", &good, "--lookup", &lookup, "--set", "drop_test_orders=true"];
    let (code, out) = cli(&[&upload[..], &fixtures_args[..]].concat());
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("configuration set: drop_test_orders=true"), "{out}");
    assert!(out.contains("fixtures pass: attached"), "{out}");
    // The same bytes again with fixtures: a fixtures update, said as such.
    let (code, out) = cli(&[&upload[..], &fixtures_args[..6]].concat());
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("already uploaded (the same bytes) restaurant-enricher@4"), "{out}");
    assert!(out.contains("fixtures pass: they replace the version's fixtures"), "{out}");
    let (code, out) = cli(&["activate", "restaurant-enricher", "4"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("restaurant-enricher: 4 is live (rollback returns to 1.0.0)"), "{out}");
    let (code, out) = cli(&["canary", "orders-parser", "1.0.0", "--percent", "20"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("1.0.0 is the canary on 20% of keys"), "{out}");
    let (code, out) = cli(&["abort", "orders-parser"]);
    assert_eq!((code, out.contains("orders-parser: 1.0.0 is live")), (Some(0), true), "{out}");
    let (code, out) = cli(&["list"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("restaurant-enricher") && l.contains(" 4 ") && l.contains("1.0.0, 4")),
        "{out}"
    );
    let (code, out) = cli(&["rollback", "restaurant-enricher"]);
    assert_eq!((code, out.contains("restaurant-enricher: 1.0.0 is live")), (Some(0), true), "{out}");
    let (code, out) = cli(&["promote", "restaurant-enricher"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("has no canary or shadow running"), "{out}");
    // An upload under a name no stream uses is stored, with a warning naming the used ones.
    let typo = ["upload", &component_path, "--name", "restaurant-enrichr", "--version", "1"];
    let (code, out) = cli(&typo);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("warning: no stream of this pipeline uses plugin \"restaurant-enrichr\"")
            && out.contains("chaos, orders-parser, restaurant-enricher"),
        "{out}"
    );
    let (code, out) = cli(&["delete", "restaurant-enrichr", "1"]);
    assert_eq!(code, Some(0), "{out}");
    // Delete: refused for the live version, done for one nothing uses.
    let (code, out) = cli(&["delete", "restaurant-enricher", "1.0.0"]);
    assert_eq!(code, Some(1), "{out}");
    let (code, out) = cli(&["upload", &component_path, "--name", "restaurant-enricher", "--version", "3"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = cli(&["delete", "restaurant-enricher", "3"]);
    assert_eq!((code, out.trim()), (Some(0), "restaurant-enricher@3 deleted"), "{out}");
    let (code, out) = cli(&["list"]);
    assert!(code == Some(0) && !out.contains("1.0.0, 3, 4"), "3 is gone: {out}");
    // Audit: what was done to one plugin, oldest first.
    let (code, out) = cli(&["audit", "restaurant-enricher"]);
    assert_eq!(code, Some(0), "{out}");
    let actions: Vec<&str> = out.lines().filter_map(|l| l.split_whitespace().nth(2)).collect();
    assert!(actions.contains(&"activate") && actions.contains(&"rollback") && actions.contains(&"delete"), "{out}");
    assert!(out.lines().all(|l| l.contains("restaurant-enricher")), "only that plugin: {out}");
    assert!(out.lines().last().is_some_and(|l| l.contains("delete") && l.contains("restaurant-enricher@3")), "{out}");
    drop(server);
}

#[test]
fn a_version_runs_with_its_own_configuration_which_the_plugin_checks_when_it_goes_live() {
    let dir = tempfile::tempdir().unwrap();
    let config = admin_config(dir.path(), "");
    let server = Server::start_with_env(&config, &ENV);
    let addr = server.addr;
    let config_path = "/v1/plugins/restaurant-enricher/versions/2.0.0/config";
    let test_order = |i: usize| order(i, "r-1").replace("\"test\":false", "\"test\":true");
    rt().block_on(async {
        // Version 1.0.0 runs with the plugin's configuration: test orders are dropped.
        send_lines(addr, &[test_order(800)]).await;
        let r = upload(addr, "restaurant-enricher", "2.0.0", "restaurant_enricher").await;
        assert_eq!(r.status, 201, "{}", r.body);

        let r = call(addr, "PUT", config_path, Some(ADMIN), br#"{"colour": "blue"}"#).await;
        assert_eq!((r.status, json(&r)["config"]["colour"].as_str()), (200, Some("blue")), "{}", r.body);
        let r = action(addr, "restaurant-enricher", "activate", serde_json::json!({"version": "2.0.0"})).await;
        assert!(r.status >= 400 && r.body.contains("colour"), "the plugin refuses a key it does not know: {}", r.body);
        let r = call(addr, "PUT", config_path, Some(ADMIN), br#"{"table": {"name": "venues"}}"#).await;
        assert_eq!((r.status, json(&r)["code"].as_str()), (400, Some("invalid_config")), "{}", r.body);
        let r = call(addr, "PUT", config_path, Some(READER), br#"{"drop_test_orders": false}"#).await;
        assert_eq!(r.status, 403, "{}", r.body);

        let r = call(addr, "PUT", config_path, Some(ADMIN), br#"{"drop_test_orders": false}"#).await;
        assert_eq!((r.status, json(&r)["config"]["drop_test_orders"].as_str()), (200, Some("false")), "{}", r.body);
        let r = action(addr, "restaurant-enricher", "activate", serde_json::json!({"version": "2.0.0"})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = call(addr, "PUT", config_path, Some(ADMIN), br#"{"drop_test_orders": true}"#).await;
        assert_eq!((r.status, json(&r)["code"].as_str()), (409, Some("in_use")), "{}", r.body);

        send_lines(addr, &[test_order(900)]).await;
        caught_up(addr).await;
    });
    let events = lake_events(dir.path());
    let test_orders: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e.customer == "c-800" || e.customer == "c-900")
        .map(|e| (e.customer.as_str(), e.lineage.as_str()))
        .collect();
    assert_eq!(test_orders.len(), 1, "only the order after the swap passes: {test_orders:?}");
    assert_eq!(test_orders[0].0, "c-900");
    assert!(test_orders[0].1.ends_with("restaurant-enricher@2.0.0"), "{test_orders:?}");
}

/// Polls `/healthz` until `check` holds on its JSON, for at most 60 s.
async fn health_until(addr: SocketAddr, what: &str, check: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let r = call(addr, "GET", "/healthz", None, b"").await;
        let health = json(&r);
        if check(&health) {
            return health;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: {}", r.body);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[test]
fn a_live_plugin_that_cannot_start_holds_its_records_and_they_flow_once_it_starts_again() {
    let dir = tempfile::tempdir().unwrap();
    let config = admin_config(dir.path(), "");
    // Fresh instances of `chaos` cannot start for 15 s from 30 s from now (time for the
    // host to start, its first instance being configured before); order o-5 makes the
    // warm instance trap in that time, so the next call needs a fresh one. The window is
    // what a loaded machine needs to send, trap, fail the fresh start and report it.
    let now_ms = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    let from = now_ms() + 30_000;
    let to = from + 15_000;
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[plugins.chaos]\n",
        &format!(
            "[plugins.chaos]\nconfig = {{ panic_on_order = \"o-5\", cannot_start_between_unix_ms = \"{from}-{to}\" }}\n"
        ),
    );
    std::fs::write(&config, text).unwrap();
    let server = Server::start_with_env(&config, &ENV);
    let addr = server.addr;
    let lines: Vec<String> = (1..=20).map(|i| order(i, "r-1")).collect();
    rt().block_on(async {
        assert!(now_ms() < from, "the host took more than 30 s to start");
        tokio::time::sleep(std::time::Duration::from_millis((from - now_ms()) as u64 + 300)).await;
        send_lines(addr, &lines).await;

        // The commits are held: reported at once, naming the plugin and its reason.
        let health = health_until(addr, "chaos@1.0.0 is reported as unable to start", |h| {
            h["failing_plugins"]["chaos@1.0.0"].is_object()
        })
        .await;
        assert!(now_ms() < to, "the check came too late to see the plugin held");
        assert_eq!(health["status"], "degraded");
        let last_error = health["failing_plugins"]["chaos@1.0.0"]["last_error"].as_str().unwrap();
        assert!(
            last_error.contains("could not start a fresh instance") && last_error.contains("cannot start between"),
            "{last_error}"
        );
        assert_ne!(health["pending"]["orders"], 0, "the held records wait in the log");
        let metrics = call(addr, "GET", "/metrics", None, b"").await.body;
        assert!(metrics.contains("weir_plugin_start_failures_total{plugin=\"chaos@1.0.0\"}"), "{metrics}");
        // And in the plugin's deployment status.
        let r = call(addr, "GET", "/v1/deployments/chaos", Some(READER), b"").await;
        let reason = json(&r)["cannot_start"]["chaos@1.0.0"]["last_error"].as_str().unwrap_or_default().to_owned();
        assert!(reason.contains("cannot start between"), "{}", r.body);

        // The cause clears: the stage's next try starts the plugin and the records flow.
        caught_up(addr).await;
        health_until(addr, "the host is healthy again", |h| h["status"] == "ok").await;
        let r = call(addr, "GET", "/v1/deployments/chaos", Some(READER), b"").await;
        assert!(json(&r)["cannot_start"].is_null(), "{}", r.body);
    });
    server.stop();
    let lake = weir_sinks::read_lake(&dir.path().join("data/lake")).unwrap();
    let dead: Vec<&(String, String)> = lake.dead_letters.iter().filter(|(_, reason)| !reason.contains("o-5")).collect();
    assert!(dead.is_empty(), "no record was dead-lettered for a plugin that could not start: {dead:?}");
    let mut customers: Vec<String> = lake_events(dir.path()).into_iter().map(|e| e.customer).collect();
    customers.sort();
    let mut expected: Vec<String> = (1..=20).filter(|&i| i != 5).map(|i| format!("c-{i}")).collect();
    expected.sort();
    assert_eq!(customers, expected, "every record but the poison one was delivered, once");
    assert_eq!(lake.dead_letters.len(), 1, "the poison record alone: {:?}", lake.dead_letters);
}

/// Two hosts sharing a registry (components in S3, the rest in DynamoDB, on moto): a
/// version uploaded and activated through one host runs on the other within seconds,
/// and a rollback through the other comes back; the audit log holds both hosts' actions.
#[test]
fn an_activation_through_one_host_of_a_shared_registry_runs_on_every_host() {
    use weir_e2e::aws_servers::{create_bucket, servers};
    let moto = &servers().dynamodb;
    let id = crate::s3_lake::unique("registry");
    create_bucket(&id);
    let shared = format!(
        "\n[registry]\ntype = \"aws\"\npath = \"s3://{id}/registry\"\ntable = \"{id}\"\nregion = \"us-east-1\"\n\
         endpoint = \"{moto}\"\npath_style = true\ndynamodb_endpoint = \"{moto}\"\n"
    );
    let env = [
        ENV[0],
        ENV[1],
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let host = |dir: &Path| {
        let config = admin_config(dir, "");
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(&shared);
        std::fs::write(&config, text).unwrap();
        Server::start_with_env(&config, &env)
    };
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = host(dir_a.path());
    let b = host(dir_b.path());
    let live_on = |addr: SocketAddr, plugin: &str| {
        rt().block_on(async {
            let r = call(addr, "GET", &format!("/v1/deployments/{plugin}"), Some(READER), b"").await;
            json(&r)["live"].as_str().unwrap_or_default().to_owned()
        })
    };
    let wait_live = |addr: SocketAddr, version: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while live_on(addr, "restaurant-enricher") != version {
            assert!(std::time::Instant::now() < deadline, "version {version} did not reach {addr}");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    rt().block_on(async {
        assert_eq!(upload(a.addr, "restaurant-enricher", "2", "restaurant_enricher").await.status, 201);
        let r = action(a.addr, "restaurant-enricher", "activate", serde_json::json!({"version": "2"})).await;
        assert_eq!(r.status, 200, "{}", r.body);
    });
    wait_live(b.addr, "2");
    rt().block_on(async {
        send_orders(b.addr, 0..40).await;
        caught_up(b.addr).await;
    });
    let events = lake_events(dir_b.path());
    assert_eq!(events.len(), 40);
    assert!(events.iter().all(|e| e.lineage.ends_with("restaurant-enricher@2")), "host B ran the version A activated");

    rt().block_on(async {
        let r = action(b.addr, "restaurant-enricher", "rollback", serde_json::json!({})).await;
        assert_eq!(json(&r)["live"], "1.0.0", "{}", r.body);
    });
    wait_live(a.addr, "1.0.0");
    let audit = rt().block_on(async { json(&call(a.addr, "GET", "/v1/audit", Some(READER), b"").await) });
    let actions: Vec<&str> =
        audit["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"activate") && actions.contains(&"rollback"), "{actions:?}");
    a.stop();
    b.stop();
}

#[test]
fn a_canary_on_records_without_a_partition_key_takes_its_share_by_record() {
    let dir = tempfile::tempdir().unwrap();
    let config = admin_config(dir.path(), "");
    let server = Server::start_with_env(&config, &ENV);
    let addr = server.addr;
    rt().block_on(async {
        assert_eq!(upload(addr, "orders-parser", "2", "orders_parser").await.status, 201);
        let r = action(addr, "orders-parser", "canary", serde_json::json!({"version": "2", "percent": 30})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        // No key_field, no key: the records carry no partition key.
        let lines: Vec<String> = (0..1000).map(|i| order(i, &format!("r-{}", 1 + i % 5))).collect();
        let r = request_with_headers(
            addr,
            "POST",
            "/v1/streams/orders/records",
            &[("Content-Type", "application/x-ndjson")],
            lines.join("\n").as_bytes(),
        )
        .await
        .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        caught_up(addr).await;
    });
    server.stop();
    let events = lake_events(dir.path());
    assert_eq!(events.len(), 1000);
    let canary = events.iter().filter(|e| e.lineage.starts_with("orders-parser@2>")).count();
    assert!((200..400).contains(&canary), "{canary} of 1000 keyless records went to the 30% canary");
}

/// The SQL of the README's "look at your lake" command, over the lake at `lake`.
fn readme_lake_query(lake: &Path) -> String {
    let readme = std::fs::read_to_string(weir_e2e::repo_root().join("README.md")).unwrap();
    let line = readme.lines().find(|l| l.starts_with("python3 -c \"import duckdb")).expect("the README's DuckDB line");
    let sql = line.split_once("duckdb.sql(\\\"").unwrap().1.split_once("\\\")").unwrap().0;
    sql.replace(".weir-demo/lake", &lake.display().to_string())
}

#[test]
fn slow_traffic_rolls_into_a_handful_of_lake_files_that_duckdb_reads_across_a_plugin_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let config = admin_config(dir.path(), "");
    let text = std::fs::read_to_string(&config).unwrap().replace("roll_interval = \"0s\"", "roll_interval = \"2s\"");
    std::fs::write(&config, text).unwrap();
    let server = Server::start_with_env(&config, &ENV);
    let addr = server.addr;
    let traffic = std::time::Instant::now();
    rt().block_on(async {
        for batch in 0..40 {
            if batch == 20 {
                // The upgrade: chaos@2 adds the fields env_vars, env_names and args.
                assert_eq!(upload(addr, "chaos", "2", "misbehaving_enricher").await.status, 201);
                let r =
                    call(addr, "PUT", "/v1/plugins/chaos/versions/2/config", Some(ADMIN), br#"{"mode": "env"}"#).await;
                assert_eq!(r.status, 200, "{}", r.body);
                let r = action(addr, "chaos", "activate", serde_json::json!({"version": "2"})).await;
                assert_eq!(r.status, 200, "{}", r.body);
            }
            send_orders(addr, batch * 5..batch * 5 + 5).await;
            tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        }
        caught_up(addr).await;
    });
    let traffic = traffic.elapsed();
    assert!(server.stop().success());

    let lake = dir.path().join("data/lake");
    let events = weir_e2e::parquet_files(&lake.join("events"));
    // 40 commits or more per shard without rolling; here a file per shard per 2 s of
    // traffic (about 6 s on an idle machine, longer on a loaded one), plus the last ones.
    let rolls = 2 * (traffic.as_secs() as usize / 2 + 2);
    assert!(
        (2..=rolls.min(40)).contains(&events.len()),
        "{} event files after {traffic:?} of traffic: {events:?}",
        events.len()
    );
    assert!(!lake.join("_staging").exists() || weir_e2e::parquet_files(&lake.join("_staging")).is_empty());
    assert_eq!(lake_events(dir.path()).len(), 200, "every event once");

    let query = readme_lake_query(&lake);
    let script = format!(
        "import duckdb\nrows = duckdb.sql(\"{query}\").fetchall()\nprint(sum(r[3] for r in rows), len({{r[2] for r in rows}}))\n\
         print(duckdb.sql(\"SELECT count(*), count(env_vars) FROM read_parquet('{}/events/**/*.parquet', union_by_name = true)\").fetchone())",
        lake.display()
    );
    let python =
        std::env::var("WEIR_TEST_PYTHON").unwrap_or_else(|_| "/var/tmp/weir-tools/test-venv/bin/python".into());
    let output = std::process::Command::new(python).args(["-c", &script]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("200 2"), "the README's query: 200 events of two plugin chains: {stdout}");
    let (all, upgraded) = lines.next().unwrap().trim_matches(['(', ')']).split_once(", ").unwrap();
    let upgraded: usize = upgraded.parse().unwrap();
    assert_eq!(all, "200");
    assert!((50..=150).contains(&upgraded), "the added field is a column, null before the upgrade: {stdout}");
}

#[test]
fn a_dead_letter_found_through_the_read_route_is_replayed_after_a_fix_and_becomes_an_event() {
    let dir = tempfile::tempdir().unwrap();
    let config = admin_config(dir.path(), "");
    // chaos@1.0.0 crashes on order o-7: its record is dead-lettered.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[plugins.chaos]\n", "[plugins.chaos]\nconfig = { panic_on_order = \"o-7\" }\n");
    std::fs::write(&config, text).unwrap();
    let server = Server::start_with_env(&config, &ENV);
    let addr = server.addr;
    rt().block_on(async {
        send_orders(addr, 0..10).await;
        caught_up(addr).await;
        let page = json(&call(addr, "GET", "/v1/lake/orders/dead-letters?plugin=chaos", Some(READER), b"").await);
        let rows = page["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{page}");
        assert!(rows[0]["original"].as_str().unwrap().contains("\"o-7\""), "{page}");
        let id = rows[0]["id"].as_str().unwrap().to_owned();

        // The fix: the same component without the poison, live.
        assert_eq!(upload(addr, "chaos", "2", "misbehaving_enricher").await.status, 201);
        assert_eq!(call(addr, "PUT", "/v1/plugins/chaos/versions/2/config", Some(ADMIN), b"{}").await.status, 200);
        assert_eq!(action(addr, "chaos", "activate", serde_json::json!({"version": "2"})).await.status, 200);

        let path = "/v1/streams/orders/dead-letters/replay";
        let body = serde_json::json!({ "ids": [id, "orders-0000-00000000000000099999-0"] }).to_string();
        assert_eq!(call(addr, "POST", path, Some(READER), body.as_bytes()).await.status, 403);
        let answer = call(addr, "POST", path, Some(ADMIN), body.as_bytes()).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let answer = json(&answer);
        assert_eq!(answer["replayed"][0]["id"], id, "{answer}");
        assert_eq!(answer["not_found"], serde_json::json!(["orders-0000-00000000000000099999-0"]), "{answer}");
        let bad = call(addr, "POST", path, Some(ADMIN), br#"{"ids": "all"}"#).await;
        assert_eq!(bad.status, 400, "{}", bad.body);
        // A bounded request: at most 100 ids.
        let too_many = serde_json::json!({ "ids": vec![id.clone(); 101] }).to_string();
        let bad = call(addr, "POST", path, Some(ADMIN), too_many.as_bytes()).await;
        assert_eq!(bad.status, 400, "{}", bad.body);
        assert!(bad.body.contains("at most 100"), "{}", bad.body);
        caught_up(addr).await;
    });
    assert!(server.stop().success());
    let events = lake_events(dir.path());
    assert_eq!(events.len(), 10, "the replayed order is an event now: {events:?}");
    let replayed: Vec<&LakeEvent> = events.iter().filter(|e| e.customer == "c-7").collect();
    assert_eq!(replayed.len(), 1);
    assert!(replayed[0].lineage.contains("chaos@2"), "{:?}", replayed[0]);
}
