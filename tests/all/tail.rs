//! `weir tail` and `GET /v1/lake/{stream}/{kind}`: what was sent with `weir send` can be
//! read back — the refused records as dead letters with plugin, reason and original
//! bytes, the events, page by page with a cursor — and `--follow` prints what is
//! committed later, behind the read token.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use weir_client::request_with_headers;
use weir_e2e::{Server, weir_bin};

use crate::streaming::{caught_up, rt, ts, write_config};

const INGEST: &str = "tail-ingest-token";
const READ: &str = "tail-read-token";

fn weir(args: &[&str], read_token: Option<&str>) -> (i32, String, String) {
    let mut command = Command::new(weir_bin());
    command.args(args).env_remove("WEIR_READ_TOKEN").env_remove("WEIR_ADMIN_TOKEN").env("WEIR_INGEST_TOKEN", INGEST);
    if let Some(token) = read_token {
        command.env("WEIR_READ_TOKEN", token);
    }
    let output = command.output().unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr))
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))).collect()
}

fn order(i: usize, now: i64) -> String {
    format!(
        "{{\"order_id\":\"t-{i:03}\",\"restaurant_id\":\"r-{}\",\"status\":\"delivered\",\"total\":9.50,\"items\":1,\"placed_at\":\"{}\",\"delivered_at\":\"{}\"}}",
        1 + i % 5,
        ts(now - 600),
        ts(now - 60)
    )
}

fn get(addr: std::net::SocketAddr, path: &str) -> (u16, Value) {
    let auth = format!("Bearer {READ}");
    let response = rt().block_on(request_with_headers(addr, "GET", path, &[("Authorization", &auth)], b"")).unwrap();
    (response.status, serde_json::from_str(&response.body).unwrap_or_default())
}

#[test]
fn weir_tail_shows_what_weir_send_delivered_and_follows_new_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "require_token = true");
    // One lake file per commit, so what was sent is readable at once (rolling, tested
    // elsewhere, delays it by roll_interval).
    let text = std::fs::read_to_string(&config).unwrap()
        + "\n[sinks.lake]\ntype = \"lake\"\nroll_interval = \"0s\"\n\n[sinks.dead-letters]\ntype = \"dead-letters\"\n";
    std::fs::write(&config, text).unwrap();
    let server = Server::start_with_env(&config, &[("WEIR_INGEST_TOKEN", INGEST), ("WEIR_READ_TOKEN", READ)]);
    let url = format!("http://{}", server.addr);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let bad = ["this is not an order", "{\"order_id\": 12", "[1,2,3]"];
    let mut lines: Vec<String> = (0..40).map(|i| order(i, now)).collect();
    lines.splice(10..10, bad.iter().map(|s| (*s).to_owned()));
    let file = dir.path().join("orders.ndjson");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let (code, stdout, stderr) = weir(
        &[
            "send",
            "orders",
            file.to_str().unwrap(),
            "--key-field",
            "restaurant_id",
            "--batch-records",
            "7",
            "--url",
            &url,
        ],
        None,
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    rt().block_on(caught_up(server.addr));

    // The refused records, each with the parser that refused it and its bytes as sent.
    let (code, stdout, stderr) = weir(&["tail", "orders", "--dead-letters", "--url", &url], Some(READ));
    assert_eq!(code, 0, "{stderr}");
    let dead = json_lines(&stdout);
    let mut originals: Vec<&str> = dead.iter().map(|d| d["original"].as_str().unwrap()).collect();
    originals.sort_unstable();
    let mut expected = bad.to_vec();
    expected.sort_unstable();
    assert_eq!(originals, expected, "{stdout}");
    for letter in &dead {
        assert_eq!(letter["plugin"], "orders-parser@1.0.0", "{letter}");
        assert_eq!(letter["stage"], "parse", "{letter}");
        assert!(!letter["reason"].as_str().unwrap().is_empty(), "{letter}");
    }
    let (_, stdout, _) =
        weir(&["tail", "orders", "--dead-letters", "--plugin", "restaurant-enricher", "--url", &url], Some(READ));
    assert_eq!(stdout, "", "no dead letter of the enricher");

    // The newest events: -n of them, each one of the orders sent.
    let (code, stdout, stderr) = weir(&["tail", "orders", "-n", "5", "--url", &url], Some(READ));
    assert_eq!(code, 0, "{stderr}");
    let events = json_lines(&stdout);
    assert_eq!(events.len(), 5, "{stdout}");
    for event in &events {
        let id = event["fields"]["order_id"].as_str().unwrap_or_default();
        assert!(id.starts_with("t-") && event["lineage"].as_str().unwrap().contains("orders-parser@1.0.0"), "{event}");
    }

    // Without a read token the host refuses, and tail says which token to set.
    let (code, _, stderr) = weir(&["tail", "orders", "--url", &url], None);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("WEIR_READ_TOKEN"), "{stderr}");

    // The route pages with its cursor: every raw record once, in pages of 7.
    let (mut raw, mut after, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let path = match &after {
            Some(cursor) => format!("/v1/lake/orders/raw?limit=7&after={cursor}"),
            None => "/v1/lake/orders/raw?limit=7".to_owned(),
        };
        let (status, page) = get(server.addr, &path);
        assert_eq!(status, 200, "{page}");
        raw.extend(page["rows"].as_array().unwrap().iter().map(|r| r["data"].as_str().unwrap().to_owned()));
        after = Some(page["next"].as_str().unwrap().to_owned());
        pages += 1;
        if page["more"] == false {
            break;
        }
    }
    raw.sort();
    let mut sent = lines.clone();
    sent.sort();
    assert_eq!(raw, sent, "every raw record once across {pages} pages");
    assert!(pages >= 7, "43 records in pages of 7: {pages} pages");
    let (status, body) = get(server.addr, "/v1/lake/orders/raw?after=not-a-cursor");
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("`next` of the previous page"), "{body}");
    let (status, body) = get(server.addr, "/v1/lake/orders/everything");
    assert_eq!(status, 404, "{body}");
    let (status, body) = get(server.addr, "/v1/lake/orders/events?reason=x");
    assert_eq!(status, 400, "{body}");

    // --follow prints dead letters committed after it started, and only those. It starts
    // with the newest one already there (`-n 1`): once that is printed, its first read is
    // done, however long a loaded machine took to start it, and what is sent next is new.
    let mut follower = Command::new(weir_bin())
        .args(["tail", "orders", "--dead-letters", "-n", "1", "--follow", "--poll-ms", "200", "--url", &url])
        .env("WEIR_READ_TOKEN", READ)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let newest = rx.recv_timeout(Duration::from_secs(60)).expect("--follow printed the newest dead letter first");
    let newest: Value = serde_json::from_str(&newest).unwrap();
    assert!(originals.contains(&newest["original"].as_str().unwrap()), "{newest}");
    let late = dir.path().join("late.ndjson");
    std::fs::write(&late, "late garbage one\nlate garbage two\n").unwrap();
    let (code, _, stderr) = weir(&["send", "orders", late.to_str().unwrap(), "--url", &url], None);
    assert_eq!(code, 0, "{stderr}");
    let mut followed = Vec::new();
    while followed.len() < 2 {
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("--follow printed the new dead letters");
        let letter: Value = serde_json::from_str(&line).unwrap();
        followed.push(letter["original"].as_str().unwrap().to_owned());
    }
    followed.sort();
    assert_eq!(followed, ["late garbage one", "late garbage two"]);
    assert!(rx.recv_timeout(Duration::from_millis(800)).is_err(), "nothing else is printed");
    follower.kill().unwrap();
    let _ = follower.wait();
    assert!(server.stop().success());
}
