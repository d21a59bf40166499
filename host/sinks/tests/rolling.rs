//! A rolling lake: commits staged under `_staging/`, rolled into one object per kind,
//! date and shard by size or at flush, typed as one commit of all their rows; a replay
//! and a restart neither lose nor double anything.

mod common;

use std::time::Duration;

use common::*;
use weir_events::Event;
use weir_sinks::{CommitId, LakeSink, RollPolicy, Sink, SinkCommit, local_store};

fn commit_of(first: u64, last: u64) -> SinkCommit {
    let mut commit = SinkCommit {
        id: CommitId::log_range("orders", "3", &first.to_string(), &last.to_string()),
        arrival_time: ARRIVAL,
        records: Vec::new(),
    };
    for seq in first..=last {
        push(&mut commit, seq, 0, raw(Some("r-1"), format!("line {seq}").as_bytes()));
        // `total` an int in some commits and a float in others: the rolled file types it
        // from all of them (Float64), as one commit would.
        let total = if seq % 2 == 0 { weir_events::Value::Int(seq as i64) } else { weir_events::Value::Float(0.5) };
        let mut event = Event::new(ARRIVAL + seq as i64).with_key("r-1").with("total", total);
        if seq >= 50 {
            // A field that appears from one commit on (a plugin upgrade): one column.
            event = event.with("currency", "EUR");
        }
        push(&mut commit, seq, 0, common::event(event));
    }
    commit
}

fn lake_files(root: &std::path::Path) -> Vec<String> {
    files(root).into_iter().filter(|f| !f.starts_with("_staging/")).collect()
}

#[tokio::test]
async fn commits_stage_until_flush_then_become_one_object_per_kind_typed_as_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = local_store("lake", dir.path()).unwrap();
    let policy = RollPolicy { size: 64 << 20, interval: Duration::from_secs(3600) };
    let lake = LakeSink::rolling("lake", store.clone(), policy, false);
    lake.prepare().await.unwrap();
    let commits = [commit_of(40, 44), commit_of(45, 49), commit_of(50, 57)];
    for commit in &commits {
        assert!(lake.write(commit).await.unwrap().is_complete());
    }
    assert!(lake_files(dir.path()).is_empty(), "nothing visible before the roll: {:?}", files(dir.path()));
    assert_eq!(files(dir.path()).len(), 6, "three commits staged, raw and events each");

    lake.flush().await.unwrap();
    let range = "00000000000000000040-00000000000000000057";
    assert_eq!(
        lake_files(dir.path()),
        [
            format!("events/stream=orders/date=2026-11-26/shard=0003/{range}.parquet"),
            format!("raw/stream=orders/date=2026-11-26/shard=0003/{range}.ndjson"),
        ]
    );
    assert!(files(dir.path()).iter().all(|f| !f.starts_with("_staging/")), "staged objects removed");
    let raw = std::fs::read_to_string(
        dir.path().join(format!("raw/stream=orders/date=2026-11-26/shard=0003/{range}.ndjson")),
    )
    .unwrap();
    let lines: Vec<&str> = raw.lines().collect();
    assert_eq!(lines.len(), 18);
    assert!(lines[0].contains("\"data\":\"line 40\"") && lines[17].contains("\"data\":\"line 57\""), "{raw}");

    // The rolled Parquet file is byte for byte the file of one commit of all the rows.
    let mut whole = commit_of(40, 57);
    whole.records.retain(|r| r.item.kind() == "event");
    let reference = tempfile::tempdir().unwrap();
    LakeSink::new("reference", local_store("reference", reference.path()).unwrap()).write(&whole).await.unwrap();
    let name = format!("events/stream=orders/date=2026-11-26/shard=0003/{range}.parquet");
    assert_eq!(std::fs::read(dir.path().join(&name)).unwrap(), std::fs::read(reference.path().join(&name)).unwrap());
}

#[tokio::test]
async fn a_group_rolls_when_it_reaches_the_size_and_a_replay_of_a_rolled_range_is_not_staged_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = local_store("lake", dir.path()).unwrap();
    let lake =
        LakeSink::rolling("lake", store.clone(), RollPolicy { size: 1, interval: Duration::from_secs(3600) }, false);
    lake.prepare().await.unwrap();
    let first = commit_of(1, 3);
    lake.write(&first).await.unwrap();
    assert_eq!(lake_files(dir.path()).len(), 2, "size 1: every commit rolls at once: {:?}", files(dir.path()));
    // A crash before the checkpoint replays the commit: it is already in the lake.
    lake.write(&first).await.unwrap();
    lake.flush().await.unwrap();
    assert_eq!(lake_files(dir.path()).len(), 2, "{:?}", files(dir.path()));
    assert!(files(dir.path()).iter().all(|f| !f.starts_with("_staging/")));

    // The same after a restart: a new sink over the same store knows from the lake.
    let restarted =
        LakeSink::rolling("lake", store, RollPolicy { size: 64 << 20, interval: Duration::from_secs(3600) }, false);
    restarted.prepare().await.unwrap();
    restarted.write(&first).await.unwrap();
    restarted.flush().await.unwrap();
    assert_eq!(lake_files(dir.path()).len(), 2, "{:?}", files(dir.path()));
}

