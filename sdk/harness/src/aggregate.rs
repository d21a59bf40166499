//! Running an aggregator the way the stream stage does: events grouped by tumbling
//! event-time window and event key, states owned by the harness, groups finished at the
//! end. A second run accumulates the two halves of the input apart and merges them, and
//! must give the same output as the single pass (`merge` contract).

use weir_events::Event;
use weir_runtime::aggregation::{self, CallGroups, GroupStates};
use weir_runtime::{FinishedGroup, Plugin, Window};

use crate::report::Report;
use crate::{HarnessError, TestOptions, line_diff};

/// Accumulates `events` into `states`; `first` is the input number of `events[0]`.
/// Returns whether every call succeeded.
async fn accumulate(
    plugin: &Plugin,
    report: &mut Report,
    states: &mut GroupStates,
    events: &[Event],
    first: usize,
    options: &TestOptions,
    width: i64,
) -> bool {
    let mut ok = true;
    for (n, chunk) in events.chunks(options.batch_size.max(1)).enumerate() {
        let start = first + n * options.batch_size.max(1);
        let mut call = CallGroups::default();
        for event in chunk {
            call.add(Window::of(event.time, width), event.key.as_deref());
        }
        let label = format!("accumulate batch {} (inputs {}-{})", n + 1, start + 1, start + chunk.len());
        match aggregation::accumulate(plugin, &label, call, chunk, states).await {
            Ok((out, stats)) => {
                report.record_call(stats, chunk.len());
                for e in out.errors {
                    report.record_errors.push((start + e.index as usize + 1, e.message));
                }
            }
            Err(err) => {
                report.calls += 1;
                report.failed_calls.push(err.to_string());
                ok = false;
            }
        }
    }
    ok
}

async fn finish(plugin: &Plugin, report: &mut Report, states: GroupStates) -> Result<Vec<Event>, String> {
    let groups: Vec<FinishedGroup> =
        states.into_iter().map(|((window, key), state)| FinishedGroup { state, window, key }).collect();
    let n = groups.len();
    let (out, stats) = plugin.finish(&format!("finish ({n} groups)"), groups).await.map_err(|e| e.to_string())?;
    report.record_call(stats, 0);
    for e in &out.errors {
        report.failed_calls.push(format!("finish: group {} failed: {}", e.index, e.message));
    }
    out.events.decode().map_err(|e| e.to_string())
}

pub(crate) async fn run(
    plugin: &Plugin,
    report: &mut Report,
    events: Vec<Event>,
    options: &TestOptions,
) -> Result<(), HarnessError> {
    let width = i64::try_from(options.window.as_micros())
        .ok()
        .filter(|w| *w > 0)
        .ok_or_else(|| crate::fail("the aggregation window must be positive"))?;
    report.inputs = events.len();
    let mut states = GroupStates::new();
    if !accumulate(plugin, report, &mut states, &events, 0, options, width).await {
        return Ok(());
    }
    match finish(plugin, report, states).await {
        Ok(outputs) => report.outputs = outputs,
        Err(e) => {
            report.failed_calls.push(e);
            return Ok(());
        }
    }

    // The merge check: the same input in two halves, accumulated apart, then merged.
    let mut scratch = Report::new(options, plugin.info().clone(), false);
    let half = events.len() / 2;
    let (mut left, mut right) = (GroupStates::new(), GroupStates::new());
    let accumulated = accumulate(plugin, &mut scratch, &mut left, &events[..half], 0, options, width).await
        && accumulate(plugin, &mut scratch, &mut right, &events[half..], half, options, width).await;
    if !accumulated {
        report.merge_check = Some(Err(format!("accumulating the halves failed: {}", scratch.failed_calls.join("; "))));
        return Ok(());
    }
    let mut pairs = Vec::new();
    let mut keys = Vec::new();
    for (key, state) in right {
        match left.remove(&key) {
            Some(l) => {
                keys.push(key);
                pairs.push((l, state));
            }
            None => {
                left.insert(key, state);
            }
        }
    }
    if !pairs.is_empty() {
        match plugin.merge(&format!("merge ({} pairs)", pairs.len()), pairs).await {
            Ok((merged, stats)) => {
                report.record_call(stats, 0);
                for (key, state) in keys.into_iter().zip(merged) {
                    match state {
                        Ok(state) => {
                            left.insert(key, state);
                        }
                        Err(e) => {
                            report.merge_check = Some(Err(format!("merge of group {} failed: {e}", key.1)));
                            return Ok(());
                        }
                    }
                }
            }
            Err(e) => {
                report.merge_check = Some(Err(e.to_string()));
                return Ok(());
            }
        }
    }
    let merged = match finish(plugin, &mut scratch, left).await {
        Ok(events) => events,
        Err(e) => {
            report.merge_check = Some(Err(e));
            return Ok(());
        }
    };
    let one_pass: Vec<String> = report.output_lines().collect();
    let two_halves: Vec<String> = merged.iter().map(|e| weir_events::json::event_to_json(e).to_string()).collect();
    report.merge_check = Some(if one_pass == two_halves {
        Ok(())
    } else {
        Err(format!("merging two halves differs from one pass:\n{}", line_diff(&one_pass, &two_halves)))
    });
    Ok(())
}
