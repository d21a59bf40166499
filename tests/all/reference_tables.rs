//! Reference tables in production stores under `weir serve`: a restaurant added to a
//! DynamoDB table or to an S3 object is seen by the enricher without a restart; a store
//! that cannot be reached dead-letters the records it was needed for, with the reason,
//! and the host keeps serving.

use std::path::Path;
use std::time::{Duration, Instant};

use weir_e2e::Server;
use weir_e2e::aws_servers::{AWS_ENV, boto3, create_bucket, servers};

use crate::read_api::{get, status_update};
use crate::s3_lake::unique;
use crate::streaming::{BASE, caught_up, rt};

/// The read API's pipeline with `[reference.restaurants]` replaced by `reference`.
fn config_with_reference(dir: &Path, reference: &str) -> std::path::PathBuf {
    let config = crate::read_api::write_read_config(dir, false);
    let text = std::fs::read_to_string(&config).unwrap();
    let start = text.find("[reference.restaurants]").unwrap();
    let end = start + text[start..].find("\n\n").unwrap();
    let text = format!("{}{reference}{}", &text[..start], &text[end..]);
    std::fs::write(&config, text).unwrap();
    config
}

fn dynamodb_client() -> &'static str {
    "d = boto3.client('dynamodb', endpoint_url=sys.argv[1], region_name='us-east-1',\n\
     \x20   aws_access_key_id='test', aws_secret_access_key='test')\n"
}

/// Puts restaurant `id` into the DynamoDB table `table`.
fn put_restaurant(table: &str, id: &str, name: &str) {
    boto3(
        &format!(
            "{}d.put_item(TableName=sys.argv[2], Item={{'key': {{'S': sys.argv[3]}}, 'name': {{'S': sys.argv[4]}},\n\
             \x20   'zone': {{'S': 'Z1'}}, 'cuisine': {{'S': 'thai'}}, 'rating': {{'N': '4.5'}}}})",
            dynamodb_client()
        ),
        &[table, id, name],
    );
}

/// Posts one status update of order `order` at restaurant `restaurant`.
async fn post_order(addr: std::net::SocketAddr, order: &str, restaurant: &str) {
    let line = status_update(order, restaurant, "placed", BASE);
    let path = "/v1/streams/orders/records?key_field=restaurant_id";
    let r = weir_client::request(addr, "POST", path, Some("application/x-ndjson"), line.as_bytes()).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    caught_up(addr).await;
}

/// The restaurant name the serving table holds for `order`, if it was served.
async fn served_name(addr: std::net::SocketAddr, order: &str) -> Option<String> {
    let r = get(addr, &format!("/v1/serving/orders/{order}")).await;
    if r.status != 200 {
        return None;
    }
    let doc: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    doc["fields"]["restaurant_name"].as_str().map(str::to_owned)
}

