//! `weir plugin new NAME --lang rust|python|js [--world parser|enricher|aggregator]`:
//! scaffolds a plugin that builds and passes its own harness test out of the box.
//!
//! The templates (`host/cli/templates/`) are compiled into the binary. Every language
//! implements the same small plugin per world, so the fixtures are shared:
//! - parser: JSON objects → events (`key`, `time`, the other members as fields);
//! - enricher: adds `total_with_tax` (config `tax_rate`, default 0.1), drops `status ==
//!   "test"`, an event without a numeric `total` is an error;
//! - aggregator: per key and window, `count` and the sum of `total`.

use std::path::{Path, PathBuf};
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
    /// The weir checkout whose SDK and WIT the plugin uses (default: the one this weir
    /// was built from).
    #[arg(long)]
    weir: Option<PathBuf>,
}

/// The weir checkout this binary was built from.
fn default_checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const RUST_CARGO: &str = include_str!("../templates/rust/Cargo.toml.tmpl");
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

/// The files of a new plugin: (path relative to its directory, contents, executable).
fn files(args: &NewArgs, checkout: &Path) -> Vec<(String, String, bool)> {
    let name = &args.name;
    let module = name.replace('-', "_");
    let world = args.world.as_str();
    let index = args.world as usize;
    let checkout_text = checkout.display().to_string();
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{module}}", &module)
            .replace("{{world}}", world)
            .replace("{{sdk_path}}", &format!("{checkout_text}/sdk/rust"))
            .replace("{{weir}}", &checkout_text)
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
    let (build, component) = match args.lang {
        Lang::Rust => (
            "cargo build --release --target wasm32-wasip2".to_owned(),
            format!("target/wasm32-wasip2/release/{module}.wasm"),
        ),
        Lang::Python | Lang::Js => ("./build.sh".to_owned(), format!("{module}.wasm")),
    };
    let readme = fill(README).replace("{{build}}", &build).replace("{{component}}", &component).replace(
        "{{lang}}",
        match args.lang {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
        },
    );
    let mut out = vec![
        (source.0.to_owned(), fill(source.1), false),
        ("README.md".to_owned(), readme, false),
        ("fixtures/input.ndjson".to_owned(), FIXTURE_INPUTS[index].to_owned(), false),
        ("fixtures/expected.ndjson".to_owned(), FIXTURE_EXPECTED[index].to_owned(), false),
    ];
    match args.lang {
        Lang::Rust => out.push(("Cargo.toml".to_owned(), fill(RUST_CARGO), false)),
        Lang::Python => out.push(("build.sh".to_owned(), fill(PY_BUILD), true)),
        Lang::Js => out.push(("build.sh".to_owned(), fill(JS_BUILD), true)),
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
    let checkout = args.weir.clone().unwrap_or_else(default_checkout);
    let checkout = std::path::absolute(&checkout).unwrap_or(checkout);
    if !checkout.join("wit/weir-plugin.wit").is_file() {
        eprintln!(
            "error: {} is not a weir checkout (no wit/weir-plugin.wit); give one with --weir PATH",
            checkout.display()
        );
        return ExitCode::from(2);
    }
    let root = args.dir.join(&args.name);
    if root.exists() {
        eprintln!("error: {} already exists; choose another name or --dir", root.display());
        return ExitCode::from(2);
    }
    for (path, contents, executable) in files(args, &checkout) {
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
    println!("created {} ({} {} plugin); next:", root.display(), lang_name(args.lang), args.world.as_str());
    println!("  cd {}", root.display());
    println!("  cat README.md    # build, test, upload, activate");
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
