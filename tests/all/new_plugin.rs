//! `weir plugin new`: a scaffolded plugin builds and passes its own harness test wherever
//! it is — made by a `weir` binary copied away from the tree it was built from, in a
//! directory outside the repository — against a copy of the SDK the binary writes
//! (`--local-sdk`) or against the packaged SDKs (the crate, the wheel, the npm package
//! that scripts/package-sdks.sh builds), and goes live on a running host.

use std::path::{Path, PathBuf};
use std::process::Command;

use weir_e2e::{Server, compiled_ahead_of_time, repo_root, target_dir, tools_dir, weir_bin};

use crate::streaming::{caught_up, rt, ts, write_config};

/// Where scaffolded Rust plugins are built: beside the workspace's target, kept between
/// runs so the SDK's dependencies compile once.
fn scaffold_target() -> PathBuf {
    target_dir().join("scaffolded-plugins")
}

/// The SDK packages scripts/package-sdks.sh built.
fn sdk_package(file: &str) -> PathBuf {
    let path = target_dir().join("sdk-packages").join(file);
    assert!(path.exists(), "{} is missing: run scripts/package-sdks.sh (scripts/test.sh does)", path.display());
    path
}

/// The version scripts/build-foreign-plugins.sh pins as `NAME=version`, read from the
/// script so that a version bump there is the only change a bump needs.
fn pinned_version(name: &str) -> String {
    let script = repo_root().join("scripts/build-foreign-plugins.sh");
    let text = std::fs::read_to_string(&script).unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    let assignment = format!("{name}=");
    text.lines()
        .find_map(|line| line.strip_prefix(&assignment))
        .map(|version| version.trim().to_owned())
        .unwrap_or_else(|| panic!("{} pins no {name}", script.display()))
}

/// The pinned toolchains scripts/build-foreign-plugins.sh installed, as a user who
/// installed them would have them.
fn componentize_py() -> PathBuf {
    let version = pinned_version("COMPONENTIZE_PY_VERSION");
    tools_dir().join(format!("componentize-py-{version}/bin/componentize-py"))
}

fn componentize_js() -> PathBuf {
    let tools = tools_dir();
    std::fs::read_dir(&tools)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("js-tools-")))
        .map(|p| p.join("node_modules/@bytecodealliance/componentize-js/src/cli.js"))
        .expect("componentize-js is installed by scripts/build-foreign-plugins.sh")
}

fn weval() -> PathBuf {
    let weval = tools_dir().join(format!("weval-{}/bin/weval", pinned_version("WEVAL_VERSION")));
    assert!(weval.is_file(), "weval is installed by scripts/build-foreign-plugins.sh: {}", weval.display());
    weval
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{command:?} failed:\n{text}");
    text
}

/// A copy of the `weir` binary in a directory of its own, as an installed `weir` would
/// be: nothing it does may depend on the tree it was compiled from.
struct Elsewhere {
    _dir: tempfile::TempDir,
    weir: PathBuf,
    plugins: PathBuf,
}

fn elsewhere() -> Elsewhere {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let weir = bin.join("weir");
    std::fs::copy(weir_bin(), &weir).unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    assert!(!plugins.starts_with(weir_e2e::repo_root()), "the plugins are outside the repository");
    Elsewhere { _dir: dir, weir, plugins }
}

impl Elsewhere {
    fn new_plugin(&self, name: &str, lang: &str, world: &str, local_sdk: bool) -> PathBuf {
        let mut command = Command::new(&self.weir);
        command.args(["plugin", "new", name, "--lang", lang, "--world", world, "--dir"]).arg(&self.plugins);
        if local_sdk {
            command.arg("--local-sdk");
        }
        let out = run(&mut command);
        let plugin = self.plugins.join(name);
        assert!(out.contains(&format!("created {}", plugin.display())), "{out}");
        // Nothing in the plugin refers to the weir source tree.
        let repo = weir_e2e::repo_root().canonicalize().unwrap().display().to_string();
        for file in walk(&plugin) {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            assert!(!text.contains(&repo), "{} names the weir checkout {repo}", file.display());
        }
        plugin
    }

