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

/// How a parser's input file holds its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordsFormat {
    /// One record per line (`\n`, a `\r` before it dropped), as bytes: invalid UTF-8
    /// reaches the parser as it is. Blank lines are skipped.
    #[default]
    Lines,
    /// The whole file is one record; a directory is one record per file, in name order
    /// (binary formats: Protobuf, Avro, gzip…).
    File,
    /// One JSON object per line: `{"data": "text"}` or `{"data_hex": "00ff…"}`, with an
    /// optional `key` (the partition key) and `content_type`: any bytes, keys and
    /// content types, unambiguously.
    Ndjson,
}

impl std::str::FromStr for RecordsFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "lines" => Ok(Self::Lines),
            "file" => Ok(Self::File),
            "ndjson" => Ok(Self::Ndjson),
            other => Err(format!("unknown records format {other:?}: expected lines, file or ndjson")),
        }
    }
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, HarnessError> {
    std::fs::read(path).map_err(|e| fail(format!("cannot read {}: {e}", path.display())))
}

/// A parser's input records from `path`, in `format`; `content_type` (else a guess from
/// the file's extension) for records that do not name their own.
pub(crate) fn raw_records(
    path: &Path,
    format: RecordsFormat,
    content_type: Option<&str>,
) -> Result<Vec<RawRecord>, HarnessError> {
    let content_type = content_type.unwrap_or_else(|| guess_content_type(path)).to_owned();
    let arrival_time = time::parse_rfc3339(ARRIVAL_TIME).map_err(fail)?;
    let record = |data: Vec<u8>| RawRecord { data, key: None, content_type: content_type.clone(), arrival_time };
    match format {
        RecordsFormat::Lines => Ok(read_bytes(path)?
            .split(|&b| b == b'\n')
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .map(|line| record(line.to_vec()))
            .collect()),
        RecordsFormat::File if path.is_dir() => {
            let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(path)
                .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            files.iter().map(|file| read_bytes(file).map(&record)).collect()
        }
        RecordsFormat::File => Ok(vec![record(read_bytes(path)?)]),
        RecordsFormat::Ndjson => read(path)?
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, line)| {
                let at = |e: String| fail(format!("{}:{}: {e}", path.display(), i + 1));
                let json: serde_json::Value = serde_json::from_str(line).map_err(|e| at(format!("not JSON: {e}")))?;
                let mut raw = record_from_json(&json).map_err(at)?;
                if raw.content_type.is_empty() {
                    raw.content_type.clone_from(&content_type);
                }
                raw.arrival_time = arrival_time;
                Ok(raw)
            })
            .collect(),
    }
}

/// One record of the `ndjson` records format; `content_type` left empty when not given.
fn record_from_json(json: &serde_json::Value) -> Result<RawRecord, String> {
    let object =
        json.as_object().ok_or("a record must be a JSON object: {\"data\": \"…\"} or {\"data_hex\": \"…\"}")?;
    if let Some(unknown) = object.keys().find(|k| !["data", "data_hex", "key", "content_type"].contains(&k.as_str())) {
        return Err(format!("unknown member {unknown:?}: a record has data or data_hex, key and content_type"));
    }
    let text = |name: &str| match object.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("{name} must be a string, not {other}")),
    };
    let data = match (text("data")?, text("data_hex")?) {
        (Some(data), None) => data.into_bytes(),
        (None, Some(hex)) => weir_events::json::parse_hex(&hex)?,
        _ => return Err("a record has exactly one of data (text) and data_hex (bytes)".into()),
    };
    Ok(RawRecord { data, key: text("key")?, content_type: text("content_type")?.unwrap_or_default(), arrival_time: 0 })
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

/// The inputs an `--expect-errors` file says must be refused: a 1-based input number at
/// the start of each line (after it, a tab and the message as a note); blank lines and
/// lines starting with `#` are skipped.
pub(crate) fn expected_error_inputs(path: &Path) -> Result<Vec<usize>, HarnessError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| HarnessError(format!("cannot read {}: {e}", path.display())))?;
    let mut inputs = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let number = line.split(|c: char| c.is_whitespace() || c == ':').next().unwrap_or_default();
        match number.parse::<usize>() {
            Ok(input) if input > 0 => inputs.push(input),
            _ => {
                return Err(HarnessError(format!(
                    "{} line {}: {number:.20?} is not an input number; each line starts with the 1-based number of \
                     an input that must get a record error (then, optionally, a tab and a note)",
                    path.display(),
                    index + 1
                )));
            }
        }
    }
    Ok(inputs)
}
