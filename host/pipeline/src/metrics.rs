//! Pipeline metrics in the Prometheus text format, kept by the `prometheus-client` crate:
//! every metric the host exports is declared once below with its HELP text, as a family
//! keyed by its labels (stream, shard, plugin, sink, table, index: names from the
//! configuration, never from a request, so their number is bounded).

use std::collections::HashMap;
use std::time::Duration;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// Every counter, as callers name it (with the `_total` the format adds), and its help.
const COUNTERS: &[(&str, &str)] = &[
    ("weir_ingested_records_total", "Records appended to a stream's log by ingest"),
    ("weir_ingest_rejected_total", "Ingest requests refused, by stream and reason"),
    ("weir_records_in_total", "Log records a stream stage read"),
    ("weir_events_out_total", "Events a stream stage handed to its sinks"),
    ("weir_aggregates_out_total", "Aggregates a stream stage handed to its sinks"),
    ("weir_plugin_events_out_total", "Events each plugin returned, by stream and plugin"),
    ("weir_plugin_failures_total", "Plugin calls that failed, by plugin and kind (trap, limit, error)"),
    ("weir_aggregate_failures_total", "Aggregation groups an aggregator failed to fold or finish"),
    ("weir_late_events_total", "Events that arrived after their window had closed"),
    ("weir_dead_letters_total", "Records dead-lettered, by stream and stage"),
    ("weir_sink_rejections_total", "Records a sink refused for good (dead-lettered), by stream and sink"),
    ("weir_delivery_failures_total", "Commits a sink refused for good (kept pending and retried)"),
    ("weir_stage_restarts_total", "Times a stream stage's task ended and was restarted"),
    ("weir_plugin_start_failures_total", "Commits held because a live plugin could not start a fresh instance"),
    ("weir_serving_lookups_total", "Serving lookups, by table and whether the cache answered"),
    ("weir_search_queries_total", "Search queries answered, by index"),
    ("weir_job_runs_total", "Batch job runs that ended, by job, trigger and status (completed, failed, stopped)"),
    ("weir_job_records_total", "Raw records read by batch job runs that completed, by job"),
    ("weir_job_dead_letters_total", "Records and rows dead-lettered by batch job runs that completed, by job"),
];

/// Every gauge and its help.
const GAUGES: &[(&str, &str)] = &[
    ("weir_shard_lag_records", "Records in a shard not yet committed by its stage"),
    ("weir_job_last_run_milliseconds", "How long a job's last run that ended took, by job"),
    ("weir_job_last_completed_timestamp_seconds", "When a job's last completed run ended (Unix time), by job"),
];

/// Time of one commit, by stream: its plugin calls and the delivery to every sink, up to
/// the checkpoint.
const COMMIT_SECONDS: &str = "weir_commit_seconds";
/// Time of one sink's delivery of one commit (its retries included), by sink.
const SINK_WRITE_SECONDS: &str = "weir_sink_write_seconds";

type Labels = Vec<(&'static str, String)>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The registry. Cheap to share (`Arc<Metrics>`); an update locks only its family.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    counters: HashMap<&'static str, Family<Labels, Counter>>,
    gauges: HashMap<&'static str, Family<Labels, Gauge>>,
    commit_seconds: Histograms,
    sink_write_seconds: Histograms,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let mut counters = HashMap::new();
        for &(name, help) in COUNTERS {
            let family = Family::<Labels, Counter>::default();
            // The format appends `_total` to a counter's name.
            registry.register(name.strip_suffix("_total").unwrap_or(name), help, family.clone());
            counters.insert(name, family);
        }
        let mut gauges = HashMap::new();
        for &(name, help) in GAUGES {
            let family = Family::<Labels, Gauge>::default();
            registry.register(name, help, family.clone());
            gauges.insert(name, family);
        }
        let commit_seconds = Histograms::new_with_constructor(histogram as fn() -> Histogram);
        registry.register(
            COMMIT_SECONDS,
            "Time of one commit of a stream stage: its plugin calls and the delivery to every sink",
            commit_seconds.clone(),
        );
        let sink_write_seconds = Histograms::new_with_constructor(histogram as fn() -> Histogram);
        registry.register(
            SINK_WRITE_SECONDS,
            "Time a sink took to acknowledge one commit, retries included",
            sink_write_seconds.clone(),
        );
        Self { registry, counters, gauges, commit_seconds, sink_write_seconds }
    }
}

