//! The fixtures gate: a version's fixtures run in the harness (`weir plugin test`) before
//! the version may take traffic.

use std::path::PathBuf;

use weir_harness::{Comparison, TestOptions};
use weir_registry::Fixtures;
use weir_runtime::PluginOptions;

use weir_config::HumanDuration;

/// Runs `fixtures` against the component `bytes` with the plugin's limits and
/// configuration (unless the fixtures give their own). `Err` holds the harness report
/// (with the diff) when the output does not match, a call fails or the files cannot be
/// used.
pub(crate) async fn run(
    cache_dir: Option<PathBuf>,
    label: &str,
    bytes: Vec<u8>,
    options: PluginOptions,
    fixtures: Fixtures,
) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a directory for the fixtures of {label}: {e}"))?;
    let write = |name: &str, contents: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).map(|()| path).map_err(|e| format!("cannot write {name}: {e}"))
    };
    let component = write("component.wasm", &bytes)?;
    let input = write("input.txt", fixtures.input.as_bytes())?;
    let expected = write("expected.ndjson", fixtures.expected.as_bytes())?;
    let mut test = TestOptions::new(component.clone(), input.clone());
    test.expect = Some(expected.clone());
    test.cache_dir = cache_dir;
    test.limits = options.limits;
    test.config = match fixtures.config.clone() {
        Some(config) => config.into_iter().collect(),
        None => options.config,
    };
    test.content_type = Some(fixtures.content_type.clone().unwrap_or_else(|| "application/json".to_owned()));
    if let Some(lookup) = &fixtures.lookup {
        test.lookup = Some(write("lookup.json", lookup.to_string().as_bytes())?);
    }
    if let Some(window) = &fixtures.window {
        let window: HumanDuration = window.parse().map_err(|e| format!("fixtures window {window:?}: {e}"))?;
        test.window = window.0;
    }
    // The harness's future is not `Send` (it counts calls in a `Cell`): it runs on its
    // own thread and runtime, like `weir plugin test` does.
    let report = tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(weir_harness::run(&test)).map_err(|e| std::io::Error::other(e.to_string()))
    })
    .await
    .map_err(|e| format!("the fixtures run of {label} failed: {e}"))?
    .map_err(|e| e.to_string())?;
    let matched = matches!(report.comparison, Some(Comparison::Match(_)));
    if matched && report.exit_code() == 0 {
        return Ok(());
    }
    // The report names the files it ran; the uploader knows theirs, not the host's copies.
    let files = fixtures.files.unwrap_or_default();
    let mut text = report.to_string();
    for (copy, name) in [
        (&component, label.to_owned()),
        (&input, files.input.unwrap_or_else(|| "the fixtures' input".to_owned())),
        (&expected, files.expected.unwrap_or_else(|| "the fixtures' expected output".to_owned())),
        (&dir.path().join("lookup.json"), files.lookup.unwrap_or_else(|| "the fixtures' lookup data".to_owned())),
    ] {
        text = text.replace(&copy.display().to_string(), &name);
    }
    // Rerunning with --update is the harness's advice; here the fix is a new upload.
    text = text.replace("         rerun with --update to accept the actual output\n", "");
    Err(text)
}
