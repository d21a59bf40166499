//! Hostile plugins are stopped within their limits with the right, named error; the
//! host keeps running and the next batch on the same plugin gets a fresh instance.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{component, kept_log};
use weir_runtime::{
    CallError, CallErrorKind, Columns, Event, LimitKind, Limits, LoadError, Plugin, PluginId, PluginOptions, Runtime,
    RuntimeConfig, World,
};

fn runtime() -> Runtime {
    // A cache shared by the tests of this binary, so each component compiles once.
    let cache_dir = std::env::temp_dir().join(format!("weir-test-code-cache-{}", std::process::id()));
    Runtime::new(RuntimeConfig { cache_dir: Some(cache_dir), ..Default::default() }).unwrap()
}

fn tight_limits() -> Limits {
    Limits {
        cpu: Duration::from_millis(200),
        wall: Duration::from_secs(2),
        memory_bytes: 32 << 20,
        max_output_events: 10_000,
        ..Limits::default()
    }
}

async fn misbehaving(options: PluginOptions) -> Plugin {
    runtime().load(PluginId::new("misbehaving", "1.0.0"), &component("misbehaving_enricher"), options).await.unwrap()
}

fn batch(modes: &[&str]) -> Columns {
    let events: Vec<Event> = modes.iter().enumerate().map(|(i, m)| Event::new(i as i64).with("mode", *m)).collect();
    Columns::encode(&events)
}

/// The batch that follows a failure must succeed on a fresh instance.
async fn next_batch_works(plugin: &Plugin) {
    let (output, stats) = plugin.enrich("batch 2", batch(&["ok", "ok"])).await.unwrap();
    assert_eq!(output.counts, vec![1, 1]);
    assert!(stats.fresh_instance, "the failed instance must have been replaced");
}

async fn expect_failure(plugin: &Plugin, mode: &str) -> CallError {
    let started = Instant::now();
    let err = plugin.enrich("batch 1 (3 records)", batch(&["ok", mode, "ok"])).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10), "{mode} took {:?} to stop", started.elapsed());
    assert_eq!(err.plugin, "misbehaving@1.0.0");
    assert_eq!(err.batch, "batch 1 (3 records)");
    err
}

#[tokio::test]
async fn plugin_that_loops_forever_is_stopped_at_its_cpu_limit() {
    let plugin = misbehaving(PluginOptions { limits: tight_limits(), ..Default::default() }).await;
    let started = Instant::now();
    let err = expect_failure(&plugin, "loop").await;
    assert_eq!(err.limit(), Some(&LimitKind::Cpu { limit: Duration::from_millis(200) }), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(200), "stopped before its limit");
    assert!(err.to_string().contains("exceeded its CPU limit (200 ms)"), "{err}");
    next_batch_works(&plugin).await;
}

#[tokio::test]
async fn plugin_that_grows_memory_without_bound_is_stopped_at_its_memory_limit() {
    let plugin = misbehaving(PluginOptions { limits: tight_limits(), ..Default::default() }).await;
    let err = expect_failure(&plugin, "grow").await;
    match err.limit() {
        Some(LimitKind::Memory { limit, requested }) => {
            assert_eq!(*limit, 32 << 20);
            assert!(*requested > 32 << 20);
        }
        other => panic!("expected the memory limit, got {other:?}: {err}"),
    }
    assert!(err.to_string().contains("memory limit (32 MiB"), "{err}");
    next_batch_works(&plugin).await;
}

#[tokio::test]
async fn plugin_that_recurses_without_bound_hits_the_stack_limit() {
    let plugin = misbehaving(PluginOptions { limits: tight_limits(), ..Default::default() }).await;
    let err = expect_failure(&plugin, "recurse").await;
    assert_eq!(err.limit(), Some(&LimitKind::Stack), "{err}");
    next_batch_works(&plugin).await;
}

#[tokio::test]
async fn plugin_returning_too_many_events_hits_the_output_limit() {
    // Producing 20 000 events takes CPU; a loaded machine must not turn this into a CPU
    // limit (the CPU limit has tests of its own).
    let limits = Limits { cpu: Duration::from_secs(5), wall: Duration::from_secs(10), ..tight_limits() };
    let plugin = misbehaving(PluginOptions { limits, ..Default::default() }).await;
    let err = expect_failure(&plugin, "huge-output").await;
    assert_eq!(err.limit(), Some(&LimitKind::OutputEvents { limit: 10_000, produced: 20_002 }), "{err}");
    next_batch_works(&plugin).await;
}

