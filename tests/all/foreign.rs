//! Plugins written in Python (componentize-py) and JavaScript (componentize-js), built by
//! scripts/build-foreign-plugins.sh: the restaurant enrichers pass the Rust plugin's
//! golden test, the sandbox probes find no file, no network and no environment, and the
//! CPU limit stops a JavaScript plugin compiled ahead of time (weval) that spins.
//!
//! These components are 12-18 MB, so compiling one takes seconds with a release `weir` and
//! minutes with a debug one. The tests share one compiled-code cache (keyed by the
//! component's hash, so it is never stale) instead of a fresh one each, so a second run of
//! the suite does not compile them again.

use std::net::TcpListener;
use std::path::PathBuf;

use weir_e2e::{compiled_ahead_of_time, component, plugin_file, weir};

fn shared_cache() -> PathBuf {
    let dir = std::env::var_os("WEIR_E2E_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("weir-e2e-foreign-cache"));
    std::fs::create_dir_all(&dir).expect("the cache directory can be created");
    dir
}

fn run_restaurant_golden(name: &str) -> weir_e2e::Run {
    let wasm = component(name);
    let f = |p: &str| plugin_file(p);
    let (input, lookup, expect) = (
        f("restaurant-enricher/fixtures/input.ndjson"),
        f("restaurant-enricher/fixtures/lookup.json"),
        f("restaurant-enricher/fixtures/expected.ndjson"),
    );
    weir(&[&"plugin", &"test", &wasm, &"--input", &input, &"--lookup", &lookup, &"--expect", &expect], &shared_cache())
}

#[test]
fn the_python_restaurant_enricher_gives_the_rust_plugins_output() {
    let run = run_restaurant_golden("restaurant_enricher_py");
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("output matches"), "{}", run.all());
    assert!(
        run.stdout.contains("record error  input 12: unknown restaurant r-99: not in reference table restaurants"),
        "the same record error as the Rust plugin: {}",
        run.all()
    );
    assert!(run.stdout.contains("counters test_orders_dropped=2"), "{}", run.all());
}

#[test]
fn the_javascript_restaurant_enricher_gives_the_rust_plugins_output() {
    let run = run_restaurant_golden("restaurant_enricher_js");
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("output matches"), "{}", run.all());
    assert!(
        run.stdout.contains("record error  input 12: unknown restaurant r-99: not in reference table restaurants"),
        "{}",
        run.all()
    );
    assert!(run.stdout.contains("counters test_orders_dropped=2"), "{}", run.all());
}

#[test]
fn the_javascript_components_import_no_wasi_at_all() {
    for name in ["restaurant_enricher_js", "probe_js"] {
        let run = weir(&[&"plugin", &"inspect", &component(name)], &shared_cache());
        assert_eq!(run.code, 0, "{}", run.all());
        assert!(run.stdout.contains("weir:plugin/host@0.3.0"), "{}", run.all());
        assert!(!run.stdout.contains("wasi:"), "{name} was built with every WASI feature disabled: {}", run.all());
    }
}

/// What a probe reported for its one event, and whether anything reached the listener.
struct Probed {
    fields: serde_json::Map<String, serde_json::Value>,
    connection_reached_listener: bool,
    secret: String,
    run: weir_e2e::Run,
}

impl Probed {
    fn text(&self, field: &str) -> &str {
        self.fields
            .get(field)
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("the probe set no text field {field}: {:?}\n{}", self.fields, self.run.all()))
    }
}

