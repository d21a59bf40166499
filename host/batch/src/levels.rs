//! A job's levels: SQL over the run's events in DataFusion, or an aggregator plugin whose
//! per-worker partial states are combined with its `merge`.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::datasource::MemTable;
use datafusion::prelude::{SQLOptions, SessionContext};
use weir_events::{Event, Value, Window};
use weir_runtime::aggregation::{CallGroups, GroupKey, GroupStates, accumulate, finished_groups};
use weir_runtime::{FinishedGroup, Plugin};

use crate::error::BatchError;

/// The table a level's SQL reads.
pub(crate) const EVENTS_TABLE: &str = "events";

/// A row a level could not produce (a group the plugin refused), with why.
#[derive(Debug, Clone)]
pub(crate) struct RowFailure {
    /// What failed: `group r-7 [2026-12-01T00:00:00Z..)`, `events of record 12`.
    pub(crate) what: String,
    /// The index of a raw record it stands for, when there is one.
    pub(crate) record: Option<usize>,
    pub(crate) plugin: String,
    pub(crate) reason: String,
}

/// Registers the run's events as the table `events`, cut into `partitions` for
/// DataFusion's parallel operators.
pub(crate) fn register_events(
    ctx: &SessionContext,
    batch: arrow_array::RecordBatch,
    partitions: usize,
) -> Result<(), BatchError> {
    let rows = batch.num_rows();
    let per = rows.div_ceil(partitions.max(1)).max(1);
    let slices: Vec<Vec<arrow_array::RecordBatch>> =
        (0..rows).step_by(per).map(|start| vec![batch.slice(start, per.min(rows - start))]).collect();
    let table = MemTable::try_new(batch.schema(), if slices.is_empty() { vec![vec![batch]] } else { slices })
        .map_err(|e| BatchError::Engine(e.to_string()))?;
    if ctx.table_exist(EVENTS_TABLE).map_err(|e| BatchError::Engine(e.to_string()))? {
        ctx.deregister_table(EVENTS_TABLE).map_err(|e| BatchError::Engine(e.to_string()))?;
    }
    ctx.register_table(EVENTS_TABLE, Arc::new(table)).map_err(|e| BatchError::Engine(e.to_string()))?;
    Ok(())
}

/// Runs a level's query (read-only: no DDL, DML or statements) and turns each result row
/// into an event: `_key` its key, `_time` its time (else `default_time`), the other
/// columns its fields.
pub(crate) async fn sql_rows(
    ctx: &SessionContext,
    level: &str,
    sql: &str,
    default_time: i64,
) -> Result<Vec<Event>, BatchError> {
    let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
    let failed = |e: &dyn std::fmt::Display| BatchError::Engine(format!("level {level}: the query failed: {e}"));
    let frame = ctx.sql_with_options(sql, options).await.map_err(|e| failed(&e))?;
    let batches = frame.collect().await.map_err(|e| failed(&e))?;
    let mut rows = Vec::new();
    for batch in &batches {
        let columns = weir_sinks::plugin_batch_from_arrow(batch, default_time).map_err(|e| {
            BatchError::Invalid(format!(
                "level {level}: {e}; cast the column in the query (e.g. CAST(x AS DOUBLE)) to a type rows can hold"
            ))
        })?;
        rows.extend(columns.decode().map_err(|e| BatchError::Engine(format!("level {level}: {e}")))?);
    }
    Ok(rows)
}

/// The group key of an event: its window and the text of `key_field` (or its key).
fn group_of(event: &Event, window: i64, key_field: Option<&str>) -> (Window, Option<String>) {
    let key = match key_field {
        Some(field) => event.fields.iter().find(|(name, _)| &**name == field).and_then(|(_, value)| match value {
            Value::Text(text) => Some(text.clone()),
            Value::Int(n) => Some(n.to_string()),
            _ => None,
        }),
        None => event.key.clone(),
    };
    (Window::of(event.time, window), key)
}

