use std::time::Duration;

use crate::{open, record};

#[tokio::test]
async fn subscribe_wakes_on_append() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let mut orders = log.subscribe("orders");

    let appender = log.clone();
    let append = tokio::task::spawn_blocking(move || {
        appender.append("orders", vec![record(Some("k"), "a", 0), record(Some("k"), "b", 0)]).unwrap()
    });

    tokio::time::timeout(Duration::from_secs(10), orders.changed()).await.unwrap().unwrap();
    append.await.unwrap();
    assert_eq!(*orders.borrow_and_update(), 2, "counts the records appended");
}

#[tokio::test]
async fn an_append_to_another_stream_does_not_wake_the_subscriber() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let mut orders = log.subscribe("orders");

    log.append("clicks", vec![record(None, "click", 0)]).unwrap();

    assert!(tokio::time::timeout(Duration::from_millis(100), orders.changed()).await.is_err());
    assert!(!orders.has_changed().unwrap());
}

#[tokio::test]
async fn an_append_between_subscribe_and_wait_is_not_missed() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let mut orders = log.subscribe("orders");
    assert!(log.read("orders", 0, 0, 10, 1000).unwrap().is_empty());

    log.append("orders", vec![record(None, "a", 0)]).unwrap();

    tokio::time::timeout(Duration::from_secs(1), orders.changed()).await.unwrap().unwrap();
}
