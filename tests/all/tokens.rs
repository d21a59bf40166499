//! `server.require_token`: the ingest route and the read API take the admin API's bearer
//! tokens, each route its role, through the real binary.

use std::net::SocketAddr;

use weir_client::{HttpResponse, request_with_headers};
use weir_e2e::{Server, weir_bin};

use crate::streaming::{rt, write_config};

const ADMIN: &str = "admin-secret";
const READER: &str = "dashboard-secret";
const INGESTER: &str = "shop-secret";
const TOKENS: [(&str, &str); 3] =
    [("WEIR_ADMIN_TOKEN", ADMIN), ("WEIR_READ_TOKEN", READER), ("WEIR_INGEST_TOKEN", INGESTER)];

async fn send(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: &str) -> HttpResponse {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/x-ndjson")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth.as_str()));
    }
    request_with_headers(addr, method, path, &headers, body.as_bytes()).await.unwrap()
}

const ORDER: &str = r#"{"order_id":"o-1","restaurant_id":"r-1","customer_id":"c-1","total":12.5,"status":"placed","placed_at":"2026-11-26T11:00:00Z"}"#;

#[test]
fn with_require_token_ingest_needs_the_ingest_role_and_reads_the_read_role() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "require_token = true");
    let server = Server::start_with_env(&config, &TOKENS);
    let ingest = "/v1/streams/orders/records";
    let read = "/v1/aggregates/orders";
    rt().block_on(async {
        let r = send(server.addr, "POST", ingest, None, ORDER).await;
        assert_eq!((r.status, r.header("www-authenticate")), (401, Some("Bearer")), "{}", r.body);
        let r = send(server.addr, "POST", ingest, Some("not-a-token"), ORDER).await;
        assert_eq!(r.status, 401, "{}", r.body);
        let r = send(server.addr, "POST", ingest, Some(READER), ORDER).await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(r.body.contains("token read has the read role; this needs the ingest role"), "{}", r.body);
        let r = send(server.addr, "POST", ingest, Some(INGESTER), ORDER).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = send(server.addr, "POST", ingest, Some(ADMIN), ORDER).await;
        assert_eq!(r.status, 200, "an admin token may ingest: {}", r.body);

        let r = send(server.addr, "GET", read, None, "").await;
        assert_eq!(r.status, 401, "{}", r.body);
        let r = send(server.addr, "GET", read, Some(INGESTER), "").await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(r.body.contains("this needs the read role"), "{}", r.body);
        // Past the token check: this pipeline routes its aggregates to no warehouse.
        for token in [READER, ADMIN] {
            let r = send(server.addr, "GET", read, Some(token), "").await;
            assert_eq!(r.status, 404, "{}", r.body);
            assert!(r.body.contains("warehouse"), "{}", r.body);
        }
        let r = send(server.addr, "GET", "/v1/serving/orders/o-1", Some(INGESTER), "").await;
        assert_eq!(r.status, 403, "{}", r.body);

        let r = send(server.addr, "GET", "/healthz", None, "").await;
        assert_eq!(r.status, 200, "health stays open for load balancers: {}", r.body);
    });
}

#[test]
fn require_token_without_any_token_refuses_to_start_and_says_which_variables_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "require_token = true");
    let out = std::process::Command::new(weir_bin())
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("WEIR_ADMIN_TOKEN")
        .env_remove("WEIR_READ_TOKEN")
        .env_remove("WEIR_INGEST_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("server.require_token is true but no token is configured"), "{stderr}");
    assert!(stderr.contains("WEIR_INGEST_TOKEN"), "{stderr}");
}