#[tokio::test]
async fn enricher_returning_several_events_for_one_input_breaks_the_contract() {
    let limits = Limits {
        max_output_events: 1_000_000,
        cpu: Duration::from_secs(5),
        wall: Duration::from_secs(10),
        ..tight_limits()
    };
    let plugin = misbehaving(PluginOptions { limits, ..Default::default() }).await;
    let err = expect_failure(&plugin, "huge-output").await;
    match &err.kind {
        CallErrorKind::Contract(msg) => assert!(msg.contains("returned 20000 events for input 1; at most 1"), "{msg}"),
        other => panic!("expected a contract error, got {other:?}"),
    }
    next_batch_works(&plugin).await;
}

#[tokio::test]
async fn plugin_that_panics_traps_with_its_panic_message() {
    let plugin = misbehaving(PluginOptions { limits: tight_limits(), ..Default::default() }).await;
    let err = expect_failure(&plugin, "panic").await;
    match &err.kind {
        CallErrorKind::Trap(msg) => assert!(msg.contains("misbehaving-enricher was told to panic"), "{msg}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    next_batch_works(&plugin).await;
}

#[tokio::test]
async fn plugin_blocked_past_its_wall_clock_limit_is_stopped() {
    let limits = Limits { wall: Duration::from_millis(300), ..tight_limits() };
    let plugin = misbehaving(PluginOptions { limits, ..Default::default() }).await;
    let err = expect_failure(&plugin, "sleep").await;
    assert_eq!(err.limit(), Some(&LimitKind::WallClock { limit: Duration::from_millis(300) }), "{err}");
    next_batch_works(&plugin).await;
}

#[tokio::test]
async fn plugin_cannot_read_a_host_file() {
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "the host's secret").unwrap();
    let path = secret.path().display().to_string();
    let config = vec![("path".to_owned(), path.clone())];
    let plugin = misbehaving(PluginOptions { config, ..Default::default() }).await;
    let (output, _) = plugin.enrich("batch", batch(&["read-file"])).await.unwrap();
    assert_eq!(output.counts, vec![0]);
    assert!(output.errors[0].message.starts_with(&format!("reading {path} failed")), "{:?}", output.errors);
}

#[tokio::test]
async fn plugin_sees_no_environment_and_no_arguments() {
    // SAFETY of the test: the variable is only read back through the plugin.
    let plugin = misbehaving(PluginOptions::default()).await;
    assert!(std::env::vars().count() > 0, "the host itself has an environment");
    let (output, _) = plugin.enrich("batch", batch(&["env"])).await.unwrap();
    let events = output.events.decode().unwrap();
    assert_eq!(events[0].get_int("env_vars"), Some(0), "{events:?}");
    assert_eq!(events[0].get_int("args"), Some(0), "{events:?}");
}

#[tokio::test]
async fn plugin_cannot_open_a_socket() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let plugin =
        misbehaving(PluginOptions { config: vec![("port".into(), port.to_string())], ..Default::default() }).await;
    let (output, _) = plugin.enrich("batch", batch(&["socket"])).await.unwrap();
    assert_eq!(output.counts, vec![0]);
    assert!(
        output.errors[0].message.contains(&format!("connecting to 127.0.0.1:{port} failed")),
        "{:?}",
        output.errors
    );
    assert!(listener.accept().is_err(), "the plugin reached the host's listener");
}

#[tokio::test]
async fn plugin_stdout_is_captured_into_its_log_and_rate_limited() {
    let log = kept_log();
    let limits = Limits {
        max_log_bytes_per_call: 1000,
        cpu: Duration::from_secs(5),
        wall: Duration::from_secs(10),
        ..tight_limits()
    };
    let plugin = misbehaving(PluginOptions { limits, log: log.clone(), ..Default::default() }).await;
    let (output, _) = plugin.enrich("batch", batch(&["print"])).await.unwrap();
    assert_eq!(output.counts, vec![1], "printing does not fail the record");
    let lines = log.lines();
    assert_eq!(lines[0], "line 0 of a chatty plugin");
    let kept = lines.iter().filter(|l| l.contains("of a chatty plugin")).count();
    assert!(kept > 10 && kept < 100, "kept {kept} of 2000 lines");
    assert!(
        lines.last().unwrap().ends_with("log lines dropped: over the plugin's log limit for one call"),
        "{lines:?}"
    );
}

