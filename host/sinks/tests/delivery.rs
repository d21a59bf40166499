//! `deliver`: retries only what failed, backs off, stops on shutdown.

mod common;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use tokio::sync::watch;
use weir_events::Event;
use weir_sinks::{
    DeliveryError, KeptRecord, RetryPolicy, Sink, SinkCommit, SinkError, SinkFuture, SinkItem, WriteReport, deliver,
    remove_kept,
};

/// How the scripted sink answers.
enum Script {
    /// Fails each of these ids its first `n` times.
    FailIds(HashMap<String, u32>),
    /// Reports every record failed, always.
    FailAll,
    /// Returns a whole-call error: retryable or not.
    Error { retryable: bool },
    /// Rejects these ids for good and fails these others on the first attempt.
    RejectAndFailOnce { reject: Vec<String>, fail: Vec<String> },
}

/// A sink that records what each attempt received and what it acknowledged.
struct ScriptedSink {
    script: Script,
    attempts: Mutex<Vec<(SinkCommit, Instant)>>,
    acknowledged: Mutex<Vec<String>>,
}

impl ScriptedSink {
    fn new(script: Script) -> Self {
        Self { script, attempts: Mutex::new(Vec::new()), acknowledged: Mutex::new(Vec::new()) }
    }

    /// The ids each attempt received.
    fn received(&self) -> Vec<Vec<String>> {
        self.attempts.lock().unwrap().iter().map(|(b, _)| b.records.iter().map(|r| r.id.clone()).collect()).collect()
    }
}

impl Sink for ScriptedSink {
    fn name(&self) -> &str {
        "scripted"
    }

    fn write<'a>(&'a self, commit: &'a SinkCommit) -> SinkFuture<'a> {
        Box::pin(async move {
            self.attempts.lock().unwrap().push((commit.clone(), Instant::now()));
            let mut report = WriteReport::all_written();
            match &self.script {
                Script::Error { retryable: true } => {
                    return Err(SinkError::Write {
                        sink: "scripted".into(),
                        target: "the void".into(),
                        source: "connection refused".into(),
                    });
                }
                Script::Error { retryable: false } => {
                    return Err(SinkError::Encode {
                        sink: "scripted".into(),
                        target: "the void".into(),
                        message: "cannot encode".into(),
                    });
                }
                Script::RejectAndFailOnce { reject, fail } => {
                    let first = self.attempts.lock().unwrap().len() == 1;
                    for (i, record) in commit.records.iter().enumerate() {
                        if reject.contains(&record.id) {
                            report.rejected.push((i, format!("{} is too large", record.id)));
                        } else if first && fail.contains(&record.id) {
                            report.failed.push((i, "throttled".into()));
                        } else {
                            self.acknowledged.lock().unwrap().push(record.id.clone());
                        }
                    }
                }
                Script::FailAll => {
                    report.failed = (0..commit.records.len()).map(|i| (i, "throttled".to_owned())).collect();
                }
                Script::FailIds(fail) => {
                    let attempt = self.attempts.lock().unwrap().len() as u32;
                    for (i, record) in commit.records.iter().enumerate() {
                        match fail.get(&record.id) {
                            Some(&times) if attempt <= times => {
                                report.failed.push((i, format!("{} throttled", record.id)))
                            }
                            _ => self.acknowledged.lock().unwrap().push(record.id.clone()),
                        }
                    }
                }
            }
            Ok(report)
        })
    }
}

fn five_records() -> SinkCommit {
    let mut commit = commit();
    for seq in 42..47 {
        push(&mut commit, seq, 0, event(Event::new(ARRIVAL).with("n", seq as i64)));
    }
    commit
}

fn id(seq: u64) -> String {
    weir_sinks::CommitId::log_range("orders", "3", "42", "46").record_id(&seq.to_string(), 0)
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        max_attempts: None,
    }
}