/// One worker's share of an aggregator level: its events folded into partial states, in
/// calls of `batch_size`. An event the plugin refuses is reported with its record; a call
/// that fails whole reports each of its events.
pub(crate) async fn accumulate_share(
    plugin: &Plugin,
    label: &str,
    events: &[(usize, &Event)],
    window: i64,
    key_field: Option<&str>,
    batch_size: usize,
) -> (GroupStates, Vec<RowFailure>) {
    let mut states = GroupStates::new();
    let mut failures = Vec::new();
    for chunk in events.chunks(batch_size.max(1)) {
        let mut groups = CallGroups::default();
        for (_, event) in chunk {
            let (window, key) = group_of(event, window, key_field);
            groups.add(window, key.as_deref());
        }
        let fail = |record: usize, reason: String| RowFailure {
            what: format!("the events of record {record}"),
            record: Some(record),
            plugin: plugin.id().to_string(),
            reason,
        };
        match accumulate(plugin, label, groups, chunk.iter().map(|(_, e)| *e), &mut states).await {
            Ok((out, _)) => {
                failures.extend(
                    out.errors
                        .into_iter()
                        .filter_map(|e| chunk.get(e.index as usize).map(|(record, _)| fail(*record, e.message))),
                );
            }
            Err(e) => failures.extend(chunk.iter().map(|(record, _)| fail(*record, e.to_string()))),
        }
    }
    (states, failures)
}

/// Combines the workers' partial states of each group with the plugin's `merge` (one call
/// per round, a round halving the states of every group), then `finish`es every group in
/// calls of `batch_size`. Returns the rows in group order.
pub(crate) async fn merge_and_finish(
    plugin: &Plugin,
    label: &str,
    shares: Vec<GroupStates>,
    batch_size: usize,
) -> (Vec<Event>, Vec<RowFailure>) {
    let mut failures = Vec::new();
    let mut partial: BTreeMap<GroupKey, Vec<Vec<u8>>> = BTreeMap::new();
    for share in shares {
        for (key, state) in share {
            partial.entry(key).or_default().push(state);
        }
    }
    let describe =
        |key: &GroupKey| format!("group {:?} of window {}", key.1, weir_events::time::format_rfc3339(key.0.start));
    loop {
        let mut pairs = Vec::new();
        let mut owners = Vec::new();
        for (key, states) in partial.iter_mut() {
            while states.len() >= 2 {
                let (b, a) = (states.pop().unwrap_or_default(), states.pop().unwrap_or_default());
                pairs.push((a, b));
                owners.push(key.clone());
            }
        }
        if pairs.is_empty() {
            break;
        }
        match plugin.merge(label, pairs).await {
            Ok((merged, _)) => {
                for (key, result) in owners.into_iter().zip(merged) {
                    match result {
                        Ok(state) => partial.entry(key).or_default().push(state),
                        Err(reason) => {
                            failures.push(RowFailure {
                                what: describe(&key),
                                record: None,
                                plugin: plugin.id().to_string(),
                                reason: format!("merge refused: {reason}"),
                            });
                            partial.remove(&key);
                        }
                    }
                }
            }
            Err(e) => {
                for key in owners {
                    failures.push(RowFailure {
                        what: describe(&key),
                        record: None,
                        plugin: plugin.id().to_string(),
                        reason: format!("merge failed: {e}"),
                    });
                    partial.remove(&key);
                }
            }
        }
    }
    let states: GroupStates =
        partial.into_iter().filter_map(|(key, mut states)| states.pop().map(|state| (key, state))).collect();
    let keys: Vec<&GroupKey> = states.keys().collect();
    let mut rows = Vec::new();
    for chunk in keys.chunks(batch_size.max(1)) {
        let groups: Vec<FinishedGroup> = finished_groups(chunk.iter().copied(), &states);
        match plugin.finish(label, groups).await {
            Ok((out, _)) => match out.events.decode() {
                Ok(events) => {
                    let refused: BTreeMap<usize, String> =
                        out.errors.into_iter().map(|e| (e.index as usize, e.message)).collect();
                    let mut events = events.into_iter();
                    for (index, count) in out.counts.iter().enumerate() {
                        let produced: Vec<Event> = events.by_ref().take(*count as usize).collect();
                        match refused.get(&index) {
                            Some(reason) => failures.push(RowFailure {
                                what: describe(chunk[index]),
                                record: None,
                                plugin: plugin.id().to_string(),
                                reason: format!("finish refused: {reason}"),
                            }),
                            None => rows.extend(produced),
                        }
                    }
                }
                Err(e) => failures.extend(chunk.iter().map(|key| RowFailure {
                    what: describe(key),
                    record: None,
                    plugin: plugin.id().to_string(),
                    reason: format!("finish returned an unreadable batch: {e}"),
                })),
            },
            Err(e) => failures.extend(chunk.iter().map(|key| RowFailure {
                what: describe(key),
                record: None,
                plugin: plugin.id().to_string(),
                reason: format!("finish failed: {e}"),
            })),
        }
    }
    (rows, failures)
}