#[tokio::test]
async fn plugin_that_rejects_its_configuration_is_refused_at_load() {
    let options = PluginOptions { config: vec![("reject".into(), "yes".into())], ..Default::default() };
    let err = runtime()
        .load(PluginId::new("misbehaving", "1.0.0"), &component("misbehaving_enricher"), options)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        LoadError::ConfigRejected(
            "misbehaving@1.0.0".into(),
            "configuration key `reject` is set, so this plugin refuses to start".into()
        )
    );
}

#[tokio::test]
async fn component_of_an_unknown_wit_version_with_an_unknown_import_is_refused_with_both_reasons() {
    let err = runtime().inspect("future.wasm", &component("future_version")).unwrap_err();
    let LoadError::Refused(label, reasons) = &err else { panic!("expected a refusal, got {err}") };
    assert_eq!(label, "future.wasm");
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0].contains("weir:plugin@0.9.0") && reasons[0].contains("world enricher"), "{}", reasons[0]);
    assert!(reasons[1].contains("imports acme:net/raw-socket, which the host does not provide"), "{}", reasons[1]);
}

#[tokio::test]
async fn component_of_the_wrong_world_is_refused_naming_the_expected_world() {
    let options = PluginOptions { expected_world: Some(World::Parser), ..Default::default() };
    let err = runtime()
        .load(PluginId::new("misbehaving", "1.0.0"), &component("misbehaving_enricher"), options)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("is a enricher plugin") || text.contains("is an enricher plugin"), "{text}");
    assert!(text.contains("world parser (exports weir:plugin/parse@0.3.0) is expected"), "{text}");
}

#[tokio::test]
async fn bytes_that_are_not_a_component_each_get_their_own_message() {
    let rt = runtime();
    let good = component("misbehaving_enricher");
    let core = wat::parse_str("(module (func (export \"f\")))").unwrap();
    let cases: [(&str, &[u8], &str); 5] = [
        ("empty.wasm", b"", "the file is truncated: 0 bytes"),
        ("text.wasm", b"hello, world", "not a WebAssembly component (the file starts with \"hello, w\")"),
        ("core.wasm", &core, "this is a core WebAssembly module, not a component"),
        ("one-byte-short.wasm", &good[..good.len() - 1], "the component is truncated or corrupt"),
        ("half.wasm", &good[..good.len() / 2], "the component is truncated or corrupt"),
    ];
    for (label, bytes, expected) in cases {
        let err = rt.inspect(label, bytes).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{label}: ")), "{err}");
        assert!(err.contains(expected), "{label}: {err}");
    }
}

#[tokio::test]
async fn a_second_load_takes_compiled_code_from_the_disk_cache() {
    let dir = tempfile::tempdir().unwrap();
    let rt = Runtime::new(RuntimeConfig { cache_dir: Some(dir.path().into()), ..Default::default() }).unwrap();
    let bytes = component("misbehaving_enricher");
    let id = PluginId::new("misbehaving", "1.0.0");
    let first = rt.load(id.clone(), &bytes, PluginOptions::default()).await.unwrap();
    assert!(!first.compiled_from_cache());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "one cache entry");
    // A new runtime, as after a restart.
    let rt = Runtime::new(RuntimeConfig { cache_dir: Some(dir.path().into()), ..Default::default() }).unwrap();
    let second = rt.load(id, &bytes, PluginOptions::default()).await.unwrap();
    assert!(second.compiled_from_cache());
    let (output, _) = second.enrich("batch", batch(&["ok"])).await.unwrap();
    assert_eq!(output.counts, vec![1]);
}

#[tokio::test]
async fn one_plugin_failing_does_not_disturb_another() {
    let rt = runtime();
    let bytes = component("misbehaving_enricher");
    let limits = tight_limits();
    let bad = Arc::new(
        rt.load(PluginId::new("bad", "1"), &bytes, PluginOptions { limits: limits.clone(), ..Default::default() })
            .await
            .unwrap(),
    );
    let good =
        rt.load(PluginId::new("good", "1"), &bytes, PluginOptions { limits, ..Default::default() }).await.unwrap();
    let looping = tokio::spawn({
        let bad = bad.clone();
        async move { bad.enrich("batch", batch(&["loop"])).await }
    });
    for _ in 0..5 {
        let (output, stats) = good.enrich("batch", batch(&["ok"])).await.unwrap();
        assert_eq!(output.counts, vec![1]);
        assert!(!stats.fresh_instance, "the good plugin keeps its warm instance");
    }
    assert!(looping.await.unwrap().is_err());
}

