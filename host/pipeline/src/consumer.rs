//! Consuming a stream: a task per readable shard, each supervised, so that neither a
//! stage's error nor a panicking task leaves a shard unconsumed.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use weir_log::{ShardId, StreamLog};

use crate::metrics::Metrics;
use crate::stage::{ShardStage, StageError};

/// One shard's work, as [`consume_stream`] runs it: it returns when the shard has been
/// read to its end (or at shutdown).
pub(crate) type ShardRun = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// How long a failed or panicked shard task waits before it runs again, so one that
/// fails on every start does not spin.
const RESTART_DELAY: Duration = Duration::from_secs(5);

/// How often a stream's shard set is listed again, to find shards that appeared (Kinesis
/// resharding) when no stage ended to say so.
const SHARD_LISTING_INTERVAL: Duration = Duration::from_secs(30);

/// Runs a shard's stage and restarts it after a failure (a log error, say), so one bad
/// moment never leaves a shard unconsumed; each restart is logged and counted in
/// `weir_stage_restarts_total`. Returns at shutdown, or when the shard has ended and
/// every record of it is committed.
pub(crate) async fn supervise(mut stage: ShardStage, metrics: Arc<Metrics>, mut shutdown: watch::Receiver<bool>) {
    loop {
        match stage.run().await {
            Ok(()) => return,
            Err(err) => {
                tracing::error!("{err}; restarting the stage in {} s", RESTART_DELAY.as_secs());
                metrics.add("weir_stage_restarts_total", &[("stream", stage.stream())], 1);
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep(RESTART_DELAY) => {}
                }
            }
        }
    }
}

/// Consumes one stream: `run_shard` for each shard it may read now (parents before
/// children, see [`weir_log::readable_shards`]), the shard set listed again whenever a
/// shard's task ends and every [`SHARD_LISTING_INTERVAL`]. A task that returns has read
/// its shard to the end; one that panicked is counted in `weir_stage_restarts_total`
/// and run again after [`RESTART_DELAY`].
pub(crate) async fn consume_stream(
    stream: String,
    log: Arc<dyn StreamLog>,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
    run_shard: impl Fn(ShardId) -> ShardRun,
) -> Result<(), StageError> {
    consume_stream_with(stream, log, metrics, shutdown, run_shard, RESTART_DELAY).await;
    Ok(())
}

async fn consume_stream_with(
    stream: String,
    log: Arc<dyn StreamLog>,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
    run_shard: impl Fn(ShardId) -> ShardRun,
    restart_delay: Duration,
) {
    let mut finished: BTreeSet<ShardId> = BTreeSet::new();
    let mut running: BTreeSet<ShardId> = BTreeSet::new();
    let mut tasks: tokio::task::JoinSet<ShardId> = tokio::task::JoinSet::new();
    let mut task_shards: BTreeMap<tokio::task::Id, ShardId> = BTreeMap::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        match log.shards(&stream).await {
            Ok(shards) => {
                for shard in weir_log::readable_shards(&shards, &finished) {
                    if running.insert(shard.clone()) {
                        let work = run_shard(shard.clone());
                        let done = shard.clone();
                        let handle = tasks.spawn(async move {
                            work.await;
                            done
                        });
                        task_shards.insert(handle.id(), shard.clone());
                    }
                }
            }
            Err(err) => tracing::error!(%stream, "cannot list the stream's shards, trying again in 5 s: {err}"),
        }
        let wait = if running.is_empty() { Duration::from_secs(5) } else { SHARD_LISTING_INTERVAL };
        tokio::select! {
            _ = shutdown.changed() => {}
            Some(joined) = tasks.join_next_with_id() => match joined {
                Ok((id, shard)) => {
                    task_shards.remove(&id);
                    running.remove(&shard);
                    if !*shutdown.borrow() {
                        finished.insert(shard);
                    }
                }
                Err(join) => {
                    let shard = task_shards.remove(&join.id());
                    tracing::error!(
                        %stream, ?shard, "a stage task failed ({join}); starting it again in {} s",
                        restart_delay.as_secs_f64()
                    );
                    metrics.add("weir_stage_restarts_total", &[("stream", &stream)], 1);
                    if let Some(shard) = shard {
                        running.remove(&shard);
                    }
                    tokio::select! {
                        _ = shutdown.changed() => {}
                        _ = tokio::time::sleep(restart_delay) => {}
                    }
                }
            },
            _ = tokio::time::sleep(wait) => {}
        }
    }
    while let Some(joined) = tasks.join_next().await {
        if let Err(join) = joined {
            tracing::error!(%stream, "a stage task failed while shutting down: {join}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use weir_log::{EmbeddedLog, LogConfig, NewRecord};

    use super::*;

    #[tokio::test]
    async fn a_shard_task_that_panics_is_counted_and_run_again_until_it_finishes() {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(&dir.path().join("log"), LogConfig { shards_per_stream: 1, ..Default::default() })
            .unwrap();
        let log: Arc<dyn StreamLog> = Arc::new(log);
        log.append(
            "orders",
            vec![NewRecord {
                partition_key: None,
                data: b"{}".to_vec(),
                content_type: "application/json".into(),
                arrival_time: 0,
            }],
        )
        .await
        .unwrap();
        let metrics = Arc::new(Metrics::default());
        let (stop, shutdown) = watch::channel(false);
        // The shard's task panics on its first two runs and ends normally on the third.
        let runs = Arc::new(Mutex::new(Vec::<ShardId>::new()));
        let seen = runs.clone();
        let run_shard = move |shard: ShardId| -> ShardRun {
            let runs = seen.clone();
            Box::pin(async move {
                let n = {
                    let mut runs = runs.lock().unwrap();
                    runs.push(shard);
                    runs.len()
                };
                assert!(n > 2, "run {n} of the shard's stage panics");
            })
        };
        let consumer = tokio::spawn(consume_stream_with(
            "orders".into(),
            log,
            metrics.clone(),
            shutdown,
            run_shard,
            Duration::from_millis(10),
        ));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while runs.lock().unwrap().len() < 3 {
            assert!(tokio::time::Instant::now() < deadline, "the panicked task was not run again: {runs:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The third run ended normally: the shard is finished and not started again.
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(true).unwrap();
        consumer.await.unwrap();
        let runs = runs.lock().unwrap().clone();
        assert_eq!(runs.len(), 3, "{runs:?}");
        assert!(runs.iter().all(|shard| *shard == runs[0]), "{runs:?}");
        assert_eq!(metrics.counter("weir_stage_restarts_total", &[("stream", "orders")]), 2);
    }
}
