//! The warehouse in a SQL server over the PostgreSQL wire protocol: against a real
//! PostgreSQL (the stand-in for Redshift, which cannot run here), read back with `psql`;
//! the Redshift path's staging in moto's S3, read back with DuckDB, and its `COPY` sent
//! to the server as generated.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use weir_aws::{SqlDialect, SqlWarehouseSettings, SqlWarehouseSink};
use weir_e2e::aws_servers::{AWS_ENV, Postgres, create_bucket, download, postgres, servers};
use weir_events::{Event, Name, Value};
use weir_sinks::{EventItem, Sink, SinkCommit, SinkItem};

use crate::s3_lake::unique;
use crate::streaming::{Fate, orders, rt, send_across_a_kill_9_with_env, sentinels};

/// Runs `sql` with `psql` against the shared test server and returns its unaligned output.
fn psql(sql: &str) -> String {
    psql_at(&postgres().url, sql)
}

/// Runs `sql` with `psql` against the server at `url`.
fn psql_at(url: &str, sql: &str) -> String {
    let output = Command::new("psql")
        .arg(url)
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql (Debian's postgresql-client)");
    assert!(output.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn table_name(what: &str) -> String {
    unique(what).replace('-', "_")
}

/// A commit of `n` events (every third an aggregate) at positions `first..first + n`;
/// `status` goes into every event.
fn commit(first: u64, n: u64, status: &str) -> SinkCommit {
    let items = (first..first + n)
        .map(|seq| {
            let event = Event {
                key: Some(format!("r-{}", seq % 5)),
                time: 1_795_690_800_000_000 + seq as i64 * 1_000_000,
                fields: vec![
                    (Name::from("order_id"), Value::from(format!("o-{seq}").as_str())),
                    (Name::from("status"), Value::from(status)),
                    (Name::from("note"), Value::from("a \"quoted\", comma\nand newline")),
                ],
            };
            let item = Arc::new(EventItem { event, lineage: "orders-parser@1.0.0".into() });
            if seq % 3 == 0 { SinkItem::Aggregate(item) } else { SinkItem::Event(item) }
        })
        .collect();
    weir_e2e::commit_of("orders", "1", first, items)
}

fn postgres_sink(table: &str) -> SqlWarehouseSink {
    postgres_sink_at(&postgres().url, table)
}

fn postgres_sink_at(url: &str, table: &str) -> SqlWarehouseSink {
    let settings = SqlWarehouseSettings {
        url: url.to_owned(),
        table: table.to_owned(),
        dialect: SqlDialect::Postgres,
        staging: None,
        iam_role: None,
        create_table: true,
    };
    SqlWarehouseSink::new("warehouse", settings, None)
}

/// Writes `commit` as delivery does: again until the call succeeds.
async fn write_until_written(sink: &SqlWarehouseSink, commit: &SinkCommit) -> usize {
    for attempt in 0..60 {
        match sink.write(commit).await {
            Ok(report) => {
                assert!(report.failed.is_empty());
                return attempt;
            }
            Err(error) => {
                assert!(error.is_retryable(), "{error}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
    panic!("the commit was never written");
}

#[test]
fn the_merge_by_id_is_idempotent_and_a_restart_mid_merge_leaves_the_same_table() {
    let table = table_name("wh_merge");
    // A cluster of its own: it is restarted below, and other tests use the shared one.
    let server = std::sync::Arc::new(Postgres::start("restarted"));
    let psql = |sql: &str| psql_at(&server.url, sql);
    rt().block_on(async {
        let sink = postgres_sink_at(&server.url, &table);
        sink.prepare().await.expect("the table is created");
        let first = commit(1, 300, "placed");
        write_until_written(&sink, &first).await;
        // The same commit again (a replay after a crash): the same rows, once.
        write_until_written(&sink, &first).await;
        assert_eq!(psql(&format!("SELECT count(*), count(DISTINCT id) FROM {table}")), "300|300");

        // A large commit whose merge the server's restart cuts: the rerun completes it.
        let second = commit(301, 30_000, "delivered");
        let writing = async { write_until_written(&sink, &second).await };
        let restarting = async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let server = server.clone();
            tokio::task::spawn_blocking(move || server.restart()).await.unwrap();
        };
        let (attempts, ()) = tokio::join!(writing, restarting);
        println!("the second commit was written after {attempts} failed attempts");
        write_until_written(&sink, &second).await;
        assert_eq!(psql(&format!("SELECT count(*), count(DISTINCT id) FROM {table}")), "30300|30300");
        assert_eq!(
            psql(&format!("SELECT count(*) FROM {table} WHERE fields->>'status' = 'delivered' AND kind = 'event'")),
            "20000"
        );
        // Values round-trip: quotes, commas and newlines in the JSON, the time, the key.
        assert_eq!(
            psql(&format!(
                "SELECT key, event_time, fields->>'note', position, lineage FROM {table} WHERE fields->>'order_id' = 'o-42'"
            )),
            "r-2|2026-11-26 11:00:42|a \"quoted\", comma\nand newline|42|orders-parser@1.0.0"
        );
        // The aggregates read back as the embedded warehouse answers them.
        let rows = sink.aggregates("orders", Some("r-0"), 0, i64::MAX, 10_000).await.unwrap();
        assert_eq!(rows.len(), 30_300 / 3 / 5);
        assert_eq!(rows[0]["key"], "r-0");
        assert_eq!(rows[0]["seq"], 15);
        assert_eq!(rows[0]["time"], "2026-11-26T11:00:15Z");
        assert_eq!(rows[0]["fields"]["order_id"], "o-15");
    });
}

#[test]
fn a_record_the_server_cannot_store_is_rejected_and_the_rest_written() {
    let table = table_name("wh_nul");
    rt().block_on(async {
        let sink = postgres_sink(&table);
        sink.prepare().await.unwrap();
        let mut with_nul = commit(1, 10, "placed");
        let SinkItem::Event(item) = &mut with_nul.records[4].item else { panic!("an event") };
        Arc::make_mut(item).event.fields.push((Name::from("bad"), Value::from("nul\0here")));
        let report = sink.write(&with_nul).await.unwrap();
        assert_eq!(report.rejected.len(), 1);
        assert_eq!(report.rejected[0].0, 4);
        assert!(report.rejected[0].1.contains("NUL"), "{}", report.rejected[0].1);
        assert_eq!(psql(&format!("SELECT count(*) FROM {table}")), "9");
    });
}

#[test]
fn the_redshift_path_stages_parquet_and_a_manifest_in_s3_and_sends_its_copy() {
    let bucket = unique("wh-staging");
    create_bucket(&bucket);
    let table = table_name("wh_redshift");
    let location = weir_config::S3Location {
        bucket: bucket.clone(),
        prefix: "staging".into(),
        region: Some("us-east-1".into()),
        endpoint: Some(servers().dynamodb.clone()),
        path_style: true,
    };
    let store = weir_aws::s3_store(&location, Some(("test".into(), "test".into()))).unwrap();
    let settings = SqlWarehouseSettings {
        url: postgres().url.clone(),
        table: table.clone(),
        dialect: SqlDialect::Redshift,
        staging: Some(location),
        iam_role: Some("arn:aws:iam::123456789012:role/weir-copy".into()),
        create_table: true,
    };
    let sink = SqlWarehouseSink::new("warehouse", settings, Some(store));
    let commit = commit(1, 50, "placed");
    let error = rt().block_on(sink.write(&commit)).unwrap_err().to_string();
    // PostgreSQL has no COPY from S3: the statement reached it as generated, and failed.
    let manifest_url = format!(
        "s3://{bucket}/staging/{table}/stream=orders/shard=0001/00000000000000000001-00000000000000000050/manifest"
    );
    assert!(
        error.contains(&format!(
            "COPY weir_stage FROM '{manifest_url}' IAM_ROLE 'arn:aws:iam::123456789012:role/weir-copy' FORMAT AS PARQUET MANIFEST"
        )),
        "{error}"
    );
    let staged = tempfile::tempdir().unwrap();
    download(&bucket, "staging/", staged.path());
    let base =
        staged.path().join(format!("{table}/stream=orders/shard=0001/00000000000000000001-00000000000000000050"));
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(base.join("manifest")).unwrap()).unwrap();
    let parquet = base.join("rows.parquet");
    let entry = &manifest["entries"][0];
    assert_eq!(entry["url"], manifest_url.replace("/manifest", "/rows.parquet"));
    assert_eq!(entry["mandatory"], true);
    assert_eq!(entry["meta"]["content_length"], std::fs::metadata(&parquet).unwrap().len());
    let python = std::env::var_os("WEIR_TEST_PYTHON").unwrap_or_else(|| "python3".into());
    let output = Command::new(python)
        .arg("-c")
        .arg(
            "import duckdb, sys\n\
             print(duckdb.sql(f\"SELECT count(*), count(DISTINCT id), min(event_time_us), max(position::BIGINT), \
             sum(CASE WHEN kind = 'aggregate' THEN 1 ELSE 0 END) FROM read_parquet('{sys.argv[1]}')\").fetchone())",
        )
        .arg(&parquet)
        .output()
        .unwrap();
    assert!(output.status.success(), "duckdb: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "(50, 50, 1795690801000000, 50, 16)");
}

#[test]
fn weir_serve_loads_the_warehouse_into_postgres_across_a_kill_9_and_serves_its_aggregates() {
    let dir = tempfile::tempdir().unwrap();
    let table = table_name("wh_serve");
    let config = crate::read_api::write_read_config(dir.path(), true);
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[sinks.warehouse]\ntype = \"warehouse\"\n",
        &format!(
            "[sinks.warehouse]\ntype = \"redshift\"\ndialect = \"postgres\"\nurl = \"{}\"\ntable = \"{table}\"\n",
            postgres().url
        ),
    );
    assert!(text.contains("type = \"redshift\""));
    std::fs::write(&config, text).unwrap();
    let mut sent = orders(300);
    sent.extend(sentinels());
    let server = send_across_a_kill_9_with_env(&config, &sent, &AWS_ENV);
    let events = sent.iter().filter(|o| o.fate == Fate::Event).count();
    assert_eq!(
        psql(&format!("SELECT count(*), count(DISTINCT id) FROM {table} WHERE kind = 'event'")),
        format!("{events}|{events}"),
        "every acknowledged event once"
    );
    let stored: usize = psql(&format!("SELECT count(*) FROM {table} WHERE kind = 'aggregate'")).parse().unwrap();
    let distinct: usize =
        psql(&format!("SELECT count(DISTINCT id) FROM {table} WHERE kind = 'aggregate'")).parse().unwrap();
    assert!(stored > 0 && stored == distinct, "aggregates once each: {stored} rows, {distinct} ids");
    rt().block_on(async {
        let response = weir_client::request(server.addr, "GET", "/v1/aggregates/orders", None, b"").await.unwrap();
        assert_eq!(response.status, 200, "{}", response.body);
        let body: serde_json::Value = serde_json::from_str(&response.body).unwrap();
        let rows = body["rows"].as_array().unwrap();
        assert_eq!(rows.len(), stored, "the API answers from the warehouse table");
        assert!(rows[0]["fields"].is_object() && rows[0]["time"].is_string(), "{}", rows[0]);
        let key = rows[0]["key"].as_str().unwrap();
        let path = format!("/v1/aggregates/orders?key={key}");
        let one = weir_client::request(server.addr, "GET", &path, None, b"").await.unwrap();
        let one: serde_json::Value = serde_json::from_str(&one.body).unwrap();
        assert!(one["rows"].as_array().unwrap().iter().all(|row| row["key"] == key));
    });
    assert!(server.stop().success());
}
