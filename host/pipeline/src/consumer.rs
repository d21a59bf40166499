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

/// How often the shard leases are renewed and balanced, on a log with leases: well
/// within the lease time (10 s by default), as the KCL renews.
const LEASE_ROUND_INTERVAL: Duration = Duration::from_secs(2);

/// How long without a successful lease round before this host stops consuming the
/// stream: less than the lease time (10 s), so its stages stop before other hosts may
/// take the shards over.
const LEASE_SILENCE: Duration = Duration::from_secs(8);

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
    yield_to_ingest: bool,
) -> Result<(), StageError> {
    let on = if yield_to_ingest { crate::stage_threads::stage_runtime() } else { None };
    consume_stream_with(stream, log, metrics, shutdown, run_shard, RESTART_DELAY, on).await;
    Ok(())
}

async fn consume_stream_with(
    stream: String,
    log: Arc<dyn StreamLog>,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
    run_shard: impl Fn(ShardId) -> ShardRun,
    restart_delay: Duration,
    on: Option<tokio::runtime::Handle>,
) {
    let consumer = crate::stage::CONSUMER;
    let leases = log.leases();
    let mut finished: BTreeSet<ShardId> = BTreeSet::new();
    let mut running: BTreeMap<ShardId, tokio::task::AbortHandle> = BTreeMap::new();
    let mut tasks: tokio::task::JoinSet<ShardId> = tokio::task::JoinSet::new();
    let mut task_shards: BTreeMap<tokio::task::Id, ShardId> = BTreeMap::new();
    let mut last_lease_round = tokio::time::Instant::now();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let readable: Option<Vec<ShardId>> = match log.shards(&stream).await {
            Ok(shards) => Some(weir_log::readable_shards(&shards, &finished).into_iter().cloned().collect()),
            Err(err) => {
                tracing::error!(%stream, "cannot list the stream's shards, trying again: {err}");
                None
            }
        };
        // With leases, this host consumes only the shards it holds; the others are other
        // hosts' (or will be taken over when their leases expire). When the listing
        // failed, the leases held are still renewed.
        let allowed: Option<BTreeSet<ShardId>> = match leases {
            None => None,
            Some(leases) => {
                let candidates = readable.clone().unwrap_or_else(|| running.keys().cloned().collect());
                match leases.balance(consumer, &stream, &candidates).await {
                    Ok(round) => {
                        last_lease_round = tokio::time::Instant::now();
                        // Parents another host ended: their children become readable
                        // next round.
                        finished.extend(round.ended);
                        Some(round.held.into_iter().collect())
                    }
                    Err(err) if last_lease_round.elapsed() >= LEASE_SILENCE => {
                        tracing::error!(
                            %stream,
                            "no lease renewed for {} s ({err}): stopping every stage of the stream until a round succeeds, before other hosts take the shards over",
                            LEASE_SILENCE.as_secs()
                        );
                        Some(BTreeSet::new())
                    }
                    Err(err) => {
                        tracing::error!(%stream, "cannot balance the shard leases, trying again: {err}");
                        // Nothing new is known: stop nothing, start nothing.
                        Some(running.keys().cloned().collect())
                    }
                }
            }
        };
        if let Some(allowed) = &allowed {
            running.retain(|shard, task| {
                let keep = allowed.contains(shard);
                if !keep {
                    tracing::warn!(%stream, %shard, "lease not held: stopping the shard's stage (its owner resumes from the checkpoint)");
                    task.abort();
                }
                keep
            });
        }
        for shard in readable.unwrap_or_default() {
            if allowed.as_ref().is_some_and(|allowed| !allowed.contains(&shard)) || running.contains_key(&shard) {
                continue;
            }
            let work = run_shard(shard.clone());
            let done = shard.clone();
            let task = async move {
                work.await;
                done
            };
            // On the stages' low-priority threads (stage_threads.rs) when there are some.
            let handle = match &on {
                Some(runtime) => tasks.spawn_on(task, runtime),
                None => tasks.spawn(task),
            };
            task_shards.insert(handle.id(), shard.clone());
            running.insert(shard, handle);
        }
        let wait = if leases.is_some() {
            LEASE_ROUND_INTERVAL
        } else if running.is_empty() {
            Duration::from_secs(5)
        } else {
            SHARD_LISTING_INTERVAL
        };
        tokio::select! {
            _ = shutdown.changed() => {}
            Some(joined) = tasks.join_next_with_id() => match joined {
                Ok((id, shard)) => {
                    task_shards.remove(&id);
                    running.remove(&shard);
                    if !*shutdown.borrow() {
                        match leases {
                            // Its children may start on any host once this is recorded;
                            // if it cannot be, the shard's stage runs again (and ends at
                            // once) and it is tried again.
                            Some(leases) => match leases.shard_ended(consumer, &stream, &shard).await {
                                Ok(()) => {
                                    finished.insert(shard);
                                }
                                Err(err) => tracing::error!(%stream, %shard, "cannot record that the shard ended: {err}"),
                            },
                            None => {
                                finished.insert(shard);
                            }
                        }
                    }
                }
                Err(join) if join.is_cancelled() => {
                    // Stopped above because its lease was lost.
                    task_shards.remove(&join.id());
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
        if let Err(join) = joined
            && !join.is_cancelled()
        {
            tracing::error!(%stream, "a stage task failed while shutting down: {join}");
        }
    }
    // Hand the leases over at once rather than after the lease time.
    if let Some(leases) = leases {
        for shard in running.keys() {
            let released = tokio::time::timeout(Duration::from_secs(2), leases.release(consumer, &stream, shard)).await;
            if !matches!(released, Ok(Ok(()))) {
                tracing::warn!(%stream, %shard, "could not release the lease at shutdown; it expires on its own");
            }
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
                data: b"{}".to_vec().into(),
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
            // On the stages' own runtime, as the pipeline runs them.
            crate::stage_threads::stage_runtime(),
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