#[tokio::test]
async fn deliver_retries_only_the_failed_records_until_they_succeed() {
    // Records 43 and 45 fail the first 2 times they are written.
    let sink = ScriptedSink::new(Script::FailIds(HashMap::from([(id(43), 2), (id(45), 2)])));
    let (_stop, shutdown) = watch::channel(false);
    let commit = five_records();

    let stats = deliver(&sink, commit.clone(), &fast(), &shutdown).await.unwrap();

    assert_eq!(
        sink.received(),
        [vec![id(42), id(43), id(44), id(45), id(46)], vec![id(43), id(45)], vec![id(43), id(45)]]
    );
    let mut acknowledged = sink.acknowledged.lock().unwrap().clone();
    acknowledged.sort();
    assert_eq!(acknowledged, (42..47).map(id).collect::<Vec<_>>());
    assert_eq!((stats.attempts, stats.records, stats.retried_records), (3, 5, 4));

    // Every retry is the same batch range with the failed records, unchanged.
    let attempts = sink.attempts.lock().unwrap();
    for (retry, _) in &attempts[1..] {
        assert_eq!((&retry.id, retry.arrival_time), (&commit.id, commit.arrival_time));
        assert_eq!(retry.records, [commit.records[1].clone(), commit.records[3].clone()]);
        assert!(matches!(retry.records[0].item, SinkItem::Event(_)));
    }
    // Backoff doubles: 5 ms, then 10 ms, each wait drawn between half of it and all of it
    // (jitter), so at least 2.5 ms and then at least 5 ms.
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1].1 - w[0].1).collect();
    assert!(gaps[0] >= Duration::from_micros(2_500) && gaps[1] >= Duration::from_millis(5), "{gaps:?}");
}

#[tokio::test]
async fn rejected_records_are_returned_not_retried_and_the_rest_is_delivered() {
    let sink =
        ScriptedSink::new(Script::RejectAndFailOnce { reject: vec![id(42), id(44)], fail: vec![id(43), id(44)] });
    let (_stop, shutdown) = watch::channel(false);
    let commit = five_records();

    let stats = deliver(&sink, commit.clone(), &fast(), &shutdown).await.unwrap();

    // 44 is both rejected and failed in one report: it is settled once, as rejected.
    assert_eq!(sink.received(), [vec![id(42), id(43), id(44), id(45), id(46)], vec![id(43)]]);
    let rejected: Vec<(String, String)> = stats.rejected.iter().map(|(r, why)| (r.id.clone(), why.clone())).collect();
    assert_eq!(rejected, [(id(42), format!("{} is too large", id(42))), (id(44), format!("{} is too large", id(44)))]);
    assert_eq!(stats.rejected[0].0, commit.records[0], "the record itself, for the dead letter");
    let mut acknowledged = sink.acknowledged.lock().unwrap().clone();
    acknowledged.sort();
    assert_eq!(acknowledged, [id(43), id(45), id(46)]);
}

#[tokio::test]
async fn deliver_stops_on_shutdown_without_acknowledging() {
    let sink = ScriptedSink::new(Script::FailAll);
    let (stop, shutdown) = watch::channel(false);
    let policy = RetryPolicy {
        initial_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(60),
        max_attempts: None,
    };
    // Shutdown comes once the sink has been tried twice (not after a fixed time, which a
    // loaded machine can stretch past the second attempt), while the delivery waits out
    // its next backoff.
    let stopper = async {
        while sink.received().len() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.send(true).unwrap();
    };

    let started = Instant::now();
    let (result, ()) = tokio::join!(deliver(&sink, five_records(), &policy, &shutdown), stopper);
    let error = result.unwrap_err();

    // The backoff grows past a minute, but shutdown cuts the wait short.
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let DeliveryError::Shutdown { sink: name, attempts, pending, total, .. } = &error else {
        panic!("expected a shutdown error, got {error:?}")
    };
    assert_eq!((name.as_str(), *pending, *total), ("scripted", 5, 5));
    assert!(*attempts >= 2, "retried until shutdown: {attempts} attempts");
    assert_eq!(*attempts as usize, sink.received().len());
    assert!(sink.acknowledged.lock().unwrap().is_empty());
    let message = error.to_string();
    assert!(message.contains("not checkpointed") && message.contains("orders/0003 [42..=57]"), "{message}");
}

#[tokio::test]
async fn deliver_makes_one_attempt_when_shutdown_has_already_fired() {
    let sink = ScriptedSink::new(Script::FailAll);
    let (_stop, shutdown) = watch::channel(true);
    let error = deliver(&sink, five_records(), &fast(), &shutdown).await.unwrap_err();
    assert!(matches!(error, DeliveryError::Shutdown { attempts: 1, pending: 5, .. }), "{error:?}");
    assert_eq!(sink.received().len(), 1);
}

#[tokio::test]
async fn deliver_gives_up_after_max_attempts_with_the_last_reason() {
    let sink = ScriptedSink::new(Script::FailAll);
    let (_stop, shutdown) = watch::channel(false);
    let policy = RetryPolicy { max_attempts: Some(3), ..fast() };
    let error = deliver(&sink, five_records(), &policy, &shutdown).await.unwrap_err();
    assert!(
        matches!(&error, DeliveryError::Exhausted { attempts: 3, pending: 5, total: 5, last_error, .. } if last_error == "throttled"),
        "{error:?}"
    );
    assert_eq!(sink.received().len(), 3);
}

