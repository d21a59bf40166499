//! Retrying delivery of a commit to one sink.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::error::DeliveryError;
use crate::health::Outages;
use crate::sink::{KeptRecord, Sink, SinkCommit};

/// How [`deliver`] retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait before the first retry; doubled after each failed retry. Each wait is
    /// drawn at random between half of it and all of it ("equal jitter"), so shards that
    /// failed together do not retry in lock-step against a sink that is recovering.
    pub initial_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
    /// Attempts in all (the first write included) before giving up; `None` retries until
    /// shutdown: a failing sink applies backpressure, nothing is dropped.
    pub max_attempts: Option<u32>,
}

impl Default for RetryPolicy {
    /// 100 ms doubling up to 10 s, until shutdown.
    fn default() -> Self {
        Self { initial_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(10), max_attempts: None }
    }
}

/// What a successful [`deliver`] took.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryStats {
    /// Calls to [`Sink::write`], the first included.
    pub attempts: u32,
    /// Records in the commit, all acknowledged.
    pub records: usize,
    /// Records sent again, summed over the retries.
    pub retried_records: usize,
    /// Wall time from the first write to the last acknowledgement.
    pub elapsed: Duration,
    /// The records the sink refused for good ([`WriteReport::rejected`](crate::WriteReport::rejected)),
    /// each with the sink's reason: not retried, and for the caller to dead-letter.
    pub rejected: Vec<(crate::SinkRecord, String)>,
}

/// Writes `commit` to `sink`, then retries only the records that failed (a
/// [`SinkCommit::subset`] with the same stream, shard and range) with exponential backoff,
/// until every record is written, [`RetryPolicy::max_attempts`] runs out, or `shutdown`
/// turns `true`.
///
/// Records the sink [rejects](crate::WriteReport::rejected) are settled: not retried, and
/// returned in [`DeliveryStats::rejected`] for the caller to dead-letter.
///
/// Returns `Ok` only when every record is acknowledged or rejected: the stage checkpoints the commit
/// then and only then, which makes delivery at-least-once (the sinks' idempotent writes
/// make the repeats harmless).
///
/// - A whole-call error ([`SinkError`](crate::SinkError)) that
///   [is retryable](crate::SinkError::is_retryable) retries the records of that attempt;
///   any other returns [`DeliveryError::Fatal`] at once.
/// - The first attempt is always made; an attempt in progress is not interrupted (sinks
///   bound their own calls), shutdown is checked after a failed attempt and ends a backoff
///   wait early with [`DeliveryError::Shutdown`]. A dropped shutdown sender never fires.
/// - Each retry is logged (`tracing::warn`) with the sink, the number of records and
///   the first reason.
/// - Indices a sink reports out of range, or twice, are ignored (and logged): they name
///   no record to retry.
///
/// # Errors
/// [`DeliveryError`] when records are still unacknowledged; the commit must not be
/// checkpointed.
pub async fn deliver(
    sink: &dyn Sink,
    commit: SinkCommit,
    policy: &RetryPolicy,
    shutdown: &watch::Receiver<bool>,
) -> Result<DeliveryStats, DeliveryError> {
    deliver_watched(sink, commit, policy, shutdown, None).await
}

/// [`deliver`], recording each failed attempt and the final success of the sink in
/// `health` (when given), so a sink that keeps failing shows while it retries.
///
/// # Errors
/// As [`deliver`].
pub async fn deliver_watched(
    sink: &dyn Sink,
    commit: SinkCommit,
    policy: &RetryPolicy,
    shutdown: &watch::Receiver<bool>,
    health: Option<&Outages>,
) -> Result<DeliveryStats, DeliveryError> {
    let started = Instant::now();
    let total = commit.records.len();
    let describe = commit.describe();
    // Health is kept per sink and stream shard (or job run): one shard's success must not
    // clear another's failure.
    let part = format!("{}/{}", commit.id.source(), commit.id.part());
    let current_part = part.as_str();
    let mut current = commit;
    let mut attempts = 0u32;
    let mut retried_records = 0usize;
    let mut backoff = policy.initial_backoff;
    let mut shutdown = shutdown.clone();
    let mut rejected = Vec::new();

    loop {
        attempts += 1;
        let succeeded = || {
            if let Some(health) = health {
                health.succeeded(sink.name(), current_part);
            }
        };
        let last_error = match sink.write(&current).await {
            Ok(report) => {
                // One flag per record: a sink reporting many outcomes is checked in
                // linear time. A record is settled once: rejected for good, or failed.
                let mut reported = vec![false; current.records.len()];
                let mut check = |index: usize| {
                    if reported.get(index).is_none_or(|&seen| seen) {
                        tracing::error!(
                            sink = sink.name(),
                            commit = %describe,
                            index,
                            records = current.records.len(),
                            "sink reported a record index that is out of range or repeated; ignored"
                        );
                        false
                    } else {
                        reported[index] = true;
                        true
                    }
                };
                for (index, why) in report.rejected {
                    if check(index) {
                        rejected.push((current.records[index].clone(), why));
                    }
                }
                let mut indices: Vec<usize> = Vec::with_capacity(report.failed.len());
                for (index, _) in &report.failed {
                    if check(*index) {
                        indices.push(*index);
                    }
                }
                let reason = report.failed.first().map(|(_, why)| why.clone()).unwrap_or_default();
                if indices.is_empty() {
                    succeeded();
                    let elapsed = started.elapsed();
                    return Ok(DeliveryStats { attempts, records: total, retried_records, elapsed, rejected });
                }
                indices.sort_unstable();
                current = current.subset(&indices);
                reason
            }
            Err(error) if !error.is_retryable() => {
                if let Some(health) = health {
                    health.failed(sink.name(), current_part, &error.to_string());
                }
                return Err(DeliveryError::Fatal { sink: sink.name().to_owned(), commit: describe, source: error });
            }
            Err(error) => error.to_string(),
        };

        if let Some(health) = health {
            health.failed(sink.name(), current_part, &last_error);
        }
        let pending = current.records.len();
        let attempt = Attempt { describe: &describe, attempts, pending, total, last_error };
        attempt
            .wait_to_retry(sink, policy, backoff, &mut shutdown, "sink write failed, retrying the failed records")
            .await?;
        retried_records += pending;
        backoff = backoff.saturating_mul(2).min(policy.max_backoff);
    }
}

