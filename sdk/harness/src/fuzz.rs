//! `weir plugin test --fuzz N`: the plugin on N inputs derived from its fixtures —
//! mutated bytes and fields, boundary numbers and times, empty, huge and deeply nested
//! values, invalid UTF-8 for parsers — each alone in one call, in the production limits.
//! Record errors are what bad input should get; a call that fails (a trap, a limit, a
//! broken contract) is a finding, shrunk to the smallest input that still fails and
//! written to a file the author can add to the fixtures.
//!
//! Deterministic for a seed: the same seed, fixtures and component give the same inputs.

use std::path::{Path, PathBuf};

use weir_events::json::event_to_json;
use weir_events::{Columns, Event, Name, Value};
use weir_runtime::{CallError, Plugin, RawRecord, World};

use crate::{HarnessError, TestOptions, fail, input};

/// Calls a shrink may make per finding, at most.
const SHRINK_CALLS: usize = 200;
/// The size of a "huge" value.
const HUGE: usize = 1 << 20;
/// The depth of a "deeply nested" value.
const DEEP: usize = 10_000;

/// What `--fuzz` runs.
#[derive(Debug, Clone)]
pub struct FuzzOptions {
    /// Generated inputs.
    pub runs: usize,
    /// The seed of the generator.
    pub seed: u64,
    /// Where minimal failing inputs are written (`fuzz-finding-<n>.ndjson`).
    pub out_dir: PathBuf,
}

/// One failing input, shrunk.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Why the call failed (the trap, the limit, the broken contract).
    pub failure: String,
    /// The mutation that first produced it.
    pub mutation: String,
    /// The smallest failing input found, written here (the `--input` format of its
    /// world: `--records ndjson` lines for a parser, events for an enricher).
    pub file: PathBuf,
    /// Its size in bytes.
    pub bytes: usize,
}

/// What a fuzz run found.
#[derive(Debug, Clone, Default)]
pub struct FuzzReport {
    pub runs: usize,
    /// Inputs the plugin accepted (it produced output, or nothing).
    pub accepted: usize,
    /// Inputs it refused with a record error: what bad input should get.
    pub refused: usize,
    /// Failed calls, one per distinct failure.
    pub findings: Vec<Finding>,
    /// Generated events the host itself would refuse to deliver (not tried).
    pub undeliverable: usize,
    /// Inputs whose call failed, the same failure counted each time.
    pub failed: usize,
}

impl FuzzReport {
    /// 0 when every input was accepted or refused, 1 when a call failed.
    pub fn exit_code(&self) -> u8 {
        u8::from(!self.findings.is_empty())
    }
}

impl std::fmt::Display for FuzzReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "fuzz     {} inputs: {} accepted, {} refused with a record error, {} failed calls ({} distinct){}",
            self.runs,
            self.accepted,
            self.refused,
            self.failed,
            self.findings.len(),
            if self.undeliverable > 0 {
                format!(" ({} generated events the host would not deliver were skipped)", self.undeliverable)
            } else {
                String::new()
            }
        )?;
        for finding in &self.findings {
            writeln!(f, "  FAILED CALL   {} (after: {})", finding.failure, finding.mutation)?;
            writeln!(f, "                smallest input ({} bytes) in {}", finding.bytes, finding.file.display())?;
        }
        if self.findings.is_empty() {
            writeln!(f, "result   no input made a call fail: bad input gets record errors")?;
        } else {
            writeln!(
                f,
                "result   add the files above to the fixtures once the plugin refuses them with a record error"
            )?;
        }
        Ok(())
    }
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

/// One input of either world.
#[derive(Debug, Clone)]
enum Input {
    Record(RawRecord),
    Event(Event),
}

impl Input {
    fn size(&self) -> usize {
        match self {
            Input::Record(record) => record.data.len(),
            Input::Event(event) => event_to_json(event).to_string().len(),
        }
    }