    fn harness_test(&self, plugin: &Path, component: &Path) -> String {
        let report = run(Command::new(&self.weir).current_dir(plugin).args(["plugin", "test"]).arg(component).args([
            "--input",
            "fixtures/input.ndjson",
            "--expect",
            "fixtures/expected.ndjson",
        ]));
        assert!(report.contains("result   output matches fixtures/expected.ndjson"), "{report}");
        report
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

fn cargo_build(plugin: &Path, patches: &[(&str, &Path)]) {
    let mut command = Command::new("cargo");
    command
        .current_dir(plugin)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"])
        .env("CARGO_TARGET_DIR", scaffold_target())
        // CI compiles the workspace with clippy as its compiler (.ci/run); a plugin
        // author's build does not, and neither does this one.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS");
    for (krate, path) in patches {
        command.arg("--config").arg(format!("patch.crates-io.{krate}.path=\"{}\"", path.display()));
    }
    run(&mut command);
}

#[test]
fn a_new_rust_plugin_of_each_world_builds_on_its_sdk_copy_and_passes_its_harness_test() {
    let away = elsewhere();
    for world in ["parser", "enricher", "aggregator"] {
        let name = format!("my-{world}");
        let plugin = away.new_plugin(&name, "rust", world, true);
        let manifest = std::fs::read_to_string(plugin.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("weir-sdk = { path = \"weir-sdk\" }"), "{manifest}");
        assert!(
            plugin.join("weir-sdk/wit/weir-plugin.wit").is_file() && plugin.join("weir-events/src/lib.rs").is_file()
        );
        let cargo_config = std::fs::read_to_string(plugin.join(".cargo/config.toml")).unwrap();
        assert!(cargo_config.contains("llvm-args=-inline-threshold="), "{cargo_config}");
        let readme = std::fs::read_to_string(plugin.join("README.md")).unwrap();
        assert!(readme.contains("cargo build --release --target wasm32-wasip2"), "{readme}");
        assert!(
            readme.contains(&format!("weir plugin upload target/wasm32-wasip2/release/my_{world}.wasm")),
            "{readme}"
        );
        cargo_build(&plugin, &[]);
        away.harness_test(&plugin, &scaffold_target().join(format!("wasm32-wasip2/release/my_{world}.wasm")));
    }
}

#[test]
fn plugin_new_refuses_a_bad_name_an_sdk_name_and_an_existing_directory() {
    let away = elsewhere();
    for (name, said) in [("My Plugin", "is not a plugin name"), ("weir-sdk", "is the name of an SDK package")] {
        let output = Command::new(&away.weir)
            .args(["plugin", "new", name, "--lang", "rust", "--dir"])
            .arg(&away.plugins)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&output.stderr).contains(said));
    }
    away.new_plugin("twice", "rust", "enricher", false);
    let output = Command::new(&away.weir)
        .args(["plugin", "new", "twice", "--lang", "rust", "--dir"])
        .arg(&away.plugins)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("already exists"));
}

/// Builds scaffolded Python or JavaScript plugins of each world on their SDK copy with
/// their `build.sh`, the toolchain given as a user who installed it would, and runs their
/// harness tests.
fn build_and_test_foreign(lang: &str, prefix: &str) {
    let away = elsewhere();
    for world in ["parser", "enricher", "aggregator"] {
        let name = format!("{prefix}-{world}");
        let plugin = away.new_plugin(&name, lang, world, true);
        let readme = std::fs::read_to_string(plugin.join("README.md")).unwrap();
        assert!(readme.contains("./build.sh"), "{readme}");
        let mut build = Command::new(plugin.join("build.sh"));
        build.current_dir(&plugin).env("COMPONENTIZE_PY", componentize_py()).env("COMPONENTIZE_JS", componentize_js());
        if lang == "js" && world == "enricher" {
            // Ahead of time, with the weval the build script installed.
            build.arg("--aot").env("WEVAL_BIN", weval());
        }
        run(&mut build);
        let wasm = plugin.join(format!("{}.wasm", name.replace('-', "_")));
        if lang == "js" {
            assert_eq!(
                compiled_ahead_of_time(&wasm),
                world == "enricher",
                "{name}: built ahead of time only with --aot"
            );
        }
        away.harness_test(&plugin, &wasm);
    }
}

#[test]
fn a_new_python_plugin_of_each_world_builds_on_its_sdk_copy_and_passes_its_harness_test() {
    build_and_test_foreign("python", "py");
}

#[test]
fn a_new_javascript_plugin_of_each_world_builds_on_its_sdk_copy_and_passes_its_harness_test() {
    build_and_test_foreign("js", "js");
}

