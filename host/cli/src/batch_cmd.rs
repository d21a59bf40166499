//! `weir batch`: run a job over a period now, backfill a range with chosen plugin
//! versions, list a job's completed runs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Subcommand;
use weir_batch::{
    JobRunner, Period, PluginSource, RunRequest, Trigger, closed_period, now_micros, parse_time, periods_between,
};
use weir_config::PipelineConfig;
use weir_connectors::sink_types;
use weir_runtime::{Runtime, RuntimeConfig};

/// Most periods one backfill runs.
const MAX_BACKFILL_PERIODS: usize = 1000;

#[derive(Debug, Subcommand)]
pub(crate) enum BatchCommand {
    /// Run a job over one period now: by default the newest period closed for the job's
    /// lateness (what its schedule would run).
    Run {
        /// The job (its `name` in [[jobs]]).
        job: String,
        #[arg(long)]
        config: PathBuf,
        /// A time in the period to run: 2026-12-01 or 2026-12-01T06:00:00Z.
        #[arg(long)]
        period: Option<String>,
        /// Run this plugin version from the registry instead of the live one: NAME@VERSION.
        #[arg(long = "plugin", value_name = "NAME@VERSION")]
        plugins: Vec<String>,
        /// Instances of each plugin working at once (default: one per core, at most 8).
        #[arg(long)]
        workers: Option<usize>,
    },
    /// Run every job of a stream again over the periods of a range of the raw archive, with
    /// the plugin versions named; each period's outputs replace the earlier run's.
    Backfill {
        #[arg(long)]
        config: PathBuf,
        /// The stream whose jobs run.
        #[arg(long)]
        stream: String,
        /// Only this job of the stream.
        #[arg(long)]
        job: Option<String>,
        /// Start of the range: 2026-12-01 or RFC 3339.
        #[arg(long)]
        from: String,
        /// End of the range (exclusive).
        #[arg(long)]
        to: String,
        /// Plugin versions to run, NAME@VERSION (uploaded to the registry).
        #[arg(long = "plugin", value_name = "NAME@VERSION")]
        plugins: Vec<String>,
    },
    /// The completed runs of a job, from their manifests.
    Runs {
        job: String,
        #[arg(long)]
        config: PathBuf,
    },
}