#[tokio::test]
async fn a_huge_reason_is_cut_to_its_bound_with_a_marker_and_the_other_inputs_go_through() {
    let limits = Limits { memory_bytes: 64 << 20, ..Limits::default() };
    let plugin = misbehaving(PluginOptions { limits, ..Default::default() }).await;
    let (output, _) = plugin.enrich("batch 1 (3 records)", batch(&["ok", "huge-error", "ok"])).await.unwrap();
    assert_eq!(output.counts, vec![1, 0, 1]);
    let reason = &output.errors[0].message;
    assert!(reason.len() < weir_runtime::MAX_ERROR_MESSAGE_BYTES + 64, "{} bytes kept", reason.len());
    assert!(
        reason.starts_with("failed: xxx") && reason.ends_with("more bytes cut by the host)"),
        "{}",
        &reason[4000..]
    );
}

#[tokio::test]
async fn two_reasons_for_one_input_break_the_contract_and_fail_the_call() {
    let plugin = misbehaving(PluginOptions { limits: tight_limits(), ..Default::default() }).await;
    let err = expect_failure(&plugin, "double-error").await;
    assert!(matches!(err.kind, CallErrorKind::Contract(_)), "{err}");
    assert!(err.to_string().contains("more than one error for input 1"), "{err}");
}

#[tokio::test]
async fn a_packed_column_cut_inside_an_element_breaks_the_contract_and_names_the_column() {
    let plugin = misbehaving(PluginOptions { limits: tight_limits(), ..Default::default() }).await;
    let err = expect_failure(&plugin, "ragged-column").await;
    assert!(matches!(err.kind, CallErrorKind::Contract(_)), "{err}");
    assert!(err.to_string().contains("text-ends has 13 bytes, not a whole number of packed u32"), "{err}");
}

#[tokio::test]
async fn counter_names_are_bounded_in_number_and_length_and_the_rest_is_counted() {
    let plugin = misbehaving(PluginOptions { limits: Limits::default(), ..Default::default() }).await;
    let (output, _) = plugin.enrich("batch 1 (1 record)", batch(&["many-counters"])).await.unwrap();
    assert_eq!(output.counts, vec![1]);
    let counters = plugin.counters();
    assert_eq!(counters.len(), weir_runtime::MAX_COUNTERS + 1, "the kept names and the refused count");
    assert!(counters.iter().all(|(name, _)| name.len() <= weir_runtime::MAX_COUNTER_NAME_BYTES));
    let refused = counters.iter().find(|(name, _)| name == weir_runtime::REFUSED_COUNTER).map(|(_, n)| *n);
    assert_eq!(refused, Some(10_001 - weir_runtime::MAX_COUNTERS as i64));
}

#[tokio::test]
async fn a_field_name_per_event_hits_the_field_name_limit() {
    let plugin = misbehaving(PluginOptions { limits: tight_limits(), ..Default::default() }).await;
    let modes = vec!["unique-field"; 1_500];
    let Err(err) = plugin.enrich("batch 1 (1500 records)", batch(&modes)).await else {
        panic!("1 500 distinct field names were accepted")
    };
    assert_eq!(err.limit(), Some(&LimitKind::OutputFields { limit: 1_000, produced: 1_501 }), "{err}");
    assert!(err.to_string().contains("field-name limit (1000 distinct field names per call"), "{err}");
    // Within the limit, the same plugin is fine.
    let limits = Limits { max_output_fields: 2_000, ..tight_limits() };
    let plugin = misbehaving(PluginOptions { limits, ..Default::default() }).await;
    let (output, _) = plugin.enrich("batch 1 (1500 records)", batch(&modes)).await.unwrap();
    assert_eq!(output.events.len(), 1_500);
}

#[tokio::test]
async fn an_overlong_field_name_and_an_event_time_past_year_9999_break_the_contract() {
    let plugin = misbehaving(PluginOptions { limits: tight_limits(), ..Default::default() }).await;
    let err = expect_failure(&plugin, "long-field-name").await;
    let CallErrorKind::Contract(msg) = &err.kind else { panic!("{err}") };
    assert!(msg.contains("is 10000 bytes; at most 256"), "{msg}");
    next_batch_works(&plugin).await;
    let err = expect_failure(&plugin, "far-future").await;
    let CallErrorKind::Contract(msg) = &err.kind else { panic!("{err}") };
    assert!(msg.contains("outside years 0001 to 9999"), "{msg}");
    next_batch_works(&plugin).await;
}

