//! The last hour of the host's metrics, for the console's charts: every 10 s the
//! counters and histograms that matter to an operator (records in and out, plugin
//! failures by version, dead letters, commit latency buckets, lag) are copied from the
//! metrics registry into a ring of 360 samples. `GET /v1/metrics/history` answers them
//! with one more sample taken at the request, so a chart has a current end.
//!
//! Bounded: at most [`MAX_SAMPLES`] samples of at most [`MAX_SERIES`] series each, and the
//! series come from the host's own configuration (streams, sinks, plugin versions), not
//! from clients.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use weir_pipeline::Pipeline;

/// Seconds between two samples.
pub(crate) const INTERVAL: Duration = Duration::from_secs(10);
/// One hour of samples.
pub(crate) const MAX_SAMPLES: usize = 360;
/// Series kept per sample, at most.
pub(crate) const MAX_SERIES: usize = 2_000;

/// The metric families kept.
const KEPT: [&str; 12] = [
    "weir_ingested_records_total",
    "weir_records_in_total",
    "weir_events_out_total",
    "weir_aggregates_out_total",
    "weir_plugin_events_out_total",
    "weir_plugin_failures_total",
    "weir_dead_letters_total",
    "weir_sink_rejections_total",
    "weir_commit_seconds_bucket",
    "weir_commit_seconds_count",
    "weir_shard_lag_records",
    "weir_sink_write_seconds_count",
];

#[derive(Debug)]
struct Sample {
    /// Seconds since the Unix epoch.
    time: i64,
    /// Series (`name{labels}`, as Prometheus' text format writes it) → value.
    values: BTreeMap<String, f64>,
}

/// The ring of samples.
#[derive(Debug, Default)]
pub(crate) struct MetricsHistory {
    /// Shared, so an answer copies pointers under the lock, not the samples.
    samples: Mutex<VecDeque<Arc<Sample>>>,
}

/// The kept series of a Prometheus text exposition.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut values = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || !KEPT.iter().any(|k| line.starts_with(k)) {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let Ok(value) = value.parse::<f64>() else { continue };
        if values.len() >= MAX_SERIES {
            break;
        }
        values.insert(series.to_owned(), value);
    }
    values
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl MetricsHistory {
    /// Takes a sample of `pipeline`'s metrics now.
    pub(crate) fn record(&self, pipeline: &Pipeline) {
        let sample = Arc::new(Sample { time: now_seconds(), values: parse(&pipeline.metrics().render()) });
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        if samples.len() >= MAX_SAMPLES {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// Samples every [`INTERVAL`] while the pipeline exists.
    pub(crate) fn start(self: &std::sync::Arc<Self>, pipeline: Weak<Pipeline>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let history = self.clone();
        runtime.spawn(async move {
            loop {
                match pipeline.upgrade() {
                    Some(pipeline) => history.record(&pipeline),
                    None => return,
                }
                tokio::time::sleep(INTERVAL).await;
            }
        });
    }

    /// The samples and one taken now, as `{"interval_seconds", "times": [...], "series":
    /// {"name{labels}": [value or null per time]}}`.
    pub(crate) fn answer(&self, pipeline: &Pipeline) -> serde_json::Value {
        let mut samples: Vec<Arc<Sample>> =
            self.samples.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect();
        samples.push(Arc::new(Sample { time: now_seconds(), values: parse(&pipeline.metrics().render()) }));
        let mut names: Vec<&String> = samples.iter().flat_map(|s| s.values.keys()).collect();
        names.sort();
        names.dedup();
        names.truncate(MAX_SERIES);
        let series: serde_json::Map<String, serde_json::Value> = names
            .into_iter()
            .map(|name| {
                let values: Vec<serde_json::Value> = samples
                    .iter()
                    .map(|s| s.values.get(name).map_or(serde_json::Value::Null, |v| (*v).into()))
                    .collect();
                (name.clone(), values.into())
            })
            .collect();
        serde_json::json!({
            "interval_seconds": INTERVAL.as_secs(),
            "times": samples.iter().map(|s| s.time).collect::<Vec<_>>(),
            "series": series,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_kept_families_are_read_from_the_exposition() {
        let text = "# HELP weir_records_in_total x\nweir_records_in_total{stream=\"orders\"} 12\n\
                    weir_serving_lookups_total{table=\"t\"} 3\nweir_commit_seconds_bucket{stream=\"orders\",le=\"0.5\"} 4\n\
                    weir_shard_lag_records{stream=\"orders\",shard=\"0\"} not-a-number\n";
        let values = parse(text);
        assert_eq!(values.len(), 2, "{values:?}");
        assert_eq!(values["weir_records_in_total{stream=\"orders\"}"], 12.0);
        assert_eq!(values["weir_commit_seconds_bucket{stream=\"orders\",le=\"0.5\"}"], 4.0);
    }
}
