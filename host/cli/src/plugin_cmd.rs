//! `weir plugin test` and `weir plugin inspect`; the admin commands are in `admin_cmd`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use weir_harness::TestOptions;
use weir_runtime::{Limits, Runtime, RuntimeConfig};

#[derive(Debug, Subcommand)]
pub(crate) enum PluginCommand {
    /// Run a plugin on local files in the production runtime and limits; compare its
    /// output with an expected NDJSON file. Exit 0 on a match, 1 on a mismatch, 2 on a
    /// plugin or usage error.
    Test(Box<TestArgs>),
    /// Time a component on its fixtures (ns per input, the median of several rounds) in
    /// the production runtime, beside a previous build measured in the same run.
    Bench(Box<BenchArgs>),
    /// Print a component's world, WIT version, imports and exports.
    Inspect {
        /// The component.
        component: PathBuf,
    },
    /// Create a new plugin (Rust, Python or JavaScript) that builds and passes its
    /// harness test out of the box.
    New(crate::new_cmd::NewArgs),
    #[command(flatten)]
    Admin(crate::admin_cmd::AdminCommand),
}

/// What both `test` and `bench` need: the component, its input and how it runs.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The component (.wasm).
    component: PathBuf,
    /// Input: raw records for a parser (see --records), NDJSON events for an enricher or
    /// aggregator.
    #[arg(long)]
    input: PathBuf,
    /// How a parser's --input holds its records: lines (one per line, as bytes), file
    /// (the whole file, or each file of a directory, is one record), or ndjson
    /// ({"data": "text"} or {"data_hex": "00ff"}, with optional key and content_type).
    #[arg(long, default_value = "lines")]
    records: weir_harness::RecordsFormat,
    /// Reference data for lookups: a JSON object {"table": {"key": value}}.
    #[arg(long)]
    lookup: Option<PathBuf>,
    /// Configuration for the plugin, KEY=VALUE (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    config: Vec<(String, String)>,
    /// Records per call.
    #[arg(long, default_value_t = 1024)]
    batch_size: usize,
    /// Content type of parser input records (default: from the file extension).
    #[arg(long)]
    content_type: Option<String>,
    /// Aggregator tumbling window, e.g. 30s, 5m, 1h.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    window: Duration,
    /// CPU limit per call, in milliseconds (production default 1000).
    #[arg(long)]
    cpu_ms: Option<u64>,
    /// Wall-clock limit per call, in milliseconds (production default 5000).
    #[arg(long)]
    wall_ms: Option<u64>,
    /// Linear memory limit, in MiB (production default 128).
    #[arg(long)]
    memory_mib: Option<usize>,
    /// Output events per call (production default 100000).
    #[arg(long)]
    max_output_events: Option<usize>,
    /// Do not use the compiled-code cache.
    #[arg(long)]
    no_cache: bool,
}

impl RunArgs {
    /// The harness options these arguments describe.
    fn options(self) -> TestOptions {
        let defaults = Limits::default();
        let limits = Limits {
            cpu: self.cpu_ms.map_or(defaults.cpu, Duration::from_millis),
            wall: self.wall_ms.map_or(defaults.wall, Duration::from_millis),
            memory_bytes: self.memory_mib.map_or(defaults.memory_bytes, |m| m << 20),
            max_output_events: self.max_output_events.unwrap_or(defaults.max_output_events),
            ..defaults
        };
        TestOptions {
            records: self.records,
            lookup: self.lookup,
            config: self.config,
            batch_size: self.batch_size,
            content_type: self.content_type,
            window: self.window,
            limits,
            cache_dir: if self.no_cache { None } else { cache_dir() },
            ..TestOptions::new(self.component, self.input)
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct TestArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Expected output events (NDJSON).
    #[arg(long)]
    expect: Option<PathBuf>,
    /// Expected record errors: the inputs that must be refused, one 1-based input number
    /// per line (then, optionally, a tab and a note); any other refused input, or one of
    /// these accepted, fails the test.
    #[arg(long)]
    expect_errors: Option<PathBuf>,
    /// Rewrite the --expect (and --expect-errors) file with the actual output.
    #[arg(long, conflicts_with = "watch")]
    update: bool,
    /// Instead of comparing: run the plugin on N inputs derived from --input (mutated
    /// bytes and fields, boundary numbers and times, empty, huge and nested values),
    /// each alone, and report every call that fails with its smallest input.
    #[arg(long, value_name = "N", conflicts_with_all = ["expect", "expect_errors", "update", "watch"])]
    fuzz: Option<usize>,
    /// The fuzz generator's seed (the same seed gives the same inputs).
    #[arg(long, default_value_t = 1, requires = "fuzz")]
    fuzz_seed: u64,
    /// Where --fuzz writes each failing input, shrunk (fuzz-finding-<n>.ndjson).
    #[arg(long, default_value = "fuzz-findings", requires = "fuzz")]
    fuzz_out: PathBuf,
    /// Keep running: rebuild (see --build) and retest whenever a file under the current
    /// directory changes, until interrupted.
    #[arg(long)]
    watch: bool,
    /// The build command --watch runs before each test (default: from the directory —
    /// Cargo.toml: cargo build --release --target wasm32-wasip2; package.json: npm run
    /// build; build.sh: ./build.sh; else none).
    #[arg(long, value_name = "COMMAND", requires = "watch")]
    build: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    #[command(flatten)]
    run: RunArgs,
    /// A previous build of the same plugin, measured in the same run: the report gives
    /// this build's time per input as a ratio of that one's.
    #[arg(long, value_name = "COMPONENT")]
    against: Option<PathBuf>,
    /// Counted rounds per component (after one warm-up round).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    rounds: u32,
    /// Inputs per round: the --input fixtures repeated up to this many.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    inputs_per_round: u32,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a duration like 30s, 5m or 1h"))?;
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("{s:?}: unknown unit {unit:?}; use ms, s, m, h or d")),
    };
    Ok(Duration::from_secs(secs))
}