fn labels(labels: &[(&'static str, &str)]) -> Labels {
    labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

impl Metrics {
    /// Adds `n` to a counter. A name not declared in [`COUNTERS`] is a bug: it is
    /// logged and otherwise ignored (never a panic on the data path).
    pub fn add(&self, name: &'static str, label_values: &[(&'static str, &str)], n: u64) {
        match self.counters.get(name) {
            Some(family) if n > 0 => {
                family.get_or_create(&labels(label_values)).inc_by(n);
            }
            Some(_) => {}
            None => tracing::error!("metric {name} is not declared in host/pipeline/src/metrics.rs"),
        }
    }

    /// Sets a gauge.
    pub fn set(&self, name: &'static str, label_values: &[(&'static str, &str)], value: i64) {
        match self.gauges.get(name) {
            Some(family) => {
                family.get_or_create(&labels(label_values)).set(value);
            }
            None => tracing::error!("metric {name} is not declared in host/pipeline/src/metrics.rs"),
        }
    }

    /// The current value of a counter (for tests and the demo). Reading creates no series.
    pub fn counter(&self, name: &'static str, label_values: &[(&'static str, &str)]) -> u64 {
        let family = self.counters.get(name);
        family.and_then(|family| family.get(&labels(label_values)).map(|counter| counter.get())).unwrap_or(0)
    }

    /// Records one commit's time.
    pub fn observe_commit(&self, stream: &str, elapsed: Duration) {
        self.commit_seconds.get_or_create(&labels(&[("stream", stream)])).observe(elapsed.as_secs_f64());
    }

    /// Records the time one sink took to acknowledge one commit.
    pub fn observe_sink_write(&self, sink: &str, elapsed: Duration) {
        self.sink_write_seconds.get_or_create(&labels(&[("sink", sink)])).observe(elapsed.as_secs_f64());
    }

    /// Everything, in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_gauges_and_histograms_render_in_prometheus_text_format_with_help() {
        let m = Metrics::default();
        m.add("weir_records_in_total", &[("stream", "orders")], 3);
        m.add("weir_records_in_total", &[("stream", "orders")], 2);
        m.set("weir_shard_lag_records", &[("stream", "orders"), ("shard", "1")], 7);
        m.observe_commit("orders", Duration::from_millis(20));
        m.observe_sink_write("lake", Duration::from_millis(3));
        m.observe_sink_write("search", Duration::from_millis(300));
        let text = m.render();
        assert!(text.contains("# HELP weir_records_in_total Log records a stream stage read.\n"), "{text}");
        assert!(
            text.contains("# TYPE weir_records_in_total counter\nweir_records_in_total{stream=\"orders\"} 5\n"),
            "{text}"
        );
        assert!(text.contains("weir_shard_lag_records{stream=\"orders\",shard=\"1\"} 7"), "{text}");
        assert!(text.contains("weir_commit_seconds_bucket{stream=\"orders\",le=\"0.01\"} 0"), "{text}");
        assert!(text.contains("weir_commit_seconds_bucket{stream=\"orders\",le=\"0.025\"} 1"), "{text}");
        assert!(text.contains("weir_sink_write_seconds_bucket{sink=\"lake\",le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("weir_sink_write_seconds_bucket{sink=\"search\",le=\"0.25\"} 0"), "{text}");
        assert!(text.contains("weir_sink_write_seconds_count{sink=\"search\"} 1"), "{text}");
        assert_eq!(m.counter("weir_records_in_total", &[("stream", "orders")]), 5);
        assert_eq!(m.counter("weir_records_in_total", &[("stream", "clicks")]), 0);
        assert!(!m.render().contains("clicks"), "reading a counter adds no series");
    }

    #[test]
    fn every_declared_metric_has_a_help_line_once_it_has_a_value() {
        let m = Metrics::default();
        for (name, _) in COUNTERS {
            m.add(name, &[], 1);
        }
        for (name, _) in GAUGES {
            m.set(name, &[], 1);
        }
        let text = m.render();
        for (name, _) in COUNTERS.iter().chain(GAUGES) {
            assert!(text.contains(&format!("# HELP {name} ")), "{name} has no HELP line:\n{text}");
            assert!(text.contains(&format!("\n{name} 1\n")), "{name} has no value:\n{text}");
        }
    }

    #[test]
    fn label_values_are_escaped_and_undeclared_names_are_ignored() {
        let m = Metrics::default();
        m.add("weir_dead_letters_total", &[("stream", "a\"b\\c"), ("stage", "parse")], 1);
        m.add("weir_not_declared_total", &[], 1);
        let text = m.render();
        assert!(text.contains(r#"weir_dead_letters_total{stream="a\"b\\c",stage="parse"} 1"#), "{text}");
        assert!(!text.contains("weir_not_declared"), "{text}");
    }
}
