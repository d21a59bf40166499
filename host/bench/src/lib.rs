//! Inputs shared by the benchmarks: a deterministic stream of order records and the
//! restaurants they reference, and where the built components are.

use std::path::PathBuf;

pub mod child;

/// When every benchmark record arrived: one fixed time, so each variant of a comparison
/// gets the same input.
pub const ARRIVAL: i64 = 1_764_150_000_000_000;

/// An order line as the host hands it to a Wasm parser.
pub fn raw_record(line: &str) -> weir_runtime::RawRecord {
    weir_runtime::RawRecord {
        data: line.as_bytes().to_vec(),
        key: None,
        content_type: "application/json".into(),
        arrival_time: ARRIVAL,
    }
}

/// The same record as the SDK hands it to a parser compiled natively.
pub fn sdk_record(line: &str) -> weir_sdk::RawRecord {
    weir_sdk::RawRecord {
        data: line.as_bytes().to_vec(),
        key: None,
        content_type: "application/json".into(),
        arrival_time: ARRIVAL,
    }
}

/// Restaurants referenced by the generated orders.
pub const RESTAURANTS: usize = 40;

/// The reference data, in the harness's lookup form: `{"restaurants": {"r-1": {...}}}`.
pub fn restaurants_json() -> String {
    let zones = ["Downtown", "Exchange District", "St. Boniface", "Osborne Village", "Saint-Laurent"];
    let cuisines = ["pizza", "sushi", "thai", "burgers", "pho", "crêperie"];
    let rows: Vec<String> = (1..=RESTAURANTS)
        .map(|i| {
            format!(
                r#""r-{i}":{{"name":"Restaurant {i} Café","zone":"{}","cuisine":"{}"}}"#,
                zones[i % zones.len()],
                cuisines[i % cuisines.len()]
            )
        })
        .collect();
    format!(r#"{{"restaurants":{{{}}}}}"#, rows.join(","))
}

/// `n` JSON order lines, deterministic, shaped like the orders-parser fixture.
pub fn order_lines(n: usize) -> Vec<String> {
    // A small LCG keeps the data varied without a rand dependency.
    let mut seed: u64 = 0x5eed;
    let mut next = move |m: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % m
    };
    (0..n)
        .map(|i| {
            let restaurant = next(RESTAURANTS as u64) + 1;
            let minute = next(60);
            let delivered = 15 + next(40);
            let cents = 800 + next(9000);
            let test = next(50) == 0;
            format!(
                r#"{{"order_id":"o-{i}","restaurant_id":"r-{restaurant}","customer_id":"c-{}","status":"delivered","total":{}.{:02},"items":{},"placed_at":"2026-11-26T11:{minute:02}:00Z","delivered_at":"2026-11-26T{:02}:{:02}:00Z","test":{test}}}"#,
                next(100_000),
                cents / 100,
                cents % 100,
                1 + next(6),
                12 + (minute + delivered) / 60,
                (minute + delivered) % 60,
            )
        })
        .collect()
}

/// Where the built components are: `$WEIR_PLUGIN_DIR`, else under the target directory.
pub fn component_dir() -> PathBuf {
    std::env::var_os("WEIR_PLUGIN_DIR").map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
            .join("wasm32-wasip2/plugin")
    })
}

/// A built component's bytes.
pub fn component(name: &str) -> Vec<u8> {
    let path = component_dir().join(format!("{name}.wasm"));
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("cannot read {} ({e}); run scripts/build-plugins.sh first", path.display()))
}
