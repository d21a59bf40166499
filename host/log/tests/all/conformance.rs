//! The embedded log passes the stream-log conformance suite (`weir_log::conformance`),
//! the same checks any other implementation of the traits is held to.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use weir_log::conformance::Subject;
use weir_log::{BoxFuture, EmbeddedLog, LogConfig, ShardId, StreamLog};

/// An embedded log in a temporary directory; retention is driven by calling it with a
/// clock set one retention age after the cut-off.
struct Embedded {
    _dir: tempfile::TempDir,
    path: PathBuf,
    config: LogConfig,
    log: Option<EmbeddedLog>,
}

async fn embedded() -> Embedded {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.redb");
    let config = LogConfig { retention_age: Duration::from_secs(3600), ..LogConfig::default() };
    let log = EmbeddedLog::open(&path, config.clone()).unwrap();
    Embedded { _dir: dir, path, config, log: Some(log) }
}

impl Subject for Embedded {
    fn log(&self) -> Arc<dyn StreamLog> {
        Arc::new(self.log.clone().expect("open"))
    }

    fn reopen(&mut self) -> BoxFuture<'_, ()> {
        // The file is exclusive to one handle: close it before opening it again.
        self.log = None;
        self.log = Some(EmbeddedLog::open(&self.path, self.config.clone()).unwrap());
        Box::pin(std::future::ready(()))
    }

    fn split<'a>(&'a self, _stream: &'a str, _shard: &'a ShardId) -> Option<BoxFuture<'a, Vec<ShardId>>> {
        None
    }

    fn expire_before<'a>(&'a self, _stream: &'a str, arrival_time: i64) -> Option<BoxFuture<'a, ()>> {
        let log = self.log.clone().expect("open");
        let age = i64::try_from(self.config.retention_age.as_micros()).unwrap();
        Some(Box::pin(async move {
            tokio::task::spawn_blocking(move || log.apply_retention(arrival_time + age).unwrap()).await.unwrap();
        }))
    }
}

weir_log::conformance_tests!(embedded());
