//! `weir plugin test`: the examples' golden files, diffs, `--update`, exit codes, and a
//! hostile plugin reported with its limit.

use weir_e2e::{component, plugin_file, weir};

fn golden_args(name: &str) -> Vec<String> {
    let f = |p: &str| plugin_file(p).display().to_string();
    match name {
        "orders_parser" => vec![
            "--input".into(),
            f("orders-parser/fixtures/input.txt"),
            "--expect".into(),
            f("orders-parser/fixtures/expected.ndjson"),
        ],
        "restaurant_enricher" => vec![
            "--input".into(),
            f("restaurant-enricher/fixtures/input.ndjson"),
            "--lookup".into(),
            f("restaurant-enricher/fixtures/lookup.json"),
            "--expect".into(),
            f("restaurant-enricher/fixtures/expected.ndjson"),
        ],
        "restaurant_stats" => vec![
            "--input".into(),
            f("restaurant-stats/fixtures/input.ndjson"),
            "--window".into(),
            "1h".into(),
            "--expect".into(),
            f("restaurant-stats/fixtures/expected.ndjson"),
        ],
        "lookup_enricher" => vec![
            "--input".into(),
            f("lookup-enricher/fixtures/input.ndjson"),
            "--lookup".into(),
            f("lookup-enricher/fixtures/lookup.json"),
            "--config".into(),
            "table=customers".into(),
            "--config".into(),
            "key_field=customer_id".into(),
            "--config".into(),
            "prefix=customer_".into(),
            "--expect".into(),
            f("lookup-enricher/fixtures/expected.ndjson"),
            "--expect-errors".into(),
            f("lookup-enricher/fixtures/errors.txt"),
        ],
        other => panic!("no golden test for {other}"),
    }
}

fn run_golden(name: &str, extra: &[&str]) -> weir_e2e::Run {
    let cache = tempfile::tempdir().unwrap();
    let wasm = component(name).display().to_string();
    let mut args: Vec<String> = vec!["plugin".into(), "test".into(), wasm];
    args.extend(golden_args(name));
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&dyn AsRef<std::ffi::OsStr>> = args.iter().map(|a| a as &dyn AsRef<std::ffi::OsStr>).collect();
    weir(&args, cache.path())
}

#[test]
fn orders_parser_passes_its_golden_test_and_reports_malformed_lines_per_record() {
    let run = run_golden("orders_parser", &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("output matches"), "{}", run.all());
    assert!(run.stdout.contains("record error  input"), "malformed lines are reported: {}", run.all());
    assert!(run.stdout.contains("ns/input"), "{}", run.all());
}

#[test]
fn the_generic_lookup_enricher_joins_a_reference_table_by_configuration_alone() {
    let run = run_golden("lookup_enricher", &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("output matches") && run.stdout.contains("record errors match"), "{}", run.all());
    // The same component on another table and field, configured only.
    let run = run_golden("lookup_enricher", &["--config", "key_field=order_id"]);
    assert_eq!(run.code, 1, "every order id is missing from the customers table: {}", run.all());
    assert!(run.stdout.contains("order_id o-1001 is not in reference table customers"), "{}", run.all());
}

#[test]
fn restaurant_enricher_passes_its_golden_test() {
    let run = run_golden("restaurant_enricher", &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("output matches"), "{}", run.all());
}

#[test]
fn restaurant_stats_passes_its_golden_test_and_merge_equals_one_pass() {
    let run = run_golden("restaurant_stats", &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("output matches"), "{}", run.all());
    assert!(run.stdout.contains("two halves merged give the one-pass output"), "{}", run.all());
}

