//! The plugin SDKs' sources and the WIT, carried inside the `weir` binary, so that
//! `weir plugin new --local-sdk` writes a copy into a new plugin wherever `weir` runs —
//! never a path into the tree `weir` was compiled from.
//!
//! A unit test checks that these lists name every source file of the SDKs, so a file added
//! to an SDK cannot be left out of the copies.

/// The SDK version the scaffolds depend on: the version of the WIT package the SDKs
/// implement (`weir:plugin@0.3.0`); the Rust crate, the wheel and the npm package all
/// carry it (a unit test checks each manifest).
pub(crate) const SDK_VERSION: &str = "0.3.0";

/// (path relative to the copy's root, contents).
pub(crate) type Files = &'static [(&'static str, &'static str)];

macro_rules! carried {
    ($($from:literal => $to:literal),* $(,)?) => {
        &[$(($to, include_str!(concat!("../../../", $from)))),*]
    };
}

/// The WIT every SDK copy carries.
pub(crate) const WIT: &str = include_str!("../../../wit/weir-plugin.wit");

/// `weir-sdk/` (its manifest is written by the scaffold: the workspace's one inherits).
pub(crate) const RUST_SDK: Files = carried![
    "sdk/rust/README.md" => "README.md",
    "sdk/rust/src/bindings.rs" => "src/bindings.rs",
    "sdk/rust/src/config.rs" => "src/config.rs",
    "sdk/rust/src/drivers.rs" => "src/drivers.rs",
    "sdk/rust/src/export.rs" => "src/export.rs",
    "sdk/rust/src/host.rs" => "src/host.rs",
    "sdk/rust/src/lib.rs" => "src/lib.rs",
    "sdk/rust/src/plugin.rs" => "src/plugin.rs",
    "sdk/rust/src/testing.rs" => "src/testing.rs",
];

/// `weir-events/`, the event model and batch encoding `weir-sdk` depends on.
pub(crate) const RUST_EVENTS: Files = carried![
    "sdk/events/src/columns.rs" => "src/columns.rs",
    "sdk/events/src/event.rs" => "src/event.rs",
    "sdk/events/src/json.rs" => "src/json.rs",
    "sdk/events/src/lib.rs" => "src/lib.rs",
    "sdk/events/src/raw_batch.rs" => "src/raw_batch.rs",
    "sdk/events/src/time.rs" => "src/time.rs",
    "sdk/events/src/window.rs" => "src/window.rs",
];

/// The `weir_sdk` Python package.
pub(crate) const PYTHON_SDK: Files = carried![
    "sdk/python/weir_sdk/__init__.py" => "__init__.py",
    "sdk/python/weir_sdk/_native_types.py" => "_native_types.py",
    "sdk/python/weir_sdk/events.py" => "events.py",
    "sdk/python/weir_sdk/host.py" => "host.py",
    "sdk/python/weir_sdk/plugin.py" => "plugin.py",
    "sdk/python/weir_sdk/raw_batch.py" => "raw_batch.py",
    "sdk/python/weir_sdk/testing.py" => "testing.py",
    "sdk/python/weir_sdk/values.py" => "values.py",
];

/// The `weir-sdk` npm package.
pub(crate) const JS_SDK: Files = carried![
    "sdk/js/package.json" => "package.json",
    "sdk/js/README.md" => "README.md",
    "sdk/js/weir-sdk.js" => "weir-sdk.js",
    "sdk/js/weir-testing.js" => "weir-testing.js",
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use super::*;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// The files under `dir` (relative to the repository) with one of `extensions`.
    fn sources(dir: &str, extensions: &[&str]) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        let mut stack = vec![repo().join(dir)];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    if !path.ends_with("__pycache__") && !path.ends_with("test") && !path.ends_with("tests") {
                        stack.push(path);
                    }
                } else if path.extension().is_some_and(|e| extensions.iter().any(|x| e == *x)) {
                    found.insert(path.strip_prefix(repo().join(dir)).unwrap().display().to_string());
                }
            }
        }
        found
    }

    fn carried_names(files: Files) -> BTreeSet<String> {
        files.iter().map(|(to, _)| (*to).to_owned()).collect()
    }

    #[test]
    fn every_sdk_source_file_is_carried() {
        let rust: BTreeSet<String> = carried_names(RUST_SDK).into_iter().filter(|p| p.ends_with(".rs")).collect();
        assert_eq!(rust, sources("sdk/rust", &["rs"]));
        assert_eq!(carried_names(RUST_EVENTS), sources("sdk/events", &["rs"]));
        assert_eq!(carried_names(PYTHON_SDK), sources("sdk/python/weir_sdk", &["py"]));
        let js: BTreeSet<String> = carried_names(JS_SDK).into_iter().filter(|p| p.ends_with(".js")).collect();
        assert_eq!(js, sources("sdk/js", &["js"]));
    }

    #[test]
    fn each_sdk_package_carries_the_wit_and_its_version() {
        let read = |p: &str| std::fs::read_to_string(repo().join(p)).unwrap();
        let wit = read("wit/weir-plugin.wit");
        assert!(wit.contains(&format!("package weir:plugin@{SDK_VERSION};")), "the WIT package is not {SDK_VERSION}");
        for copy in
            ["sdk/rust/wit/weir-plugin.wit", "sdk/python/weir_sdk/wit/weir-plugin.wit", "sdk/js/wit/weir-plugin.wit"]
        {
            assert!(
                read(copy) == wit,
                "{copy} differs from wit/weir-plugin.wit: copy it over (cp wit/weir-plugin.wit {copy})"
            );
        }
        let workspace = read("Cargo.toml");
        assert!(workspace.contains(&format!("\nversion = \"{SDK_VERSION}\"")), "the workspace (weir-sdk's) version");
        assert!(workspace.contains(&format!("weir-events = {{ path = \"sdk/events\", version = \"{SDK_VERSION}\" }}")));
        assert!(read("sdk/python/pyproject.toml").contains(&format!("\nversion = \"{SDK_VERSION}\"")));
        assert!(read("sdk/python/weir_sdk/__init__.py").contains(&format!("__version__ = \"{SDK_VERSION}\"")));
        assert!(read("sdk/js/package.json").contains(&format!("\"version\": \"{SDK_VERSION}\"")));
    }

    #[test]
    fn the_copied_manifests_pin_the_workspaces_dependency_versions() {
        let workspace = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
        let manifest = crate::new_cmd::rust_sdk_manifest() + &crate::new_cmd::rust_events_manifest();
        for dep in ["wit-bindgen = ", "serde = ", "serde_json = "] {
            let line = workspace.lines().find(|l| l.starts_with(dep)).unwrap();
            assert!(manifest.contains(line), "the copied manifests lack {line}");
        }
    }
}
