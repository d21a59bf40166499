//! Reading the harness's input and expected files.

use std::path::Path;

use weir_events::json::{event_from_json, event_to_json};
use weir_events::{Event, time};
use weir_runtime::RawRecord;

use crate::{HarnessError, fail};

/// Arrival time given to every parser input, so outputs do not depend on when the test
/// runs: 2026-01-01T00:00:00Z.
const ARRIVAL_TIME: &str = "2026-01-01T00:00:00Z";

fn read(path: &Path) -> Result<String, HarnessError> {
    std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read {}: {e}", path.display())))
}

fn guess_content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "ndjson" | "jsonl" | "json" => "application/json",
        "csv" => "text/csv",
        _ => "text/plain",
    }
}

/// One raw record per non-empty line.
pub(crate) fn raw_records(path: &Path, content_type: Option<&str>) -> Result<Vec<RawRecord>, HarnessError> {
    let content_type = content_type.unwrap_or_else(|| guess_content_type(path)).to_owned();
    let arrival_time = time::parse_rfc3339(ARRIVAL_TIME).map_err(fail)?;
    Ok(read(path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| RawRecord {
            data: line.as_bytes().to_vec(),
            key: None,
            content_type: content_type.clone(),
            arrival_time,
        })
        .collect())
}

/// One event per non-empty line, in the NDJSON event form.
pub(crate) fn events(path: &Path) -> Result<Vec<Event>, HarnessError> {
    read(path)?
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let json =
                serde_json::from_str(line).map_err(|e| fail(format!("{}:{}: not JSON: {e}", path.display(), i + 1)))?;
            event_from_json(&json).map_err(|e| fail(format!("{}:{}: {e}", path.display(), i + 1)))
        })
        .collect()
}

/// The expected events, normalised to the form the harness prints, so formatting
/// differences (spacing, member order of tags) do not count as mismatches.
pub(crate) fn expected_lines(path: &Path) -> Result<Vec<String>, HarnessError> {
    Ok(events(path)?.iter().map(|e| event_to_json(e).to_string()).collect())
}