#[test]
fn a_changed_expectation_is_shown_as_a_diff_and_exits_1_until_updated() {
    let dir = tempfile::tempdir().unwrap();
    let original = std::fs::read_to_string(plugin_file("orders-parser/fixtures/expected.ndjson")).unwrap();
    let mut lines: Vec<&str> = original.lines().collect();
    let removed = lines.remove(1).to_owned();
    let expect = dir.path().join("expected.ndjson");
    std::fs::write(&expect, lines.join("\n") + "\n").unwrap();

    let cache = tempfile::tempdir().unwrap();
    let wasm = component("orders_parser");
    let input = plugin_file("orders-parser/fixtures/input.txt");
    let run = weir(&[&"plugin", &"test", &wasm, &"--input", &input, &"--expect", &expect], cache.path());
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stdout.contains("+ actual      2 "), "{}", run.all());
    assert!(run.stdout.contains(&removed[..40]), "the diff shows the missing event: {}", run.all());

    let run = weir(&[&"plugin", &"test", &wasm, &"--input", &input, &"--expect", &expect, &"--update"], cache.path());
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(std::fs::read_to_string(&expect).unwrap(), original, "--update writes the actual output");
}

#[test]
fn a_plugin_that_loops_is_reported_with_its_limit_and_exit_2_while_other_batches_complete() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("modes.ndjson");
    let line = |mode: &str| format!("{{\"time\":0,\"fields\":{{\"mode\":\"{mode}\"}}}}\n");
    std::fs::write(&input, [line("ok"), line("loop"), line("ok")].concat()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let wasm = component("misbehaving_enricher");
    let run = weir(
        &[&"plugin", &"test", &wasm, &"--input", &input, &"--batch-size", &"1", &"--cpu-ms", &"100"],
        cache.path(),
    );
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stdout.contains("exceeded its CPU limit (100 ms) on batch 2 (inputs 2-2)"), "{}", run.all());
    assert!(run.stdout.contains("output   2 events, 0 record errors, 1 failed calls"), "{}", run.all());
}

#[test]
fn a_missing_input_file_is_a_usage_error_with_exit_2() {
    let cache = tempfile::tempdir().unwrap();
    let wasm = component("orders_parser");
    let run = weir(&[&"plugin", &"test", &wasm, &"--input", &"/nonexistent/input.txt"], cache.path());
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("cannot read /nonexistent/input.txt"), "{}", run.all());
}

#[test]
fn the_input_that_crashes_a_plugin_is_named_and_the_rest_of_its_batch_is_processed() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("modes.ndjson");
    let line = |mode: &str| format!("{{\"time\":0,\"fields\":{{\"mode\":\"{mode}\"}}}}\n");
    let modes = ["ok", "ok", "ok", "ok", "panic", "ok", "ok", "ok"];
    std::fs::write(&input, modes.iter().map(|m| line(m)).collect::<String>()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let wasm = component("misbehaving_enricher");
    let run = weir(&[&"plugin", &"test", &wasm, &"--input", &input, &"--batch-size", &"8"], cache.path());
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stdout.contains("output   7 events, 0 record errors, 1 failed calls"), "{}", run.all());
    assert!(
        run.stdout.contains("trapped (wasm trap: wasm `unreachable` instruction executed; the plugin's last output:"),
        "{}",
        run.all()
    );
    assert!(run.stdout.contains("on batch 1, input 5; the instance was discarded (isolated"), "{}", run.all());
}

/// `weir plugin test` on the orders parser with `args`; its stdout.
fn parse_records(args: &[&dyn AsRef<std::ffi::OsStr>]) -> weir_e2e::Run {
    let cache = tempfile::tempdir().unwrap();
    let wasm = component("orders_parser");
    let mut all: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"plugin", &"test", &wasm];
    all.extend_from_slice(args);
    weir(&all, cache.path())
}

const ORDER: &str = r#"{"order_id": "o-1", "restaurant_id": "r-1", "customer_id": "c-1", "status": "delivered", "total": 2.5, "items": 1, "placed_at": "2026-11-26T11:05:00Z", "delivered_at": null, "test": false}"#;

