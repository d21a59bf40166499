//! `weir plugin new NAME --lang rust|python|js [--world parser|enricher|aggregator]`:
//! scaffolds a plugin that builds and passes its own harness test out of the box, wherever
//! `weir` runs: it depends on the weir-sdk package by version (Rust: crates.io; Python:
//! PyPI; JavaScript: npm), or, with `--local-sdk`, on a copy of the SDK and the WIT that
//! the binary carries ([`crate::sdk_sources`]). Nothing refers to where `weir` was built.
//!
//! The templates (`host/cli/templates/`) are compiled into the binary. Every language
//! implements the same small plugin per world, so the fixtures are shared:
//! - parser: JSON objects → events (`key`, `time`, the other members as fields);
//! - enricher: adds `total_with_tax` (config `tax_rate`, default 0.1), drops `status ==
//!   "test"`, an event without a numeric `total` is an error;
//! - aggregator: per key and window, `count` and the sum of `total`.

use std::path::{Path, PathBuf};

use crate::sdk_sources::{Files, JS_SDK, PYTHON_SDK, RUST_EVENTS, RUST_SDK, SDK_VERSION, WIT};
use std::process::ExitCode;

use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Lang {
    Rust,
    Python,
    Js,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum WorldArg {
    Parser,
    Enricher,
    Aggregator,
}

impl WorldArg {
    fn as_str(self) -> &'static str {
        match self {
            Self::Parser => "parser",
            Self::Enricher => "enricher",
            Self::Aggregator => "aggregator",
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct NewArgs {
    /// The plugin's name: a-z, 0-9 and '-', e.g. order-tax.
    name: String,
    /// The language.
    #[arg(long, value_enum)]
    lang: Lang,
    /// The world (kind of plugin).
    #[arg(long, value_enum, default_value = "enricher")]
    world: WorldArg,
    /// Where to create the plugin's directory.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Write a copy of the SDK and the WIT (carried by this weir binary) into the plugin
    /// and build against that, instead of depending on the weir-sdk package by version.
    #[arg(long)]
    local_sdk: bool,
}

const RUST_CARGO: &str = include_str!("../templates/rust/Cargo.toml.tmpl");
const RUST_CARGO_CONFIG: &str = include_str!("../templates/rust/cargo-config.toml");
const RUST_PARSER: &str = include_str!("../templates/rust/parser.rs");
const RUST_ENRICHER: &str = include_str!("../templates/rust/enricher.rs");
const RUST_AGGREGATOR: &str = include_str!("../templates/rust/aggregator.rs");
const PY_PARSER: &str = include_str!("../templates/python/parser.py");
const PY_ENRICHER: &str = include_str!("../templates/python/enricher.py");
const PY_AGGREGATOR: &str = include_str!("../templates/python/aggregator.py");
const PY_BUILD: &str = include_str!("../templates/python/build.sh");
const JS_PARSER: &str = include_str!("../templates/js/parser.js");
const JS_ENRICHER: &str = include_str!("../templates/js/enricher.js");
const JS_AGGREGATOR: &str = include_str!("../templates/js/aggregator.js");
const JS_BUILD: &str = include_str!("../templates/js/build.sh");
const JS_PACKAGE: &str = include_str!("../templates/js/package.json.tmpl");
const README: &str = include_str!("../templates/README.md.tmpl");
const FIXTURE_INPUTS: [&str; 3] = [
    include_str!("../templates/fixtures/parser-input.ndjson"),
    include_str!("../templates/fixtures/enricher-input.ndjson"),
    include_str!("../templates/fixtures/aggregator-input.ndjson"),
];
const FIXTURE_EXPECTED: [&str; 3] = [
    include_str!("../templates/fixtures/parser-expected.ndjson"),
    include_str!("../templates/fixtures/enricher-expected.ndjson"),
    include_str!("../templates/fixtures/aggregator-expected.ndjson"),
];

/// The manifest of the `weir-sdk/` copy (`--local-sdk`): the published crate's, with the
/// `weir-events` copy beside it.
pub(crate) fn rust_sdk_manifest() -> String {
    format!(
        r#"[package]
name = "weir-sdk"
version = "{SDK_VERSION}"
edition = "2024"
description = "Write weir plugins (parsers, enrichers, aggregators) in Rust; a copy written by weir plugin new --local-sdk"
license = "Apache-2.0"

[dependencies]
weir-events = {{ path = "../weir-events", version = "{SDK_VERSION}" }}
wit-bindgen = {{ version = "0.61.1", default-features = false, features = ["macros", "realloc"] }}
serde = {{ version = "1", features = ["derive"] }}
serde_json = {{ version = "1", features = ["preserve_order"] }}
"#
    )
}

/// The manifest of the `weir-events/` copy (`--local-sdk`).
pub(crate) fn rust_events_manifest() -> String {
    format!(
        r#"[package]
name = "weir-events"
version = "{SDK_VERSION}"
edition = "2024"
description = "weir's event model and columnar batch encoding; a copy written by weir plugin new --local-sdk"
license = "Apache-2.0"

[dependencies]
serde = {{ version = "1", features = ["derive"] }}
serde_json = {{ version = "1", features = ["preserve_order"] }}
"#
    )
}

/// `files` under `dir/`, as scaffold entries.
fn copied(dir: &str, files: Files) -> impl Iterator<Item = (String, String, bool)> + '_ {
    files.iter().map(move |(path, text)| (format!("{dir}/{path}"), (*text).to_owned(), false))
}

/// The language-specific parts of the README: how to set up, build, and where the
/// component lands.
struct LangText {
    name: &'static str,
    setup: String,
    build: String,
    component: String,
}

fn lang_text(lang: Lang, module: &str, local: bool) -> LangText {
    let sdk_note = if local {
        "The SDK is the copy in this directory (`weir plugin new --local-sdk`)."
    } else {
        "The SDK comes from its package, by version (see \"The SDK\" below)."
    };
    match lang {
        Lang::Rust => LangText {
            name: "Rust",
            setup: format!("rustup target add wasm32-wasip2   # once\n```\n\n{sdk_note}\n\n```sh"),
            build: "cargo build --release --target wasm32-wasip2".to_owned(),
            component: format!("target/wasm32-wasip2/release/{module}.wasm"),
        },
        Lang::Python => LangText {
            name: "Python",
            setup: format!(
                "python3 -m venv .venv && . .venv/bin/activate   # once\npip install -r requirements.txt                 # componentize-py{}\n```\n\n{sdk_note}\n\n```sh",
                if local { "" } else { " and weir-sdk" }
            ),
            build: "./build.sh".to_owned(),
            component: format!("{module}.wasm"),
        },
        Lang::Js => LangText {
            name: "JavaScript",
            setup: format!(
                "npm install   # once: componentize-js and weir-sdk (package.json)\n```\n\n{sdk_note}\n\n```sh"
            ),
            build: "npm run build   # ./build.sh; ./build.sh --aot: compiled ahead of time, 1.5x faster".to_owned(),
            component: format!("{module}.wasm"),
        },
    }
}

/// Where the SDK comes from and how to use a build of it before it is published.
fn sdk_section(lang: Lang, local: bool) -> String {
    if local {
        let (dirs, how) = match lang {
            Lang::Rust => ("`weir-sdk/` and `weir-events/`", "`Cargo.toml` points at `weir-sdk/`"),
            Lang::Python => ("`weir_sdk/`", "`build.sh` puts this directory on componentize-py's path"),
            Lang::Js => ("`weir-sdk/`", "`package.json` depends on `file:./weir-sdk`"),
        };
        return format!(
            "{dirs} hold weir-sdk {SDK_VERSION} and the WIT it implements (`weir:plugin@{SDK_VERSION}`), \
written by the `weir` that created this plugin; {how}. Commit them with the plugin: it builds \
without anything else from weir. To move to the published package, depend on \
`weir-sdk {SDK_VERSION}` instead and delete the copy."
        );
    }
    let (dependency, prebuilt) = match lang {
        Lang::Rust => (
            format!("`weir-sdk = \"{SDK_VERSION}\"` in `Cargo.toml` (crates.io)"),
            format!(
                "unpack `weir-sdk-{SDK_VERSION}.crate` and `weir-events-{SDK_VERSION}.crate` (`tar xzf`) and build with \
`--config 'patch.crates-io.weir-sdk.path=\"DIR/weir-sdk-{SDK_VERSION}\"' --config 'patch.crates-io.weir-events.path=\"DIR/weir-events-{SDK_VERSION}\"'`"
            ),
        ),
        Lang::Python => (
            format!("`weir-sdk=={SDK_VERSION}` in `requirements.txt` (PyPI)"),
            format!("`pip install weir_sdk-{SDK_VERSION}-py3-none-any.whl`"),
        ),
        Lang::Js => (
            format!("`\"weir-sdk\": \"{SDK_VERSION}\"` in `package.json` (npm)"),
            format!("`npm install weir-sdk-{SDK_VERSION}.tgz`"),
        ),
    };
    format!(
        "The plugin depends on {dependency}: the SDK's version is that of the WIT package it \
implements, `weir:plugin@{SDK_VERSION}`, which the package carries. Before the package is \
on its registry, use the one your weir build made (`scripts/package-sdks.sh` in weir's \
repository): {prebuilt}. Or recreate the plugin with `weir plugin new --local-sdk`, which \
writes a copy of the SDK into it."
    )
}

/// The files of a new plugin: (path relative to its directory, contents, executable).
fn files(args: &NewArgs) -> Vec<(String, String, bool)> {
    let name = &args.name;
    let module = name.replace('-', "_");
    let world = args.world.as_str();
    let index = args.world as usize;
    let local = args.local_sdk;
    let rust_dependency = if local {
        r#"{ path = "weir-sdk" }   # the copy written by weir plugin new --local-sdk"#.to_owned()
    } else {
        format!("\"{SDK_VERSION}\"")
    };
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{module}}", &module)
            .replace("{{world}}", world)
            .replace("{{sdk_version}}", SDK_VERSION)
            .replace("{{sdk_dependency}}", &rust_dependency)
            .replace(
                "{{js_sdk_dependency}}",
                &if local { "file:./weir-sdk".to_owned() } else { SDK_VERSION.to_owned() },
            )
    };
    let source = match (args.lang, args.world) {
        (Lang::Rust, WorldArg::Parser) => ("src/lib.rs", RUST_PARSER),
        (Lang::Rust, WorldArg::Enricher) => ("src/lib.rs", RUST_ENRICHER),
        (Lang::Rust, WorldArg::Aggregator) => ("src/lib.rs", RUST_AGGREGATOR),
        (Lang::Python, WorldArg::Parser) => ("app.py", PY_PARSER),
        (Lang::Python, WorldArg::Enricher) => ("app.py", PY_ENRICHER),
        (Lang::Python, WorldArg::Aggregator) => ("app.py", PY_AGGREGATOR),
        (Lang::Js, WorldArg::Parser) => ("app.js", JS_PARSER),
        (Lang::Js, WorldArg::Enricher) => ("app.js", JS_ENRICHER),
        (Lang::Js, WorldArg::Aggregator) => ("app.js", JS_AGGREGATOR),
    };
    let text = lang_text(args.lang, &module, local);
    let readme = fill(README)
        .replace("{{setup}}", &text.setup)
        .replace("{{build}}", &text.build)
        .replace("{{component}}", &text.component)
        .replace("{{lang}}", text.name)
        .replace("{{sdk}}", &sdk_section(args.lang, local));
    let mut out = vec![
        (source.0.to_owned(), fill(source.1), false),
        ("README.md".to_owned(), readme, false),
        ("fixtures/input.ndjson".to_owned(), FIXTURE_INPUTS[index].to_owned(), false),
        ("fixtures/expected.ndjson".to_owned(), FIXTURE_EXPECTED[index].to_owned(), false),
    ];
    match args.lang {
        Lang::Rust => {
            out.push(("Cargo.toml".to_owned(), fill(RUST_CARGO), false));
            out.push((".cargo/config.toml".to_owned(), RUST_CARGO_CONFIG.to_owned(), false));
            out.push((".gitignore".to_owned(), "/target\n".to_owned(), false));
            if local {
                out.push(("weir-sdk/Cargo.toml".to_owned(), rust_sdk_manifest(), false));
                out.push(("weir-sdk/wit/weir-plugin.wit".to_owned(), WIT.to_owned(), false));
                out.extend(copied("weir-sdk", RUST_SDK));
                out.push(("weir-events/Cargo.toml".to_owned(), rust_events_manifest(), false));
                out.extend(copied("weir-events", RUST_EVENTS));
            }
        }
        Lang::Python => {
            out.push(("build.sh".to_owned(), fill(PY_BUILD), true));
            let mut requirements = String::from("componentize-py==0.25.1\n");
            if !local {
                requirements.push_str(&format!("weir-sdk=={SDK_VERSION}\n"));
            }
            out.push(("requirements.txt".to_owned(), requirements, false));
            out.push((".gitignore".to_owned(), "/*.wasm\n/.venv\n__pycache__/\n".to_owned(), false));
            if local {
                out.push(("weir_sdk/wit/weir-plugin.wit".to_owned(), WIT.to_owned(), false));
                out.extend(copied("weir_sdk", PYTHON_SDK));
            }
        }
        Lang::Js => {
            out.push(("build.sh".to_owned(), fill(JS_BUILD), true));
            out.push(("package.json".to_owned(), fill(JS_PACKAGE), false));
            out.push((".gitignore".to_owned(), "/*.wasm\n/node_modules\n/weir-sdk.js\n".to_owned(), false));
            if local {
                out.push(("weir-sdk/wit/weir-plugin.wit".to_owned(), WIT.to_owned(), false));
                out.extend(copied("weir-sdk", JS_SDK));
            }
        }
    }
    out
}

