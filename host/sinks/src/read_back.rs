//! Reading a local lake back: how many objects of each kind, raw records, events and dead
//! letters it holds, and the rows of the example aggregator (`restaurant-stats`). The demo
//! reports from it and the end-to-end tests check deliveries with it; neither needs the
//! pipeline for that.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};

use crate::is_interrupted_write;

/// What a lake holds.
#[derive(Debug, Clone, Default)]
pub struct LakeContents {
    /// Objects per top-level folder (`raw`, `events`, `aggregates`, `dead-letters`).
    pub objects: BTreeMap<String, usize>,
    /// Lines of the raw archive.
    pub raw_records: usize,
    /// Rows of the events' Parquet files.
    pub events: usize,
    /// The example aggregator's rows, by window start then restaurant.
    pub aggregates: Vec<AggregateRow>,
    /// Every dead letter as (plugin, reason).
    pub dead_letters: Vec<(String, String)>,
}

/// One row of the example aggregator (`restaurant-stats`) as read back from Parquet.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateRow {
    pub restaurant: String,
    pub window_start: String,
    pub orders: i64,
    pub revenue: f64,
    pub mean_delivery_minutes: Option<f64>,
}

/// Reads back every object of the lake under `lake`, skipping files a crash left
/// half-written (never part of the lake).
///
/// # Errors
/// When a file cannot be read or decoded.
pub fn read_lake(lake: &Path) -> io::Result<LakeContents> {
    let mut contents = LakeContents::default();
    let mut all = Vec::new();
    files(lake, &mut all);
    all.sort();
    for path in all {
        if is_interrupted_write(&path.file_name().unwrap_or_default().to_string_lossy()) {
            continue;
        }
        // Staged commits are not part of the lake until they roll.
        if path.strip_prefix(lake).is_ok_and(|p| p.starts_with(crate::rolling::STAGING)) {
            continue;
        }
        let relative = path.strip_prefix(lake).unwrap_or(&path);
        let kind =
            relative.components().next().map(|c| c.as_os_str().to_string_lossy().into_owned()).unwrap_or_default();
        *contents.objects.entry(kind.clone()).or_default() += 1;
        match kind.as_str() {
            "raw" => contents.raw_records += std::fs::read_to_string(&path)?.lines().count(),
            "events" => contents.events += read_parquet(&path)?.iter().map(RecordBatch::num_rows).sum::<usize>(),
            "aggregates" => {
                for batch in read_parquet(&path)? {
                    contents.aggregates.extend(aggregate_rows(&batch));
                }
            }
            "dead-letters" => {
                for line in std::fs::read_to_string(&path)?.lines() {
                    let v: serde_json::Value = serde_json::from_str(line).map_err(io::Error::other)?;
                    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
                    contents.dead_letters.push((text("plugin"), text("reason")));
                }
            }
            _ => {}
        }
    }
    contents.aggregates.sort_by(|a, b| (&a.window_start, &a.restaurant).cmp(&(&b.window_start, &b.restaurant)));
    Ok(contents)
}

fn aggregate_rows(batch: &RecordBatch) -> Vec<AggregateRow> {
    let column = |name: &str| batch.column_by_name(name);
    let (Some(restaurant), Some(start), Some(orders), Some(revenue)) =
        (column("restaurant_id"), column("window_start"), column("orders"), column("revenue"))
    else {
        return Vec::new();
    };
    let mean = column("mean_delivery_minutes");
    (0..batch.num_rows())
        .map(|i| AggregateRow {
            restaurant: restaurant.as_string::<i32>().value(i).to_owned(),
            window_start: weir_events::time::format_rfc3339(start.as_primitive::<TimestampMicrosecondType>().value(i)),
            orders: orders.as_primitive::<Int64Type>().value(i),
            revenue: revenue.as_primitive::<Float64Type>().value(i),
            mean_delivery_minutes: mean
                .filter(|m| !m.is_null(i) && m.data_type() == &arrow_schema::DataType::Float64)
                .map(|m| m.as_primitive::<Float64Type>().value(i)),
        })
        .collect()
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                files(&path, out);
            } else {
                out.push(path);
            }
        }
    }
}

fn read_parquet(path: &Path) -> io::Result<Vec<RecordBatch>> {
    let file = std::fs::File::open(path)?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|builder| builder.build())
        .map_err(io::Error::other)?;
    reader.collect::<Result<Vec<_>, _>>().map_err(io::Error::other)
}