#[test]
fn a_parser_is_fed_the_input_lines_as_bytes_so_invalid_utf8_reaches_it_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("records.ndjson");
    let mut bytes = ORDER.as_bytes().to_vec();
    bytes.extend_from_slice(b"\r\nab\xff\xfecd\n\n");
    std::fs::write(&input, bytes).unwrap();
    let run = parse_records(&[&"--input", &input]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("output   1 events, 1 record errors, 0 failed calls"), "{}", run.all());
    assert!(
        run.stdout.contains("input 2: record is not UTF-8 text: invalid byte at offset 2"),
        "the record reached the parser as its bytes: {}",
        run.all()
    );
}

#[test]
fn ndjson_records_carry_any_bytes_their_own_content_type_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("records.ndjson");
    let csv = "o-2,r-1,c-2,delivered,3.75,1,2026-11-26T11:05:00Z,2026-11-26T11:35:00Z,false";
    let lines = [
        serde_json::json!({"data": ORDER}),
        serde_json::json!({"data_hex": "61ff"}),
        serde_json::json!({"data": csv, "content_type": "text/csv", "key": "r-1"}),
    ];
    std::fs::write(&input, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let run = parse_records(&[&"--input", &input, &"--records", &"ndjson"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("output   2 events, 1 record errors, 0 failed calls"), "{}", run.all());
    assert!(run.stdout.contains("input 2: record is not UTF-8 text: invalid byte at offset 1"), "{}", run.all());

    std::fs::write(&input, "{\"data\": \"x\", \"data_hex\": \"78\"}\n").unwrap();
    let run = parse_records(&[&"--input", &input, &"--records", &"ndjson"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("records.ndjson:1: a record has exactly one of data (text) and data_hex"),
        "{}",
        run.all()
    );
}

#[test]
fn file_records_are_whole_files_so_a_record_may_hold_newlines() {
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("records");
    std::fs::create_dir(&records).unwrap();
    // One order written over several lines: one record as a file, three as lines.
    std::fs::write(records.join("1.json"), ORDER.replace(", ", ",\n")).unwrap();
    std::fs::write(records.join("2.json"), b"\xff").unwrap();
    let run = parse_records(&[&"--input", &records, &"--records", &"file", &"--content-type", &"application/json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("output   1 events, 1 record errors, 0 failed calls"), "{}", run.all());
    assert!(run.stdout.contains("input 2: record is not UTF-8 text: invalid byte at offset 0"), "{}", run.all());
}

#[test]
fn expect_errors_pins_which_inputs_are_refused_so_a_version_accepting_bad_input_fails() {
    let errors = plugin_file("orders-parser/fixtures/errors.txt").display().to_string();
    let run = run_golden("orders_parser", &["--expect-errors", &errors]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains("record errors match"), "{}", run.all());

    // The fixture says input 2 must be refused and forgets input 5: both are reported.
    let dir = tempfile::tempdir().unwrap();
    let pinned = std::fs::read_to_string(&errors).unwrap();
    let wrong: String = pinned.lines().filter(|l| !l.starts_with("5\t")).map(|l| format!("{l}\n")).collect();
    let wrong_file = dir.path().join("errors.txt");
    std::fs::write(&wrong_file, format!("# pinned record errors\n2\n{wrong}")).unwrap();
    let run = run_golden("orders_parser", &["--expect-errors", wrong_file.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stdout.contains("- input 2: expected a record error, but it was accepted"), "{}", run.all());
    assert!(run.stdout.contains("+ input 5: refused, not expected: invalid JSON order"), "{}", run.all());

    // --update writes what the run refused, which then matches (without --expect here,
    // so the repository's golden file is not rewritten).
    let cache = tempfile::tempdir().unwrap();
    let (wasm, input) = (component("orders_parser"), plugin_file("orders-parser/fixtures/input.txt"));
    let run = weir(
        &[&"plugin", &"test", &wasm, &"--input", &input, &"--expect-errors", &wrong_file, &"--update"],
        cache.path(),
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(std::fs::read_to_string(&wrong_file).unwrap(), pinned);

    std::fs::write(&wrong_file, "two\n").unwrap();
    let run = run_golden("orders_parser", &["--expect-errors", wrong_file.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("line 1: \"two\" is not an input number"), "{}", run.all());
}

#[test]
fn fuzzing_passes_a_parser_that_refuses_bad_input_and_finds_a_planted_crash_with_its_smallest_input() {
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (parser, input) = (component("orders_parser"), plugin_file("orders-parser/fixtures/input.txt"));
    let run = weir(
        &[&"plugin", &"test", &parser, &"--input", &input, &"--fuzz", &"400", &"--fuzz-out", &out.path()],
        cache.path(),
    );
    assert_eq!(run.code, 0, "the orders parser refuses bad input with record errors: {}", run.all());
    assert!(
        run.stdout.contains("fuzz     400 inputs:") && run.stdout.contains("0 failed calls (0 distinct)"),
        "{}",
        run.all()
    );
    let refused: usize =
        run.stdout.split(" accepted, ").nth(1).and_then(|s| s.split(' ').next()).unwrap().parse().unwrap();
    assert!(refused > 100, "most mutated records are refused: {}", run.stdout);

    // The misbehaving enricher panics on an order whose order_id is the configured one:
    // here the empty text, which fuzzing produces.
    let (enricher, events) =
        (component("misbehaving_enricher"), plugin_file("restaurant-enricher/fixtures/input.ndjson"));
    let args: [&dyn AsRef<std::ffi::OsStr>; 11] = [
        &"plugin",
        &"test",
        &enricher,
        &"--input",
        &events,
        &"--config",
        &"panic_on_order=",
        &"--fuzz",
        &"2000",
        &"--fuzz-out",
        &out.path(),
    ];
    let run = weir(&args, cache.path());
    assert_eq!(run.code, 1, "{}", run.all());
    assert_eq!(run.stdout.matches("FAILED CALL").count(), 1, "one distinct crash: {}", run.all());
    assert!(run.stdout.contains("told to panic on order"), "{}", run.all());
    let finding = out.path().join("fuzz-finding-1.ndjson");
    let text = std::fs::read_to_string(&finding).unwrap();
    let event: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(event["fields"]["order_id"], "", "the crashing value kept: {text}");
    assert_eq!(event["fields"].as_object().unwrap().len(), 1, "every other field shrunk away: {text}");
    // The file is an input the harness takes: it reproduces the crash.
    let run =
        weir(&[&"plugin", &"test", &enricher, &"--input", &finding, &"--config", &"panic_on_order="], cache.path());
    assert_eq!(run.code, 2, "{}", run.all());
}

/// Reads the lines a `weir plugin test --watch` prints until one contains `wanted`,
/// failing after 60 s; returns what was read.
fn read_until(lines: &std::sync::mpsc::Receiver<String>, wanted: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut seen = String::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
                if line.contains(wanted) {
                    return seen;
                }
            }
            Err(_) => panic!("no line with {wanted:?} within 60 s; read:\n{seen}"),
        }
    }
}

/// Starts `weir plugin test parser.wasm --input input.txt --expect expected.ndjson
/// --watch --build BUILD` in `dir`; its stdout lines arrive on the receiver.
fn watch(dir: &std::path::Path, build: &str) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(weir_e2e::weir_bin())
        .current_dir(dir)
        .args(["plugin", "test", "parser.wasm", "--input", "input.txt", "--expect", "expected.ndjson", "--watch"])
        .args(["--build", build])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (send, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    (child, lines)
}

#[test]
fn watch_rebuilds_and_retests_on_every_change_until_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = plugin_file("orders-parser/fixtures");
    std::fs::copy(fixtures.join("input.txt"), dir.path().join("input.txt")).unwrap();
    let expected = std::fs::read_to_string(fixtures.join("expected.ndjson")).unwrap();
    std::fs::write(dir.path().join("expected.ndjson"), &expected).unwrap();
    // The "build" copies the built component into place, as a plugin's build would make it.
    let build = format!("cp {} parser.wasm", component("orders_parser").display());
    let (mut child, lines) = watch(dir.path(), &build);
    let first = read_until(&lines, "watching for changes");
    assert!(first.contains(&format!("build    {build}")), "{first}");
    assert!(first.contains("result   output matches expected.ndjson"), "{first}");

    // An expectation changed: rebuilt, retested, and the difference shown.
    let changed = expected.replacen("delivered", "cancelled", 1);
    std::fs::write(dir.path().join("expected.ndjson"), &changed).unwrap();
    let second = read_until(&lines, "watching for changes");
    assert!(second.contains("changed  expected.ndjson"), "{second}");
    assert!(second.contains("result   output differs from expected.ndjson"), "{second}");

    // Put back: it matches again.
    std::fs::write(dir.path().join("expected.ndjson"), &expected).unwrap();
    let third = read_until(&lines, "watching for changes");
    assert!(third.contains("result   output matches expected.ndjson"), "fixed again: {third}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_failing_build_under_watch_is_reported_and_the_next_change_retries() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = plugin_file("orders-parser/fixtures");
    std::fs::copy(fixtures.join("input.txt"), dir.path().join("input.txt")).unwrap();
    std::fs::copy(fixtures.join("expected.ndjson"), dir.path().join("expected.ndjson")).unwrap();
    // The build fails while `broken` exists.
    std::fs::write(dir.path().join("broken"), "").unwrap();
    let build = format!("test ! -e broken && cp {} parser.wasm", component("orders_parser").display());
    let (mut child, lines) = watch(dir.path(), &build);
    let first = read_until(&lines, "watching for changes");
    assert!(first.contains("build    failed (exit status: 1); fix it and save to retry"), "{first}");
    assert!(!first.contains("result"), "nothing is tested after a failed build: {first}");
    std::fs::remove_file(dir.path().join("broken")).unwrap();
    let second = read_until(&lines, "watching for changes");
    assert!(second.contains("changed  broken"), "{second}");
    assert!(second.contains("result   output matches expected.ndjson"), "{second}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn bench_reports_time_per_input_beside_a_previous_build_of_the_same_plugin() {
    let cache = tempfile::tempdir().unwrap();
    let fixtures = plugin_file("restaurant-enricher/fixtures");
    let (input, lookup) = (fixtures.join("input.ndjson"), fixtures.join("lookup.json"));
    // The Rust enricher against its Python port: the same plugin in another language, as
    // a slower previous build would be.
    let run = weir(
        &[
            &"plugin",
            &"bench",
            &component("restaurant_enricher"),
            &"--input",
            &input,
            &"--lookup",
            &lookup,
            &"--against",
            &component("restaurant_enricher_py"),
            &"--rounds",
            &"3",
            &"--inputs-per-round",
            &"500",
        ],
        cache.path(),
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let figure = |label: &str| -> f64 {
        let line = run.stdout.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("{}", run.all()));
        line.split_whitespace().nth(1).unwrap().trim_end_matches('×').parse().unwrap()
    };
    assert!(run.stdout.contains("3 rounds of 510 inputs (the 17 of"), "{}", run.all());
    let (this, previous, ratio) = (figure("this"), figure("previous"), figure("ratio"));
    assert!(this > 0.0 && previous > 0.0, "{}", run.all());
    assert!((ratio - this / previous).abs() < 0.01 * ratio.max(0.01) + 0.005, "{}", run.all());
    // CPython inside the component is far slower per event than the Rust build.
    assert!(ratio < 0.5 && run.stdout.contains("(faster; above 1 is slower)"), "{}", run.all());

    // Two different plugins are not two builds of one.
    let run = weir(
        &[
            &"plugin",
            &"bench",
            &component("restaurant_enricher"),
            &"--input",
            &input,
            &"--against",
            &component("orders_parser"),
        ],
        cache.path(),
    );
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("implements the parser world but") && run.stderr.contains("the enricher world"),
        "{}",
        run.all()
    );
}
