//! Pipeline metrics in the Prometheus text format, with no dependency: counters and
//! gauges keyed by name and labels, and one latency histogram per stream.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Upper bounds of the batch-latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

type Key = (&'static str, Vec<(&'static str, String)>);

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The registry. Cheap to share (`Arc<Metrics>`); every update takes one short lock.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<Key, u64>>,
    gauges: Mutex<BTreeMap<Key, i64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
}

fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
    (name, labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect())
}

impl Metrics {
    /// Adds `n` to a counter.
    pub fn add(&self, name: &'static str, labels: &[(&'static str, &str)], n: u64) {
        if n > 0 {
            *self.counters.lock().unwrap_or_else(PoisonError::into_inner).entry(key(name, labels)).or_default() += n;
        }
    }

    /// Sets a gauge.
    pub fn set(&self, name: &'static str, labels: &[(&'static str, &str)], value: i64) {
        self.gauges.lock().unwrap_or_else(PoisonError::into_inner).insert(key(name, labels), value);
    }

    /// The current value of a counter (for tests and the demo).
    pub fn counter(&self, name: &'static str, labels: &[(&'static str, &str)]) -> u64 {
        self.counters.lock().unwrap_or_else(PoisonError::into_inner).get(&key(name, labels)).copied().unwrap_or(0)
    }

    /// Records one batch's processing time.
    pub fn observe_batch(&self, stream: &str, elapsed: Duration) {
        let mut latency = self.latency.lock().unwrap_or_else(PoisonError::into_inner);
        let h = latency.entry(stream.to_owned()).or_default();
        let secs = elapsed.as_secs_f64();
        for (bound, count) in BUCKETS.iter().zip(h.counts.iter_mut()) {
            if secs <= *bound {
                *count += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// Everything, in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let labels = |ls: &[(&'static str, String)]| -> String {
            if ls.is_empty() {
                return String::new();
            }
            let inner: Vec<String> =
                ls.iter().map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))).collect();
            format!("{{{}}}", inner.join(","))
        };
        let mut last = "";
        for ((name, ls), value) in self.counters.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            if *name != last {
                let _ = writeln!(out, "# TYPE {name} counter");
                last = name;
            }
            let _ = writeln!(out, "{name}{} {value}", labels(ls));
        }
        for ((name, ls), value) in self.gauges.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            if *name != last {
                let _ = writeln!(out, "# TYPE {name} gauge");
                last = name;
            }
            let _ = writeln!(out, "{name}{} {value}", labels(ls));
        }
        let latency = self.latency.lock().unwrap_or_else(PoisonError::into_inner);
        if !latency.is_empty() {
            let _ = writeln!(out, "# TYPE weir_batch_seconds histogram");
        }
        for (stream, h) in latency.iter() {
            for (bound, count) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(out, "weir_batch_seconds_bucket{{stream=\"{stream}\",le=\"{bound}\"}} {count}");
            }
            let _ = writeln!(out, "weir_batch_seconds_bucket{{stream=\"{stream}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "weir_batch_seconds_sum{{stream=\"{stream}\"}} {}", h.sum);
            let _ = writeln!(out, "weir_batch_seconds_count{{stream=\"{stream}\"}} {}", h.count);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_gauges_and_histograms_render_in_prometheus_text_format() {
        let m = Metrics::default();
        m.add("weir_records_in_total", &[("stream", "orders")], 3);
        m.add("weir_records_in_total", &[("stream", "orders")], 2);
        m.set("weir_shard_lag_records", &[("stream", "orders"), ("shard", "1")], 7);
        m.observe_batch("orders", Duration::from_millis(20));
        let text = m.render();
        assert!(
            text.contains("# TYPE weir_records_in_total counter\nweir_records_in_total{stream=\"orders\"} 5\n"),
            "{text}"
        );
        assert!(text.contains("weir_shard_lag_records{stream=\"orders\",shard=\"1\"} 7"), "{text}");
        assert!(text.contains("weir_batch_seconds_bucket{stream=\"orders\",le=\"0.01\"} 0"), "{text}");
        assert!(text.contains("weir_batch_seconds_bucket{stream=\"orders\",le=\"0.025\"} 1"), "{text}");
        assert_eq!(m.counter("weir_records_in_total", &[("stream", "orders")]), 5);
    }
}