/// The scaffold's enricher, in each language, built against the packaged SDK it depends
/// on by version, as a data team would once the packages are on their registries:
/// - Rust: the `.crate` files unpacked, given to cargo as `[patch.crates-io]`;
/// - Python: the wheel installed in a fresh virtualenv (the scaffold's `build.sh` finds it
///   there; componentize-py is the one the user installed);
/// - JavaScript: `npm install` of the `.tgz` and the scaffold's package.json, then
///   `npm run build`.
///
/// Each passes its harness test, then is uploaded with its fixtures and activated on a
/// running host with the copied `weir`, and the orders sent next carry its field and its
/// version in their lineage.
#[test]
fn plugins_built_on_the_packaged_sdks_pass_their_tests_and_go_live_on_a_running_host() {
    let away = elsewhere();
    let scratch = tempfile::tempdir().unwrap();

    let rust = away.new_plugin("order-tax", "rust", "enricher", false);
    let manifest = std::fs::read_to_string(rust.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("weir-sdk = \"0.3.0\""), "by version: {manifest}");
    let crates = scratch.path().join("crates");
    std::fs::create_dir_all(&crates).unwrap();
    for krate in ["weir-sdk-0.3.0.crate", "weir-events-0.3.0.crate"] {
        run(Command::new("tar").arg("xzf").arg(sdk_package(krate)).arg("-C").arg(&crates));
    }
    cargo_build(
        &rust,
        &[("weir-sdk", &crates.join("weir-sdk-0.3.0")), ("weir-events", &crates.join("weir-events-0.3.0"))],
    );
    let rust_component = scaffold_target().join("wasm32-wasip2/release/order_tax.wasm");
    away.harness_test(&rust, &rust_component);

    let python = away.new_plugin("order-tax-py", "python", "enricher", false);
    assert!(std::fs::read_to_string(python.join("requirements.txt")).unwrap().contains("weir-sdk==0.3.0"));
    let venv = scratch.path().join("venv");
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "--no-index"])
        .arg(sdk_package("weir_sdk-0.3.0-py3-none-any.whl")));
    let path = format!(
        "{}:{}:{}",
        venv.join("bin").display(),
        componentize_py().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    run(Command::new(python.join("build.sh")).current_dir(&python).env("PATH", &path));
    let python_component = python.join("order_tax_py.wasm");
    away.harness_test(&python, &python_component);

    let js = away.new_plugin("order-tax-js", "js", "enricher", false);
    assert!(std::fs::read_to_string(js.join("package.json")).unwrap().contains("\"weir-sdk\": \"0.3.0\""));
    run(Command::new("npm")
        .current_dir(&js)
        .args(["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"])
        .arg(sdk_package("weir-sdk-0.3.0.tgz")));
    run(Command::new("npm").current_dir(&js).args(["run", "build"]));
    let js_component = js.join("order_tax_js.wasm");
    away.harness_test(&js, &js_component);

    // A host whose orders stream runs the plugin after the restaurant enricher; the
    // configuration starts it on the Rust build.
    let config = write_config(scratch.path(), "");
    let text = std::fs::read_to_string(&config).unwrap();
    let mut text = text
        .replace("enrichers = [\"restaurant-enricher\"]", "enrichers = [\"restaurant-enricher\", \"order-tax\"]")
        + &format!("\n[plugins.order-tax]\npath = \"{}\"\nversion = \"0.0.1\"\n", rust_component.display());
    text +=
        "\n[sinks.lake]\ntype = \"lake\"\nroll_interval = \"0s\"\n\n[sinks.dead-letters]\ntype = \"dead-letters\"\n";
    std::fs::write(&config, text).unwrap();
    let server = Server::start_with_env(
        &config,
        &[("WEIR_ADMIN_TOKEN", "scaffold-admin"), ("WEIR_READ_TOKEN", "scaffold-read")],
    );
    let url = format!("http://{}", server.addr);
    let weir = |plugin: &Path, args: &[&str]| {
        run(Command::new(&away.weir)
            .current_dir(plugin)
            .args(args)
            .args(["--admin", &url])
            .env("WEIR_ADMIN_TOKEN", "scaffold-admin"))
    };
    for (round, (plugin, component)) in
        [(&rust, &rust_component), (&python, &python_component), (&js, &js_component)].into_iter().enumerate()
    {
        let version = (round + 1).to_string();
        let component = component.display().to_string();
        let out = weir(
            plugin,
            &[
                "plugin",
                "upload",
                &component,
                "--name",
                "order-tax",
                "--version",
                &version,
                "--input",
                "fixtures/input.ndjson",
                "--expect",
                "fixtures/expected.ndjson",
            ],
        );
        assert!(out.contains("fixtures pass: attached"), "{out}");
        let out = weir(plugin, &["plugin", "activate", "order-tax", &version]);
        assert!(out.contains(&format!("order-tax: {version} is live")), "{out}");

        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let orders: String = (0..20)
            .map(|i| {
                format!(
                    "{{\"order_id\":\"s{round}-{i:02}\",\"restaurant_id\":\"r-{}\",\"status\":\"delivered\",\"total\":10.00,\"items\":1,\"placed_at\":\"{}\",\"delivered_at\":\"{}\"}}\n",
                    1 + i % 5,
                    ts(now - 600),
                    ts(now - 60)
                )
            })
            .collect();
        let file = scratch.path().join(format!("orders-{round}.ndjson"));
        std::fs::write(&file, orders).unwrap();
        run(Command::new(&away.weir).args(["send", "orders"]).arg(&file).args([
            "--key-field",
            "restaurant_id",
            "--url",
            &url,
        ]));
        rt().block_on(caught_up(server.addr));
        let out = run(Command::new(&away.weir)
            .args(["tail", "orders", "-n", "1000", "--url", &url])
            .env("WEIR_READ_TOKEN", "scaffold-read"));
        let mine: Vec<serde_json::Value> = out
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["fields"]["order_id"].as_str().is_some_and(|id| id.starts_with(&format!("s{round}-"))))
            .collect();
        assert_eq!(mine.len(), 20, "{out}");
        for event in mine {
            assert_eq!(event["fields"]["total_with_tax"], 11.0, "{event}");
            assert!(event["lineage"].as_str().unwrap().contains(&format!("order-tax@{version}")), "{event}");
        }
    }
    drop(server);
}