/// Where compiled code is cached: `$WEIR_CACHE_DIR`, else `$XDG_CACHE_HOME/weir/code`,
/// else `~/.cache/weir/code`.
fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("WEIR_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("weir").join("code"))
}

pub(crate) async fn run(cmd: PluginCommand) -> ExitCode {
    match cmd {
        PluginCommand::Test(args) => test(args).await,
        PluginCommand::Bench(args) => bench(args).await,
        PluginCommand::Inspect { component } => inspect(&component),
        PluginCommand::Admin(cmd) => crate::admin_cmd::run(cmd).await,
        PluginCommand::New(args) => crate::new_cmd::run(&args),
    }
}

async fn test(args: Box<TestArgs>) -> ExitCode {
    let args = *args;
    if args.update && args.expect.is_none() && args.expect_errors.is_none() {
        eprintln!("error: --update rewrites the --expect or --expect-errors file; give one of them");
        return ExitCode::from(2);
    }
    let options = TestOptions {
        expect: args.expect,
        expect_errors: args.expect_errors,
        update: args.update,
        ..args.run.options()
    };
    if let Some(runs) = args.fuzz {
        let fuzz = weir_harness::FuzzOptions { runs, seed: args.fuzz_seed, out_dir: args.fuzz_out };
        return finish(weir_harness::fuzz(&options, &fuzz).await, weir_harness::FuzzReport::exit_code);
    }
    if args.watch {
        return crate::watch::watch(&options, args.build).await;
    }
    finish(weir_harness::run(&options).await, weir_harness::Report::exit_code)
}

async fn bench(args: Box<BenchArgs>) -> ExitCode {
    let args = *args;
    let bench = weir_harness::BenchOptions {
        against: args.against,
        rounds: args.rounds as usize,
        inputs_per_round: args.inputs_per_round as usize,
    };
    finish(weir_harness::bench(&args.run.options(), &bench).await, |_| 0)
}

/// Prints a harness report and exits with its status, or prints the error and exits 2.
pub(crate) fn finish<R: std::fmt::Display>(
    result: Result<R, weir_harness::HarnessError>,
    exit_code: fn(&R) -> u8,
) -> ExitCode {
    match result {
        Ok(report) => {
            print!("{report}");
            ExitCode::from(exit_code(&report))
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn inspect(component: &PathBuf) -> ExitCode {
    let bytes = match std::fs::read(component) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", component.display());
            return ExitCode::from(2);
        }
    };
    let runtime = match Runtime::new(RuntimeConfig { cache_dir: cache_dir(), ..Default::default() }) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e:#}");
            return ExitCode::from(2);
        }
    };
    match runtime.inspect(&component.display().to_string(), &bytes) {
        Ok(info) => {
            println!("component  {}", component.display());
            println!("world      {} (exports {}@{})", info.world, info.world.export_interface(), info.wit_version);
            println!("wit        weir:plugin@{}", info.wit_version);
            println!("size       {} bytes", info.size);
            println!("sha256     {}", info.sha256);
            println!("exports");
            for e in &info.exports {
                println!("  {e}");
            }
            println!("imports");
            for i in &info.imports {
                let note = if i.starts_with("weir:plugin/host") {
                    "weir host API: log, counters, lookups"
                } else if i.starts_with("weir:plugin/") {
                    "weir types"
                } else {
                    "WASI, linked with nothing granted"
                };
                println!("  {i:<40} {note}");
            }
            println!(
                "granted    nothing: no files, environment, arguments or network; stdout/stderr go to the plugin log"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