#[tokio::test]
async fn aggregator_states_past_the_state_limit_fail_the_call_or_the_start() {
    let bytes = component("restaurant_stats");
    let id = || PluginId::new("restaurant-stats", "1");
    // An empty state larger than the limit: the plugin cannot start.
    let limits = Limits { max_state_bytes: 1, ..tight_limits() };
    let Err(err) = runtime().load(id(), &bytes, PluginOptions { limits, ..Default::default() }).await else {
        panic!("a plugin whose empty state breaks the state limit was loaded");
    };
    assert!(err.to_string().contains("the state limit is 1 bytes per group"), "{err}");
    // A state that grows past the limit as events are folded in fails that call by name.
    let plugin =
        runtime().load(id(), &bytes, PluginOptions { limits: tight_limits(), ..Default::default() }).await.unwrap();
    let empty_state = plugin.empty_state().unwrap_or_default().to_vec();
    let empty = empty_state.len();
    let limits = Limits { max_state_bytes: empty, ..tight_limits() };
    let plugin = runtime().load(id(), &bytes, PluginOptions { limits, ..Default::default() }).await.unwrap();
    let events: Vec<Event> = (0..100)
        .map(|i| {
            Event::new(i)
                .with_key("r-1")
                .with("order_id", format!("o-{i}"))
                .with("restaurant_id", "r-1")
                .with("total", 10.5)
                .with("customer_id", format!("c-{i}"))
        })
        .collect();
    // The SDK keeps states as JSON: 100 orders make the counts longer than the empty state's.
    let result =
        plugin.accumulate("batch 1 (100 events)", vec![empty_state], Columns::encode(&events), vec![0; 100]).await;
    let Err(err) = result else { panic!("a state past {empty} bytes was accepted") };
    let Some(LimitKind::StateBytes { limit, produced }) = err.limit() else { panic!("{err}") };
    assert_eq!(*limit, empty);
    assert!(*produced > empty, "{err}");
    assert!(err.to_string().contains("state limit"), "{err}");
}

/// Calls from several shards run on several instances of one plugin at once: while a
/// slow call holds the plugin's only warm instance, another call starts a second
/// instance instead of waiting. With one instance allowed it waits its turn and then
/// runs on the instance the slow call gave back. Whether the quick call ran on a fresh
/// instance is what shows which happened, so the test does not depend on timing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_run_at_once_on_a_pool_of_instances_and_take_turns_with_one() {
    for instances in [2, 1] {
        let limits = Limits { instances, cpu: Duration::from_secs(5), wall: Duration::from_secs(20), ..tight_limits() };
        let plugin = Arc::new(misbehaving(PluginOptions { limits, ..Default::default() }).await);
        assert_eq!(plugin.calls_running(), 0);
        let slow = tokio::spawn({
            let plugin = plugin.clone();
            // Long enough for the quick call to start a second instance on a loaded machine.
            let naps = Columns::encode(&[Event::new(0).with("mode", "nap").with("nap_ms", 2_000i64)]);
            async move { plugin.enrich("naps for 2 s", naps).await }
        });
        // Wait until the slow call holds the warm instance (it takes the instance as
        // soon as it holds a permit), so the quick call comes second.
        let waiting_since = Instant::now();
        while plugin.calls_running() == 0 {
            assert!(waiting_since.elapsed() < Duration::from_secs(10), "the slow call never started");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (output, stats) = plugin.enrich("quick", batch(&["ok"])).await.unwrap();
        assert_eq!(output.counts, vec![1]);
        let (slow_output, slow_stats) = slow.await.unwrap().unwrap();
        assert_eq!(slow_output.counts, vec![1]);
        assert!(!slow_stats.fresh_instance, "the slow call ran on the instance started at load");
        if instances == 2 {
            assert!(stats.fresh_instance, "the quick call started a second instance instead of waiting");
        } else {
            assert!(!stats.fresh_instance, "with one instance the quick call waited for the slow call's instance");
        }
        assert_eq!(plugin.calls_running(), 0);
    }
}