#[tokio::test]
async fn a_restart_rolls_what_was_staged_and_drops_what_a_crash_had_already_rolled() {
    let dir = tempfile::tempdir().unwrap();
    let store = local_store("lake", dir.path()).unwrap();
    let before = LakeSink::rolling(
        "lake",
        store.clone(),
        RollPolicy { size: 64 << 20, interval: Duration::from_secs(3600) },
        false,
    );
    before.prepare().await.unwrap();
    before.write(&commit_of(1, 3)).await.unwrap();
    before.write(&commit_of(4, 6)).await.unwrap();
    // "kill -9": the sink is gone without a flush; its commits stay staged.
    drop(before);
    assert!(lake_files(dir.path()).is_empty());

    // A crash in the middle of a roll: the rolled object was written, a staged object of
    // its range was not removed yet. The restart must not roll that one again.
    let copy = |from: &str, to: &str| std::fs::copy(dir.path().join(from), dir.path().join(to)).unwrap();
    std::fs::create_dir_all(dir.path().join("raw/stream=orders/date=2026-11-26/shard=0003")).unwrap();
    copy(
        "_staging/raw/stream=orders/date=2026-11-26/shard=0003/00000000000000000001-00000000000000000003.ndjson",
        "raw/stream=orders/date=2026-11-26/shard=0003/00000000000000000001-00000000000000000003.ndjson",
    );

    // A lake only this host writes: the next start takes the leftovers over at once.
    let after =
        LakeSink::rolling("lake", store, RollPolicy { size: 64 << 20, interval: Duration::from_secs(3600) }, false);
    after.prepare().await.unwrap();
    after.write(&commit_of(7, 9)).await.unwrap();
    after.flush().await.unwrap();
    let raw: Vec<String> = lake_files(dir.path()).into_iter().filter(|f| f.starts_with("raw/")).collect();
    assert_eq!(
        raw,
        [
            "raw/stream=orders/date=2026-11-26/shard=0003/00000000000000000001-00000000000000000003.ndjson",
            "raw/stream=orders/date=2026-11-26/shard=0003/00000000000000000004-00000000000000000009.ndjson",
        ]
    );
    let lines: usize = raw.iter().map(|f| std::fs::read_to_string(dir.path().join(f)).unwrap().lines().count()).sum();
    assert_eq!(lines, 9, "every record once");
    let events: Vec<String> = lake_files(dir.path()).into_iter().filter(|f| f.starts_with("events/")).collect();
    assert_eq!(
        events,
        ["events/stream=orders/date=2026-11-26/shard=0003/00000000000000000001-00000000000000000009.parquet"]
    );
}

#[tokio::test]
async fn a_group_rolls_by_age_without_more_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = local_store("lake", dir.path()).unwrap();
    let lake =
        LakeSink::rolling("lake", store, RollPolicy { size: 64 << 20, interval: Duration::from_millis(200) }, false);
    lake.prepare().await.unwrap();
    lake.write(&commit_of(1, 3)).await.unwrap();
    assert!(lake_files(dir.path()).is_empty());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while lake_files(dir.path()).len() < 2 {
        assert!(std::time::Instant::now() < deadline, "not rolled by age: {:?}", files(dir.path()));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_host_takes_over_what_a_dead_host_sharing_the_lake_left_staged() {
    let dir = tempfile::tempdir().unwrap();
    let store = local_store("lake", dir.path()).unwrap();
    let policy = RollPolicy { size: 64 << 20, interval: Duration::from_millis(200) };
    let survivor = LakeSink::rolling("lake", store.clone(), policy, true);
    survivor.prepare().await.unwrap();
    let dead = LakeSink::rolling("lake", store, policy, true);
    dead.prepare().await.unwrap();
    dead.write(&commit_of(1, 3)).await.unwrap();
    drop(dead);
    // Not before its host could have rolled it: then taken over and rolled.
    assert!(lake_files(dir.path()).is_empty());
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while lake_files(dir.path()).len() < 2 {
        assert!(std::time::Instant::now() < deadline, "never taken over: {:?}", files(dir.path()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    survivor.flush().await.unwrap();
    assert!(files(dir.path()).iter().all(|f| !f.starts_with("_staging/")), "{:?}", files(dir.path()));
}