/// Removes `kept` from `sink` ([`Sink::remove`]), retrying the keys that failed with
/// the backoff of [`deliver`], until all are removed, attempts run out or `shutdown`
/// turns `true`. `what` names the removal in messages (`job daily run 20261201T000000Z`).
///
/// # Errors
/// [`DeliveryError`] when keys are still not removed.
pub async fn remove_kept(
    sink: &dyn Sink,
    what: &str,
    kept: Vec<KeptRecord>,
    policy: &RetryPolicy,
    shutdown: &watch::Receiver<bool>,
) -> Result<(), DeliveryError> {
    let describe = format!("{what}: removing {} records it no longer writes", kept.len());
    let total = kept.len();
    let mut current = kept;
    let mut attempts = 0u32;
    let mut backoff = policy.initial_backoff;
    let mut shutdown = shutdown.clone();
    while !current.is_empty() {
        attempts += 1;
        let last_error = match sink.remove(&current).await {
            Ok(report) => {
                let mut failed: Vec<usize> =
                    report.failed.iter().map(|(i, _)| *i).filter(|&i| i < current.len()).collect();
                failed.sort_unstable();
                failed.dedup();
                let reason = report.failed.first().map(|(_, why)| why.clone()).unwrap_or_default();
                current = failed.into_iter().map(|i| current[i].clone()).collect();
                if current.is_empty() {
                    break;
                }
                reason
            }
            Err(error) if !error.is_retryable() => {
                return Err(DeliveryError::Fatal { sink: sink.name().to_owned(), commit: describe, source: error });
            }
            Err(error) => error.to_string(),
        };
        let attempt = Attempt { describe: &describe, attempts, pending: current.len(), total, last_error };
        attempt
            .wait_to_retry(
                sink,
                policy,
                backoff,
                &mut shutdown,
                "removing kept records failed, retrying the failed keys",
            )
            .await?;
        backoff = backoff.saturating_mul(2).min(policy.max_backoff);
    }
    Ok(())
}

/// A failed attempt of [`deliver`] or [`remove_kept`]: what is still pending and why.
struct Attempt<'a> {
    describe: &'a str,
    attempts: u32,
    pending: usize,
    total: usize,
    last_error: String,
}

impl Attempt<'_> {
    /// Gives up when the attempts ran out or shutdown came, else logs `message` and waits
    /// the jittered `backoff` (cut short by shutdown) before the next attempt.
    async fn wait_to_retry(
        self,
        sink: &dyn Sink,
        policy: &RetryPolicy,
        backoff: Duration,
        shutdown: &mut watch::Receiver<bool>,
        message: &str,
    ) -> Result<(), DeliveryError> {
        let Attempt { describe, attempts, pending, total, last_error } = self;
        if policy.max_attempts.is_some_and(|max| attempts >= max) {
            return Err(DeliveryError::Exhausted {
                sink: sink.name().to_owned(),
                commit: describe.to_owned(),
                attempts,
                pending,
                total,
                last_error,
            });
        }
        if *shutdown.borrow() {
            return Err(shutdown_error(sink, describe.to_owned(), attempts, pending, total));
        }
        let wait = jittered(backoff, fastrand::f64());
        tracing::warn!(
            sink = sink.name(),
            commit = %describe,
            failed = pending,
            of = total,
            attempt = attempts,
            retry_in_ms = wait.as_millis() as u64,
            reason = %last_error,
            "{message}"
        );
        tokio::select! {
            () = tokio::time::sleep(wait) => Ok(()),
            () = wait_for_shutdown(shutdown) => Err(shutdown_error(sink, describe.to_owned(), attempts, pending, total)),
        }
    }
}

/// A wait between half of `backoff` and all of it: `unit` (in `0.0..1.0`) picks where.
fn jittered(backoff: Duration, unit: f64) -> Duration {
    let half = backoff / 2;
    half + half.mul_f64(unit.clamp(0.0, 1.0))
}

fn shutdown_error(sink: &dyn Sink, commit: String, attempts: u32, pending: usize, total: usize) -> DeliveryError {
    DeliveryError::Shutdown { sink: sink.name().to_owned(), commit, attempts, pending, total }
}

/// Resolves when the value turns `true`; never when the sender is dropped first.
async fn wait_for_shutdown(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|&stop| stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_waits_between_half_the_backoff_and_all_of_it() {
        let backoff = Duration::from_millis(800);
        assert_eq!(jittered(backoff, 0.0), Duration::from_millis(400));
        assert_eq!(jittered(backoff, 1.0), backoff);
        assert_eq!(jittered(backoff, 0.5), Duration::from_millis(600));
        assert_eq!(jittered(backoff, 7.0), backoff, "out-of-range draws are clamped");
    }

    #[test]
    fn waits_drawn_for_shards_that_failed_together_differ() {
        let backoff = Duration::from_secs(1);
        let waits: std::collections::BTreeSet<Duration> = (0..16).map(|_| jittered(backoff, fastrand::f64())).collect();
        assert!(waits.len() > 1, "16 shards would retry in lock-step: {waits:?}");
        assert!(waits.iter().all(|w| *w >= backoff / 2 && *w <= backoff));
    }
}