/// Runs a probe on one event, with a real file holding a secret (`--config path`) and a
/// real TCP listener on 127.0.0.1 (`--config port`), and reads the event it produced.
fn probe(name: &str) -> Probed {
    let dir = tempfile::tempdir().unwrap();
    let secret = format!("weir-sandbox-secret-{}", std::process::id());
    let secret_file = dir.path().join("secret.txt");
    std::fs::write(&secret_file, &secret).unwrap();
    let input = dir.path().join("input.ndjson");
    std::fs::write(&input, "{\"key\":\"probe\",\"time\":0,\"fields\":{\"n\":1}}\n").unwrap();
    let output = dir.path().join("output.ndjson");

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();

    let path_config = format!("path={}", secret_file.display());
    let port_config = format!("port={port}");
    let run = weir(
        &[
            &"plugin",
            &"test",
            &component(name),
            &"--input",
            &input,
            &"--config",
            &path_config,
            &"--config",
            &port_config,
            // --update writes the events produced to the file, so the test can read them.
            &"--expect",
            &output,
            &"--update",
        ],
        &shared_cache(),
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("output   1 events, 0 record errors, 0 failed calls"), "{}", run.all());

    let connection_reached_listener = match listener.accept() {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(e) => panic!("accept failed: {e}"),
    };
    let text = std::fs::read_to_string(&output).unwrap();
    let event: serde_json::Value = serde_json::from_str(text.lines().next().expect("one event")).unwrap();
    let fields = event["fields"].as_object().expect("fields").clone();
    Probed { fields, connection_reached_listener, secret, run }
}

#[test]
fn a_python_plugin_can_read_no_file_reach_no_socket_and_sees_no_environment() {
    let probed = probe("probe_py");
    let all = probed.run.all();
    let file = probed.text("file");
    assert!(file.starts_with("denied: "), "reading the file must fail inside the plugin: {file}\n{all}");
    assert!(!file.contains(&probed.secret), "{file}");
    assert!(probed.text("dir").starts_with("denied: "), "listing / must fail: {:?}", probed.fields);
    let socket = probed.text("socket");
    assert!(socket.starts_with("denied: "), "connecting must fail inside the plugin: {socket}\n{all}");
    assert!(!probed.connection_reached_listener, "a connection reached the listener: {socket}");
    assert_eq!(probed.fields["env_count"], 0, "the environment must be empty: {:?}", probed.fields);
    assert_eq!(probed.text("env"), "empty");
    assert!(probed.fields["home"].is_null(), "HOME must be unset: {:?}", probed.fields);
}

#[test]
fn a_javascript_plugin_has_no_file_socket_or_environment_api_to_try() {
    let probed = probe("probe_js");
    let file = probed.text("file");
    assert!(!file.starts_with("read"), "{file}");
    assert!(!file.contains(&probed.secret), "{file}");
    assert!(file.starts_with("no fs API") || file.starts_with("denied: "), "{file}");
    let socket = probed.text("socket");
    assert!(socket.starts_with("no socket API") || socket.starts_with("denied: "), "{socket}");
    assert!(!probed.connection_reached_listener, "a connection reached the listener: {socket}");
    assert_eq!(probed.fields["env_count"], 0, "{:?}", probed.fields);
    assert!(probed.fields["home"].is_null(), "HOME must be unset: {:?}", probed.fields);
}

#[test]
fn a_javascript_plugin_compiled_ahead_of_time_that_spins_is_stopped_by_its_cpu_limit() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.ndjson");
    std::fs::write(&input, "{\"time\":0,\"fields\":{\"n\":1}}\n{\"time\":0,\"fields\":{\"n\":2}}\n").unwrap();
    let wasm = component("probe_js");
    assert!(compiled_ahead_of_time(&wasm), "{} is the ahead-of-time build", wasm.display());
    let run = weir(
        &[
            &"plugin",
            &"test",
            &wasm,
            &"--input",
            &input,
            &"--config",
            &"spin=true",
            &"--batch-size",
            &"1",
            &"--cpu-ms",
            &"200",
        ],
        &shared_cache(),
    );
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stdout.contains("exceeded its CPU limit (200 ms) on batch 1 (inputs 1-1)"), "{}", run.all());
    assert!(run.stdout.contains("exceeded its CPU limit (200 ms) on batch 2 (inputs 2-2)"), "{}", run.all());
    assert!(run.stdout.contains("output   0 events, 0 record errors, 2 failed calls"), "{}", run.all());
}
