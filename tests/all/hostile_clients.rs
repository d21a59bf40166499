//! A hostile client against the real binary: connections that stall, bodies that trickle
//! or are malformed, arrays past the record limit. The host closes what stalls, answers
//! each mistake with its own JSON error, and keeps serving.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_client::request;
use weir_e2e::Server;

use crate::streaming::{rt, write_config};

const TIGHT: &str = "max_connections = 4\nheader_timeout = \"1s\"\nbody_timeout = \"1s\"";

/// Reads until the server closes the connection (or `limit` passes); what it sent.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(limit, stream.read_to_end(&mut answer)).await;
    read.ok().map(|_| String::from_utf8_lossy(&answer).into_owned())
}

#[test]
fn stalled_connections_are_closed_after_the_header_timeout_and_do_not_lock_out_others() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), TIGHT);
    let server = Server::start(&config);
    rt().block_on(async {
        // As many connections as the cap, each stalled: one idle, the others mid-header.
        let mut stalled = Vec::new();
        for i in 0..4 {
            let mut stream = TcpStream::connect(server.addr).await.unwrap();
            if i > 0 {
                stream.write_all(b"POST /v1/streams/orders/records HTTP/1.1\r\nHost: weir\r\n").await.unwrap();
            }
            stalled.push(stream);
        }
        let started = Instant::now();
        // A well-behaved client waits for a slot, then is served.
        let line = br#"{"order_id":"o-1","restaurant_id":"r-1"}"#;
        let answer = tokio::time::timeout(
            Duration::from_secs(20),
            request(server.addr, "POST", "/v1/streams/orders/records", Some("application/x-ndjson"), line),
        )
        .await
        .expect("served once the stalled connections were closed")
        .unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
        for mut stream in stalled {
            let closed = read_until_closed(&mut stream, Duration::from_secs(20)).await;
            assert!(closed.is_some(), "the server closes a stalled connection");
        }
        assert!(started.elapsed() < Duration::from_secs(20));
    });
}

#[test]
fn a_trickling_body_is_408_a_malformed_chunked_body_400_and_unknown_routes_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), TIGHT);
    let server = Server::start(&config);
    rt().block_on(async {
        let mut slow = TcpStream::connect(server.addr).await.unwrap();
        slow.write_all(
            b"POST /v1/streams/orders/records HTTP/1.1\r\nHost: weir\r\nContent-Type: application/x-ndjson\r\n\
              Content-Length: 100\r\n\r\n{\"order_id\"",
        )
        .await
        .unwrap();
        let answer = read_until_closed(&mut slow, Duration::from_secs(20)).await.expect("an answer, then the close");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("\"code\":\"request_timeout\"") && answer.contains("server.body_timeout"), "{answer}");

        let mut broken = TcpStream::connect(server.addr).await.unwrap();
        broken
            .write_all(
                b"POST /v1/streams/orders/records HTTP/1.1\r\nHost: weir\r\nContent-Type: application/x-ndjson\r\n\
                  Transfer-Encoding: chunked\r\n\r\nzz\r\nnot a chunk\r\n0\r\n\r\n",
            )
            .await
            .unwrap();
        let answer = read_until_closed(&mut broken, Duration::from_secs(20)).await.expect("an answer");
        assert!(answer.starts_with("HTTP/1.1 400"), "a malformed body is the client's mistake, not 413: {answer}");
        assert!(answer.contains("\"code\":\"bad_request\""), "{answer}");

        for (method, path, status, code) in
            [("GET", "/nope", 404, "not_found"), ("DELETE", "/healthz", 405, "method_not_allowed")]
        {
            let answer = request(server.addr, method, path, None, b"").await.unwrap();
            assert_eq!(answer.status, status, "{method} {path}: {}", answer.body);
            let body: serde_json::Value = serde_json::from_str(&answer.body).expect("a JSON error");
            assert_eq!(body["code"], code, "{method} {path}: {}", answer.body);
        }

        let healthy = request(server.addr, "GET", "/healthz", None, b"").await.unwrap();
        assert_eq!(healthy.status, 200);
    });
}

#[test]
fn a_json_array_over_the_record_limit_is_refused_with_its_count_and_elements_are_kept_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    // One lake file per commit: the archive is read while the host runs.
    let text = std::fs::read_to_string(&config).unwrap()
        + "\n[sinks.lake]\ntype = \"lake\"\nroll_interval = \"0s\"\n\n[sinks.dead-letters]\ntype = \"dead-letters\"\n";
    std::fs::write(&config, text).unwrap();
    let server = Server::start(&config);
    rt().block_on(async {
        let too_many = format!("[{}1]", "1,".repeat(10_000));
        let answer =
            request(server.addr, "POST", "/v1/streams/orders/records", Some("application/json"), too_many.as_bytes())
                .await
                .unwrap();
        assert_eq!(answer.status, 413, "{}", answer.body);
        assert!(answer.body.contains("holds 10001 records, more than 10000"), "{}", answer.body);

        let exact = r#"{"order_id":"o-9","restaurant_id":"r-1","total":12.50,"n":123456789012345678901234567890}"#;
        let body = format!("[ {exact} ,\n{exact}]");
        let answer =
            request(server.addr, "POST", "/v1/streams/orders/records", Some("application/json"), body.as_bytes())
                .await
                .unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
        crate::streaming::caught_up(server.addr).await;
        let archived = raw_archive_lines(&dir.path().join("data/lake/raw"));
        let kept = archived
            .iter()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|record| record["data"] == exact)
            .count();
        assert_eq!(kept, 2, "both elements archived exactly as sent: {archived:?}");
    });
}

/// Every line of every raw-archive file under `dir`.
fn raw_archive_lines(dir: &std::path::Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            lines.extend(raw_archive_lines(&path));
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            lines.extend(text.lines().map(str::to_owned));
        }
    }
    lines
}
