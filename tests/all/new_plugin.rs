//! `weir plugin new`: a scaffolded plugin builds and passes its own harness test.

use std::path::{Path, PathBuf};
use std::process::Command;

use weir_e2e::weir_bin;

/// Where scaffolded Rust plugins are built: beside the workspace's target, kept between
/// runs so the SDK's dependencies compile once.
fn scaffold_target() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| weir_e2e::repo_root().join("target"));
    target.join("scaffolded-plugins")
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{command:?} failed:\n{text}");
    text
}

fn new_plugin(dir: &Path, name: &str, lang: &str, world: &str) -> PathBuf {
    let out = run(Command::new(weir_bin())
        .args(["plugin", "new", name, "--lang", lang, "--world", world, "--dir"])
        .arg(dir)
        .args(["--weir"])
        .arg(weir_e2e::repo_root()));
    assert!(out.contains(&format!("created {}", dir.join(name).display())), "{out}");
    dir.join(name)
}

fn harness_test(plugin: &Path, component: &Path) -> String {
    run(Command::new(weir_bin()).current_dir(plugin).args(["plugin", "test"]).arg(component).args([
        "--input",
        "fixtures/input.ndjson",
        "--expect",
        "fixtures/expected.ndjson",
    ]))
}

#[test]
fn a_new_rust_plugin_of_each_world_builds_and_passes_its_harness_test() {
    let dir = tempfile::tempdir().unwrap();
    let target = scaffold_target();
    for world in ["parser", "enricher", "aggregator"] {
        let name = format!("my-{world}");
        let plugin = new_plugin(dir.path(), &name, "rust", world);
        let readme = std::fs::read_to_string(plugin.join("README.md")).unwrap();
        assert!(readme.contains("cargo build --release --target wasm32-wasip2"), "{readme}");
        assert!(
            readme.contains(&format!("weir plugin upload target/wasm32-wasip2/release/my_{world}.wasm")),
            "{readme}"
        );
        run(Command::new("cargo")
            .current_dir(&plugin)
            .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"])
            .env("CARGO_TARGET_DIR", &target));
        let component = target.join(format!("wasm32-wasip2/release/my_{world}.wasm"));
        let report = harness_test(&plugin, &component);
        assert!(report.contains("result   output matches fixtures/expected.ndjson"), "{report}");
    }
}

#[test]
fn plugin_new_refuses_a_bad_name_and_an_existing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(weir_bin())
        .args(["plugin", "new", "My Plugin", "--lang", "rust", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not a plugin name"));
    new_plugin(dir.path(), "twice", "rust", "enricher");
    let output = Command::new(weir_bin())
        .args(["plugin", "new", "twice", "--lang", "rust", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("already exists"));
}

/// Builds a scaffolded Python or JavaScript plugin with its `build.sh` (the toolchains
/// come from scripts/build-foreign-plugins.sh) and runs its harness test.
fn build_and_test_foreign(lang: &str, prefix: &str) {
    let dir = tempfile::tempdir().unwrap();
    for world in ["parser", "enricher", "aggregator"] {
        let name = format!("{prefix}-{world}");
        let plugin = new_plugin(dir.path(), &name, lang, world);
        let readme = std::fs::read_to_string(plugin.join("README.md")).unwrap();
        assert!(readme.contains("./build.sh"), "{readme}");
        run(Command::new(plugin.join("build.sh")).current_dir(&plugin));
        let component = plugin.join(format!("{}.wasm", name.replace('-', "_")));
        let report = harness_test(&plugin, &component);
        assert!(report.contains("result   output matches fixtures/expected.ndjson"), "{report}");
    }
}

#[test]
fn a_new_python_plugin_of_each_world_builds_and_passes_its_harness_test() {
    build_and_test_foreign("python", "py");
}

#[test]
fn a_new_javascript_plugin_of_each_world_builds_and_passes_its_harness_test() {
    build_and_test_foreign("js", "js");
}
