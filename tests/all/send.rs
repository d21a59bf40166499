//! `weir send`: a producer for a running host — NDJSON from a file in bounded requests,
//! each durable before the next, every record in the raw archive exactly once; refusals
//! name the lines not sent and what to do.

use std::path::Path;
use std::process::Command;

use weir_e2e::{Server, weir_bin};

use crate::streaming::{caught_up, rt, ts, write_config};

const TOKEN: &str = "send-ingest-token";

fn weir_send(args: &[&str], token: Option<&str>) -> (i32, String, String) {
    let mut command = Command::new(weir_bin());
    command.arg("send").args(args).env_remove("WEIR_INGEST_TOKEN");
    if let Some(token) = token {
        command.env("WEIR_INGEST_TOKEN", token);
    }
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The lines of every raw archive file of `orders` under `lake`.
fn archived_ids(lake: &Path) -> Vec<String> {
    let mut ids = Vec::new();
    let mut stack = vec![lake.join("raw/stream=orders")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "ndjson") {
                for line in std::fs::read_to_string(&path).unwrap().lines() {
                    let value: serde_json::Value = serde_json::from_str(line).unwrap();
                    ids.push(value["data"].as_str().unwrap_or_default().to_owned());
                }
            }
        }
    }
    ids.sort();
    ids
}

#[test]
fn weir_send_delivers_a_file_in_bounded_requests_and_every_record_lands_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "require_token = true");
    let server =
        Server::start_with_env(&config, &[("WEIR_INGEST_TOKEN", TOKEN), ("WEIR_READ_TOKEN", "send-read-token")]);
    let url = format!("http://{}", server.addr);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let lines: Vec<String> = (0..2500)
        .map(|i| {
            format!(
                "{{\"order_id\":\"s-{i:05}\",\"restaurant_id\":\"r-{}\",\"status\":\"delivered\",\"total\":12.50,\"items\":1,\"placed_at\":\"{}\",\"delivered_at\":\"{}\"}}",
                1 + i % 5,
                ts(now - 600),
                ts(now - 60)
            )
        })
        .collect();
    let file = dir.path().join("orders.ndjson");
    // Blank lines and CRLF endings are what files from other tools hold: skipped and cut.
    std::fs::write(&file, lines.join("\r\n") + "\n\n").unwrap();
    let file = file.to_str().unwrap();

    let (code, _, stderr) = weir_send(&["orders", file, "--url", &url], None);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("WEIR_INGEST_TOKEN") && stderr.contains("lines 1-1000"), "{stderr}");
    let (code, stdout, stderr) = weir_send(&["nope", file, "--url", &url], Some(TOKEN));
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("no stream \"nope\""), "{stderr}");

    let (code, stdout, stderr) = weir_send(
        &["orders", file, "--key-field", "restaurant_id", "--batch-records", "1000", "--url", &url],
        Some(TOKEN),
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("sent 2500 records to stream orders in 3 requests"), "{stdout}");
    assert!(stdout.contains("shard 0:") && stdout.contains("shard 1:"), "keys spread over both shards: {stdout}");
    rt().block_on(caught_up(server.addr));
    assert!(server.stop().success());

    let archived = archived_ids(&dir.path().join("data/lake"));
    let mut expected = lines.clone();
    expected.sort();
    assert_eq!(archived.len(), 2500, "every record archived once");
    assert_eq!(archived, expected, "the records as sent, without the CR of their line ends");
}