/// The dead letters' reasons in the pipeline in `dir`, waiting until `n` are there.
fn dead_letter_reasons(dir: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lake = weir_sinks::read_lake(&dir.join("data/lake")).unwrap();
        if lake.dead_letters.len() >= n {
            return lake.dead_letters.into_iter().map(|(_, reason)| reason).collect();
        }
        assert!(Instant::now() < deadline, "fewer than {n} dead letters: {:?}", lake.dead_letters);
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_restaurant_added_in_dynamodb_is_seen_without_a_restart() {
    let table = unique("restaurants");
    boto3(
        &format!(
            "{}d.create_table(TableName=sys.argv[2], KeySchema=[{{'AttributeName': 'key', 'KeyType': 'HASH'}}],\n\
             \x20   AttributeDefinitions=[{{'AttributeName': 'key', 'AttributeType': 'S'}}], BillingMode='PAY_PER_REQUEST')",
            dynamodb_client()
        ),
        &[&table],
    );
    put_restaurant(&table, "r-1", "Pho Real");
    let dir = tempfile::tempdir().unwrap();
    let reference = format!(
        // A long timeout: the test is about the cache, and moto, shared by every AWS test,
        // answers a loaded machine's first lookups slower than the 500 ms default.
        "[reference.restaurants]\ntype = \"dynamodb\"\ntable = \"{table}\"\nregion = \"us-east-1\"\nendpoint = \"{}\"\nttl = \"1s\"\ntimeout = \"10s\"",
        servers().dynamodb
    );
    let config = config_with_reference(dir.path(), &reference);
    let server = Server::start_with_env(&config, &AWS_ENV);
    rt().block_on(async {
        post_order(server.addr, "o-1", "r-1").await;
        assert_eq!(served_name(server.addr, "o-1").await.as_deref(), Some("Pho Real"));
        // r-7 is not there yet: the order is dead-lettered as unknown, and the miss cached.
        post_order(server.addr, "o-2", "r-7").await;
        assert_eq!(served_name(server.addr, "o-2").await, None);
    });
    let reasons = dead_letter_reasons(dir.path(), 1);
    assert!(reasons[0].contains("unknown restaurant r-7"), "{reasons:?}");
    put_restaurant(&table, "r-7", "Sushi Seven");
    // Once the cached miss expires (ttl 1s), the new row is read.
    std::thread::sleep(Duration::from_millis(1500));
    rt().block_on(async {
        post_order(server.addr, "o-3", "r-7").await;
        assert_eq!(served_name(server.addr, "o-3").await.as_deref(), Some("Sushi Seven"));
    });
    assert!(server.stop().success());
}

#[test]
fn an_unreachable_reference_store_dead_letters_the_records_with_the_reason_and_the_host_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 9 of loopback: every lookup fails at once.
    let reference = "[reference.restaurants]\ntype = \"dynamodb\"\nregion = \"us-east-1\"\nendpoint = \"http://127.0.0.1:9\"\ntimeout = \"300ms\"";
    let config = config_with_reference(dir.path(), reference);
    let server = Server::start_with_env(&config, &AWS_ENV);
    let started = Instant::now();
    rt().block_on(async {
        for i in 0..4 {
            post_order(server.addr, &format!("o-{i}"), "r-1").await;
        }
        let health = get(server.addr, "/healthz").await;
        assert_eq!(health.status, 200, "the host keeps serving: {}", health.body);
    });
    let reasons = dead_letter_reasons(dir.path(), 4);
    assert!(
        reasons.iter().all(|r| r.contains("reference table restaurants") && r.contains("lookup of key \"r-1\"")),
        "{reasons:?}"
    );
    println!("4 orders dead-lettered in {:?}; the first reason: {}", started.elapsed(), reasons[0]);
    assert!(server.stop().success());
}

#[test]
fn a_restaurant_added_to_the_s3_object_is_seen_after_its_reload() {
    let bucket = unique("reference");
    create_bucket(&bucket);
    let put = |rows: &str| {
        boto3(
            "s3.put_object(Bucket=sys.argv[2], Key='ref/restaurants.json', Body=sys.argv[3].encode())",
            &[&bucket, rows],
        );
    };
    put(r#"{"r-1": {"name": "Pho Real", "zone": "Z1", "cuisine": "vietnamese"}}"#);
    let dir = tempfile::tempdir().unwrap();
    let reference = format!(
        "[reference.restaurants]\ntype = \"s3\"\npath = \"s3://{bucket}/ref/restaurants.json\"\nregion = \"us-east-1\"\n\
         endpoint = \"{}\"\npath_style = true\nreload = \"500ms\"",
        servers().dynamodb
    );
    let config = config_with_reference(dir.path(), &reference);
    let server = Server::start_with_env(&config, &AWS_ENV);
    rt().block_on(async {
        post_order(server.addr, "o-1", "r-1").await;
        assert_eq!(served_name(server.addr, "o-1").await.as_deref(), Some("Pho Real"));
        post_order(server.addr, "o-2", "r-8").await;
        assert_eq!(served_name(server.addr, "o-2").await, None);
    });
    put(
        r#"{"r-1": {"name": "Pho Real", "zone": "Z1", "cuisine": "vietnamese"}, "r-8": {"name": "Taco Ocho", "zone": "Z8", "cuisine": "mexican"}}"#,
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    rt().block_on(async {
        for attempt in 0.. {
            let order = format!("o-r8-{attempt}");
            post_order(server.addr, &order, "r-8").await;
            if served_name(server.addr, &order).await.as_deref() == Some("Taco Ocho") {
                break;
            }
            assert!(Instant::now() < deadline, "the new row was never seen");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    assert!(server.stop().success());
}
