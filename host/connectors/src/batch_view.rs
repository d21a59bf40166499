//! The Lambda merge behind `GET /v1/aggregates/{stream}`: for every period a batch job
//! has completed (its manifest is written), the job level's rows replace the stream's
//! aggregates; the stream's answer the rest (the open period, periods no run covered).
//! Each row says which layer it comes from (`"layer": "batch"` or `"stream"`).

use std::sync::Arc;

use object_store::ObjectStore;
use weir_log::BoxFuture;
use weir_sinks::RunManifest;

use crate::stores::{AggregatesReader, ReadError};

/// A stream's aggregates with the batch view of a job level laid over them.
#[derive(Debug)]
pub struct BatchView {
    job: String,
    level: String,
    source: String,
    manifests: Arc<dyn ObjectStore>,
    batch: Arc<dyn AggregatesReader>,
    stream: Option<Arc<dyn AggregatesReader>>,
}

impl BatchView {
    /// The rows of level `level` of job `job` (stored under `source`, read through
    /// `batch`) for the periods whose manifest in `manifests` says the level replaced the
    /// stream's aggregates; `stream`'s rows elsewhere.
    pub fn new(
        job: &str,
        level: &str,
        manifests: Arc<dyn ObjectStore>,
        batch: Arc<dyn AggregatesReader>,
        stream: Option<Arc<dyn AggregatesReader>>,
    ) -> Self {
        Self {
            job: job.to_owned(),
            level: level.to_owned(),
            source: format!("{job}.{level}"),
            manifests,
            batch,
            stream,
        }
    }

    /// The periods `[from, to)` completed runs cover, sorted.
    async fn covered(&self) -> Result<Vec<(i64, i64)>, ReadError> {
        let manifests = RunManifest::list(self.manifests.as_ref(), &self.job)
            .await
            .map_err(|e| ReadError::Failed(format!("cannot list the runs of job {}: {e}", self.job)))?;
        let mut periods: Vec<(i64, i64)> = manifests
            .iter()
            .filter(|m| m.levels.get(&self.level).is_some_and(|l| l.replaces_stream_aggregates))
            .map(|m| (m.from, m.to))
            .collect();
        periods.sort_unstable();
        Ok(periods)
    }
}

/// Whether `time` is in one of the sorted, disjoint `periods`.
fn covered_by(periods: &[(i64, i64)], time: i64) -> bool {
    let after = periods.partition_point(|(from, _)| *from <= time);
    after > 0 && time < periods[after - 1].1
}

fn time_of(row: &serde_json::Value) -> Option<i64> {
    row.get("time").and_then(serde_json::Value::as_str).and_then(|t| weir_events::time::parse_rfc3339(t).ok())
}

fn with_layer(mut row: serde_json::Value, layer: &str) -> serde_json::Value {
    if let Some(object) = row.as_object_mut() {
        object.insert("layer".into(), layer.into());
    }
    row
}

impl AggregatesReader for BatchView {
    fn aggregates<'a>(
        &'a self,
        stream: &'a str,
        key: Option<&'a str>,
        from: i64,
        to: i64,
    ) -> BoxFuture<'a, Result<Vec<serde_json::Value>, ReadError>> {
        Box::pin(async move {
            let periods = self.covered().await?;
            let mut rows = Vec::new();
            if !periods.is_empty() {
                for row in self.batch.aggregates(&self.source, key, from, to).await? {
                    if time_of(&row).is_some_and(|t| covered_by(&periods, t)) {
                        rows.push(with_layer(row, "batch"));
                    }
                }
            }
            if let Some(reader) = &self.stream {
                for row in reader.aggregates(stream, key, from, to).await? {
                    if !time_of(&row).is_some_and(|t| covered_by(&periods, t)) {
                        rows.push(with_layer(row, "stream"));
                    }
                }
            }
            rows.sort_by_key(|row| time_of(row).unwrap_or(i64::MIN));
            Ok(rows)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::covered_by;

    #[test]
    fn a_time_is_covered_inside_a_period_only() {
        let periods = [(0, 10), (20, 30)];
        assert!(covered_by(&periods, 0));
        assert!(covered_by(&periods, 9));
        assert!(!covered_by(&periods, 10));
        assert!(!covered_by(&periods, 15));
        assert!(covered_by(&periods, 29));
        assert!(!covered_by(&periods, 30));
        assert!(!covered_by(&[], 5));
    }
}