    /// The input as a line of the harness's `--input` format.
    fn line(&self) -> String {
        match self {
            Input::Record(record) => {
                let mut line = match std::str::from_utf8(&record.data) {
                    Ok(text) => serde_json::json!({ "data": text }),
                    Err(_) => serde_json::json!({ "data_hex": hex(&record.data) }),
                };
                line["content_type"] = serde_json::Value::String(record.content_type.clone());
                if let Some(key) = &record.key {
                    line["key"] = serde_json::Value::String(key.clone());
                }
                line.to_string()
            }
            Input::Event(event) => event_to_json(event).to_string(),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Fuzzes the plugin of `options` (a parser or an enricher) from the inputs of
/// `options.input`.
///
/// # Errors
/// A [`HarnessError`] for unreadable fixtures, an aggregator, a component that cannot be
/// loaded or an output directory that cannot be written.
pub async fn fuzz(options: &TestOptions, fuzz: &FuzzOptions) -> Result<FuzzReport, HarnessError> {
    let (plugin, _log) = crate::load(options).await?;
    let world = plugin.info().world;
    let seeds: Vec<Input> = match world {
        World::Parser => input::raw_records(&options.input, options.records, options.content_type.as_deref())?
            .into_iter()
            .map(Input::Record)
            .collect(),
        World::Enricher => input::events(&options.input)?.into_iter().map(Input::Event).collect(),
        World::Aggregator => {
            return Err(fail(
                "--fuzz covers parsers and enrichers; an aggregator's inputs are whole windows (test it with --expect)",
            ));
        }
    };
    if seeds.is_empty() {
        return Err(fail(format!("{} holds no input to derive fuzz inputs from", options.input.display())));
    }
    std::fs::create_dir_all(&fuzz.out_dir)
        .map_err(|e| fail(format!("cannot create {}: {e}", fuzz.out_dir.display())))?;
    let mut rng = Rng(fuzz.seed.max(1));
    let mut report = FuzzReport::default();
    for run in 0..fuzz.runs {
        let seed = &seeds[run % seeds.len()];
        let mut input = seed.clone();
        let mut applied = Vec::new();
        for _ in 0..=rng.below(2) {
            applied.push(mutate(&mut input, &mut rng));
        }
        // An enricher only ever gets events the host accepted from the plugin before it
        // (JSON nested at most 128 deep, times in years 1 to 9999, names of at most 256
        // bytes): an input the host would refuse is not a finding, so it is not tried.
        if let Input::Event(event) = &input
            && Columns::encode(std::slice::from_ref(event)).validate().is_err()
        {
            report.undeliverable += 1;
            continue;
        }
        report.runs += 1;
        match call(&plugin, &input).await {
            Outcome::Accepted => report.accepted += 1,
            Outcome::Refused => report.refused += 1,
            Outcome::Failed(failure) => {
                report.failed += 1;
                let kind = failure_kind(&failure);
                if report.findings.iter().any(|f| failure_kind(&f.failure) == kind) {
                    continue;
                }
                let smallest = shrink(&plugin, input).await;
                let file = fuzz.out_dir.join(format!("fuzz-finding-{}.ndjson", report.findings.len() + 1));
                write_finding(&file, &smallest)?;
                report.findings.push(Finding { failure, mutation: applied.join(", "), file, bytes: smallest.size() });
            }
        }
    }
    Ok(report)
}

fn write_finding(file: &Path, input: &Input) -> Result<(), HarnessError> {
    std::fs::write(file, input.line() + "\n").map_err(|e| fail(format!("cannot write {}: {e}", file.display())))
}

/// Failures of one kind: the message without its numbers (record positions, sizes,
/// ids), so the same crash on many inputs is one finding and different crashes are not.
fn failure_kind(failure: &str) -> String {
    failure.chars().filter(|c| !c.is_ascii_digit()).take(400).collect()
}

enum Outcome {
    Accepted,
    Refused,
    Failed(String),
}

async fn call(plugin: &Plugin, input: &Input) -> Outcome {
    let result = match input {
        Input::Record(record) => plugin.parse("fuzz", vec![record.clone()]).await,
        Input::Event(event) => plugin.enrich("fuzz", Columns::encode(std::slice::from_ref(event))).await,
    };
    match result {
        Err(error) => Outcome::Failed(describe(&error)),
        Ok((output, _)) => match output.events.decode() {
            Err(e) => Outcome::Failed(format!("broke the plugin contract: {e}")),
            Ok(_) if !output.errors.is_empty() => Outcome::Refused,
            Ok(_) => Outcome::Accepted,
        },
    }
}

fn describe(error: &CallError) -> String {
    error.to_string()
}

/// The smallest input found that still makes the call fail: parts removed while it
/// does (bytes of a record, halves then smaller pieces; fields of an event, then text
/// cut short), within [`SHRINK_CALLS`] calls.
async fn shrink(plugin: &Plugin, input: Input) -> Input {
    let mut best = input;
    let mut calls = 0;
    let fails = async |candidate: &Input, calls: &mut usize| {
        *calls += 1;
        matches!(call(plugin, candidate).await, Outcome::Failed(_))
    };
    match &mut best {
        Input::Record(record) => {
            let mut chunk = record.data.len() / 2;
            while chunk > 0 && calls < SHRINK_CALLS {
                let mut start = 0;
                let mut removed = false;
                while start < record.data.len() && calls < SHRINK_CALLS {
                    let end = (start + chunk).min(record.data.len());
                    let mut candidate = record.clone();
                    candidate.data.drain(start..end);
                    if fails(&Input::Record(candidate.clone()), &mut calls).await {
                        *record = candidate;
                        removed = true;
                    } else {
                        start = end;
                    }
                }
                if !removed {
                    chunk /= 2;
                }
            }
        }
        Input::Event(event) => {
            let mut index = 0;
            while index < event.fields.len() && calls < SHRINK_CALLS {
                let mut candidate = event.clone();
                candidate.fields.remove(index);
                if fails(&Input::Event(candidate.clone()), &mut calls).await {
                    *event = candidate;
                } else {
                    index += 1;
                }
            }
            for index in 0..event.fields.len() {
                while calls < SHRINK_CALLS {
                    let Value::Text(text) = &event.fields[index].1 else { break };
                    if text.is_empty() {
                        break;
                    }
                    let mut cut = text.len() / 2;
                    while !text.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    let mut candidate = event.clone();
                    candidate.fields[index].1 = Value::Text(text[..cut].to_owned());
                    if fails(&Input::Event(candidate.clone()), &mut calls).await {
                        *event = candidate;
                    } else {
                        break;
                    }
                }
            }
        }
    }
    best
}

/// Applies one mutation to `input`; returns its description.
fn mutate(input: &mut Input, rng: &mut Rng) -> String {
    match input {
        Input::Record(record) => mutate_bytes(&mut record.data, rng),
        Input::Event(event) => mutate_event(event, rng),
    }
}

fn mutate_bytes(data: &mut Vec<u8>, rng: &mut Rng) -> String {
    match rng.below(9) {
        0 if !data.is_empty() => {
            let at = rng.below(data.len());
            data[at] ^= 1 << rng.below(8);
            format!("bit flipped at byte {at}")
        }
        1 if !data.is_empty() => {
            let at = rng.below(data.len());
            data.truncate(at);
            format!("truncated to {at} bytes")
        }
        2 => {
            data.clear();
            "empty".to_owned()
        }
        3 => {
            let unit = if data.is_empty() { b"x".to_vec() } else { data.clone() };
            while data.len() < HUGE {
                data.extend_from_slice(&unit);
            }
            format!("repeated to {} bytes", data.len())
        }
        4 => {
            let at = rng.below(data.len() + 1);
            data.splice(at..at, [0xff, 0xfe, 0xc3]);
            format!("invalid UTF-8 at byte {at}")
        }
        5 => {
            *data = [vec![b'['; DEEP], vec![b']'; DEEP]].concat();
            format!("{DEEP} nested arrays")
        }
        6 => {
            let numbers =
                ["99999999999999999999999", "-9223372036854775809", "1e309", "-0", "NaN", "0.0000000000000000000001"];
            let number = numbers[rng.below(numbers.len())];
            match data.iter().position(u8::is_ascii_digit) {
                Some(start) => {
                    let end = data[start..].iter().position(|b| !b.is_ascii_digit()).map_or(data.len(), |n| start + n);
                    data.splice(start..end, number.bytes());
                    format!("a number replaced by {number}")
                }
                None => {
                    data.extend_from_slice(number.as_bytes());
                    format!("{number} appended")
                }
            }
        }
        7 => {
            let at = rng.below(data.len() + 1);
            let bytes: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
            let n = bytes.len();
            data.splice(at..at, bytes);
            format!("{n} random bytes inserted at {at}")
        }
        _ => {
            let at = rng.below(data.len() + 1);
            data.splice(at..at, *b"\0\r\n\"\\");
            format!("control characters inserted at {at}")
        }
    }
}

fn mutate_event(event: &mut Event, rng: &mut Rng) -> String {
    let texts = ["", "\u{0}", "\u{202e}ʇxǝʇ", "9999999999999999999999", "1e309", "NaN", "-1", "2026-02-30T25:61:61Z"];
    if event.fields.is_empty() || rng.below(10) == 0 {
        return match rng.below(3) {
            0 => {
                event.time = [weir_events::MIN_EVENT_TIME, weir_events::MAX_EVENT_TIME, 0, -1][rng.below(4)];
                format!("time set to {}", event.time)
            }
            1 => {
                event.key = Some("k".repeat(HUGE));
                "a huge key".to_owned()
            }
            _ => {
                event.key = Some(String::new());
                "an empty key".to_owned()
            }
        };
    }
    let index = rng.below(event.fields.len());
    let name: Name = event.fields[index].0.clone();
    let (value, what) = match rng.below(10) {
        0 => {
            event.fields.remove(index);
            return format!("field {name} removed");
        }
        1 => (Value::Null, "null".to_owned()),
        2 => {
            let text = texts[rng.below(texts.len())];
            (Value::Text(text.to_owned()), format!("text {text:?}"))
        }
        3 => (Value::Text("x".repeat(HUGE)), format!("a {HUGE}-byte text")),
        4 => {
            let n = [i64::MIN, i64::MAX, 0, -1][rng.below(4)];
            (Value::Int(n), format!("integer {n}"))
        }
        5 => {
            let x = [f64::MAX, -f64::MAX, f64::MIN_POSITIVE, -0.0, 1e-300][rng.below(5)];
            (Value::Float(x), format!("float {x:e}"))
        }
        6 => {
            let t = [-62_135_596_800_000_000, 253_402_300_799_999_999, 0][rng.below(3)];
            (Value::Timestamp(t), format!("timestamp {t}"))
        }
        7 => {
            let depth = weir_events::MAX_JSON_DEPTH;
            (Value::Json(format!("{}{}", "[".repeat(depth), "]".repeat(depth))), format!("JSON nested {depth} deep"))
        }
        8 => (Value::Bytes(vec![0xff; 1 + rng.below(64)]), "bytes".to_owned()),
        _ => (Value::Bool(rng.below(2) == 0), "a boolean".to_owned()),
    };
    event.fields[index].1 = value;
    format!("field {name} set to {what}")
}
