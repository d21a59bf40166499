//! The `weir` command.

mod admin_cmd;
mod batch_cmd;
mod batch_progress;
mod jobs_service;
mod new_cmd;
mod pipeline_cmd;
mod plugin_cmd;
mod sdk_sources;
mod send_cmd;
mod tail_cmd;
mod watch;

use std::path::PathBuf;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// weir: a data pipeline whose logic is sandboxed WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with plugin components: test and inspect them locally; upload, deploy, canary,
    /// shadow and roll them back on a running host.
    #[command(subcommand)]
    Plugin(plugin_cmd::PluginCommand),
    /// The batch layer: run a job over a period, backfill a range with chosen plugin
    /// versions, list a job's runs.
    #[command(subcommand)]
    Batch(batch_cmd::BatchCommand),
    /// Send NDJSON records (a file or stdin) to a stream of a running host, in requests
    /// each acknowledged only once durable, waiting out backpressure.
    Send(send_cmd::SendArgs),
    /// Print what a running host's lake holds of a stream (events, dead letters,
    /// aggregates or raw records), newest last, and with --follow what comes next.
    Tail(tail_cmd::TailArgs),
    /// Check a pipeline configuration: every problem, with its line and key.
    Validate {
        /// The pipeline configuration (TOML), e.g. weir.toml.
        #[arg(long)]
        config: PathBuf,
    },
    /// Run the pipeline: ingest API, stream stages, sinks.
    Serve {
        /// The pipeline configuration (TOML), e.g. weir.toml.
        #[arg(long)]
        config: PathBuf,
    },
    /// Run the demo pipeline on embedded defaults with the example plugins and a
    /// generated sample of orders, then print what arrived in the lake.
    Demo {
        /// Where the built plugins are (default: $CARGO_TARGET_DIR or target, /wasm32-wasip2/plugin).
        #[arg(long)]
        plugins: Option<PathBuf>,
        /// The demo's data directory (emptied first).
        #[arg(long, default_value = ".weir-demo")]
        data_dir: PathBuf,
        /// Order records to send.
        #[arg(long, default_value_t = 3000)]
        events: usize,
        /// Generator seed.
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
}

fn main() -> ExitCode {
    // With the `tracing-log` feature, `init` also routes the `log` crate's records —
    // Ballista's, DataFusion's, tantivy's, redb's — through the same filter and output,
    // so their warnings and errors are not lost.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = match cli.command {
        Command::Plugin(cmd) => runtime.block_on(plugin_cmd::run(cmd)),
        Command::Batch(cmd) => runtime.block_on(batch_cmd::run(cmd)),
        Command::Send(args) => runtime.block_on(send_cmd::run(args)),
        Command::Tail(args) => runtime.block_on(tail_cmd::run(args)),
        Command::Validate { config } => runtime.block_on(pipeline_cmd::validate(&config)),
        Command::Serve { config } => runtime.block_on(pipeline_cmd::serve(&config)),
        Command::Demo { plugins, data_dir, events, seed } => {
            runtime.block_on(pipeline_cmd::demo(plugins, data_dir, events, seed))
        }
    };
    // Dropping a runtime waits for every worker and blocking thread; a stage abandoned
    // at shutdown may still be inside a plugin call (until its CPU limit), so the wait
    // is bounded here and the process exits.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

#[cfg(test)]
mod help_tests {
    use clap::CommandFactory;

    /// Every argument of every subcommand, with the path of subcommands leading to it,
    /// that has no help text.
    fn undocumented(command: &clap::Command, path: &str, out: &mut Vec<String>) {
        for arg in command.get_arguments() {
            let builtin = matches!(
                arg.get_action(),
                clap::ArgAction::Help
                    | clap::ArgAction::HelpShort
                    | clap::ArgAction::HelpLong
                    | clap::ArgAction::Version
            );
            if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                out.push(format!("{path} {}", arg.get_id()));
            }
        }
        for sub in command.get_subcommands() {
            if sub.get_about().is_none() && sub.get_long_about().is_none() && sub.get_name() != "help" {
                out.push(format!("{path} {} (the subcommand)", sub.get_name()));
            }
            undocumented(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_subcommand_and_argument_has_help_text() {
        let mut missing = Vec::new();
        undocumented(&super::Cli::command(), "weir", &mut missing);
        assert!(missing.is_empty(), "arguments without help text:\n{}", missing.join("\n"));
    }
}