#[tokio::test]
async fn whole_call_errors_retry_when_retryable_and_fail_fast_otherwise() {
    let (_stop, shutdown) = watch::channel(false);
    let policy = RetryPolicy { max_attempts: Some(2), ..fast() };

    let flaky = ScriptedSink::new(Script::Error { retryable: true });
    let error = deliver(&flaky, five_records(), &policy, &shutdown).await.unwrap_err();
    let DeliveryError::Exhausted { attempts, last_error, .. } = &error else { panic!("{error:?}") };
    assert_eq!(*attempts, 2);
    assert!(last_error.contains("connection refused") && last_error.contains("the void"), "{last_error}");
    assert_eq!(flaky.received(), [(42..47).map(id).collect::<Vec<_>>(), (42..47).map(id).collect()]);

    let broken = ScriptedSink::new(Script::Error { retryable: false });
    let error = deliver(&broken, five_records(), &fast(), &shutdown).await.unwrap_err();
    assert!(matches!(error, DeliveryError::Fatal { .. }), "{error:?}");
    assert_eq!(broken.received().len(), 1);
    assert!(error.to_string().contains("cannot encode the void"), "{error}");
}

#[tokio::test]
async fn deliver_to_the_lake_acknowledges_once_the_objects_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let lake = weir_sinks::LakeSink::local("lake", dir.path()).unwrap();
    let (_stop, shutdown) = watch::channel(false);
    let stats = deliver(&lake, five_records(), &RetryPolicy::default(), &shutdown).await.unwrap();
    assert_eq!((stats.attempts, stats.records, stats.retried_records), (1, 5, 0));
    assert_eq!(files(dir.path()).len(), 1);
}

/// A sink keeping records by key whose `remove` fails `flaky` keys on their first try,
/// or every key when `broken`.
struct KeyedSink {
    flaky: Vec<&'static str>,
    broken: bool,
    tries: Mutex<Vec<Vec<String>>>,
    removed: Mutex<Vec<String>>,
}

impl Sink for KeyedSink {
    fn name(&self) -> &str {
        "keyed"
    }

    fn write<'a>(&'a self, _: &'a SinkCommit) -> SinkFuture<'a> {
        Box::pin(async { Ok(WriteReport::all_written()) })
    }

    fn remove<'a>(&'a self, kept: &'a [KeptRecord]) -> SinkFuture<'a> {
        Box::pin(async move {
            let mut tries = self.tries.lock().unwrap();
            let first = tries.is_empty();
            tries.push(kept.iter().map(|k| k.key.clone()).collect());
            let mut report = WriteReport::all_written();
            for (i, k) in kept.iter().enumerate() {
                if self.broken || (first && self.flaky.contains(&k.key.as_str())) {
                    report.failed.push((i, format!("{} throttled", k.key)));
                } else {
                    self.removed.lock().unwrap().push(k.key.clone());
                }
            }
            Ok(report)
        })
    }
}

fn kept(keys: &[&str]) -> Vec<KeptRecord> {
    keys.iter().map(|k| KeptRecord { key: (*k).to_owned(), record: format!("run-{k}") }).collect()
}

#[tokio::test]
async fn removing_kept_records_retries_only_the_keys_that_failed_and_stops_at_shutdown() {
    let policy = fast();
    let (stop, shutdown) = watch::channel(false);
    let sink = KeyedSink { flaky: vec!["b"], broken: false, tries: Mutex::default(), removed: Mutex::default() };
    remove_kept(&sink, "job daily run 1", kept(&["a", "b", "c"]), &policy, &shutdown).await.unwrap();
    assert_eq!(*sink.tries.lock().unwrap(), [vec!["a", "b", "c"], vec!["b"]]);
    assert_eq!(*sink.removed.lock().unwrap(), ["a", "c", "b"]);

    let broken = KeyedSink { flaky: vec![], broken: true, tries: Mutex::default(), removed: Mutex::default() };
    let limited = RetryPolicy { max_attempts: Some(3), ..policy.clone() };
    let error = remove_kept(&broken, "job daily run 1", kept(&["a"]), &limited, &shutdown).await.unwrap_err();
    assert!(matches!(error, DeliveryError::Exhausted { attempts: 3, pending: 1, .. }), "{error}");
    assert!(error.to_string().contains("keyed"), "names the sink: {error}");
    stop.send(true).unwrap();
    let error = remove_kept(&broken, "job daily run 1", kept(&["a"]), &policy, &shutdown).await.unwrap_err();
    assert!(matches!(error, DeliveryError::Shutdown { .. }), "{error}");
    assert!(sink.removed.lock().unwrap().len() == 3 && broken.removed.lock().unwrap().is_empty());
}
