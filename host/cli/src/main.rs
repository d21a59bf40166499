//! The `weir` command.

mod plugin_cmd;

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
    /// Work with plugin components: test them locally, inspect them.
    #[command(subcommand)]
    Plugin(plugin_cmd::PluginCommand),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Plugin(cmd) => runtime.block_on(plugin_cmd::run(cmd)),
    }
}