pub(crate) async fn run(command: BatchCommand) -> ExitCode {
    match execute(command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn execute(command: BatchCommand) -> anyhow::Result<()> {
    match command {
        BatchCommand::Run { job, config, period, plugins, workers } => {
            let runner = open_runner(&config, workers).await?;
            let versions = pinned_versions(&plugins)?;
            let spec = runner.job(&job)?;
            let length = spec.period.micros().max(1);
            let period = match period {
                Some(text) => Period::containing(parse_time(&text).map_err(anyhow::Error::msg)?, length),
                None => closed_period(now_micros(), length, spec.lateness.micros().max(1)),
            };
            let manifest = runner.run(RunRequest { job, period, versions, trigger: Trigger::OnDemand }).await?;
            println!("{}", serde_json::to_string_pretty(&manifest)?);
        }
        BatchCommand::Backfill { config, stream, job, from, to, plugins } => {
            let runner = open_runner(&config, None).await?;
            let versions = pinned_versions(&plugins)?;
            let jobs: Vec<_> = runner
                .config()
                .jobs
                .iter()
                .filter(|j| j.stream == stream && job.as_ref().is_none_or(|name| *name == j.name))
                .cloned()
                .collect();
            anyhow::ensure!(
                !jobs.is_empty(),
                "no job reads stream {stream:?}{}; add a [[jobs]] table with stream = {stream:?}",
                job.map(|j| format!(" under the name {j:?}")).unwrap_or_default()
            );
            let (from, to) =
                (parse_time(&from).map_err(anyhow::Error::msg)?, parse_time(&to).map_err(anyhow::Error::msg)?);
            for spec in jobs {
                // Only the versions of plugins this job runs.
                let used: Vec<&str> = spec.plugins().map(|(name, _)| name).collect();
                let versions: BTreeMap<String, String> = versions
                    .iter()
                    .filter(|(name, _)| used.contains(&name.as_str()))
                    .map(|(n, v)| (n.clone(), v.clone()))
                    .collect();
                let periods = periods_between(from, to, spec.period.micros().max(1), MAX_BACKFILL_PERIODS)
                    .map_err(anyhow::Error::msg)?;
                for period in periods {
                    let request = RunRequest {
                        job: spec.name.clone(),
                        period,
                        versions: versions.clone(),
                        trigger: Trigger::Backfill,
                    };
                    let manifest = runner
                        .run(request)
                        .await
                        .with_context(|| format!("job {} period {}", spec.name, period.describe()))?;
                    println!(
                        "{} {}: {} records, {} events, {} dead letters, levels {}; plugins {}",
                        spec.name,
                        manifest.run,
                        manifest.records,
                        manifest.events,
                        manifest.dead_letters,
                        manifest.levels.iter().map(|(n, l)| format!("{n}={}", l.rows)).collect::<Vec<_>>().join(" "),
                        manifest.plugins.join(">")
                    );
                }
            }
        }
        BatchCommand::Runs { job, config } => {
            let parsed = load(&config)?;
            let spec = parsed.job(&job).with_context(|| format!("unknown job {job:?}"))?;
            let lake = weir_connectors::lake_store(&parsed, &spec.input)?;
            let manifests = weir_sinks::RunManifest::list(lake.as_ref(), &job).await?;
            println!("{}", serde_json::to_string_pretty(&manifests)?);
        }
    }
    Ok(())
}

fn load(config: &PathBuf) -> anyhow::Result<PipelineConfig> {
    PipelineConfig::from_file(config, sink_types()).map_err(|errors| anyhow::anyhow!("{errors}"))
}

/// `NAME@VERSION` arguments by plugin name.
fn pinned_versions(plugins: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut versions = BTreeMap::new();
    for text in plugins {
        let (name, version) = text
            .split_once('@')
            .filter(|(n, v)| !n.is_empty() && !v.is_empty())
            .with_context(|| format!("--plugin {text:?}: write NAME@VERSION, e.g. orders-parser@3"))?;
        anyhow::ensure!(versions.insert(name.to_owned(), version.to_owned()).is_none(), "--plugin names {name} twice");
    }
    Ok(versions)
}

/// A runner of the configuration's jobs in this process: its own sinks (so not while a
/// `weir serve` of the same data directory holds the embedded serving store or search
/// index), the registry of the data directory, the plugins' reference tables.
async fn open_runner(config: &PathBuf, workers: Option<usize>) -> anyhow::Result<JobRunner> {
    let parsed = load(config)?;
    let data_dir = &parsed.server.data_dir;
    let code_cache = std::env::var_os("WEIR_CACHE_DIR")
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| data_dir.join("code-cache"), PathBuf::from);
    let runtime = Runtime::new(RuntimeConfig { cache_dir: Some(code_cache), ..Default::default() })?;
    let reference = weir_connectors::build_references(&parsed).await?;
    let registry: Option<Arc<dyn weir_registry::RegistryStore>> = match &parsed.registry.shared {
        Some(shared) => Some(Arc::new(weir_aws::SharedRegistry::open(shared, None).await?)),
        None if data_dir.join("registry").exists() => {
            Some(Arc::new(weir_registry::LocalRegistry::open(&data_dir.join("registry"))?))
        }
        None => None,
    };
    let (sinks, _) = weir_connectors::build_sinks(&parsed).with_context(|| {
        "cannot open the sinks (a running `weir serve` on the same data directory holds the embedded serving store \
         and search index: stop it, or let its schedule run the job)"
    })?;
    for sink in sinks.values() {
        sink.prepare().await?;
    }
    runner_for(Arc::new(parsed), sinks, runtime, registry, reference, workers, tokio::sync::watch::channel(false).1)
}

/// A runner over parts already built (by `weir serve`'s pipeline, or [`open_runner`]).
pub(crate) fn runner_for(
    config: Arc<PipelineConfig>,
    sinks: weir_connectors::SinksByName,
    runtime: Runtime,
    registry: Option<Arc<dyn weir_registry::RegistryStore>>,
    reference: Arc<dyn weir_runtime::ReferenceData>,
    workers: Option<usize>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<JobRunner> {
    let mut lakes = BTreeMap::new();
    for job in &config.jobs {
        if !lakes.contains_key(&job.input) {
            lakes.insert(job.input.clone(), weir_connectors::lake_store(&config, &job.input)?);
        }
    }
    let workers = workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()).min(8));
    let plugins = PluginSource::new(runtime, config.clone(), registry, reference);
    Ok(JobRunner::new(config, sinks, plugins, lakes, workers, shutdown))
}
