//! Test-only: an enricher that misbehaves on demand (see ../README.md). Each event's
//! `mode` field picks what it does.
// The bindings wit-bindgen generates use `unsafe` for the canonical ABI glue.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::hint::black_box;

use weir_events::{Columns, Event};

wit_bindgen::generate!({ path: "../../../wit", world: "enricher" });

use exports::weir::plugin::enrich::Guest;
use weir::plugin::types::{BatchOutput, EventBatch, RecordError};

thread_local! {
    static CONFIG: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
}

fn config(key: &str) -> Option<String> {
    CONFIG.with(|c| c.borrow().iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
}

struct Misbehaving;

fn recurse(depth: u64) -> u64 {
    // black_box keeps the compiler from turning this into a loop; the base case is
    // never reached, the stack runs out first.
    if black_box(depth) == u64::MAX {
        return 0;
    }
    black_box(depth) + recurse(black_box(depth + 1))
}

weir_events::event_batch_conversions!(EventBatch);

/// The mode of one event: its own `mode` field, else config `mode`, else one of config
/// `modes` (a comma-separated list) picked by the number in its `order_id` (`o-17`), else
/// `ok`; config `loop_on_order` makes that order's mode `loop`.
fn mode_of(event: &Event) -> String {
    if config("loop_on_order").is_some_and(|id| event.get_str("order_id") == Some(id.as_str())) {
        return "loop".to_owned();
    }
    let picked = || {
        let modes = config("modes")?;
        let modes: Vec<&str> = modes.split(',').collect();
        let n: usize = event.get_str("order_id")?.trim_start_matches(|c: char| !c.is_ascii_digit()).parse().ok()?;
        Some(modes[n % modes.len()].to_owned())
    };
    event
        .get_str("mode")
        .map(str::to_owned)
        .or_else(|| config("mode"))
        .or_else(picked)
        .unwrap_or_else(|| "ok".to_owned())
}

/// What one event's mode does: Ok(events to emit) or Err(record error).
fn misbehave(event: Event, mode: &str) -> Result<Vec<Event>, String> {
    // Config `panic_on_order`: panic on the event with that order_id, pass the rest (a
    // poison record in an otherwise good stream).
    if let Some(poison) = config("panic_on_order")
        && event.get_str("order_id") == Some(poison.as_str())
    {
        panic!("misbehaving-enricher was told to panic on order {poison}");
    }
    match mode {
        "ok" => Ok(vec![event]),
        "loop" => {
            let mut i = 0u64;
            loop {
                i = black_box(i.wrapping_add(1));
            }
        }
        "grow" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                black_box(&hoard);
            }
        }
        "recurse" => Ok(vec![event.with("depth", recurse(0) as i64)]),
        "huge-output" => Ok((0..20_000).map(|i| Event::new(event.time).with("n", i as i64)).collect()),
        "sleep" => {
            std::thread::sleep(std::time::Duration::from_secs(30));
            Ok(vec![event])
        }
        // A slow call that finishes well: keeps its instance busy for `nap_ms`.
        "nap" => {
            let ms = event.get_int("nap_ms").unwrap_or(200).clamp(0, 10_000) as u64;
            std::thread::sleep(std::time::Duration::from_millis(ms));
            Ok(vec![event])
        }
        "panic" => panic!("misbehaving-enricher was told to panic"),
        "read-file" => {
            let path = config("path").unwrap_or_else(|| "/etc/passwd".into());
            match std::fs::read(&path) {
                Ok(bytes) => Ok(vec![event.with("read_bytes", bytes.len() as i64)]),
                Err(e) => Err(format!("reading {path} failed: {e}")),
            }
        }
        "env" => {
            let vars: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
            let args = std::env::args().count();
            Ok(vec![
                event.with("env_vars", vars.len() as i64).with("env_names", vars.join(",")).with("args", args as i64),
            ])
        }
        "socket" => {
            let port = config("port").unwrap_or_else(|| "80".into());
            match std::net::TcpStream::connect(format!("127.0.0.1:{port}")) {
                Ok(_) => Ok(vec![event.with("connected", true)]),
                Err(e) => Err(format!("connecting to 127.0.0.1:{port} failed: {e}")),
            }
        }
        "print" => {
            for i in 0..2_000 {
                println!("line {i} of a chatty plugin");
            }
            Ok(vec![event])
        }
        // Counter names without end, and one far too long.
        "many-counters" => {
            for i in 0..10_000 {
                weir::plugin::host::counter_add(&format!("counter-{i}"), 1);
            }
            weir::plugin::host::counter_add(&"n".repeat(10_000), 1);
            Ok(vec![event])
        }
        // A field name per event: a sink writing a column per name would get one column
        // per event.
        "unique-field" => {
            let name = format!("field-{}", event.time);
            Ok(vec![event.with(&name, 1i64)])
        }
        // One field name far longer than a column name should be.
        "long-field-name" => Ok(vec![event.with(&"n".repeat(10_000), 1i64)]),
        // An event time at the end of the range: windows and RFC 3339 cannot hold it.
        "far-future" => Ok(vec![Event { time: i64::MAX, ..event }]),
        // Passes the event; `enrich` makes the whole answer's packed `text-ends` ragged.
        "ragged-column" => Ok(vec![event]),
        // A reason far longer than any a host should keep for one record.
        "huge-error" => Err(format!("failed: {}", "x".repeat(10 << 20))),
        other => Err(format!("unknown mode {other:?}")),
    }
}