pub(crate) fn run(args: &NewArgs) -> ExitCode {
    let valid = !args.name.is_empty()
        && args.name.len() <= 64
        && args.name.starts_with(|c: char| c.is_ascii_lowercase())
        && args.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        eprintln!("error: {:?} is not a plugin name; use a-z, 0-9 and '-', starting with a letter", args.name);
        return ExitCode::from(2);
    }
    let reserved = ["weir-sdk", "weir-events"];
    if reserved.contains(&args.name.as_str()) {
        eprintln!("error: {:?} is the name of an SDK package; choose another name", args.name);
        return ExitCode::from(2);
    }
    let root = args.dir.join(&args.name);
    if root.exists() {
        eprintln!("error: {} already exists; choose another name or --dir", root.display());
        return ExitCode::from(2);
    }
    for (path, contents, executable) in files(args) {
        let path = root.join(path);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, contents))
            .and_then(|()| set_executable(&path, executable));
        if let Err(e) = written {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    let sdk = if args.local_sdk { "copied into it" } else { "by version" };
    println!(
        "created {} ({} {} plugin, weir-sdk {SDK_VERSION} {sdk}); next:",
        root.display(),
        lang_name(args.lang),
        args.world.as_str()
    );
    println!("  cd {}", root.display());
    println!("  cat README.md    # set up, build, test, upload, activate");
    ExitCode::SUCCESS
}

fn lang_name(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "Rust",
        Lang::Python => "Python",
        Lang::Js => "JavaScript",
    }
}

#[cfg(unix)]
fn set_executable(path: &Path, executable: bool) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if executable {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn set_executable(_path: &Path, _executable: bool) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `rustflags` line of a cargo config.
    fn rustflags(config: &str) -> &str {
        config.lines().find(|line| line.starts_with("rustflags")).expect("a rustflags line")
    }

    #[test]
    fn a_new_rust_plugin_is_compiled_with_the_flags_of_weirs_own_plugins() {
        let workspace = include_str!("../../../.cargo/config.toml");
        assert_eq!(rustflags(RUST_CARGO_CONFIG), rustflags(workspace));
        assert!(RUST_CARGO_CONFIG.contains("[target.wasm32-wasip2]"));
    }
}
