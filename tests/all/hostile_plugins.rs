//! Every class of hostile plugin at once in a running pipeline: the host's memory stays
//! bounded (its RSS sampled while it works), it keeps serving, and each record is either
//! delivered or dead-lettered with the named reason.

use std::time::{Duration, Instant};

use weir_client::request;
use weir_e2e::{Server, component};

use crate::streaming::{caught_up, orders, rt, send, write_config};

/// The resident memory of process `pid`, in bytes (Linux).
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Samples `pid`'s RSS every 50 ms until `stop` is set; returns the largest.
fn sample_rss(pid: u32, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            peak = peak.max(rss_bytes(pid).unwrap_or(0));
            std::thread::sleep(Duration::from_millis(50));
        }
        peak
    })
}

const MODES: [&str; 10] = [
    "ok",
    "huge-output",
    "huge-error",
    "many-counters",
    "unique-field",
    "long-field-name",
    "double-error",
    "ragged-column",
    "far-future",
    "grow",
];

#[test]
fn every_hostile_plugin_class_at_once_leaves_the_host_bounded_in_memory_and_serving() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("enrichers = [\"restaurant-enricher\"]", "enrichers = [\"hostile\", \"restaurant-enricher\"]")
        // Small calls: isolating the failing records of a call fits its budget of extra
        // calls, so no good record is dead-lettered beside them.
        .replace("batch_size = 16", "batch_size = 4")
        + &format!(
            "\n[plugins.hostile]\npath = \"{}\"\nversion = \"1.0.0\"\nconfig = {{ modes = \"{}\" }}\n",
            component("misbehaving_enricher").display(),
            MODES.join(",")
        );
    std::fs::write(&config, text).unwrap();
    let server = Server::start(&config);
    let pid = server.child.id();
    std::thread::sleep(Duration::from_millis(500));
    let idle = rss_bytes(pid).expect("the host's RSS");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = sample_rss(pid, stop.clone());

    let sent: Vec<_> = orders(360).into_iter().filter(|o| o.fate == crate::streaming::Fate::Event).collect();
    let started = Instant::now();
    rt().block_on(async {
        for batch in sent.chunks(40) {
            send(server.addr, batch).await;
        }
        caught_up(server.addr).await;
        let health = request(server.addr, "GET", "/healthz", None, b"").await.unwrap();
        assert_eq!(health.status, 200, "the host serves and no sink or plugin is failing: {}", health.body);
    });
    let took = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    assert!(server.stop().success());

    let lake = weir_sinks::read_lake(&dir.path().join("data/lake")).unwrap();
    let mode_of = |line: &str| {
        let n: usize = line.split("\"o-").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        MODES[n % MODES.len()]
    };
    // Counting (within the counter bound) and a new field per event (within the
    // stream's max_fields) are allowed; the rest break a limit or the contract.
    let delivered = ["ok", "many-counters", "unique-field"];
    let ok = sent.iter().filter(|o| delivered.contains(&mode_of(&o.line))).count();
    assert_eq!(lake.events, ok, "the ok events are delivered, every hostile one is not");
    assert_eq!(lake.dead_letters.len(), sent.len() - ok, "every hostile record is dead-lettered once");
    for (_, reason) in &lake.dead_letters {
        assert!(reason.len() <= 8 << 10, "a dead letter's reason is bounded: {} bytes", reason.len());
    }
    let mib = |b: u64| b >> 20;
    println!(
        "hostile plugins: {} records in {took:?}; host RSS idle {} MiB, peak {} MiB",
        sent.len(),
        mib(idle),
        mib(peak)
    );
    assert!(
        peak < idle + (512 << 20),
        "the host's memory stays bounded: RSS {} MiB at idle, {} MiB at peak",
        mib(idle),
        mib(peak)
    );
}