impl Guest for Misbehaving {
    fn configure(config: Vec<(String, String)>) -> Result<(), String> {
        if config.iter().any(|(k, _)| k == "reject") {
            return Err("configuration key `reject` is set, so this plugin refuses to start".into());
        }
        // A plugin whose fresh instances cannot start for a while (a dependency down, a
        // licence server unreachable): `cannot_start_between_unix_ms = "FROM-TO"`.
        if let Some((_, window)) = config.iter().find(|(k, _)| k == "cannot_start_between_unix_ms") {
            let parse = |n: &str| n.parse::<u128>().map_err(|_| format!("{window:?} is not FROM-TO in ms"));
            let (from, to) = window.split_once('-').ok_or_else(|| format!("{window:?} is not FROM-TO in ms"))?;
            let (from, to) = (parse(from)?, parse(to)?);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_millis());
            if (from..to).contains(&now) {
                return Err(format!("cannot start between {from} and {to} (now {now})"));
            }
        }
        CONFIG.with(|c| *c.borrow_mut() = config);
        Ok(())
    }

    fn enrich(events: EventBatch) -> BatchOutput {
        let events = Columns::try_from(events).ok().and_then(|c| c.decode().ok()).unwrap_or_default();
        let modes: Vec<String> = events.iter().map(mode_of).collect();
        // An event with mode `ragged-column` makes the whole answer's `text-ends` column
        // one byte longer than a whole number of packed u32s: malformed.
        let ragged = modes.iter().any(|m| m == "ragged-column");
        let mut out = Vec::new();
        let mut counts = Vec::new();
        let mut errors = Vec::new();
        for (i, (event, mode)) in events.into_iter().zip(&modes).enumerate() {
            if mode == "double-error" {
                // Two reasons for one input: against the contract (one error per input).
                counts.push(0);
                errors.push(RecordError { index: i as u32, message: "first reason".into() });
                errors.push(RecordError { index: i as u32, message: "second reason".into() });
                continue;
            }
            match misbehave(event, mode) {
                Ok(produced) => {
                    counts.push(produced.len() as u32);
                    out.extend(produced);
                }
                Err(message) => {
                    counts.push(0);
                    errors.push(RecordError { index: i as u32, message });
                }
            }
        }
        let mut events: EventBatch = Columns::encode(&out).into();
        if ragged {
            events.text_ends.push(0);
        }
        BatchOutput { events, counts, errors }
    }
}

export!(Misbehaving);
