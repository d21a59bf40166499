//! Raw records through the parser and the enrichers, one chunk at a time per worker. A
//! record a plugin refuses is dead-lettered with its reason; a call that fails whole (a
//! trap, a limit) is split in halves and retried until the records at fault are alone,
//! so one hostile record costs the run that record, not its chunk (at most 2n calls).

use weir_events::{Columns, Event};
use weir_runtime::{Plugin, RawRecord};

/// What a chunk became.
#[derive(Debug, Default)]
pub(crate) struct ChunkOutput {
    /// Per event: the index of the raw record it came from (in the run), its number among
    /// that record's events, and the event.
    pub(crate) events: Vec<(usize, u32, Event)>,
    /// Per refused record: its index, the plugin and stage, and why.
    pub(crate) refused: Vec<Refusal>,
}

/// A record a plugin refused or failed on.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub(crate) record: usize,
    pub(crate) plugin: String,
    pub(crate) stage: &'static str,
    pub(crate) reason: String,
}

/// Runs `records` (whose first is record `base` of the run) through `parser` then each
/// of `enrichers`, in calls of at most `batch_size`.
pub(crate) async fn run_chunk(
    parser: &Plugin,
    enrichers: &[Plugin],
    label: &str,
    base: usize,
    records: &[RawRecord],
) -> ChunkOutput {
    let mut output = ChunkOutput::default();
    // Per record, its events so far (None: refused).
    let mut outcomes: Vec<Option<Vec<Event>>> = vec![None; records.len()];
    for (index, result) in call_bisecting(records.len(), |range| {
        let batch = records[range].to_vec();
        async move { parser.parse(label, batch).await.map(|(out, _)| out) }
    })
    .await
    {
        match result {
            Ok(events) => outcomes[index] = Some(events),
            Err(reason) => output.refused.push(refusal(base + index, parser, "parse", reason)),
        }
    }
    for enricher in enrichers {
        // Flatten the surviving events, remembering each one's record.
        let mut origin = Vec::new();
        let mut events = Vec::new();
        for (index, outcome) in outcomes.iter_mut().enumerate() {
            if let Some(list) = outcome.take() {
                for event in list {
                    origin.push(index);
                    events.push(event);
                }
                *outcome = Some(Vec::new());
            }
        }
        let events_ref = &events;
        let results = call_bisecting(events.len(), |range| {
            let batch = Columns::encode(&events_ref[range]);
            async move { enricher.enrich(label, batch).await.map(|(out, _)| out) }
        })
        .await;
        let mut refused_records = std::collections::BTreeSet::new();
        for (event, result) in results {
            let record = origin[event];
            match result {
                Ok(enriched) => {
                    if let Some(list) = outcomes[record].as_mut() {
                        list.extend(enriched);
                    }
                }
                Err(reason) => {
                    // One refused event refuses its record: its other events would be
                    // a partial record downstream.
                    if refused_records.insert(record) {
                        output.refused.push(refusal(base + record, enricher, "enrich", reason));
                    }
                }
            }
        }
        for record in refused_records {
            outcomes[record] = None;
        }
    }
    for (index, outcome) in outcomes.into_iter().enumerate() {
        for (n, event) in outcome.into_iter().flatten().enumerate() {
            output.events.push((base + index, n as u32, event));
        }
    }
    output
}

fn refusal(record: usize, plugin: &Plugin, stage: &'static str, reason: String) -> Refusal {
    Refusal { record, plugin: plugin.id().to_string(), stage, reason }
}

/// Calls `call` on `0..inputs` and returns, per input in order, its events or why it
/// failed. A call that fails whole is retried on each half of its range until the range
/// is one input, whose reason is then the call's error.
async fn call_bisecting<F, Fut>(inputs: usize, call: F) -> Vec<(usize, Result<Vec<Event>, String>)>
where
    F: Fn(std::ops::Range<usize>) -> Fut,
    Fut: std::future::Future<Output = Result<weir_runtime::BatchOutput, weir_runtime::CallError>>,
{
    let mut results = Vec::with_capacity(inputs);
    let mut pending: Vec<std::ops::Range<usize>> = Vec::new();
    pending.push(0..inputs);
    while let Some(range) = pending.pop() {
        if range.is_empty() {
            continue;
        }
        let failed = match call(range.clone()).await {
            Ok(out) => match out.events.decode() {
                Ok(events) => {
                    let errors: std::collections::HashMap<usize, String> =
                        out.errors.into_iter().map(|e| (e.index as usize, e.message)).collect();
                    let mut events = events.into_iter();
                    for (offset, count) in out.counts.iter().enumerate() {
                        let produced: Vec<Event> = events.by_ref().take(*count as usize).collect();
                        let result = match errors.get(&offset) {
                            Some(reason) => Err(reason.clone()),
                            None => Ok(produced),
                        };
                        results.push((range.start + offset, result));
                    }
                    None
                }
                Err(e) => Some(format!("the plugin returned an unreadable batch: {e}")),
            },
            Err(e) => Some(e.to_string()),
        };
        if let Some(reason) = failed {
            if range.len() == 1 {
                results.push((range.start, Err(reason)));
            } else {
                let middle = range.start + range.len() / 2;
                // Popped last-in first: the first half runs first, keeping input order
                // of calls (results are sorted anyway).
                pending.push(middle..range.end);
                pending.push(range.start..middle);
            }
        }
    }
    results.sort_by_key(|(index, _)| *index);
    results
}
